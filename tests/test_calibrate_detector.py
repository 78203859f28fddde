"""Detector calibration: view parsing, the box-extent fit on hand-made boxes, the holdout lookup, the contract floor."""
from __future__ import annotations

import numpy as np
import pytest

import models.calibrate_detector as calibrate_detector
from models.calibrate_detector import calibrate, contract_floor, fit_box_scale, holdout_pages
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


def test_contract_floor_leaves_at_most_the_allowed_pages_without_a_region() -> None:
    best = [0.71, 0.0, 0.334, 0.52, 0.9]
    assert contract_floor(best, 0) == 0.05  # a page without any box: no threshold keeps it, the grid's floor
    assert contract_floor(best, 1) == 0.33  # 0.334 on the 0.01 grid, rounded down: it stays found
    assert contract_floor(best, 2) == 0.52 and contract_floor(best, 5) == 1.0
    for allowed in range(1, 5):
        t = contract_floor(best, allowed)
        assert sum(b < t for b in best) <= allowed
    with pytest.raises(ValueError, match="max_missed must be >= 0, got -1"):
        contract_floor(best, -1)


def _hand_made_holdout(score: float) -> tuple[list, list]:
    pages, preds = [], []
    for k in range(12):
        x = 0.05 + 0.07 * k
        pages.append((np.zeros((8, 8), np.uint8), [Box(x, 0.40, x + 0.05, 0.50)]))
        preds.append([Box(x, 0.40, x + 0.05, 0.50, 0.9 if k < 9 else score), Box(0.1, 0.8, 0.2, 0.9, 0.5)])
    return pages, preds


def test_calibrate_caps_the_threshold_by_the_contract_floor(monkeypatch) -> None:
    pages, preds = _hand_made_holdout(0.3)  # three signatures at 0.3, one false box at 0.5 on every page
    monkeypatch.setattr(calibrate_detector, "detect_pages", lambda *a, **k: preds)
    card = {"score_threshold": 0.25, "views": [[384, False]]}
    plain = calibrate(None, card, pages, [[384, False]])
    assert plain["score_threshold"] > 0.5 and "contract_floor" not in plain  # best F1 drops the 0.3 and 0.5 boxes
    seen = {}

    def contracts(model, trial, kind, n, seed):
        seen.update(kind=kind, n=n, seed=seed, threshold=trial["score_threshold"], box_scale=trial["box_scale"])
        return [(0.45, 0.45), (0.8, 0.8), (0.6, 0.0), (0.2, 0.2)]

    monkeypatch.setattr(calibrate_detector, "contract_scores", contracts)
    capped = calibrate(None, card, pages, [[384, False]],
                       contracts={"pages": 4, "seed": 2, "kind": "scanned", "max_missed": 1})
    assert seen == {"kind": "scanned", "n": 4, "seed": 2, "threshold": plain["score_threshold"],
                    "box_scale": plain["box_scale"]}
    assert capped["score_threshold"] == 0.45
    floor = capped["contract_floor"]
    assert floor["floor"] == 0.45 and floor["holdout_best_f1_threshold"] == plain["score_threshold"]
    best = [0.45, 0.8, 0.6, 0.2]
    assert floor["missed_at_holdout_threshold"] == sum(b < plain["score_threshold"] for b in best) >= 2
    assert floor["missed_at_threshold"] == 1
    assert capped["holdout"]["false_positives"] == 12 > plain["holdout"]["false_positives"]  # scored at 0.45
    loose = calibrate(None, card, pages, [[384, False]],
                      contracts={"pages": 4, "seed": 2, "kind": "scanned", "max_missed": 4})
    assert loose["score_threshold"] == plain["score_threshold"]  # a floor above the best-F1 threshold leaves it


def test_floor_only_keeps_the_card_s_settings_and_caps_its_threshold(monkeypatch) -> None:
    from models.calibrate_detector import floor_only

    seen = {}

    def contracts(model, card, kind, n, seed):
        seen.update(card=card, kind=kind, n=n, seed=seed)
        return [(0.45, 0.45), (0.8, 0.8), (0.3, 0.0), (0.2, 0.2)]

    monkeypatch.setattr(calibrate_detector, "contract_scores", contracts)
    card = {"score_threshold": 0.5, "views": [[320, False], [384, True]], "box_scale": [0.99, 0.9]}
    out = floor_only(None, card, {"pages": 4, "seed": 2, "kind": "scanned", "max_missed": 1})
    assert seen == {"card": card, "kind": "scanned", "n": 4, "seed": 2}  # the card's own views and box scale
    assert out["score_threshold"] == 0.3 and out["contract_floor"]["floor"] == 0.3
    assert out["contract_floor"]["missed_at_card_threshold"] == 3 and out["contract_floor"]["missed_at_threshold"] == 1
    assert floor_only(None, card, {"pages": 4, "seed": 2, "kind": "scanned", "max_missed": 3})["score_threshold"] == 0.5


def test_main_floor_only_needs_contract_pages_and_no_views() -> None:
    with pytest.raises(SystemExit):
        calibrate_detector.main(["--floor-only"])
    with pytest.raises(SystemExit):
        calibrate_detector.main(["--floor-only", "--contract-pages", "5", "--views", "384"])
    with pytest.raises(SystemExit):
        calibrate_detector.main([])
