"""``python -m models.evaluate detection --images DIR --labels DIR [--weights PATH] [--json OUT] [--errors OUT]``.

Scores the shipped (or given) detector on a YOLO-format folder: label files matched by image stem,
``0 cx cy w h`` normalized, an empty file meaning no signature. Pages go through the same
``prepare_views`` and ``detect_batch`` as the pipeline (``models.detect.detect_pages``) (with the card's test-time views). Precision, recall and F1 count boxes at the
card's shipped ``score_threshold`` (IoU >= 0.5, greedy matching); AP@0.5 uses every box down to
``AP_MIN_SCORE``. The figures count the errors by kind (``transforms.detection_metrics.page_errors``);
``--errors`` writes each of them with its page, box, IoU and score, to look at.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch import nn

from transforms.boxes import Box
from transforms.detection_metrics import (
    FALSE_POSITIVE_KINDS,
    MISS_KINDS,
    DetectionError,
    detection_scores,
    page_errors,
)
from transforms.yolo import load_yolo_labels

log = logging.getLogger(__name__)

AP_MIN_SCORE = 0.02  # lowest box score kept for the precision-recall curve
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


def yolo_pairs(images_dir: Path, labels_dir: Path) -> list[tuple[Path, Path]]:
    """(image, label file) pairs of a YOLO folder, sorted by image name; a missing label file raises."""
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    for folder in (images_dir, labels_dir):
        if not folder.is_dir():
            raise ValueError(f"folder not found: {folder}")
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {images_dir}")
    pairs = []
    for image in images:
        label = labels_dir / f"{image.stem}.txt"
        if not label.is_file():
            raise ValueError(f"no label file {label} for image {image}")
        pairs.append((image, label))
    return pairs


def _batches(pairs: Sequence[tuple[Path, Path]], batch_size: int) -> Iterator[tuple[list[np.ndarray], list[list[Box]]]]:
    for start in range(0, len(pairs), batch_size):
        pages, truth = [], []
        for image_path, label_path in pairs[start:start + batch_size]:
            image = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise ValueError(f"cannot read image {image_path}")
            pages.append(image)
            truth.append(load_yolo_labels(label_path))
        yield pages, truth


def predict_folder(model: nn.Module, card: dict[str, Any], pairs: Sequence[tuple[Path, Path]], device: str = "cpu",
                   batch_size: int = 8) -> tuple[list[list[Box]], list[list[Box]], float]:
    """Predictions (every box >= ``AP_MIN_SCORE``), true boxes, and seconds spent, over ``pairs``
    (read ``batch_size`` pages at a time)."""
    from models.detect import detect_pages

    predictions: list[list[Box]] = []
    truth: list[list[Box]] = []
    start = time.perf_counter()
    for pages, labels in _batches(pairs, batch_size):
        predictions += detect_pages(model, pages, card, device, AP_MIN_SCORE, batch_size)
        truth += labels
    return predictions, truth, time.perf_counter() - start


def score_predictions(predictions: Sequence[Sequence[Box]], truth: Sequence[Sequence[Box]],
                      score_threshold: float) -> dict[str, Any]:
    """precision / recall / f1 at IoU >= 0.5 and ``score_threshold``, ap50, and the counts."""
    s = detection_scores(predictions, truth, 0.5, score_threshold)
    return {"precision": round(s.precision, 4), "recall": round(s.recall, 4), "f1": round(s.f1, 4),
            "ap50": round(s.ap, 4), "true_positives": s.true_positives, "false_positives": s.false_positives,
            "false_negatives": s.false_negatives, "n_images": s.pages, "n_boxes": sum(len(t) for t in truth)}


def _error_row(error: DetectionError) -> dict[str, Any]:
    b = error.box
    return {"box": [round(v, 4) for v in (b.x0, b.y0, b.x1, b.y1)], "kind": error.kind,
            "best_iou": round(error.best_iou, 3), "score": round(error.score, 3)}


def error_report(pairs: Sequence[tuple[Path, Path]], predictions: Sequence[Sequence[Box]],
                 truth: Sequence[Sequence[Box]], score_threshold: float) -> dict[str, Any]:
    """The errors at IoU 0.5 and ``score_threshold``: counts by kind (``transforms.detection_metrics.page_errors``)
    and, for each page with an error, its false positives and misses (boxes in 0..1 page coordinates)."""
    fp_kinds = dict.fromkeys(FALSE_POSITIVE_KINDS, 0)
    miss_kinds = dict.fromkeys(MISS_KINDS, 0)
    pages = []
    for (image, _), page_predictions, page_truth in zip(pairs, predictions, truth, strict=True):
        false_positives, misses = page_errors(page_predictions, page_truth, 0.5, score_threshold)
        for error in false_positives:
            fp_kinds[error.kind] += 1
        for error in misses:
            miss_kinds[error.kind] += 1
        if false_positives or misses:
            pages.append({"image": image.name, "false_positives": [_error_row(e) for e in false_positives],
                          "misses": [_error_row(e) for e in misses]})
    return {"false_positive_kinds": fp_kinds, "miss_kinds": miss_kinds, "pages": pages}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of the ``detection`` subcommand."""
    p.add_argument("--images", required=True, type=Path, help="folder of page images")
    p.add_argument("--labels", required=True, type=Path, help="folder of YOLO label files (same stems)")
    p.add_argument("--weights", type=Path, default=None, help="detector safetensors (default: shipped detector)")
    p.add_argument("--score-threshold", type=float, default=None, help="override the card's shipped threshold")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu", help="auto | cpu | cuda")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--ci-resamples", type=int, default=1000,
                   help="bootstrap resamples of the pages for the *_ci95 intervals (0: none)")
    p.add_argument("--errors", type=Path, default=None,
                   help="write every false positive and miss here (JSON: page, box, kind, IoU, score)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load the detector, predict every page of the folder, score it."""
    from models.detect import load_detector
    from models.weights import resolve_device

    if args.batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {args.batch_size}")
    device = resolve_device(args.device)
    model, card = load_detector(args.weights, device)
    threshold = float(card["score_threshold"]) if args.score_threshold is None else args.score_threshold
    pairs = yolo_pairs(args.images, args.labels)
    log.info("detecting on %d pages of %s", len(pairs), args.images)
    predictions, truth, seconds = predict_folder(model, card, pairs, str(device), args.batch_size)
    out: dict[str, Any] = {"model_version": card.get("model_version"), "images": str(args.images),
                           "iou_threshold": 0.5, "score_threshold": threshold}
    out.update(score_predictions(predictions, truth, threshold))
    if args.ci_resamples > 0:
        from models.metrics import interval
        from transforms.detection_metrics import page_bootstrap

        spread = page_bootstrap(predictions, truth, threshold, args.ci_resamples)
        for key, values in spread.items():
            out[f"{key}_ci95"] = [round(x, 4) for x in interval(values)]
        out["ci95_method"] = f"{args.ci_resamples} bootstrap resamples of the {len(truth)} pages (seed 0)"
    errors = error_report(pairs, predictions, truth, threshold)
    out["false_positive_kinds"], out["miss_kinds"] = errors["false_positive_kinds"], errors["miss_kinds"]
    if args.errors is not None:
        args.errors.parent.mkdir(parents=True, exist_ok=True)
        args.errors.write_text(json.dumps({"model_version": card.get("model_version"), "score_threshold": threshold,
                                           **errors}, indent=1) + "\n")
        log.info("wrote the errors of %d pages to %s", len(errors["pages"]), args.errors)
    out["pages_per_second"] = round(len(pairs) / seconds, 2) if seconds > 0 else None
    return out
