"""Separately trained detectors of one architecture combined into one ensemble file with a model card.

    python -m models.combine_detectors --weights A.safetensors B.safetensors [C.safetensors] \
        --out E.safetensors [--views 320 320f 384@1 384f@1 ...]
    python -m models.calibrate_detector --weights E.safetensors --views ... --write
    python -m models.evaluate detection --weights E.safetensors --images DIR --labels DIR

Member i's tensors are stored under ``members.<i>.`` (``models.detector.DetectorEnsemble``, arch
``<arch>xN``); each view of the card names the member that runs it (``models.detect``), and the boxes
of all views of all members are fused as one detector's views are. The members must agree on
architecture, input size, output stride and preprocessing, and must share their held-out train pages
(``training.data.holdout_stems``: same seed and data) and their upright setting, so that
``models.calibrate_detector`` fits the ensemble's box extent and threshold on pages no member trained on.

The card starts uncalibrated: ``views`` from ``--views`` or, by default, every member's own card views run
by that member; no ``box_scale``; ``score_threshold`` the members' mean (the starting point of the
calibration's box matching); the members' model versions, parameter counts, training commands, steps, lineage
and holdout figures under ``members``.

``--average`` makes a weight average instead (a uniform *model soup*, Wortsman et al. 2022, arXiv 2203.05482):
one network of the members' architecture whose every floating-point tensor (BatchNorm running statistics
included) is the members' mean, integer buffers taken from the first member. It costs what one member costs
at inference. Averaging only makes sense for fine-tunes of one and the same start, which the cards cannot
prove: the caller vouches for it (the card records the members' lineage). Views default to the first
member's own, without member numbers.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.detect import DEFAULT_FUSION_IOU, detector_views, load_detector, parse_view, save_detector
from models.detector import build_detector, ensemble_name

log = logging.getLogger(__name__)

SHARED_KEYS = ("arch", "input_size", "output_stride", "preprocessing", "nms_iou", "max_boxes")
CARRIED_KEYS = ("output_stride", "preprocessing", "nms_iou", "max_boxes", "decode", "design")


def holdout_setting(card: dict[str, Any]) -> tuple[tuple[str, ...], bool]:
    """The held-out train pages and the upright setting a detector's card records."""
    training = card.get("training", {})
    stems = tuple(sorted(training.get("data", {}).get("holdout_stems", [])))
    if not stems:
        raise ValueError(f"detector {card.get('model_version')!r} names no held-out train pages "
                         "(training.data.holdout_stems): its ensemble could not be calibrated")
    return stems, bool(training.get("config", {}).get("upright", False))


def check_members(cards: Sequence[dict[str, Any]]) -> None:
    """Members must agree on ``SHARED_KEYS`` and on their held-out pages; raises naming the difference."""
    if len(cards) < 2:
        raise ValueError(f"an ensemble needs at least two detectors, got {len(cards)}")
    for key in SHARED_KEYS:
        values = [card.get(key) for card in cards]
        if len(set(map(repr, values))) > 1:
            raise ValueError(f"the detectors differ in {key}: {values}")
    settings = [holdout_setting(card) for card in cards]
    if len(set(settings)) > 1:
        versions = [card.get("model_version") for card in cards]
        raise ValueError(f"the detectors {versions} were trained with different held-out train pages or upright "
                         "settings (training seed or data): no pages are held out from all of them")


def default_views(cards: Sequence[dict[str, Any]]) -> list[list]:
    """Every member's own views, each run by that member: ``[size, flipped, member]``."""
    return [[size, flipped, i] for i, card in enumerate(cards) for size, flipped, _ in detector_views(card)]


