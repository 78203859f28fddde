"""Verification metrics on distances (smaller = more alike) and threshold calibration.

A query is *accepted* as the claimed writer when its distance is ``<= threshold``.
FAR(t) = share of forgeries with distance <= t; FRR(t) = share of genuine queries with distance > t.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np

# The similarity map's slope is clipped to keep it finite and monotone decreasing.
MIN_SLOPE = 1e-3
MAX_SLOPE = 1e4


def _check(genuine: np.ndarray, forged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(genuine, np.float64).ravel()
    f = np.asarray(forged, np.float64).ravel()
    if g.size == 0 or f.size == 0:
        raise ValueError(f"need genuine and forged distances, got {g.size} genuine and {f.size} forged")
    if not (np.isfinite(g).all() and np.isfinite(f).all()):
        raise ValueError("distances must be finite")
    return g, f


def far_frr(genuine: np.ndarray, forged: np.ndarray, threshold: float) -> tuple[float, float]:
    """(FAR, FRR) at ``threshold`` for 1-D genuine and forged distance arrays."""
    g, f = _check(genuine, forged)
    return float(np.mean(f <= threshold)), float(np.mean(g > threshold))


def roc(genuine: np.ndarray, forged: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(thresholds, far, frr)`` at every distinct distance (ascending), plus -inf first: float64 arrays."""
    g, f = _check(genuine, forged)
    thresholds = np.concatenate([[-np.inf], np.unique(np.concatenate([g, f]))])
    far = np.searchsorted(np.sort(f), thresholds, side="right") / f.size
    frr = 1.0 - np.searchsorted(np.sort(g), thresholds, side="right") / g.size
    return thresholds, far, frr


def eer(genuine: np.ndarray, forged: np.ndarray) -> float:
    """Equal error rate: where FAR and FRR cross, linearly interpolated between ROC points."""
    _, far, frr = roc(genuine, forged)
    diff = far - frr  # rises from -1 (t=-inf) to 1 - 0 at the largest distance
    i = int(np.argmax(diff >= 0))
    if i == 0 or diff[i] == 0:
        return float((far[i] + frr[i]) / 2)
    # interpolate between point i-1 (far < frr) and point i (far >= frr)
    w = -diff[i - 1] / (diff[i] - diff[i - 1])
    return float(far[i - 1] + w * (far[i] - far[i - 1]))


def auc(genuine: np.ndarray, forged: np.ndarray) -> float:
    """Area under the ROC: P(genuine distance < forged distance), ties count half (Mann-Whitney)."""
    g, f = _check(genuine, forged)
    allv = np.concatenate([g, f])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(allv.size, np.float64)
    ranks[order] = np.arange(1, allv.size + 1)
    # average ranks over ties
    uniq, inv, counts = np.unique(allv, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    ranks = (sums / counts)[inv]
    rank_f = ranks[g.size :].sum()
    return float((rank_f - f.size * (f.size + 1) / 2) / (g.size * f.size))


def match_threshold(forged: np.ndarray, max_far: float = 0.01) -> float:
    """Largest distance whose FAR on ``forged`` stays ``<= max_far``."""
    if not 0.0 <= max_far < 1.0:
        raise ValueError(f"max_far must be in [0, 1), got {max_far}")
    f = np.sort(np.asarray(forged, np.float64).ravel())
    if f.size == 0:
        raise ValueError("need forged distances to calibrate the match threshold")
    k = int(math.floor(max_far * f.size))  # at most k forgeries may be accepted
    # the float32 just below the (k+1)-th smallest forgery: distances are float32 everywhere
    return float(np.nextafter(np.float32(f[k]), np.float32(-np.inf)))


def mismatch_threshold(genuine: np.ndarray, max_frr: float = 0.01) -> float:
    """Smallest distance beyond which at most ``max_frr`` of ``genuine`` distances lie."""
    if not 0.0 <= max_frr < 1.0:
        raise ValueError(f"max_frr must be in [0, 1), got {max_frr}")
    g = np.sort(np.asarray(genuine, np.float64).ravel())
    if g.size == 0:
        raise ValueError("need genuine distances to calibrate the mismatch threshold")
    k = int(math.floor(max_frr * g.size))  # at most k genuine queries may be rejected
    return float(g[g.size - 1 - k])


def fit_logistic(genuine: np.ndarray, forged: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """Fit P(genuine | d) = 1 / (1 + exp(slope * (d - center))) by class-balanced Newton steps.

    Returns ``(center, slope)`` with ``slope > 0`` so that the map decreases with the distance.
    """
    g, f = _check(genuine, forged)
    d = np.concatenate([g, f])
    y = np.concatenate([np.ones(g.size), np.zeros(f.size)])
    w = np.concatenate([np.full(g.size, 0.5 / g.size), np.full(f.size, 0.5 / f.size)])
    scale = max(float(d.std()), 1e-9)
    x = (d - d.mean()) / scale
    a, b = 0.0, -1.0  # logit = a + b * x
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a + b * x)))
        r = w * (p - y)
        h = w * p * (1 - p) + 1e-12
        grad = np.array([r.sum(), (r * x).sum()])
        hess = np.array([[h.sum(), (h * x).sum()], [(h * x).sum(), (h * x * x).sum() + 1e-9]])
        step = np.linalg.solve(hess, grad)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    slope = float(np.clip(-b / scale, MIN_SLOPE, MAX_SLOPE))
    center = float(d.mean() + (a / -b) * scale) if b < 0 else float(np.median(d))
    return center, slope


