"""Signature manifests, writer-disjoint splits, an in-memory image cache, augmentation and batches.

Manifest: CSV with ``path`` (relative to the manifest's folder), ``writer``, ``label``
(``genuine`` | ``forged``); other columns (``dataset``, ``medium``) are kept when present and
otherwise ignored. A forged row's ``writer`` is the person whose signature was imitated.

Writer and signer: splits are by ``writer`` (the person), but what is verified is a *signer*, one
person's one signature. They are the same except in datasets where every person writes several
names (``SIGNER_RULES``): there a signer is (person, name), and the other persons' images of the same
name are that signer's look-alike impostors (same text, another hand).
"""
from __future__ import annotations

import csv
import logging
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from transforms.degrade import page_rendering
from transforms.imitation import imitation_warp
from transforms.preprocess import DEFAULT_INK_MASK, INPUT_SIZE, check_ink_mask, preprocess_signature

log = logging.getLogger(__name__)

LABELS = ("genuine", "forged")


@dataclass(frozen=True)
class Sample:
    """One manifest row: absolute image path, writer id, label, dataset ('' when absent).

    ``signer``: whose signature the image shows (or imitates), the unit of references and queries;
    defaults to ``writer``. ``text``: a key of the written text where several signers write the same
    text ('' when unknown).
    """

    path: Path
    rel_path: str
    writer: str
    label: str
    dataset: str = ""
    signer: str = ""
    text: str = ""

    def __post_init__(self) -> None:
        if not self.signer:
            object.__setattr__(self, "signer", self.writer)


# cross_media_chinese: every person writes the same ten Chinese names, files 1..N in the order
# name 1..10, then again per medium (control: 1-20 on paper; experiment: 1-10 paper, 11-20 iPad,
# 21-30 phone in hand, 31-40 phone on table). Checked by eye on several writers of both groups.
CHINESE_NAMES = 10


def _chinese_name(rel_path: str) -> str:
    m = re.fullmatch(r"(\d+)", Path(rel_path).stem)
    if not m:
        raise ValueError(f"cross_media_chinese file name must be a number, got {rel_path!r}")
    return f"name{(int(m.group(1)) - 1) % CHINESE_NAMES + 1:02d}"


# dataset -> function(rel_path) -> the written text's key; the signer is then "<writer>/<text>"
SIGNER_RULES = {"cross_media_chinese": _chinese_name}


def signer_and_text(dataset: str, writer: str, rel_path: str) -> tuple[str, str]:
    """``(signer, text)`` of a manifest row: ``(writer, '')`` unless ``dataset`` has a rule."""
    rule = SIGNER_RULES.get(dataset)
    if rule is None:
        return writer, ""
    text = rule(rel_path)
    return f"{writer}/{text}", f"{dataset}/{text}"


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
            dataset = r.get("dataset") or ""
            signer, text = signer_and_text(dataset, r["writer"], r["path"])
            rows.append(Sample(manifest.parent / r["path"], r["path"], r["writer"], r["label"], dataset, signer, text))
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


@dataclass(frozen=True)
class Split:
    """A writer split and its rows."""

    train_writers: list[str]
    val_writers: list[str]
    train: list[Sample]
    val: list[Sample]


def split_samples(samples: Sequence[Sample], val_fraction: float, seed: int,
                  train_exclude_datasets: Iterable[str] = ()) -> Split:
    """``split_writers`` and the rows of each side: training rows leave out ``train_exclude_datasets``
    (whose writers still count in the split, so validation is that of all datasets)."""
    train_w, val_w = split_writers(samples, val_fraction, seed)
    tw, vw, skip = set(train_w), set(val_w), set(train_exclude_datasets)
    return Split(train_w, val_w, [s for s in samples if s.writer in tw and s.dataset not in skip],
                 [s for s in samples if s.writer in vw])


