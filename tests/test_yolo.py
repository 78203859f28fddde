"""Tests for transforms/yolo.py."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from transforms.yolo import load_yolo_labels, parse_yolo_labels


def test_parse_lines_clip_and_no_final_newline() -> None:
    boxes = parse_yolo_labels("0 0.5 0.5 0.2 0.1\n\n0 0.05 0.95 0.2 0.2")
    first = boxes[0]
    assert (first.x0, first.y0, first.x1, first.y1) == pytest.approx((0.4, 0.45, 0.6, 0.55))
    assert first.score == 1.0 and len(boxes) == 2
    second = boxes[1]
    assert (second.x0, second.y1) == (0.0, 1.0)
    assert second.x1 == pytest.approx(0.15) and second.y0 == pytest.approx(0.85)


def test_empty_file_means_no_box(tmp_path: Path) -> None:
    path = tmp_path / "page.txt"
    path.write_text("")
    assert load_yolo_labels(path) == []


def test_classes_filter_and_degenerate_boxes() -> None:
    assert len(parse_yolo_labels("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2", classes={1})) == 1
    assert parse_yolo_labels("0 0.5 0.5 0 0.2") == []


@pytest.mark.parametrize("line", ["0 0.5 0.5 0.2", "x 0.5 0.5 0.2 0.2", "0 0.5 0.5 0.2 abc"])
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(f"0 0.5 0.5 0.2 0.2\n{line}\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: bad YOLO label line"):
        load_yolo_labels(path)


def test_real_labels_count() -> None:
    root = Path(os.environ.get("SIGAUDIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    labels = root / "detection" / "valid" / "labels"
    if not labels.is_dir():
        pytest.skip(f"{labels} not found: the shared data is absent")
    files = sorted(labels.glob("*.txt"))
    boxes = [load_yolo_labels(path) for path in files]
    assert (len(files), sum(map(len, boxes)), sum(not b for b in boxes)) == (349, 375, 36)  # data/README.md
