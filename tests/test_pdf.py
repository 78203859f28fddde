"""Tests for transforms/pdf.py: every bad-input kind, generated on the fly, and correct pages and words."""
from __future__ import annotations

import logging
import tracemalloc
import zlib

import numpy as np
import pymupdf
import pytest

from transforms.hostile_pdfs import (
    HOSTILE_FILES,
    build_pdf,
    content_bomb_pdf,
    encrypted_pdf,
    one_page_pdf,
    png_bytes,
    text_pdf,
    zero_page_pdf,
    zip_bytes,
)
from transforms.pdf import (
    ERROR_KINDS,
    DocumentError,
    RenderedPage,
    iter_pages,
    open_pdf,
    page_count,
    pixmap_gray,
    render_page,
)


@pytest.fixture(scope="module")
def bomb_pdf() -> bytes:
    """A page whose content stream is 400 MB of spaces deflated to about 400 kB, built in 1 MB chunks."""
    return content_bomb_pdf(400)


def kind_of(data: bytes, **kwargs: int) -> str:
    with pytest.raises(DocumentError) as info:
        for _ in iter_pages(data, **kwargs):
            pass
    assert info.value.kind in ERROR_KINDS
    assert str(info.value)
    return info.value.kind


@pytest.mark.parametrize(("make", "kind"), [
    (lambda: b"", "empty_file"),
    (lambda: b"<!DOCTYPE html><html><body><p>%PDF-1.4 is not here</p></body></html>" + b" " * 2000, "not_pdf"),
    (lambda: b"<html><body>Signature</body></html>", "not_pdf"),
    (lambda: b"plain text that mentions no header", "not_pdf"),
    (zip_bytes, "not_pdf"),
    (png_bytes, "not_pdf"),
    (lambda: text_pdf()[:200], "corrupt"),
    (lambda: b"%PDF-1.7\n" + bytes(range(256)) * 20, "corrupt"),
])
def test_bad_files_get_their_kind(make, kind: str) -> None:
    assert kind_of(make()) == kind


def test_not_pdf_message_names_the_format() -> None:
    with pytest.raises(DocumentError, match="file is HTML, not a PDF.*<html>"):
        open_pdf(b"<html><body>hi</body></html>")
    with pytest.raises(DocumentError, match="file is a ZIP archive"):
        open_pdf(zip_bytes())
    with pytest.raises(DocumentError, match="no %PDF- header in the first 1024 bytes.*plain"):
        open_pdf(b"plain text")


def test_header_after_leading_junk_is_accepted() -> None:
    assert page_count(b"\xef\xbb\xbf  " + text_pdf()) == 1


def test_encrypted_needs_password() -> None:
    assert kind_of(encrypted_pdf()) == "encrypted"


def test_owner_password_only_still_renders() -> None:
    doc = pymupdf.open(stream=text_pdf(), filetype="pdf")
    data = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner",
                       permissions=int(pymupdf.PDF_PERM_PRINT))
    assert len(list(iter_pages(data, dpi=50))) == 1


def test_zero_pages() -> None:
    assert kind_of(zero_page_pdf()) == "no_pages"


def test_zero_pages_after_repair() -> None:
    data = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\n"
    with pytest.raises(DocumentError, match="0 pages after MuPDF repaired it") as info:
        open_pdf(data)
    assert info.value.kind == "no_pages"


def test_too_many_pages() -> None:
    data = text_pdf(pages=3)
    assert page_count(data, max_pages=3) == 3
    with pytest.raises(DocumentError, match="3 pages, more than max_pages=2") as info:
        open_pdf(data, max_pages=2)
    assert info.value.kind == "too_many_pages"


def test_page_that_cannot_be_loaded_is_corrupt() -> None:
    data = build_pdf([b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Count 1/Kids[3 0 R]>>",
                      b"<</Type/Pages/Count 1/Kids[3 0 R]>>"])  # the page tree loops on itself
    with pytest.raises(DocumentError) as info:
        list(iter_pages(data))
    assert (info.value.kind, info.value.page) == ("corrupt", 1)


def test_render_failure_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("out of memory in draw device")

    monkeypatch.setattr(pymupdf.Page, "get_pixmap", fail)
    with pytest.raises(DocumentError, match="out of memory in draw device") as info:
        list(iter_pages(text_pdf()))
    assert (info.value.kind, info.value.page) == ("render_failed", 1)


def test_huge_page_is_too_large_without_rendering() -> None:
    assert kind_of(text_pdf(size=(14400, 14400))) == "page_too_large"


def test_large_page_is_rendered_at_a_lower_dpi(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="transforms.pdf"):
        (page,) = iter_pages(text_pdf(size=(612, 792)), dpi=200, max_pixels=1_000_000)
    assert 50 <= page.dpi < 200
    assert page.image.size <= 1_000_000
    assert page.image.shape == (int(np.ceil(792 * page.dpi / 72)), int(np.ceil(612 * page.dpi / 72)))
    assert "instead of 200" in caplog.text


