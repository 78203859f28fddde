"""Assemble trained SigNet runs into one ensemble embedder, calibrate it and export it with a card.

    python -m models.ensemble --run runs/s6 --run runs/s8 --out models/weights/signet_default.safetensors \
        [--storage float16] [--attach NAME=JSON ...]

Each run's best checkpoint (or its last, with ``--checkpoint last``) is loaded and whitened on its own training split exactly as
``models.train_signet --export`` does; the members' embeddings are concatenated
(``models.signet.EmbedderEnsemble``), so the ensemble's squared distance is the sum of theirs. The
runs must share one writer split (manifest, split seed, validation fraction, excluded datasets; members
of one recipe differ by ``--seed`` with the same ``--split-seed``), so that the
calibration on the validation writers never sees a member's training writer.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from models.data import Split, read_manifest
from models.export import (
    VALIDATION_PROTOCOL,
    calibrate,
    calibration_rule,
    data_card,
    fit_whitening,
    genuine_training_images,
    hardware,
    read_attachments,
    write_weights_and_card,
)
from models.signet import EMBEDDERS, EmbedderEnsemble, build_embedder
from models.train_signet import TrainConfig, load_config
from models.verification import REFERENCE_SCORES

log = logging.getLogger(__name__)

STORAGE = {"float32": None, "float16": torch.float16}
SPLIT_KEYS = ("manifest", "writer_split_seed", "val_fraction", "exclude_datasets", "references_per_writer")


CHECKPOINTS = ("best", "last")


def ensemble_arch(member_arch: str, n: int) -> str:
    """The registered name of ``n`` members of ``member_arch`` (e.g. ``signet_s4x2``)."""
    name = f"{member_arch}x{n}"
    if name not in EMBEDDERS:
        raise ValueError(f"no registered ensemble of {n} {member_arch!r} members (known: {sorted(EMBEDDERS)})")
    return name


def check_same_split(configs: Sequence[TrainConfig]) -> None:
    """Members must share the writer split: same manifest, split seed, fraction, excluded datasets, K
    (the training seed may differ: ``--split-seed``)."""
    for key in SPLIT_KEYS:
        values = {json.dumps(getattr(c, key)) for c in configs}
        if len(values) > 1:
            raise ValueError(f"runs differ in {key}: {sorted(values)}; an ensemble needs one writer split")
    if len({c.arch for c in configs}) > 1:
        raise ValueError(f"runs mix architectures {sorted({c.arch for c in configs})}")


def round_through(model: nn.Module, dtype: torch.dtype | None) -> None:
    """Round every floating parameter and buffer through ``dtype`` in place (what storing in it does)."""
    if dtype is None:
        return
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point():
                t.copy_(t.to(dtype).to(t.dtype))


def load_member(run: Path, cfg: TrainConfig, checkpoint: str = "best") -> nn.Module:
    """The ``checkpoint`` ('best' or 'last') weights of the run at ``run`` (config ``cfg``), in eval mode."""
    model = build_embedder(cfg.arch)
    model.load_state_dict(load_file(str(run / f"{checkpoint}.safetensors")))
    return model.eval()


def member_record(run: Path, cfg: TrainConfig, checkpoint: str, whitening: dict[str, Any]) -> dict[str, Any]:
    """The card's record of a member: its run, command, config, checkpoint step, training time and the
    checkpoint's validation figures (from ``best.json``, or for 'last' the history's entry at the last step)."""
    state = json.loads((run / "last.json").read_text())
    if checkpoint == "best":
        chosen = json.loads((run / "best.json").read_text())
    else:  # last.json is the run's state; its validation is the history's entry at the last step
        chosen = {"step": state["step"], "validation": next(
            (h for h in reversed(state.get("history", [])) if h.get("step") == state["step"]), {})}
    return {"run": str(run), "command": state.get("command"), "config": asdict(cfg),
            "checkpoint": checkpoint, "checkpoint_step": chosen.get("step"), "steps_done": state["step"],
            "train_seconds": round(state["train_seconds"], 1),
            "member_validation": {k: chosen.get("validation", {}).get(k) for k in ("eer", "auc", "eer_random")},
            "whitening": whitening, "train_excluded_datasets": cfg.train_exclude_datasets}


def assemble(runs: Sequence[Path], checkpoint: str = "best") -> tuple[nn.Module, list[TrainConfig], list[dict[str, Any]], list, Split]:
    """Load and whiten each run's ``checkpoint`` ('best': lowest validation EER; 'last': the final step, for
    fine-tunes whose aim the clean validation EER does not measure). Returns the ensemble, the configs, the
    member records, the manifest rows and the first run's split (the validation writers all members share)."""
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
    configs = [load_config(r) for r in runs]
    check_same_split(configs)
    first = configs[0]  # same manifest, excluded datasets, split seed and fraction for every member
    samples = [s for s in read_manifest(first.manifest) if s.dataset not in set(first.exclude_datasets)]
    splits: dict[tuple[str, ...], Split] = {}
    training_images: dict[tuple[tuple[str, ...], str], tuple[list, Any]] = {}  # by train_exclude_datasets and ink mask
    members, records = [], []
    for run, cfg in zip(runs, configs, strict=True):
        key = tuple(sorted(cfg.train_exclude_datasets))
        if key not in splits:
            splits[key] = cfg.writer_split(samples)
        images_key = (key, cfg.ink_mask)
        model = load_member(run, cfg, checkpoint)
        whitening: dict[str, Any] = {"applied": False}
        if cfg.whiten:
            if images_key not in training_images:
                training_images[images_key] = genuine_training_images(splits[key].train, cfg.ink_mask)
            whitening = fit_whitening(model, *training_images[images_key], cfg.whiten_shrinkage)
        members.append(model)
        records.append(member_record(run, cfg, checkpoint, whitening))
    ensemble = EmbedderEnsemble(members)
    ensemble.eval()
    return ensemble, configs, records, samples, splits[tuple(sorted(first.train_exclude_datasets))]


