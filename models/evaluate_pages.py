"""Verification queries as the pipeline sees them: signed into a contract, rendered, found and cut out again.

``models.evaluate verification --on-pages digital|scanned`` scores each query image after this round
trip instead of the image file itself: the signature goes onto the signature line of a synthetic
one-page contract (``transforms.synth_document``; born-digital, or scanned at 150 dpi with stamps,
scanner damage and JPEG, or ``scanned_red``: that scan in colour, its seal in stamp-pad red), the page is rendered as the pipeline renders it (``transforms.pdf.render_page``,
200 dpi), the shipped detector finds the regions (``models.detect.detect_pages``) and the page's
highest-scoring region is cut out with the pipeline's padding (``transforms.crops.crop_region``). A page
where nothing is found gives a blank query (it embeds as no ink: a rejection) and is counted.
References stay the enrolled image files, as in the pipeline.

``python -m models.evaluate contracts [--kind scanned] [--pages 150]`` (``contract_recall``) checks the
detector alone on this path without any data: synthetic signatures signed into such contracts, the pages
left without a region and the signatures found counted at the card's threshold.
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from transforms.boxes import Box
from transforms.crops import crop_region
from transforms.pdf import open_pdf, render_page
from transforms.synth_document import ContractSpec, SignatureSlot, make_contract_pdf

log = logging.getLogger(__name__)

PAGE_KINDS = ("digital", "scanned", "scanned_red")  # scanned_red: the scanned page in colour, its seal red
RED_STAMP_INK = (205, 35, 45)  # stamp-pad red (RGB) of the scanned_red pages' seal
RENDER_DPI = 200  # the pipeline's default --dpi
BLANK = np.full((8, 8), 255, np.uint8)


def contract_page(image: np.ndarray, kind: str, rng: np.random.Generator,
                  dpi: int = RENDER_DPI, dropout: str = "none") -> tuple[np.ndarray, Box | None]:
    """``(H, W) uint8`` signature (ink dark) -> ``(page, box)``: the ``(H', W') uint8`` rendered page of a
    one-page contract signed with it (``kind``: 'digital', 'scanned', or 'scanned_red': the same scanned
    page as a colour scan whose seal is red) and the signature's tight box on it (None where no ink of it
    survived the scan); rendered with the pipeline's ``--colour_dropout`` ``dropout``."""
    if kind not in PAGE_KINDS:
        raise ValueError(f"page kind must be one of {PAGE_KINDS}, got {kind!r}")
    spec = ContractSpec(title="Service agreement", parties=("Acme B.V.", "The Signer"), scanned=kind != "digital",
                        slots=(SignatureSlot("signer", "The Signer"),),
                        stamp_ink=RED_STAMP_INK if kind == "scanned_red" else None)
    pdf, placed = make_contract_pdf(spec, [image], rng)
    doc = open_pdf(pdf)
    try:
        return render_page(doc, 0, dpi, dropout=dropout).image, placed[0].box if placed else None
    finally:
        doc.close()


def best_region(model: nn.Module, card: dict[str, Any], page: np.ndarray,
                device: str | torch.device = "cpu") -> Box | None:
    """The detector's highest-scoring box on ``page``, or None."""
    from models.detect import detect_pages

    boxes = detect_pages(model, [page], card, device)[0]
    return max(boxes, key=lambda b: b.score) if boxes else None


