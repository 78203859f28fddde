"""Tests for transforms/detection_metrics.py, with hand-computed expectations."""
from __future__ import annotations

import math

import numpy as np
import pytest

from transforms.boxes import Box
from transforms.detection_metrics import average_precision, detection_scores, match_page, page_errors

A = Box(0.1, 0.1, 0.3, 0.3)
B = Box(0.6, 0.6, 0.9, 0.8)


def shifted(box: Box, dx: float, score: float) -> Box:
    return Box(box.x0 + dx, box.y0, box.x1 + dx, box.y1, score)


def test_perfect_detection() -> None:
    s = detection_scores([[A, B], []], [[A, B], []])
    assert (s.precision, s.recall, s.f1, s.ap) == (1.0, 1.0, 1.0, 1.0)
    assert (s.true_positives, s.false_positives, s.false_negatives, s.pages) == (2, 0, 0, 2)


def test_duplicates_and_misses_count() -> None:
    # page 1: a hit (0.9), a duplicate of it (0.8); page 2: a box on an empty page (0.7); B is missed
    predictions = [[shifted(A, 0.0, 0.9), shifted(A, 0.01, 0.8)], [shifted(B, 0.0, 0.7)]]
    s = detection_scores(predictions, [[A, B], []])
    assert (s.true_positives, s.false_positives, s.false_negatives) == (1, 2, 1)
    assert s.precision == pytest.approx(1 / 3) and s.recall == pytest.approx(0.5)
    assert s.f1 == pytest.approx(0.4)
    assert s.ap == pytest.approx(0.5)  # precision 1 up to recall 0.5, never more recall


def test_iou_threshold_and_score_threshold() -> None:
    loose = shifted(A, 0.1, 0.9)  # IoU with A = 0.1*0.2 / (0.04+0.04-0.02) = 1/3
    assert detection_scores([[loose]], [[A]], iou_threshold=0.5).true_positives == 0
    assert detection_scores([[loose]], [[A]], iou_threshold=0.3).true_positives == 1
    s = detection_scores([[shifted(A, 0.0, 0.2)]], [[A]], score_threshold=0.5)
    assert (s.true_positives, s.false_negatives, s.ap) == (0, 1, 1.0)


def test_ap_orders_by_score_across_pages() -> None:
    # ranked: miss (0.9), hit (0.8) -> precision 0.5 at recall 1
    assert average_precision([0.8, 0.9], [True, False], 1) == pytest.approx(0.5)
    assert average_precision([], [], 2) == 0.0
    assert math.isnan(average_precision([0.5], [False], 0))


def test_match_page_takes_the_best_overlap() -> None:
    near_b = Box(0.6, 0.6, 0.88, 0.8, 0.5)
    assert match_page([near_b, shifted(A, 0.0, 0.9)], [A, B]) == [True, True]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="one entry per page, got 1 and 2"):
        detection_scores([[]], [[], []])
    with pytest.raises(ValueError, match="iou_threshold must be in"):
        detection_scores([[]], [[]], iou_threshold=0.0)


def test_page_errors_names_each_kind() -> None:
    c = Box(0.1, 0.6, 0.3, 0.7)
    predictions = [shifted(A, 0.0, 0.9),            # hit A
                   shifted(A, 0.01, 0.8),           # duplicate of A
                   Box(0.6, 0.55, 0.95, 0.9, 0.7),  # B boxed too large: IoU 0.06 / 0.1225 ~ 0.49
                   Box(0.5, 0.1, 0.6, 0.2, 0.6),    # nowhere near a label
                   Box(0.1, 0.6, 0.3, 0.7, 0.2)]    # C, found only under the threshold
    d = Box(0.4, 0.85, 0.5, 0.95)                   # nothing near it
    false_positives, misses = page_errors(predictions, [A, B, c, d], 0.5, score_threshold=0.5)
    assert [(e.kind, e.score) for e in false_positives] == [("duplicate", 0.8), ("box_extent", 0.7),
                                                            ("background", 0.6)]
    assert false_positives[1].best_iou == pytest.approx(0.06 / 0.1225)
    assert false_positives[2].best_iou == 0.0
    assert [(e.box, e.kind) for e in misses] == [(B, "box_extent"), (c, "below_threshold"), (d, "not_found")]
    assert misses[0].score == 0.7 and misses[1].score == 0.2 and misses[1].best_iou == pytest.approx(1.0)
    assert (misses[2].best_iou, misses[2].score) == (0.0, 0.0)
    s = detection_scores([predictions], [[A, B, c, d]], 0.5, 0.5)  # the same matching as the counts
    assert (s.false_positives, s.false_negatives) == (len(false_positives), len(misses))


def test_page_errors_of_a_clean_page_and_an_empty_one() -> None:
    assert page_errors([shifted(A, 0.0, 0.9)], [A]) == ([], [])
    false_positives, misses = page_errors([shifted(B, 0.0, 0.4)], [])
    assert [e.kind for e in false_positives] == ["background"] and misses == []


def test_page_bootstrap_resamples_pages() -> None:
    from transforms.detection_metrics import page_bootstrap

    truth = [[Box(0.1, 0.1, 0.3, 0.2)], [Box(0.5, 0.5, 0.7, 0.6)], [], [Box(0.2, 0.7, 0.4, 0.8)]]
    perfect = [[Box(0.1, 0.1, 0.3, 0.2, 0.9)], [Box(0.5, 0.5, 0.7, 0.6, 0.8)], [], [Box(0.2, 0.7, 0.4, 0.8, 0.7)]]
    spread = page_bootstrap(perfect, truth, 0.5, resamples=100)
    assert set(spread) == {"ap50", "precision", "recall"}
    assert all(np.all(v == 1.0) for v in spread.values()) and spread["ap50"].size <= 100
    # page 1 holds a confident false positive and a miss: resamples that draw it score lower
    flawed = [perfect[0], [Box(0.0, 0.0, 0.1, 0.1, 0.95)], [], perfect[3]]
    spread = page_bootstrap(flawed, truth, 0.5, resamples=300, seed=2)
    assert spread["precision"].min() < 1.0 and spread["precision"].max() == 1.0
    assert spread["recall"].min() < 1.0 and spread["ap50"].min() < 1.0
    full = detection_scores(flawed, truth, 0.5, 0.5)
    assert spread["recall"].min() <= full.recall <= spread["recall"].max()
    again = page_bootstrap(flawed, truth, 0.5, resamples=300, seed=2)
    assert np.array_equal(again["ap50"], spread["ap50"])
    with pytest.raises(ValueError, match="one entry per page"):
        page_bootstrap(flawed[:2], truth, 0.5)
    with pytest.raises(ValueError, match="resamples"):
        page_bootstrap(flawed, truth, 0.5, resamples=0)
