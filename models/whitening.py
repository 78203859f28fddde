"""Within-signer whitening of embeddings, folded into the embedder's last layer.

A signer's genuine signatures vary more along some embedding directions than others. Distances in
the raw embedding weigh all directions alike, so a skilled forgery that differs from the references
along a direction where genuine signatures hardly vary scores no worse than natural variation along
a loose one. Whitening with the within-signer covariance ``C`` of training embeddings (the
Mahalanobis distance of WCCN / LDA scoring) weighs each direction by how stable genuine signatures
are along it. ``C`` is shrunk towards a scaled identity so that directions seen little in training
are not blown up.

The map is linear, so it is folded into the final ``nn.Linear`` of the embedder: the shipped weights
emit whitened embeddings and every consumer (pipeline, evaluation, benchmarks) gets it for free.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def within_signer_covariance(embeddings: np.ndarray, signers: Sequence[str]) -> tuple[np.ndarray, int]:
    """Pooled covariance of ``(N, D)`` embeddings around their signer's mean.

    Signers with a single image carry no within-signer information and are skipped. Returns
    ``(covariance (D, D) float64, number of signers used)``.
    """
    x = np.asarray(embeddings, np.float64)
    if x.ndim != 2 or len(signers) != x.shape[0]:
        raise ValueError(f"embeddings must be (N, D) with one signer per row, got {x.shape} and {len(signers)} signers")
    rows: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(signers):
        rows[s].append(i)
    groups = [idx for idx in rows.values() if len(idx) > 1]
    if not groups:
        raise ValueError("no signer has two or more embeddings: the within-signer covariance is undefined")
    dev = np.concatenate([x[idx] - x[idx].mean(0) for idx in groups])
    return dev.T @ dev / len(dev), len(groups)


def whitening_matrix(covariance: np.ndarray, shrinkage: float) -> np.ndarray:
    """``W (D, D)`` with ``W @ W.T = s * C'^-1``, ``C' = (1 - shrinkage) C + shrinkage * tr(C)/D * I``.

    ``x @ W`` has within-signer covariance ``s * I`` (exactly so with no shrinkage), where the
    scalar ``s = tr(C) / D`` keeps the total within-signer variance, so distances stay on the scale
    the embedder was trained at. Distances after ``W`` are Mahalanobis distances under ``C'``.
    """
    c = np.asarray(covariance, np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"covariance must be square, got shape {c.shape}")
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
    d = c.shape[0]
    scale = float(np.trace(c)) / d
    if scale <= 0:
        raise ValueError("covariance has zero trace: embeddings do not vary within signers")
    shrunk = (1.0 - shrinkage) * c + shrinkage * scale * np.eye(d)
    return np.linalg.cholesky(np.linalg.inv(shrunk)) * np.sqrt(scale)


def fold_into_linear(layer: nn.Linear, w: np.ndarray) -> None:
    """Make ``layer(x)`` return ``old_layer(x) @ w`` (in place): ``A' = w.T A``, ``b' = w.T b``."""
    wt = torch.as_tensor(np.asarray(w).T, dtype=layer.weight.dtype, device=layer.weight.device)
    if wt.shape != (layer.out_features, layer.out_features):
        raise ValueError(f"whitening must be ({layer.out_features}, {layer.out_features}), got {tuple(wt.shape)}")
    with torch.no_grad():
        layer.weight.copy_(wt @ layer.weight)
        if layer.bias is not None:
            layer.bias.copy_(wt @ layer.bias)
