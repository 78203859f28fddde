"""Items per second of each shipped model at several batch sizes: how the pipeline's batch sizes were set.

    python -m benchmarks.batch_sizes [--threads 2] [--sizes 1 2 4 8 16 32 64] [--items 64]

Times the functions the RunInference handlers call (``detect_batch`` on prepared pages,
``clean_images`` on noisy crops of 150 x 400 px, ``embed_batch`` on preprocessed signatures) with the
shipped weights, after one warm-up batch, and prints a table. The suggested batch is the smallest one
within 5 % of the best rate: larger batches only add latency and memory (and, in Beam, wait for
``BatchElements`` to fill them).
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from benchmarks.cleaning_throughput import make_crops
from benchmarks.detector_throughput import sample_pages
from models.clean import clean_images, cleaning_options, load_cleaner
from models.detect import detect_batch, load_detector, prepare_views, stack_views
from models.embed import embed_batch
from models.weights import load_embedder
from transforms.preprocess import INPUT_SIZE

TOLERANCE = 0.05


def rate(run: Callable[[Sequence], object], items: Sequence, batch: int) -> float:
    """Items per second of ``run`` over ``items`` in chunks of ``batch`` (after one warm-up chunk)."""
    run(items[:batch])
    start = time.perf_counter()
    for i in range(0, len(items), batch):
        run(items[i:i + batch])
    return len(items) / (time.perf_counter() - start)


def suggested(rates: dict[int, float]) -> int:
    """The smallest batch size whose rate is within ``TOLERANCE`` of the best."""
    best = max(rates.values())
    return min(b for b, r in rates.items() if r >= (1 - TOLERANCE) * best)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    p.add_argument("--items", type=int, default=64, help="items timed per batch size")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    detector, dcard = load_detector()
    cleaner, ccard = load_cleaner()
    embedder, _ = load_embedder()
    pages = [prepare_views(pg, dcard) for pg in sample_pages(a.items)]
    crops = make_crops(a.items, (150, 400), np.random.default_rng(0))
    signatures = np.random.default_rng(0).random((a.items, *INPUT_SIZE), dtype=np.float32)
    models: dict[str, tuple[Callable[[Sequence], object], Sequence]] = {
        f"detector {dcard['model_version']} (pages)": (lambda b: detect_batch(detector, stack_views(list(b)), dcard), pages),
        f"cleaner {ccard['model_version']} (crops)": (
            lambda b: clean_images(cleaner, list(b), batch_size=len(b), **cleaning_options(ccard)), crops),
        "embedder signet (signatures)": (lambda b: embed_batch(embedder, np.asarray(b)), signatures),
    }
    print(f"torch {torch.__version__}, {a.threads} threads, {a.items} items per size; items/s")
    print(f"{'model':<52}" + "".join(f"{b:>8}" for b in a.sizes) + f"{'suggested':>11}")
    for name, (run, items) in models.items():
        rates = {b: rate(run, items, b) for b in a.sizes}
        print(f"{name:<52}" + "".join(f"{rates[b]:>8.1f}" for b in a.sizes) + f"{suggested(rates):>11}")


if __name__ == "__main__":
    main()
