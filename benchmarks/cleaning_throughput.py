"""Cleaning throughput on CPU: crops per second of ``models.clean.clean_images`` (the pipeline's inference
function) for each generator, at a typical crop size, plus CPU time per crop (load-independent).

    python benchmarks/cleaning_throughput.py [--threads 2] [--size 150 400] [--crops 64]
        [--generators resnet_6blocks_ngf12 ...] [--max-side N (default: the shipped card's)]

Crops are noisy synthetic signatures (``draw_signature`` + ``add_document_noise``) of one size; the
weights are random (speed does not depend on them). Wall-clock crops/s depend on what else runs on the
machine; ``cpu ms/crop`` (process time) estimates the figure on idle cores: ``threads * 1000 / cpu_ms``.
On a busy machine measure with ``--threads 1``: the process time of several threads includes their
spin-waiting, which inflates ``cpu ms/crop``.
"""
from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch

from models.clean import clean_images, cleaning_options, default_cleaner_path
from models.cyclegan import DEFAULT_GENERATOR, GENERATORS, build_generator, count_parameters
from models.weights import card_path, load_card
from transforms.noise import add_document_noise
from transforms.synth_signature import draw_signature, make_style


def make_crops(n: int, size: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` noisy signature crops resized to ``size`` ``(H, W) uint8``."""
    crops = []
    for _ in range(n):
        sig = draw_signature(make_style(rng), rng, height=size[0])
        sig = cv2.resize(sig, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        crops.append(add_document_noise(sig, rng))
    return crops


def shipped_options() -> dict:
    """``clean_images`` settings of the shipped cleaner's card (remove-only, upscale), defaults without one."""
    path = default_cleaner_path()
    return cleaning_options(load_card(path) if card_path(path).is_file() else {})


def measure(name: str, crops: list[np.ndarray], options: dict, repeats: int) -> tuple[float, float]:
    """``(crops per second wall-clock, CPU ms per crop)`` of ``clean_images(**options)`` after one warm-up."""
    model = build_generator(name).eval()
    clean_images(model, crops[:options["batch_size"]], **options)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        clean_images(model, crops, **options)
    n = repeats * len(crops)
    return n / (time.perf_counter() - t0), 1000.0 * (time.process_time() - c0) / n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, nargs=2, default=[150, 400], metavar=("H", "W"))
    p.add_argument("--crops", type=int, default=64)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-side", type=int, default=None,
                   help="working scale (default: the shipped cleaner card's max_side; 0 = native size)")
    p.add_argument("--generators", nargs="+", default=[DEFAULT_GENERATOR], choices=sorted(GENERATORS))
    a = p.parse_args(argv)
    shipped = shipped_options()
    if a.max_side is None:
        a.max_side = shipped["max_side"]
    options = {**shipped, "max_side": a.max_side or None, "batch_size": a.batch_size}
    torch.set_num_threads(a.threads)
    crops = make_crops(a.crops, (a.size[0], a.size[1]), np.random.default_rng(0))
    print(f"crops {a.size[0]}x{a.size[1]}, max_side {a.max_side or 'native'}, {a.threads} threads, "
          f"batch {a.batch_size}")
    print(f"{'generator':<24}{'params':>10}{'crops/s':>10}{'cpu ms/crop':>13}{'idle est. crops/s':>19}")
    for name in a.generators:
        rate, cpu_ms = measure(name, crops, options, a.repeats)
        print(f"{name:<24}{count_parameters(build_generator(name)):>10,}{rate:>10.1f}{cpu_ms:>13.1f}"
              f"{a.threads * 1000.0 / cpu_ms:>19.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
