"""Shipped cleaning generator (safetensors + JSON card, no pickle) and the one cleaning function shared
by evaluation and the pipeline's RunInference handler.

``models/weights/cyclegan_<name>.safetensors`` holds the A->B generator's state dict; the card beside it
(``.json``) holds at least ``arch`` (a key of ``models.cyclegan.GENERATORS``), ``model_version`` and
``max_side`` (the working scale the generator was trained at), plus training data and figures.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from models.cyclegan import build_generator, clean_batch
from models.weights import WEIGHTS_DIR, load_card, load_model_file, save_model_file, write_card
from transforms.lines import remove_ruled_lines
from transforms.preprocess import otsu_mask

log = logging.getLogger(__name__)

DEFAULT_CLEANER = "default"
BUCKET = 32  # crops are grouped by their size rounded up to a multiple of this, padded inside a bucket
UPSCALES = ("image", "removal")


def cleaning_options(card: dict[str, Any]) -> dict[str, Any]:
    """``clean_images`` keyword arguments a cleaner's card sets: ``max_side`` (default 256),
    ``remove_only`` (default False), ``upscale`` (default 'image'), ``remove_lines`` (default None),
    ``restore_ink_below`` (default None), ``removal_remap`` (default None; a JSON list ``[low, high]``)."""
    upscale = card.get("upscale", "image")
    if upscale not in UPSCALES:
        raise ValueError(f"cleaner card upscale must be one of {UPSCALES}, got {upscale!r}")
    remap = card.get("removal_remap")
    return {"max_side": card.get("max_side", 256), "remove_only": bool(card.get("remove_only", False)),
            "upscale": upscale, "remove_lines": card.get("remove_lines"),
            "restore_ink_below": card.get("restore_ink_below"),
            "removal_remap": None if remap is None else tuple(remap)}


def _check_pair(before: np.ndarray, after: np.ndarray) -> None:
    if before.shape != after.shape:
        raise ValueError(f"shapes differ: {before.shape} vs {after.shape}")


def _removed_share(before: np.ndarray, after: np.ndarray, ink: np.ndarray) -> float:
    b = before[ink].astype(np.float32)
    dark = float((255.0 - b).sum())
    if dark <= 0.0:
        return 0.0
    return float(np.clip(after[ink].astype(np.float32) - b, 0.0, None).sum() / dark)


def removed_ink_share(before: np.ndarray, after: np.ndarray) -> float:
    """Share of the ink of ``before`` that cleaning took away in ``after`` (both ``(H, W) uint8``, ink dark):
    over the pixels Otsu calls ink in ``before`` (``transforms.preprocess.otsu_mask``), the summed lightening
    ``max(after - before, 0)`` over the summed darkness ``255 - before``. 0 when nothing is ink. Measured on
    the ink only, so that a scan's grey paper that cleaning whitens does not count."""
    _check_pair(before, after)
    return _removed_share(before, after, otsu_mask(before))


