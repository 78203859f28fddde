"""Test-time views, box extent and score threshold of the shipped detector, fitted on held-out train pages.

    python -m models.calibrate_detector --views 384 384f 448 448f [--weights PATH] [--write]
    python -m models.calibrate_detector --views 384 448f@1 ... --weights ENSEMBLE  # @MEMBER: ensembles
    python -m models.calibrate_detector --floor-only --contract-pages 150 --weights PATH [--write]

The detector's weights stay as they are. On the card's held-out train pages (``training.data.
holdout_stems``, put upright as in training when ``training.config.upright``):

1. the page is run through every view (``SIZE`` or ``SIZEf``: stretched to SIZE, ``f`` mirrored
   left-right) and the views' boxes fused (``models.detect.detect_batch``, ``transforms.boxes.fuse_boxes``);
2. ``box_scale`` = the median ratio of the labelled box's width (height) to the width (height) of the
   best-overlapping fused box scoring at least the card's current threshold, over pairs at IoU >= 0.3:
   the labels' convention of how far a signature box reaches, which the regression learnt only roughly;
3. ``score_threshold`` = the best-F1 threshold of the scaled boxes (``train_detector.best_threshold``);
4. with ``--contract-pages N``, no higher than the contract floor: the highest threshold on the same 0.01
   grid that leaves at most ``--max-missed`` of N synthetic contracts (``models.evaluate_pages.
   contract_scores``, ``--contract-kind``, ``--contract-seed``) without any region, so that a threshold
   the few held-out pages set high does not make the pipeline report signers missing on plain contracts
   (the holdout figures are then scored at the lowered threshold).

``--floor-only`` does step 4 alone on the card's own views, box scale and threshold: for a detector
trained on every train page (``train_detector --holdout-fraction 0``), whose settings come from its twin
trained with held-out pages (``train_detector --export --settings-from``).

Prints the holdout figures as JSON; ``--write`` stores views, fusion IoU, box scale, threshold, the
holdout figures and this calibration in the card beside the weights (the validation figures must then
be measured again with ``python -m models.evaluate detection``).
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.data import shared_data_dir
from models.detect import (
    DEFAULT_DETECTOR_PATH,
    DEFAULT_FUSION_IOU,
    detect_pages,
    detector_views,
    load_detector,
    parse_view,
)
from models.detector_data import load_yolo_pages, upright_pages
from models.evaluate_detection import AP_MIN_SCORE, score_predictions
from models.evaluate_pages import PAGE_KINDS, contract_scores
from models.train_detector import best_threshold
from models.weights import write_card
from transforms.boxes import Box, iou, scale_boxes

log = logging.getLogger(__name__)

MATCH_IOU = 0.3  # a fused box and a label at least this close count as the same signature for box_scale


def holdout_pages(card: dict[str, Any], root: Path) -> list[tuple[np.ndarray, list[Box]]]:
    """The card's held-out train pages (full size), upright when the detector was trained upright."""
    training = card.get("training", {})
    stems = set(training.get("data", {}).get("holdout_stems", []))
    if not stems:
        raise ValueError("the detector card names no held-out train pages (training.data.holdout_stems)")
    names, pages = load_yolo_pages(root / "images", root / "labels")
    chosen = [page for name, page in zip(names, pages, strict=True) if name in stems]
    if len(chosen) != len(stems):
        raise ValueError(f"{len(stems) - len(chosen)} held-out pages of the card are missing from {root}")
    return upright_pages(chosen) if training.get("config", {}).get("upright") else chosen


def fit_box_scale(predictions: Sequence[Sequence[Box]], truth: Sequence[Sequence[Box]],
                  min_score: float) -> tuple[tuple[float, float], int]:
    """Median label/prediction width and height ratios over matched pairs (see the module docstring),
    and the number of pairs. Raises when fewer than 10 pairs match."""
    rw, rh = [], []
    for preds, labels in zip(predictions, truth, strict=True):
        kept = [p for p in preds if p.score >= min_score]
        for label in labels:
            best = max(kept, key=lambda p: iou(p, label), default=None)
            if best is not None and iou(best, label) >= MATCH_IOU:
                rw.append((label.x1 - label.x0) / (best.x1 - best.x0))
                rh.append((label.y1 - label.y0) / (best.y1 - best.y0))
    if len(rw) < 10:
        raise ValueError(f"only {len(rw)} held-out boxes matched a detection: too few to fit a box scale")
    return (round(float(np.median(rw)), 3), round(float(np.median(rh)), 3)), len(rw)


