"""Precision / recall / F1 at IoU 0.5 and AP50 of the classical signature finder on the real detection pages.

    python benchmarks/classical_regions.py --split valid            # score the finder as shipped
    python benchmarks/classical_regions.py --split train --upscale --fit --synthetic 100:220   # refit both
    python benchmarks/classical_regions.py --demo                   # score on the demo corpus (seed 0)

Data: ``<shared data>/detection/<split>/{images,labels}`` (YOLO labels); synthetic contracts of
``transforms.demo_corpus`` rendered as the pipeline does (200 dpi, text-layer words): ``--synthetic A:B``
makes one single-page contract per seed in A..B-1 (even seeds scanned, odd born-digital) and ``--demo`` the
demo corpus of seed 0 (reporting only: never fit on it). Prints one JSON line to stdout.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from transforms.boxes import Box, iou
from transforms.demo_corpus import make_demo_corpus, make_sample_contract
from transforms.detection_metrics import detection_scores
from transforms.pdf import Word, open_pdf, render_page
from transforms.regions import (
    FinderConfig,
    candidate_features,
    find_signature_regions,
    is_fine,
    quadratic_terms,
)
from transforms.yolo import load_yolo_labels

logger = logging.getLogger(__name__)


def shared_data_dir() -> Path:
    """``$SIGAUDIT_SHARED_DATA``, else ``<repo root>/../shared/data``."""
    env = os.environ.get("SIGAUDIT_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


Page = tuple[np.ndarray, Sequence[Word], list[Box], str]  # image (H, W) uint8, words, true boxes, kind


def load_split(split: str, limit: int | None = None) -> list[Page]:
    """(page (H, W) uint8, no words, true boxes, "tobacco") for every image of ``detection/<split>``."""
    folder = shared_data_dir() / "detection" / split
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found: set SIGAUDIT_SHARED_DATA")
    pages = []
    for path in sorted((folder / "images").glob("*.jpg"))[:limit]:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"cannot read {path}")
        pages.append((image, (), load_yolo_labels(folder / "labels" / f"{path.stem}.txt"), "tobacco"))
    return pages


def upscaled(pages: Sequence[Page], shape: tuple[int, int] = (2200, 1700)) -> list[Page]:
    """``pages`` resized to a 200-dpi letter page ``(H, W)`` (normalized boxes unchanged): real scans
    in the fine regime, so that the fine model also learns real print and real signatures."""
    return [(cv2.resize(image, shape[::-1], interpolation=cv2.INTER_CUBIC), words, truth, f"{kind}-upscaled")
            for image, words, truth, kind in pages]


def _render(data: bytes, placed: Sequence, kind: str, dpi: int = 200) -> list[Page]:
    """Every page of a PDF as the pipeline renders it, with the placed signatures' boxes of that page."""
    doc = open_pdf(data)
    try:
        pages = []
        for i in range(doc.page_count):
            rendered = render_page(doc, i, dpi=dpi)
            pages.append((rendered.image, rendered.words, [p.box for p in placed if p.page == i + 1], kind))
        return pages
    finally:
        doc.close()


def synthetic_pages(seeds: range) -> list[Page]:
    """One single-page contract per seed (``make_sample_contract``; even seeds scanned at 150 or 200 dpi,
    odd born-digital), rendered at 200 dpi."""
    pages = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        scanned = seed % 2 == 0
        data, placed = make_sample_contract(rng, scanned=scanned, dpi=int(rng.choice([150, 150, 200])))
        pages += _render(data, placed, "scanned" if scanned else "born-digital")
    return pages


def demo_pages(seed: int = 0) -> list[Page]:
    """Every page of the demo corpus of ``seed`` (written to a temporary folder), rendered at 200 dpi."""
    with tempfile.TemporaryDirectory() as folder:
        corpus = make_demo_corpus(Path(folder), seed=seed)
        pages = []
        for document in corpus.documents:
            pages += _render(document.path.read_bytes(), document.placements,
                             "scanned" if document.scanned else "born-digital")
        return pages