def restore_ink(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``after`` with the pixels Otsu calls ink in ``before`` put back as they were in ``before``: the
    cleaning of the paper around them (speckle, shading, grey) stays."""
    _check_pair(before, after)
    return np.where(otsu_mask(before), before, after)


def _gate_ink(before: np.ndarray, after: np.ndarray, below: float) -> np.ndarray:
    """``restore_ink`` when ``removed_ink_share`` is under ``below``, else ``after``; one Otsu mask for both."""
    ink = otsu_mask(before)
    return np.where(ink, before, after) if _removed_share(before, after, ink) < below else after


def _check_remap(remap: tuple[float, float] | None) -> None:
    if remap is None:
        return
    if len(remap) != 2 or not 0.0 <= remap[0] < remap[1] <= 1.0:
        raise ValueError(f"removal_remap must be (low, high) with 0 <= low < high <= 1, or None, got {remap!r}")


def _taken_share(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per pixel, the share of its darkness (255 - before) that ``after`` took away: float32 in [0, 1]."""
    b = before.astype(np.float32)
    return np.clip((after.astype(np.float32) - b) / np.maximum(255.0 - b, 1.0), 0.0, 1.0)


def _take_share(image: np.ndarray, share: np.ndarray) -> np.ndarray:
    """``image`` lightened by ``share`` (per pixel, clipped to [0, 1]) of its darkness, rounded to uint8."""
    f = image.astype(np.float32)
    return np.clip(f + np.clip(share, 0.0, 1.0) * (255.0 - f) + 0.5, 0, 255).astype(np.uint8)


def remap_removal(before: np.ndarray, after: np.ndarray, low: float, high: float) -> np.ndarray:
    """``after`` with each pixel's removal made decisive: the share of its ink that cleaning took away,
    ``s = (after - before) / (255 - before)`` (lightening only, in [0, 1]), becomes
    ``clip((s - low) / (high - low), 0, 1)`` and is taken from ``before`` again. A stroke the generator only
    paled (``s <= low``) keeps its ink as it came; one it mostly removed (``s >= high``) goes to white."""
    _check_pair(before, after)
    return _take_share(before, (_taken_share(before, after) - low) / (high - low))


def default_cleaner_path(name: str = DEFAULT_CLEANER) -> Path:
    """``models/weights/cyclegan_<name>.safetensors``."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"cleaner name must be a plain file stem, got {name!r}")
    return WEIGHTS_DIR / f"cyclegan_{name}.safetensors"


def save_cleaner(model: nn.Module, card: dict[str, Any], path: str | Path) -> Path:
    """Write the generator's state dict as safetensors at ``path`` and ``card`` as JSON beside it."""
    return save_model_file(model, card, path)


def update_card(path: str | Path, section: str, values: Any) -> dict[str, Any]:
    """Set ``card[section] = values`` (JSON-serialisable) in the card beside the weights at ``path``; returns the card."""
    card = load_card(path)
    card[section] = values
    write_card(path, card)
    return card


def load_cleaner(path: str | Path | None = None, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Build the card's generator, load the safetensors weights, move to ``device``, eval mode.

    ``path`` defaults to ``default_cleaner_path()``. Returns ``(model, card)``.
    """
    return load_model_file(Path(path) if path is not None else default_cleaner_path(), build_generator, device,
                           what="cleaning weights")


def _check(img: np.ndarray, i: int) -> None:
    if not (isinstance(img, np.ndarray) and img.ndim == 2 and img.dtype == np.uint8 and min(img.shape) >= 1):
        raise ValueError(f"image {i} must be a non-empty (H, W) uint8 array, got {getattr(img, 'shape', None)} "
                         f"{getattr(img, 'dtype', type(img))}")


def _shrink(img: np.ndarray, max_side: int | None) -> np.ndarray:
    h, w = img.shape
    if max_side is None or max(h, w) <= max_side:
        return img
    f = max_side / max(h, w)
    return cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _remove_share(small: np.ndarray, cleaned: np.ndarray, full: np.ndarray) -> np.ndarray:
    """``full`` lightened by the share of ink the generator removed at the small scale (see ``clean_images``)."""
    share = cv2.resize(_taken_share(small, cleaned), (full.shape[1], full.shape[0]), interpolation=cv2.INTER_LINEAR)
    return _take_share(full, share)


def clean_images(model: nn.Module, images: Sequence[np.ndarray], device: str | torch.device = "cpu",
                 max_side: int | None = 256, batch_size: int = 16, remove_only: bool = False,
                 upscale: str = "image", remove_lines: float | None = None,
                 restore_ink_below: float | None = None,
                 removal_remap: tuple[float, float] | None = None) -> list[np.ndarray]:
    """Clean ``(H, W) uint8`` crops (ink dark) -> a list of ``(H, W) uint8`` crops of the same sizes.

    ``remove_lines`` (the card's ``remove_lines``): before the generator, ruled lines at least this share
    of a crop's width long are erased (``transforms.lines.remove_ruled_lines``; None = not).

    Crops whose longest side exceeds ``max_side`` (the card's ``max_side``: the scale the generator was
    trained at; None = never) are shrunk keeping their aspect ratio, cleaned and resized back. Crops
    are grouped by size rounded up to a multiple of 32 px, padded (edge replicate, bottom/right) to the
    bucket's size, cleaned ``batch_size`` at a time and cropped back: never squashed or stretched.
    The model must be in eval mode on ``device`` (``load_cleaner`` does that).

    ``remove_only`` (the card's ``remove_only``): cleaning may only lighten pixels, never darken them,
    ``max(cleaned, input)``: document noise adds ink, so the signature's own strokes keep their
    rendering while lines, text and stamps the generator lightened stay removed.

    ``upscale`` (the card's ``upscale``), for shrunk crops under ``remove_only``: 'image' resizes the
    cleaned crop back and keeps the lighter of it and the input; 'removal' resizes back only the share
    of each pixel's ink the generator took away, ``(cleaned - small) / (255 - small)``, and takes that
    share from the full-size input, ``input + share x (255 - input)``: where the generator changed
    nothing, the signature keeps its full-resolution strokes instead of their blurred, lighter upscale.
    At the working scale both give ``max(cleaned, input)``.

    ``restore_ink_below`` (the card's ``restore_ink_below``): a crop whose cleaning (line removal included)
    took away less than this share of its ink (``removed_ink_share``) gets its ink back as it came
    (``restore_ink``), keeping only the cleaning of its paper: a clean signature gains nothing from the
    generator and may lose faint strokes to it. None = never.

    ``removal_remap`` (the card's ``removal_remap``), with ``remove_only``: ``(low, high)``; after the
    generator and before the ink gate, each pixel's removed share (against the crop after line removal)
    is stretched by ``remap_removal``, so that the generator's partial lightening of the signature's own
    strokes (scanner-damaged crops: their strokes come back paler or darker by about a tenth) is undone
    while what it mostly removed (stamps, text) goes entirely. None = as the generator left it. Measured
    (cleaner card ``removal_remap_20261202``): (0.3, 0.5) lowers noisy-crop EER but costs 1.2 dB of PSNR and
    gains nothing on the page paths, so the shipped card does not set it.
    """
    if upscale not in UPSCALES:
        raise ValueError(f"upscale must be one of {UPSCALES}, got {upscale!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_side is not None and max_side < 8:
        raise ValueError(f"max_side must be >= 8 or None, got {max_side}")
    if restore_ink_below is not None and not 0.0 <= restore_ink_below <= 1.0:
        raise ValueError(f"restore_ink_below must be a share in [0, 1] or None, got {restore_ink_below}")
    _check_remap(removal_remap)
    if removal_remap is not None and not remove_only:
        raise ValueError("removal_remap needs remove_only=True: it stretches the lightening the cleaner made")
    for i, img in enumerate(images):
        _check(img, i)
    originals = list(images)
    if remove_lines is not None:
        images = [remove_ruled_lines(img, remove_lines) for img in images]
    work = [_shrink(img, max_side) for img in images]
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, im in enumerate(work):
        buckets[(-(-im.shape[0] // BUCKET) * BUCKET, -(-im.shape[1] // BUCKET) * BUCKET)].append(i)
    out: list[np.ndarray | None] = [None] * len(work)
    for (bh, bw), idx in sorted(buckets.items()):
        for s in range(0, len(idx), batch_size):
            chunk = idx[s:s + batch_size]
            batch = np.stack([cv2.copyMakeBorder(work[i], 0, bh - work[i].shape[0], 0, bw - work[i].shape[1],
                                                 cv2.BORDER_REPLICATE) for i in chunk])
            cleaned = clean_batch(model, batch, device)
            for j, i in enumerate(chunk):
                h, w = work[i].shape
                res = cleaned[j, :h, :w]
                oh, ow = images[i].shape
                if remove_only and upscale == "removal" and (h, w) != (oh, ow):
                    out[i] = _remove_share(work[i], res, images[i])
                    continue
                if (h, w) != (oh, ow):
                    res = cv2.resize(res, (ow, oh), interpolation=cv2.INTER_CUBIC)
                out[i] = np.maximum(res, images[i]) if remove_only else np.ascontiguousarray(res)
    done = [o for o in out if o is not None]
    if removal_remap is not None:
        done = [remap_removal(img, o, *removal_remap) for img, o in zip(images, done, strict=True)]
    if restore_ink_below is None:
        return done
    return [_gate_ink(orig, o, restore_ink_below) for orig, o in zip(originals, done, strict=True)]