def page_queries(images: Sequence[np.ndarray], kind: str, seed: int, detector: Path | None = None,
                 device: str | torch.device = "cpu", dropout: str = "none") -> tuple[list[np.ndarray], int]:
    """``(crops, n_missed)``: each image's crop as the pipeline cuts it from its contract page (the contract
    of image ``i`` drawn from ``default_rng([seed, i])``, rendered with ``dropout``), and how many pages had
    no region (blank crops)."""
    from models.detect import load_detector

    model, card = load_detector(detector, device)
    log.info("signing %d queries into %s contracts with detector %s", len(images), kind, card.get("model_version"))
    crops, missed = [], 0
    for i, image in enumerate(images):
        page, _ = contract_page(image, kind, np.random.default_rng([seed, i]), dropout=dropout)
        box = best_region(model, card, page, device)
        if box is None:
            missed += 1
            crops.append(BLANK.copy())
            continue
        crops.append(crop_region(page, box))
    if missed:
        log.warning("%d of %d contract pages had no signature region: blank queries", missed, len(images))
    return crops, missed


def contract_scores(model: nn.Module, card: dict[str, Any], kind: str, pages: int, seed: int = 0,
                    device: str | torch.device = "cpu") -> list[tuple[float, float]]:
    """Per synthetic contract, ``(best, on_signature)``: the highest score of any box the detector draws
    (down to ``AP_MIN_SCORE``; 0 where none) and of a box at IoU >= 0.5 with the signature (0 where none).
    ``pages`` signatures drawn by ``transforms.synth_signature`` (style and strokes from
    ``default_rng([seed, i])``) signed into contracts of ``kind`` (page ``i`` from ``default_rng([seed, i, 1])``),
    detected as the pipeline does with the card's views and box scale."""
    from models.detect import detect_pages
    from models.evaluate_detection import AP_MIN_SCORE
    from transforms.boxes import iou
    from transforms.synth_signature import draw_signature, make_style

    if pages < 1:
        raise ValueError(f"pages must be >= 1, got {pages}")
    out = []
    for i in range(pages):
        rng = np.random.default_rng([seed, i])
        image = draw_signature(make_style(rng), rng, height=160)
        page, truth = contract_page(image, kind, np.random.default_rng([seed, i, 1]))
        boxes = detect_pages(model, [page], card, device, AP_MIN_SCORE)[0]
        on_signature = [b.score for b in boxes if truth is not None and iou(b, truth) >= 0.5]
        out.append((max((b.score for b in boxes), default=0.0), max(on_signature, default=0.0)))
    return out


def contract_recall(model: nn.Module, card: dict[str, Any], kind: str, pages: int, seed: int = 0,
                    device: str | torch.device = "cpu") -> dict[str, Any]:
    """How often the detector finds the signature of a synthetic contract (no data needed): the pages of
    :func:`contract_scores` at the card's threshold. Returns ``pages_without_region`` (no box at all: the
    pipeline would report the signer missing), ``signatures_found`` (a box at IoU >= 0.5 with the
    signature) and its share ``recall``, and the median score of the best box on each signature (0 where none)."""
    threshold = float(card["score_threshold"])
    scores = contract_scores(model, card, kind, pages, seed, device)
    without = sum(best < threshold for best, _ in scores)
    found = sum(on >= threshold for _, on in scores)
    return {"model_version": card.get("model_version"), "kind": kind, "pages": pages, "seed": seed,
            "score_threshold": threshold, "pages_without_region": without, "signatures_found": found,
            "recall": round(found / pages, 4),
            "median_signature_score": round(float(np.median([on for _, on in scores])), 4)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``python -m models.evaluate contracts``: the detector on synthetic contracts (``contract_recall``)."""
    p.add_argument("--kind", choices=PAGE_KINDS, default="scanned", help="born-digital or scanned contracts")
    p.add_argument("--pages", type=int, default=150, help="number of signed contracts")
    p.add_argument("--seed", type=int, default=0, help="seed of the signatures and pages")
    p.add_argument("--weights", type=Path, default=None, help="detector safetensors (default: the shipped detector)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """``contract_recall`` with the detector at ``args.weights``."""
    from models.detect import load_detector

    if args.pages < 1:
        raise SystemExit(f"--pages must be >= 1, got {args.pages}")
    model, card = load_detector(args.weights, args.device)
    return contract_recall(model, card, args.kind, args.pages, args.seed, args.device)
