"""The one inference function shared by evaluation and the pipeline's ModelHandler."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from transforms.preprocess import INPUT_SIZE, preprocess_signature


def embed_batch(model: nn.Module, batch: np.ndarray | torch.Tensor, device: str | torch.device = "cpu") -> np.ndarray:
    """Embed preprocessed signatures: ``(N, 155, 220)`` or ``(N, 1, 155, 220)`` float32 -> ``(N, D) float32``.

    Runs under ``torch.inference_mode`` on ``device`` (the model must already live there) and
    returns CPU numpy. The caller puts the model in eval mode (``load_embedder`` does).
    """
    x = torch.as_tensor(batch, dtype=torch.float32)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, *INPUT_SIZE):
        raise ValueError(f"batch must be (N, {INPUT_SIZE[0]}, {INPUT_SIZE[1]}) or (N, 1, ...), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        return np.zeros((0, int(getattr(model, "embedding_dim", 0))), np.float32)
    with torch.inference_mode():
        out = model(x.to(device))
    return out.float().cpu().numpy()


def embed_images(model: nn.Module, images: Sequence[np.ndarray], batch_size: int = 32,
                 device: str | torch.device = "cpu") -> np.ndarray:
    """Preprocess then embed ``(H, W) uint8`` crops (ink dark) in batches -> ``(N, D) float32``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    pre = [preprocess_signature(im) for im in images]
    return embed_preprocessed(model, pre, batch_size, device)


def embed_preprocessed(model: nn.Module, arrays: Sequence[np.ndarray], batch_size: int = 32,
                       device: str | torch.device = "cpu") -> np.ndarray:
    """Embed already preprocessed ``(155, 220) float32`` arrays in batches -> ``(N, D) float32``."""
    chunks = [embed_batch(model, np.stack(arrays[i : i + batch_size]).astype(np.float32), device)
              for i in range(0, len(arrays), batch_size)]
    if not chunks:
        return np.zeros((0, int(getattr(model, "embedding_dim", 0))), np.float32)
    return np.concatenate(chunks)
