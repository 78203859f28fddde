"""Safe opening and rendering of PDF bytes with PyMuPDF: one gray page image and its words at a time.

Bad input is normal input: every way a file can fail becomes a :class:`DocumentError` whose ``kind``
is one of :data:`ERROR_KINDS` (the reports use these strings). Nothing here allocates more than the
pixel budget for a page image or the byte budget for a page's decoded content streams.

PyMuPDF is not thread-safe: use one document per thread (Beam DoFns do).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pymupdf

from transforms.dropout import DROPOUT_COLOURS, to_gray
from transforms.pdf_streams import StreamTooLarge, decoded_size

logger = logging.getLogger(__name__)

ERROR_KINDS = ("empty_file", "not_pdf", "corrupt", "encrypted", "no_pages", "too_many_pages",
               "page_too_large", "content_too_large", "render_failed")
_HEADER_WINDOW = 1024  # readers accept the %PDF- header anywhere in the first 1024 bytes
# Other formats, recognised by their first bytes even when a %PDF- header follows (a ZIP storing a PDF).
_OTHER_FORMATS = ((b"PK\x03\x04", "a ZIP archive"), (b"PK\x05\x06", "a ZIP archive"),
                  (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
                  (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"), (b"<!doctype html", "HTML"),
                  (b"<html", "HTML"), (b"<?xml", "XML"), (b"%!ps", "PostScript"), (b"{", "JSON"))

# MuPDF prints its errors and warnings to stderr by default; we collect them into messages instead.
pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)


class DocumentError(Exception):
    """A document or one of its pages cannot be processed.

    ``kind`` is one of :data:`ERROR_KINDS`; ``page`` is the 1-based page number when one page is at fault.
    """

    def __init__(self, kind: str, message: str, page: int | None = None) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"kind must be one of {ERROR_KINDS}, got {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.page = page


@dataclass(frozen=True)
class Word:
    """A word of the page's text layer, in 0..1 coordinates of the page as displayed (origin top left)."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass
class RenderedPage:
    """One rendered page. ``image`` is ``(H, W) uint8`` gray, ink dark, as a reader sees it (rotation applied);
    ``dpi`` is the resolution actually used, ``width_pt``/``height_pt`` the displayed page size in points."""

    page_number: int
    page_count: int
    dpi: int
    width_pt: float
    height_pt: float
    image: np.ndarray
    words: list[Word]


def _mupdf_messages() -> str:
    """MuPDF's warnings since the last call, on one line, and reset them."""
    text = pymupdf.TOOLS.mupdf_warnings(reset=True) or ""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _with_warnings(message: str) -> str:
    warnings = _mupdf_messages()
    return f"{message} (MuPDF: {warnings})" if warnings else message


def _check_dpi(name: str, value: int) -> None:
    if not 50 <= value <= 600:
        raise ValueError(f"{name} must be 50..600, got {value}")


def open_pdf(data: bytes, max_pages: int = 500) -> pymupdf.Document:
    """Open PDF ``data`` and check that it can be rendered page by page; the caller closes the document.

    Raises :class:`DocumentError` with kind ``empty_file``, ``not_pdf``, ``corrupt``, ``encrypted``,
    ``no_pages`` or ``too_many_pages``; ``ValueError`` when ``max_pages < 1``.
    """
    if max_pages < 1:
        raise ValueError(f"max_pages must be >= 1, got {max_pages}")
    if len(data) == 0:
        raise DocumentError("empty_file", "file is empty (0 bytes)")
    start = data[:32].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for magic, name in _OTHER_FORMATS:
        if start.startswith(magic.lower()):
            raise DocumentError("not_pdf", f"file is {name}, not a PDF ({len(data)} bytes, starting {data[:16]!r})")
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        raise DocumentError("not_pdf", f"no %PDF- header in the first {_HEADER_WINDOW} bytes "
                                       f"({len(data)} bytes, starting {data[:16]!r})")
    _mupdf_messages()
    try:
        # filetype="pdf" always: left to guess, MuPDF also opens HTML, images and XPS.
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:  # MuPDF raises FileDataError, RuntimeError or its own error types
        raise DocumentError("corrupt", _with_warnings(f"cannot open PDF ({len(data)} bytes): {exc}")) from exc
    try:
        _check_document(doc, max_pages)
    except DocumentError:
        doc.close()
        raise
    return doc


