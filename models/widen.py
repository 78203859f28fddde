"""Function-preserving widening of a ResnetGenerator (Net2WiderNet, Chen et al. 2016, arXiv 1511.05641).

A trained ``ngf`` generator becomes an ``ngf' > ngf`` one that computes the same image: every new
channel copies an old one (its incoming filters and bias), and the layer after it divides the
copied channel's outgoing weights among the copies. Instance norm (no affine, no running stats)
keeps copies identical, and the residual stream shares one channel map across all blocks, so
``x + block(x)`` stays exact. Copies would get identical gradients for ever, so the copies'
incoming filters get a little seeded noise (``noise`` x the layer's weight std): the widened
network then starts within a hair of the trained one and can grow apart from it.

    widen_generator_state(state, new_ngf, seed=0, noise=0.01) -> state of the wider generator

``channel_map`` and ``widen_layer`` are the two steps any conv network's widening is made of
(``models.widen_detector`` widens the detector with them).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import torch

log = logging.getLogger(__name__)

STEM = "model.stem_conv"


def generator_ngf(state: Mapping[str, torch.Tensor]) -> int:
    """The base width of a ResnetGenerator state dict (its stem's output channels)."""
    key = f"{STEM}.weight"
    if key not in state:
        raise ValueError(f"not a ResnetGenerator state dict: no {key!r} among {sorted(state)[:4]}...")
    return int(state[key].shape[0])


def _n_blocks(state: Mapping[str, torch.Tensor]) -> int:
    return sum(1 for k in state if k.startswith("model.res") and k.endswith(".block.conv1.weight"))


def channel_map(old: int, new: int, rng: np.random.Generator) -> np.ndarray:
    """``new`` indices into ``old`` channels: the old ones in order, then seeded random copies."""
    if new < old:
        raise ValueError(f"can only widen: {old} channels -> {new}")
    return np.concatenate([np.arange(old), rng.integers(0, old, new - old)]).astype(np.int64)


def widen_layer(weight: torch.Tensor, bias: torch.Tensor | None, in_map: np.ndarray | None, out_map: np.ndarray | None,
                transposed: bool, noise: float, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One conv layer: outputs copied by ``out_map``, inputs gathered by ``in_map`` and divided by
    their copy counts; noise on the incoming filters of the copied (new) output channels."""
    w = weight.detach().clone()
    out_dim, in_dim = (1, 0) if transposed else (0, 1)
    std = float(w.std())
    if in_map is not None:
        counts = torch.from_numpy(np.bincount(in_map, minlength=w.shape[in_dim])[in_map]).to(w.dtype)
        w = w.index_select(in_dim, torch.from_numpy(in_map))
        shape = [1] * w.dim()
        shape[in_dim] = -1
        w = w / counts.view(shape)
    if out_map is not None:
        old_out = w.shape[out_dim]
        w = w.index_select(out_dim, torch.from_numpy(out_map))
        bias = bias.detach().index_select(0, torch.from_numpy(out_map)) if bias is not None else None
        extra = w.narrow(out_dim, old_out, len(out_map) - old_out)
        if noise > 0 and extra.numel():
            extra.add_(torch.from_numpy(rng.normal(0.0, noise * std, tuple(extra.shape))).to(w.dtype))
    elif bias is not None:
        bias = bias.detach().clone()
    return w.contiguous(), bias


def widen_generator_state(state: Mapping[str, torch.Tensor], new_ngf: int, seed: int = 0,
                          noise: float = 0.01) -> dict[str, torch.Tensor]:
    """The state dict of a ``new_ngf`` ResnetGenerator computing what ``state`` computes (up to
    ``noise``; exactly with ``noise=0``). Same number of residual blocks."""
    ngf = generator_ngf(state)
    if new_ngf < ngf:
        raise ValueError(f"new_ngf must be >= the state's ngf {ngf}, got {new_ngf}")
    rng = np.random.default_rng([seed, 1511])
    m0 = channel_map(ngf, new_ngf, rng)
    m1 = channel_map(2 * ngf, 2 * new_ngf, rng)
    stream = channel_map(4 * ngf, 4 * new_ngf, rng)  # the residual stream: one map for every block
    u1 = channel_map(2 * ngf, 2 * new_ngf, rng)
    u2 = channel_map(ngf, new_ngf, rng)
    plan: list[tuple[str, np.ndarray | None, np.ndarray | None, bool]] = [
        (STEM, None, m0, False), ("model.down1_conv", m0, m1, False), ("model.down2_conv", m1, stream, False)]
    n_blocks = _n_blocks(state)
    for i in range(1, n_blocks + 1):
        inner = channel_map(4 * ngf, 4 * new_ngf, rng)
        plan += [(f"model.res{i}.block.conv1", stream, inner, False), (f"model.res{i}.block.conv2", inner, stream, False)]
    plan += [("model.up1_conv", stream, u1, True), ("model.up2_conv", u1, u2, True), ("model.head_conv", u2, None, False)]
    out: dict[str, torch.Tensor] = {}
    for name, in_map, out_map, transposed in plan:
        w, b = widen_layer(state[f"{name}.weight"], state.get(f"{name}.bias"), in_map, out_map, transposed, noise, rng)
        out[f"{name}.weight"] = w
        if b is not None:
            out[f"{name}.bias"] = b
    left = sorted(set(state) - set(out))
    if left:
        raise ValueError(f"widen_generator_state does not know the layers {left}")
    log.info("generator widened ngf %d -> %d (%d residual blocks, noise %.3g)", ngf, new_ngf, n_blocks, noise)
    return out
