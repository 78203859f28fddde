"""Synthetic contract PDFs with signatures placed on signature lines, and where each one landed.

``make_contract_pdf`` lays out a contract with PyMuPDF (title, numbered clauses, signature blocks with
labels, ruled lines, printed names and dates). Born-digital documents keep the text layer and get each
signature as an image with an alpha channel on its line; scanned documents are the same pages rendered to
gray images, signatures and stamps composited, scan noise and a slight rotation applied, and inserted as
JPEG image-only pages (no text layer). Boxes are normalized page coordinates, tight around the ink.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pymupdf

from transforms.boxes import Box
from transforms.noise import add_stamp, colour_ink, scan_artifacts
from transforms.pdf import pixmap_gray
from transforms.synth_text import clause_texts

INK_THRESHOLD = 200  # a signature pixel darker than this is ink (for tight boxes)
_MARGIN = 60.0
_BLOCK_H = 105.0


@dataclass(frozen=True)
class SignatureSlot:
    """A signature block: who is expected to sign, the label printed before the line, and on which page
    (1-based; 0 = the last page). ``kind`` says what image the caller supplies: 'genuine' or 'forged'."""

    signer_id: str
    name: str
    label: str = "Signature:"
    page: int = 0
    kind: str = "genuine"


@dataclass(frozen=True)
class ContractSpec:
    """What one contract looks like. ``page_size`` in points (A4 default); ``dpi`` and ``jpeg_quality``
    apply to scanned documents only; ``stamp`` puts a seal near a signature on scanned pages, in gray ink
    or, with ``stamp_ink`` (RGB), in that colour on a colour scan (the page's other ink stays gray)."""

    title: str
    parties: tuple[str, str]
    slots: tuple[SignatureSlot, ...]
    n_pages: int = 1
    scanned: bool = False
    date: str = "14 March 2026"
    dpi: int = 150
    jpeg_quality: int = 60
    stamp: bool = True
    stamp_ink: tuple[int, int, int] | None = None
    page_size: tuple[float, float] = (595.0, 842.0)

    def __post_init__(self) -> None:
        if not 1 <= self.n_pages <= 50:
            raise ValueError(f"n_pages must be 1..50, got {self.n_pages}")
        if not 50 <= self.dpi <= 600:
            raise ValueError(f"dpi must be 50..600, got {self.dpi}")
        if not 10 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be 10..100, got {self.jpeg_quality}")
        if self.stamp_ink is not None and (len(self.stamp_ink) != 3 or not all(0 <= c <= 255 for c in self.stamp_ink)):
            raise ValueError(f"stamp_ink must be three channel values 0..255, got {self.stamp_ink}")
        for s in self.slots:
            if not 0 <= s.page <= self.n_pages:
                raise ValueError(f"slot page must be 0..{self.n_pages}, got {s.page} for {s.signer_id}")
            if s.kind not in ("genuine", "forged"):
                raise ValueError(f"slot kind must be 'genuine' or 'forged', got {s.kind!r}")


@dataclass(frozen=True)
class PlacedSignature:
    """A signature that is on the page: ``page`` 1-based, ``box`` tight around its ink."""

    page: int
    box: Box
    signer_id: str
    kind: str


@dataclass(frozen=True)
class _Line:
    page: int  # 0-based
    x0: float
    x1: float
    y: float


def _layout(doc: pymupdf.Document, spec: ContractSpec, rng: np.random.Generator) -> list[_Line]:
    """Write the text of every page into ``doc``; return the signature line of each slot."""
    w, h = spec.page_size
    by_page: dict[int, list[int]] = {}
    for i, s in enumerate(spec.slots):
        by_page.setdefault((s.page or spec.n_pages) - 1, []).append(i)
    clauses = iter(clause_texts(rng, spec.parties))
    lines: list[_Line | None] = [None] * len(spec.slots)
    font = "tiro" if rng.random() < 0.6 else "helv"
    number = 1
    for p in range(spec.n_pages):
        page = doc.new_page(width=w, height=h)
        y = _MARGIN
        if p == 0:
            page.insert_textbox(pymupdf.Rect(_MARGIN, y, w - _MARGIN, y + 30), spec.title.upper(),
                                fontname="hebo", fontsize=15, align=pymupdf.TEXT_ALIGN_CENTER)
            y += 34
            intro = (f'This {spec.title} (the "Agreement") is made on {spec.date} between '
                     f'{spec.parties[0]} (the "Client") and {spec.parties[1]} (the "Provider").')
            rc = page.insert_textbox(pymupdf.Rect(_MARGIN, y, w - _MARGIN, y + 60), intro,
                                     fontname=font, fontsize=10.5)
            y += 60 - rc + 10
        slots_here = by_page.get(p, [])
        rows = (len(slots_here) + 1) // 2
        bottom = h - _MARGIN - 16 - rows * _BLOCK_H - (30 if slots_here else 0)
        while True:
            heading, body = next(clauses)
            text = f"{number}. {heading}. {body}"
            rect = pymupdf.Rect(_MARGIN, y, w - _MARGIN, bottom)
            if rect.height < 30:
                break
            rc = page.insert_textbox(rect, text, fontname=font, fontsize=10, align=pymupdf.TEXT_ALIGN_JUSTIFY)
            if rc < 0:
                break
            y += rect.height - rc + 8
            number += 1
        page.insert_text((w / 2 - 20, h - _MARGIN / 2), f"Page {p + 1} of {spec.n_pages}",
                         fontname="helv", fontsize=8)
        if slots_here:
            note = ("IN WITNESS WHEREOF, the parties have signed this Agreement on the date below."
                    if p == spec.n_pages - 1 else "Acknowledged by the parties for this page:")
            page.insert_text((_MARGIN, bottom + 18), note, fontname=font, fontsize=10)
        for k, i in enumerate(slots_here):
            s = spec.slots[i]
            x = _MARGIN + (k % 2) * (w - 2 * _MARGIN) / 2
            yl = bottom + 30 + (k // 2) * _BLOCK_H + 55
            lw = pymupdf.get_text_length(s.label, fontname="helv", fontsize=10)
            page.insert_text((x, yl - 2), s.label, fontname="helv", fontsize=10)
            x0, x1 = x + lw + 6, x + (w - 2 * _MARGIN) / 2 - 20
            page.draw_line((x0, yl), (x1, yl), color=(0, 0, 0), width=0.8)
            page.insert_text((x, yl + 16), f"Name: {s.name}", fontname="helv", fontsize=9.5)
            page.insert_text((x, yl + 30), f"Date: {spec.date}", fontname="helv", fontsize=9.5)
            lines[i] = _Line(p, x0, x1, yl)
    return [ln for ln in lines if ln is not None]


def _ink_bbox(img: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(img < INK_THRESHOLD)
    if len(ys) == 0:
        raise ValueError(f"signature image of shape {img.shape} has no ink darker than {INK_THRESHOLD}")
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _place(line: _Line, img: np.ndarray, rng: np.random.Generator) -> pymupdf.Rect:
    """Where the image goes on its line (points): 28-46 pt tall, the ink straddling the line."""
    ih, iw = img.shape
    th = float(rng.uniform(28, 46))
    tw = th * iw / ih
    room = line.x1 - line.x0 + 10
    if tw > room:
        th, tw = th * room / tw, room
    x = line.x0 - 5 + float(rng.uniform(0, max(room - tw, 0)))
    y1 = line.y + th * float(rng.uniform(0.08, 0.3))
    return pymupdf.Rect(x, y1 - th, x + tw, y1)


def _png_with_alpha(img: np.ndarray) -> bytes:
    """Gray ink as a BGRA PNG whose alpha is the ink's darkness, so ruled lines show through."""
    alpha = np.clip((255.0 - img.astype(np.float32)) * 1.6, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".png", cv2.merge([img, img, img, alpha]))
    if not ok:
        raise ValueError(f"PNG encoding failed for a signature of shape {img.shape}")
    return buf.tobytes()


def make_contract_pdf(spec: ContractSpec, signature_images: Sequence[np.ndarray | None],
                      rng: np.random.Generator) -> tuple[bytes, list[PlacedSignature]]:
    """The contract's PDF bytes and the signatures placed in it.

    ``signature_images[i]`` is the ``(H, W) uint8`` ink-dark image for ``spec.slots[i]`` (tightly cropped,
    as ``draw_signature`` makes it), or ``None`` for an expected signature that is missing (the block and
    its empty line are still printed). Deterministic for a given ``rng`` state.
    """
    if len(signature_images) != len(spec.slots):
        raise ValueError(f"need one image (or None) per slot: {len(spec.slots)} slots, "
                         f"{len(signature_images)} images")
    doc = pymupdf.open()
    lines = _layout(doc, spec, rng)
    w, h = spec.page_size
    placed: list[tuple[_Line, pymupdf.Rect, np.ndarray, SignatureSlot]] = []
    for line, img, slot in zip(lines, signature_images, spec.slots, strict=True):
        if img is None:
            continue
        if img.ndim != 2 or img.dtype != np.uint8:
            raise ValueError(f"signature for {slot.signer_id} must be (H, W) uint8, got {img.shape} {img.dtype}")
        placed.append((line, _place(line, img, rng), img, slot))
    out: list[PlacedSignature] = []
    if not spec.scanned:
        for line, rect, img, slot in placed:
            doc[line.page].insert_image(rect, stream=_png_with_alpha(img))
            bx0, by0, bx1, by1 = _ink_bbox(img)
            sx, sy = rect.width / img.shape[1], rect.height / img.shape[0]
            box = Box.from_pixels(rect.x0 + bx0 * sx, rect.y0 + by0 * sy, rect.x0 + bx1 * sx,
                                  rect.y0 + by1 * sy, int(w), int(h))
            out.append(PlacedSignature(line.page + 1, box, slot.signer_id, slot.kind))
        out.sort(key=lambda ps: ps.page)
        data = doc.tobytes(garbage=3, deflate=True, no_new_id=True)
        doc.close()
        return data, out
    scanned = pymupdf.open()
    for p in range(spec.n_pages):
        page_img, boxes = _scan_page(doc[p], [x for x in placed if x[0].page == p], spec, rng)
        encoded = page_img if page_img.ndim == 2 else cv2.cvtColor(page_img, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", encoded, [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality])
        if not ok:
            raise ValueError(f"JPEG encoding failed for page {p + 1}")
        new = scanned.new_page(width=w, height=h)
        new.insert_image(new.rect, stream=buf.tobytes())
        out.extend(PlacedSignature(p + 1, b, s.signer_id, s.kind) for b, s in boxes)
    doc.close()
    data = scanned.tobytes(garbage=3, deflate=True, no_new_id=True)
    scanned.close()
    return data, out


def paste_ink(page: np.ndarray, ink: np.ndarray, x0: int, y0: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Darken ``ink`` (ink-dark ``(H, W) uint8``), resized to ``width`` x ``height`` px, into ``page`` in place
    at ``(x0, y0)`` (the caller keeps it on the page); returns the page coordinates ``(xs, ys)`` of its pixels
    darker than ``INK_THRESHOLD``."""
    small = cv2.resize(ink, (width, height), interpolation=cv2.INTER_AREA)
    region = page[y0:y0 + height, x0:x0 + width]
    np.minimum(region, small, out=region)
    ys, xs = np.nonzero(small < INK_THRESHOLD)
    return xs + x0, ys + y0


def _scan_page(page: pymupdf.Page, placed: list[tuple[_Line, pymupdf.Rect, np.ndarray, SignatureSlot]],
               spec: ContractSpec, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[Box, SignatureSlot]]]:
    """Render ``page`` at ``spec.dpi``, sign, stamp, add scan noise and rotate it: the ``(H, W) uint8``
    page (``(H, W, 3)`` RGB with ``spec.stamp_ink``: the same page, its seal in that colour) and each
    signature's tight box after all of that."""
    pix = page.get_pixmap(dpi=spec.dpi, colorspace=pymupdf.csGRAY)
    img = pixmap_gray(pix)
    ph, pw = img.shape
    k = spec.dpi / 72.0
    inks: list[np.ndarray] = []  # (N, 2) pixel coordinates of each signature's ink
    for _, rect, sig, _ in placed:
        x0, y0 = int(round(rect.x0 * k)), int(round(rect.y0 * k))
        tw, th = max(int(round(rect.width * k)), 1), max(int(round(rect.height * k)), 1)
        tw, th = min(tw, pw - x0), min(th, ph - y0)
        xs, ys = paste_ink(img, sig, x0, y0, tw, th)
        inks.append(np.stack([xs, ys], axis=1).astype(np.float64))
    plain = img.copy() if spec.stamp_ink is not None else None  # the page without its seal, to colour it
    if spec.stamp and placed and rng.random() < 0.8:
        _, rect, _, _ = placed[int(rng.integers(len(placed)))]
        cx, cy = int(rect.x0 * k), int(rect.y0 * k)
        y0, x0 = max(cy - int(40 * k), 0), max(cx - int(20 * k), 0)
        sub = img[y0:y0 + int(130 * k), x0:x0 + int(200 * k)]
        sub[...] = add_stamp(sub, rng)
    twin = copy.deepcopy(rng)  # the unsealed page gets the very same scan
    img = scan_artifacts(img, rng, rotate=False, jpeg=False)
    m = cv2.getRotationMatrix2D((pw / 2, ph / 2), float(rng.uniform(-1.2, 1.2)), 1.0)
    border = int(rng.integers(225, 256))
    img = cv2.warpAffine(img, m, (pw, ph), flags=cv2.INTER_LINEAR, borderValue=border)
    if plain is not None and spec.stamp_ink is not None:
        plain = scan_artifacts(plain, twin, rotate=False, jpeg=False)
        plain = cv2.warpAffine(plain, m, (pw, ph), flags=cv2.INTER_LINEAR, borderValue=border)
        img = colour_ink(plain, np.minimum(img, plain), spec.stamp_ink)
    boxes = []
    for pts, (_, _, _, slot) in zip(inks, placed, strict=True):
        if len(pts) == 0:
            continue
        moved = pts @ m[:, :2].T + m[:, 2]
        (bx0, by0), (bx1, by1) = moved.min(axis=0), moved.max(axis=0) + 1
        boxes.append((Box.from_pixels(float(bx0), float(by0), float(bx1), float(by1), pw, ph), slot))
    return img, boxes
