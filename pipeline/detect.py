"""FindSignatures: page images in, scored signature regions with their crops out.

Two detectors behind one interface (page in, scored boxes out): ``model``, the learned detector through
RunInference (batched, GPU when available), and ``classical``, the OpenCV finder.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import PredictionResult, RunInference

from pipeline.elements import ErrorRecord, PageImage, Region
from pipeline.inference import DetectorHandler, Keyed
from transforms.boxes import Box
from transforms.crops import crop_region
from transforms.detection_prep import prepare_page
from transforms.regions import find_signature_regions
from transforms.thumbnail import thumbnail_jpeg, thumbnail_jpeg_from_prepared

LOGGER = logging.getLogger(__name__)
STAGE = "FindSignatures"
ERRORS = "errors"
CLASSICAL = "classical-v1"


def regions_of(page: PageImage, boxes: Sequence[Box], detector: str, thumb: bytes | None = None) -> list[Region]:
    """The regions of one page, best first, each with its crop; the first region also carries ``thumb``,
    the page's JPEG thumbnail (made while the page is in memory, for the review page), when given."""
    ordered = sorted(boxes, key=lambda box: box.score, reverse=True)
    return [Region(page.source_path, page.document_id, page.page, index, box.x0, box.y0, box.x1, box.y1,
                   page.dpi, detector, float(box.score), crop_region(page.image, box),
                   page_thumb=thumb if index == 0 else None)
            for index, box in enumerate(ordered)]


def _failure(page: PageImage, exc: Exception) -> pvalue.TaggedOutput:
    LOGGER.exception("region finding failed on page %d of %s", page.page, page.source_path)
    return pvalue.TaggedOutput(ERRORS, ErrorRecord(STAGE, page.source_path, page.document_id, page.page,
                                                   "detection_failed", f"{type(exc).__name__}: {exc}"))


class _FindClassical(beam.DoFn):
    """The classical OpenCV region finder (binarize, drop lines and printed text, group strokes, score)."""

    def __init__(self, thumbnails: bool = False) -> None:
        self._thumbnails = thumbnails
        self._regions = Metrics.counter("sigaudit", "regions")

    def process(self, page: PageImage) -> Iterator:
        try:
            boxes = find_signature_regions(page.image, page.words)
            thumb = thumbnail_jpeg(page.image) if self._thumbnails and boxes else None
            regions = regions_of(page, boxes, CLASSICAL, thumb)
        except Exception as exc:  # never fatal: one bad page must not stop the run
            yield _failure(page, exc)
            return
        self._regions.inc(len(regions))
        yield from regions


class _PreparePage(beam.DoFn):
    """``page`` -> ``((page, thumbnail JPEG or None), detector inputs)``: the inputs are the page stretched
    to each of the detector's view sizes (a tuple); the thumbnail is made from the first, small input (a
    tenth of the page's pixels), for the review page."""

    def __init__(self, input_sizes: tuple[int, ...], thumbnails: bool = False) -> None:
        self._input_sizes, self._thumbnails = input_sizes, thumbnails

    def process(self, page: PageImage) -> Iterator:
        try:
            prepared = tuple(prepare_page(page.image, size) for size in self._input_sizes)
            thumb = thumbnail_jpeg_from_prepared(prepared[0], page.image.shape) if self._thumbnails else None
            yield (page, thumb), prepared
        except Exception as exc:
            yield _failure(page, exc)


class _RegionsFromDetections(beam.DoFn):
    def __init__(self, detector: str) -> None:
        self._detector = detector
        self._regions = Metrics.counter("sigaudit", "regions")

    def process(self, element: tuple[PageImage, PredictionResult]) -> Iterator:
        (page, thumb), result = element
        try:
            regions = regions_of(page, result.inference, self._detector, thumb)
        except Exception as exc:
            yield _failure(page, exc)
            return
        self._regions.inc(len(regions))
        yield from regions


class FindSignatures(beam.PTransform):
    """``PageImage`` -> ``Region`` per found signature, plus an ``errors`` output.

    ``detector``: ``"classical"`` or ``"model"``; the model needs ``handler`` (a DetectorHandler),
    ``input_size`` (from its card: one size, or the sizes of its test-time views,
    ``models.detect.view_sizes``) and ``version`` (the card's model_version, written to the reports).
    ``thumbnails``: the first region of each page carries a JPEG thumbnail of the page (``page_thumb``),
    so that the review page need not open and render the documents again.
    """

    def __init__(self, detector: str = "classical", handler: DetectorHandler | None = None,
                 input_size: int | Sequence[int] | None = None, version: str | None = None,
                 thumbnails: bool = False) -> None:
        super().__init__()
        if detector not in ("classical", "model"):
            raise ValueError(f"detector must be 'classical' or 'model', got {detector!r}")
        if detector == "model" and (handler is None or input_size is None or not version):
            raise ValueError("the model detector needs a handler, the card's input_size and its model_version")
        sizes = () if input_size is None else (input_size,) if isinstance(input_size, int) else tuple(input_size)
        self._detector, self._handler, self._input_sizes, self._version = detector, handler, sizes, version
        self._thumbnails = thumbnails

    def expand(self, pages: beam.PCollection) -> dict[str, beam.PCollection]:
        if self._detector == "classical":
            found = pages | "Find" >> beam.ParDo(_FindClassical(self._thumbnails)).with_outputs(ERRORS, main="regions")
            return {"regions": found.regions, "errors": found[ERRORS]}
        prepared = pages | "Prepare" >> beam.ParDo(_PreparePage(self._input_sizes, self._thumbnails)).with_outputs(ERRORS, main="pages")
        found = (
            prepared.pages
            | "Detect" >> RunInference(Keyed(self._handler))
            | "Regions" >> beam.ParDo(_RegionsFromDetections(self._version)).with_outputs(ERRORS, main="regions")
        )
        errors = (prepared[ERRORS], found[ERRORS]) | "MergeErrors" >> beam.Flatten()
        return {"regions": found.regions, "errors": errors}
