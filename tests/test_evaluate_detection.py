"""Tests of ``python -m models.evaluate detection`` (tiny random model; one real-data test that skips)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.detect import DEFAULT_DETECTOR_PATH, save_detector
from models.detector import build_detector
from models.evaluate import main
from models.evaluate_detection import score_predictions, yolo_pairs
from transforms.boxes import Box

CARD = {"arch": "centernet_s", "input_size": 64, "score_threshold": 0.5, "nms_iou": 0.5, "max_boxes": 20,
        "model_version": "tiny-test"}


def _folder(root: Path, n: int) -> tuple[Path, Path]:
    images, labels = root / "images", root / "labels"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(images / f"p{i}.jpg"), rng.integers(200, 256, (90, 70), dtype=np.uint8))
        (labels / f"p{i}.txt").write_text("0 0.5 0.5 0.2 0.1" if i % 2 == 0 else "")
    return images, labels


def _tiny_setup(tmp_path: Path, n_pages: int) -> tuple[Path, Path, Path]:
    """A seeded tiny detector's weights and a YOLO folder of ``n_pages`` pages (``_folder``)."""
    torch.manual_seed(0)
    weights = save_detector(build_detector("centernet_s"), CARD, tmp_path / "w" / "det.safetensors")
    return (weights, *_folder(tmp_path / "data", n_pages))


def test_yolo_pairs_matches_stems_and_names_a_missing_label(tmp_path: Path) -> None:
    images, labels = _folder(tmp_path, 3)
    assert [p[0].name for p in yolo_pairs(images, labels)] == ["p0.jpg", "p1.jpg", "p2.jpg"]
    (labels / "p1.txt").unlink()
    with pytest.raises(ValueError, match="no label file .*p1.txt"):
        yolo_pairs(images, labels)
    with pytest.raises(ValueError, match="folder not found"):
        yolo_pairs(tmp_path / "nope", labels)


def test_score_predictions_counts_at_the_threshold() -> None:
    truth = [[Box(0.1, 0.1, 0.3, 0.2)], [], [Box(0.5, 0.5, 0.7, 0.6)]]
    preds = [[Box(0.1, 0.1, 0.3, 0.2, 0.9)], [Box(0.2, 0.2, 0.4, 0.3, 0.8)], [Box(0.5, 0.5, 0.7, 0.6, 0.3)]]
    s = score_predictions(preds, truth, 0.5)
    assert (s["true_positives"], s["false_positives"], s["false_negatives"]) == (1, 1, 1)
    assert s["precision"] == 0.5 and s["recall"] == 0.5 and s["n_images"] == 3 and s["n_boxes"] == 2
    assert s["ap50"] == pytest.approx(0.5 + 0.5 * 2 / 3, abs=1e-3)  # hit, miss, hit in score order


def test_cli_prints_and_writes_the_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights, images, labels = _tiny_setup(tmp_path, 4)
    out_json = tmp_path / "out" / "det.json"
    assert main(["detection", "--images", str(images), "--labels", str(labels), "--weights", str(weights),
                 "--json", str(out_json), "--batch-size", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out_json.read_text())
    for key in ("precision", "recall", "f1", "ap50", "n_images", "n_boxes", "model_version", "score_threshold"):
        assert key in printed
    assert printed["n_images"] == 4 and printed["n_boxes"] == 2 and printed["model_version"] == "tiny-test"
    assert printed["score_threshold"] == 0.5
    fp, fn = printed["false_positive_kinds"], printed["miss_kinds"]
    assert sum(fp.values()) == printed["false_positives"] and sum(fn.values()) == printed["false_negatives"]
    for key in ("ap50", "precision", "recall"):
        lo, hi = printed[f"{key}_ci95"]
        assert 0.0 <= lo <= hi <= 1.0
    assert "4 pages" in printed["ci95_method"]


def test_errors_file_lists_every_error_by_page(tmp_path: Path) -> None:
    from models.evaluate_detection import error_report

    images, labels = _folder(tmp_path, 3)
    pairs = yolo_pairs(images, labels)  # p0 and p2 hold a signature at (0.4, 0.45)-(0.6, 0.55)
    label = Box(0.4, 0.45, 0.6, 0.55)
    predictions = [[Box(0.4, 0.45, 0.6, 0.55, 0.9)], [Box(0.1, 0.1, 0.2, 0.2, 0.6)], [Box(0.4, 0.45, 0.6, 0.55, 0.3)]]
    report = error_report(pairs, predictions, [[label], [], [label]], 0.5)
    assert report["false_positive_kinds"] == {"duplicate": 0, "box_extent": 0, "background": 1}
    assert report["miss_kinds"] == {"below_threshold": 1, "box_extent": 0, "not_found": 0}
    assert report["pages"] == [
        {"image": "p1.jpg", "false_positives": [{"box": [0.1, 0.1, 0.2, 0.2], "kind": "background",
                                                 "best_iou": 0.0, "score": 0.6}], "misses": []},
        {"image": "p2.jpg", "false_positives": [], "misses": [{"box": [0.4, 0.45, 0.6, 0.55],
                                                               "kind": "below_threshold", "best_iou": 1.0,
                                                               "score": 0.3}]}]


def test_cli_writes_the_errors_file(tmp_path: Path) -> None:
    weights, images, labels = _tiny_setup(tmp_path, 2)
    errors = tmp_path / "out" / "errors.json"
    assert main(["detection", "--images", str(images), "--labels", str(labels), "--weights", str(weights),
                 "--errors", str(errors), "--score-threshold", "0.0"]) == 0
    report = json.loads(errors.read_text())
    assert report["model_version"] == "tiny-test" and report["score_threshold"] == 0.0
    listed = sum(len(p["false_positives"]) + len(p["misses"]) for p in report["pages"])
    assert listed == sum(report["false_positive_kinds"].values()) + sum(report["miss_kinds"].values())
    assert {p["image"] for p in report["pages"]} <= {"p0.jpg", "p1.jpg"}


def test_shipped_detector_on_real_valid_pages(shared_data: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    if not DEFAULT_DETECTOR_PATH.is_file():
        pytest.skip(f"{DEFAULT_DETECTOR_PATH} not exported yet")
    valid = shared_data / "detection" / "valid"
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for path in sorted((valid / "images").glob("*.jpg"))[:12]:  # links, not copies
        (images / path.name).symlink_to(path)
        (labels / f"{path.stem}.txt").symlink_to(valid / "labels" / f"{path.stem}.txt")
    assert main(["detection", "--images", str(images), "--labels", str(labels)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_images"] == 12 and result["n_boxes"] > 0
    assert result["true_positives"] + result["false_negatives"] == result["n_boxes"]
    assert 0.0 <= result["ap50"] <= 1.0 and result["true_positives"] >= 1  # quality figures live in the card
