"""Verifier-feature loss for the cleaner: a cleaned crop should *embed* like its clean target.

PSNR against the clean target is a poor guide to what the verifier needs (a cleaner that gains more
dB can still make noisy-query EER worse). This loss feeds the cleaned crop and its clean target
through the frozen shipped SigNet and penalises the distance of the two embeddings, the very distance
the pipeline scores.

The network input is built as ``transforms.preprocess.preprocess_signature`` builds it (crop to the
ink, centre on a canvas, invert, resize, scale), but differentiably and with the *target's* geometry
(``ink_geometry``: box, threshold, scale) for both images, so gradients reach the generator. The hard
Otsu mask becomes a sigmoid around the target's threshold; background flattening is left out (clean
targets and cleaned crops sit on white paper).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from transforms.preprocess import INPUT_SIZE, InkGeometry, canvas_layout

SOFT_MASK_WIDTH = 8.0  # grey levels: the ink mask's sigmoid goes from 0.12 to 0.88 over +-2 x this


def soft_preprocess(image: torch.Tensor, geometry: InkGeometry, size: tuple[int, int] = INPUT_SIZE) -> torch.Tensor:
    """``(1, H, W)`` in [-1, 1] (ink dark) -> ``(1, size[0], size[1])`` network input in 0..1 (ink
    bright), differentiable in ``image``, laid out by ``geometry`` (the clean target's)."""
    if image.dim() != 3 or image.shape[0] != 1:
        raise ValueError(f"expected a (1, H, W) tensor, got {tuple(image.shape)}")
    y0, y1, x0, x1 = geometry.box
    if not (0 <= y0 < y1 <= image.shape[1] and 0 <= x0 < x1 <= image.shape[2]):
        raise ValueError(f"ink box {geometry.box} outside the image {tuple(image.shape[1:])}")
    grey = (image[:, y0:y1, x0:x1] + 1.0) * 127.5
    mask = torch.sigmoid((geometry.threshold + 0.5 - grey) / SOFT_MASK_WIDTH)
    ink = ((255.0 - grey) * mask / geometry.scale).clamp(0.0, 1.0)
    ch, cw, oy, ox = canvas_layout(y1 - y0, x1 - x0, size)
    canvas = F.pad(ink, (ox, cw - (x1 - x0) - ox, oy, ch - (y1 - y0) - oy))
    return F.interpolate(canvas.unsqueeze(0), size=size, mode="area")[0].clamp(0.0, 1.0)


class FeatureLoss(nn.Module):
    """Mean embedding distance ``||E(x) - E(t)||`` of cleaned crops and their clean targets under a
    frozen embedder ``E`` (the shipped SigNet: whitened, so these are the pipeline's distances)."""

    def __init__(self, embedder: nn.Module) -> None:
        super().__init__()
        self.embedder = embedder.eval().float()
        self.embedder.requires_grad_(False)
        self._targets: dict[object, torch.Tensor] = {}  # key -> embedding of a target (frozen E, fixed image)

    def train(self, mode: bool = True) -> FeatureLoss:  # the embedder stays in eval mode (BatchNorm, dropout)
        super().train(mode)
        self.embedder.eval()
        return self

    def forward(self, cleaned: list[torch.Tensor], targets: list[torch.Tensor],
                geometries: list[InkGeometry], keys: list[object] | None = None) -> torch.Tensor:
        """``cleaned``/``targets``: ``(1, H_i, W_i)`` tensors in [-1, 1], pixel-aligned pairs; one
        geometry (of the target) per pair. ``keys``: one hashable id per target (for example its index
        in the pair pool); a target's embedding is then computed once and reused, since the embedder
        is frozen and the same key must always name the same target and geometry."""
        if not (len(cleaned) == len(targets) == len(geometries)) or not cleaned:
            raise ValueError(f"need matching non-empty lists, got {len(cleaned)}, {len(targets)}, {len(geometries)}")
        if keys is not None and len(keys) != len(targets):
            raise ValueError(f"need one key per target, got {len(keys)} keys for {len(targets)} targets")
        x = torch.stack([soft_preprocess(c, g) for c, g in zip(cleaned, geometries, strict=True)])
        return (self.embedder(x) - self._target_embeddings(targets, geometries, keys)).norm(dim=1).mean()

    def _target_embeddings(self, targets: list[torch.Tensor], geometries: list[InkGeometry],
                           keys: list[object] | None) -> torch.Tensor:
        todo = [i for i in range(len(targets)) if keys is None or keys[i] not in self._targets]
        with torch.no_grad():
            fresh = self.embedder(torch.stack([soft_preprocess(targets[i], geometries[i]) for i in todo])) if todo \
                else torch.empty(0)
        if keys is None:
            return fresh
        for row, i in enumerate(todo):
            self._targets[keys[i]] = fresh[row]
        return torch.stack([self._targets[k] for k in keys])