def test_content_bomb_is_refused_with_bounded_memory(bomb_pdf: bytes) -> None:
    assert len(bomb_pdf) < 2 << 20
    tracemalloc.start()
    try:
        doc = open_pdf(bomb_pdf)
        with pytest.raises(DocumentError, match="inflates past") as info:
            render_page(doc, 0, max_content_bytes=64 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.kind == "content_too_large"
    assert peak < 16 << 20  # 1 MiB chunks, never the 64 MB budget nor the 400 MB stream


def test_content_within_budget_renders() -> None:
    content = zlib.compress(b"0 0 1 rg 10 10 100 100 re f\n" + b" " * 10_000)
    page = render_page(open_pdf(one_page_pdf(content, extra=b"/Filter/FlateDecode")), 0, dpi=72)
    assert page.image.shape == (792, 612)
    assert page.image[792 - 60, 60] < 128  # the filled square, seen from the top-left origin
    with pytest.raises(DocumentError) as info:
        render_page(open_pdf(one_page_pdf(content, extra=b"/Filter/FlateDecode")), 0, max_content_bytes=5_000)
    assert info.value.kind == "content_too_large"


def test_unknown_filter_with_unbounded_expansion_is_refused() -> None:
    data = one_page_pdf(b"\x80" * 100_000, extra=b"/Filter/LZWDecode")
    with pytest.raises(DocumentError, match="LZWDecode") as info:
        render_page(open_pdf(data), 0)
    assert info.value.kind == "content_too_large"


def test_born_digital_page_and_words() -> None:
    pages = list(iter_pages(text_pdf(pages=2), dpi=100))
    assert [p.page_number for p in pages] == [1, 2]
    page = pages[0]
    assert isinstance(page, RenderedPage)
    assert (page.page_count, page.dpi, page.width_pt, page.height_pt) == (2, 100, 595, 842)
    assert page.image.dtype == np.uint8
    assert page.image.shape == (int(np.ceil(842 * 100 / 72)), int(np.ceil(595 * 100 / 72)))
    assert [w.text for w in page.words] == ["Signature", "here"]
    word = page.words[0]
    assert word.x0 == pytest.approx(72 / 595, abs=0.005)
    assert word.y0 < 100 / 842 < word.y1  # the baseline at y=100 pt from the top
    assert_ink_under(page, word)


def assert_ink_under(page: RenderedPage, word) -> None:
    h, w = page.image.shape
    inside = page.image[int(word.y0 * h):int(word.y1 * h) + 1, int(word.x0 * w):int(word.x1 * w) + 1]
    assert inside.min() < 100
    assert page.image.mean() > 250  # the rest of the page is blank paper


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_page_words_follow_the_image(rotation: int) -> None:
    (page,) = iter_pages(text_pdf(rotation=rotation), dpi=72)
    assert page.image.shape == ((595, 842) if rotation in (90, 270) else (842, 595))
    assert (page.width_pt, page.height_pt) == ((842, 595) if rotation in (90, 270) else (595, 842))
    for word in page.words:
        assert_ink_under(page, word)
    word = page.words[0]
    if rotation == 90:  # the top-left corner of the text goes to the top right
        assert word.x0 > 0.8 and word.y0 < 0.2
    elif rotation == 180:
        assert word.x0 > 0.5 and word.y0 > 0.8


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"dpi": 20}, "dpi must be 50..600, got 20"),
    ({"dpi": 601}, "dpi must be 50..600, got 601"),
    ({"min_dpi": 300}, "min_dpi must be <= dpi=200, got 300"),
    ({"max_pixels": 0}, "max_pixels must be >= 1, got 0"),
    ({"index": 1}, "index must be 0..0, got 1"),
])
def test_bad_arguments(kwargs: dict, message: str) -> None:
    doc = open_pdf(text_pdf())
    with pytest.raises(ValueError, match=message):
        render_page(doc, **{"index": 0, **kwargs})


def test_bad_max_pages() -> None:
    with pytest.raises(ValueError, match="max_pages must be >= 1, got 0"):
        open_pdf(text_pdf(), max_pages=0)


def test_document_error_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        DocumentError("bad_kind", "x")


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_every_hostile_file_gets_its_kind(name: str) -> None:
    make, kind = HOSTILE_FILES[name]
    if kind is None:
        assert [p.page_number for p in iter_pages(make(), dpi=50, max_pages=2)] == [1]
    else:
        assert kind_of(make(), dpi=50, max_pages=2) == kind


def test_pixmap_gray_drops_row_padding_and_refuses_colour() -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=33, height=20)  # an odd width: rows of a gray pixmap may be padded
    page.draw_rect(pymupdf.Rect(5, 5, 15, 15), fill=(0, 0, 0))
    pix = page.get_pixmap(dpi=72, colorspace=pymupdf.csGRAY, alpha=False)
    img = pixmap_gray(pix)
    assert img.shape == (pix.height, pix.width) and img.dtype == np.uint8 and img.flags.writeable
    assert img[10, 10] < 50 and img[2, 30] > 200
    with pytest.raises(ValueError, match="3 channels"):
        pixmap_gray(page.get_pixmap(dpi=72, colorspace=pymupdf.csRGB, alpha=False))
    doc.close()