def export_ensemble(runs: Sequence[Path], export_to: Path, storage: str, command: str,
                    attach: dict[str, Any] | None = None, rule: str = "centroid", checkpoint: str = "best") -> dict[str, Any]:
    """Assemble ``runs``, round to the storage type, calibrate on the shared validation writers with the
    ``writer_distances`` rule ``rule``, write weights + card."""
    if storage not in STORAGE:
        raise ValueError(f"storage must be one of {sorted(STORAGE)}, got {storage!r}")
    torch.set_num_threads(1)
    model, configs, records, samples, split = assemble(runs, checkpoint)
    arch = ensemble_arch(configs[0].arch, len(runs))
    round_through(model, STORAGE[storage])  # calibrate exactly the weights that will be loaded
    cfg = configs[0]
    cal, figures, had_forgeries = calibrate(model, split.val, cfg.references_per_writer, rule)
    return write_weights_and_card(model, arch, export_to, {
        "storage_dtype": storage,
        "ensemble": f"models.signet.EmbedderEnsemble: each member's {checkpoint} checkpoint, whitened on its training "
                    "split (models.whitening), embeddings concatenated; assembled by models.ensemble",
        "members": records,
        "calibration": cal.to_card() | {"calibrated_on": calibration_rule(had_forgeries), "max_far": 0.01,
                                        "max_frr": 0.01},
        "validation": figures | {"references_per_writer": cfg.references_per_writer, "protocol": VALIDATION_PROTOCOL},
        "data": data_card(cfg, samples, split),
        "training": {"hardware": hardware(), "train_seconds": round(sum(r["train_seconds"] for r in records), 1)},
        "evaluations": attach or {},
        "command": command,
    }, STORAGE[storage], rule)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.ensemble", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", required=True, type=Path, help="a models.train_signet run folder (2+)")
    p.add_argument("--out", required=True, type=Path, help="weights path (.safetensors); the card goes beside it")
    p.add_argument("--storage", choices=sorted(STORAGE), default="float16",
                   help="dtype of the stored tensors (float16 halves the file; calibration uses the rounded weights)")
    p.add_argument("--attach", action="append", default=[], metavar="NAME=JSON",
                   help="add an evaluation JSON (models.evaluate --json) to the card under evaluations.NAME")
    p.add_argument("--score", choices=REFERENCE_SCORES, default="centroid",
                   help="writer-level score the ensemble is calibrated with and the pipeline uses: distance to "
                        "the references' mean (centroid) or to the nearest reference (nearest)")
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="best",
                   help="each run's best (lowest validation EER) or last checkpoint")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    command = "python -m models.ensemble " + " ".join(sys.argv[1:] if argv is None else argv)
    attach = read_attachments(a.attach)
    card = export_ensemble(a.run, a.out, a.storage, command, attach, a.score, a.checkpoint)
    print(json.dumps({"weights": str(a.out), "model_version": card["model_version"],
                      "validation": card["validation"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
