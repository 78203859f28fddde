"""Tests of the handwritten non-signature marks drawn on synthetic detector pages."""
from __future__ import annotations

import numpy as np
import pytest

from transforms.synth_marks import MARK_KINDS, _text_strokes, add_handwritten_marks, handwritten_mark


@pytest.mark.parametrize("kind", MARK_KINDS)
def test_every_kind_draws_dark_ink_on_white_paper(kind: str) -> None:
    for seed in range(5):
        mark = handwritten_mark(np.random.default_rng(seed), 20, kind)
        assert mark.ndim == 2 and mark.dtype == np.uint8
        assert mark[0, :].min() == 255 and mark[-1, :].min() == 255  # a clear margin all round
        assert mark.min() < 130 and (mark < 200).mean() < 0.5
        if kind in ("date", "figure", "note"):
            assert 16 <= mark.shape[0] <= 40 and mark.shape[1] > mark.shape[0]  # a line of text, ~20 px glyphs


def test_marks_are_reproducible_and_vary() -> None:
    a = handwritten_mark(np.random.default_rng(3), 18)
    b = handwritten_mark(np.random.default_rng(3), 18)
    c = handwritten_mark(np.random.default_rng(4), 18)
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_bad_arguments_name_the_value() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="'smudge'"):
        handwritten_mark(rng, 20, "smudge")
    with pytest.raises(ValueError, match="got 4"):
        handwritten_mark(rng, 4)
    with pytest.raises(ValueError, match="'#'"):
        _text_strokes("12#4", rng)
    with pytest.raises(ValueError, match="got -1"):
        add_handwritten_marks(np.full((50, 50), 255, np.uint8), rng, -1)
    with pytest.raises(ValueError, match="uint8"):
        add_handwritten_marks(np.zeros((50, 50), np.float32), rng, 1)
    with pytest.raises(ValueError, match="height_range"):
        add_handwritten_marks(np.full((50, 50), 255, np.uint8), rng, 1, height_range=(0.2, 0.1))


def test_add_marks_darkens_only_outside_the_avoided_boxes() -> None:
    page = np.full((400, 300), 250, np.uint8)
    avoid = [(0.1, 0.1, 0.6, 0.3), (0.5, 0.6, 0.9, 0.8)]
    out = add_handwritten_marks(page, np.random.default_rng(0), 6, avoid=avoid)
    assert out.shape == page.shape and (out <= page).all() and (out < 200).sum() > 20
    for x0, y0, x1, y1 in avoid:
        assert (out[int(y0 * 400):int(y1 * 400), int(x0 * 300):int(x1 * 300)] == 250).all()
    assert np.array_equal(add_handwritten_marks(page, np.random.default_rng(0), 0), page)
    assert np.array_equal(out, add_handwritten_marks(page, np.random.default_rng(0), 6, avoid=avoid))