def combine(models: Sequence[nn.Module], cards: Sequence[dict[str, Any]],
            views: Sequence[Sequence] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The ensemble of ``models`` (with their ``cards``) and its uncalibrated card (module docstring)."""
    check_members(cards)
    arch = ensemble_name(cards[0]["arch"], len(cards))
    ensemble = build_detector(arch)
    for member, model in zip(ensemble.members, models, strict=True):
        member.load_state_dict(model.state_dict(), strict=True)
    ensemble.eval()
    views = [list(view) for view in (views if views is not None else default_views(cards))]
    card = _card(ensemble, models, cards, views, "ensemble",
                 "models.detector.DetectorEnsemble: each view runs the member it names; the boxes of all "
                 "views are fused as one detector's views are (models.detect.detect_batch)")
    for size, flipped, member in detector_views(card):
        if member >= len(cards):
            raise ValueError(f"view {[size, flipped, member]} names member {member}; there are {len(cards)}")
    return ensemble, card


def average(models: Sequence[nn.Module], cards: Sequence[dict[str, Any]],
            views: Sequence[Sequence] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The weight average of ``models`` (a uniform model soup) and its uncalibrated card (module docstring)."""
    check_members(cards)
    states = [m.state_dict() for m in models]
    keys = set(states[0])
    for i, state in enumerate(states[1:], start=1):
        if set(state) != keys or any(state[k].shape != states[0][k].shape for k in keys):
            raise ValueError(f"detector {cards[i].get('model_version')!r} has other tensors than "
                             f"{cards[0].get('model_version')!r}: weights of different networks cannot be averaged")
    soup = build_detector(cards[0]["arch"])
    soup.load_state_dict({k: torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype)
                          if v.is_floating_point() else v.clone() for k, v in states[0].items()}, strict=True)
    soup.eval()
    views = [list(view) for view in (views if views is not None
                                     else [[size, flipped] for size, flipped, _ in detector_views(cards[0])])]
    card = _card(soup, models, cards, views, "soup",
                 f"uniform weight average of the {len(cards)} members (every floating-point tensor, BatchNorm "
                 "statistics included; integer buffers from the first), one network at inference "
                 "(models.combine_detectors --average)")
    for size, flipped, member in detector_views(card):
        if member:
            raise ValueError(f"view {[size, flipped, member]} names member {member}, but an average is one network")
    return soup, card


def _card(model: nn.Module, models: Sequence[nn.Module], cards: Sequence[dict[str, Any]], views: list[list],
          kind: str, how: str) -> dict[str, Any]:
    """The uncalibrated card of a combination ``model`` (``kind`` 'ensemble' or 'soup', described by ``how``)."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    arch = cards[0]["arch"] if kind == "soup" else ensemble_name(cards[0]["arch"], len(cards))
    tag = f"soup{len(cards)}-" if kind == "soup" else ""
    return {
        "arch": arch, "model_version": f"detector-{arch}-{tag}{digest.hexdigest()[:8]}",
        "input_size": int(cards[0]["input_size"]), **{k: cards[0][k] for k in CARRIED_KEYS if k in cards[0]},
        "score_threshold": round(sum(float(c["score_threshold"]) for c in cards) / len(cards), 2),
        "views": views, "fusion_iou": float(cards[0].get("fusion_iou", DEFAULT_FUSION_IOU)),
        kind: how,
        "members": [{"model_version": c["model_version"], "parameters": sum(p.numel() for p in m.parameters()),
                     "training_command": c.get("training", {}).get("command"),
                     "steps": c.get("training", {}).get("steps"), "lineage": c.get("lineage"),
                     "holdout": c.get("holdout")} for m, c in zip(models, cards, strict=True)],
        "training": {key: cards[0]["training"][key] for key in ("seed", "config", "data") if key in cards[0]["training"]},
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", type=Path, nargs="+", required=True, help="the members' safetensors (cards beside)")
    p.add_argument("--out", type=Path, required=True, help="the ensemble's safetensors (card written beside)")
    p.add_argument("--views", nargs="+", default=None,
                   help="SIZE[f][@MEMBER] views (default: every member's own card views; with --average the "
                        "first member's)")
    p.add_argument("--average", action="store_true",
                   help="average the members' weights into one network (a uniform model soup) instead of an ensemble")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        views = [parse_view(v) for v in a.views] if a.views else None
    except ValueError as e:
        p.error(str(e))
    loaded = [load_detector(path) for path in a.weights]
    ensemble, card = (average if a.average else combine)([m for m, _ in loaded], [c for _, c in loaded], views)
    card["command"] = "python -m models.combine_detectors " + " ".join(
        ["--weights", *map(str, a.weights), "--out", str(a.out)] + (["--views", *a.views] if a.views else [])
        + (["--average"] if a.average else []))
    save_detector(ensemble, card, a.out)
    log.info("wrote %s (%s, %d views); calibrate it with models.calibrate_detector --weights %s",
             a.out, card["model_version"], len(card["views"]), a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
