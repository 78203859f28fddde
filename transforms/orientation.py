"""Page orientation from its text lines, and putting a labelled page upright.

The real detector training pages come as a data-augmentation export: many are turned by a quarter turn
and tilted by up to about 15 degrees, and the labelled box of a tilted signature is the bounding box of
its tilted rectangle, much taller than the signature (a 0.23 x 0.055 box tilted by 12 degrees becomes
0.23 x 0.10). Trained on those boxes a detector learns to draw boxes too tall for upright pages.
:func:`estimate_orientation` finds the turn and tilt that make the page's text lines horizontal
(projection profiles: the row sums of a binarized page vary most when its lines are horizontal) and
:func:`upright_page` undoes them, shrinking each box back to the upright rectangle that the tilted
bounding box came from. Text lines cannot tell a page from the same page upside down: the result is
upright or turned by 180 degrees.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from transforms.boxes import Box

WORK_SIZE = 320  # px: the profiles are computed on the page shrunk to WORK_SIZE x WORK_SIZE
MAX_TILT = 20.0  # degrees searched either way
COARSE_STEP, FINE_STEP = 1.0, 0.25


@dataclass(frozen=True)
class Orientation:
    """``quarter_turns`` counter-clockwise (``np.rot90``, 0 or 1) then a rotation by ``angle`` degrees
    (counter-clockwise, OpenCV's convention) make the text lines horizontal. ``contrast``: how much sharper
    the best profile is than the best profile of the other quarter (> 1; near 1 = unsure)."""

    quarter_turns: int
    angle: float
    contrast: float


def _profile_sharpness(ink: np.ndarray, angle: float) -> float:
    """Variance of the row sums of ``ink`` ((N, N) float32, ink 1) rotated by ``angle`` degrees."""
    n = ink.shape[0]
    m = cv2.getRotationMatrix2D((n / 2.0, n / 2.0), angle, 1.0)
    return float(cv2.warpAffine(ink, m, (n, n), flags=cv2.INTER_LINEAR).sum(axis=1).var())


def _best_angle(ink: np.ndarray) -> tuple[float, float]:
    """The tilt in ``[-MAX_TILT, MAX_TILT]`` with the sharpest row profile (coarse, then fine), and that sharpness."""
    coarse = max(np.arange(-MAX_TILT, MAX_TILT + 1e-6, COARSE_STEP), key=lambda a: _profile_sharpness(ink, a))
    fine = np.arange(coarse - COARSE_STEP, coarse + COARSE_STEP + 1e-6, FINE_STEP)
    scores = {float(a): _profile_sharpness(ink, float(a)) for a in fine}
    angle = max(scores, key=scores.__getitem__)
    return angle, scores[angle]


def estimate_orientation(page: np.ndarray, quarter_turns: int | None = None) -> Orientation:
    """Turn and tilt that make the text lines of ``page`` ((H, W) uint8, ink dark) horizontal.

    ``quarter_turns`` (0 or 1): the turn is known (from labels, say): only the tilt is searched."""
    if quarter_turns not in (None, 0, 1):
        raise ValueError(f"quarter_turns must be None, 0 or 1, got {quarter_turns!r}")
    if not isinstance(page, np.ndarray) or page.ndim != 2 or page.dtype != np.uint8 or min(page.shape) < 8:
        raise ValueError(f"page must be an (H, W) uint8 array of at least 8 px, got "
                         f"{getattr(page, 'shape', None)} {getattr(page, 'dtype', type(page))}")
    small = cv2.resize(page, (WORK_SIZE, WORK_SIZE), interpolation=cv2.INTER_AREA)
    _, binary = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    ink = (binary > 0).astype(np.float32)
    upright = _best_angle(ink)
    turned = _best_angle(np.ascontiguousarray(np.rot90(ink)))
    if quarter_turns is None:
        quarter_turns = 1 if turned[1] > upright[1] else 0
    (angle, best), other = (turned, upright[1]) if quarter_turns else (upright, turned[1])
    return Orientation(quarter_turns, angle, best / max(other, 1e-9))


def label_orientation(page: np.ndarray, boxes: Sequence[Box], tall: float = 1.3) -> Orientation:
    """:func:`estimate_orientation` of a labelled page, the quarter turn checked against its signature
    boxes: signatures are written along the line, so boxes whose median height/width exceeds ``tall`` on
    the page as given mean the page lies on its side (turn 1), wide ones that it does not (turn 0);
    boxes near square leave the text lines' verdict. Text lines alone mistake the turn of many sparse,
    stretched letter pages (on the detection train split: 24 of 132 pages with tall boxes put right)."""
    if not boxes:
        return estimate_orientation(page)
    aspect = float(np.median([(b.y1 - b.y0) / max(b.x1 - b.x0, 1e-9) for b in boxes]))
    if aspect > tall:
        return estimate_orientation(page, quarter_turns=1)
    if aspect < 1.0 / tall:
        return estimate_orientation(page, quarter_turns=0)
    return estimate_orientation(page)


def _untilt_size(width: float, height: float, angle: float) -> tuple[float, float]:
    """The upright ``(w, h)`` whose rectangle, tilted by ``angle`` degrees, has the bounding box
    ``(width, height)``: ``width = w|cos| + h|sin|``, ``height = w|sin| + h|cos|`` solved for w, h.
    Where that has no positive solution (a near-square box), the box is kept as it is."""
    c, s = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
    det = c * c - s * s
    if det <= 0.3:
        return width, height
    w, h = (c * width - s * height) / det, (c * height - s * width) / det
    if w <= 0.2 * width or h <= 0.2 * height:
        return width, height
    return w, h


def upright_page(page: np.ndarray, boxes: Sequence[Box], orientation: Orientation) -> tuple[np.ndarray, list[Box]]:
    """Undo ``orientation`` on a square ``(S, S) uint8`` page and its normalized boxes.

    The page is turned by ``quarter_turns`` and rotated by ``angle`` about its centre (corners filled
    with the paper's grey); each box's centre moves with the page, and its size becomes the upright
    rectangle its tilted bounding box came from (:func:`_untilt_size`), clipped to the page.
    """
    if page.ndim != 2 or page.shape[0] != page.shape[1]:
        raise ValueError(f"page must be square (S, S), got shape {page.shape}")
    size = page.shape[0]
    turned = np.ascontiguousarray(np.rot90(page, orientation.quarter_turns))
    if orientation.quarter_turns % 2:  # np.rot90 (counter-clockwise): (x, y) -> (y, 1 - x)
        boxes = [Box(b.y0, 1.0 - b.x1, b.y1, 1.0 - b.x0, b.score) for b in boxes]
    m = cv2.getRotationMatrix2D((size / 2.0, size / 2.0), orientation.angle, 1.0)
    paper = int(np.percentile(turned, 90))
    out = cv2.warpAffine(turned, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=paper)
    moved = []
    for b in boxes:
        cx, cy = m[:, :2] @ np.array([(b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2]) * size + m[:, 2]
        w, h = _untilt_size((b.x1 - b.x0) * size, (b.y1 - b.y0) * size, orientation.angle)
        x0, y0, x1, y1 = max(cx - w / 2, 0.0), max(cy - h / 2, 0.0), min(cx + w / 2, size), min(cy + h / 2, size)
        if x1 - x0 >= 1 and y1 - y0 >= 1:
            moved.append(Box.from_pixels(x0, y0, x1, y1, size, size, b.score))
    return out, moved
