"""Scored signature boxes in normalized page coordinates and the geometry on them."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """A region of a page: ``x0 < x1``, ``y0 < y1`` in 0..1 page coordinates, origin top left.

    ``score`` is the detector's confidence in 0..1.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.x0 < self.x1 <= 1.0 and 0.0 <= self.y0 < self.y1 <= 1.0):
            raise ValueError(f"box must satisfy 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got {self}")

    @property
    def area(self) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0)

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Integer pixel bounds ``(x0, y0, x1, y1)`` on an image of ``width`` x ``height``, never empty."""
        px0 = min(int(np.floor(self.x0 * width)), width - 1)
        py0 = min(int(np.floor(self.y0 * height)), height - 1)
        px1 = max(int(np.ceil(self.x1 * width)), px0 + 1)
        py1 = max(int(np.ceil(self.y1 * height)), py0 + 1)
        return px0, py0, min(px1, width), min(py1, height)

    @classmethod
    def from_pixels(cls, x0: float, y0: float, x1: float, y1: float, width: int, height: int,
                    score: float = 1.0) -> Box:
        """A box from pixel bounds on an image of ``width`` x ``height``, clipped to the image."""
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        nx0, nx1 = sorted((min(max(x0 / width, 0.0), 1.0), min(max(x1 / width, 0.0), 1.0)))
        ny0, ny1 = sorted((min(max(y0 / height, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0)))
        return cls(nx0, ny0, nx1, ny1, float(score))


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes, 0 when they do not overlap."""
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def nms(boxes: Sequence[Box], iou_threshold: float = 0.5) -> list[Box]:
    """Greedy non-maximum suppression: the highest-scoring boxes, none overlapping another above the threshold."""
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in 0..1, got {iou_threshold}")
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: b.score, reverse=True):
        if all(iou(box, k) <= iou_threshold for k in kept):
            kept.append(box)
    return kept


def fuse_boxes(views: Sequence[Sequence[Box]], iou_threshold: float = 0.55) -> list[Box]:
    """Weighted box fusion (Solovyev et al. 2021) of the boxes one page got from several views (test-time
    augmentation): boxes of all views, best first, join the first cluster whose fused box they overlap at
    IoU >= ``iou_threshold``; a cluster's box is the score-weighted mean of its members' corners and its
    score the sum of their scores over the number of views (a box only one of four views found keeps a
    quarter of its score). Best first."""
    if not views:
        raise ValueError("need the boxes of at least one view")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    clusters: list[tuple[list[Box], Box]] = []
    for box in sorted((b for view in views for b in view), key=lambda b: b.score, reverse=True):
        for k, (members, fused) in enumerate(clusters):
            if iou(fused, box) >= iou_threshold:
                members.append(box)
                clusters[k] = (members, _weighted_mean(members))
                break
        else:
            clusters.append(([box], box))
    out = [Box(f.x0, f.y0, f.x1, f.y1, min(sum(m.score for m in members) / len(views), 1.0))
           for members, f in clusters]
    return sorted(out, key=lambda b: b.score, reverse=True)


def _weighted_mean(members: Sequence[Box]) -> Box:
    """Score-weighted mean of the members' corners, kept within the members' own range: normalized
    weights need not sum to exactly 1, so six boxes reaching the page edge (y1 = 1.0) could average to
    1.0000000000000002 and fail ``Box``'s bounds check."""
    w = np.array([max(m.score, 1e-6) for m in members])
    corners = np.array([[m.x0, m.y0, m.x1, m.y1] for m in members])
    mean = np.clip((w / w.sum()) @ corners, corners.min(axis=0), corners.max(axis=0))
    return Box(*(float(v) for v in mean), float(w.sum()))


def scale_boxes(boxes: Sequence[Box], sx: float, sy: float) -> list[Box]:
    """Each box's width times ``sx`` and height times ``sy`` about its centre, clipped to the page
    (a detector's calibrated box extent: the labels' convention, measured on held-out pages)."""
    if sx <= 0 or sy <= 0:
        raise ValueError(f"scale factors must be positive, got {sx}, {sy}")
    out = []
    for b in boxes:
        cx, cy, hw, hh = (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2, (b.x1 - b.x0) * sx / 2, (b.y1 - b.y0) * sy / 2
        out.append(Box(max(cx - hw, 0.0), max(cy - hh, 0.0), min(cx + hw, 1.0), min(cy + hh, 1.0), b.score))
    return out
