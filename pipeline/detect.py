"""FindSignatures: page images in, scored signature regions with their crops out."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from pipeline.elements import ErrorRecord, PageImage, Region
from transforms.crops import crop_region
from transforms.regions import find_signature_regions

LOGGER = logging.getLogger(__name__)
STAGE = "FindSignatures"
ERRORS = "errors"


class _FindClassical(beam.DoFn):
    """The classical OpenCV region finder (binarize, drop lines and printed text, group strokes, score)."""

    NAME = "classical"

    def __init__(self) -> None:
        self._regions = Metrics.counter("sigaudit", "regions")

    def process(self, page: PageImage) -> Iterator:
        try:
            boxes = find_signature_regions(page.image, page.words)
            regions = [
                Region(page.source_path, page.document_id, page.page, index, box.x0, box.y0, box.x1, box.y1,
                       page.dpi, self.NAME, float(box.score), crop_region(page.image, box))
                for index, box in enumerate(boxes)
            ]
        except Exception as exc:  # never fatal: one bad page must not stop the run
            LOGGER.exception("region finding failed on page %d of %s", page.page, page.source_path)
            yield pvalue.TaggedOutput(ERRORS, ErrorRecord(STAGE, page.source_path, page.document_id, page.page,
                                                          "detection_failed", f"{type(exc).__name__}: {exc}"))
            return
        self._regions.inc(len(regions))
        yield from regions


class FindSignatures(beam.PTransform):
    """``PageImage`` -> ``Region`` per found signature, plus an ``errors`` output."""

    def __init__(self, detector: str = "classical") -> None:
        super().__init__()
        if detector != _FindClassical.NAME:
            raise ValueError(f"detector must be 'classical', got {detector!r}")
        self._detector = detector

    def expand(self, pages: beam.PCollection) -> dict[str, beam.PCollection]:
        found = pages | "Find" >> beam.ParDo(_FindClassical()).with_outputs(ERRORS, main="regions")
        return {"regions": found.regions, "errors": found[ERRORS]}
