"""The whole audit graph:
ReadDocuments -> RenderPages -> FindSignatures -> CleanSignatures -> Verify -> WriteReports."""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import apache_beam as beam

from models.clean import default_cleaner_path
from models.detect import DEFAULT_DETECTOR_PATH, view_sizes
from models.verification import Calibration, reference_score
from models.weights import default_weights_path, load_card
from pipeline.clean import CleanSignatures
from pipeline.detect import CLASSICAL, FindSignatures
from pipeline.elements import ErrorRecord
from pipeline.inference import CleanerHandler, DetectorHandler, EmbedderHandler
from pipeline.options import AuditConfig
from pipeline.read import ReadDocuments
from pipeline.render import RenderPages
from pipeline.reports import BuildDocumentRows, RunInfo, WriteReports, error_row, signature_row
from pipeline.verify import EnrollReferences, Verify

LOGGER = logging.getLogger(__name__)
# Largest batches, set by measurement (python -m benchmarks.batch_sizes, 2 idle CPU cores, 2026-11-29):
# detector pages/s 119 / 152 / 144 / 118 / 128 at batch 1 / 2 / 4 / 8 / 16; cleaner crops/s 101 / 126 / 129 /
# 130 / 111; the embedder (--batch_size, default 32) 229 / 271 / 311 / 344 / 349 / 360 / 297 at 1..64.
# RunInference's BatchElements adapts the batch below these caps.
CLEANER_BATCH = 8
DETECTOR_BATCH = 4


def resolve_models(config: AuditConfig) -> AuditConfig:
    """Fill in the weights paths and turn ``detector='auto'`` and ``clean=None`` into decisions.

    The learned detector is used when its weights are shipped (or given); cleaning by default only when
    its model card says ``pipeline_default: true`` (set when cleaning improved verification on validation
    writers). Asking for either explicitly without weights is an error naming the missing file.
    """
    detector_weights = config.detector_weights or str(DEFAULT_DETECTOR_PATH)
    cleaner_weights = config.cleaner_weights or str(default_cleaner_path())
    detector = config.detector
    if detector == "auto":
        detector = "model" if Path(detector_weights).is_file() else "classical"
        if detector == "classical":
            LOGGER.warning("no detector weights at %s: using the classical finder", detector_weights)
    if detector == "model" and not Path(detector_weights).is_file():
        raise ValueError(f"--detector model needs detector weights, not found: {detector_weights}")
    clean = config.clean
    if clean is None:
        clean = Path(cleaner_weights).is_file() and bool(load_card(cleaner_weights).get("pipeline_default", False))
        if not clean:
            LOGGER.info("cleaning is off (weights %s absent, or their card does not turn it on by default: "
                        "it did not improve verification on validation writers); --clean turns it on",
                        cleaner_weights)
    if clean and not Path(cleaner_weights).is_file():
        raise ValueError(f"--clean needs cleaning weights, not found: {cleaner_weights}")
    return dataclasses.replace(config, detector=detector, clean=clean,
                               weights=config.weights or str(default_weights_path()),
                               detector_weights=detector_weights, cleaner_weights=cleaner_weights)


def model_versions(config: AuditConfig) -> str:
    """The versions of every model a run uses, as one comparable string (resolved config)."""
    detector = load_card(config.detector_weights)["model_version"] if config.detector == "model" else CLASSICAL
    cleaner = load_card(config.cleaner_weights)["model_version"] if config.clean else "none"
    versions = f"detector={detector};cleaner={cleaner};embedder={load_card(config.weights)['model_version']}"
    return versions + (f";colour_dropout={config.colour_dropout}" if config.colour_dropout != "none" else "")


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


def _find_signatures(config: AuditConfig) -> FindSignatures:
    if config.detector == "classical":
        return FindSignatures("classical", thumbnails=config.review)
    card = load_card(config.detector_weights)
    handler = DetectorHandler(config.detector_weights, device=config.device,
                              max_batch_size=min(config.batch_size, DETECTOR_BATCH), threads=config.model_threads)
    return FindSignatures("model", handler, view_sizes(card), card["model_version"], thumbnails=config.review)


def build_audit(p: beam.Pipeline, config: AuditConfig, expected: Mapping[str, tuple[str, ...]],
                skip: Mapping[str, str] | None = None) -> dict:
    """Wire the audit into ``p``; returns the report PCollections by table (for tests and callers).

    ``config`` is resolved here (``resolve_models``); ``skip``: document_id -> why, for the documents
    ``--skip_processed`` leaves out.
    """
    config = resolve_models(config)
    run = RunInfo(config.run_id, config.run_date, model_versions(config))
    card = load_card(config.weights)
    embedder = EmbedderHandler(config.weights, device=config.device, max_batch_size=config.batch_size,
                               threads=config.model_threads)

    read = p | "ReadDocuments" >> ReadDocuments(config.inputs, skip=skip)
    rendered = read["documents"] | "RenderPages" >> RenderPages(config.dpi, config.max_pages, config.max_pixels,
                                                             config.colour_dropout)
    found = rendered["pages"] | "FindSignatures" >> _find_signatures(config)
    regions = found["regions"]
    if config.clean:
        regions = regions | "CleanSignatures" >> CleanSignatures(
            CleanerHandler(config.cleaner_weights, device=config.device,
                           max_batch_size=min(config.batch_size, CLEANER_BATCH), threads=config.model_threads))

    error_parts = [read["errors"], rendered["errors"], found["errors"]]
    if config.references:
        enrolled = p | "EnrollReferences" >> EnrollReferences(config.references, embedder)
        error_parts.append(enrolled["errors"])
        keyed_matches = regions | "Verify" >> Verify(embedder, enrolled["references"], run,
                                                     Calibration.from_card(card), card["model_version"],
                                                     expected, reference_score(card))
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
