"""EnrollReferences and Verify: SigNet embeddings of reference signatures and of found regions, compared.

References are embedded once per run and reach Verify as a side input ``{signer_id: (K, D) float32}``;
every region is compared with every enrolled signer (``models.verification.writer_distances`` with the
model card's ``reference_score``: distance to the mean of that signer's reference embeddings, or to the
nearest one; the same writer-level score that ``models.evaluate`` measures), and the model card's
calibration turns the distance into a similarity and a decision.
"""
from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable, Iterator, Mapping

import apache_beam as beam
import cv2
import numpy as np
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import PredictionResult, RunInference

from models.verification import Calibration, writer_distances
from pipeline.elements import ErrorRecord, Region, base_name
from pipeline.inference import EmbedderHandler, Keyed
from pipeline.paths import join_path
from pipeline.reports import RunInfo, match_row
from transforms.preprocess import preprocess_signature

LOGGER = logging.getLogger(__name__)
ENROLL_STAGE = "EnrollReferences"
VERIFY_STAGE = "Verify"
ERRORS = "errors"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def decode_image(data: bytes) -> np.ndarray | None:
    """``(H, W) uint8`` gray image from encoded bytes, or None when they are not a readable image."""
    if not data:
        return None
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    return image if image is not None and image.size else None


class _ListReferences(beam.DoFn):
    """``references_dir`` -> ``(signer_id, path)`` for each image in its signer subfolders."""

    def process(self, references_dir: str) -> Iterator:
        pattern = join_path(references_dir, "*", "*")
        matched = FileSystems.match([pattern])[0].metadata_list
        found = 0
        for metadata in sorted(matched, key=lambda m: m.path):
            if not metadata.path.lower().endswith(IMAGE_SUFFIXES):
                continue
            signer_id = base_name(posixpath.dirname(metadata.path.replace("\\", "/")))
            found += 1
            yield signer_id, metadata.path
        if not found:
            message = f"no reference images ({', '.join(IMAGE_SUFFIXES)}) in signer subfolders of {references_dir!r}"
            LOGGER.warning(message)
            yield pvalue.TaggedOutput(ERRORS, ErrorRecord(ENROLL_STAGE, references_dir, None, None,
                                                          "no_references", message))


class _LoadReference(beam.DoFn):
    """``(signer_id, path)`` -> ``((signer_id, path), preprocessed (155, 220) float32)``."""

    def process(self, element: tuple[str, str]) -> Iterator:
        signer_id, path = element
        try:
            with FileSystems.open(path, compression_type="uncompressed") as handle:
                image = decode_image(handle.read())
        except Exception as exc:
            image, reason = None, f"{type(exc).__name__}: {exc}"
        else:
            reason = "not a readable image"
        if image is None:
            yield pvalue.TaggedOutput(ERRORS, ErrorRecord(ENROLL_STAGE, path, None, None, "unreadable_reference",
                                                          f"reference of signer {signer_id!r}: {reason}"))
            return
        yield (signer_id, path), preprocess_signature(image)


def _stack_references(element: tuple[str, Iterable[tuple[str, np.ndarray]]]) -> tuple[str, np.ndarray]:
    signer_id, embeddings = element
    ordered = sorted(embeddings, key=lambda item: item[0])
    return signer_id, np.stack([embedding for _, embedding in ordered]).astype(np.float32)


def _by_signer(element: tuple[tuple[str, str], PredictionResult]) -> tuple[str, tuple[str, np.ndarray]]:
    (signer_id, path), result = element
    return signer_id, (path, np.asarray(result.inference, dtype=np.float32))


class EnrollReferences(beam.PTransform):
    """A references folder -> ``(signer_id, (K, D) float32)`` per signer, plus an ``errors`` output."""

    def __init__(self, references_dir: str, handler: EmbedderHandler) -> None:
        super().__init__()
        self._references_dir = references_dir
        self._handler = handler

    def expand(self, pbegin: beam.pvalue.PBegin) -> dict[str, beam.PCollection]:
        listed = (pbegin
                  | "Folder" >> beam.Create([self._references_dir])
                  | "List" >> beam.ParDo(_ListReferences()).with_outputs(ERRORS, main="images"))
        loaded = listed.images | "Load" >> beam.ParDo(_LoadReference()).with_outputs(ERRORS, main="arrays")
        enrolled = (
            loaded.arrays
            | "Embed" >> RunInference(Keyed(self._handler))
            | "BySigner" >> beam.Map(_by_signer)
            | "Group" >> beam.GroupByKey()
            | "Stack" >> beam.Map(_stack_references)
        )
        errors = (listed[ERRORS], loaded[ERRORS]) | "MergeErrors" >> beam.Flatten()
        return {"references": enrolled, "errors": errors}


def _preprocess_region(region: Region) -> tuple[tuple[str, str, int, int], np.ndarray]:
    key = (region.source_path, region.document_id, region.page, region.region)
    return key, preprocess_signature(region.verified_image)


class _ScoreRegion(beam.DoFn):
    """One region's embedding -> ``(source_path, match row)`` for every enrolled signer."""

    def __init__(self, run: RunInfo, calibration: Calibration, model_version: str,
                 expected: Mapping[str, tuple[str, ...]], rule: str = "centroid") -> None:
        self._run = run
        self._calibration = calibration
        self._rule = rule
        self._model_version = model_version
        self._expected = dict(expected)
        self._decisions = {d: Metrics.counter("sigaudit", f"decisions_{d}") for d in ("match", "review", "mismatch")}

    def process(self, element: tuple[tuple[str, str, int, int], PredictionResult],
                references: Mapping[str, np.ndarray]) -> Iterator:
        (source_path, document_id, page, region), result = element
        if not references:
            return
        signer_ids, distances = writer_distances(np.asarray(result.inference, dtype=np.float32)[None, :],
                                                 dict(references), self._rule)
        distances = distances[0]
        similarities = self._calibration.similarity(distances)
        ranks = np.empty(len(signer_ids), dtype=np.int64)
        ranks[np.argsort(distances, kind="stable")] = np.arange(1, len(signer_ids) + 1)
        expected = set(self._expected.get(base_name(source_path), ()))
        for index, signer_id in enumerate(signer_ids):
            decision = self._calibration.decide(float(distances[index]))
            self._decisions[decision].inc()
            yield source_path, match_row(
                self._run, document_id=document_id, page=page, region=region, signer_id=signer_id,
                distance=float(distances[index]), similarity=float(similarities[index]), decision=decision,
                expected=signer_id in expected, rank=int(ranks[index]), model_version=self._model_version)


class Verify(beam.PTransform):
    """``Region`` -> ``(source_path, match row)`` per region and enrolled signer.

    ``rule``: the ``writer_distances`` score the calibration was made with (the card's ``reference_score``)."""

    def __init__(self, handler: EmbedderHandler, references: beam.PCollection, run: RunInfo,
                 calibration: Calibration, model_version: str, expected: Mapping[str, tuple[str, ...]],
                 rule: str = "centroid") -> None:
        super().__init__()
        self._handler = handler
        self._references = references
        self._score = _ScoreRegion(run, calibration, model_version, expected, rule)

    def expand(self, regions: beam.PCollection) -> beam.PCollection:
        return (
            regions
            | "Preprocess" >> beam.Map(_preprocess_region)
            | "Embed" >> RunInference(Keyed(self._handler))
            | "Score" >> beam.ParDo(self._score, references=beam.pvalue.AsDict(self._references))
        )
