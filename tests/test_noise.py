"""Tests for transforms.noise: shape and dtype kept, inputs untouched, seeded determinism, visible effect."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from transforms.noise import (
    NOISE_KINDS,
    add_document_noise,
    add_document_noise_with_target,
    add_form_box,
    add_printed_text,
    add_ruled_line,
    add_stamp,
    add_stray_strokes,
    scan_artifacts,
)
from transforms.synth_signature import draw_signature, make_style

FUNCS: list[Callable[[np.ndarray, np.random.Generator], np.ndarray]] = [
    add_stamp, add_printed_text, add_ruled_line, add_form_box, add_stray_strokes, scan_artifacts]


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    rng = np.random.default_rng(0)
    sig = draw_signature(make_style(rng), rng, height=100)
    out = np.full((160, max(sig.shape[1] + 60, 300)), 255, np.uint8)
    out[30:30 + sig.shape[0], 30:30 + sig.shape[1]] = sig
    return out


@pytest.mark.parametrize("func", FUNCS, ids=lambda f: f.__name__)
def test_shape_dtype_determinism_and_effect(func: Callable, crop: np.ndarray) -> None:
    before = crop.copy()
    changed = 0
    for seed in range(5):
        a = func(crop, np.random.default_rng(seed))
        b = func(crop, np.random.default_rng(seed))
        assert a.shape == crop.shape and a.dtype == np.uint8
        assert np.array_equal(a, b)
        changed += int(np.abs(a.astype(int) - crop).sum() > 0)
    assert np.array_equal(crop, before)  # input not modified
    assert changed >= 3  # an occasional draw may land off the crop, most must not


def test_stamp_adds_mid_gray_ink(crop: np.ndarray) -> None:
    blank = np.full_like(crop, 255)
    darker = [add_stamp(blank, np.random.default_rng(s)) for s in range(6)]
    assert all(d.mean() < 254.5 for d in darker)
    assert all(d.min() > 20 for d in darker)  # coloured ink renders as gray, not black


def test_ruled_line_is_horizontal_in_lower_part() -> None:
    blank = np.full((100, 400), 255, np.uint8)
    for seed in range(6):
        out = add_ruled_line(blank, np.random.default_rng(seed))
        rows = np.nonzero((out < 200).sum(axis=1) > 0)[0]
        assert rows.min() >= 50 and rows.max() - rows.min() < 15


def test_scan_artifacts_without_rotation_or_jpeg_keeps_geometry() -> None:
    img = np.full((120, 200), 255, np.uint8)
    img[50:60, 80:120] = 0
    out = scan_artifacts(img, np.random.default_rng(0), rotate=False, jpeg=False)
    assert out[52:58, 85:115].mean() < 80 and out[:30].mean() > 180


@pytest.mark.parametrize("kinds", [None, ("line",), NOISE_KINDS])
def test_document_noise_composes(kinds: tuple[str, ...] | None, crop: np.ndarray) -> None:
    a = add_document_noise(crop, np.random.default_rng(1), kinds=kinds)
    b = add_document_noise(crop, np.random.default_rng(1), kinds=kinds)
    assert a.shape == crop.shape and a.dtype == np.uint8 and np.array_equal(a, b)
    assert not np.array_equal(a, crop)


@pytest.mark.parametrize("seed", range(6))
def test_noise_with_target_is_the_same_noise_and_an_aligned_target(seed: int, crop: np.ndarray) -> None:
    noisy, target = add_document_noise_with_target(crop, np.random.default_rng(seed), kinds=("line", "scan"))
    assert np.array_equal(noisy, add_document_noise(crop, np.random.default_rng(seed), kinds=("line", "scan")))
    assert target.shape == crop.shape and target.dtype == np.uint8
    assert not np.array_equal(target, crop)  # the scan's turn moved the clean image too
    # the turned target lines up with the noisy strokes better than the unturned crop does
    ink = noisy < 100
    assert (target[ink] < 128).mean() > (crop[ink] < 128).mean()


def test_noise_with_target_without_scan_keeps_the_crop(crop: np.ndarray) -> None:
    noisy, target = add_document_noise_with_target(crop, np.random.default_rng(3), kinds=("stamp", "text"))
    assert np.array_equal(target, crop) and not np.array_equal(noisy, crop)


def test_bad_input_raises(crop: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown noise kinds"):
        add_document_noise(crop, rng, kinds=("smudge",))
    with pytest.raises(ValueError, match="uint8"):
        add_stamp(crop.astype(np.float32), rng)
    with pytest.raises(ValueError, match="uint8"):
        scan_artifacts(np.zeros((4, 4, 3), np.uint8), rng)


def test_colour_ink_keeps_the_luminance_and_refuses_mismatched_images() -> None:
    from transforms.dropout import luminance
    from transforms.noise import colour_ink

    plain = np.full((30, 40), 230, np.uint8)
    plain[10:12] = 20
    inked = plain.copy()
    inked[:, 20:24] = (inked[:, 20:24] * 0.6).astype(np.uint8)  # gray ink multiplied over the page
    rgb = colour_ink(plain, inked, (150, 0, 0))
    assert rgb.shape == (30, 40, 3)
    assert np.abs(luminance(rgb).astype(int) - inked.astype(int)).max() <= 2
    assert (rgb[:, :20] == plain[:, :20, None]).all()  # no ink, no colour
    assert rgb[0, 21, 0] > rgb[0, 21, 1] + 50  # the ink is red
    with pytest.raises(ValueError, match="differ in shape"):
        colour_ink(plain, inked[:, :10], (150, 0, 0))
