"""ReadDocuments: file patterns in, (DocumentFile, bytes) out, with a row for every pattern that fails."""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Mapping

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipeline.elements import DocumentFile, DocumentStatus, ErrorRecord

LOGGER = logging.getLogger(__name__)
STAGE = "ReadDocuments"
ERRORS = "errors"
STATUSES = "statuses"
DEFAULT_MAX_FILE_BYTES = 512 << 20


def expand_pattern(pattern: str) -> str:
    """A local folder means every file in it; anything else is a Beam file pattern as given."""
    if "://" not in pattern and os.path.isdir(pattern):
        return os.path.join(pattern, "*")
    return pattern


def document_id(data: bytes) -> str:
    """The content hash that identifies a document across runs and file names."""
    return hashlib.sha256(data).hexdigest()


class _CheckPattern(beam.DoFn):
    """Emits an error row for a pattern that matches no file (a typo must not pass silently)."""

    def process(self, pattern: str) -> Iterator[ErrorRecord]:
        try:
            matched = FileSystems.match([pattern])[0].metadata_list
        except Exception as exc:  # a filesystem may raise for a missing non-glob path
            matched, reason = [], f"{type(exc).__name__}: {exc}"
        else:
            reason = "no file matches this pattern"
        if not matched:
            LOGGER.warning("input pattern %r matches no file", pattern)
            yield ErrorRecord(STAGE, pattern, None, None, "no_match", f"{reason}: {pattern!r}")


class _ReadFile(beam.DoFn):
    """Reads one matched file whole and hashes it; oversized and unreadable files become error rows."""

    def __init__(self, max_file_bytes: int, skip: Mapping[str, str]) -> None:
        self._max_file_bytes = max_file_bytes
        self._skip = dict(skip)
        self._read = Metrics.counter("sigaudit", "files_read")
        self._skipped = Metrics.counter("sigaudit", "documents_skipped")

    def process(self, metadata: FileMetadata) -> Iterator:
        path = metadata.path
        kind, message = None, None
        if metadata.size_in_bytes > self._max_file_bytes:
            kind = "file_too_large"
            message = f"{metadata.size_in_bytes} bytes is over the limit of {self._max_file_bytes} bytes"
        else:
            try:
                with FileSystems.open(path, compression_type="uncompressed") as handle:
                    data = handle.read()
            except Exception as exc:
                kind, message = "unreadable", f"{type(exc).__name__}: {exc}"
        if kind is not None:
            yield pvalue.TaggedOutput(STATUSES, DocumentStatus(path, None, None, "error", kind, message))
            yield pvalue.TaggedOutput(ERRORS, ErrorRecord(STAGE, path, None, None, kind, message))
            return
        self._read.inc()
        doc_id = document_id(data)
        if doc_id in self._skip:
            self._skipped.inc()
            yield pvalue.TaggedOutput(STATUSES, DocumentStatus(path, doc_id, None, "skipped", None,
                                                               f"already processed: {self._skip[doc_id]}"))
            return
        yield DocumentFile(path, doc_id, len(data)), data


class ReadDocuments(beam.PTransform):
    """Patterns -> ``(DocumentFile, bytes)`` per matched file, plus ``statuses`` and ``errors`` outputs."""

    def __init__(self, patterns: tuple[str, ...], max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                 skip: Mapping[str, str] | None = None) -> None:
        """``skip``: document_id -> why, for documents already processed (``--skip_processed``)."""
        super().__init__()
        if not patterns:
            raise ValueError("ReadDocuments needs at least one file pattern, got none")
        self._patterns = tuple(expand_pattern(p) for p in patterns)
        self._max_file_bytes = max_file_bytes
        self._skip = dict(skip or {})

    def expand(self, pbegin: beam.pvalue.PBegin) -> dict[str, beam.PCollection]:
        patterns = pbegin | "Patterns" >> beam.Create(self._patterns)
        pattern_errors = patterns | "CheckPatterns" >> beam.ParDo(_CheckPattern())
        read = (
            patterns
            | "Match" >> fileio.MatchAll(empty_match_treatment=fileio.EmptyMatchTreatment.ALLOW)
            | "KeyByPath" >> beam.Map(lambda metadata: (metadata.path, metadata))
            | "OnePerPath" >> beam.CombinePerKey(_first)
            | "DropKey" >> beam.Values()
            | "Read" >> beam.ParDo(_ReadFile(self._max_file_bytes, self._skip)).with_outputs(STATUSES, ERRORS, main="documents")
        )
        errors = (pattern_errors, read[ERRORS]) | "MergeErrors" >> beam.Flatten()
        return {"documents": read.documents, "statuses": read[STATUSES], "errors": errors}


def _first(values):
    """Any one of equal values (a file matched by two patterns is read once)."""
    return next(iter(values))
