"""Signature manifests, writer-disjoint splits, an in-memory image cache, augmentation and batches.

Manifest: CSV with ``path`` (relative to the manifest's folder), ``writer``, ``label``
(``genuine`` | ``forged``); other columns (``dataset``, ``medium``) are kept when present and
otherwise ignored. A forged row's ``writer`` is the person whose signature was imitated.
"""
from __future__ import annotations

import csv
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from transforms.preprocess import INPUT_SIZE, preprocess_signature

log = logging.getLogger(__name__)

LABELS = ("genuine", "forged")


@dataclass(frozen=True)
class Sample:
    """One manifest row: absolute image path, writer id, label, dataset ('' when absent)."""

    path: Path
    rel_path: str
    writer: str
    label: str
    dataset: str = ""


def shared_data_dir() -> Path:
    """``$SIGAUDIT_SHARED_DATA`` if set, else ``<repo root>/../shared/data``."""
    env = os.environ.get("SIGAUDIT_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def read_manifest(manifest: str | Path) -> list[Sample]:
    """Rows of a signature manifest, paths resolved against the manifest's folder."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ValueError(f"manifest not found: {manifest}")
    with manifest.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"path", "writer", "label"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"manifest {manifest} lacks columns {sorted(missing)}")
        rows = []
        for i, r in enumerate(reader):
            if r["label"] not in LABELS:
                raise ValueError(f"manifest {manifest} row {i + 2}: label must be genuine|forged, got {r['label']!r}")
            rows.append(Sample(manifest.parent / r["path"], r["path"], r["writer"], r["label"], r.get("dataset") or ""))
    return rows


def writers_by_dataset(samples: Iterable[Sample]) -> dict[str, list[str]]:
    """Dataset -> sorted writer ids."""
    out: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        out[s.dataset].add(s.writer)
    return {d: sorted(w) for d, w in sorted(out.items())}


def split_writers(samples: Sequence[Sample], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded writer-disjoint split: ``round(val_fraction * n)`` writers of each dataset go to validation.

    Rule (reproducible from the card): per dataset in sorted order, writers sorted, permuted by
    ``np.random.default_rng(seed)``; the first ``round(val_fraction * n)`` are validation.
    Returns ``(train_writers, val_writers)``, both sorted.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for _, writers in writers_by_dataset(samples).items():
        perm = [writers[i] for i in rng.permutation(len(writers))]
        n_val = int(round(val_fraction * len(writers)))
        val += perm[:n_val]
        train += perm[n_val:]
    return sorted(train), sorted(val)


def load_gray(path: Path) -> np.ndarray:
    """``(H, W) uint8`` grey image (cv2 IMREAD_GRAYSCALE); ValueError when unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    return img


def load_preprocessed(samples: Sequence[Sample]) -> np.ndarray:
    """Preprocess every sample once: ``(N, 155, 220) uint8`` (0..255 = 0..1), kept in memory."""
    out = np.zeros((len(samples), *INPUT_SIZE), np.uint8)
    for i, s in enumerate(samples):
        out[i] = np.round(preprocess_signature(load_gray(s.path)) * 255.0).astype(np.uint8)
        if (i + 1) % 1000 == 0:
            log.info("preprocessed %d/%d images", i + 1, len(samples))
    return out


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random small affine, stroke width, blur and noise on a ``(155, 220) float32`` (ink bright) image."""
    h, w = img.shape
    angle, scale = rng.uniform(-5, 5), rng.uniform(0.9, 1.1)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[0, 1] += rng.uniform(-0.1, 0.1)  # shear
    m[:, 2] += rng.uniform(-0.05, 0.05, 2) * (w, h)
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    r = rng.random()
    if r < 0.25:
        out = cv2.dilate(out, np.ones((2, 2), np.uint8))
    elif r < 0.4:
        out = np.maximum(cv2.erode(out, np.ones((2, 2), np.uint8)), 0.5 * out)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (3, 3), rng.uniform(0.3, 1.0))
    if rng.random() < 0.3:
        out = out + rng.normal(0.0, rng.uniform(0.01, 0.05), out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class BatchSpec:
    """A batch = ``writers`` writers x (``genuine`` genuine + up to ``forged`` skilled forgeries)."""

    writers: int = 12
    genuine: int = 4
    forged: int = 2
    forgery_writer_share: float = 0.5  # share of a batch's writers drawn from writers with forgeries


class WriterBatchSampler:
    """Batches of sample indices grouped by writer, drawn with a generator seeded per step.

    ``batch(step)`` is a pure function of ``(seed, step)``: a resumed run draws the same batches.
    """

    def __init__(self, samples: Sequence[Sample], writers: Iterable[str], spec: BatchSpec, seed: int) -> None:
        keep = set(writers)
        self.spec, self.seed = spec, seed
        self.genuine: dict[str, list[int]] = defaultdict(list)
        self.forged: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(samples):
            if s.writer in keep:
                (self.genuine if s.label == "genuine" else self.forged)[s.writer].append(i)
        self.with_forgeries = sorted(w for w in self.genuine if self.forged.get(w))
        self.without = sorted(w for w in self.genuine if not self.forged.get(w))
        if len(self.genuine) < 2:
            raise ValueError(f"need at least 2 writers with genuine samples, got {len(self.genuine)}")

    def batch(self, step: int) -> list[int]:
        """Sample indices of the batch at ``step``."""
        rng = np.random.default_rng([self.seed, step])
        n_f = min(len(self.with_forgeries), int(round(self.spec.writers * self.spec.forgery_writer_share)))
        if not self.without:
            n_f = min(len(self.with_forgeries), self.spec.writers)
        n_o = min(len(self.without), self.spec.writers - n_f)
        writers = list(rng.choice(self.with_forgeries, n_f, replace=False)) if n_f else []
        writers += list(rng.choice(self.without, n_o, replace=False)) if n_o else []
        out: list[int] = []
        for w in writers:
            g = self.genuine[w]
            out += list(rng.choice(g, self.spec.genuine, replace=len(g) < self.spec.genuine))
            f = self.forged.get(w, [])
            if f:
                out += list(rng.choice(f, min(self.spec.forged, len(f)), replace=False))
        return [int(i) for i in out]


def make_batch(cache: np.ndarray, samples: Sequence[Sample], indices: Sequence[int], writer_index: dict[str, int],
               rng: np.random.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images ``(B, 1, 155, 220) float32`` (augmented when ``rng`` is given), writer ids ``(B,) int64``
    (index into ``writer_index``) and forged flags ``(B,) bool``."""
    imgs = [cache[i].astype(np.float32) / 255.0 for i in indices]
    if rng is not None:
        imgs = [augment(im, rng) for im in imgs]
    x = torch.from_numpy(np.stack(imgs)[:, None])
    writers = torch.tensor([writer_index[samples[i].writer] for i in indices], dtype=torch.int64)
    forged = torch.tensor([samples[i].label == "forged" for i in indices], dtype=torch.bool)
    return x, writers, forged


def iter_chunks(n: int, size: int) -> Iterator[slice]:
    """Slices covering ``range(n)`` in chunks of ``size``."""
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))
