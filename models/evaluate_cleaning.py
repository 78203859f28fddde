"""``python -m models.evaluate cleaning --manifest M.csv [--json OUT]``: PSNR and SSIM of cleaned against
clean on seeded synthetic noisy versions of the manifest's images, beside the same figures for the
uncleaned noisy input (and for cleaning the clean images themselves: what cleaning costs a clean crop).

Noise: ``transforms.noise.add_document_noise`` with ``numpy.random.default_rng([seed, i])`` for the
i-th selected image (sorted by path), at the image's own size.

Reference: the clean image turned by the noise's own small scanner rotation (±2 degrees, in 70 % of the
noisy versions; ``add_document_noise_with_target``), pixel-aligned with the noisy input, because a
cleaner removes ink and damage but cannot see how a crop was turned. The figures against the unturned
clean image are reported beside them (``*_unaligned``): there the turn alone costs about 2 dB on the
noisy input and rewards erasing strokes.
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from models.data import load_gray, read_manifest

log = logging.getLogger(__name__)


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two ``(H, W) uint8`` images (peak 255); 100 when identical."""
    if image.shape != reference.shape:
        raise ValueError(f"shapes differ: {image.shape} vs {reference.shape}")
    mse = float(np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else float(10.0 * np.log10(255.0 ** 2 / mse))


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """Mean structural similarity (Wang et al. 2004, Eq. (13)): Gaussian window sigma 1.5,
    K1 = 0.01, K2 = 0.03, L = 255, on ``(H, W) uint8`` images of the same shape."""
    if image.shape != reference.shape:
        raise ValueError(f"shapes differ: {image.shape} vs {reference.shape}")
    x, y = image.astype(np.float64), reference.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def query_images(images: Sequence[np.ndarray], clean: bool, noise_seed: int | None, cleaner: Path | None = None,
                 device: str | torch.device = "cpu", noise_kinds: Sequence[str] | None = None,
                 indices: Sequence[int] | None = None) -> list[np.ndarray]:
    """The query versions of ``(H, W) uint8`` images for ``verification``: document noise seeded by
    ``default_rng([noise_seed, i])`` when ``noise_seed`` is given (only ``noise_kinds`` when given, else a
    random mix), then the cleaner (``cleaner`` weights, default shipped; with its card's ``cleaning_options``)
    when ``clean``.

    ``indices``: make only the versions of ``images[i]`` for these ``i``, in that order, each with the noise
    it gets when every image is made (``i`` stays its seed), so that the references need not be made."""
    from models.clean import clean_images, cleaning_options, default_cleaner_path, load_cleaner
    from transforms.noise import add_document_noise

    if clean and not Path(cleaner or default_cleaner_path()).is_file():
        raise SystemExit(f"--clean: no cleaning weights at {cleaner or default_cleaner_path()} "
                         "(train them with python -m models.train_cyclegan --export default)")
    positions = range(len(images)) if indices is None else list(indices)
    bad = [i for i in positions if not 0 <= i < len(images)]
    if bad:
        raise ValueError(f"indices {bad[:5]} out of range for {len(images)} images")
    out = [images[i] for i in positions]
    if noise_seed is not None:
        out = [add_document_noise(im, np.random.default_rng([noise_seed, i]), noise_kinds)
               for i, im in zip(positions, out, strict=True)]
    if clean:
        model, card = load_cleaner(cleaner, device)
        log.info("cleaning %d queries with %s", len(out), card.get("model_version"))
        out = clean_images(model, out, device, **cleaning_options(card))
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of the ``cleaning`` subcommand."""
    p.add_argument("--manifest", required=True, type=Path, help="CSV with path, writer, label")
    p.add_argument("--weights", type=Path, default=None, help="cleaner safetensors (default: shipped cyclegan_default)")
    p.add_argument("--split", choices=("all", "validation", "train"), default="validation",
                   help="writers of the SigNet card's split (or the SigNet default split)")
    p.add_argument("--max-images", type=int, default=300, help="seeded pick of this many images (0 = all)")
    p.add_argument("--seed", type=int, default=4, help="noise and selection seed")
    p.add_argument("--max-side", type=int, default=None, help="working scale (default: the card's max_side)")
    p.add_argument("--remove-only", choices=("card", "yes", "no"), default="card",
                   help="clean_images(remove_only=...): from the card (default) or forced")
    p.add_argument("--device", default="cpu", help="auto | cpu | cuda")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--record-card", action="store_true", help="store the figures in the cleaner's card")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate the cleaner on noisy versions of the selected genuine and forged images."""
    from models.clean import clean_images, cleaning_options, default_cleaner_path, load_cleaner, update_card
    from models.cleaning_data import training_writers
    from models.weights import WEIGHTS_DIR, resolve_device
    from transforms.noise import add_document_noise_with_target

    device = resolve_device(args.device)
    path = args.weights or default_cleaner_path()
    model, card = load_cleaner(path, device)
    options = cleaning_options(card)
    max_side = args.max_side or options["max_side"]
    rows = sorted(read_manifest(args.manifest), key=lambda s: s.rel_path)
    source = "all writers"
    if args.split != "all":
        train_w, val_w, source = training_writers(rows, WEIGHTS_DIR / "signet_default.json")
        keep = set(val_w if args.split == "validation" else train_w)
        rows = [s for s in rows if s.writer in keep]
    if args.max_images and len(rows) > args.max_images:
        pick = np.random.default_rng(args.seed).choice(len(rows), args.max_images, replace=False)
        rows = [rows[i] for i in sorted(pick)]
    if not rows:
        raise ValueError("no manifest rows left after the split filter")
    originals = [load_gray(s.path) for s in rows]
    pairs = [add_document_noise_with_target(c, np.random.default_rng([args.seed, i])) for i, c in enumerate(originals)]
    noisy, clean = [p[0] for p in pairs], [p[1] for p in pairs]
    log.info("cleaning %d noisy and %d clean images (max_side %s)", len(noisy), len(clean), max_side)
    remove_only = options["remove_only"] if args.remove_only == "card" else args.remove_only == "yes"
    options.update(max_side=max_side, remove_only=remove_only)
    cleaned = clean_images(model, noisy, device, **options)
    cleaned_clean = clean_images(model, originals, device, **options)

    def mean(f, xs, refs=clean) -> float:  # noqa: ANN001
        return round(float(np.mean([f(a, b) for a, b in zip(xs, refs, strict=True)])), 3)

    out: dict[str, Any] = {
        "model_version": card.get("model_version"), "manifest": str(args.manifest), "split": args.split,
        "split_source": source, "n_images": len(rows), "n_writers": len({s.writer for s in rows}), "seed": args.seed,
        "max_side": max_side, "remove_only": remove_only, "upscale": options["upscale"],
        "psnr_noisy": mean(psnr, noisy), "psnr_cleaned": mean(psnr, cleaned),
        "ssim_noisy": mean(ssim, noisy), "ssim_cleaned": mean(ssim, cleaned),
        "psnr_clean_input_cleaned": mean(psnr, cleaned_clean, originals),
        "ssim_clean_input_cleaned": mean(ssim, cleaned_clean, originals),
        "reference": "clean image turned like its noisy version (add_document_noise_with_target)",
        "psnr_noisy_unaligned": mean(psnr, noisy, originals), "psnr_cleaned_unaligned": mean(psnr, cleaned, originals),
        "ssim_noisy_unaligned": mean(ssim, noisy, originals), "ssim_cleaned_unaligned": mean(ssim, cleaned, originals),
    }
    out["psnr_gain_db"] = round(out["psnr_cleaned"] - out["psnr_noisy"], 3)
    out["psnr_gain_db_unaligned"] = round(out["psnr_cleaned_unaligned"] - out["psnr_noisy_unaligned"], 3)
    if args.record_card:
        update_card(path, "evaluation_cleaning", out)
    return out
