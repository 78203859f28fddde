"""The run summary printed at the end of a run, read back from the written reports."""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.paths import join_path
from pipeline.reports import SCHEMAS, TABLES


def read_table(output: str, table: str, run_date: str, run_id: str | None = None) -> pa.Table:
    """All rows of one report table's ``run_date`` partition (optionally of one run), with its schema."""
    if table not in TABLES:
        raise ValueError(f"table must be one of {TABLES}, got {table!r}")
    pattern = join_path(output, table, f"run_date={run_date}", "*.parquet")
    paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    parts = []
    for path in paths:
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            parts.append(pq.read_table(pa.BufferReader(handle.read()), schema=SCHEMAS[table]))
    result = pa.concat_tables(parts) if parts else SCHEMAS[table].empty_table()
    if run_id is not None and result.num_rows:
        result = result.filter(pa.compute.equal(result["run_id"], run_id))
    return result


def processed_documents(output: str, model_versions: str, exclude_run_date: str) -> dict[str, str]:
    """document_id -> where it was processed, for documents of earlier reports that ended ``ok`` with the
    same ``model_versions`` (what ``--skip_processed`` skips). The partition being rewritten is excluded."""
    pattern = join_path(output, "documents", "run_date=*", "*.parquet")
    processed: dict[str, str] = {}
    for metadata in FileSystems.match([pattern])[0].metadata_list:
        with FileSystems.open(metadata.path, compression_type="uncompressed") as handle:
            table = pq.read_table(pa.BufferReader(handle.read()))
        if "model_versions" not in table.column_names:
            continue
        for row in table.select(["document_id", "status", "model_versions", "run_date", "run_id"]).to_pylist():
            if (row["status"] == "ok" and row["model_versions"] == model_versions
                    and row["run_date"] != exclude_run_date and row["document_id"]):
                processed[row["document_id"]] = f"run {row['run_id']} of {row['run_date']}"
    return processed


OUTCOMES = ("match", "review", "mismatch", "missing")


def expected_outcomes(documents: list[dict], matches: list[dict]) -> dict[tuple[str, str], str]:
    """``(document_id, signer_id)`` -> the best outcome of an expected signature of a readable document.

    ``match``: a region decided match with the signer as its closest (rank 1), as ``verified`` counts it;
    else ``review`` or ``mismatch`` by the best decision of any region for that signer; ``missing``
    when the document has no region at all.
    """
    order = {"match": 0, "review": 1, "mismatch": 2}
    best: dict[tuple[str, str], str] = {}
    for m in matches:
        if not m["expected"]:
            continue
        decision = m["decision"] if (m["decision"] != "match" or m["rank"] == 1) else "review"
        key = (m["document_id"], m["signer_id"])
        if key not in best or order[decision] < order[best[key]]:
            best[key] = decision
    outcomes = {}
    for d in documents:
        if d["status"] == "skipped" or (d["status"] == "error" and not d["page_count"]):
            continue
        for signer in d["expected_signers"]:
            outcomes[(d["document_id"], signer)] = best.get((d["document_id"], signer), "missing")
    return outcomes


@dataclass(frozen=True)
class RunSummary:
    documents: int
    documents_failed: int
    documents_skipped: int
    pages: int
    signatures: int
    outcomes: dict[str, int]
    errors: int
    output: str

    def __str__(self) -> str:
        expected = ", ".join(f"{self.outcomes.get(o, 0)} {o}" for o in OUTCOMES)
        return (
            f"sigaudit: {self.documents} documents ({self.documents_failed} failed, {self.documents_skipped} "
            f"skipped as already processed), {self.pages} pages, "
            f"{self.signatures} signature regions found\n"
            f"expected signatures: {sum(self.outcomes.values())} ({expected})\n"
            f"errors: {self.errors}\nreports: {self.output}"
        )


def summarize(output: str, run_date: str, run_id: str) -> RunSummary:
    """Counts of one run, read back from its reports."""
    documents = read_table(output, "documents", run_date, run_id).to_pylist()
    matches = read_table(output, "matches", run_date, run_id).to_pylist()
    outcomes = list(expected_outcomes(documents, matches).values())
    return RunSummary(
        documents=len(documents),
        documents_failed=sum(d["status"] == "error" for d in documents),
        documents_skipped=sum(d["status"] == "skipped" for d in documents),
        pages=sum(d["page_count"] or 0 for d in documents),
        signatures=read_table(output, "signatures", run_date, run_id).num_rows,
        outcomes={o: outcomes.count(o) for o in OUTCOMES},
        errors=read_table(output, "errors", run_date, run_id).num_rows,
        output=output,
    )
