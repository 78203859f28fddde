"""Function-preserving widening of a trained ``CenterDetector`` (Net2WiderNet, Chen et al. 2016, arXiv 1511.05641).

    python -m models.widen_detector --weights models/weights/detector.safetensors --arch centernet_mw --out W.safetensors

A detector of one registered architecture becomes one of a wider architecture with the same neck that
computes the same maps: every new channel of a conv + BatchNorm layer copies an old one (its filter and
its BatchNorm scale, shift and running statistics), and the layers that read it divide the copied
channel's weights among the copies. The copies' incoming filters get a little seeded noise (``noise`` x the
layer's weight std) so that training can pull them apart. The output is a plain state dict for
``python -m models.train_detector --arch NEW --init-from W.safetensors`` (a fine-tune of the wider network).

Only the five backbone stages widen (the FPN neck and the head keep their width): the deep, low-resolution
stages hold most parameters for little compute (``centernet_mw`` has 2.1x ``centernet_m``'s parameters
for about 1.2x its time per page).
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from models.detector import SINGLE_DETECTORS, CenterDetector, DetectorSpec
from models.widen import channel_map, widen_layer

log = logging.getLogger(__name__)

BN_KEYS = ("weight", "bias", "running_mean", "running_var")
STAGES = ("stem", "stage2", "stage3", "stage4", "stage5")  # the backbone in order; each stage's last layer feeds the next
LATERALS = {"stage2": "lat2", "stage3": "lat3", "stage4": "lat4", "stage5": "lat5"}


def detector_spec(arch: str) -> DetectorSpec:
    """The widths of a registered single detector architecture."""
    if arch not in SINGLE_DETECTORS:
        raise ValueError(f"unknown single detector {arch!r}, expected one of {sorted(SINGLE_DETECTORS)}")
    model = SINGLE_DETECTORS[arch]()
    if not isinstance(model, CenterDetector):
        raise ValueError(f"{arch!r} is not a CenterDetector")
    return model.spec


def _layers(state: Mapping[str, torch.Tensor], stage: str) -> list[str]:
    """The conv + BN layers of a backbone stage in ``state``, in order (``down``, then ``block1``, ...)."""
    if stage == "stem":
        return ["stem"]
    blocks = sorted(int(k.split(".")[1][5:]) for k in state
                    if k.startswith(f"{stage}.block") and k.endswith(".conv.weight"))
    return [f"{stage}.down"] + [f"{stage}.block{i}" for i in blocks]


def _check_widths(state: Mapping[str, torch.Tensor], spec: DetectorSpec) -> None:
    if "stem.conv.weight" not in state:
        raise ValueError(f"not a CenterDetector state dict: no 'stem.conv.weight' among {sorted(state)[:4]}...")
    found = tuple(int(state[f"{layer}.conv.weight"].shape[0]) for layer in ("stem", *(f"{s}.down" for s in STAGES[1:])))
    if found != spec.widths:
        raise ValueError(f"the weights have backbone widths {found}, not the given architecture's {spec.widths}")


def widen_detector_state(state: Mapping[str, torch.Tensor], old: DetectorSpec, new: DetectorSpec,
                         seed: int = 0, noise: float = 0.01) -> dict[str, torch.Tensor]:
    """The state dict of a ``new``-spec detector computing what the ``old``-spec ``state`` computes (up to
    ``noise``; exactly, in eval mode, with ``noise=0``). Backbone widths may only grow; the neck must match."""
    _check_widths(state, old)
    if new.neck != old.neck:
        raise ValueError(f"only the backbone widens: neck {old.neck} -> {new.neck}")
    if any(b < a for a, b in zip(old.widths, new.widths, strict=True)):
        raise ValueError(f"widths can only grow: {old.widths} -> {new.widths}")
    rng = np.random.default_rng([seed, 1511])
    out = dict(state)
    in_map: np.ndarray | None = None
    for k, stage in enumerate(STAGES):
        for name in _layers(state, stage):
            out_map = channel_map(old.widths[k], new.widths[k], rng)
            w, _ = widen_layer(state[f"{name}.conv.weight"], None, in_map, out_map, False, noise, rng)
            out[f"{name}.conv.weight"] = w
            for key in BN_KEYS:
                out[f"{name}.bn.{key}"] = state[f"{name}.bn.{key}"].index_select(0, torch.from_numpy(out_map)).clone()
            in_map = out_map
        if stage in LATERALS:  # the lateral 1x1 conv reads the stage's last layer
            lat = f"{LATERALS[stage]}.conv.weight"
            out[lat], _ = widen_layer(state[lat], None, in_map, None, False, noise, rng)
    log.info("detector widened %s -> %s (noise %.3g)", old.widths, new.widths, noise)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", type=Path, required=True, help="the trained detector (safetensors)")
    p.add_argument("--from-arch", default="centernet_m", help="its architecture (default centernet_m)")
    p.add_argument("--arch", required=True, help="the wider registered architecture, e.g. centernet_mw")
    p.add_argument("--out", type=Path, required=True, help="where to write the widened state dict (safetensors)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.01)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        state = widen_detector_state(load_file(str(a.weights)), detector_spec(a.from_arch), detector_spec(a.arch),
                                     a.seed, a.noise)
    except ValueError as e:
        p.error(str(e))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(a.out))
    log.info("wrote %s", a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
