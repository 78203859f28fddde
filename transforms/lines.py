"""Ruled signature lines erased from a crop, strokes that cross them kept.

A signature cut from a page sits on its signature line, which runs from one side of the crop to the
other. ``remove_ruled_lines`` finds near-horizontal straight segments longer than a share of the crop's
width (a Hough transform on the Otsu ink mask) and erases the ink within a few pixels of
them, except next to ink outside that band: where a pen stroke crosses or touches the line, the
crossing is kept. Erased pixels take the paper's grey level, not white, so no light stripe is left on
grey paper.
"""
from __future__ import annotations

import cv2
import numpy as np

from transforms.preprocess import MIN_CONTRAST, otsu_mask

# A line must be at least this share of the crop's width; the pipeline's crops reach past the signature
# on both sides, so its signature line runs across (almost) all of it. Measured on the validation writers'
# queries signed into synthetic contracts, shares 0.4 / 0.6 / 0.8 scored alike (cleaner card:
# remove_lines_and_crop_pad).
MIN_LENGTH = 0.6
# Largest |dy/dx| of a ruled line: scans tilt pages by a degree or two (0.035), flourishes more.
MAX_SLOPE = 0.05
# Shortest horizontal ink run (half-resolution px) kept for the line search: a line of slope MAX_SLOPE,
# one px thick, still runs 1 / 0.05 = 20 px (10 at half resolution) along each row.
RUN = 5
# A ruled line runs out of the crop at a side, within this share of the width: the pipeline's crops end
# inside the signature line's length. Straight pen flourishes of tightly cropped signatures end inside
# it: with this rule none of the 1276 validation signature files has a "line" (25 without it: flourishes,
# and the dark grounds of ink-bright images before those were turned round), against 98.5 % of the
# born-digital and 87.5 % of the scanned page crops of the validation queries.
EDGE_REACH = 0.02
# Ink within this many px above or below a found line belongs to the line (its thickness, a slight
# curve of a scanned line), unless a stroke outside that band reaches it.
BAND = 3


def _check(gray: np.ndarray) -> None:
    if not isinstance(gray, np.ndarray) or gray.ndim != 2 or gray.dtype != np.uint8 or gray.size == 0:
        raise ValueError(f"image must be a non-empty (H, W) uint8 array, got "
                         f"{getattr(gray, 'shape', type(gray).__name__)} {getattr(gray, 'dtype', '')}")


def find_ruled_lines(ink: np.ndarray, min_length: float = MIN_LENGTH,
                     max_slope: float = MAX_SLOPE) -> list[tuple[int, int, int, int]]:
    """Ruled-line segments ``(x0, y0, x1, y1)`` (``x0 <= x1``) of ``ink`` (``(H, W)`` bool): straight,
    near-horizontal (|slope| <= ``max_slope``), at least ``min_length`` of its width long, and running out
    at its left or right side (within ``EDGE_REACH`` of the width).

    Searched at half resolution (each 2 x 2 block is ink where any of its pixels is, so thin lines stay
    whole), on the ink in horizontal runs (an opening), by a probabilistic Hough transform in half-degree
    steps: about a quarter of the work at full resolution. Coordinates are full-resolution pixels.
    """
    if not 0.0 < min_length <= 1.0:
        raise ValueError(f"min_length must be in (0, 1], got {min_length}")
    h, w = ink.shape
    small = cv2.resize(ink.astype(np.uint8) * 255, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA) > 0
    sw = small.shape[1]
    length = max(int(min_length * sw), 8)
    runs = cv2.morphologyEx(small.astype(np.uint8) * 255, cv2.MORPH_OPEN, np.ones((1, RUN), np.uint8))
    segs = cv2.HoughLinesP(runs, 1, np.pi / 360, threshold=max(int(0.8 * length), 8), minLineLength=length,
                           maxLineGap=max(2, sw // 100))
    reach = EDGE_REACH * w + 2
    out = []
    for x0, y0, x1, y1 in ([] if segs is None else (2 * segs.reshape(-1, 4) + 1).tolist()):
        if x1 < x0:
            x0, y0, x1, y1 = x1, y1, x0, y0
        x0, x1 = max(x0 - 1, 0), min(x1 + 1, w - 1)  # a half-resolution pixel covers two
        if abs(y1 - y0) <= max_slope * (x1 - x0) and (x0 <= reach or x1 >= w - 1 - reach):
            out.append((x0, min(y0, h - 1), x1, min(y1, h - 1)))
    return out


def remove_ruled_lines(gray: np.ndarray, min_length: float = MIN_LENGTH) -> np.ndarray:
    """``(H, W) uint8`` crop -> a copy with its ruled lines (``find_ruled_lines``) erased to the paper's
    level, strokes crossing them kept. Ink may be dark on light paper or, as in some tablet captures,
    light on a dark ground (then the crop is turned round for the work and back). A crop without lines
    comes back unchanged."""
    _check(gray)
    lo, hi = np.percentile(gray, [1, 99])
    if hi - lo < MIN_CONTRAST or min(gray.shape) < 8:  # the preprocessing's "no ink" spread, 1st-99th percentile
        return gray.copy()
    ink = otsu_mask(gray)
    if np.count_nonzero(ink) > gray.size / 2:  # the dark class is the ground: bright ink
        turned = 255 - gray
        return 255 - _erase_lines(turned, otsu_mask(turned), min_length)
    return _erase_lines(gray, ink, min_length)


def _erase_lines(gray: np.ndarray, ink: np.ndarray, min_length: float) -> np.ndarray:
    """``remove_ruled_lines`` on an ink-dark ``gray`` whose Otsu ink mask is ``ink``."""
    out = gray.copy()
    lines = np.zeros(gray.shape, np.uint8)
    for x0, y0, x1, y1 in find_ruled_lines(ink, min_length):
        cv2.line(lines, (x0, y0), (x1, y1), 255, 1)
    if not lines.any():
        return out
    band = cv2.dilate(lines, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 2 * BAND + 1))) > 0
    # ink outside the band, grown vertically into it: strokes that cross or touch the line
    strokes = cv2.dilate((ink & ~band).astype(np.uint8),
                         cv2.getStructuringElement(cv2.MORPH_RECT, (3, 2 * BAND + 3))) > 0
    erase = band & ink & ~strokes
    paper = np.median(gray[~ink]) if (~ink).any() else 255.0
    out[erase] = np.maximum(out[erase], np.uint8(paper))
    return out
