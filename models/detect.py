"""Shipped detector weights and the one detection function shared by evaluation and the pipeline.

``models/weights/detector.safetensors`` holds the state dict, ``detector.json`` beside it the model
card: ``arch`` (a key of ``models.detector.DETECTORS``), ``input_size`` (S of
``transforms.detection_prep.prepare_page``), ``score_threshold`` (the shipped operating point),
``nms_iou``, ``max_boxes``, ``preprocessing`` ('stretch'), ``model_version`` and the training and
validation figures. Optional test-time augmentation: ``views`` (``[[size, flipped], ...]``: the network
runs on the page stretched to each size, mirrored left-right where ``flipped``; the boxes of all views
are merged by ``transforms.boxes.fuse_boxes`` at ``fusion_iou``) and ``box_scale`` (``[sx, sy]``: the
calibrated box extent, ``transforms.boxes.scale_boxes``). Without them: one view at ``input_size``.
An ensemble of detectors (``models.detector.DetectorEnsemble``, arch ``<arch>xN``) names in each view
the member that runs it: ``[size, flipped, member]`` (member 0 where a view has two entries).

    model, card = load_detector()                                   # eval mode, on device
    boxes = detect_pages(model, pages, card, device)                # list[list[Box]], one list per page
    # the same in steps: detect_batch(model, stack_views([prepare_views(page, card) ...]), card, device)
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models.detector import build_detector
from models.weights import WEIGHTS_DIR, card_path, load_card, load_model_file, save_model_file
from transforms.boxes import Box, fuse_boxes, nms, scale_boxes
from transforms.detection_prep import decode_boxes, prepare_page

DEFAULT_DETECTOR_PATH = WEIGHTS_DIR / "detector.safetensors"
REQUIRED_CARD_KEYS = ("arch", "input_size", "score_threshold", "nms_iou", "max_boxes", "model_version")
VIEW_FLOOR = 0.02  # each view's boxes are decoded down to this score before fusion
DEFAULT_FUSION_IOU = 0.55


def detector_views(card: dict[str, Any]) -> list[tuple[int, bool, int]]:
    """The card's ``views`` as ``(size, flipped, member)``; one unflipped view at ``input_size`` by default."""
    views = card.get("views") or [[int(card["input_size"]), False]]
    out = []
    for view in views:
        if (not isinstance(view, (list, tuple)) or len(view) not in (2, 3) or int(view[0]) % 32
                or int(view[0]) < 64 or (len(view) == 3 and int(view[2]) < 0)):
            raise ValueError("a detector view must be [size (multiple of 32, >= 64), flipped] or "
                             f"[size, flipped, member (>= 0)], got {view!r}")
        out.append((int(view[0]), bool(view[1]), int(view[2]) if len(view) == 3 else 0))
    if len(set(out)) != len(out):
        raise ValueError(f"detector views repeat: {views}")
    return out


def parse_view(text: str) -> list:
    """``"448f"`` -> ``[448, True]``; ``"384"`` -> ``[384, False]``; ``"384f@1"`` -> ``[384, True, 1]``
    (run by member 1 of an ensemble). The card's view syntax on command lines; ``view_name`` inverts it."""
    body, at, member = text.partition("@")
    flipped = body.endswith("f")
    digits = body[:-1] if flipped else body
    if not digits.isdigit() or (at and not member.isdigit()):
        raise ValueError(f"a view is SIZE or SIZEf (mirrored), optionally @MEMBER, e.g. 384, 448f or 448f@1; got {text!r}")
    return [int(digits), flipped, int(member)] if at else [int(digits), flipped]


def view_name(view: Sequence) -> str:
    """``(448, True, 1)`` -> ``"448f@1"``; member 0 is left out (``"448f"``)."""
    size, flipped, *member = view
    suffix = f"@{member[0]}" if member and member[0] else ""
    return f"{int(size)}{'f' if flipped else ''}{suffix}"


def view_sizes(card: dict[str, Any]) -> list[int]:
    """Distinct input sizes of the card's views, in the order the views first name them."""
    return list(dict.fromkeys(size for size, _, _ in detector_views(card)))


def prepare_views(image: np.ndarray, card: dict[str, Any]) -> tuple[np.ndarray, ...]:
    """A page ``(H, W) uint8`` as the detector's inputs: ``prepare_page`` at each of ``view_sizes(card)``."""
    return tuple(prepare_page(image, size) for size in view_sizes(card))


