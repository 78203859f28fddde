"""Unpaired training data for the cleaning CycleGAN: ``(H, W) uint8`` images, ink dark.

- Domain A (noisy): crops around the labelled signatures of detection pages (real stamps, printed
  text, lines) and synthetic noisy crops (clean training-writer signatures + ``add_document_noise``).
- Domain B (clean): signatures of the training writers.

Images are brought to the *working scale* first (longest side ``scale`` px, as ``clean_images`` does
with ``max_side`` at inference), then random ``crop`` patches are cut. Synthetic pairs keep their
clean version for the optional paired L1 term.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from models.data import Sample, load_gray, read_manifest, split_writers
from transforms.noise import add_document_noise, add_document_noise_with_target
from transforms.yolo import load_yolo_labels

log = logging.getLogger(__name__)

SPLIT_SEED, SPLIT_VAL_FRACTION = 1, 0.2  # models.train_signet defaults: the same writer split


def training_writers(samples: Sequence[Sample], signet_card: Path | None) -> tuple[list[str], list[str], str]:
    """``(train_writers, val_writers, source)``: the SigNet card's split when it lists validation
    writers, else ``split_writers(samples, 0.2, seed=1)`` (the SigNet training defaults)."""
    if signet_card is not None and signet_card.is_file():
        data = json.loads(signet_card.read_text()).get("data", {})
        if data.get("val_writers"):
            val = set(data["val_writers"])
            train = sorted({s.writer for s in samples} - val)
            return train, sorted(val), str(signet_card)
    train, val = split_writers(samples, SPLIT_VAL_FRACTION, SPLIT_SEED)
    return train, val, f"split_writers(val_fraction={SPLIT_VAL_FRACTION}, seed={SPLIT_SEED})"


def to_scale(img: np.ndarray, longest: int) -> np.ndarray:
    """Resize ``(H, W) uint8`` so its longest side is ``longest`` px (area when shrinking)."""
    h, w = img.shape
    f = longest / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)


def pad_to(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Pad ``img`` (edge replicate, bottom/right) to at least ``(h, w)``."""
    ph, pw = max(0, h - img.shape[0]), max(0, w - img.shape[1])
    if ph or pw:
        img = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
    return img


