"""Reading YOLO label files (``class cx cy w h`` per line, normalized) as :class:`Box` lists."""
from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

from transforms.boxes import Box

logger = logging.getLogger(__name__)


def parse_yolo_labels(text: str, classes: Collection[int] | None = None, source: str = "<text>") -> list[Box]:
    """Boxes (score 1.0) of YOLO label ``text``, clipped to the page; an empty text means no box.

    Only lines whose class is in ``classes`` are kept (all when None). Degenerate boxes (zero width or
    height after clipping) are skipped with a warning; malformed lines raise ``ValueError``.
    """
    boxes = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 5:
                raise ValueError(f"expected 5 fields, got {len(fields)}")
            label = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError as exc:
            raise ValueError(f"{source}:{number}: bad YOLO label line {line!r}: {exc}") from exc
        if classes is not None and label not in classes:
            continue
        x0, y0 = max(cx - w / 2, 0.0), max(cy - h / 2, 0.0)
        x1, y1 = min(cx + w / 2, 1.0), min(cy + h / 2, 1.0)
        if not (x0 < x1 and y0 < y1):
            logger.warning("%s:%d: skipping degenerate box %r", source, number, line)
            continue
        boxes.append(Box(x0, y0, x1, y1, 1.0))
    return boxes


def load_yolo_labels(path: str | Path, classes: Collection[int] | None = None) -> list[Box]:
    """Boxes of the YOLO label file at ``path`` (see :func:`parse_yolo_labels`)."""
    return parse_yolo_labels(Path(path).read_text(encoding="utf-8"), classes, str(path))
