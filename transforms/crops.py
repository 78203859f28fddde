"""Cutting a region out of a page image and encoding it as PNG bytes."""
from __future__ import annotations

import cv2
import numpy as np

from transforms.boxes import Box


def _check_gray(image: np.ndarray) -> None:
    if image.ndim != 2 or image.dtype != np.uint8 or image.size == 0:
        raise ValueError(f"image must be a non-empty (H, W) uint8 array, got shape {image.shape} "
                         f"dtype {image.dtype}")


def crop_region(image: np.ndarray, box: Box, pad: float = 0.02) -> np.ndarray:
    """The part of ``image`` ((H, W) uint8, ink dark) under ``box``, grown by ``pad`` (a fraction of the
    page's width and height) on every side and clipped to the page; a new ``(h, w) uint8`` array, never empty."""
    _check_gray(image)
    if not 0.0 <= pad <= 0.5:
        raise ValueError(f"pad must be in 0..0.5, got {pad}")
    grown = Box(max(box.x0 - pad, 0.0), max(box.y0 - pad, 0.0), min(box.x1 + pad, 1.0), min(box.y1 + pad, 1.0),
                box.score)
    height, width = image.shape
    x0, y0, x1, y1 = grown.to_pixels(width, height)
    return image[y0:y1, x0:x1].copy()


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of a ``(H, W) uint8`` gray image."""
    _check_gray(image)
    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"PNG encoding failed for an image of shape {image.shape}")
    return buffer.tobytes()
