"""Synthetic business letters as scanned pages: the layout of the typewritten letters and memos that real
signature-detection pages mostly are (letterhead, date, address block, salutation, typed paragraphs, a
closing with the signature above the typed name and title, copy lines, a filing number in the margin).

``make_letter_page`` renders one page to a gray image with PyMuPDF, signs it with the given signature
images (between the closing and the typed name, sometimes running into the name), optionally draws a
simple printed logo and handwritten non-signature marks, adds scanner damage, and returns the image and a
tight box around each signature's ink. Deterministic for a given generator state.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pymupdf

from transforms.boxes import Box
from transforms.noise import scan_artifacts
from transforms.pdf import pixmap_gray
from transforms.synth_document import paste_ink
from transforms.synth_marks import add_handwritten_marks
from transforms.synth_text import COMPANIES, clause_texts, person_name, pick

CLOSINGS = ("Sincerely,", "Sincerely yours,", "Very truly yours,", "Yours truly,", "Best regards,",
            "Yours faithfully,", "Kind regards,", "Cordially,")
JOB_TITLES = ("Vice President", "Director, Marketing", "Regional Sales Manager", "General Counsel",
              "Assistant Secretary", "Manager, Public Affairs", "President", "Treasurer", "Project Director",
              "Senior Scientist", "Director of Research", "Account Executive")
STREETS = ("Park Avenue", "Main Street", "Commerce Drive", "Lake Shore Road", "Elm Street", "Harbor Way")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
CITIES = ("New York, NY 10017", "Louisville, KY 40202", "Greensboro, NC 27420", "Richmond, VA 23261",
          "Chicago, IL 60601", "Winston-Salem, NC 27102", "New Haven, CT 06515")


def _address(rng: np.random.Generator) -> list[str]:
    lines = [person_name(rng)]
    if rng.random() < 0.7:
        lines.append(pick(rng, COMPANIES))
    lines.append(f"{int(rng.integers(1, 9999))} {pick(rng, STREETS)}")
    lines.append(pick(rng, CITIES))
    return lines


def _random_letters(rng: np.random.Generator, n: int, first: str = "A") -> str:
    """``n`` random letters of the alphabet starting at ``first`` ("A" capitals, "a" lower case)."""
    return "".join(chr(int(rng.integers(ord(first), ord(first) + 26))) for _ in range(n))


def _logo(page: pymupdf.Page, rect: pymupdf.Rect, rng: np.random.Generator) -> None:
    """A simple printed mark: a filled or outlined circle or diamond, sometimes with initials."""
    shape = page.new_shape()
    filled = bool(rng.random() < 0.5)
    if rng.random() < 0.5:
        shape.draw_oval(rect)
    else:
        c = (rect.tl + rect.br) / 2
        shape.draw_polyline([pymupdf.Point(c.x, rect.y0), pymupdf.Point(rect.x1, c.y), pymupdf.Point(c.x, rect.y1),
                             pymupdf.Point(rect.x0, c.y), pymupdf.Point(c.x, rect.y0)])
    shape.finish(color=(0, 0, 0), fill=(0, 0, 0) if filled else None, width=float(rng.uniform(1.0, 3.0)))
    shape.commit()
    if rng.random() < 0.7:
        initials = _random_letters(rng, int(rng.integers(1, 4)))
        size = rect.height * 0.4
        width = pymupdf.get_text_length(initials, fontname="hebo", fontsize=size)
        page.insert_text(((rect.x0 + rect.x1 - width) / 2, (rect.y0 + rect.y1) / 2 + size * 0.35), initials,
                         fontname="hebo", fontsize=size, color=(1, 1, 1) if filled else (0, 0, 0))


def _layout(page: pymupdf.Page, rng: np.random.Generator, n_signers: int) -> list[pymupdf.Rect]:
    """Write the letter on ``page``; return, per signer, the free area where the signature goes (points)."""
    w, h = page.rect.width, page.rect.height
    margin = float(rng.uniform(60, 90))
    font, size = ("cour", float(rng.uniform(9.5, 11.5))) if rng.random() < 0.75 else ("tiro", float(rng.uniform(10, 12)))
    lead = size * float(rng.uniform(1.15, 1.45))
    y = float(rng.uniform(40, 70))
    if rng.random() < 0.8:  # letterhead
        company = pick(rng, COMPANIES).upper()
        hsize = float(rng.uniform(12, 20))
        hfont = pick(rng, ("hebo", "tibo", "cobo"))
        tw = pymupdf.get_text_length(company, fontname=hfont, fontsize=hsize)
        x = (w - tw) / 2 if rng.random() < 0.6 else margin
        if rng.random() < 0.4:
            d = hsize * float(rng.uniform(1.8, 3.0))
            lx = max(x - d - 8, 10.0)
            _logo(page, pymupdf.Rect(lx, y - d * 0.7, lx + d, y + d * 0.3), rng)
        page.insert_text((x, y), company, fontname=hfont, fontsize=hsize)
        y += hsize * 1.2
        if rng.random() < 0.6:
            sub = f"{int(rng.integers(1, 9999))} {pick(rng, STREETS)}  -  {pick(rng, CITIES)}"
            page.insert_text(((w - pymupdf.get_text_length(sub, fontname='helv', fontsize=7.5)) / 2, y), sub,
                             fontname="helv", fontsize=7.5)
        y += float(rng.uniform(20, 40))
    date = f"{pick(rng, MONTHS)} {int(rng.integers(1, 29))}, {int(rng.integers(1965, 2005))}"
    date_x = margin if rng.random() < 0.5 else w / 2 + float(rng.uniform(0, 60))
    page.insert_text((date_x, y), date, fontname=font, fontsize=size)
    y += lead * 2.5
    for line in _address(rng):
        page.insert_text((margin, y), line, fontname=font, fontsize=size)
        y += lead
    y += lead
    page.insert_text((margin, y), f"Dear {pick(rng, ('Mr.', 'Ms.', 'Dr.'))} {person_name(rng).split()[-1]}:",
                     fontname=font, fontsize=size)
    y += lead * 1.5
    block_h = 110.0 + 14.0 * int(n_signers > 1)
    bottom = h - margin - block_h - float(rng.uniform(0, 120))
    clauses = clause_texts(rng, (pick(rng, COMPANIES), pick(rng, COMPANIES)))
    while bottom - y > 3 * lead:
        _, body = next(clauses)
        rect = pymupdf.Rect(margin, y, w - margin, bottom)
        rc = page.insert_textbox(rect, body, fontname=font, fontsize=size, lineheight=lead / size)
        if rc < 0:
            break
        y += rect.height - rc + lead
    closing_x = margin if rng.random() < 0.45 else w / 2 + float(rng.uniform(-20, 40))
    page.insert_text((closing_x, y + lead), pick(rng, CLOSINGS), fontname=font, fontsize=size)
    gap = float(rng.uniform(34, 60))
    areas = []
    for k in range(n_signers):
        x = closing_x if k == 0 else (margin if closing_x > w / 2 - 40 else w / 2 + 20)
        top = y + lead * 1.4
        name_y = top + gap
        page.insert_text((x, name_y), person_name(rng), fontname=font, fontsize=size)
        if rng.random() < 0.8:
            page.insert_text((x, name_y + lead), pick(rng, JOB_TITLES), fontname=font, fontsize=size)
        areas.append(pymupdf.Rect(x - 10, top, min(x + 210, w - 15), name_y))
    tail = name_y + lead * 3
    if rng.random() < 0.6:
        initials = _random_letters(rng, 3) + ":" + _random_letters(rng, 2, "a")
        page.insert_text((margin, tail), initials, fontname=font, fontsize=size)
        tail += lead * 1.5
    if rng.random() < 0.5 and tail < h - 30:
        page.insert_text((margin, tail), f"cc: {person_name(rng)}", fontname=font, fontsize=size)
    if rng.random() < 0.5:  # a filing (Bates) number in the margin, often turned
        number = str(int(rng.integers(10 ** 9, 10 ** 10)))
        if rng.random() < 0.5:
            page.insert_text((w - float(rng.uniform(15, 30)), h - float(rng.uniform(60, 200))), number,
                             fontname="cobo", fontsize=float(rng.uniform(9, 13)), rotate=90)
        else:
            page.insert_text((w - margin - 80, h - float(rng.uniform(20, 40))), number, fontname="cobo",
                             fontsize=float(rng.uniform(9, 13)))
    return areas


def make_letter_page(rng: np.random.Generator, signatures: Sequence[np.ndarray | None], dpi: int = 100,
                     marks: bool = True) -> tuple[np.ndarray, list[Box]]:
    """One letter page as a ``(H, W) uint8`` gray image at ``dpi`` and the tight box of every signature on it.

    ``signatures``: one ink-dark ``(H, W) uint8`` image per signer (one or two), ``None`` for a letter left
    unsigned. Each goes into the space between the closing and its typed name, 30-60 pt tall, and
    sometimes runs into the name below. ``marks``: draw 0-3 handwritten marks (dates, ticks, figures) too.
    """
    if not 1 <= len(signatures) <= 2:
        raise ValueError(f"a letter has one or two signers, got {len(signatures)}")
    if not 50 <= dpi <= 300:
        raise ValueError(f"dpi must be 50..300, got {dpi}")
    doc = pymupdf.open()
    page = doc.new_page(width=612.0, height=792.0) if rng.random() < 0.7 else doc.new_page(width=595.0, height=842.0)
    areas = _layout(page, rng, len(signatures))
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
    img = pixmap_gray(pix)
    doc.close()
    ph, pw = img.shape
    k = dpi / 72.0
    boxes = []
    for area, sig in zip(areas, signatures, strict=True):
        if sig is None:
            continue
        if sig.ndim != 2 or sig.dtype != np.uint8:
            raise ValueError(f"signature must be (H, W) uint8, got {sig.shape} {sig.dtype}")
        th = float(rng.uniform(30, 60))
        tw = min(th * sig.shape[1] / sig.shape[0], area.width)
        th = tw * sig.shape[0] / sig.shape[1]
        x0 = area.x0 + float(rng.uniform(0, max(area.width - tw, 0)))
        y1 = area.y1 + th * float(rng.uniform(-0.1, 0.35))  # the ink may run into the typed name
        px0, py0 = int(round(x0 * k)), int(round((y1 - th) * k))
        tw_px, th_px = max(int(round(tw * k)), 1), max(int(round(th * k)), 1)
        px0, py0 = min(max(px0, 0), pw - tw_px), min(max(py0, 0), ph - th_px)
        xs, ys = paste_ink(img, sig, px0, py0, tw_px, th_px)
        if len(ys):
            boxes.append(Box.from_pixels(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1, pw, ph))
    if marks and rng.random() < 0.6:
        img = add_handwritten_marks(img, rng, int(rng.integers(1, 4)), avoid=[(b.x0, b.y0, b.x1, b.y1) for b in boxes])
    if rng.random() < 0.85:
        img = scan_artifacts(img, rng, rotate=False, jpeg=True)
    return img, boxes
