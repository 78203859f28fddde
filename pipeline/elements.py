"""The typed elements that flow between the stages.

Data flows one way: DocumentFile -> PageTask -> PageImage -> Region -> RegionEmbedding -> rows.
Every element of one input file carries ``source_path`` (unique within a run: the grouping key of a
file's rows) and ``document_id`` (sha256 of the file's bytes).
"""
from __future__ import annotations

import posixpath
from typing import NamedTuple

import numpy as np


class DocumentFile(NamedTuple):
    source_path: str
    document_id: str
    size_bytes: int


class DocumentStatus(NamedTuple):
    """What happened to one input file as a whole (one ``documents`` row, before aggregation)."""

    source_path: str
    document_id: str | None
    page_count: int | None
    status: str  # "ok" | "error"
    error_kind: str | None = None
    error_message: str | None = None


class PageTask(NamedTuple):
    """One page to render: small, so that the Reshuffle before rendering moves no pixels."""

    source_path: str
    document_id: str
    page_index: int  # 0-based
    page_count: int


class PageImage(NamedTuple):
    source_path: str
    document_id: str
    page: int  # 1-based
    dpi: int
    image: np.ndarray  # (H, W) uint8, ink dark
    words: tuple  # transforms.pdf.Word items in 0..1 page coordinates


class Region(NamedTuple):
    source_path: str
    document_id: str
    page: int  # 1-based
    region: int  # 0-based within the page, by descending score
    x0: float
    y0: float
    x1: float
    y1: float
    dpi: int
    detector: str
    detector_score: float
    crop: np.ndarray  # (h, w) uint8, ink dark
    cleaned: np.ndarray | None = None  # the crop after CleanSignatures, same size; None when not cleaned
    page_thumb: bytes | None = None  # JPEG thumbnail of the whole page, on the page's first region only (review)

    @property
    def verified_image(self) -> np.ndarray:
        """What Verify compares: the cleaned crop when there is one, else the crop."""
        return self.crop if self.cleaned is None else self.cleaned


class ErrorRecord(NamedTuple):
    stage: str
    source_path: str | None
    document_id: str | None
    page: int | None
    error_kind: str
    error_message: str


def region_key(region: Region) -> tuple[str, int, int]:
    """The deterministic key of a region: (source_path, page, region)."""
    return region.source_path, region.page, region.region


def base_name(path: str) -> str:
    """The file name of a local or Beam filesystem path (what ``--expected`` calls the document)."""
    return posixpath.basename(path.replace("\\", "/"))