def load_gray(path: Path) -> np.ndarray:
    """``(H, W) uint8`` grey image (cv2 IMREAD_GRAYSCALE); ValueError when unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    return img


def preprocessed_uint8(image: np.ndarray, ink: str = DEFAULT_INK_MASK) -> np.ndarray:
    """``preprocess_signature`` (with the ``ink`` mask) stored as ``(155, 220) uint8`` (0..255 = 0..1), as the
    training caches hold it."""
    return np.round(preprocess_signature(image, ink=ink) * 255.0).astype(np.uint8)


def load_preprocessed(samples: Sequence[Sample], ink: str = DEFAULT_INK_MASK) -> np.ndarray:
    """Preprocess every sample once (``ink``: the ink mask, ``transforms.preprocess.INK_MASKS``):
    ``(N, 155, 220) uint8`` (0..255 = 0..1), kept in memory."""
    check_ink_mask(ink)
    out = np.zeros((len(samples), *INPUT_SIZE), np.uint8)
    for i, s in enumerate(samples):
        out[i] = preprocessed_uint8(load_gray(s.path), ink)
        if (i + 1) % 1000 == 0:
            log.info("preprocessed %d/%d images", i + 1, len(samples))
    return out


def load_page_copies(samples: Sequence[Sample], copies: int, seed: int, ink: str = DEFAULT_INK_MASK) -> np.ndarray:
    """``copies`` page-like versions of every sample, preprocessed once: ``(copies, N, 155, 220) uint8``.

    Copy ``c`` of sample ``i`` is ``transforms.degrade.page_rendering`` seeded ``[seed, c, i]``, so a run's
    copies are reproducible from its seed.
    """
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    check_ink_mask(ink)
    out = np.zeros((copies, len(samples), *INPUT_SIZE), np.uint8)
    for i, s in enumerate(samples):
        img = load_gray(s.path)
        for c in range(copies):
            out[c, i] = preprocessed_uint8(page_rendering(img, np.random.default_rng([seed, c, i])), ink)
        if (i + 1) % 1000 == 0:
            log.info("page copies of %d/%d images", i + 1, len(samples))
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
    # synthetic skilled forgeries per signer: its genuine images, warped by transforms.imitation in make_batch
    synthetic: int = 0


@dataclass(frozen=True)
class Batch:
    """Sample indices of a training batch and, per index, the signer it is an impostor of ('' if none) and
    whether it is to be warped into a synthetic forgery of that signer (``warp``; empty = none is)."""

    indices: list[int]
    impostor_of: list[str]
    warp: list[bool] = field(default_factory=list)


class WriterBatchSampler:
    """Batches of sample indices grouped by signer, drawn with a generator seeded per step.

    Each chosen signer brings ``genuine`` genuine images and up to ``forged`` skilled forgeries; a
    signer without forgeries whose text other signers also wrote (``Sample.text``) brings, when
    ``impostors`` is on, up to ``forged`` images of that text by other signers instead, used as its
    skilled negatives. ``batch(step)`` is a pure function of ``(seed, step)``: a resumed run draws
    the same batches. ``writers`` are the persons allowed in (the training split). With ``spec.synthetic``,
    each signer also brings that many of its genuine images (others than the chosen ones where it has
    enough) marked ``warp``: skilled negatives of that signer once ``make_batch`` warps them.
    """

    def __init__(self, samples: Sequence[Sample], writers: Iterable[str], spec: BatchSpec, seed: int,
                 impostors: bool = False) -> None:
        if spec.synthetic < 0:
            raise ValueError(f"spec.synthetic (synthetic forgeries per signer) must be >= 0, got {spec.synthetic}")
        keep = set(writers)
        self.spec, self.seed, self.impostors = spec, seed, impostors
        self.genuine: dict[str, list[int]] = defaultdict(list)
        self.forged: dict[str, list[int]] = defaultdict(list)
        self.by_text: dict[str, list[int]] = defaultdict(list)
        self.text_of: dict[str, str] = {}
        self.signer_of = [s.signer for s in samples]
        for i, s in enumerate(samples):
            if s.writer in keep:
                (self.genuine if s.label == "genuine" else self.forged)[s.signer].append(i)
                if s.text and s.label == "genuine":
                    self.by_text[s.text].append(i)
                    self.text_of[s.signer] = s.text
        self.with_forgeries = sorted(w for w in self.genuine if self.forged.get(w))
        self.without = sorted(w for w in self.genuine if not self.forged.get(w))
        if len(self.genuine) < 2:
            raise ValueError(f"need at least 2 signers with genuine samples, got {len(self.genuine)}")

    def batch(self, step: int) -> Batch:
        """The batch at ``step``."""
        rng = np.random.default_rng([self.seed, step])
        n_f = min(len(self.with_forgeries), int(round(self.spec.writers * self.spec.forgery_writer_share)))
        if not self.without:
            n_f = min(len(self.with_forgeries), self.spec.writers)
        n_o = min(len(self.without), self.spec.writers - n_f)
        signers = list(rng.choice(self.with_forgeries, n_f, replace=False)) if n_f else []
        signers += list(rng.choice(self.without, n_o, replace=False)) if n_o else []
        out: list[int] = []
        impostor_of: list[str] = []
        warp: list[bool] = []
        for w in signers:
            g = self.genuine[w]
            chosen = list(rng.choice(g, self.spec.genuine, replace=len(g) < self.spec.genuine))
            negatives, target = self.forged.get(w, []), ""
            if not negatives and self.impostors and w in self.text_of:
                negatives = [i for i in self.by_text[self.text_of[w]] if self.signer_of[i] != w]
                target = str(w)
            if negatives:
                negatives = list(rng.choice(negatives, min(self.spec.forged, len(negatives)), replace=False))
            out += chosen + negatives
            impostor_of += [""] * len(chosen) + [target] * len(negatives)
            warp += [False] * (len(chosen) + len(negatives))
            if self.spec.synthetic:
                rest = [i for i in g if i not in chosen] or g
                warped = list(rng.choice(rest, self.spec.synthetic, replace=len(rest) < self.spec.synthetic))
                out += warped
                impostor_of += [str(w)] * len(warped)
                warp += [True] * len(warped)
        return Batch([int(i) for i in out], impostor_of, warp if self.spec.synthetic else [])


def make_batch(cache: np.ndarray, samples: Sequence[Sample], indices: Sequence[int], writer_index: dict[str, int],
               rng: np.random.Generator | None,
               impostor_of: Sequence[str] | None = None, page_cache: np.ndarray | None = None,
               page_share: float = 0.0, warp: Sequence[bool] | None = None,
               warp_rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images ``(B, 1, 155, 220) float32`` (augmented when ``rng`` is given), signer ids ``(B,) int64``
    (index into ``writer_index``, keyed by signer) and forged flags ``(B,) bool``.

    An image with a non-empty ``impostor_of`` entry counts as a skilled forgery of that signer.
    ``page_cache`` (``load_page_copies`` of the same samples): with ``rng``, each image is replaced by one
    of its page-like copies with probability ``page_share``. ``warp`` (``Batch.warp``): the marked images are
    bent into synthetic forgeries (``transforms.imitation.imitation_warp`` drawn from ``warp_rng``) before
    augmentation; each needs an ``impostor_of`` entry naming the signer it forges.
    """
    if impostor_of is not None and len(impostor_of) != len(indices):
        raise ValueError(f"impostor_of has {len(impostor_of)} entries for {len(indices)} indices")
    if page_cache is not None and page_cache.shape[1:] != cache.shape:
        raise ValueError(f"page_cache of shape {page_cache.shape} does not hold copies of a cache of shape {cache.shape}")
    targets = list(impostor_of) if impostor_of is not None else [""] * len(indices)
    flags = list(warp) if warp else []
    if flags and (len(flags) != len(indices) or warp_rng is None or any(f and not t for f, t in zip(flags, targets, strict=True))):
        raise ValueError(f"warp needs one flag per index ({len(flags)} for {len(indices)}), a warp_rng "
                         f"(got {type(warp_rng).__name__}) and an impostor_of target for each warped image")
    imgs = [cache[i].astype(np.float32) / 255.0 for i in indices]
    if rng is not None and page_cache is not None and page_share > 0:
        imgs = [page_cache[int(rng.integers(len(page_cache))), i].astype(np.float32) / 255.0
                if rng.random() < page_share else im for i, im in zip(indices, imgs, strict=True)]
    if flags:
        imgs = [imitation_warp(im, warp_rng) if f else im for im, f in zip(imgs, flags, strict=True)]
    if rng is not None:
        imgs = [augment(im, rng) for im in imgs]
    x = torch.from_numpy(np.stack(imgs)[:, None])
    writers = torch.tensor([writer_index[t or samples[i].signer] for i, t in zip(indices, targets, strict=True)], dtype=torch.int64)
    forged = torch.tensor([samples[i].label == "forged" or bool(t) for i, t in zip(indices, targets, strict=True)], dtype=torch.bool)
    return x, writers, forged


def iter_chunks(n: int, size: int) -> Iterator[slice]:
    """Slices covering ``range(n)`` in chunks of ``size``."""
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))
