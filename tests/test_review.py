"""The review page, written from small reports built on the fly, and opened in headless Chromium."""
from __future__ import annotations

import base64
import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.reports import SCHEMAS
from pipeline.review import document_priority, render_thumbnails, review_path, write_review
from transforms.boxes import Box
from transforms.crops import crop_region, encode_png
from transforms.demo_corpus import make_sample_contract
from transforms.hostile_pdfs import encrypted_pdf
from transforms.pdf import iter_pages

RUN_DATE, RUN_ID = "2026-11-25", "run1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# In review order: errors and mismatches (by name), review, missing, verified (by name), skipped.
ORDER = ["a<b&c.pdf", "broken.pdf", "review.pdf", "missing.pdf", "gone.pdf", "verified.pdf", "old.pdf"]
IMAGES = 9  # thumbnails: a<b&c, review, missing (last page), verified; crops: 4; cleaned: 1
REFERENCES = 3  # signer_a's, embedded once (signer_b has none)


def _write(output: Path, table: str, rows: list[dict]) -> None:
    folder = output / table / f"run_date={RUN_DATE}"
    folder.mkdir(parents=True, exist_ok=True)
    run = {"run_id": RUN_ID, "run_date": RUN_DATE}
    pq.write_table(pa.Table.from_pylist([{**run, **r} for r in rows], schema=SCHEMAS[table]), folder / "p.parquet")


def _doc(path: Path, status: str, expected: list[str], regions: int, verified: bool | None = None,
         error: tuple[str, str] | None = None) -> dict:
    return {"document_id": None if status == "error" else path.name, "source_path": str(path),
            "page_count": None if status == "error" else 1, "status": status,
            "error_kind": error[0] if error else None, "error_message": error[1] if error else None,
            "signature_count": regions, "expected_signers": expected, "verified": verified,
            "processed_at": dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc), "model_versions": "detector=x"}


def _match(doc: str, signer: str, decision: str, rank: int = 1, similarity: float = 0.5) -> dict:
    return {"document_id": doc, "page": 1, "region": 0, "signer_id": signer, "distance": 1 - similarity,
            "similarity": similarity, "decision": decision, "expected": True, "rank": rank, "model_version": "m"}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """OUTPUT with one run's four tables and the documents they name; and a references folder."""
    root = tmp_path_factory.mktemp("review")
    data, placed = make_sample_contract(np.random.default_rng(0), n_pages=1)
    box = placed[0].box
    crop = crop_region(next(iter_pages(data, dpi=100)).image, box)
    docs = root / "docs"
    docs.mkdir()
    for name in ("a<b&c.pdf", "review.pdf", "missing.pdf", "verified.pdf"):
        (docs / name).write_bytes(data)
    (docs / "broken.pdf").write_bytes(b"<html>not a pdf</html>")
    output = root / "out"
    _write(output, "documents", [
        _doc(docs / "verified.pdf", "ok", ["signer_a"], 1, verified=True),
        _doc(docs / "old.pdf", "skipped", ["signer_a"], 0),
        _doc(docs / "gone.pdf", "ok", ["signer_b"], 1, verified=True),  # deleted since: a placeholder
        _doc(docs / "missing.pdf", "ok", ["signer_a"], 0, verified=False),
        _doc(docs / "review.pdf", "ok", ["signer_a"], 1, verified=False),
        _doc(docs / "broken.pdf", "error", ["signer_a"], 0, error=("not_pdf", "file is HTML <b>")),
        _doc(docs / "a<b&c.pdf", "ok", ["signer_a"], 1, verified=False),
    ])
    signature = {"page": 1, "region": 0, "x0": box.x0, "y0": box.y0, "x1": box.x1, "y1": box.y1, "dpi": 100,
                 "detector": "classical-v1", "detector_score": 0.9, "crop_png": encode_png(crop)}
    _write(output, "signatures", [
        {**signature, "document_id": name, "source_path": str(docs / name),
         "cleaned_png": encode_png(255 - crop) if name == "review.pdf" else None}
        for name in ("a<b&c.pdf", "review.pdf", "gone.pdf", "verified.pdf")])
    _write(output, "matches", [
        _match("a<b&c.pdf", "signer_a", "mismatch", similarity=0.1), _match("review.pdf", "signer_a", "review"),
        _match("gone.pdf", "signer_b", "match", similarity=0.9), _match("verified.pdf", "signer_a", "match"),
        _match("verified.pdf", "signer_b", "review", rank=2, similarity=0.4)])
    _write(output, "errors", [
        {"stage": "read", "document_id": None, "source_path": str(docs / "broken.pdf"), "page": None,
         "error_kind": "not_pdf", "error_message": "file is HTML"},
        {"stage": "references", "document_id": None, "source_path": None, "page": None,
         "error_kind": "corrupt", "error_message": "reference x.png & <y> unreadable"}])
    references = root / "references"
    (references / "signer_a").mkdir(parents=True)
    (references / "signer_b").mkdir()  # enrolled, but no image left: a placeholder
    cv2.imwrite(str(references / "signer_a" / "ref_02.png"), np.full((40, 90), 255, np.uint8))
    cv2.imwrite(str(references / "signer_a" / "ref_01.png"), crop)
    return output, references


