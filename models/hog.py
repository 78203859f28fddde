"""A fixed (untrained) embedder of the signature's shape: histograms of oriented gradients (HOG).

``GradientHistogram`` lays a ``grid`` of cells on the bounding box of the ink of a preprocessed
signature (``transforms.preprocess.preprocess_signature``: ink bright, 0..1, centred on its canvas) and
histograms the gradient orientation of each cell (unsigned, ``bins`` bins, weighted by the gradient
magnitude, after a 3x3 Gaussian blur). Each cell's histogram is normalised to sum 1 and square-rooted
(the Hellinger map), so the Euclidean distance of two outputs compares their stroke directions cell by
cell, whatever the pen's darkness. The output is multiplied by ``scale`` (a buffer saved with the
weights), which sets the feature's weight where it joins SigNet's embedding in an
``EmbedderEnsemble``: their squared distances add.

It has no trainable parameter: what it measures does not depend on the writers a network saw, which is
why it complements SigNet on writers of another collection (model card ``gradient_histogram``).
Batched torch operations only, so it runs inside the same RunInference model on CPU or GPU.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.signet import INPUT_SHAPE, cell_grid

INK_LEVEL = 12 / 255  # a pixel of the preprocessed input brighter than this is ink (sets the box)
CELL_EPS = 1e-3  # added to a cell's gradient sum: a cell without strokes (rounding noise only) stays near 0


def _gaussian_3x3(sigma: float) -> torch.Tensor:
    """cv2.getGaussianKernel(3, sigma) as a separable 3x3 kernel."""
    g = torch.tensor([math.exp(-1.0 / (2 * sigma**2)), 1.0, math.exp(-1.0 / (2 * sigma**2))], dtype=torch.float32)
    g = g / g.sum()
    return torch.outer(g, g)


class GradientHistogram(nn.Module):
    """``(N, 1, 155, 220)`` preprocessed signatures -> ``(N, grid_h * grid_w * bins)`` HOG features."""

    def __init__(self, grid: tuple[int, int] = (4, 6), bins: int = 12, blur_sigma: float = 0.8,
                 scale: float = 1.0) -> None:
        super().__init__()
        self.grid = cell_grid(grid)
        if bins < 2:
            raise ValueError(f"bins must be >= 2, got {bins}")
        if blur_sigma <= 0:
            raise ValueError(f"blur_sigma must be > 0, got {blur_sigma}")
        self.bins = int(bins)
        self.embedding_dim = self.grid[0] * self.grid[1] * self.bins
        self.register_buffer("scale", torch.tensor(float(scale)))
        sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
        # fixed, not part of the weights file; 3-D so that model.to(memory_format=channels_last) leaves it alone
        kernels = torch.stack([_gaussian_3x3(blur_sigma), sobel_x, sobel_x.T])
        self.register_buffer("kernels", kernels, persistent=False)

    @staticmethod
    def ink_box(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per image ``(y0, y1, x0, x1)`` (each ``(N,)`` int64, end exclusive) of the pixels above
        ``INK_LEVEL``; the whole frame where there are none."""
        ink = x[:, 0] > INK_LEVEL
        rows, cols = ink.any(2), ink.any(1)
        h, w = rows.shape[1], cols.shape[1]
        has = rows.any(1)
        y0 = torch.where(has, rows.int().argmax(1), 0)
        y1 = torch.where(has, h - rows.flip(1).int().argmax(1), h)
        x0 = torch.where(has, cols.int().argmax(1), 0)
        x1 = torch.where(has, w - cols.flip(1).int().argmax(1), w)
        return y0, y1, x0, x1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 155, 220) float32`` in 0..1 (ink bright) -> ``(N, embedding_dim) float32``."""
        if x.ndim != 4 or tuple(x.shape[1:]) != INPUT_SHAPE:
            raise ValueError(f"input must be (N, {', '.join(map(str, INPUT_SHAPE))}), got {tuple(x.shape)}")
        x = x.float().contiguous()
        n, _, h, w = x.shape
        gy, gx = self.grid
        y0, y1, x0, x1 = self.ink_box(x)
        kernels = self.kernels.unsqueeze(1)
        blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernels[:1])
        grads = F.conv2d(F.pad(blurred, (1, 1, 1, 1), mode="reflect"), kernels[1:])
        dx, dy = grads[:, 0], grads[:, 1]
        magnitude = torch.hypot(dx, dy)
        angle = torch.remainder(torch.atan2(dy, dx), math.pi)
        orient = (angle * (self.bins / math.pi)).long().clamp_(0, self.bins - 1)
        ys = torch.arange(h, device=x.device).unsqueeze(0)
        xs = torch.arange(w, device=x.device).unsqueeze(0)
        cy = torch.div((ys - y0[:, None]) * gy, (y1 - y0)[:, None], rounding_mode="floor")
        cx = torch.div((xs - x0[:, None]) * gx, (x1 - x0)[:, None], rounding_mode="floor")
        inside = (((cy >= 0) & (cy < gy))[:, :, None] & ((cx >= 0) & (cx < gx))[:, None, :])
        cell = cy.clamp(0, gy - 1)[:, :, None] * gx + cx.clamp(0, gx - 1)[:, None, :]
        index = (cell * self.bins + orient).reshape(n, -1)
        weight = (magnitude * inside).reshape(n, -1)
        hist = torch.zeros(n, self.embedding_dim, dtype=weight.dtype, device=x.device).scatter_add_(1, index, weight)
        hist = hist.view(n, gy * gx, self.bins)
        hist = hist / (hist.sum(-1, keepdim=True) + CELL_EPS)
        return torch.sqrt(hist).flatten(1) * self.scale
