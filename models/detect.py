"""Shipped detector weights and the one detection function shared by evaluation and the pipeline.

``models/weights/detector.safetensors`` holds the state dict, ``detector.json`` beside it the model
card: ``arch`` (a key of ``models.detector.DETECTORS``), ``input_size`` (S of
``transforms.detection_prep.prepare_page``), ``score_threshold`` (the shipped operating point),
``nms_iou``, ``max_boxes``, ``preprocessing`` ('stretch'), ``model_version`` and the training and
validation figures.

    model, card = load_detector()                                   # eval mode, on device
    batch = np.stack([prepare_page(page, card["input_size"]) for page in pages])
    boxes = detect_batch(model, batch, card, device)                # list[list[Box]], one list per page
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models.detector import build_detector
from models.weights import WEIGHTS_DIR, card_path, load_card, load_model_file, save_model_file
from transforms.boxes import Box
from transforms.detection_prep import decode_boxes

DEFAULT_DETECTOR_PATH = WEIGHTS_DIR / "detector.safetensors"
REQUIRED_CARD_KEYS = ("arch", "input_size", "score_threshold", "nms_iou", "max_boxes", "model_version")


def save_detector(model: nn.Module, card: dict[str, Any], path: str | Path = DEFAULT_DETECTOR_PATH) -> Path:
    """Write ``model``'s state dict as safetensors at ``path`` and ``card`` as JSON beside it."""
    missing = [k for k in REQUIRED_CARD_KEYS if k not in card]
    if missing:
        raise ValueError(f"detector card lacks keys {missing}")
    if Path(path).suffix != ".safetensors":
        raise ValueError(f"weights must be a .safetensors file, got {path}")
    return save_model_file(model, card, path)


def load_detector(path: str | Path | None = None, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Build the card's architecture, load the safetensors weights, move to ``device``, eval mode.

    ``path`` defaults to ``models/weights/detector.safetensors``; ``device`` is 'cpu', 'cuda[:N]' or
    'auto' (CUDA falls back to CPU with a warning). Returns ``(model, card)``.
    """
    path = Path(path) if path is not None else DEFAULT_DETECTOR_PATH
    if path.is_file() and card_path(path).is_file():
        missing = [k for k in REQUIRED_CARD_KEYS if k not in load_card(path)]
        if missing:
            raise ValueError(f"model card {card_path(path)} lacks keys {missing}")
    return load_model_file(path, build_detector, device, what="detector weights")


def detect_batch(model: nn.Module, batch: np.ndarray, card: dict[str, Any],
                 device: str | torch.device = "cpu", score_threshold: float | None = None) -> list[list[Box]]:
    """Signature boxes of a batch of prepared pages ``(N, S, S) float32`` (``prepare_page`` output).

    Runs under ``torch.inference_mode``; results are plain :class:`Box` lists on the CPU, one per page,
    in normalized coordinates of the original pages, best first. Boxes below ``score_threshold``
    (default: the card's shipped ``score_threshold``) are dropped; evaluation passes a low threshold
    to compute AP.
    """
    size = int(card["input_size"])
    if not isinstance(batch, np.ndarray) or batch.ndim != 3 or batch.shape[1:] != (size, size):
        raise ValueError(f"batch must be (N, {size}, {size}) float32, got {getattr(batch, 'shape', None)}")
    threshold = float(card["score_threshold"]) if score_threshold is None else float(score_threshold)
    if len(batch) == 0:
        return []
    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).unsqueeze(1).to(device)
    with torch.inference_mode():
        out = model(x)
        heat = torch.sigmoid(out[:, 0]).cpu().numpy()
        ltrb = out[:, 1:].float().cpu().numpy()
    return [decode_boxes(heat[i], ltrb[i], threshold, int(card["max_boxes"]), float(card["nms_iou"]))
            for i in range(len(batch))]