@pytest.fixture(scope="module")
def page(reports: tuple[Path, Path]) -> str:
    output, references = reports
    path = write_review(str(output), RUN_DATE, RUN_ID, str(references))
    assert path == review_path(str(output), RUN_DATE)
    return Path(path).read_text(encoding="utf-8")


def test_documents_come_in_review_order_with_names_escaped(page: str) -> None:
    table = page.split('<table class="index">', 1)[1].split("</table>", 1)[0]
    index = re.findall(r"<tr><td>(?:<a href=\"#d\d+\">)?(.*?)(?:</a>)?</td>", table)
    assert index == [n.replace("&", "&amp;").replace("<", "&lt;") for n in ORDER]
    sections = re.findall(r"<h2>(.*?)</h2>", page)
    assert sections[1:] == ["a&lt;b&amp;c.pdf", "broken.pdf", "review.pdf", "missing.pdf", "gone.pdf",
                            "verified.pdf", "Errors not shown above"]  # skipped documents are only listed
    assert "a<b&c" not in page and "HTML <b>" not in page and "file is HTML &lt;b&gt;" in page
    assert "reference x.png &amp; &lt;y&gt; unreadable" in page


def test_page_shows_summary_images_and_placeholders(page: str) -> None:
    assert page.count("<img ") == IMAGES and page.count("data:image/jpeg;base64,") == 4
    assert page.count('<use href="#ref0"/>') == REFERENCES and page.count("<image id=") == 1
    for label, value in (("documents", 7), ("failed", 1), ("skipped (already processed)", 1), ("pages", 6),
                         ("signature regions", 4), ("errors", 2)):
        assert f"<tr><td>{label}</td><td>{value}</td></tr>" in page
    assert all(f">{n} {o}</span>" in page for n, o in ((2, "match"), (1, "review"), (1, "mismatch"), (1, "missing")))
    assert page.count("not cleaned") == 3 and "no reference for signer_b" in page
    assert "page 1 not shown" in page and "gone.pdf" in page
    assert "page 1: no signature region found" in page  # missing.pdf shows its last page
    assert page.count("signer_a: not checked") == 3  # broken.pdf in the index and its section, old.pdf


def test_max_documents_limits_the_details(reports: tuple[Path, Path]) -> None:
    output, references = reports
    text = Path(write_review(str(output), RUN_DATE, RUN_ID, str(references), max_documents=1)).read_text()
    assert text.count('<section class="doc') == 1 and "6 document(s) listed above are not shown" in text
    with pytest.raises(ValueError, match="max_documents must be >= 0, got -1"):
        write_review(str(output), RUN_DATE, RUN_ID, max_documents=-1)
    write_review(str(output), RUN_DATE, RUN_ID, str(references))  # restore the page for the other tests


def test_priority_orders_errors_mismatches_reviews_missing_verified() -> None:
    ok, error = {"status": "ok"}, {"status": "error"}
    assert document_priority(error, {}) == 0
    assert document_priority(ok, {"a": "match", "b": "mismatch"}) == 0
    assert document_priority(ok, {"a": "missing", "b": "review"}) == 1
    assert document_priority(ok, {"a": "missing", "b": "match"}) == 2
    assert document_priority(ok, {"a": "match"}) == 3
    assert document_priority(ok, {}) == 4 and document_priority({"status": "skipped"}, {}) == 5


