"""Small JPEG thumbnails of page images, made while the page is in memory (for the review page)."""
from __future__ import annotations

import math

import cv2
import numpy as np

THUMB_WIDTH = 300  # px: the widest thumbnail
THUMB_QUALITY = 80


def thumbnail(image: np.ndarray, max_width: int = THUMB_WIDTH, max_height: int = 10 * THUMB_WIDTH) -> np.ndarray:
    """``image`` ((H, W) uint8) shrunk by a whole factor (pixel-area averaging, OpenCV's fast path) to at
    most ``max_width`` x ``max_height`` px, aspect ratio kept; a small image is returned as a copy."""
    if not (isinstance(image, np.ndarray) and image.ndim == 2 and image.dtype == np.uint8 and image.size):
        raise ValueError(f"image must be a non-empty (H, W) uint8 array, got {getattr(image, 'shape', None)} "
                         f"{getattr(image, 'dtype', type(image))}")
    if max_width < 1 or max_height < 1:
        raise ValueError(f"max_width and max_height must be >= 1, got {max_width} x {max_height}")
    height, width = image.shape
    factor = max(math.ceil(width / max_width), math.ceil(height / max_height))
    if factor <= 1:
        return image.copy()
    size = (max(1, width // factor), max(1, height // factor))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def thumbnail_jpeg(image: np.ndarray, max_width: int = THUMB_WIDTH, quality: int = THUMB_QUALITY) -> bytes:
    """JPEG bytes of ``thumbnail(image, max_width)``: about 10-20 KB for a scanned page."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    ok, buffer = cv2.imencode(".jpg", thumbnail(image, max_width), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
    return buffer.tobytes()
