"""CleanSignatures: each region's crop through the CycleGAN A->B generator (stamps, text, lines removed)."""
from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import PredictionResult, RunInference

from pipeline.elements import Region
from pipeline.inference import CleanerHandler, Keyed


def _keyed_crop(region: Region) -> tuple[Region, object]:
    return region, region.crop


class _AttachCleaned(beam.DoFn):
    def __init__(self) -> None:
        self._cleaned = Metrics.counter("sigaudit", "regions_cleaned")

    def process(self, element: tuple[Region, PredictionResult]) -> Iterator[Region]:
        region, result = element
        if result.inference.shape != region.crop.shape:
            raise ValueError(f"cleaned crop has shape {result.inference.shape}, expected {region.crop.shape}")
        self._cleaned.inc()
        yield region._replace(cleaned=result.inference)


class CleanSignatures(beam.PTransform):
    """``Region`` -> the same ``Region`` with ``cleaned`` set (same size as the crop, never distorted)."""

    def __init__(self, handler: CleanerHandler) -> None:
        super().__init__()
        self._handler = handler

    def expand(self, regions: beam.PCollection) -> beam.PCollection:
        return (
            regions
            | "KeyByRegion" >> beam.Map(_keyed_crop)
            | "Clean" >> RunInference(Keyed(self._handler))
            | "Attach" >> beam.ParDo(_AttachCleaned())
        )
