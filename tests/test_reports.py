import datetime as dt

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.elements import DocumentStatus, ErrorRecord, Region
from pipeline.reports import (
    SCHEMAS,
    RunInfo,
    WriteReports,
    document_row,
    error_row,
    match_row,
    partition_prefix,
    replace_partitions,
    signature_row,
)
from pipeline.summary import read_table
from tests.conftest import local_pipeline

RUN = RunInfo("run1", "2026-11-25")


def _region():
    crop = np.full((20, 40), 255, np.uint8)
    crop[10, 5:35] = 0
    return Region("/in/a.pdf", "d" * 64, 2, 0, 0.1, 0.2, 0.3, 0.4, 200, "classical", 0.9, crop)


def test_rows_fit_their_schemas():
    now = dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc)
    rows = {
        "documents": [document_row(RUN, DocumentStatus("/in/a.pdf", "d" * 64, 3, "ok"), signature_count=1,
                                   expected_signers=["s1"], matched_signers=["s1"], page_errors=[],
                                   processed_at=now)],
        "signatures": [signature_row(RUN, _region())],
        "matches": [match_row(RUN, document_id="d" * 64, page=2, region=0, signer_id="s1", distance=0.3,
                              similarity=0.8, decision="match", expected=True, rank=1, model_version="m1")],
        "errors": [error_row(RUN, ErrorRecord("RenderPages", "/in/b.pdf", None, None, "not_pdf", "no header"))],
    }
    for table, table_rows in rows.items():
        arrow = pa.Table.from_pylist(table_rows, schema=SCHEMAS[table])
        assert arrow.num_rows == 1
    assert rows["signatures"][0]["crop_png"].startswith(b"\x89PNG")


def test_document_row_verified_and_page_failures():
    ok = DocumentStatus("/in/a.pdf", "d", 3, "ok")
    assert document_row(RUN, ok, signature_count=0, expected_signers=[], matched_signers=[],
                        page_errors=[])["verified"] is None
    row = document_row(RUN, ok, signature_count=2, expected_signers=["s2", "s1"], matched_signers=["s1"],
                       page_errors=[])
    assert row["verified"] is False and row["expected_signers"] == ["s1", "s2"] and row["status"] == "ok"
    failed_page = ErrorRecord("RenderPages", "/in/a.pdf", "d", 2, "content_too_large", "stream inflates past 64 MB")
    row = document_row(RUN, ok, signature_count=1, expected_signers=["s1"], matched_signers=["s1"],
                       page_errors=[failed_page])
    assert row["status"] == "error" and row["error_kind"] == "content_too_large"
    assert "page 2" in row["error_message"] and row["verified"] is True


def test_bad_decision_and_table_are_named():
    with pytest.raises(ValueError, match="decision must be one of .* got 'maybe'"):
        match_row(RUN, document_id="d", page=1, region=0, signer_id="s", distance=1.0, similarity=0.5,
                  decision="maybe", expected=False, rank=1, model_version="m")
    with pytest.raises(ValueError, match="table must be one of .* got 'pages'"):
        partition_prefix("out", "pages", RUN)


def test_write_reports_hive_layout_zstd_and_read_back(tmp_path):
    output = str(tmp_path / "out")
    row = error_row(RUN, ErrorRecord("ReadDocuments", "x.pdf", None, None, "no_match", "nothing"))
    with local_pipeline() as p:
        rows = p | beam.Create([row, row])
        {"errors": rows} | WriteReports(output, RUN)
    files = list((tmp_path / "out" / "errors" / "run_date=2026-11-25").glob("*.parquet"))
    assert files
    metadata = pq.ParquetFile(files[0]).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    table = read_table(output, "errors", RUN.run_date, run_id="run1")
    assert table.num_rows == 2 and table.schema.equals(SCHEMAS["errors"])
    assert read_table(output, "errors", RUN.run_date, run_id="other").num_rows == 0
    assert read_table(output, "matches", RUN.run_date).num_rows == 0


def test_a_rerun_replaces_the_partition(tmp_path):
    output = str(tmp_path / "out")
    for run in (RunInfo("first", "2026-11-25"), RunInfo("second", "2026-11-25"), RunInfo("other", "2026-11-26")):
        row = error_row(run, ErrorRecord("ReadDocuments", "x.pdf", None, None, "no_match", "nothing"))
        with local_pipeline() as p:
            {"errors": p | beam.Create([row])} | WriteReports(output, run)
    assert replace_partitions(output, RunInfo("second", "2026-11-25")) == 1
    assert read_table(output, "errors", "2026-11-25").column("run_id").to_pylist() == ["second"]
    assert read_table(output, "errors", "2026-11-26").column("run_id").to_pylist() == ["other"]
