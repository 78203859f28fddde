"""Detector calibration: view parsing, the box-extent fit on hand-made boxes, the holdout lookup."""
from __future__ import annotations

import pytest

from models.calibrate_detector import fit_box_scale, holdout_pages
from models.detect import parse_view, view_name
from transforms.boxes import Box


def test_parse_view() -> None:
    assert parse_view("384") == [384, False] and parse_view("448f") == [448, True]
    assert parse_view("448f@1") == [448, True, 1] and parse_view("320@0") == [320, False, 0]
    for text in ("384", "448f", "448f@1", "320@2"):
        assert view_name(parse_view(text)) == text
    assert view_name((320, False, 0)) == "320"
    for bad in ("f", "384x", "", "-384", "384@", "384f@x", "@1"):
        with pytest.raises(ValueError, match="SIZE or SIZEf"):
            parse_view(bad)


def test_fit_box_scale_takes_the_median_ratio_of_matched_pairs() -> None:
    labels, preds = [], []
    for k in range(12):  # labels 0.8 as tall and as wide as the detections, one detection too weak
        x = 0.05 + 0.07 * k
        labels.append([Box(x + 0.003, 0.41, x + 0.043, 0.49)])
        preds.append([Box(x, 0.40, x + 0.05, 0.50, 0.9 if k else 0.1)])
    labels[3].append(Box(0.1, 0.8, 0.2, 0.9))  # a missed signature: no pair
    (sx, sy), n = fit_box_scale(preds, labels, min_score=0.5)
    assert n == 11 and sx == pytest.approx(0.8) and sy == pytest.approx(0.8)
    with pytest.raises(ValueError, match="too few"):
        fit_box_scale(preds[:5], labels[:5], min_score=0.5)


def test_holdout_pages_need_the_card_s_stems(tmp_path) -> None:
    with pytest.raises(ValueError, match="holdout_stems"):
        holdout_pages({"training": {}}, tmp_path)