def random_patch(imgs: Sequence[np.ndarray], crop: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    """The same random ``crop`` window of each of ``imgs`` (all the same shape), padded if smaller."""
    ch, cw = crop
    imgs = [pad_to(im, ch, cw) for im in imgs]
    h, w = imgs[0].shape
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return [im[y:y + ch, x:x + cw] for im in imgs]


def load_clean(manifest: Path, writers: Sequence[str], longest: int, limit: int | None,
               rng: np.random.Generator) -> list[np.ndarray]:
    """Genuine signatures of ``writers`` (at most ``limit``, seeded pick) at the working scale."""
    keep = set(writers)
    rows = [s for s in read_manifest(manifest) if s.writer in keep and s.label == "genuine"]
    if limit is not None and len(rows) > limit:
        rows = [rows[i] for i in sorted(rng.choice(len(rows), limit, replace=False))]
    out = [to_scale(load_gray(s.path), longest) for s in rows]
    log.info("domain B: %d clean signatures of %d writers", len(out), len({s.writer for s in rows}))
    return out


def real_noisy_crops(detection_split: Path, longest: int, margin: float = 0.15) -> list[np.ndarray]:
    """Crops around every labelled signature of ``detection_split/{images,labels}`` (box grown by
    ``margin`` of its size on each side), at the working scale."""
    out = []
    for label in sorted((detection_split / "labels").glob("*.txt")):
        image = detection_split / "images" / f"{label.stem}.jpg"
        if not image.is_file():
            continue
        page = load_gray(image)
        ph, pw = page.shape
        for b in load_yolo_labels(label):
            mx, my = margin * (b.x1 - b.x0), margin * (b.y1 - b.y0)
            x0, y0 = int(max(0.0, b.x0 - mx) * pw), int(max(0.0, b.y0 - my) * ph)
            x1, y1 = int(np.ceil(min(1.0, b.x1 + mx) * pw)), int(np.ceil(min(1.0, b.y1 + my) * ph))
            if x1 - x0 >= 8 and y1 - y0 >= 8:
                out.append(to_scale(page[y0:y1, x0:x1], longest))
    log.info("domain A: %d real crops from %s", len(out), detection_split)
    return out


def noisy_pair(clean: np.ndarray, rng: np.random.Generator, aligned: bool = True,
               kinds: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy, target)`` of one clean image (``add_document_noise``, seeded by ``rng``; ``kinds`` as
    there, None = a random mix): the target is turned by the noise's own small scanner rotation when
    ``aligned`` (``add_document_noise_with_target``), else the unturned image itself."""
    if aligned:
        return add_document_noise_with_target(clean, rng, kinds)
    return add_document_noise(clean, rng, kinds), clean


def synthetic_pairs(clean: Sequence[np.ndarray], n: int, rng: np.random.Generator,
                    aligned: bool = True, kinds: Sequence[str] | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` (noisy, clean) pairs: random clean images with ``add_document_noise`` (seeded; ``kinds``:
    only these noise kinds, None = the random mix).

    ``aligned``: the clean target is turned by the noise's own small scanner rotation
    (``add_document_noise_with_target``), so that the paired L1 term asks for removal, not for undoing
    a turn the generator cannot see (which teaches it to erase strokes); False = the unturned image."""
    noisy, targets = [], []
    for i in range(n):
        x, t = noisy_pair(clean[int(rng.integers(len(clean)))], rng, aligned, kinds)
        noisy.append(x)
        targets.append(t)
        if (i + 1) % 500 == 0:
            log.info("synthetic pairs: %d/%d", i + 1, n)
    return noisy, targets


class CleaningData:
    """Seeded batches of unpaired A and B patches plus the synthetic pairs inside A.

    ``batch(step)`` -> ``(a, b, paired_clean, is_synthetic)``: ``a``, ``b``, ``paired_clean`` are
    ``(N, h, w) uint8`` (``paired_clean`` rows are meaningful where ``is_synthetic``); a pure
    function of ``(seed, step)``, so a resumed run draws the same batches.
    """

    def __init__(self, real_a: Sequence[np.ndarray], syn_a: Sequence[np.ndarray], syn_clean: Sequence[np.ndarray],
                 clean_b: Sequence[np.ndarray], crop: tuple[int, int], batch_size: int, synthetic_share: float,
                 seed: int) -> None:
        if not clean_b or not (real_a or syn_a):
            raise ValueError(f"need images in both domains, got A={len(real_a)}+{len(syn_a)} B={len(clean_b)}")
        if not 0.0 <= synthetic_share <= 1.0:
            raise ValueError(f"synthetic_share must be in [0, 1], got {synthetic_share}")
        self.real_a, self.syn_a, self.syn_clean, self.clean_b = real_a, syn_a, syn_clean, clean_b
        self.crop, self.batch_size, self.seed = crop, batch_size, seed
        self.synthetic_share = synthetic_share if real_a and syn_a else (1.0 if syn_a else 0.0)

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The batch at ``step`` (see the class docstring)."""
        rng = np.random.default_rng([self.seed, step])
        a, pc, syn, b = [], [], [], []
        for _ in range(self.batch_size):
            if rng.random() < self.synthetic_share:
                i = int(rng.integers(len(self.syn_a)))
                pa, pb = random_patch([self.syn_a[i], self.syn_clean[i]], self.crop, rng)
                syn.append(True)
            else:
                pa = random_patch([self.real_a[int(rng.integers(len(self.real_a)))]], self.crop, rng)[0]
                pb = np.full(self.crop, 255, np.uint8)
                syn.append(False)
            a.append(pa)
            pc.append(pb)
            b.append(random_patch([self.clean_b[int(rng.integers(len(self.clean_b)))]], self.crop, rng)[0])
        return np.stack(a), np.stack(b), np.stack(pc), np.array(syn, bool)