def stack_views(inputs: list[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
    """Per-page ``prepare_views`` tuples -> one ``(N, S, S)`` stack per view size (``detect_batch``'s batch)."""
    if not inputs:
        return []
    return [np.stack([page[k] for page in inputs]) for k in range(len(inputs[0]))]


def detect_pages(model: nn.Module, pages: Sequence[np.ndarray], card: dict[str, Any],
                 device: str | torch.device = "cpu", score_threshold: float | None = None,
                 batch_size: int = 8) -> list[list[Box]]:
    """``detect_batch`` over whole pages ``(H, W) uint8``: ``prepare_views`` and ``stack_views`` in
    chunks of ``batch_size`` pages; one box list per page."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    out: list[list[Box]] = []
    for start in range(0, len(pages), batch_size):
        inputs = [prepare_views(page, card) for page in pages[start:start + batch_size]]
        out += detect_batch(model, stack_views(inputs), card, device, score_threshold)
    return out


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
    model, card = load_model_file(path, build_detector, device, what="detector weights")
    # Channels-last weights: about 1.2-1.8x faster convolutions on an AVX2-only CPU (AMD EPYC), boxes the
    # same (maps within 3e-5); the inputs stay plain NCHW, which for one channel is the same memory.
    model.to(memory_format=torch.channels_last)
    return model, card


def detect_batch(model: nn.Module, batch: np.ndarray | list[np.ndarray], card: dict[str, Any],
                 device: str | torch.device = "cpu", score_threshold: float | None = None) -> list[list[Box]]:
    """Signature boxes of a batch of prepared pages: one ``(N, S, S) float32`` stack per entry of
    ``view_sizes(card)`` (``stack_views`` of ``prepare_views``); a bare array stands for the only size.

    Runs under ``torch.inference_mode``; results are plain :class:`Box` lists on the CPU, one per page,
    in normalized coordinates of the original pages, best first. With several views, each view's boxes
    (down to ``VIEW_FLOOR``) are fused (``fuse_boxes``), then suppressed at ``nms_iou``; the card's
    ``box_scale`` is applied. Boxes below ``score_threshold`` (default: the card's shipped
    ``score_threshold``) are dropped; evaluation passes a low threshold to compute AP.
    """
    sizes, views = view_sizes(card), detector_views(card)
    stacks = [batch] if isinstance(batch, np.ndarray) else list(batch)
    if len(stacks) != len(sizes):
        raise ValueError(f"batch must hold one stack per view size {sizes}, got {len(stacks)}")
    for size, stack in zip(sizes, stacks, strict=True):
        if not isinstance(stack, np.ndarray) or stack.ndim != 3 or stack.shape[1:] != (size, size):
            raise ValueError(f"batch must be (N, {size}, {size}) float32, got {getattr(stack, 'shape', None)}")
    if len({len(s) for s in stacks}) != 1:
        raise ValueError(f"every view size needs the same pages, got {[len(s) for s in stacks]}")
    threshold = float(card["score_threshold"]) if score_threshold is None else float(score_threshold)
    if len(stacks[0]) == 0:
        return []
    max_boxes, nms_iou = int(card["max_boxes"]), float(card["nms_iou"])
    per_view = []
    for size, flipped, member in views:
        heat, ltrb = _network_maps(member_network(model, member), stacks[sizes.index(size)], flipped, device)
        floor = threshold if len(views) == 1 else min(threshold, VIEW_FLOOR)
        per_view.append([decode_boxes(heat[i], ltrb[i], floor, max_boxes, nms_iou) for i in range(len(heat))])
    sx, sy = (float(v) for v in card.get("box_scale", (1.0, 1.0)))
    out = []
    for i in range(len(stacks[0])):
        boxes = per_view[0][i] if len(views) == 1 else \
            nms(fuse_boxes([view[i] for view in per_view], float(card.get("fusion_iou", DEFAULT_FUSION_IOU))), nms_iou)
        if (sx, sy) != (1.0, 1.0):
            boxes = scale_boxes(boxes, sx, sy)
        out.append([b for b in boxes if b.score >= threshold][:max_boxes])
    return out


def member_network(model: nn.Module, member: int) -> nn.Module:
    """The network that runs a view naming ``member``: that member of an ensemble, or a single detector
    itself for member 0."""
    members = getattr(model, "members", None)
    if members is None:
        if member != 0:
            raise ValueError(f"a view names detector member {member}, but the detector is a single network")
        return model
    if not 0 <= member < len(members):
        raise ValueError(f"a view names detector member {member}, but the ensemble has {len(members)} members")
    return members[member]


def _network_maps(model: nn.Module, stack: np.ndarray, flipped: bool,
                  device: str | torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Heat ``(N, h, w)`` probabilities and ltrb ``(N, 4, h, w)`` distances, in unmirrored page geometry."""
    x = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32)).unsqueeze(1).to(device)
    if flipped:
        x = x.flip(-1)
    with torch.inference_mode():
        out = model(x)
        if flipped:  # mirror the maps back; a mirrored left distance is the page's right distance
            out = out.flip(-1)[:, [0, 3, 2, 1, 4]]
        return torch.sigmoid(out[:, 0]).cpu().numpy(), out[:, 1:].float().cpu().numpy()
