"""End-to-end runs of run_pipeline.run() on generated PDFs: demo corpus, hostile inputs, multi-processing."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import run_pipeline
from pipeline.reports import SCHEMAS, TABLES
from pipeline.summary import read_table
from tests.conftest import load_benchmark
from transforms.boxes import Box, iou
from transforms.hostile_pdfs import HOSTILE_FILES

RUN_DATE = "2026-11-25"


def _run(tmp: Path, *args: str, output: Path | None = None) -> Path:
    output = output or tmp / "out"
    run_pipeline.run(["--output", str(output), "--run_date", RUN_DATE, *args], save_main_session=False)
    return output


def _tables(output: Path) -> dict[str, pa.Table]:
    return {table: read_table(str(output), table, RUN_DATE) for table in TABLES}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, dict[str, pa.Table]]:
    """The built-in demo: no --input, so the corpus is generated under OUTPUT/demo_corpus."""
    output = _run(tmp_path_factory.mktemp("demo"))
    return output, _tables(output)


def test_demo_reports_have_their_schemas_and_layout(demo_run):
    output, tables = demo_run
    for table in TABLES:
        assert tables[table].schema.equals(SCHEMAS[table]), table
        assert list((output / table / f"run_date={RUN_DATE}").glob("*.parquet")), table
    documents = tables["documents"].to_pylist()
    pdfs = sorted((output / "demo_corpus" / "documents").glob("*.pdf"))
    assert len(documents) == len(pdfs) >= 10
    assert {d["status"] for d in documents} == {"ok"}
    assert len({d["run_id"] for d in documents}) == 1
    assert sum(d["page_count"] for d in documents) >= len(pdfs)


def test_demo_signatures_come_back_as_regions_with_crops_and_matches(demo_run):
    output, tables = demo_run
    signatures = tables["signatures"].to_pylist()
    assert signatures and all(s["crop_png"].startswith(b"\x89PNG") for s in signatures)
    found: dict[tuple[str, int], list[Box]] = {}
    for s in signatures:
        found.setdefault((Path(s["source_path"]).name, s["page"]), []).append(
            Box(s["x0"], s["y0"], s["x1"], s["y1"], s["detector_score"]))
    with open(output / "demo_corpus" / "truth.csv", newline="", encoding="utf-8") as handle:
        truth = list(csv.DictReader(handle))
    hits = [max([iou(Box(*(float(t[k]) for k in ("x0", "y0", "x1", "y1"))), b)
                 for b in found.get((t["document"], int(t["page"])), [])] + [0.0]) >= 0.5 for t in truth]
    assert np.mean(hits) >= 0.6, f"only {sum(hits)} of {len(hits)} placed signatures found at IoU >= 0.5"

    signers = sorted(p.name for p in (output / "demo_corpus" / "references").iterdir())
    matches = tables["matches"].to_pylist()
    assert len(matches) == len(signatures) * len(signers)
    for row in matches:
        assert row["decision"] in ("match", "review", "mismatch") and 0.0 <= row["similarity"] <= 1.0
    per_region = {}
    for row in matches:
        per_region.setdefault((row["document_id"], row["page"], row["region"]), []).append(row)
    for rows in per_region.values():
        assert sorted(r["rank"] for r in rows) == list(range(1, len(signers) + 1))
        closest = min(rows, key=lambda r: r["distance"])
        assert closest["rank"] == 1


def test_demo_accuracy_benchmark_reads_the_demo_run(demo_run):
    """benchmarks/demo_accuracy.py on a real demo run: every placed signature found, each with its match row."""
    output, tables = demo_run
    bench = load_benchmark("demo_accuracy")
    placed = bench.placed_signatures(output / "demo_corpus" / "truth.csv")
    out = bench.demo_accuracy(placed, tables["signatures"].to_pylist(), tables["matches"].to_pylist())
    for kind in ("genuine", "forged"):
        assert out[kind]["placed"] == sum(p["kind"] == kind for p in placed) > 0
        assert out[kind]["found"] >= 0.8 * out[kind]["placed"]
        assert set(out[kind]["decisions"]) <= {"match", "review", "mismatch", "not found"}
    assert out["eer"] is not None and 0.0 <= out["eer"] <= 1.0


def test_demo_expected_signers_are_reported(demo_run):
    output, tables = demo_run
    with open(output / "demo_corpus" / "expected.csv", newline="", encoding="utf-8") as handle:
        expected = {}
        for row in csv.DictReader(handle):
            expected.setdefault(row["document"], set()).add(row["signer_id"])
    for doc in tables["documents"].to_pylist():
        name = Path(doc["source_path"]).name
        assert set(doc["expected_signers"]) == expected.get(name, set())
        assert doc["verified"] is (None if name not in expected else doc["verified"])
    by_doc = {d["document_id"]: set(d["expected_signers"]) for d in tables["documents"].to_pylist()}
    for row in tables["matches"].to_pylist():
        assert row["expected"] == (row["signer_id"] in by_doc[row["document_id"]])


def test_every_hostile_file_gets_one_row_with_its_kind(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, (make, _) in HOSTILE_FILES.items():
        (folder / name).write_bytes(make())
    output = _run(tmp_path, "--input", str(folder), "--max_pages", "2")
    tables = _tables(output)
    rows = {Path(d["source_path"]).name: d for d in tables["documents"].to_pylist()}
    assert sorted(rows) == sorted(HOSTILE_FILES)
    for name, (_, kind) in HOSTILE_FILES.items():
        row = rows[name]
        if kind is None:
            assert (row["status"], row["error_kind"]) == ("ok", None), row
        else:
            assert (row["status"], row["error_kind"]) == ("error", kind), row
            assert row["error_message"]
    errors = {(Path(e["source_path"]).name, e["error_kind"]) for e in tables["errors"].to_pylist()}
    assert errors == {(n, k) for n, (_, k) in HOSTILE_FILES.items() if k is not None}


def test_missing_pattern_is_an_error_row_not_a_crash(tmp_path):
    output = _run(tmp_path, "--input", str(tmp_path / "nowhere" / "*.pdf"))
    errors = read_table(str(output), "errors", RUN_DATE).to_pylist()
    assert [e["error_kind"] for e in errors] == ["no_match"]
    assert read_table(str(output), "documents", RUN_DATE).num_rows == 0
    assert (output / "review" / f"run_date={RUN_DATE}" / "index.html").is_file()


def test_no_review_writes_the_reports_but_no_review_page(tmp_path):
    output = _run(tmp_path, "--input", str(tmp_path / "nowhere" / "*.pdf"), "--no-review")
    assert read_table(str(output), "errors", RUN_DATE).num_rows == 1
    assert not (output / "review").exists()


def test_multiprocessing_rerun_gives_the_same_reports_and_replaces_the_partition(demo_run, tmp_path):
    """A second run of the same run_date into the same output, on two worker processes."""
    demo_output, tables = demo_run
    corpus = demo_output / "demo_corpus"
    args = ["--input", str(corpus / "documents" / "*.pdf"), "--references", str(corpus / "references"),
            "--expected", str(corpus / "expected.csv")]
    multi = _tables(_run(tmp_path, *args, "--direct_running_mode=multi_processing", "--direct_num_workers=2",
                         output=demo_output))
    for table in TABLES:
        assert multi[table].num_rows == tables[table].num_rows, table
        assert len(set(multi[table].column("run_id").to_pylist()) - set(tables[table].column("run_id").to_pylist())) \
            == (1 if multi[table].num_rows else 0), table

    def assert_same(columns: list[str], table: str) -> None:
        """Equal rows: every non-float value exactly, floats to 1e-3 (the in-memory run uses torch's default
        threads and each worker process one thread, so sums may differ in their last bits, and a cleaned
        crop by one grey level)."""
        def rows(t: pa.Table) -> tuple[list[tuple], np.ndarray]:
            ordered = sorted(t.select(columns).to_pylist(),
                             key=lambda r: tuple(v for v in r.values() if not isinstance(v, float)))
            return ([tuple(v for v in r.values() if not isinstance(v, float)) for r in ordered],
                    np.array([[v for v in r.values() if isinstance(v, float)] for r in ordered], np.float64))
        (keys_multi, floats_multi), (keys_mem, floats_mem) = rows(multi[table]), rows(tables[table])
        assert keys_multi == keys_mem, table
        np.testing.assert_allclose(floats_multi, floats_mem, rtol=0, atol=1e-3, err_msg=table)

    assert_same(["source_path", "document_id", "page_count", "status", "signature_count", "verified"], "documents")
    assert_same(["document_id", "page", "region", "x0", "y0", "x1", "y1", "detector_score"], "signatures")
    assert_same(["document_id", "page", "region", "signer_id", "decision", "rank", "distance"], "matches")


def test_skip_processed_skips_documents_of_earlier_run_dates(demo_run, tmp_path):
    demo_output, tables = demo_run
    corpus = demo_output / "demo_corpus"
    output = tmp_path / "nightly"
    args = ["--input", str(corpus / "documents" / "0[1-3]*.pdf"), "--output", str(output), "--skip_processed",
            "--clean"]
    run_pipeline.run([*args, "--run_date", "2026-11-24"], save_main_session=False)
    first = read_table(str(output), "signatures", "2026-11-24").to_pylist()
    assert first and all(s["cleaned_png"].startswith(b"\x89PNG") for s in first)
    # the review page's thumbnails come from the run: one JPEG per page with regions, on its region 0
    assert all((s["page_thumb_jpeg"] or b"").startswith(b"\xff\xd8") == (s["region"] == 0) for s in first)
    (corpus / "documents" / "03_extra_copy.pdf").write_bytes(b"%PDF-1.4 not really")  # new file, new id
    try:
        run_pipeline.run([*args, "--run_date", RUN_DATE], save_main_session=False)
    finally:
        (corpus / "documents" / "03_extra_copy.pdf").unlink()
    rows = {Path(d["source_path"]).name: d for d in read_table(str(output), "documents", RUN_DATE).to_pylist()}
    assert len(rows) == 4
    skipped = [r for name, r in rows.items() if name != "03_extra_copy.pdf"]
    assert all(r["status"] == "skipped" and "2026-11-24" in r["error_message"] for r in skipped)
    assert rows["03_extra_copy.pdf"]["status"] == "error"
    assert read_table(str(output), "signatures", RUN_DATE).num_rows == 0
    assert read_table(str(output), "documents", "2026-11-24").num_rows == 3
    assert all("cleaner=cyclegan" in r["model_versions"] for r in rows.values())



def test_readme_dashboard_queries_run_on_the_reports(demo_run):
    duckdb = pytest.importorskip("duckdb")
    output, tables = demo_run
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    (block,) = [part.split("```")[0] for part in readme.split("```sql")[1:]]
    queries = [q for q in block.replace("'out/", f"'{output}/").split(";") if q.strip()]
    assert len(queries) == 2
    matches = tables["matches"].to_pylist()
    compared = {(m["document_id"], m["signer_id"]) for m in matches if m["expected"]}
    (per_day,) = duckdb.sql(queries[0]).fetchall()
    assert 0.0 <= per_day[1] <= 1.0 and per_day[2] == len(compared)
    verified = {(m["document_id"], m["signer_id"]) for m in matches
                if m["expected"] and m["decision"] == "match" and m["rank"] == 1}
    expected = {(d["document_id"], s) for d in tables["documents"].to_pylist() for s in d["expected_signers"]}
    missing = duckdb.sql(queries[1]).fetchall()
    assert len(missing) == len(expected - verified)


def test_colour_dropout_run_finds_the_signature_under_a_red_seal(tmp_path):
    from transforms.synth_document import ContractSpec, SignatureSlot, make_contract_pdf
    from transforms.synth_signature import draw_signature, make_style

    rng = np.random.default_rng(7)
    signature = draw_signature(make_style(rng), rng, height=160)
    spec = ContractSpec(title="Lease", parties=("Acme B.V.", "The Signer"), scanned=True,
                        slots=(SignatureSlot("signer", "The Signer"),), stamp_ink=(205, 35, 45))
    data, placed = make_contract_pdf(spec, [signature], np.random.default_rng([0, 1]))  # sealed (seed [0, 1])
    from transforms.pdf import open_pdf, render_page

    lifted = render_page(open_pdf(data), 0, dpi=100, dropout="red").image.astype(int) - \
        render_page(open_pdf(data), 0, dpi=100).image
    assert (lifted > 60).sum() > 1000  # the page has its red seal, which the dropout takes out
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "sealed.pdf").write_bytes(data)
    output = _run(tmp_path, "--input", str(folder), "--colour_dropout", "red", "--no-review")
    tables = _tables(output)
    (document,) = tables["documents"].to_pylist()
    assert document["status"] == "ok" and document["model_versions"].endswith(";colour_dropout=red")
    boxes = [Box(s["x0"], s["y0"], s["x1"], s["y1"]) for s in tables["signatures"].to_pylist()]
    assert any(iou(b, placed[0].box) > 0.3 for b in boxes), (boxes, placed[0].box)
