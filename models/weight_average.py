"""Stochastic weight averaging of one training run (SWA, Izmailov et al. 2018, arXiv 1803.05407; taken densely
along the usual schedule as SWAD does for unseen domains, Cha et al. 2021, arXiv 2102.08604).

``RunningAverage`` keeps the mean of a module's parameters over the snapshots it is given; the training loop
feeds it every few steps from some step on, and the average is saved beside the checkpoints so a resumed run
goes on averaging. The averaged parameters do not fit the BatchNorm statistics the running model gathered,
so ``recompute_batchnorm`` measures them again on training images. Nothing here touches the training
trajectory: a run with averaging on follows the same steps as one without.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

log = logging.getLogger(__name__)


class RunningAverage:
    """The mean of a module's parameters over ``n`` snapshots (``update``); buffers are not averaged."""

    def __init__(self) -> None:
        self.mean: dict[str, torch.Tensor] = {}
        self.n = 0

    def update(self, model: nn.Module) -> None:
        """Add one snapshot of ``model``'s parameters; every snapshot must have the first one's names and shapes."""
        params = {k: p.detach() for k, p in model.named_parameters()}
        if self.n:
            self._check(params)
        self.n += 1
        if self.n == 1:
            self.mean = {k: p.to(torch.float32, copy=True).contiguous() for k, p in params.items()}
            return
        for k, p in params.items():
            self.mean[k] += (p.to(torch.float32) - self.mean[k]) / self.n

    def apply_to(self, model: nn.Module) -> nn.Module:
        """Copy the averaged parameters into ``model`` (its buffers untouched); returns ``model``."""
        if not self.n:
            raise ValueError("no snapshot has been averaged yet")
        params = dict(model.named_parameters())
        self._check(params)
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(self.mean[k])
        return model

    def _check(self, params: dict[str, torch.Tensor]) -> None:
        """Raise, naming the difference, unless ``params`` has the averaged names and shapes."""
        if params.keys() != self.mean.keys():
            raise ValueError("the module's parameters differ from the averaged ones in name: "
                             f"{sorted(set(params) ^ set(self.mean))[:5]}")
        shapes = [f"{k} {tuple(p.shape)} != {tuple(self.mean[k].shape)}" for k, p in params.items()
                  if p.shape != self.mean[k].shape]
        if shapes:
            raise ValueError(f"the module's parameters differ from the averaged ones in shape: {shapes[:3]}")

    def save(self, path: str | Path) -> None:
        """The mean as safetensors, ``n`` in the metadata."""
        save_file({k: v.contiguous() for k, v in self.mean.items()}, str(path), metadata={"n": str(self.n)})

    @classmethod
    def load(cls, path: str | Path) -> RunningAverage:
        from safetensors import safe_open

        avg = cls()
        avg.mean = load_file(str(path))
        with safe_open(str(path), "pt") as f:
            avg.n = int((f.metadata() or {}).get("n", "0"))
        if avg.n < 1:
            raise ValueError(f"{path} holds no count of averaged snapshots (metadata 'n')")
        return avg


def recompute_batchnorm(model: nn.Module, batches: Iterable[np.ndarray]) -> nn.Module:
    """Measure ``model``'s BatchNorm running statistics again over ``batches`` (``(N, H, W) float32`` each, the
    network's input): the mean of the per-batch statistics (each batch counts the same), in training mode
    without gradients; returns the model in eval mode. Batches are read one at a time, so a caller can convert
    a large image cache batch by batch. A model without BatchNorm comes back unchanged."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return model.eval()
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative mean over the batches
    model.train()
    seen = 0
    try:
        with torch.no_grad():
            for batch in batches:
                x = torch.from_numpy(np.asarray(batch, dtype=np.float32)[:, None])
                model(x.contiguous(memory_format=torch.channels_last))
                seen += len(x)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
    if not seen:
        raise ValueError("recompute_batchnorm needs at least one image")
    log.info("BatchNorm statistics of %d layers measured again on %d images", len(norms), seen)
    return model.eval()
