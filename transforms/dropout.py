"""Colour dropout: a colour page to gray with red ink (seals, stamps, red form print) taken out.

Scanners for forms drop a colour out by scanning in that colour's light; a colour scan can do the same
afterwards. :func:`drop_red` turns an ``(H, W, 3) uint8`` RGB image into the ``(H, W) uint8`` gray image
the rest of the pipeline reads: the luminance (ITU-R BT.601, as gray rendering weighs the channels), with
every clearly red pixel pushed to paper. A pixel's redness is its red chroma ``R - max(G, B)``: paper,
black, gray and blue or black ballpoint ink have none (or a negative one), so they keep their luminance
exactly; where black ink lies over red ink the product is dark in every channel and stays ink. Between
``low`` and ``high`` chroma the pixel moves to paper in proportion, so the antialiased edges of a seal go
with it.

A signature written in red ink is dropped too: the option is off in the pipeline unless asked for
(``run_pipeline.py --colour_dropout red``).
"""
from __future__ import annotations

import cv2
import numpy as np

DROPOUT_COLOURS = ("none", "red")
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B
RED_CHROMA = (24, 64)  # R - max(G, B): at or below the first nothing moves, at or above the second to paper
DARK_INK = 64  # with ``spread``: pixels at or below this luminance (black ink) are judged by their own colour


def _check_rgb(rgb: np.ndarray) -> None:
    if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8):
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {getattr(rgb, 'shape', None)} "
                         f"{getattr(rgb, 'dtype', type(rgb))}")


def luminance(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3) uint8`` RGB -> ``(H, W) uint8`` gray by the BT.601 weights (OpenCV's rounding)."""
    _check_rgb(rgb)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)  # BT.601 in fixed point


def red_chroma(rgb: np.ndarray) -> np.ndarray:
    """``R - max(G, B)`` per pixel as ``(H, W) uint8``, saturating at 0 (blue, green and gray ink have none)."""
    _check_rgb(rgb)
    red, green, blue = cv2.split(rgb)
    return cv2.subtract(red, cv2.max(green, blue))


def drop_red(rgb: np.ndarray, low: int = RED_CHROMA[0], high: int = RED_CHROMA[1], spread: int = 0) -> np.ndarray:
    """Gray ``(H, W) uint8`` of an RGB page with its red ink pushed to paper (see the module docstring).

    ``spread`` > 0 lets a pixel lighter than black ink (``DARK_INK``) take the highest red chroma within
    ``spread`` pixels, for the rims JPEG leaves; measured on the validation writers with 1 it lowered the
    colour-scan page path's EER 34.3 -> 33.9 % but raised the image files' 14.3 -> 16.1 % (it also pales
    the edges of strokes that cross the seal), so the pipeline keeps 0."""
    if not 0 <= low < high <= 255:
        raise ValueError(f"need 0 <= low < high <= 255, got low={low} high={high}")
    if spread < 0:
        raise ValueError(f"spread must be >= 0, got {spread}")
    gray = luminance(rgb)
    chroma = red_chroma(rgb)
    if spread > 0:  # JPEG keeps colour at half resolution: a seal's rim is dark but barely red
        near = cv2.dilate(chroma, np.ones((2 * spread + 1, 2 * spread + 1), np.uint8))
        chroma = np.where(gray > DARK_INK, near, chroma)  # ink as dark as black ink keeps its own chroma
    rows, cols = np.nonzero(chroma > low)  # red pixels are few on most pages: work on them alone
    if rows.size:
        weight = np.minimum((chroma[rows, cols].astype(np.float32) - low) / float(high - low), 1.0)
        values = gray[rows, cols].astype(np.float32)
        gray[rows, cols] = np.rint(values + weight * (255.0 - values)).astype(np.uint8)
    return gray


def to_gray(rgb: np.ndarray, dropout: str = "none") -> np.ndarray:
    """An RGB page as the pipeline's gray page: plain luminance (``none``) or :func:`drop_red` (``red``)."""
    if dropout not in DROPOUT_COLOURS:
        raise ValueError(f"dropout must be one of {DROPOUT_COLOURS}, got {dropout!r}")
    return luminance(rgb) if dropout == "none" else drop_red(rgb)
