"""Tests for transforms/regions.py on pages drawn on the fly: printed lines, a ruled line, a cursive signature."""
from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from transforms.boxes import Box, iou
from transforms.demo_corpus import make_sample_contract
from transforms.detection_metrics import detection_scores
from transforms.pdf import Word, open_pdf, render_page
from transforms.regions import FinderConfig, candidate_features, find_signature_regions
from transforms.yolo import load_yolo_labels

LETTER = (2200, 1700)  # a letter page at 200 dpi, (H, W)
SIGNATURE_BOX = (950, 1500, 1450, 1680)  # x0, y0, x1, y1 in pixels


def printed_page(rng: np.random.Generator, shape: tuple[int, int] = LETTER) -> np.ndarray:
    """A white page with lines of printed text and a ruled signature line, (H, W) uint8, ink dark."""
    page = np.full(shape, 245, np.uint8)
    letters = "abcdefghijklmnopqrstuvwxyz     "
    for y in range(200, 1400, 60):
        text = "".join(rng.choice(list(letters), 60))
        cv2.putText(page, text, (150, y), cv2.FONT_HERSHEY_SIMPLEX, 1.1, 20, 2, cv2.LINE_AA)
    cv2.line(page, (900, 1700), (1500, 1700), 0, 3)
    cv2.putText(page, "Signature:", (450, 1695), cv2.FONT_HERSHEY_SIMPLEX, 1.1, 20, 2, cv2.LINE_AA)
    return page


def draw_signature(page: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int]) -> None:
    """A cursive-like pen trace filling ``box``, drawn in place: two words of slanted loops of uneven
    height (a tall capital first), with a little pen jitter."""
    x0, y0, x1, y1 = box
    strokes = []
    for start, end in ((0.0, 0.42), (0.5, 1.0)):
        loops = int(rng.integers(4, 7))
        t = np.linspace(0, 1, 80 * loops)
        heights = rng.uniform(0.25, 0.5, loops)
        heights[0] = 0.95  # the capital
        height = np.repeat(heights, 80)
        phase = 2 * np.pi * loops * t
        y = 0.9 - height * (0.5 - 0.5 * np.cos(phase))
        x = start + (end - start) * t + 0.03 * np.sin(phase) + 0.15 * (0.9 - y)  # loops, slant
        x, y = x + rng.normal(0, 0.002, t.size), y + rng.normal(0, 0.004, t.size)
        strokes.append(np.stack([x, y], axis=1))
    points = np.concatenate(strokes)
    lo, hi = points.min(axis=0), points.max(axis=0)
    for stroke in strokes:
        norm = (stroke - lo) / (hi - lo)
        pixels = np.stack([x0 + norm[:, 0] * (x1 - x0), y0 + norm[:, 1] * (y1 - y0)], axis=1)
        cv2.polylines(page, [pixels.astype(np.int32)], False, 30, 3, cv2.LINE_AA)


def signed_page(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    page = printed_page(rng)
    draw_signature(page, rng, SIGNATURE_BOX)
    return page


def truth_box(shape: tuple[int, int] = LETTER) -> Box:
    return Box.from_pixels(*SIGNATURE_BOX, width=shape[1], height=shape[0])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_signature_is_found(seed: int) -> None:
    boxes = find_signature_regions(signed_page(seed), config=FinderConfig(min_score=0.0))
    assert boxes, "no region found"
    assert iou(boxes[0], truth_box()) >= 0.5
    assert all(iou(b, truth_box()) < 0.1 for b in boxes[1:])
    assert all(0.0 <= b.score <= 1.0 for b in boxes)
    assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)


def test_printed_text_and_lines_alone_give_no_high_score() -> None:
    every = FinderConfig(min_score=0.0)
    boxes = find_signature_regions(printed_page(np.random.default_rng(3)), config=every)
    assert all(b.score < FinderConfig().min_score for b in boxes)
    assert find_signature_regions(printed_page(np.random.default_rng(3))) == []  # the default min_score
    signed = find_signature_regions(signed_page(3), config=every)
    assert 2 * max((b.score for b in boxes), default=0.0) < signed[0].score


def test_default_threshold_keeps_the_signature() -> None:
    """The signature ranks first and whatever else passes the threshold is weak.

    Printed words near the threshold cross it or not with the CPU's arithmetic: on an Intel Xeon at most
    one other box passed, on an AMD EPYC three (scores 0.20-0.23 against 0.82), so the count is taken
    over clearly-above-threshold boxes only."""
    box, *others = find_signature_regions(signed_page(0))
    min_score = FinderConfig().min_score
    assert iou(box, truth_box()) >= 0.5 and box.score >= min_score
    assert all(b.score < 0.5 * box.score for b in others)
    assert sum(b.score >= 1.25 * min_score for b in others) <= 1, others


def test_blank_and_tiny_pages() -> None:
    assert find_signature_regions(np.full(LETTER, 255, np.uint8)) == []
    assert find_signature_regions(np.full((8, 8), 0, np.uint8)) == []
    small = cv2.resize(signed_page(0), (170, 220), interpolation=cv2.INTER_AREA)
    assert isinstance(find_signature_regions(small), list)


