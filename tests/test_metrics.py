"""EER, AUC, FAR/FRR and threshold calibration on hand-made distances."""
from __future__ import annotations

import numpy as np
import pytest

from models import metrics

GEN = np.array([0.0, 1.0, 2.0, 3.0])
FORGED = np.array([2.5, 4.0, 5.0, 6.0])


def test_separable_scores():
    g, f = np.array([0.1, 0.2, 0.3]), np.array([0.4, 0.5, 0.6])
    assert metrics.eer(g, f) == 0.0
    assert metrics.auc(g, f) == 1.0


def test_overlapping_scores_by_hand():
    # at t = 2.5: one forgery of four accepted (2.5), one genuine of four rejected (3.0)
    assert metrics.eer(GEN, FORGED) == pytest.approx(0.25)
    assert metrics.auc(GEN, FORGED) == pytest.approx(15 / 16)  # only (3.0, 2.5) is misordered
    assert metrics.far_frr(GEN, FORGED, 2.5) == (0.25, 0.25)
    assert metrics.far_frr(GEN, FORGED, 10.0) == (1.0, 0.0)


def test_reversed_scores():
    assert metrics.auc(FORGED, GEN) == pytest.approx(1 / 16)
    assert metrics.eer(FORGED, GEN) > 0.5


def test_ties_count_half():
    assert metrics.auc(np.array([1.0]), np.array([1.0])) == 0.5
    assert metrics.eer(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == pytest.approx(0.5)


def test_eer_interpolates():
    # FAR and FRR never meet exactly: the EER lies between 1/3 and 2/3
    g, f = np.array([0.0, 2.0, 4.0]), np.array([1.0, 3.0, 5.0])
    e = metrics.eer(g, f)
    assert 1 / 3 <= e <= 2 / 3


def test_roc_shapes():
    t, far, frr = metrics.roc(GEN, FORGED)
    assert t.shape == far.shape == frr.shape
    assert far[0] == 0.0 and frr[0] == 1.0 and far[-1] == 1.0 and frr[-1] == 0.0
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(frr) <= 0)


def test_thresholds():
    forged = np.arange(1, 201, dtype=np.float32)  # 200 forgeries: at most 2 may be accepted
    t = metrics.match_threshold(forged, 0.01)
    assert np.mean(forged <= t) <= 0.01 and t > 2.0 and t < 3.0
    genuine = np.arange(1, 101, dtype=np.float32)  # 100 genuine: at most 1 may be rejected
    m = metrics.mismatch_threshold(genuine, 0.01)
    assert m == 99.0 and np.mean(genuine > m) <= 0.01
    with pytest.raises(ValueError, match="max_far"):
        metrics.match_threshold(forged, 1.5)


def test_logistic_similarity_is_monotone_and_calibrated():
    rng = np.random.default_rng(0)
    g, f = rng.normal(1.0, 0.2, 500), rng.normal(2.0, 0.2, 500)
    center, slope = metrics.fit_logistic(g, f)
    assert 1.3 < center < 1.7 and slope > 0
    s = metrics.similarity(np.array([0.5, 1.0, 1.5, 2.0, 2.5]), center, slope)
    assert s.dtype == np.float32 and np.all(np.diff(s) < 0)
    assert s[0] > 0.95 and s[-1] < 0.05


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="genuine and forged"):
        metrics.eer(np.array([]), FORGED)
    with pytest.raises(ValueError, match="finite"):
        metrics.auc(np.array([np.nan]), FORGED)


def test_signer_bootstrap_resamples_signers_and_pairs_two_models():
    from models.metrics import interval, signer_bootstrap
    g = np.array([0.1, 0.2, 0.1, 0.3])
    f = np.array([0.9, 0.8, 0.7])
    gg, fg = np.array(["a", "a", "b", "b"]), np.array(["a", "b", "b"])
    perfect = signer_bootstrap(g, f, gg, fg, resamples=50)
    assert perfect.shape == (50,) and np.all(perfect == 0.0)
    assert interval(perfect) == (0.0, 0.0)
    # signer b's forgery sits among its genuine scores: resamples without b are perfect, with b not
    f2 = np.array([0.9, 0.2, 0.7])
    values = signer_bootstrap(g, f2, gg, fg, resamples=400, seed=1)
    assert values.min() == 0.0 and values.max() > 0.0
    assert np.array_equal(values, signer_bootstrap(g, f2, gg, fg, resamples=400, seed=1))
    paired = signer_bootstrap(g, f2, gg, fg, resamples=200, others=(g, f))  # the second model separates all
    assert np.all(paired <= 0.0) and np.any(paired < 0.0)
    with pytest.raises(ValueError, match="one signer per distance"):
        signer_bootstrap(g, f, gg[:3], fg)
    with pytest.raises(ValueError, match="pair with"):
        signer_bootstrap(g, f, gg, fg, others=(g[:2], f))
    with pytest.raises(ValueError, match="resamples"):
        signer_bootstrap(g, f, gg, fg, resamples=0)
    with pytest.raises(ValueError, match="level"):
        interval(values, 1.5)


def test_confident_threshold_is_at_least_as_strict_as_the_plain_fit():
    from models.metrics import confident_threshold, match_threshold, mismatch_threshold
    rng = np.random.default_rng(0)
    signers = np.repeat(np.array([f"s{i}" for i in range(12)]), 10)
    # each signer's forgeries sit at its own level: which signers are drawn moves the fitted threshold
    forged = rng.normal(0.5, 0.05, signers.size) + np.repeat(rng.normal(0, 0.1, 12), 10)
    genuine = rng.normal(0.2, 0.05, signers.size) + np.repeat(rng.normal(0, 0.05, 12), 10)
    plain_match, plain_mismatch = match_threshold(forged), mismatch_threshold(genuine)
    half = confident_threshold(forged, signers, match_threshold, 0.5, "lower", resamples=300)
    sure = confident_threshold(forged, signers, match_threshold, 0.9, "lower", resamples=300)
    assert sure < half and sure < plain_match  # stricter match: lower distance
    # a threshold some resample's fit returned (just under one of the forgeries), not a point between two
    assert np.any(np.nextafter(forged.astype(np.float32), np.float32(-np.inf)) == np.float32(sure))
    far = np.mean(forged <= sure)
    assert far <= np.mean(forged <= plain_match)
    sure_mismatch = confident_threshold(genuine, signers, mismatch_threshold, 0.9, "higher", resamples=300)
    assert sure_mismatch > plain_mismatch  # stricter mismatch: fewer genuine queries beyond it
    assert confident_threshold(forged, signers, match_threshold, 0.9, "lower", resamples=300) == sure  # seeded
    # one signer only: every resample is the same sample, so the plain fit comes back
    one = np.array(["a"] * forged.size)
    assert confident_threshold(forged, one, match_threshold, 0.9, "lower", resamples=20) == plain_match


def test_confident_threshold_names_bad_arguments():
    from models.metrics import confident_threshold, match_threshold
    v, g = np.array([0.1, 0.2]), np.array(["a", "b"])
    with pytest.raises(ValueError, match="confidence"):
        confident_threshold(v, g, match_threshold, 1.0, "lower")
    with pytest.raises(ValueError, match="stricter"):
        confident_threshold(v, g, match_threshold, 0.9, "up")
    with pytest.raises(ValueError, match="one signer per distance"):
        confident_threshold(v, g[:1], match_threshold, 0.9, "lower")
    with pytest.raises(ValueError, match="resamples"):
        confident_threshold(v, g, match_threshold, 0.9, "lower", resamples=0)
