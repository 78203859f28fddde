"""The whole audit graph: ReadDocuments -> RenderPages -> FindSignatures -> Verify -> WriteReports."""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import apache_beam as beam

from models.verification import Calibration
from models.weights import default_weights_path, load_card
from pipeline.detect import FindSignatures
from pipeline.elements import ErrorRecord
from pipeline.inference import EmbedderHandler
from pipeline.options import AuditConfig
from pipeline.read import ReadDocuments
from pipeline.render import RenderPages
from pipeline.reports import BuildDocumentRows, RunInfo, WriteReports, error_row, signature_row
from pipeline.verify import EnrollReferences, Verify


def _by_path(element):
    """Key a status or an error by its file (the grouping key of a document's rows)."""
    return element.source_path, element


def _one_per_region(region):
    return region.source_path, 1


def _matched_signer(element: tuple[str, dict]) -> tuple[str, str]:
    source_path, row = element
    return source_path, row["signer_id"]


def _is_page_error(error: ErrorRecord) -> bool:
    return error.page is not None and error.source_path is not None


def _expected_match(element: tuple[str, dict]) -> bool:
    """A region that verifies an expected signer: decided ``match`` and closer to them than to anyone else."""
    _, row = element
    return row["expected"] and row["decision"] == "match" and row["rank"] == 1


def model_versions(config: AuditConfig) -> str:
    """The versions of every model a run uses, as one comparable string (``detector=...;embedder=...``)."""
    card = load_card(config.weights or str(default_weights_path()))
    return f"detector={config.detector};embedder={card['model_version']}"


def build_audit(p: beam.Pipeline, config: AuditConfig, expected: Mapping[str, tuple[str, ...]],
                skip: Mapping[str, str] | None = None) -> dict:
    """Wire the audit into ``p``; returns the report PCollections by table (for tests and callers).

    ``skip``: document_id -> why, for the documents ``--skip_processed`` leaves out.
    """
    run = RunInfo(config.run_id, config.run_date, model_versions(config))
    weights = config.weights or str(default_weights_path())
    card = load_card(weights)
    handler = EmbedderHandler(weights, device=config.device, max_batch_size=config.batch_size)

    read = p | "ReadDocuments" >> ReadDocuments(config.inputs, skip=skip)
    rendered = read["documents"] | "RenderPages" >> RenderPages(config.dpi, config.max_pages, config.max_pixels)
    found = rendered["pages"] | "FindSignatures" >> FindSignatures(config.detector)
    regions = found["regions"]

    error_parts = [read["errors"], rendered["errors"], found["errors"]]
    if config.references:
        enrolled = p | "EnrollReferences" >> EnrollReferences(config.references, handler)
        error_parts.append(enrolled["errors"])
        keyed_matches = regions | "Verify" >> Verify(handler, enrolled["references"], run,
                                                     Calibration.from_card(card), card["model_version"],
                                                     expected)
    else:
        keyed_matches = p | "NoReferences" >> beam.Create([])
    errors = error_parts | "AllErrors" >> beam.Flatten()

    statuses = (read["statuses"], rendered["statuses"]) | "AllStatuses" >> beam.Flatten()
    documents = {
        "statuses": statuses | "StatusByPath" >> beam.Map(_by_path),
        "regions": regions | "RegionByPath" >> beam.Map(_one_per_region),
        "matched": keyed_matches | "ExpectedMatches" >> beam.Filter(_expected_match)
        | "MatchedSigner" >> beam.Map(_matched_signer),
        "page_errors": errors | "PageErrors" >> beam.Filter(_is_page_error)
        | "PageErrorByPath" >> beam.Map(_by_path),
    }
    tables = {
        "documents": documents | "DocumentRows" >> BuildDocumentRows(run, expected),
        "signatures": regions | "SignatureRows" >> beam.Map(partial(signature_row, run)),
        "matches": keyed_matches | "MatchRows" >> beam.Values(),
        "errors": errors | "ErrorRows" >> beam.Map(partial(error_row, run)),
    }
    tables | "WriteReports" >> WriteReports(config.output, run)
    return tables
