"""Synthetic skilled forgeries: a genuine signature warped as a forger's copy."""
from __future__ import annotations

import numpy as np
import pytest

from transforms.imitation import AMPLITUDE, TREMOR_AMPLITUDE, imitation_warp
from transforms.preprocess import preprocess_signature
from transforms.synth_signature import draw_signature, make_style


def signature(seed: int = 0) -> np.ndarray:
    img = draw_signature(make_style(np.random.default_rng(seed)), np.random.default_rng(seed), height=300)
    return preprocess_signature(img)


def test_warp_is_seeded_keeps_the_canvas_and_bends_the_strokes():
    img = signature()
    a = imitation_warp(img, np.random.default_rng(3))
    assert a.shape == img.shape and a.dtype == np.float32 and 0.0 <= a.min() and a.max() <= 1.0
    assert np.array_equal(a, imitation_warp(img, np.random.default_rng(3)))
    assert not np.array_equal(a, imitation_warp(img, np.random.default_rng(4)))
    # the strokes move (an ink pixel of the copy is not always an ink pixel of the original) ...
    ink, moved = img > 0.5, a > 0.5
    assert (moved & ~ink).sum() > 0.1 * moved.sum()
    # ... but the ink stays about as much (no stroke lost, none doubled)
    assert 0.8 < a.sum() / img.sum() < 1.25


def test_no_pixel_moves_further_than_the_two_fields_allow():
    img = np.zeros((155, 220), np.float32)
    img[77, 110] = 1.0  # one dot in the middle
    limit = AMPLITUDE[1] + TREMOR_AMPLITUDE[1] + 1  # + 1: bilinear spread
    for seed in range(20):
        out = imitation_warp(img, np.random.default_rng(seed))
        ys, xs = np.nonzero(out > 0)
        assert ys.size and np.hypot(ys - 77, xs - 110).max() <= limit


def test_warp_names_the_bad_input():
    with pytest.raises(ValueError, match="float32"):
        imitation_warp(np.zeros((10, 10), np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(5,\)"):
        imitation_warp(np.zeros(5, np.float32), np.random.default_rng(0))