def similarity(d: np.ndarray, center: float, slope: float) -> np.ndarray:
    """The calibrated map of distances to 0..1: ``1 / (1 + exp(slope * (d - center)))``, float32."""
    z = np.clip(slope * (np.asarray(d, np.float64) - center), -60.0, 60.0)
    return (1.0 / (1.0 + np.exp(z))).astype(np.float32)


def _group_indices(groups: np.ndarray, names: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(groups == n) for n in names]


def _signer_resamples(groups: Sequence[np.ndarray], resamples: int, seed: int) -> Iterator[list[np.ndarray]]:
    """Per bootstrap resample of the signers named in ``groups`` (as many drawn as there are, with replacement),
    the rows of each array of ``groups`` that the drawn signers hold (a signer drawn twice counts twice)."""
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    names = np.unique(np.concatenate(list(groups)))
    per = [_group_indices(g, names) for g in groups]
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        pick = rng.integers(len(names), size=len(names))
        yield [np.concatenate([rows[k] for k in pick]) for rows in per]


def signer_bootstrap(genuine: np.ndarray, forged: np.ndarray, genuine_groups: np.ndarray, forged_groups: np.ndarray,
                     resamples: int = 1000, seed: int = 0,
                     others: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """EERs of ``resamples`` bootstrap resamples of the signers: each resample draws as many signers as
    there are, with replacement, and keeps every genuine and forged distance of each drawn signer (a
    signer drawn twice counts twice). Signers, not queries, are the unit, because one signer's queries
    are alike. ``genuine_groups`` / ``forged_groups``: the signer of each distance. ``others``: the
    ``(genuine, forged)`` distances of a second model on the same queries (same order): then the
    result is its EER minus this one's on each resample (paired; negative = the second model better).
    Resamples without a genuine or a forged distance are dropped. Returns a float64 array."""
    g, f = _check(genuine, forged)
    gg, fg = np.asarray(genuine_groups).ravel(), np.asarray(forged_groups).ravel()
    if gg.size != g.size or fg.size != f.size:
        raise ValueError(f"need one signer per distance, got {gg.size} for {g.size} genuine and {fg.size} for "
                         f"{f.size} forged")
    if others is not None:
        g2, f2 = _check(*others)
        if g2.size != g.size or f2.size != f.size:
            raise ValueError(f"the second model's distances must pair with the first's: {g2.size} vs {g.size} "
                             f"genuine, {f2.size} vs {f.size} forged")
    out = []
    for ig, jf in _signer_resamples([gg, fg], resamples, seed):
        if ig.size == 0 or jf.size == 0:
            continue
        value = eer(g[ig], f[jf])
        out.append(value if others is None else eer(g2[ig], f2[jf]) - value)
    return np.asarray(out, np.float64)


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap ``values``."""
    v = np.asarray(values, np.float64).ravel()
    if v.size == 0:
        raise ValueError("no bootstrap values")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    lo, hi = np.percentile(v, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


THRESHOLD_SIDES = ("lower", "higher")


def confident_threshold(values: np.ndarray, groups: np.ndarray, fit: Callable[[np.ndarray], float], confidence: float,
                        stricter: str, resamples: int = 2000, seed: int = 0) -> float:
    """A threshold that keeps ``fit``'s promise in ``confidence`` of the bootstrap resamples of the signers.

    ``fit`` sets a threshold from distances (``match_threshold``: at most 1 % of forgeries at or under it;
    ``mismatch_threshold``: at most 1 % of genuine queries beyond it); ``groups`` names the signer of each of
    ``values``. Fitted on one sample of signers, such a threshold keeps its promise on other signers like them
    only about half the time. Here ``fit`` runs on ``resamples`` resamples of the signers
    (``_signer_resamples``) and the result is the resampled thresholds' ``1 - confidence`` quantile when a
    ``stricter`` threshold is ``'lower'`` (match) or their ``confidence`` quantile when it is ``'higher'``
    (mismatch): a threshold at least as strict as the one fitted on ``confidence`` of the resamples.
    """
    v, g = np.asarray(values, np.float64).ravel(), np.asarray(groups).ravel()
    if v.size == 0 or g.size != v.size:
        raise ValueError(f"need one signer per distance and at least one distance, got {g.size} for {v.size}")
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    if stricter not in THRESHOLD_SIDES:
        raise ValueError(f"stricter must be one of {THRESHOLD_SIDES}, got {stricter!r}")
    fitted = np.array([fit(v[rows]) for (rows,) in _signer_resamples([g], resamples, seed)])
    q = 1.0 - confidence if stricter == "lower" else confidence
    # the resampled thresholds are values the fit returned: take one of them, not a point between two
    return float(np.quantile(fitted, q, method="lower" if stricter == "lower" else "higher"))
