"""Embedding throughput of a SigNet embedder on CPU: signatures per second at a given batch size.

    python benchmarks/embed_throughput.py [--arch NAME] [--threads 2] [--batch-size 32] [--batches 10]

``--arch`` defaults to the architecture of the shipped weights' card (``models/weights/signet_default.json``).

Measures ``models.embed.embed_batch`` (the pipeline's inference function) on preprocessed inputs,
and, separately, ``preprocess_signature`` on synthetic crops; prints a table.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from models.embed import embed_batch
from models.signet import EMBEDDERS, build_embedder, count_parameters
from models.weights import default_weights_path, load_card
from transforms.preprocess import INPUT_SIZE, preprocess_signature
from transforms.synth_signature import draw_signature, make_style


def measure_embedding(arch: str, batch_size: int, batches: int, channels_last: bool) -> float:
    """Signatures per second of ``embed_batch`` (after one warm-up batch)."""
    model = build_embedder(arch).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    x = np.random.default_rng(0).random((batch_size, *INPUT_SIZE), dtype=np.float32)
    embed_batch(model, x)
    t0 = time.perf_counter()
    for _ in range(batches):
        embed_batch(model, x)
    return batches * batch_size / (time.perf_counter() - t0)


def measure_preprocess(n: int) -> float:
    """Crops per second of ``preprocess_signature`` on synthetic signatures of about 120 x 300 px."""
    rng = np.random.default_rng(0)
    crops = [draw_signature(make_style(rng), rng, height=120) for _ in range(n)]
    t0 = time.perf_counter()
    for c in crops:
        preprocess_signature(c)
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=sorted(EMBEDDERS), default=None, help="default: the shipped weights' architecture")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=10)
    a = p.parse_args()
    if a.arch is None:
        a.arch = load_card(default_weights_path())["arch"]
    torch.set_num_threads(a.threads)
    params = count_parameters(build_embedder(a.arch))
    rows = [(f"embed_batch {a.arch} ({params / 1e6:.2f} M params)", measure_embedding(a.arch, a.batch_size, a.batches, False)),
            (f"embed_batch {a.arch}, channels_last", measure_embedding(a.arch, a.batch_size, a.batches, True)),
            ("preprocess_signature (synthetic 120 px crops)", measure_preprocess(100))]
    print(f"torch {torch.__version__}, {a.threads} threads, batch {a.batch_size}, {a.batches} batches")
    print(f"{'stage':<58} {'signatures/s':>12}")
    for name, rate in rows:
        print(f"{name:<58} {rate:>12.1f}")


if __name__ == "__main__":
    main()
