"""Tests for transforms.synth_signature: determinism, image format, genuine/forged/other-writer spread."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from transforms.synth_signature import crop_to_ink, draw_signature, make_style, smooth_stroke


def _feature(img: np.ndarray) -> np.ndarray:
    """A crude shape descriptor: the blurred ink on a fixed grid, zero mean, unit norm."""
    x = cv2.resize(255 - img, (128, 48), interpolation=cv2.INTER_AREA).astype(np.float32)
    x = cv2.GaussianBlur(x, (0, 0), 2.0).ravel()
    x -= x.mean()
    return x / (np.linalg.norm(x) + 1e-9)


def test_same_seed_same_signature() -> None:
    a = draw_signature(make_style(np.random.default_rng(7)), np.random.default_rng(1))
    b = draw_signature(make_style(np.random.default_rng(7)), np.random.default_rng(1))
    assert np.array_equal(a, b)
    c = draw_signature(make_style(np.random.default_rng(7)), np.random.default_rng(2))
    assert a.shape != c.shape or not np.array_equal(a, c)


@pytest.mark.parametrize("forged", [False, True])
@pytest.mark.parametrize("height", [40, 120, 300])
def test_image_format_and_tight_crop(height: int, forged: bool) -> None:
    rng = np.random.default_rng(height)
    img = draw_signature(make_style(rng), rng, height=height, forged=forged, margin=4)
    assert img.ndim == 2 and img.dtype == np.uint8
    assert 0.8 * height <= img.shape[0] <= 1.2 * height
    assert img.shape[1] > img.shape[0] * 0.8  # a name is wider than tall
    assert img.min() < 100  # dark ink
    assert np.median(img) > 240  # on white
    border = np.concatenate([img[:4].ravel(), img[-4:].ravel(), img[:, :4].ravel(), img[:, -4:].ravel()])
    assert border.min() >= 230  # margin is white
    inner = img[4:-4, 4:-4]
    assert (inner[0] < 230).any() and (inner[-1] < 230).any()  # ink touches the crop's edges
    assert (inner[:, 0] < 230).any() and (inner[:, -1] < 230).any()


def test_genuine_close_forgery_between_other_writers_far() -> None:
    rng = np.random.default_rng(0)
    styles = [make_style(rng) for _ in range(6)]
    same, forged, other = [], [], []
    for i, style in enumerate(styles):
        g = [_feature(draw_signature(style, rng)) for _ in range(3)]
        f = [_feature(draw_signature(style, rng, forged=True)) for _ in range(2)]
        o = _feature(draw_signature(styles[(i + 1) % len(styles)], rng))
        same += [1 - g[0] @ g[1], 1 - g[0] @ g[2], 1 - g[1] @ g[2]]
        forged += [1 - g[0] @ x for x in f]
        other += [1 - x @ o for x in g]
    assert np.mean(same) < np.mean(forged) < np.mean(other)
    assert np.mean(same) < 0.5 * np.mean(other)


def test_forgery_strokes_are_heavier_and_shakier() -> None:
    rng = np.random.default_rng(3)
    style = make_style(rng)
    genuine = [draw_signature(style, rng) for _ in range(4)]
    forged = [draw_signature(style, rng, forged=True) for _ in range(4)]
    ink = [np.mean([(im < 128).sum() / im.size for im in imgs]) for imgs in (genuine, forged)]
    assert ink[1] > ink[0]


def test_bad_arguments_raise() -> None:
    rng = np.random.default_rng(0)
    style = make_style(rng)
    with pytest.raises(ValueError, match="height"):
        draw_signature(style, rng, height=5)
    with pytest.raises(ValueError, match="margin"):
        draw_signature(style, rng, margin=-1)


def test_helpers() -> None:
    curve = smooth_stroke(np.array([[0, 0], [1, 1], [2, 0]]), 10)
    assert curve.shape == (21, 2) and np.allclose(curve[0], [0, 0]) and np.allclose(curve[-1], [2, 0])
    img = np.full((50, 60), 255, np.uint8)
    img[10:20, 30:35] = 0
    assert crop_to_ink(img, margin=2).shape == (14, 9)
    assert crop_to_ink(np.full((5, 5), 255, np.uint8)).shape == (5, 5)
