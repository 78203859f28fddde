"""Precision / recall / F1 at IoU 0.5 and AP50 of the classical signature finder on the real detection pages.

    python benchmarks/classical_regions.py --split valid            # score the finder as shipped
    python benchmarks/classical_regions.py --split train --fit      # refit the logistic weights (prints them)

Data: ``<shared data>/detection/<split>/{images,labels}`` (YOLO labels). Prints one JSON line to stdout.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import cv2
import numpy as np

from transforms.boxes import Box, iou
from transforms.detection_metrics import detection_scores
from transforms.regions import FinderConfig, candidate_features, find_signature_regions, quadratic_terms
from transforms.yolo import load_yolo_labels

logger = logging.getLogger(__name__)


def shared_data_dir() -> Path:
    """``$SIGAUDIT_SHARED_DATA``, else ``<repo root>/../shared/data``."""
    env = os.environ.get("SIGAUDIT_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_split(split: str, limit: int | None = None) -> list[tuple[np.ndarray, list[Box]]]:
    """(page (H, W) uint8, true boxes) for every image of ``detection/<split>``, sorted by name."""
    folder = shared_data_dir() / "detection" / split
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found: set SIGAUDIT_SHARED_DATA")
    pages = []
    for path in sorted((folder / "images").glob("*.jpg"))[:limit]:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"cannot read {path}")
        pages.append((image, load_yolo_labels(folder / "labels" / f"{path.stem}.txt")))
    return pages


def fit_weights(pages: list[tuple[np.ndarray, list[Box]]], l2: float = 10.0) -> dict[str, list[float]]:
    """Logistic regression (Newton's method, L2 ``l2``) of "candidate hits a true box at IoU >= 0.5" on the
    standardized candidate features and their pairwise products; the arrays that transforms/regions.py holds."""
    rows, targets = [], []
    for image, truth in pages:
        for box, features in candidate_features(image):
            rows.append(features)
            targets.append(float(any(iou(box, t) >= 0.5 for t in truth)))
    features = np.asarray(rows)
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    x = np.hstack([np.array([quadratic_terms(f, mean, scale) for f in features]), np.ones((len(rows), 1))])
    y = np.asarray(targets)
    logger.info("%d candidates, %d hit a true box", len(y), int(y.sum()))
    theta = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ theta))
        gradient = x.T @ (p - y) + l2 * theta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return {"mean": mean.round(4).tolist(), "scale": scale.round(4).tolist(),
            "weights": theta[:-1].round(4).tolist(), "bias": round(float(theta[-1]), 4)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="valid", choices=["train", "valid"])
    parser.add_argument("--limit", type=int, default=None, help="only the first N pages")
    parser.add_argument("--fit", action="store_true", help="fit the logistic weights on this split")
    parser.add_argument("--score_threshold", type=float, default=FinderConfig().min_score,
                        help="score for precision/recall/F1 (default: the finder's own min_score)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pages = load_split(args.split, args.limit)
    if args.fit:
        print(json.dumps(fit_weights(pages)))
        return
    config = FinderConfig(min_score=0.0)  # every candidate, for AP; P/R/F1 at --score_threshold
    start = time.perf_counter()
    predictions = [find_signature_regions(image, config=config) for image, _ in pages]
    seconds = (time.perf_counter() - start) / len(pages)
    truth = [t for _, t in pages]
    scores = detection_scores(predictions, truth, 0.5, args.score_threshold)
    print(json.dumps({"split": args.split, "pages": len(pages), "boxes": sum(map(len, truth)),
                      "score_threshold": args.score_threshold, "precision": round(scores.precision, 3),
                      "recall": round(scores.recall, 3), "f1": round(scores.f1, 3), "ap50": round(scores.ap, 3),
                      "tp": scores.true_positives, "fp": scores.false_positives, "fn": scores.false_negatives,
                      "seconds_per_page": round(seconds, 4)}))


if __name__ == "__main__":
    main()