def test_rotated_page_signature_is_found() -> None:
    page = cv2.rotate(signed_page(4), cv2.ROTATE_90_CLOCKWISE)
    boxes = find_signature_regions(page)
    t = truth_box()
    rotated = Box(1 - t.y1, t.x0, 1 - t.y0, t.x1)  # (x, y) -> (1 - y, x) under a clockwise quarter turn
    assert boxes and max(iou(b, rotated) for b in boxes[:3]) >= 0.5


def test_text_layer_words_erase_print_and_anchor_boosts() -> None:
    page = signed_page(5)
    h, w = page.shape
    anchor = Word("Signature:", 450 / w, 1670 / h, 660 / w, 1700 / h)
    keep_all = FinderConfig(min_score=0.0)
    plain = find_signature_regions(page, config=keep_all)
    boosted = find_signature_regions(page, [anchor], config=keep_all)
    best_plain = max(b.score for b in plain if iou(b, truth_box()) >= 0.5)
    best_boosted = max(b.score for b in boosted if iou(b, truth_box()) >= 0.5)
    assert best_boosted > best_plain
    # a text layer over the printed lines removes their ink from the candidates
    lines = [Word("line", 140 / w, (y - 30) / h, 1560 / w, (y + 12) / h) for y in range(200, 1400, 60)]
    remaining = candidate_features(page, lines)
    assert all(b.y0 > 1380 / h for b, _ in remaining)


def test_max_regions_and_arguments() -> None:
    page = signed_page(6)
    assert len(find_signature_regions(page, max_regions=1)) == 1
    with pytest.raises(ValueError, match="max_regions must be >= 1, got 0"):
        find_signature_regions(page, max_regions=0)
    with pytest.raises(ValueError, match=r"image must be \(H, W\) uint8"):
        find_signature_regions(page.astype(np.float32))
    with pytest.raises(ValueError, match=r"image must be \(H, W\) uint8"):
        find_signature_regions(np.zeros((10, 10, 3), np.uint8))


def test_fast_on_a_letter_page() -> None:
    """Under 0.5 s of CPU per 200-dpi letter page (CPU time: wall time on this shared machine is noise).

    OpenCV runs single-threaded here: with its thread pool, process time also counts the pool's
    spinning (0.19 s against 0.15 s of work on 2 cores), and the test flickered at the limit. The same
    work takes 0.15 s on the Intel Xeon these machines had and 0.23-0.32 s on the AMD EPYC they have
    now (OpenCV 5.0): the limit guards against a several-fold slowdown on either, not against the CPU.
    """
    page = signed_page(7)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        find_signature_regions(page)  # warm up
        start = time.process_time()
        for _ in range(3):
            find_signature_regions(page, config=FinderConfig())
        per_page = (time.process_time() - start) / 3
    finally:
        cv2.setNumThreads(threads)
    assert per_page < 0.5


def rendered_contract(seed: int, scanned: bool) -> tuple[np.ndarray, list[Word], list[Box]]:
    """The signed page of a generated one-page contract as the pipeline renders it (200 dpi, text-layer
    words): page (H, W) uint8, words, placed signature boxes."""
    data, placed = make_sample_contract(np.random.default_rng(seed), scanned=scanned)
    doc = open_pdf(data)
    try:
        rendered = render_page(doc, 0, dpi=200)
    finally:
        doc.close()
    return rendered.image, rendered.words, [p.box for p in placed if p.page == 1]


@pytest.mark.parametrize(("seed", "scanned"), [(13, True), (5, False), (9, False)])
def test_generated_contract_signatures_are_found(seed: int, scanned: bool) -> None:
    """Every signature of a generated contract, scanned (no text layer, JPEG noise, tilt) or born-digital,
    is found at IoU >= 0.5 at the default threshold, and no more than one box is spurious."""
    image, words, truth = rendered_contract(seed, scanned)
    assert len(truth) == 2 and (words == []) == scanned
    boxes = find_signature_regions(image, words)
    for t in truth:
        assert max((iou(b, t) for b in boxes), default=0.0) >= 0.5, (t, boxes)
    assert sum(max(iou(b, t) for t in truth) < 0.5 for b in boxes) <= 1, boxes


def test_generated_scanned_contract_is_fast() -> None:
    """Under 0.6 s of CPU for a scanned contract page (0.30-0.31 s on the AMD EPYC machines, OpenCV's
    thread pool included; see test_fast_on_a_letter_page for why the limit is loose)."""
    image, words, _ = rendered_contract(13, scanned=True)
    find_signature_regions(image, words)  # warm up
    start = time.process_time()
    find_signature_regions(image, words)
    assert time.process_time() - start < 0.6


def test_real_pages_regression_guard() -> None:
    """On the first 60 real validation pages the finder keeps the quality it was shipped with
    (full-split figures: benchmarks/classical_regions.py)."""
    root = Path(os.environ.get("SIGAUDIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    folder = root / "detection" / "valid"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found: the shared data is absent")
    predictions, truth = [], []
    for path in sorted((folder / "images").glob("*.jpg"))[:60]:
        predictions.append(find_signature_regions(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)))
        truth.append(load_yolo_labels(folder / "labels" / f"{path.stem}.txt"))
    scores = detection_scores(predictions, truth)
    assert scores.f1 >= 0.25 and scores.ap >= 0.12, scores
