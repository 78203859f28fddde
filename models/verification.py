"""Writer-level scores and decisions: what the pipeline and the evaluation share."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from models import metrics

DECISIONS = ("match", "review", "mismatch")


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows: ``(N, D)``, ``(M, D)`` -> ``(N, M) float64``."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


_SCORE_WORDS = {"centroid": "Euclidean distance to the mean of the signer's reference embeddings",
                "nearest": "Euclidean distance to the signer's nearest reference embedding"}
REFERENCE_SCORES = tuple(_SCORE_WORDS)


def _check_rule(rule: str, what: str = "reference score") -> str:
    if rule not in REFERENCE_SCORES:
        raise ValueError(f"{what} must be one of {REFERENCE_SCORES}, got {rule!r}")
    return rule


def reference_score(card: Mapping[str, Any]) -> str:
    """The writer-level score rule a model card was calibrated with (``reference_score``; cards without
    the key: ``'centroid'``)."""
    return _check_rule(card.get("reference_score", "centroid"), "model card reference_score")


def score_description(rule: str) -> str:
    """The model card's words for ``writer_distances(..., rule)``."""
    return _SCORE_WORDS[_check_rule(rule)] + " (models.verification.writer_distances)"


def writer_distances(queries: np.ndarray, references: Mapping[str, np.ndarray],
                     rule: str = "centroid") -> tuple[list[str], np.ndarray]:
    """Distance of each query to each signer's reference embeddings: the writer-level score used by
    evaluation and the pipeline.

    ``queries``: ``(N, D)`` float; ``references``: signer id -> ``(K, D)`` (K >= 1, K may differ per
    signer). Returns ``(signer_ids, distances)`` with signer ids in the mapping's order and
    ``distances`` ``(N, S) float32``.

    ``rule`` (the model card's ``reference_score``, ``reference_score(card)``):
    - ``'centroid'``: Euclidean distance to the mean of the references. The mean averages out their own
      variation, which matters with whitened embeddings (``models.whitening``): on validation writers it
      scored a lower skilled EER than the mean of the K distances (18.7 vs 20.0 %, the SigNet card's
      ``whitening_ablation``).
    - ``'nearest'``: distance to the nearest reference: a signer who signs in more than one way is not
      blurred into one mean (the SigNet card's ``reference_score_ablation``).
    """
    _check_rule(rule)
    q = np.asarray(queries)
    if q.ndim != 2:
        raise ValueError(f"queries must be (N, D), got shape {q.shape}")
    ids = list(references)
    if not ids:
        return [], np.zeros((q.shape[0], 0), np.float32)
    refs = [np.asarray(references[s]) for s in ids]
    for s, r in zip(ids, refs, strict=True):
        if r.ndim != 2 or r.shape[0] == 0 or r.shape[1] != q.shape[1]:
            raise ValueError(f"references of {s!r} must be (K>=1, {q.shape[1]}), got shape {r.shape}")
    if rule == "centroid":
        centroids = np.stack([r.astype(np.float64).mean(0) for r in refs])
        return ids, pairwise_distances(q, centroids).astype(np.float32)
    starts = np.cumsum([0] + [r.shape[0] for r in refs[:-1]])
    d = pairwise_distances(q, np.concatenate(refs))
    return ids, np.minimum.reduceat(d, starts, axis=1).astype(np.float32)


@dataclass(frozen=True)
class Calibration:
    """Decision thresholds and similarity map calibrated on validation writers (see the model card).

    ``match``: largest distance with skilled-forgery FAR <= 1 %; ``mismatch``: distance beyond which
    genuine FRR <= 1 %; in between (if any) is ``review``. Similarity = logistic(center, slope).
    """

    match: float
    mismatch: float
    center: float
    slope: float

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> Calibration:
        """Read the ``calibration`` section of a model card."""
        if "calibration" not in card:
            raise ValueError(f"model card has no 'calibration' section, keys: {sorted(card)}")
        c = card["calibration"]
        return cls(match=float(c["thresholds"]["match"]), mismatch=float(c["thresholds"]["mismatch"]),
                   center=float(c["similarity"]["center"]), slope=float(c["similarity"]["slope"]))

    @classmethod
    def fit(cls, genuine: np.ndarray, forged: np.ndarray, max_far: float = 0.01, max_frr: float = 0.01) -> Calibration:
        """Calibrate on genuine and skilled-forgery writer-level distances."""
        center, slope = metrics.fit_logistic(genuine, forged)
        return cls(match=metrics.match_threshold(forged, max_far), mismatch=metrics.mismatch_threshold(genuine, max_frr),
                   center=center, slope=slope)

    def to_card(self) -> dict[str, Any]:
        """The ``calibration`` section of a model card."""
        d = asdict(self)
        return {"thresholds": {"match": d["match"], "mismatch": d["mismatch"]},
                "similarity": {"kind": "logistic", "formula": "1 / (1 + exp(slope * (d - center)))",
                               "center": d["center"], "slope": d["slope"]}}

    def similarity(self, d: np.ndarray) -> np.ndarray:
        """Distances (any shape) -> similarity in 0..1, float32, decreasing with the distance."""
        return metrics.similarity(d, self.center, self.slope)

    def decide(self, d: float) -> str:
        """``'match'`` if ``d <= match``, ``'mismatch'`` if ``d > mismatch``, else ``'review'``."""
        d = float(d)
        if not np.isfinite(d):
            raise ValueError(f"distance must be finite, got {d}")
        if d <= self.match:
            return "match"
        if d > self.mismatch:
            return "mismatch"
        return "review"
