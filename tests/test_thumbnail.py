from __future__ import annotations

import cv2
import numpy as np
import pytest

from transforms.thumbnail import thumbnail, thumbnail_jpeg


def test_thumbnail_shrinks_by_a_whole_factor_keeping_the_aspect_ratio() -> None:
    page = np.full((2200, 1700), 255, np.uint8)
    page[1000:1100, 200:800] = 0
    small = thumbnail(page, 300)
    assert small.shape == (366, 283)  # factor 6
    assert small[1050 // 6, 500 // 6] == 0 and small[10, 10] == 255


def test_small_images_are_copied_not_grown() -> None:
    img = np.zeros((40, 100), np.uint8)
    out = thumbnail(img, 300)
    assert out.shape == img.shape and out is not img


def test_tall_pages_respect_max_height() -> None:
    assert thumbnail(np.zeros((9000, 300), np.uint8), 300, 1000).shape == (1000, 33)


def test_thumbnail_jpeg_decodes_to_the_thumbnail() -> None:
    page = np.full((1100, 850), 255, np.uint8)
    page[500:600, 100:400] = 0
    data = thumbnail_jpeg(page)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert decoded.shape == (366, 283) and decoded[183, 83] < 60 and decoded[20, 20] > 230


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.float32), np.zeros((0, 5), np.uint8)])
def test_bad_images_raise(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        thumbnail(bad)


def test_bad_quality_raises() -> None:
    with pytest.raises(ValueError, match="quality"):
        thumbnail_jpeg(np.zeros((10, 10), np.uint8), quality=0)


def test_thumbnail_from_the_detector_input_has_the_page_thumbnail_size() -> None:
    from transforms.detection_prep import prepare_page
    from transforms.thumbnail import thumbnail_jpeg_from_prepared, thumbnail_size

    page = np.full((2200, 1700), 255, np.uint8)
    page[1000:1300, 200:900] = 0
    data = thumbnail_jpeg_from_prepared(prepare_page(page, 384), page.shape)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert decoded.shape == thumbnail(page).shape == (366, 283) and thumbnail_size(2200, 1700) == (283, 366)
    direct = thumbnail(page).astype(int)
    assert np.abs(decoded.astype(int) - direct).mean() < 6  # the same picture, from a tenth of the pixels
    with pytest.raises(ValueError, match="float32"):
        thumbnail_jpeg_from_prepared(page, page.shape)
    with pytest.raises(ValueError, match="sizes"):
        thumbnail_size(0, 10)