def contract_floor(best_scores: Sequence[float], max_missed: int) -> float:
    """The highest threshold on the 0.01 grid (not below 0.05) at which at most ``max_missed`` of the pages
    whose best box scores are ``best_scores`` (0 where none) are left without a region."""
    if max_missed < 0:
        raise ValueError(f"max_missed must be >= 0, got {max_missed}")
    if max_missed >= len(best_scores):
        return 1.0
    kth = sorted(best_scores)[max_missed]  # pages scoring below the threshold are the missed ones
    return max(0.05, float(np.floor(kth * 100 + 1e-9)) / 100)


def floor_only(model: Any, card: dict[str, Any], contracts: dict[str, Any]) -> dict[str, Any]:
    """The card's own views, box scale and threshold, the threshold capped by the contract floor (see the
    module docstring): for a detector that has no held-out pages to fit the rest on (trained on every
    train page, its settings taken from its twin: ``train_detector --settings-from``)."""
    threshold = float(card["score_threshold"])
    best = [b for b, _ in contract_scores(model, card, contracts["kind"], contracts["pages"], contracts["seed"])]
    limit = contract_floor(best, contracts["max_missed"])
    capped = min(threshold, limit)
    return {"score_threshold": capped,
            "contract_floor": {**contracts, "floor": limit, "card_threshold": threshold,
                               "missed_at_card_threshold": sum(b < threshold for b in best),
                               "missed_at_threshold": sum(b < capped for b in best)}}


