"""Verification queries as the pipeline sees them: signed into a contract, rendered, found and cut out again.

``models.evaluate verification --on-pages digital|scanned`` scores each query image after this round
trip instead of the image file itself: the signature goes onto the signature line of a synthetic
one-page contract (``transforms.synth_document``; born-digital, or scanned at 150 dpi with stamps,
scanner damage and JPEG), the page is rendered as the pipeline renders it (``transforms.pdf.render_page``,
200 dpi), the shipped detector finds the regions (``models.detect.detect_pages``) and the page's
highest-scoring region is cut out with the pipeline's padding (``transforms.crops.crop_region``). A page
where nothing is found gives a blank query (it embeds as no ink: a rejection) and is counted.
References stay the enrolled image files, as in the pipeline.
"""
from __future__ import annotations

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

PAGE_KINDS = ("digital", "scanned")
RENDER_DPI = 200  # the pipeline's default --dpi
BLANK = np.full((8, 8), 255, np.uint8)


def contract_page(image: np.ndarray, kind: str, rng: np.random.Generator,
                  dpi: int = RENDER_DPI) -> tuple[np.ndarray, Box | None]:
    """``(H, W) uint8`` signature (ink dark) -> ``(page, box)``: the ``(H', W') uint8`` rendered page of a
    one-page contract signed with it (``kind``: 'digital' or 'scanned') and the signature's tight box on
    it (None where no ink of it survived the scan)."""
    if kind not in PAGE_KINDS:
        raise ValueError(f"page kind must be one of {PAGE_KINDS}, got {kind!r}")
    spec = ContractSpec(title="Service agreement", parties=("Acme B.V.", "The Signer"), scanned=kind == "scanned",
                        slots=(SignatureSlot("signer", "The Signer"),))
    pdf, placed = make_contract_pdf(spec, [image], rng)
    doc = open_pdf(pdf)
    try:
        return render_page(doc, 0, dpi).image, placed[0].box if placed else None
    finally:
        doc.close()


def best_region(model: nn.Module, card: dict[str, Any], page: np.ndarray,
                device: str | torch.device = "cpu") -> Box | None:
    """The detector's highest-scoring box on ``page``, or None."""
    from models.detect import detect_pages

    boxes = detect_pages(model, [page], card, device)[0]
    return max(boxes, key=lambda b: b.score) if boxes else None


def page_queries(images: Sequence[np.ndarray], kind: str, seed: int, detector: Path | None = None,
                 device: str | torch.device = "cpu") -> tuple[list[np.ndarray], int]:
    """``(crops, n_missed)``: each image's crop as the pipeline cuts it from its contract page (the contract
    of image ``i`` drawn from ``default_rng([seed, i])``), and how many pages had no region (blank crops)."""
    from models.detect import load_detector

    model, card = load_detector(detector, device)
    log.info("signing %d queries into %s contracts with detector %s", len(images), kind, card.get("model_version"))
    crops, missed = [], 0
    for i, image in enumerate(images):
        page, _ = contract_page(image, kind, np.random.default_rng([seed, i]))
        box = best_region(model, card, page, device)
        if box is None:
            missed += 1
            crops.append(BLANK.copy())
            continue
        crops.append(crop_region(page, box))
    if missed:
        log.warning("%d of %d contract pages had no signature region: blank queries", missed, len(images))
    return crops, missed
