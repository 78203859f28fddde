"""Pages per second of the learned signature detector on CPU at its default input size.

    python benchmarks/detector_throughput.py [--threads 2] [--batch-size 8] [--pages 64] [--weights PATH]

Pages are synthetic A4 scans at 150 dpi (1240 x 1754, gray) from ``transforms.demo_corpus``. Two
figures: ``detect`` (``detect_batch`` on already prepared pages: network + decoding, every test-time view
of the card) and ``end_to_end`` (``prepare_views`` + ``detect_batch`` from the full-size page). Without exported weights, a randomly
initialised network of the default architecture is timed (same cost). Prints a table, then one JSON line.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pymupdf
import torch

from models.detect import (
    DEFAULT_DETECTOR_PATH,
    detect_batch,
    detect_pages,
    detector_views,
    load_detector,
    prepare_views,
    stack_views,
    view_name,
)
from models.detector import build_detector
from transforms.demo_corpus import make_sample_contract
from transforms.detection_prep import DEFAULT_INPUT_SIZE
from transforms.pdf import pixmap_gray

logger = logging.getLogger(__name__)


def sample_pages(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` distinct-looking pages ``(1754, 1240) uint8``: a few rendered contracts, cycled."""
    pages = []
    for i in range(min(n, 4)):
        data, _ = make_sample_contract(np.random.default_rng([seed, i]), scanned=True)
        with pymupdf.open(stream=data, filetype="pdf") as doc:
            pix = doc[0].get_pixmap(dpi=150, colorspace=pymupdf.csGRAY, alpha=False)
            pages.append(pixmap_gray(pix))
    return [pages[i % len(pages)] for i in range(n)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--pages", type=int, default=64)
    parser.add_argument("--weights", type=Path, default=DEFAULT_DETECTOR_PATH)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads < 1 or args.batch_size < 1 or args.pages < 1:
        raise ValueError(f"threads, batch size and pages must be >= 1, got {args.threads}, {args.batch_size}, {args.pages}")
    torch.set_num_threads(args.threads)
    if args.weights.is_file():
        model, card = load_detector(args.weights)
    else:
        logger.warning("no weights at %s: timing a random centernet_m", args.weights)
        card = {"arch": "centernet_m", "input_size": DEFAULT_INPUT_SIZE, "score_threshold": 0.3, "nms_iou": 0.5,
                "max_boxes": 20, "model_version": "random-init"}
        model = build_detector(card["arch"]).eval()
    size = int(card["input_size"])
    pages = sample_pages(args.pages)
    prepared = [prepare_views(p, card) for p in pages]
    detect_batch(model, stack_views(prepared[: args.batch_size]), card)  # warm-up
    start = time.perf_counter()
    for i in range(0, len(pages), args.batch_size):
        detect_batch(model, stack_views(prepared[i:i + args.batch_size]), card)
    detect_s = time.perf_counter() - start
    start = time.perf_counter()
    detect_pages(model, pages, card, batch_size=args.batch_size)
    e2e_s = time.perf_counter() - start
    rows = [("detect (prepared pages)", len(pages) / detect_s), ("end_to_end (prepare + detect)", len(pages) / e2e_s)]
    views = " ".join(view_name(view) for view in detector_views(card))
    print(f"{'stage':32s} pages/s   (model {card['model_version']}, views {views}, {args.threads} threads, "
          f"batch {args.batch_size}, {len(pages)} pages of {pages[0].shape[1]}x{pages[0].shape[0]})")
    for name, rate in rows:
        print(f"{name:32s} {rate:7.1f}")
    print(json.dumps({"model_version": card["model_version"], "input_size": size, "views": views, "threads": args.threads,
                      "batch_size": args.batch_size, "pages": len(pages),
                      "detect_pages_per_s": round(rows[0][1], 1), "end_to_end_pages_per_s": round(rows[1][1], 1)}))


if __name__ == "__main__":
    main()
