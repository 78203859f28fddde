"""RenderPages: documents in, one grayscale page image per page out, every failure a row.

The document is opened once to check it (not a PDF, encrypted, no pages, too many pages, ...) and
fanned out into small page tasks; a Reshuffle spreads the tasks over workers, and each worker re-reads
the file and renders its page. No pixels go through the shuffle, and a worker holds at most a couple
of open documents, so memory stays bounded however large the corpus.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterator

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipeline.elements import DocumentFile, DocumentStatus, ErrorRecord, PageImage, PageTask
from pipeline.read import document_id
from transforms import pdf
from transforms.dropout import DROPOUT_COLOURS

LOGGER = logging.getLogger(__name__)
STAGE = "RenderPages"
ERRORS = "errors"
STATUSES = "statuses"


class FileChangedError(Exception):
    """The file's bytes differ between its first read and the read that renders a page."""


class _InspectDocument(beam.DoFn):
    """Opens a document once: a status row, and a page task per page when it can be rendered."""

    def __init__(self, max_pages: int) -> None:
        self._max_pages = max_pages
        self._ok = Metrics.counter("sigaudit", "documents_ok")
        self._failed = Metrics.counter("sigaudit", "documents_failed")

    def process(self, element: tuple[DocumentFile, bytes]) -> Iterator:
        doc_file, data = element
        try:
            with pdf.open_pdf(data, max_pages=self._max_pages) as document:
                count = document.page_count
        except pdf.DocumentError as exc:
            self._failed.inc()
            yield from _failure(doc_file, exc.kind, str(exc))
            return
        except Exception as exc:  # never fatal: MuPDF can raise anything on hostile input
            LOGGER.exception("unexpected failure opening %s", doc_file.source_path)
            self._failed.inc()
            yield from _failure(doc_file, "corrupt", f"{type(exc).__name__}: {exc}")
            return
        self._ok.inc()
        yield pvalue.TaggedOutput(
            STATUSES, DocumentStatus(doc_file.source_path, doc_file.document_id, count, "ok"))
        for index in range(count):
            yield PageTask(doc_file.source_path, doc_file.document_id, index, count)


def _failure(doc_file: DocumentFile, kind: str, message: str) -> Iterator[pvalue.TaggedOutput]:
    yield pvalue.TaggedOutput(
        STATUSES, DocumentStatus(doc_file.source_path, doc_file.document_id, None, "error", kind, message))
    yield pvalue.TaggedOutput(
        ERRORS, ErrorRecord(STAGE, doc_file.source_path, doc_file.document_id, None, kind, message))


class Progress:
    """A progress line every ``every_s`` seconds of a long local run: pages done and pages/s (per worker)."""

    def __init__(self, every_s: float = 10.0, clock=time.monotonic) -> None:
        self._every_s, self._clock = every_s, clock
        self._start = self._last = clock()
        self._pages = 0
        self._documents: set[str] = set()

    def page_done(self, source_path: str) -> str | None:
        """Count a page; returns the line when one is due (it is also logged)."""
        self._pages += 1
        self._documents.add(source_path)
        now = self._clock()
        if now - self._last < self._every_s:
            return None
        self._last = now
        line = (f"progress: {self._pages} pages of {len(self._documents)} documents rendered, "
                f"{self._pages / max(now - self._start, 1e-9):.2f} pages/s")
        LOGGER.info(line)
        return line


class _RenderPage(beam.DoFn):
    """Renders one page task; keeps the last few opened documents of this worker."""

    CACHE_SIZE = 2

    def __init__(self, dpi: int, max_pixels: int, dropout: str = "none") -> None:
        self._dpi = dpi
        self._max_pixels = max_pixels
        self._dropout = dropout
        self._pages = Metrics.counter("sigaudit", "pages")
        self._failed = Metrics.counter("sigaudit", "pages_failed")
        self._cache: OrderedDict = OrderedDict()

    def setup(self) -> None:
        self._cache = OrderedDict()
        self._progress = Progress()

    def teardown(self) -> None:
        while self._cache:
            self._cache.popitem()[1].close()

    def _document(self, task: PageTask):
        key = (task.source_path, task.document_id)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        with FileSystems.open(task.source_path, compression_type="uncompressed") as handle:
            data = handle.read()
        if document_id(data) != task.document_id:
            raise FileChangedError(f"{task.source_path} changed while it was audited (sha256 differs)")
        document = pdf.open_pdf(data, max_pages=task.page_count)
        self._cache[key] = document
        if len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)[1].close()
        return document

    def process(self, task: PageTask) -> Iterator:
        page = task.page_index + 1
        try:
            rendered = pdf.render_page(self._document(task), task.page_index, dpi=self._dpi,
                                       max_pixels=self._max_pixels, dropout=self._dropout)
        except pdf.DocumentError as exc:
            kind, message = exc.kind, str(exc)
        except FileChangedError as exc:
            kind, message = "changed_during_run", str(exc)
        except Exception as exc:  # never fatal
            LOGGER.exception("unexpected failure rendering page %d of %s", page, task.source_path)
            kind, message = "render_failed", f"{type(exc).__name__}: {exc}"
        else:
            self._pages.inc()
            self._progress.page_done(task.source_path)
            yield PageImage(task.source_path, task.document_id, page, rendered.dpi, rendered.image,
                            tuple(rendered.words))
            return
        self._failed.inc()
        yield pvalue.TaggedOutput(ERRORS, ErrorRecord(STAGE, task.source_path, task.document_id, page, kind,
                                                      message))


class RenderPages(beam.PTransform):
    """``(DocumentFile, bytes)`` -> ``PageImage`` per page, plus ``statuses`` and ``errors`` outputs;
    ``dropout``: the colour taken out of the pages as they are turned gray (``transforms.dropout``)."""

    def __init__(self, dpi: int, max_pages: int, max_pixels: int, dropout: str = "none") -> None:
        super().__init__()
        if dropout not in DROPOUT_COLOURS:
            raise ValueError(f"dropout must be one of {DROPOUT_COLOURS}, got {dropout!r}")
        self._dpi, self._max_pages, self._max_pixels, self._dropout = dpi, max_pages, max_pixels, dropout

    def expand(self, documents: beam.PCollection) -> dict[str, beam.PCollection]:
        inspected = documents | "Inspect" >> beam.ParDo(_InspectDocument(self._max_pages)).with_outputs(
            STATUSES, ERRORS, main="tasks")
        rendered = (
            inspected.tasks
            | "SpreadPages" >> beam.Reshuffle()
            | "Render" >> beam.ParDo(_RenderPage(self._dpi, self._max_pixels, self._dropout)).with_outputs(ERRORS, main="pages")
        )
        errors = (inspected[ERRORS], rendered[ERRORS]) | "MergeErrors" >> beam.Flatten()
        return {"pages": rendered.pages, "statuses": inspected[STATUSES], "errors": errors}
