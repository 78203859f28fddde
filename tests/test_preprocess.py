"""Invariants of the one SigNet preprocessing: shape, polarity, shift, scale, borders, tiny, blank."""
from __future__ import annotations

import numpy as np
import pytest

from transforms.preprocess import (
    INK_MASKS,
    INPUT_SIZE,
    flat_and_ink,
    hysteresis_mask,
    ink_mask,
    otsu_mask,
    preprocess_signature,
    remove_specks,
)
from transforms.synth_signature import draw_signature, make_style

STYLE = make_style(np.random.default_rng(0))


def sig(height: int = 100) -> np.ndarray:
    """The same signature sample (seeded) at a given ink height: ``(H, W) uint8`` ink dark on white."""
    return draw_signature(STYLE, np.random.default_rng(1), height=height)


def draw(page_h: int = 160, page_w: int = 400, at: tuple[int, int] = (20, 20), height: int = 100,
         paper: int = 255) -> np.ndarray:
    """The signature pasted at ``at`` = (row, col) on a ``(page_h, page_w)`` page of grey level ``paper``."""
    s = sig(height)
    page = np.full((page_h, page_w), 255, np.uint8)
    page[at[0] : at[0] + s.shape[0], at[1] : at[1] + s.shape[1]] = s
    return (page.astype(np.float32) * paper / 255.0).astype(np.uint8)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_shape_range_and_ink_bright():
    out = preprocess_signature(sig())
    assert out.shape == INPUT_SIZE and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert out.max() > 0.9  # the ink is bright
    assert np.median(out) == 0.0  # the background is dark


def test_custom_size():
    assert preprocess_signature(sig(), size=(64, 96)).shape == (64, 96)


def test_shift_invariance():
    a = preprocess_signature(draw(300, 700, at=(10, 15)))
    b = preprocess_signature(draw(300, 700, at=(180, 290)))
    assert corr(a, b) > 0.97


def test_scale_invariance():
    a = preprocess_signature(sig(80))
    b = preprocess_signature(sig(240))
    assert corr(a, b) > 0.85


def test_dark_frame_is_not_ink():
    clean = draw(160, 400)
    framed = clean.copy()
    framed[:4], framed[-4:], framed[:, :4], framed[:, -4:] = 0, 0, 0, 0
    thin = clean.copy()
    thin[2, :], thin[:, -3] = 30, 30
    a = preprocess_signature(clean)
    assert corr(a, preprocess_signature(framed)) > 0.95
    assert corr(a, preprocess_signature(thin)) > 0.95


def test_polarity_light_ink_on_dark():
    img = draw()
    assert corr(preprocess_signature(img), preprocess_signature(255 - img)) > 0.97


def test_uneven_and_dark_background():
    img = draw().astype(np.float32)
    gradient = np.linspace(0.45, 1.0, img.shape[1], dtype=np.float32)[None, :]
    uneven = (img * gradient).astype(np.uint8)  # paper from ~115 to 255, ink ~10-20
    dark = (img * 0.55).astype(np.uint8)  # grey paper ~140
    a = preprocess_signature(img.astype(np.uint8))
    assert corr(a, preprocess_signature(uneven)) > 0.93
    assert corr(a, preprocess_signature(dark)) > 0.95


def test_rgb_input():
    img = draw()
    rgb = np.repeat(img[:, :, None], 3, axis=2)
    np.testing.assert_allclose(preprocess_signature(rgb), preprocess_signature(img), atol=1e-2)


@pytest.mark.parametrize("shape", [(1, 1), (3, 40), (2, 2), (40, 3), (1, 500)])
def test_tiny_images_never_raise(shape):
    rng = np.random.default_rng(1)
    out = preprocess_signature(rng.integers(0, 256, shape, dtype=np.uint8))
    assert out.shape == INPUT_SIZE and np.isfinite(out).all()


@pytest.mark.parametrize("value", [0, 128, 255])
def test_blank_gives_zeros(value):
    out = preprocess_signature(np.full((100, 200), value, np.uint8))
    assert out.shape == INPUT_SIZE and not out.any()


def test_framed_blank_gives_zeros():
    img = np.full((100, 200), 250, np.uint8)
    img[:3], img[-3:], img[:, :3], img[:, -3:] = 0, 0, 0, 0
    assert not preprocess_signature(img).any()


def test_faint_noise_is_blank():
    rng = np.random.default_rng(2)
    img = (240 + rng.integers(-5, 6, (120, 300))).astype(np.uint8)
    assert not preprocess_signature(img).any()


