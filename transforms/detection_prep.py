"""Page preprocessing, training targets and box decoding of the learned signature detector (numpy + cv2).

One preprocessing serves training, evaluation and the pipeline: :func:`prepare_page` **stretches** the
whole page to ``S x S`` (no letterbox). The real training pages (Tobacco-800 via Roboflow) were already
stretched to a square, so A4 / letter pipeline pages stretched the same way look like the training
data, and normalized coordinates on the square input are the normalized coordinates on the original
page: decoded boxes need no offset or aspect correction, whatever the page's size.

The model's output is read at stride ``S / h``: a centre heatmap (probabilities after sigmoid) and,
at each cell, the distances from the cell's centre to the left, top, right and bottom box edges in
output cells (TTFNet-style, Liu et al. 2019, arXiv 1909.00700). :func:`encode_targets` builds those
from boxes (elliptical Gaussian centres, Gaussian-weighted regression cells); :func:`decode_boxes`
takes local heatmap peaks, reads their box, and applies NMS.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from transforms.boxes import Box, nms

DEFAULT_INPUT_SIZE = 384
GAUSSIAN_ALPHA = 0.54  # sigma = alpha * side / 6 (TTFNet Sec. 3.2)


def prepare_page(image: np.ndarray, size: int = DEFAULT_INPUT_SIZE) -> np.ndarray:
    """A page ``(H, W) uint8`` (gray, ink dark) stretched to ``(size, size) float32`` in 0..1, ink dark.

    Downscaling uses area interpolation, upscaling linear. ``size`` must be a multiple of 32 in 64..2048.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"page must be an (H, W) uint8 array, got "
                         f"{getattr(image, 'shape', None)} {getattr(image, 'dtype', type(image).__name__)}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"page must be at least 2x2 pixels, got {image.shape}")
    if not 64 <= size <= 2048 or size % 32:
        raise ValueError(f"size must be a multiple of 32 in 64..2048, got {size}")
    shrink = image.shape[0] >= size and image.shape[1] >= size
    resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return resized.astype(np.float32) * np.float32(1.0 / 255.0)


def encode_targets(boxes: Sequence[Box], height: int, width: int,
                   alpha: float = GAUSSIAN_ALPHA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training targets on an output grid of ``height`` x ``width`` cells for the page's ``boxes``.

    Returns ``heat (h, w) float32`` (max over boxes of elliptical Gaussians with sigma = ``alpha`` *
    side / 6, exactly 1 at each box's centre cell), ``ltrb (4, h, w) float32`` (distances in cells from
    each cell's centre to the edges of the box that owns it) and ``weight (h, w) float32`` (the owning
    box's Gaussian inside the box, normalised to sum 1 per box; 0 elsewhere). Where boxes overlap, the
    smaller box owns the cell.
    """
    if height < 1 or width < 1:
        raise ValueError(f"grid must be at least 1x1, got {height}x{width}")
    heat = np.zeros((height, width), np.float32)
    ltrb = np.zeros((4, height, width), np.float32)
    weight = np.zeros((height, width), np.float32)
    cx_grid = (np.arange(width, dtype=np.float32) + 0.5)[None, :]
    cy_grid = (np.arange(height, dtype=np.float32) + 0.5)[:, None]
    for box in sorted(boxes, key=lambda b: b.area, reverse=True):  # smaller boxes written last win
        x0, x1, y0, y1 = box.x0 * width, box.x1 * width, box.y0 * height, box.y1 * height
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        sx, sy = max(alpha * (x1 - x0) / 6, 0.5), max(alpha * (y1 - y0) / 6, 0.5)
        g = np.exp(-((cx_grid - cx) ** 2) / (2 * sx**2) - ((cy_grid - cy) ** 2) / (2 * sy**2)).astype(np.float32)
        ci, cj = min(int(cy), height - 1), min(int(cx), width - 1)
        g[ci, cj] = 1.0
        np.maximum(heat, g, out=heat)
        inside = (cx_grid > x0) & (cx_grid < x1) & (cy_grid > y0) & (cy_grid < y1)
        inside[ci, cj] = True
        w = np.where(inside, g, 0.0)
        w /= w.sum()
        ltrb[0][inside] = np.broadcast_to(cx_grid - x0, inside.shape)[inside]
        ltrb[1][inside] = np.broadcast_to(cy_grid - y0, inside.shape)[inside]
        ltrb[2][inside] = np.broadcast_to(x1 - cx_grid, inside.shape)[inside]
        ltrb[3][inside] = np.broadcast_to(y1 - cy_grid, inside.shape)[inside]
        weight[inside] = w[inside]
    np.maximum(ltrb, 1e-3, out=ltrb)
    return heat, ltrb, weight


def decode_boxes(heat: np.ndarray, ltrb: np.ndarray, score_threshold: float = 0.3, max_boxes: int = 20,
                 nms_iou: float = 0.5) -> list[Box]:
    """Boxes of one page from its ``heat (h, w)`` probabilities and ``ltrb (4, h, w)`` cell distances.

    A candidate is a 3x3 local maximum of ``heat`` with probability >= ``score_threshold`` (the
    ``max_boxes`` highest); its box is the cell centre minus/plus its ltrb distances, clipped to the page,
    in normalized coordinates of the original page (pages are stretched, see :func:`prepare_page`), with
    ``score`` = the peak probability. Greedy NMS at ``nms_iou`` follows.
    """
    if heat.ndim != 2 or ltrb.shape != (4, *heat.shape):
        raise ValueError(f"heat must be (h, w) and ltrb (4, h, w), got {heat.shape} and {ltrb.shape}")
    if not 0.0 <= score_threshold <= 1.0:
        raise ValueError(f"score_threshold must be in 0..1, got {score_threshold}")
    if max_boxes < 1:
        raise ValueError(f"max_boxes must be >= 1, got {max_boxes}")
    h, w = heat.shape
    heat = np.ascontiguousarray(heat, dtype=np.float32)
    peaks = (heat >= cv2.dilate(heat, np.ones((3, 3), np.uint8))) & (heat >= score_threshold)
    ys, xs = np.nonzero(peaks)
    order = np.argsort(-heat[ys, xs], kind="stable")[:max_boxes]
    boxes = []
    for i, j in zip(ys[order], xs[order], strict=True):
        left, top, right, bottom = (float(v) for v in ltrb[:, i, j])
        x0, x1 = max((j + 0.5 - left) / w, 0.0), min((j + 0.5 + right) / w, 1.0)
        y0, y1 = max((i + 0.5 - top) / h, 0.0), min((i + 0.5 + bottom) / h, 1.0)
        if x0 < x1 and y0 < y1:
            boxes.append(Box(float(x0), float(y0), float(x1), float(y1), float(min(max(heat[i, j], 0.0), 1.0))))
    return nms(boxes, nms_iou)
