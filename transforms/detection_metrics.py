"""Detection scores over pages: precision, recall and F1 at an IoU threshold, and AP50 (VOC all-point)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transforms.boxes import Box, iou

OVERLAP_FLOOR = 0.1  # IoU from which an error box counts as touching a signature rather than lying elsewhere
FALSE_POSITIVE_KINDS = ("duplicate", "box_extent", "background")
MISS_KINDS = ("below_threshold", "box_extent", "not_found")


@dataclass(frozen=True)
class DetectionError:
    """One error on a page: a false positive (``box`` is the prediction) or a miss (``box`` is the label).

    ``best_iou`` is its largest IoU with the other side (labels for a false positive, kept predictions for
    a miss, or any prediction for a ``below_threshold`` miss); ``score`` is the false positive's score, or
    for a miss the score of the prediction behind ``best_iou`` (0 when none)."""

    box: Box
    kind: str
    best_iou: float
    score: float


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


def _matches(predictions: Sequence[Box], truth: Sequence[Box], iou_threshold: float) -> list[int]:
    """For each prediction, in descending score order, the index of the true box it matches, or -1."""
    taken = [False] * len(truth)
    matched = []
    for box in sorted(predictions, key=lambda b: b.score, reverse=True):
        best, best_iou = -1, iou_threshold
        for index, true_box in enumerate(truth):
            overlap = iou(box, true_box)
            if not taken[index] and overlap >= best_iou:
                best, best_iou = index, overlap
        if best >= 0:
            taken[best] = True
        matched.append(best)
    return matched


def match_page(predictions: Sequence[Box], truth: Sequence[Box], iou_threshold: float = 0.5) -> list[bool]:
    """For each prediction, in descending score order, whether it matches a not yet matched true box with
    IoU >= ``iou_threshold`` (greedy, highest-scoring prediction first, best-overlapping truth taken)."""
    return [index >= 0 for index in _matches(predictions, truth, iou_threshold)]


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


@dataclass(frozen=True)
class _PageTally:
    """One page matched as ``detection_scores`` matches it: every prediction's score and hit (descending
    score), and at the score threshold the true and false positives and the labels."""

    scores: list[float]
    hits: list[bool]
    true_positives: int
    false_positives: int
    labels: int


def _page_tallies(predictions: Sequence[Sequence[Box]], truth: Sequence[Sequence[Box]], iou_threshold: float,
                  score_threshold: float) -> list[_PageTally]:
    if len(predictions) != len(truth):
        raise ValueError(f"predictions and truth must have one entry per page, got {len(predictions)} "
                         f"and {len(truth)}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    tallies = []
    for page_predictions, page_truth in zip(predictions, truth, strict=True):
        ranked = sorted(page_predictions, key=lambda b: b.score, reverse=True)
        kept_hits = match_page([b for b in ranked if b.score >= score_threshold], page_truth, iou_threshold)
        tallies.append(_PageTally([b.score for b in ranked], match_page(ranked, page_truth, iou_threshold),
                                  sum(kept_hits), len(kept_hits) - sum(kept_hits), len(page_truth)))
    return tallies


def detection_scores(predictions: Sequence[Sequence[Box]], truth: Sequence[Sequence[Box]],
                     iou_threshold: float = 0.5, score_threshold: float = 0.0) -> DetectionScores:
    """Scores of per-page ``predictions`` against per-page ``truth`` (same order, one list per page).

    Precision, recall and F1 count predictions with ``score >= score_threshold``; AP uses every prediction.
    """
    tallies = _page_tallies(predictions, truth, iou_threshold, score_threshold)
    tp = sum(t.true_positives for t in tallies)
    fp = sum(t.false_positives for t in tallies)
    total_truth = sum(t.labels for t in tallies)
    fn = total_truth - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / total_truth if total_truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    ap = average_precision([x for t in tallies for x in t.scores], [h for t in tallies for h in t.hits], total_truth)
    return DetectionScores(precision, recall, f1, ap, tp, fp, fn, len(truth))


def page_bootstrap(predictions: Sequence[Sequence[Box]], truth: Sequence[Sequence[Box]], score_threshold: float,
                   resamples: int = 1000, seed: int = 0, iou_threshold: float = 0.5) -> dict[str, np.ndarray]:
    """``{"ap50", "precision", "recall"}``: each an array of that figure over ``resamples`` bootstrap
    resamples of the pages (as many pages as there are, drawn with replacement; a page drawn twice counts
    twice), matching as ``detection_scores``. Pages, not boxes, are the unit: one page's boxes share its
    scan, layout and writer. Resamples without a true box are dropped."""
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    tallies = _page_tallies(predictions, truth, iou_threshold, score_threshold)
    if not tallies:
        raise ValueError("need at least one page")
    scores = [np.array(t.scores, np.float64) for t in tallies]
    hits = [np.array(t.hits, bool) for t in tallies]
    counts = np.array([(t.true_positives, t.false_positives, t.labels) for t in tallies], np.int64)
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {"ap50": [], "precision": [], "recall": []}
    for _ in range(resamples):
        pick = rng.integers(len(tallies), size=len(tallies))
        tp, fp, total = counts[pick].sum(axis=0)
        if total == 0:
            continue
        out["ap50"].append(average_precision(np.concatenate([scores[k] for k in pick]),
                                             np.concatenate([hits[k] for k in pick]), int(total)))
        out["precision"].append(tp / (tp + fp) if tp + fp else 0.0)
        out["recall"].append(tp / total)
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def page_errors(predictions: Sequence[Box], truth: Sequence[Box], iou_threshold: float = 0.5,
                score_threshold: float = 0.0) -> tuple[list[DetectionError], list[DetectionError]]:
    """The false positives and misses of one page, matched as ``detection_scores`` matches them, each with
    its kind.

    False positives (predictions ``>= score_threshold`` that match no label): ``duplicate`` (IoU >=
    ``iou_threshold`` with a label a higher-scoring box took), ``box_extent`` (IoU with a label in
    [``OVERLAP_FLOOR``, ``iou_threshold``): a signature boxed too large, too small or shifted), ``background``
    (elsewhere). Misses (labels no kept prediction matches): ``below_threshold`` (a prediction under
    ``score_threshold`` matches it), ``box_extent`` (a kept prediction overlaps it at IoU >= ``OVERLAP_FLOOR``),
    ``not_found``.
    """
    ranked = sorted(predictions, key=lambda b: b.score, reverse=True)
    kept = [b for b in ranked if b.score >= score_threshold]
    matched = _matches(kept, truth, iou_threshold)
    false_positives = []
    for box, index in zip(kept, matched, strict=True):
        if index >= 0:
            continue
        best = max((iou(box, t) for t in truth), default=0.0)
        kind = "duplicate" if best >= iou_threshold else "box_extent" if best >= OVERLAP_FLOOR else "background"
        false_positives.append(DetectionError(box, kind, best, box.score))
    found = set(matched)
    misses = []
    for index, true_box in enumerate(truth):
        if index in found:
            continue
        below = [(b.score, iou(b, true_box)) for b in ranked if b.score < score_threshold]
        below = [(score, overlap) for score, overlap in below if overlap >= iou_threshold]
        if below:
            score, overlap = max(below)
            misses.append(DetectionError(true_box, "below_threshold", overlap, score))
            continue
        overlap, score = max(((iou(b, true_box), b.score) for b in kept), default=(0.0, 0.0))
        kind = "box_extent" if overlap >= OVERLAP_FLOOR else "not_found"
        misses.append(DetectionError(true_box, kind, overlap, score if overlap > 0 else 0.0))
    return false_positives, misses