def test_bad_input_raises():
    with pytest.raises(ValueError, match="shape"):
        preprocess_signature(np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        preprocess_signature(np.zeros((0, 5), np.uint8))
    with pytest.raises(ValueError, match="size"):
        preprocess_signature(np.zeros((10, 10), np.uint8), size=(4, 4))


def test_long_stroke_at_the_edge_of_a_tight_crop_is_kept():
    """A straight pen stroke along the crop's edge (common in tightly cropped Chinese names) is ink,
    not a frame line: it spans most of the side, but not all of it."""
    img = np.full((120, 200), 255, np.uint8)
    img[30:60, 20:120] = 255 - 200 * (np.random.default_rng(3).random((30, 100)) > 0.7)
    img[8:112, 192:199] = 20  # a vertical stroke over 87 % of the height, at the right edge
    out = preprocess_signature(img)
    assert (out > 0.5).mean(axis=0).max() > 0.6  # some column still holds the tall stroke
    framed = img.copy()
    framed[:, 195:] = 0  # a real frame line: the whole side
    assert preprocess_signature(framed)[:, -3:].max() < 0.5


def test_canvas_layout_keeps_aspect_and_centres():
    from transforms.preprocess import canvas_layout
    for h, w in ((50, 300), (300, 50), (155, 220), (1, 1)):
        ch, cw, y0, x0 = canvas_layout(h, w, INPUT_SIZE)
        assert ch >= h and cw >= w and 0 <= y0 <= ch - h and 0 <= x0 <= cw - w
        assert abs(cw / ch - INPUT_SIZE[1] / INPUT_SIZE[0]) < 0.05 or min(h, w) == 1
        assert abs((ch - h) - 2 * y0) <= 1 and abs((cw - w) - 2 * x0) <= 1
    with pytest.raises(ValueError, match="0x5"):
        canvas_layout(0, 5, INPUT_SIZE)


def test_ink_geometry_matches_the_preprocessing():
    from transforms.preprocess import ink_geometry
    page = draw(at=(30, 40))
    g = ink_geometry(page)
    s = sig()
    ys, xs = np.nonzero(s < 128)
    y0, y1, x0, x1 = g.box
    assert abs(y0 - (30 + ys.min())) <= 2 and abs(x0 - (40 + xs.min())) <= 2
    assert abs(y1 - (31 + ys.max())) <= 2 and abs(x1 - (41 + xs.max())) <= 2
    assert 0 < g.threshold < 255 and 1.0 <= g.scale <= 255
    assert ink_geometry(np.full((40, 60), 255, np.uint8)) is None  # blank: preprocess gives zeros


def test_faint_strokes_joined_to_the_ink_are_kept_faint_specks_are_not():
    """The hysteresis: a faint stroke touching dark ink counts as ink; a faint blob alone does not."""
    img = np.full((120, 300), 255, np.uint8)
    img[48:56, 20:280] = np.linspace(30, 200, 260).astype(np.uint8)[None, :]  # a stroke fading out to the right
    img[92:104, 200:212] = 190  # a faint smudge, apart
    assert not otsu_mask(img)[52, 270]  # Otsu alone loses the faint end
    mask = hysteresis_mask(img)
    assert mask[52, 30] and mask[52, 270] and not mask[98, 205]
    out = preprocess_signature(img)
    rows = np.flatnonzero(out.max(axis=1) > 0.05)
    assert rows[-1] - rows[0] < 0.3 * INPUT_SIZE[0]  # the crop to the ink leaves the smudge out


def test_hysteresis_without_a_weak_share_is_otsu():
    img = sig()
    thr_mask = hysteresis_mask(img, weak_share=0.0)
    assert np.array_equal(thr_mask, otsu_mask(img))
    assert hysteresis_mask(img).sum() >= thr_mask.sum()


def test_ink_mask_otsu_drops_the_faint_end_that_hysteresis_keeps():
    """``ink='otsu'`` (SigNet training's default) is Otsu's dark class alone: the faint end of a stroke
    that the default hysteresis mask keeps is dropped, so the preprocessed ink is shorter."""
    img = np.full((120, 300), 255, np.uint8)
    img[48:56, 20:280] = np.linspace(30, 200, 260).astype(np.uint8)[None, :]
    assert np.array_equal(ink_mask(img, "otsu"), remove_specks(otsu_mask(img)))
    assert ink_mask(img, "hysteresis").sum() > ink_mask(img, "otsu").sum()
    assert np.array_equal(preprocess_signature(img), preprocess_signature(img, ink="hysteresis"))
    g_h, g_o = (flat_and_ink(img, kind)[1] for kind in INK_MASKS)
    assert np.flatnonzero(g_h.any(0))[-1] > np.flatnonzero(g_o.any(0))[-1] + 15  # the faint end is the difference
    assert not np.array_equal(preprocess_signature(img, ink="otsu"), preprocess_signature(img))


def test_unknown_ink_mask_is_named():
    with pytest.raises(ValueError, match="'canny'"):
        preprocess_signature(sig(), ink="canny")
