"""Detection scores over pages: precision, recall and F1 at an IoU threshold, and AP50 (VOC all-point)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transforms.boxes import Box, iou


@dataclass(frozen=True)
class DetectionScores:
    """Counts and rates over all pages; ``ap`` is the area under the precision-recall curve of all predictions."""

    precision: float
    recall: float
    f1: float
    ap: float
    true_positives: int
    false_positives: int
    false_negatives: int
    pages: int


def match_page(predictions: Sequence[Box], truth: Sequence[Box], iou_threshold: float = 0.5) -> list[bool]:
    """For each prediction, in descending score order, whether it matches a not yet matched true box with
    IoU >= ``iou_threshold`` (greedy, highest-scoring prediction first, best-overlapping truth taken)."""
    taken = [False] * len(truth)
    hits = []
    for box in sorted(predictions, key=lambda b: b.score, reverse=True):
        best, best_iou = -1, iou_threshold
        for index, true_box in enumerate(truth):
            overlap = iou(box, true_box)
            if not taken[index] and overlap >= best_iou:
                best, best_iou = index, overlap
        if best >= 0:
            taken[best] = True
        hits.append(best >= 0)
    return hits


def average_precision(scores: Sequence[float], hits: Sequence[bool], total_truth: int) -> float:
    """VOC all-point interpolated AP of predictions with ``scores`` and ``hits`` against ``total_truth`` boxes."""
    if total_truth == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    tp = np.cumsum(np.asarray(hits, dtype=float)[order]) if len(order) else np.zeros(0)
    recall = np.concatenate([[0.0], tp / total_truth, [1.0]])
    precision = np.concatenate([[1.0], tp / np.arange(1, len(order) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the precision envelope
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def detection_scores(predictions: Sequence[Sequence[Box]], truth: Sequence[Sequence[Box]],
                     iou_threshold: float = 0.5, score_threshold: float = 0.0) -> DetectionScores:
    """Scores of per-page ``predictions`` against per-page ``truth`` (same order, one list per page).

    Precision, recall and F1 count predictions with ``score >= score_threshold``; AP uses every prediction.
    """
    if len(predictions) != len(truth):
        raise ValueError(f"predictions and truth must have one entry per page, got {len(predictions)} "
                         f"and {len(truth)}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    all_scores: list[float] = []
    all_hits: list[bool] = []
    tp = fp = fn = 0
    for page_predictions, page_truth in zip(predictions, truth, strict=True):
        ranked = sorted(page_predictions, key=lambda b: b.score, reverse=True)
        all_scores += [b.score for b in ranked]
        all_hits += match_page(ranked, page_truth, iou_threshold)
        kept = [b for b in ranked if b.score >= score_threshold]
        kept_hits = match_page(kept, page_truth, iou_threshold)
        tp += sum(kept_hits)
        fp += len(kept_hits) - sum(kept_hits)
        fn += len(page_truth) - sum(kept_hits)
    total_truth = sum(len(t) for t in truth)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / total_truth if total_truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    ap = average_precision(all_scores, all_hits, total_truth)
    return DetectionScores(precision, recall, f1, ap, tp, fp, fn, len(truth))
