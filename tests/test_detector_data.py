"""Tests of the detector's training data: YOLO folders, real-signature cleaning, synthetic pages, augmentation."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.detector_data import (
    augment_page,
    clean_signature,
    copy_paste,
    load_yolo_pages,
    mosaic_page,
    signature_bank,
    synthetic_page,
    synthetic_pages,
)
from transforms.boxes import Box


def _ink_box(page: np.ndarray) -> Box:
    ys, xs = np.nonzero(page < (int(page.min()) + int(np.median(page))) / 2)
    return Box.from_pixels(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, page.shape[1], page.shape[0])


@pytest.mark.parametrize("seed", range(8))
def test_augmented_box_follows_the_ink(seed: int) -> None:
    page = np.full((128, 128), 240, np.uint8)
    page[30:46, 20:70] = 0
    box = Box(20 / 128, 30 / 128, 70 / 128, 46 / 128)
    out, boxes = augment_page(page, [box], np.random.default_rng(seed))
    assert out.shape == page.shape and out.dtype == np.uint8
    if not boxes:  # moved off the page: the ink must be mostly gone too
        assert (out < (int(out.min()) + int(np.median(out))) / 2).sum() < 0.5 * 16 * 50
        return
    truth = _ink_box(out)
    b = boxes[0]
    assert abs(b.x0 - truth.x0) < 0.04 and abs(b.x1 - truth.x1) < 0.04
    assert abs(b.y0 - truth.y0) < 0.04 and abs(b.y1 - truth.y1) < 0.04


def test_load_yolo_pages_stretches_and_reads_labels(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.full((100, 60), 255, np.uint8))
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.1")
    stems, pages = load_yolo_pages(tmp_path / "images", tmp_path / "labels", 64)
    assert stems == ["a"] and pages[0][0].shape == (64, 64)
    assert pages[0][1][0].x0 == pytest.approx(0.4)
    (tmp_path / "labels" / "a.txt").unlink()
    with pytest.raises(ValueError, match="no label file"):
        load_yolo_pages(tmp_path / "images", tmp_path / "labels", 64)


def test_clean_signature_whitens_paper_and_darkens_faint_ink() -> None:
    scan = np.full((60, 120), 200, np.uint8)  # gray paper
    scan[20:40, 10:110] = 170  # faint ink
    out = clean_signature(scan)
    assert out.max() == 255 and out.min() < 100
    assert out.shape[0] < 60 and out.shape[1] < 120  # cropped to the ink


def _signature_file(tmp_path: Path) -> Path:
    """A one-word "signature" PNG for the synthetic page generator."""
    sig = np.full((80, 240), 255, np.uint8)
    cv2.putText(sig, "Jsmith", (5, 60), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 2.0, 0, 4)
    path = tmp_path / "sig.png"
    cv2.imwrite(str(path), sig)
    return path


def test_synthetic_page_boxes_sit_on_dark_ink(tmp_path: Path) -> None:
    path = _signature_file(tmp_path)
    found = 0
    for seed in range(3):
        page, boxes = synthetic_page(np.random.default_rng(seed), [path], 256)
        assert page.shape == (256, 256) and page.dtype == np.uint8
        for b in boxes:
            x0, y0, x1, y1 = b.to_pixels(256, 256)
            assert page[y0:y1, x0:x1].min() < 150
            found += 1
    assert found >= 2


def test_no_quarter_turns_keeps_wide_boxes_wide() -> None:
    page = np.full((128, 128), 240, np.uint8)
    page[60:70, 20:100] = 20
    box = Box.from_pixels(20, 60, 100, 70, 128, 128)
    for seed in range(8):
        _, boxes = augment_page(page, [box], np.random.default_rng(seed), quarter_turns=0.0)
        assert all(b.x1 - b.x0 > 2 * (b.y1 - b.y0) for b in boxes)


def test_handwritten_marks_leave_the_page_and_its_boxes_as_they_were(tmp_path: Path) -> None:
    path = _signature_file(tmp_path)
    changed = 0
    for seed in range(3):
        plain, plain_boxes = synthetic_page(np.random.default_rng(seed), [path], 256)
        marked, boxes = synthetic_page(np.random.default_rng(seed), [path], 256, np.random.default_rng([seed, 1]), 1.0)
        assert boxes == plain_boxes  # the marks come from their own generator
        assert (marked.astype(int) <= plain.astype(int) + 1).all()  # marks only darken
        for b in boxes:  # and stay off the signatures
            x0, y0, x1, y1 = b.to_pixels(256, 256)
            assert np.abs(marked[y0:y1, x0:x1].astype(int) - plain[y0:y1, x0:x1]).max() <= 1
        changed += int((marked.astype(int) < plain.astype(int) - 30).sum() > 10)
    assert changed == 3
    with pytest.raises(ValueError, match="marks_rng"):
        synthetic_page(np.random.default_rng(0), [path], 256, None, 0.5)
    with pytest.raises(ValueError, match="probability"):
        synthetic_page(np.random.default_rng(0), [path], 256, np.random.default_rng(1), 1.5)


def test_synthetic_pages_letters_leave_the_contract_pages_as_they_were(tmp_path: Path) -> None:
    path = _signature_file(tmp_path)
    plain = synthetic_pages(6, 0, [path], 128)
    mixed = synthetic_pages(6, 0, [path], 128, letters=0.5)
    same = [np.array_equal(a, b) for (a, _), (b, _) in zip(plain, mixed, strict=True)]
    assert 0 < sum(same) < 6  # some pages became letters, the others are the contract pages unchanged
    for page, boxes in mixed:
        assert page.shape == (128, 128)
        for b in boxes:
            x0, y0, x1, y1 = b.to_pixels(128, 128)
            assert page[y0:y1, x0:x1].min() < 150
    with pytest.raises(ValueError, match="letters"):
        synthetic_pages(1, 0, [path], 128, letters=2.0)


@pytest.mark.parametrize("seed", range(6))
def test_mosaic_boxes_follow_their_ink(seed: int) -> None:
    size = 96
    parts = []
    for i in range(4):  # a dark bar in each page's own corner region that the mosaic may show
        page = np.full((size, size), 235, np.uint8)
        y0, x0 = (10 if i >= 2 else 60), (10 if i % 2 else 60)
        page[y0:y0 + 12, x0:x0 + 26] = 10 + i
        parts.append((page, [Box.from_pixels(x0, y0, x0 + 26, y0 + 12, size, size)]))
    out, boxes = mosaic_page(parts, np.random.default_rng(seed))
    assert out.shape == (size, size) and out.dtype == np.uint8
    ink = out < 128
    covered = np.zeros_like(ink)
    for b in boxes:
        x0, y0, x1, y1 = b.to_pixels(size, size)
        covered[y0:y1, x0:x1] = True
        assert ink[y0:y1, x0:x1].mean() > 0.9  # every kept box lies on its page's bar
    assert not (ink & ~covered).sum() > 2 * 12 * 26 * 0.5  # bars left unlabelled are the clipped halves only
    again, again_boxes = mosaic_page(parts, np.random.default_rng(seed))
    assert np.array_equal(out, again) and again_boxes == boxes


def test_mosaic_quadrants_come_from_the_four_pages_in_order() -> None:
    size = 64
    parts = [(np.full((size, size), 40 * (i + 1), np.uint8), []) for i in range(4)]
    out, boxes = mosaic_page(parts, np.random.default_rng(0))
    assert boxes == []
    assert out[0, 0] == 40 and out[0, -1] == 80 and out[-1, 0] == 120 and out[-1, -1] == 160
    with pytest.raises(ValueError, match="4 pages"):
        mosaic_page(parts[:3], np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(64, 64\)"):
        mosaic_page(parts[:3] + [(np.zeros((32, 32), np.uint8), [])], np.random.default_rng(0))


def test_zoom_range_sets_the_scale_of_the_ink() -> None:
    page = np.full((160, 160), 240, np.uint8)
    page[70:90, 50:110] = 0
    box = Box(50 / 160, 70 / 160, 110 / 160, 90 / 160)
    for zoom, lo, hi in (((0.5, 0.5), 0.38, 0.62), ((1.5, 1.5), 1.2, 1.8)):
        widths = []
        for seed in range(6):
            _, boxes = augment_page(page, [box], np.random.default_rng(seed), quarter_turns=0.0, zoom=zoom)
            widths += [b.x1 - b.x0 for b in boxes if 0.0 < b.x0 and b.x1 < 1.0]
        assert widths and all(lo * 60 / 160 < w < hi * 60 / 160 for w in widths), (zoom, widths)
    with pytest.raises(ValueError, match="zoom"):
        augment_page(page, [box], np.random.default_rng(0), zoom=(1.2, 0.8))


def _signed_page(size: int = 128) -> tuple[np.ndarray, list[Box]]:
    page = np.full((size, size), 230, np.uint8)
    page[10:14, 8:120] = 20  # a printed line: pastes must keep off it
    page[104:108, 20:60] = 30  # the page's own signature, in its box 100:112
    return page, [Box.from_pixels(20, 100, 60, 112, size, size)]


def test_signature_bank_cuts_the_labelled_boxes_with_white_paper() -> None:
    page, boxes = _signed_page()
    tiny = Box.from_pixels(0, 0, 4, 4, 128, 128)
    bank = signature_bank([(page, boxes + [tiny])])
    assert len(bank) == 1 and bank[0].shape == (12, 40)  # the 4 px box is left out
    assert int(bank[0][0, 0]) == 255 and int(bank[0][5, 10]) == 33  # paper (the median) to white, ink 30 * 255 / 230


@pytest.mark.parametrize("seed", range(6))
def test_copy_paste_lays_ink_on_blank_spots_and_labels_it(seed: int) -> None:
    page, boxes = _signed_page()
    patch = np.full((10, 30), 255, np.uint8)
    patch[3:7, 2:28] = 0
    out, placed = copy_paste(page, boxes, [patch], np.random.default_rng(seed), zoom=(1.0, 1.0))
    assert out.shape == page.shape and out.dtype == np.uint8 and placed[:1] == boxes
    assert 2 <= len(placed) <= 3  # 1-2 pastes; the page has room for both
    changed = out != page
    covered = np.zeros_like(changed)
    for b in placed[1:]:
        x0, y0, x1, y1 = b.to_pixels(128, 128)
        assert (x1 - x0, y1 - y0) == (30, 10)
        covered[y0:y1, x0:x1] = True
        assert (out[y0 + 3:y0 + 7, x0 + 2:x0 + 28] == 0).all()  # the patch's ink is on the page
        assert not (page[y0:y1, x0:x1] < 180).any()  # laid on a blank spot, off the line and the signature
    assert not (changed & ~covered).any()  # nothing else on the page changed
    again = copy_paste(page, boxes, [patch], np.random.default_rng(seed), zoom=(1.0, 1.0))
    assert np.array_equal(again[0], out) and again[1] == placed


def test_copy_paste_leaves_a_full_page_alone_and_needs_a_bank() -> None:
    page = np.full((64, 64), 10, np.uint8)  # all ink: no blank spot anywhere
    patch = np.zeros((8, 20), np.uint8)
    out, placed = copy_paste(page, [], [patch], np.random.default_rng(0))
    assert np.array_equal(out, page) and placed == []
    with pytest.raises(ValueError, match="bank"):
        copy_paste(page, [], [], np.random.default_rng(0))
