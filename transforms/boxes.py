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