def calibrate(model: Any, card: dict[str, Any], pages: Sequence[tuple[np.ndarray, list[Box]]], views: list,
              fusion_iou: float = DEFAULT_FUSION_IOU, batch_size: int = 8,
              contracts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The calibrated card entries and the holdout figures for ``views`` (see the module docstring);
    ``contracts``: ``{"pages", "seed", "kind", "max_missed"}`` for the contract floor, or None."""
    trial = {k: v for k, v in card.items() if k != "box_scale"}
    trial.update(views=views, fusion_iou=fusion_iou)
    detector_views(trial)  # checks the views
    predictions = detect_pages(model, [page for page, _ in pages], trial, "cpu", AP_MIN_SCORE, batch_size)
    truth = [boxes for _, boxes in pages]
    (sx, sy), n_pairs = fit_box_scale(predictions, truth, float(card["score_threshold"]))
    scaled = [scale_boxes(p, sx, sy) for p in predictions]
    threshold, _ = best_threshold(scaled, truth)
    floor: dict[str, Any] = {}
    if contracts is not None:
        trial.update(box_scale=[sx, sy], score_threshold=threshold)
        best = [b for b, _ in contract_scores(model, trial, contracts["kind"], contracts["pages"], contracts["seed"])]
        limit = contract_floor(best, contracts["max_missed"])
        floor = {"contract_floor": {**contracts, "floor": limit, "holdout_best_f1_threshold": threshold,
                                    "missed_at_holdout_threshold": sum(b < threshold for b in best)}}
        threshold = min(threshold, limit)
        floor["contract_floor"]["missed_at_threshold"] = sum(b < threshold for b in best)
    return {"views": views, "fusion_iou": fusion_iou, "box_scale": [sx, sy], "score_threshold": threshold,
            "holdout": score_predictions(scaled, truth, threshold), "matched_pairs": n_pairs,
            "holdout_unscaled": score_predictions(predictions, truth, threshold), **floor}


def _write_calibration(weights: Path, card: dict[str, Any], settings: dict[str, Any], argv: Sequence[str] | None,
                       record: dict[str, Any]) -> None:
    """Store ``settings`` in ``card`` with ``card["calibration"]`` (this command, ``record`` and the values the
    settings replace, under ``before``) beside ``weights``; the validation figures are dropped, being
    measured at other settings (re-measure with ``python -m models.evaluate detection``)."""
    previous = {k: card[k] for k in (*settings, "validation") if k in card and k != "fusion_iou"}
    card.update(settings)
    card["calibration"] = {
        "command": "python -m models.calibrate_detector " + shlex.join(sys.argv[1:] if argv is None else argv),
        **record, "before": previous}
    card.pop("validation", None)
    log.info("wrote the calibration into %s; re-measure the validation figures", write_card(weights, card))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--floor-only", action="store_true",
                   help="keep the card's views, box scale and threshold, only cap the threshold by the contract "
                        "floor (for a detector without held-out pages); needs --contract-pages")
    p.add_argument("--views", nargs="+", default=None, help="SIZE or SIZEf (mirrored), e.g. 384 384f 448 448f; SIZE[f]@MEMBER for an ensemble's members")
    p.add_argument("--weights", type=Path, default=DEFAULT_DETECTOR_PATH)
    p.add_argument("--fusion-iou", type=float, default=DEFAULT_FUSION_IOU)
    p.add_argument("--train", type=Path, default=None, help="detection train split (default: ../shared/data/detection/train)")
    p.add_argument("--contract-pages", type=int, default=0,
                   help="cap the threshold by the contract floor on this many synthetic contracts (0: off)")
    p.add_argument("--contract-kind", choices=PAGE_KINDS, default="scanned")
    p.add_argument("--contract-seed", type=int, default=2,
                   help="seed of the floor's contracts (keep it apart from the seeds a gate checks)")
    p.add_argument("--max-missed", type=int, default=3, help="contracts the floor may leave without a region")
    p.add_argument("--write", action="store_true", help="store the calibration in the card beside the weights")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.floor_only == (a.views is not None):
        p.error("give --views (a full calibration on the held-out pages) or --floor-only, not both or neither")
    try:
        views = [parse_view(v) for v in a.views or []]
    except ValueError as e:
        p.error(str(e))
    if a.contract_pages < 0 or a.max_missed < 0:
        p.error(f"--contract-pages and --max-missed must be >= 0, got {a.contract_pages} and {a.max_missed}")
    if a.floor_only and not a.contract_pages:
        p.error("--floor-only caps the threshold by the contract floor: give --contract-pages N")
    contracts = ({"pages": a.contract_pages, "seed": a.contract_seed, "kind": a.contract_kind,
                  "max_missed": a.max_missed} if a.contract_pages else None)
    model, card = load_detector(a.weights)
    if a.floor_only:
        assert contracts is not None
        log.info("capping %s's threshold %s by the contract floor", card["model_version"], card["score_threshold"])
        result = floor_only(model, card, contracts)
        print(json.dumps(result, indent=1))
        if a.write:
            _write_calibration(a.weights, card, {"score_threshold": result["score_threshold"]}, argv, {
                "rule": "views, fusion IoU and box scale as the card had them; score_threshold: the card's, capped "
                        f"by the contract floor (at most {a.max_missed} of {a.contract_pages} synthetic "
                        f"{a.contract_kind} contracts of seed {a.contract_seed} without a region)",
                "contract_floor": result["contract_floor"]})
        return 0
    pages = holdout_pages(card, a.train or shared_data_dir() / "detection" / "train")
    log.info("calibrating %s views %s on %d held-out train pages", card["model_version"], a.views, len(pages))
    result = calibrate(model, card, pages, views, a.fusion_iou, contracts=contracts)
    print(json.dumps(result, indent=1))
    if a.write:
        settings = {k: result[k] for k in ("views", "fusion_iou", "box_scale", "score_threshold", "holdout")}
        _write_calibration(a.weights, card, settings, argv, {
            "rule": "box_scale: median label/detection width and height ratios over held-out pairs at IoU >= "
                    f"{MATCH_IOU} (detections at the previous threshold); score_threshold: max F1 at IoU >= 0.5 "
                    "of the scaled boxes on the held-out train pages (0.05..0.95 by 0.01)"
                    + (f", capped by the contract floor (at most {a.max_missed} of {a.contract_pages} synthetic "
                       f"{a.contract_kind} contracts of seed {a.contract_seed} without a region)" if contracts else ""),
            "matched_pairs": result["matched_pairs"], "holdout_unscaled": result["holdout_unscaled"],
            **({"contract_floor": result["contract_floor"]} if contracts else {})})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
