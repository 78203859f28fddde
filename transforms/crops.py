"""Cutting a region out of a page image and encoding it as PNG bytes."""
from __future__ import annotations

import cv2
import numpy as np

from transforms.boxes import Box


def _check_gray(image: np.ndarray) -> None:
    if image.ndim != 2 or image.dtype != np.uint8 or image.size == 0:
        raise ValueError(f"image must be a non-empty (H, W) uint8 array, got shape {image.shape} "
                         f"dtype {image.dtype}")


# Margin added around a region's box, as a share of the page's width and height. 0.02 (the first value)
# took in the printed caption under the signature line and text above a signature 55-135 px tall at
# 200 dpi; validation queries signed into synthetic contracts scored better at 0.01 (born-digital pages,
# two renderings: 21.7 -> 20.0 / 20.9 % EER; scanned: 42.9 -> 40.4 %); 0.005 scored worse with the
# cleaner's line removal (19.1 against 16.5 % born-digital), no margin at all level on scanned pages
# (40.0 %) while leaving nothing for boxes that fall short of a stroke (card cyclegan_default.json:
# remove_lines_and_crop_pad).
CROP_PAD = 0.01


def crop_region(image: np.ndarray, box: Box, pad: float = CROP_PAD) -> np.ndarray:
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