def test_thumbnails_of_bad_files_are_placeholders(tmp_path: Path, reports: tuple[Path, Path]) -> None:
    box = [(0, Box(0.1, 0.1, 0.2, 0.2), "match")]
    (tmp_path / "x.pdf").write_bytes(b"%PDF-1.4 garbage")
    assert "not shown" in render_thumbnails(str(tmp_path / "absent.pdf"), {1: box})[1]
    assert "not shown: corrupt: cannot open PDF" in render_thumbnails(str(tmp_path / "x.pdf"), {1: box})[1]
    (tmp_path / "locked.pdf").write_bytes(encrypted_pdf())
    assert "not shown: encrypted" in render_thumbnails(str(tmp_path / "locked.pdf"), {1: box})[1]
    shown = render_thumbnails(str(reports[0].parent / "docs" / "review.pdf"), {1: box, 9: box})
    assert shown[1].startswith('<img src="data:image/jpeg;base64,') and 'width="300"' in shown[1]
    assert "page 9 not shown" in shown[9]


def test_stored_thumbnails_are_used_without_opening_the_document(tmp_path: Path) -> None:
    from transforms.thumbnail import thumbnail_jpeg

    page = np.full((2200, 1700), 255, np.uint8)
    box = [(0, Box(0.1, 0.1, 0.4, 0.2), "mismatch")]
    # the file does not exist: only page 2, which has no stored thumbnail, needs it
    shown = render_thumbnails(str(tmp_path / "gone.pdf"), {1: box, 2: box}, {1: thumbnail_jpeg(page)})
    assert shown[1].startswith('<img src="data:image/jpeg;base64,') and 'width="283"' in shown[1]
    assert "page 2 not shown" in shown[2]
    assert list(shown) == [1, 2]
    drawn = render_thumbnails(str(tmp_path / "gone.pdf"), {1: box}, {1: thumbnail_jpeg(page)})[1]
    data = base64.b64decode(drawn.split("base64,")[1].split('"')[0])
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    red = (image[:, :, 2].astype(int) - image[:, :, 0]) > 100  # the mismatch box is drawn in red
    assert red.any() and not red[200:].any()


def test_page_renders_in_headless_chromium_with_every_image_loaded(page: str, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    # A copy with probes (an image and a reference known to be broken) and a script that, while the page is
    # parsed, adds an <img> per embedded reference (so the load event waits for them too) and, on load, counts.
    probe = ('<img src="data:image/png;base64,iVBORw0KGgo=" alt="probe"><svg><defs><image id="probe" '
             'href="data:image/png;base64,iVBORw0KGgo=" width="9" height="9"/></defs></svg><script>'
             'for(const r of document.querySelectorAll("defs image")){const i=document.createElement("img");'
             'i.className="ref";i.src=r.getAttribute("href");document.body.append(i)}'
             'addEventListener("load",()=>{const c={loaded:0,broken:0,refsLoaded:0,refsBroken:0,usesShown:0};'
             "for(const i of document.images){const ok=i.complete&&i.naturalWidth>0,ref=i.className==='ref';"
             "c[(ref?'refs':'')+(ref?(ok?'Loaded':'Broken'):(ok?'loaded':'broken'))]++}"
             'for(const u of document.querySelectorAll("use")){if(u.getBBox().width>0)c.usesShown++}'
             "Object.assign(document.body.dataset,c)})</script>")
    copy = tmp_path / "index.html"
    copy.write_text(page.replace("</body>", probe + "</body>"), encoding="utf-8")
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", copy.as_uri()],
        capture_output=True, text=True, timeout=60, check=True).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None, dom[:500]
    counts = dict(re.findall(r'data-([a-z-]+)="(\d+)"', body.group(0)))
    assert counts == {"loaded": str(IMAGES), "broken": "1", "refs-loaded": "1", "refs-broken": "1",
                      "uses-shown": str(REFERENCES)}, dom[:300]
