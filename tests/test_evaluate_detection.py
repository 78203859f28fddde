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
    torch.manual_seed(0)
    weights = save_detector(build_detector("centernet_s"), CARD, tmp_path / "w" / "det.safetensors")
    images, labels = _folder(tmp_path / "data", 4)
    out_json = tmp_path / "out" / "det.json"
    assert main(["detection", "--images", str(images), "--labels", str(labels), "--weights", str(weights),
                 "--json", str(out_json), "--batch-size", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out_json.read_text())
    for key in ("precision", "recall", "f1", "ap50", "n_images", "n_boxes", "model_version", "score_threshold"):
        assert key in printed
    assert printed["n_images"] == 4 and printed["n_boxes"] == 2 and printed["model_version"] == "tiny-test"
    assert printed["score_threshold"] == 0.5


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
