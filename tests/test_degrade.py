"""transforms.degrade.page_rendering: a dataset signature as the pipeline cuts it from a page."""
from __future__ import annotations

import numpy as np
import pytest

from transforms.degrade import INK_HEIGHT, ink_height, page_rendering
from transforms.preprocess import preprocess_signature
from transforms.synth_signature import draw_signature, make_style

STYLE = make_style(np.random.default_rng(3))


def test_ink_height_measures_the_ink_rows():
    img = np.full((50, 80), 255, np.uint8)
    img[10:31, 5:70] = 0
    assert ink_height(img) == 21
    assert ink_height(np.full((7, 9), 255, np.uint8)) == 7  # no ink: the whole image


def test_page_rendering_is_seeded_and_shrinks_to_page_size():
    big = draw_signature(STYLE, np.random.default_rng(0), height=400)
    a = page_rendering(big, np.random.default_rng([0, 1]))
    b = page_rendering(big, np.random.default_rng([0, 1]))
    c = page_rendering(big, np.random.default_rng([0, 2]))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    for seed in range(20):
        out = page_rendering(big, np.random.default_rng(seed))
        assert out.dtype == np.uint8 and out.ndim == 2
        # the ink ends up page-sized (blur may spread it by a few rows), the aspect ratio is kept
        assert INK_HEIGHT[0] - 3 <= ink_height(out) <= INK_HEIGHT[1] + 6, (seed, ink_height(out))
        assert abs(out.shape[1] / out.shape[0] - big.shape[1] / big.shape[0]) < 0.05 * big.shape[1] / big.shape[0]


def test_page_rendering_never_enlarges_and_keeps_the_signature_readable():
    small = draw_signature(STYLE, np.random.default_rng(0), height=40)
    for seed in range(10):
        out = page_rendering(small, np.random.default_rng(seed))
        assert out.shape == small.shape
        x = preprocess_signature(out)
        assert x.max() > 0.5 and np.corrcoef(x.ravel(), preprocess_signature(small).ravel())[0, 1] > 0.5


def test_page_rendering_changes_ink_darkness_both_ways():
    img = np.full((60, 200), 255, np.uint8)
    img[20:40, 10:190] = 128
    levels = {int(np.median(page_rendering(img, np.random.default_rng(s))[25:35, 20:180])) for s in range(40)}
    assert min(levels) < 110 and max(levels) > 150  # darker and lighter than the input's 128


@pytest.mark.parametrize("bad", [np.zeros((0, 5), np.uint8), np.zeros((5, 5), np.float32), np.zeros((5, 5, 3), np.uint8)])
def test_page_rendering_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="uint8"):
        page_rendering(bad, np.random.default_rng(0))
