"""Tests for transforms.demo_corpus: files, CSVs consistent with placements, determinism, speed."""
from __future__ import annotations

import csv
import time
from pathlib import Path

import cv2
import numpy as np
import pymupdf
import pytest

from transforms.demo_corpus import DemoCorpus, make_demo_corpus, make_sample_contract, make_scanned_contract
from transforms.synth_signature import make_style


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoCorpus, float]:
    start = time.process_time()  # CPU seconds: a busy shared machine slows the wall clock, not this
    c = make_demo_corpus(tmp_path_factory.mktemp("demo"), seed=0)
    return c, time.process_time() - start


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_layout_names_and_speed(corpus: tuple[DemoCorpus, float]) -> None:
    c, seconds = corpus
    assert seconds < 8.0  # 1.5-4 CPU seconds on the 2-core machines
    pdfs = sorted(p.name for p in c.documents_dir.glob("*.pdf"))
    assert len(pdfs) == 12 == len(c.documents)
    assert sorted(d.name for d in c.documents) == pdfs
    assert any(" " in n for n in pdfs) and any(not n.isascii() for n in pdfs)
    assert len(c.signer_ids) == 5
    for sid in c.signer_ids:
        refs = sorted((c.references_dir / sid).glob("*.png"))
        assert len(refs) == 5
        img = cv2.imread(str(refs[0]), cv2.IMREAD_UNCHANGED)
        assert img.ndim == 2 and img.dtype == np.uint8 and img.min() < 100 and np.median(img) > 240


def test_documents_open_and_mix(corpus: tuple[DemoCorpus, float]) -> None:
    c, _ = corpus
    scanned = 0
    for d in c.documents:
        data = d.path.read_bytes()
        doc = pymupdf.open(stream=data, filetype="pdf")
        assert doc.page_count == d.n_pages >= 1
        text = "".join(p.get_text() for p in doc)
        if d.scanned:
            scanned += 1
            assert text.strip() == ""
            assert len(data) / doc.page_count < 400_000
        else:
            assert any(label in text for label in ("Signature:", "Signed:", "By:"))
        assert 1 <= len(d.expected_signers) <= 3
        assert all(1 <= p.page <= d.n_pages for p in d.placements)
        assert max((p.page for p in d.placements), default=d.n_pages) == d.n_pages  # last page signed
    assert 4 <= scanned <= 8


def test_csvs_match_placements(corpus: tuple[DemoCorpus, float]) -> None:
    c, _ = corpus
    expected = _rows(c.expected_csv)
    truth = _rows(c.truth_csv)
    assert list(expected[0]) == ["document", "signer_id"]
    assert list(truth[0]) == ["document", "page", "x0", "y0", "x1", "y1", "signer_id", "kind"]
    assert {(r["document"], r["signer_id"]) for r in expected} == {
        (d.name, s) for d in c.documents for s in d.expected_signers}
    assert len(truth) == sum(len(d.placements) for d in c.documents)
    by_doc = c.placements
    for r in truth:
        x0, y0, x1, y1 = (float(r[k]) for k in ("x0", "y0", "x1", "y1"))
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        assert r["kind"] in ("genuine", "forged")
        assert any(p.page == int(r["page"]) and p.signer_id == r["signer_id"] and abs(p.box.x0 - x0) < 1e-5
                   for p in by_doc[r["document"]])
        assert (r["document"], r["signer_id"]) in {(e["document"], e["signer_id"]) for e in expected}
    signed = {(r["document"], r["signer_id"]) for r in truth}
    missing = [e for e in expected if (e["document"], e["signer_id"]) not in signed]
    assert 1 <= len(missing) <= 2
    assert 1 <= sum(r["kind"] == "forged" for r in truth) < len(truth) // 2


def test_same_seed_same_bytes(corpus: tuple[DemoCorpus, float], tmp_path: Path) -> None:
    c, _ = corpus
    again = make_demo_corpus(tmp_path, seed=0, n_documents=4, n_signers=5, references_per_signer=2)
    for d in again.documents:
        assert d.path.read_bytes() == (c.documents_dir / d.name).read_bytes()
    assert (again.references_dir / c.signer_ids[0] / "ref_01.png").read_bytes() == \
        (c.references_dir / c.signer_ids[0] / "ref_01.png").read_bytes()
    other = make_demo_corpus(tmp_path / "other", seed=1, n_documents=1, references_per_signer=1)
    assert other.documents[0].path.read_bytes() != c.documents[0].path.read_bytes()


def test_sample_contract_helper() -> None:
    rng = np.random.default_rng(0)
    start = time.process_time()
    data, placed = make_scanned_contract(rng)
    assert time.process_time() - start < 1.5  # CPU seconds, as above
    doc = pymupdf.open(stream=data, filetype="pdf")
    assert doc.page_count == 1 and doc[0].get_text().strip() == ""
    assert sorted(p.signer_id for p in placed) == ["signer_a", "signer_b"]
    styles = {"x": make_style(rng), "y": make_style(rng), "z": make_style(rng)}
    data, placed = make_sample_contract(rng, styles=styles, scanned=False, n_pages=2, forged_ids=["y"],
                                        missing_ids=["z"])
    assert [(p.page, p.signer_id, p.kind) for p in placed] == [(2, "x", "genuine"), (2, "y", "forged")]
    with pytest.raises(ValueError, match="not among the signers"):
        make_sample_contract(rng, styles=styles, missing_ids=["nobody"])


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_documents"):
        make_demo_corpus(tmp_path, n_documents=0)
    with pytest.raises(ValueError, match="references per signer"):
        make_demo_corpus(tmp_path, references_per_signer=0)


def test_write_signature_manifest_layout(tmp_path):
    import csv

    from transforms.demo_corpus import write_signature_manifest

    manifest = write_signature_manifest(tmp_path, n_writers=2, n_genuine=3, n_forged=1, height=40)
    with manifest.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and {r["writer"] for r in rows} == {"w0", "w1"}
    assert sum(r["label"] == "forged" for r in rows) == 2
    assert all((tmp_path / r["path"]).is_file() for r in rows)
