"""Tests for transforms.synth_document: text layer, image-only scans, placements tight on the ink."""
from __future__ import annotations

import numpy as np
import pymupdf
import pytest

from transforms.synth_document import ContractSpec, SignatureSlot, make_contract_pdf, paste_ink
from transforms.synth_signature import draw_signature, make_style

SLOTS = (SignatureSlot("alice", "Alice Moreau", "Signature:"),
         SignatureSlot("bob", "Bob Novak", "By:", kind="forged"),
         SignatureSlot("carol", "Carol Haddad", "Signed:"),
         SignatureSlot("alice", "Alice Moreau", "Initials:", page=1))


def _spec(scanned: bool, n_pages: int = 2) -> ContractSpec:
    return ContractSpec(title="Service Agreement", parties=("Acme Holdings Ltd.", "Vega Analytics S.A."),
                        slots=SLOTS, n_pages=n_pages, scanned=scanned)


def _images(seed: int, missing: int | None = 2) -> list[np.ndarray | None]:
    rng = np.random.default_rng(seed)
    a, b, c = (make_style(rng) for _ in range(3))
    imgs: list[np.ndarray | None] = [draw_signature(a, rng), draw_signature(b, rng, forged=True),
                                     draw_signature(c, rng), draw_signature(a, rng)]
    if missing is not None:
        imgs[missing] = None
    return imgs


def _render(page: pymupdf.Page, dpi: int = 100) -> np.ndarray:
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
    return np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width)


@pytest.mark.parametrize("scanned", [False, True])
def test_deterministic_bytes(scanned: bool) -> None:
    a = make_contract_pdf(_spec(scanned), _images(0), np.random.default_rng(5))
    b = make_contract_pdf(_spec(scanned), _images(0), np.random.default_rng(5))
    assert a[0] == b[0] and a[1] == b[1]


def test_born_digital_has_text_layer_and_tight_boxes() -> None:
    data, placed = make_contract_pdf(_spec(False), _images(0), np.random.default_rng(1))
    unsigned, none = make_contract_pdf(_spec(False), [None] * 4, np.random.default_rng(1))
    assert none == []
    doc, blank = pymupdf.open(stream=data, filetype="pdf"), pymupdf.open(stream=unsigned, filetype="pdf")
    assert doc.page_count == 2
    text = "".join(p.get_text() for p in doc)
    for word in ("SERVICE AGREEMENT", "Signature:", "By:", "Signed:", "Initials:", "Alice Moreau", "Date:"):
        assert word in text
    assert [(p.page, p.signer_id, p.kind) for p in placed] == [
        (1, "alice", "genuine"), (2, "alice", "genuine"), (2, "bob", "forged")]
    for p in placed:  # the ink is where the signed page differs from the unsigned one
        signed, empty = _render(doc[p.page - 1]), _render(blank[p.page - 1])
        h, w = signed.shape
        ys, xs = np.nonzero(signed.astype(int) < empty.astype(int) - 60)
        x0, y0, x1, y1 = p.box.to_pixels(w, h)
        inside = (xs >= x0 - 2) & (xs < x1 + 2) & (ys >= y0 - 2) & (ys < y1 + 2)
        assert inside.sum() > 50
        ink_x, ink_y = xs[inside], ys[inside]
        assert abs(ink_x.min() - x0) <= 3 and abs(ink_x.max() + 1 - x1) <= 3
        assert abs(ink_y.min() - y0) <= 3 and abs(ink_y.max() + 1 - y1) <= 3


def test_scanned_pages_are_images_without_text() -> None:
    spec = _spec(True, n_pages=3)
    data, placed = make_contract_pdf(spec, _images(2, missing=None), np.random.default_rng(3))
    doc = pymupdf.open(stream=data, filetype="pdf")
    assert doc.page_count == 3
    for page in doc:
        assert page.get_text().strip() == ""
        images = page.get_images(full=True)
        assert len(images) == 1 and images[0][8] == "DCTDecode"
    assert len(data) / doc.page_count < 400_000
    assert sorted(p.signer_id for p in placed) == ["alice", "alice", "bob", "carol"]
    assert {p.page for p in placed} == {1, 3}
    for p in placed:
        img = _render(doc[p.page - 1], dpi=150)
        x0, y0, x1, y1 = p.box.to_pixels(img.shape[1], img.shape[0])
        assert 0.02 < p.box.y1 - p.box.y0 < 0.1 and p.box.x1 - p.box.x0 < 0.45
        dark = img[y0:y1, x0:x1] < 170
        assert dark.mean() > 0.02  # the box sits on ink
        assert dark[:3].any() and dark[-3:].any() and dark[:, :3].any() and dark[:, -3:].any()  # tight


