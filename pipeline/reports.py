"""The four report tables: fixed pyarrow schemas, row builders and WriteReports.

Layout: ``OUTPUT/<table>/run_date=YYYY-MM-DD/part-*.parquet`` (hive style, zstd). Every field is
documented in the README ("Reports"); the schemas below are the single source of truth.
"""
from __future__ import annotations

import datetime as dt
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import WriteToParquet

from pipeline.elements import DocumentStatus, ErrorRecord, Region, base_name
from pipeline.paths import join_path
from transforms.crops import encode_png

TABLES = ("documents", "signatures", "matches", "errors")
DECISIONS = ("match", "review", "mismatch")

_RUN_FIELDS = [pa.field("run_id", pa.string(), nullable=False), pa.field("run_date", pa.string(), nullable=False)]

DOCUMENTS_SCHEMA = pa.schema(_RUN_FIELDS + [
    pa.field("document_id", pa.string()),  # sha256 of the file's bytes; null when the file could not be read
    pa.field("source_path", pa.string(), nullable=False),
    pa.field("page_count", pa.int32()),
    pa.field("status", pa.string(), nullable=False),  # "ok" | "error" | "skipped"
    pa.field("error_kind", pa.string()),
    pa.field("error_message", pa.string()),
    pa.field("signature_count", pa.int32(), nullable=False),
    pa.field("expected_signers", pa.list_(pa.string()), nullable=False),
    pa.field("verified", pa.bool_()),  # null when nothing is expected
    pa.field("processed_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("model_versions", pa.string(), nullable=False),  # the models that produced the row
])

SIGNATURES_SCHEMA = pa.schema(_RUN_FIELDS + [
    pa.field("document_id", pa.string(), nullable=False),
    pa.field("source_path", pa.string(), nullable=False),
    pa.field("page", pa.int32(), nullable=False),
    pa.field("region", pa.int32(), nullable=False),
    pa.field("x0", pa.float32(), nullable=False),
    pa.field("y0", pa.float32(), nullable=False),
    pa.field("x1", pa.float32(), nullable=False),
    pa.field("y1", pa.float32(), nullable=False),
    pa.field("dpi", pa.int32(), nullable=False),
    pa.field("detector", pa.string(), nullable=False),
    pa.field("detector_score", pa.float32(), nullable=False),
    pa.field("crop_png", pa.binary(), nullable=False),
    pa.field("cleaned_png", pa.binary()),
    pa.field("page_thumb_jpeg", pa.binary()),  # the page's JPEG thumbnail on its region 0 when --review; else null
])

MATCHES_SCHEMA = pa.schema(_RUN_FIELDS + [
    pa.field("document_id", pa.string(), nullable=False),
    pa.field("page", pa.int32(), nullable=False),
    pa.field("region", pa.int32(), nullable=False),
    pa.field("signer_id", pa.string(), nullable=False),
    pa.field("distance", pa.float32(), nullable=False),
    pa.field("similarity", pa.float32(), nullable=False),
    pa.field("decision", pa.string(), nullable=False),  # "match" | "review" | "mismatch"
    pa.field("expected", pa.bool_(), nullable=False),
    pa.field("rank", pa.int32(), nullable=False),
    pa.field("model_version", pa.string(), nullable=False),
])

ERRORS_SCHEMA = pa.schema(_RUN_FIELDS + [
    pa.field("stage", pa.string(), nullable=False),
    pa.field("document_id", pa.string()),
    pa.field("source_path", pa.string()),
    pa.field("page", pa.int32()),
    pa.field("error_kind", pa.string(), nullable=False),
    pa.field("error_message", pa.string(), nullable=False),
])

SCHEMAS: dict[str, pa.Schema] = {
    "documents": DOCUMENTS_SCHEMA, "signatures": SIGNATURES_SCHEMA, "matches": MATCHES_SCHEMA,
    "errors": ERRORS_SCHEMA,
}


class RunInfo(NamedTuple):
    run_id: str
    run_date: str  # YYYY-MM-DD
    model_versions: str = ""  # "detector=...;embedder=..." of this run


def _run_fields(run: RunInfo) -> dict[str, Any]:
    return {"run_id": run.run_id, "run_date": run.run_date}


def signature_row(run: RunInfo, region: Region) -> dict[str, Any]:
    return {**_run_fields(run), "document_id": region.document_id, "source_path": region.source_path,
            "page": region.page, "region": region.region, "x0": region.x0, "y0": region.y0, "x1": region.x1,
            "y1": region.y1, "dpi": region.dpi, "detector": region.detector,
            "detector_score": region.detector_score, "crop_png": encode_png(region.crop),
            "cleaned_png": None if region.cleaned is None else encode_png(region.cleaned),
            "page_thumb_jpeg": region.page_thumb}


def match_row(run: RunInfo, *, document_id: str, page: int, region: int, signer_id: str, distance: float,
              similarity: float, decision: str, expected: bool, rank: int, model_version: str) -> dict[str, Any]:
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
    return {**_run_fields(run), "document_id": document_id, "page": page, "region": region,
            "signer_id": signer_id, "distance": distance, "similarity": similarity, "decision": decision,
            "expected": expected, "rank": rank, "model_version": model_version}


def error_row(run: RunInfo, error: ErrorRecord) -> dict[str, Any]:
    return {**_run_fields(run), "stage": error.stage, "document_id": error.document_id,
            "source_path": error.source_path, "page": error.page, "error_kind": error.error_kind,
            "error_message": error.error_message}


def document_row(run: RunInfo, status: DocumentStatus, *, signature_count: int, expected_signers: Iterable[str],
                 matched_signers: Iterable[str], page_errors: Iterable[ErrorRecord],
                 processed_at: dt.datetime | None = None) -> dict[str, Any]:
    """One file's row. A file whose document opened but one of whose pages failed is an ``error`` too
    (the first failing page's kind), its other pages' regions still counted.
    ``verified``: every expected signer has a region decided ``match`` whose closest enrolled signer
    (rank 1) they are (``matched_signers``); null when nothing is expected."""
    expected = sorted(set(expected_signers))
    status_value, kind, message = status.status, status.error_kind, status.error_message
    failures = sorted(page_errors, key=lambda e: (e.page or 0, e.error_kind))
    if status_value == "ok" and failures:
        first = failures[0]
        status_value, kind = "error", first.error_kind
        message = f"{len(failures)} page(s) failed; page {first.page}: {first.error_message}"
    matched = set(matched_signers)
    return {**_run_fields(run), "document_id": status.document_id, "source_path": status.source_path,
            "page_count": status.page_count, "status": status_value, "error_kind": kind,
            "error_message": message, "signature_count": int(signature_count), "expected_signers": expected,
            "verified": (all(s in matched for s in expected) if expected and status_value != "skipped" else None),
            "processed_at": processed_at or dt.datetime.now(dt.timezone.utc), "model_versions": run.model_versions}


def partition_dir(output: str, table: str, run_date: str) -> str:
    """``OUTPUT/<table>/run_date=YYYY-MM-DD``."""
    if table not in SCHEMAS:
        raise ValueError(f"table must be one of {TABLES}, got {table!r}")
    return join_path(output, table, f"run_date={run_date}")


def partition_prefix(output: str, table: str, run: RunInfo) -> str:
    """``OUTPUT/<table>/run_date=YYYY-MM-DD/<run_id>-part`` (WriteToParquet adds shard numbers and suffix)."""
    return join_path(partition_dir(output, table, run.run_date), f"{run.run_id}-part")


def replace_partitions(output: str, run: RunInfo) -> int:
    """After a successful run, delete the files earlier runs left in this run's partitions.

    Rerunning a run_date thus replaces its partition instead of duplicating rows; a failed run leaves
    the earlier files in place. Returns how many files were deleted.
    """
    stale = []
    for table in TABLES:
        pattern = join_path(partition_dir(output, table, run.run_date), "*.parquet")
        for metadata in FileSystems.match([pattern])[0].metadata_list:
            if not posixpath.basename(metadata.path.replace("\\", "/")).startswith(f"{run.run_id}-part"):
                stale.append(metadata.path)
    if stale:
        FileSystems.delete(stale)
    return len(stale)


class _BuildDocumentRow(beam.DoFn):
    def __init__(self, run: RunInfo, expected: Mapping[str, tuple[str, ...]]) -> None:
        self._run = run
        self._expected = dict(expected)

    # CoGroupByKey's values are iterables (lists on the DirectRunner); Beam 2.78 infers them as such
    # and rejects a ``list`` hint at graph construction.
    def process(self, element: tuple[str, Mapping[str, Iterable[Any]]]) -> Iterable[dict[str, Any]]:
        source_path, grouped = element
        for status in grouped["statuses"]:  # exactly one per input file
            yield document_row(
                self._run, status, signature_count=sum(grouped["regions"]),
                expected_signers=self._expected.get(base_name(source_path), ()),
                matched_signers=grouped["matched"], page_errors=grouped["page_errors"])


class BuildDocumentRows(beam.PTransform):
    """Statuses, region counts, expected-signer matches and page errors, keyed by source_path -> rows."""

    def __init__(self, run: RunInfo, expected: Mapping[str, tuple[str, ...]]) -> None:
        super().__init__()
        self._run, self._expected = run, expected

    def expand(self, keyed: dict[str, beam.PCollection]) -> beam.PCollection:
        return keyed | "Join" >> beam.CoGroupByKey() | "Row" >> beam.ParDo(
            _BuildDocumentRow(self._run, self._expected))


class WriteReports(beam.PTransform):
    """``{table: PCollection of row dicts}`` -> Parquet files under the run_date partition of each table."""

    def __init__(self, output: str, run: RunInfo) -> None:
        super().__init__()
        self._output, self._run = output, run

    def expand(self, tables: dict[str, beam.PCollection]) -> dict[str, beam.PCollection]:
        unknown = set(tables) - set(SCHEMAS)
        if unknown:
            raise ValueError(f"unknown report tables {sorted(unknown)}; expected {TABLES}")
        return {
            table: rows | f"Write{table.title()}" >> WriteToParquet(
                partition_prefix(self._output, table, self._run), SCHEMAS[table], codec="zstd",
                file_name_suffix=".parquet")
            for table, rows in tables.items()
        }