def _check_document(doc: pymupdf.Document, max_pages: int) -> None:
    if doc.needs_pass:
        raise DocumentError("encrypted", _with_warnings("PDF is encrypted and needs a password"))
    count = doc.page_count
    if count == 0:
        repaired = " after MuPDF repaired it" if doc.is_repaired else ""
        raise DocumentError("no_pages", _with_warnings(f"PDF has 0 pages{repaired}"))
    if count > max_pages:
        raise DocumentError("too_many_pages", f"PDF has {count} pages, more than max_pages={max_pages}")


def page_count(data: bytes, max_pages: int = 500) -> int:
    """The number of pages of PDF ``data`` after the checks of :func:`open_pdf` (which raises)."""
    doc = open_pdf(data, max_pages)
    try:
        return doc.page_count
    finally:
        doc.close()


def _content_xrefs(page: pymupdf.Page) -> list[int]:
    """The page's content streams and the form XObjects its resources name directly."""
    xrefs = [x for x in page.get_contents() if x > 0]
    xrefs += [item[0] for item in page.get_xobjects() if item[0] > 0]
    return list(dict.fromkeys(xrefs))


def _filters(doc: pymupdf.Document, xref: int) -> list[str]:
    kind, value = doc.xref_get_key(xref, "Filter")
    if kind == "name":
        return [value.lstrip("/")]
    if kind == "array":
        return [name.strip() for name in value.strip("[] ").split("/") if name.strip()]
    return []


def _check_content_size(doc: pymupdf.Document, page: pymupdf.Page, number: int, budget: int) -> None:
    """Raise ``content_too_large`` when the page's decoded content streams would exceed ``budget`` bytes."""
    total = 0
    for xref in _content_xrefs(page):
        raw = doc.xref_stream_raw(xref) or b""
        try:
            total += decoded_size(raw, _filters(doc, xref), budget - total)
        except StreamTooLarge as exc:
            raise DocumentError("content_too_large", f"page {number}: content stream xref {xref} {exc} "
                                                     f"(budget {budget} bytes for the page)", number) from exc


def _fit_dpi(width_pt: float, height_pt: float, dpi: int, max_pixels: int) -> int:
    """The highest DPI <= ``dpi`` at which the page image has at most ``max_pixels`` pixels."""
    def pixels(d: int) -> float:
        return math.ceil(width_pt * d / 72 + 1) * math.ceil(height_pt * d / 72 + 1)

    fitted = dpi
    if pixels(fitted) > max_pixels:
        fitted = int(dpi * math.sqrt(max_pixels / pixels(dpi)))
        while fitted > 0 and pixels(fitted) > max_pixels:
            fitted -= 1
    return fitted


def _words(page: pymupdf.Page) -> list[Word]:
    """The text layer's words in 0..1 coordinates of the displayed (rotated) page."""
    width, height = page.rect.width, page.rect.height
    if width <= 0 or height <= 0:
        return []
    matrix = page.rotation_matrix
    words = []
    for x0, y0, x1, y1, text, *_ in page.get_text("words"):
        rect = pymupdf.Rect(x0, y0, x1, y1) * matrix  # text coordinates are on the unrotated page
        nx0, nx1 = sorted((min(max(rect.x0 / width, 0.0), 1.0), min(max(rect.x1 / width, 0.0), 1.0)))
        ny0, ny1 = sorted((min(max(rect.y0 / height, 0.0), 1.0), min(max(rect.y1 / height, 0.0), 1.0)))
        words.append(Word(text, nx0, ny0, nx1, ny1))
    return words


def pixmap_rgb(pix: pymupdf.Pixmap) -> np.ndarray:
    """A three-channel pixmap's samples as an ``(H, W, 3) uint8`` RGB array of its own (stride honoured)."""
    if pix.n != 3:
        raise ValueError(f"expected a three-channel RGB pixmap, got {pix.n} channels")
    rows = np.frombuffer(pix.samples_mv, np.uint8).reshape(pix.height, pix.stride)  # a view, copied below
    return rows[:, :pix.width * 3].reshape(pix.height, pix.width, 3).copy()


