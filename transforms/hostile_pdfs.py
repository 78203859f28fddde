"""Hostile inputs an audit meets in the wild, generated on the fly: one maker per error kind.

Used by the tests of the PDF reader and of the whole pipeline (nothing binary is committed).
Every maker is deterministic and cheap; the content bomb stays small on disk (about 400 kB) and is
built in chunks, so making it never holds the inflated bytes.
"""
from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Callable

import pymupdf


def build_pdf(objects: list[bytes]) -> bytes:
    """A PDF written by hand with a correct xref table; object 1 is the catalog."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def one_page_pdf(content: bytes, extra: bytes = b"", box: bytes = b"[0 0 612 792]") -> bytes:
    """A one-page PDF whose page has the given content stream body and stream dictionary entries."""
    return build_pdf([
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Count 1/Kids[3 0 R]>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox" + box + b"/Contents 4 0 R>>",
        b"<</Length %d" % len(content) + extra + b">>stream\n" + content + b"\nendstream",
    ])


def text_pdf(pages: int = 1, rotation: int = 0, size: tuple[float, float] = (595, 842),
             text: str = "Signature here") -> bytes:
    """A born-digital PDF of ``pages`` pages, each with one line of text."""
    doc = pymupdf.open()
    for _ in range(pages):
        page = doc.new_page(width=size[0], height=size[1])
        page.insert_text((72, 100), text, fontsize=24)
        page.set_rotation(rotation)
    data = doc.tobytes()
    doc.close()
    return data


def content_bomb_pdf(inflated_mb: int = 400) -> bytes:
    """A page whose content stream is ``inflated_mb`` MB of spaces, deflated (about 1 kB per MB)."""
    if not 1 <= inflated_mb <= 4096:
        raise ValueError(f"inflated_mb must be 1..4096, got {inflated_mb}")
    deflater = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    parts = [deflater.compress(chunk) for _ in range(inflated_mb)]
    parts.append(deflater.flush())
    return one_page_pdf(b"".join(parts), extra=b"/Filter/FlateDecode")


def encrypted_pdf() -> bytes:
    """AES-256 encrypted with a user password: it opens only with the password."""
    doc = pymupdf.open(stream=text_pdf(), filetype="pdf")
    data = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="user")
    doc.close()
    return data


def zero_page_pdf() -> bytes:
    return build_pdf([b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Count 0/Kids[]>>"])


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("contract.pdf", text_pdf())
    return buffer.getvalue()


def html_bytes() -> bytes:
    return b"<!DOCTYPE html><html><body><h1>Contract</h1><p>Signature: ________</p></body></html>"


def png_bytes() -> bytes:
    return pymupdf.Pixmap(pymupdf.csGRAY, pymupdf.IRect(0, 0, 8, 8), False).tobytes("png")


def truncated_pdf() -> bytes:
    return text_pdf()[:200]


# file name -> (maker, the error_kind the reader must give it; None = it must be read fine).
# ``too_many_pages`` expects a run with max_pages < 3 and ``page_too_large`` a pixel budget under
# what a 14400 pt square page needs at the minimum DPI (it always is: 200 in x 50 DPI = 100 M px).
HOSTILE_FILES: dict[str, tuple[Callable[[], bytes], str | None]] = {
    "empty.pdf": (lambda: b"", "empty_file"),
    "web page.pdf": (html_bytes, "not_pdf"),
    "archive.pdf": (zip_bytes, "not_pdf"),
    "picture.pdf": (png_bytes, "not_pdf"),
    "truncated.pdf": (truncated_pdf, "corrupt"),
    "locked.pdf": (encrypted_pdf, "encrypted"),
    "no pages.pdf": (zero_page_pdf, "no_pages"),
    "long.pdf": (lambda: text_pdf(pages=3), "too_many_pages"),
    "poster.pdf": (lambda: text_pdf(size=(14400, 14400)), "page_too_large"),
    "bomb.pdf": (content_bomb_pdf, "content_too_large"),
    "Vertrag für Müller & Söhne.pdf": (text_pdf, None),
}
