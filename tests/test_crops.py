"""Tests for transforms/crops.py."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from transforms.boxes import Box
from transforms.crops import crop_region, encode_png


def page() -> np.ndarray:
    image = np.full((200, 100), 255, np.uint8)
    image[50:100, 20:60] = 0
    return image


def test_crop_without_pad_is_the_box() -> None:
    crop = crop_region(page(), Box(0.2, 0.25, 0.6, 0.5), pad=0.0)
    assert crop.shape == (50, 40) and crop.dtype == np.uint8
    assert (crop == 0).all()


def test_pad_grows_and_clips_to_the_page() -> None:
    crop = crop_region(page(), Box(0.2, 0.25, 0.6, 0.5), pad=0.1)
    assert crop.shape == (50 + 2 * 20, 40 + 2 * 10)
    corner = crop_region(page(), Box(0.0, 0.0, 0.125, 0.125), pad=0.25)
    assert corner.shape == (75, 38)  # 0.375 of 200 rows and of 100 columns, rounded out


def test_crop_is_a_copy_and_never_empty() -> None:
    image = page()
    crop = crop_region(image, Box(0.999, 0.999, 1.0, 1.0), pad=0.0)
    assert crop.shape == (1, 1)
    crop[:] = 7
    assert image[-1, -1] == 255


def test_png_round_trip() -> None:
    image = np.random.default_rng(0).integers(0, 256, (31, 17), dtype=np.uint8)
    data = encode_png(image)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), image)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.float32),
                                 np.zeros((0, 4), np.uint8)])
def test_bad_images_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="image must be a non-empty"):
        encode_png(bad)
    with pytest.raises(ValueError, match="image must be a non-empty"):
        crop_region(bad, Box(0, 0, 1, 1))


def test_bad_pad() -> None:
    with pytest.raises(ValueError, match="pad must be in 0..0.5, got -0.1"):
        crop_region(page(), Box(0, 0, 1, 1), pad=-0.1)
