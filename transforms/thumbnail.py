"""Small JPEG thumbnails of page images, made while the page is in memory (for the review page)."""
from __future__ import annotations

import math

import cv2
import numpy as np

THUMB_WIDTH = 300  # px: the widest thumbnail
THUMB_QUALITY = 80


def thumbnail_size(height: int, width: int, max_width: int = THUMB_WIDTH,
                   max_height: int = 10 * THUMB_WIDTH) -> tuple[int, int]:
    """``(w, h)`` of the thumbnail of an ``height`` x ``width`` image: shrunk by the smallest whole factor
    that fits ``max_width`` x ``max_height`` (aspect ratio kept); the image's own size when it fits."""
    if min(height, width, max_width, max_height) < 1:
        raise ValueError(f"sizes must be >= 1, got image {height} x {width}, limit {max_width} x {max_height}")
    factor = max(1, math.ceil(width / max_width), math.ceil(height / max_height))
    return max(1, width // factor), max(1, height // factor)


def _check(image: np.ndarray, dtype: type) -> None:
    if not (isinstance(image, np.ndarray) and image.ndim == 2 and image.dtype == dtype and image.size):
        raise ValueError(f"image must be a non-empty (H, W) {np.dtype(dtype).name} array, got "
                         f"{getattr(image, 'shape', None)} {getattr(image, 'dtype', type(image))}")


def thumbnail(image: np.ndarray, max_width: int = THUMB_WIDTH, max_height: int = 10 * THUMB_WIDTH) -> np.ndarray:
    """``image`` ((H, W) uint8) shrunk by a whole factor (pixel-area averaging, OpenCV's fast path) to at
    most ``max_width`` x ``max_height`` px, aspect ratio kept; a small image is returned as a copy."""
    _check(image, np.uint8)
    size = thumbnail_size(*image.shape, max_width, max_height)
    if size == (image.shape[1], image.shape[0]):
        return image.copy()
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _check_quality(quality: int) -> None:
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")


def _encode(image: np.ndarray, quality: int) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
    return buffer.tobytes()


def thumbnail_jpeg(image: np.ndarray, max_width: int = THUMB_WIDTH, quality: int = THUMB_QUALITY) -> bytes:
    """JPEG bytes of ``thumbnail(image, max_width)``: about 10-20 KB for a scanned page."""
    _check_quality(quality)
    return _encode(thumbnail(image, max_width), quality)


def thumbnail_jpeg_from_prepared(prepared: np.ndarray, page_shape: tuple[int, int], max_width: int = THUMB_WIDTH,
                                 quality: int = THUMB_QUALITY) -> bytes:
    """The page's thumbnail (``thumbnail_size`` of ``page_shape``) made from the detector's input instead of
    the full page: ``prepared`` is the page stretched to ``(S, S) float32`` in 0..1 (``prepare_page``), a
    tenth of the pixels, so this costs about a tenth of shrinking the 200 DPI page (the review page only
    shows the layout and the boxes at this size)."""
    _check(prepared, np.float32)
    _check_quality(quality)
    size = thumbnail_size(*page_shape, max_width)
    small = cv2.resize(prepared, size, interpolation=cv2.INTER_AREA)
    return _encode(np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8), quality)