def pixmap_gray(pix: pymupdf.Pixmap) -> np.ndarray:
    """A one-channel pixmap's samples as an ``(H, W) uint8`` array of its own (rows may be padded: stride honoured)."""
    if pix.n != 1:
        raise ValueError(f"expected a one-channel gray pixmap, got {pix.n} channels")
    return np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, :pix.width].copy()


def render_page(doc: pymupdf.Document, index: int, dpi: int = 200, max_pixels: int = 40_000_000,
                min_dpi: int = 50, max_content_bytes: int = 64 << 20, dropout: str = "none") -> RenderedPage:
    """Render page ``index`` (0-based) of ``doc`` to gray at ``dpi``, lowered down to ``min_dpi`` to fit
    ``max_pixels``; with its text-layer words. ``dropout``: ``none`` (MuPDF's gray rendering) or ``red``
    (rendered in colour, then ``transforms.dropout.to_gray``: red seals and stamps taken out).

    Raises :class:`DocumentError` with kind ``corrupt`` (the page cannot be loaded), ``content_too_large``
    (checked before rendering), ``page_too_large`` or ``render_failed``; ``ValueError`` for bad arguments.
    """
    _check_dpi("dpi", dpi)
    _check_dpi("min_dpi", min_dpi)
    if min_dpi > dpi:
        raise ValueError(f"min_dpi must be <= dpi={dpi}, got {min_dpi}")
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    if max_content_bytes < 1:
        raise ValueError(f"max_content_bytes must be >= 1, got {max_content_bytes}")
    if dropout not in DROPOUT_COLOURS:
        raise ValueError(f"dropout must be one of {DROPOUT_COLOURS}, got {dropout!r}")
    count = doc.page_count
    if not 0 <= index < count:
        raise ValueError(f"index must be 0..{count - 1}, got {index}")
    number = index + 1
    _mupdf_messages()
    try:
        page = doc.load_page(index)
    except Exception as exc:  # MuPDF's own error types
        raise DocumentError("corrupt", _with_warnings(f"page {number}: cannot load page: {exc}"), number) from exc
    _check_content_size(doc, page, number, max_content_bytes)
    width_pt, height_pt = page.rect.width, page.rect.height
    if width_pt <= 0 or height_pt <= 0:
        raise DocumentError("corrupt", f"page {number}: empty page box {page.rect}", number)
    used = _fit_dpi(width_pt, height_pt, dpi, max_pixels)
    if used < min_dpi:
        raise DocumentError("page_too_large", f"page {number} is {width_pt:.0f}x{height_pt:.0f} pt: over "
                                              f"max_pixels={max_pixels} even at min_dpi={min_dpi}", number)
    if used < dpi:
        logger.info("page %d is %.0fx%.0f pt: rendering at %d dpi instead of %d to stay under %d pixels",
                    number, width_pt, height_pt, used, dpi, max_pixels)
    try:
        if dropout == "none":
            image = pixmap_gray(page.get_pixmap(dpi=used, colorspace=pymupdf.csGRAY, alpha=False))
        else:
            image = to_gray(pixmap_rgb(page.get_pixmap(dpi=used, colorspace=pymupdf.csRGB, alpha=False)), dropout)
        words = _words(page)
    except Exception as exc:  # MuPDF's own error types
        raise DocumentError("render_failed", _with_warnings(f"page {number}: rendering failed: {exc}"),
                            number) from exc
    warnings = _mupdf_messages()
    if warnings:
        logger.debug("page %d rendered with MuPDF warnings: %s", number, warnings)
    return RenderedPage(number, count, used, width_pt, height_pt, image, words)


def iter_pages(data: bytes, dpi: int = 200, max_pages: int = 500, max_pixels: int = 40_000_000,
               min_dpi: int = 50, max_content_bytes: int = 64 << 20, dropout: str = "none") -> Iterator[RenderedPage]:
    """Every page of PDF ``data`` rendered by :func:`render_page`; the first :class:`DocumentError` propagates."""
    _check_dpi("dpi", dpi)
    doc = open_pdf(data, max_pages)
    try:
        for index in range(doc.page_count):
            yield render_page(doc, index, dpi, max_pixels, min_dpi, max_content_bytes, dropout)
    finally:
        doc.close()