def fit_weights(pages: Sequence[Page], l2: float = 10.0) -> dict[str, list[float]]:
    """Logistic regression (Newton's method, L2 ``l2``) of "candidate hits a true box at IoU >= 0.5" on the
    standardized candidate features and their pairwise products; the arrays that transforms/regions.py holds."""
    rows, targets = [], []
    for image, words, truth, _ in pages:
        for box, features in candidate_features(image, words):
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


def _seeds(text: str) -> range:
    """``"A:B"`` -> range(A, B)."""
    first, _, last = text.partition(":")
    try:
        seeds = range(int(first), int(last))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--synthetic must be A:B, got {text!r}") from exc
    if not seeds:
        raise argparse.ArgumentTypeError(f"--synthetic A:B needs A < B, got {text!r}")
    return seeds


def evaluate(pages: Sequence[Page], score_threshold: float) -> dict[str, object]:
    """P/R/F1 at ``score_threshold`` and AP50 of the shipped finder on ``pages``, overall and per kind."""
    config = FinderConfig(min_score=0.0)  # every candidate, for AP; P/R/F1 at score_threshold
    start = time.process_time()
    predictions = [find_signature_regions(image, words, config=config) for image, words, _, _ in pages]
    seconds = (time.process_time() - start) / max(len(pages), 1)
    result: dict[str, object] = {"pages": len(pages), "score_threshold": score_threshold,
                                 "cpu_seconds_per_page": round(seconds, 4)}
    for kind in ["all", *sorted({page[3] for page in pages})]:
        chosen = [i for i, page in enumerate(pages) if kind in ("all", page[3])]
        truth = [pages[i][2] for i in chosen]
        scores = detection_scores([predictions[i] for i in chosen], truth, 0.5, score_threshold)
        result[kind] = {"boxes": sum(map(len, truth)), "precision": round(scores.precision, 3),
                        "recall": round(scores.recall, 3), "f1": round(scores.f1, 3), "ap50": round(scores.ap, 3),
                        "tp": scores.true_positives, "fp": scores.false_positives, "fn": scores.false_negatives}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="valid", choices=["train", "valid", "none"],
                        help="detection split to use ('none': synthetic pages only)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N pages of the split")
    parser.add_argument("--synthetic", type=_seeds, default=None, metavar="A:B",
                        help="add one synthetic contract per seed A..B-1 (use seeds other than the demo's 0)")
    parser.add_argument("--upscale", action="store_true",
                        help="also add the split's pages upscaled to 2200x1700 (the fine regime)")
    parser.add_argument("--demo", action="store_true", help="add the demo corpus of seed 0 (not with --fit)")
    parser.add_argument("--fit", action="store_true", help="fit the logistic weights on these pages")
    parser.add_argument("--score_threshold", type=float, default=FinderConfig().min_score,
                        help="score for precision/recall/F1 (default: the finder's own min_score)")
    args = parser.parse_args(argv)
    if args.fit and args.demo:
        parser.error("--demo is for reporting only: never fit on the demo corpus")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pages = [] if args.split == "none" else load_split(args.split, args.limit)
    if args.upscale:
        pages += upscaled(pages)
    if args.synthetic is not None:
        pages += synthetic_pages(args.synthetic)
    if args.demo:
        pages += demo_pages(0)
    if not pages:
        parser.error("no pages: give --split train|valid, --synthetic A:B or --demo")
    if args.fit:  # one model per resolution regime: _LOW_* (pages <= work_side) and _FINE_* (larger pages)
        regimes = {"low": [p for p in pages if not is_fine(p[0])], "fine": [p for p in pages if is_fine(p[0])]}
        print(json.dumps({name: fit_weights(chosen) for name, chosen in regimes.items() if chosen}))
        return
    print(json.dumps({"split": args.split, "synthetic": str(args.synthetic) if args.synthetic else None,
                      "demo": args.demo, **evaluate(pages, args.score_threshold)}))


if __name__ == "__main__":
    main()