def test_spec_and_image_validation() -> None:
    with pytest.raises(ValueError, match="n_pages"):
        ContractSpec("T", ("A", "B"), SLOTS, n_pages=0)
    with pytest.raises(ValueError, match="slot page"):
        ContractSpec("T", ("A", "B"), (SignatureSlot("x", "X", page=3),), n_pages=2)
    with pytest.raises(ValueError, match="kind"):
        ContractSpec("T", ("A", "B"), (SignatureSlot("x", "X", kind="copied"),))
    with pytest.raises(ValueError, match="one image"):
        make_contract_pdf(_spec(False), [None], np.random.default_rng(0))
    with pytest.raises(ValueError, match="no ink"):
        make_contract_pdf(_spec(False), [np.full((20, 50), 255, np.uint8), None, None, None],
                          np.random.default_rng(0))


def test_paste_ink_darkens_in_place_and_returns_the_ink_pixels() -> None:
    page = np.full((50, 80), 240, np.uint8)
    ink = np.full((10, 20), 255, np.uint8)
    ink[3:7, 2:18] = 0
    xs, ys = paste_ink(page, ink, 30, 12, 40, 20)  # drawn twice as large
    assert page[12 + 6:12 + 14, 30 + 4:30 + 36].max() < 50  # the stroke, scaled and moved
    assert (page[:12] == 240).all() and (page[:, :30] == 240).all()  # nothing outside its place
    assert xs.min() >= 30 + 3 and xs.max() <= 30 + 36 and ys.min() >= 12 + 5 and ys.max() <= 12 + 14
    assert (page[ys, xs] < 200).all()


def test_a_colour_scan_is_the_gray_scan_with_its_seal_in_colour() -> None:
    from transforms.dropout import drop_red
    from transforms.pdf import open_pdf, render_page

    spec = ContractSpec(title="T", parties=("A", "B"), slots=(SignatureSlot("s", "S"),), scanned=True)
    red = ContractSpec(title="T", parties=("A", "B"), slots=(SignatureSlot("s", "S"),), scanned=True,
                       stamp_ink=(205, 35, 45))
    images = _images(4, missing=None)[:1]
    gray_pdf, gray_placed = make_contract_pdf(spec, images, np.random.default_rng(11))
    red_pdf, red_placed = make_contract_pdf(red, images, np.random.default_rng(11))
    assert gray_placed == red_placed  # the same draws: the same page, the same signature
    gray = render_page(open_pdf(gray_pdf), 0, dpi=100).image
    colour = render_page(open_pdf(red_pdf), 0, dpi=100).image
    dropped = render_page(open_pdf(red_pdf), 0, dpi=100, dropout="red").image
    seal = (dropped.astype(int) - gray.astype(int)) > 60  # ink the dropout took away
    assert seal.sum() > 500  # this page has its seal (seed 11), and the dropout removes most of it
    assert np.abs(colour.astype(int) - gray.astype(int)).mean() < 3  # read as gray, the two scans agree
    x0, y0, x1, y1 = gray_placed[0].box.to_pixels(gray.shape[1], gray.shape[0])
    away = np.ones_like(seal)
    away[max(y0 - 120, 0):y1 + 120, max(x0 - 120, 0):x1 + 200] = False  # far from the seal
    assert np.abs(dropped[away].astype(int) - gray[away].astype(int)).mean() < 3
    pix = open_pdf(red_pdf).load_page(0).get_pixmap(dpi=50, colorspace=pymupdf.csRGB)
    rgb = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, 3)
    assert (drop_red(rgb) >= 0).all() and (rgb[..., 0].astype(int) - rgb[..., 1] > 60).any()  # red is there
    with pytest.raises(ValueError, match="stamp_ink must be three channel values"):
        ContractSpec("T", ("A", "B"), SLOTS, stamp_ink=(300, 0, 0))
