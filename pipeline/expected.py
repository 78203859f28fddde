"""The ``--expected`` CSV: which signers must have signed which document."""
from __future__ import annotations

import csv
import io
from collections import defaultdict

from apache_beam.io.filesystems import FileSystems

REQUIRED_COLUMNS = ("document", "signer_id")


def parse_expected(text: str, source: str = "<expected>") -> dict[str, tuple[str, ...]]:
    """``document,signer_id`` rows -> ``{document base name: sorted signer ids}``.

    Raises ValueError naming the file, the line and the bad value for a missing column or an empty cell.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{source}: header must have columns {REQUIRED_COLUMNS}, got {reader.fieldnames}")
    expected: dict[str, set[str]] = defaultdict(set)
    for line, row in enumerate(reader, start=2):
        document, signer = (row["document"] or "").strip(), (row["signer_id"] or "").strip()
        if not document or not signer:
            raise ValueError(f"{source} line {line}: document and signer_id must be non-empty, got {row}")
        expected[document].add(signer)
    return {document: tuple(sorted(signers)) for document, signers in expected.items()}


def read_expected(path: str | None) -> dict[str, tuple[str, ...]]:
    """Read the expected-signers CSV from any Beam filesystem; no path means nothing is expected."""
    if not path:
        return {}
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        return parse_expected(handle.read().decode("utf-8"), source=path)
