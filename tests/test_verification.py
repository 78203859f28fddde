"""Writer-level distances and the calibrated decisions the pipeline uses."""
from __future__ import annotations

import numpy as np
import pytest

from models.verification import Calibration, reference_score, score_description, writer_distances


def test_writer_distances_are_distances_to_the_reference_mean():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(5, 8)).astype(np.float32)
    refs = {"b": rng.normal(size=(3, 8)), "a": rng.normal(size=(1, 8)), "c": rng.normal(size=(4, 8))}
    ids, d = writer_distances(q, refs)
    assert ids == ["b", "a", "c"] and d.shape == (5, 3) and d.dtype == np.float32
    for j, s in enumerate(ids):
        expected = np.linalg.norm(q - refs[s].mean(0), axis=1)
        np.testing.assert_allclose(d[:, j], expected, rtol=1e-5, atol=1e-5)


def test_writer_distances_nearest_reference():
    rng = np.random.default_rng(2)
    q = rng.normal(size=(6, 8)).astype(np.float32)
    refs = {"b": rng.normal(size=(3, 8)), "a": rng.normal(size=(1, 8)), "c": rng.normal(size=(4, 8))}
    ids, d = writer_distances(q, refs, "nearest")
    assert ids == ["b", "a", "c"] and d.shape == (6, 3) and d.dtype == np.float32
    for j, s in enumerate(ids):
        expected = np.linalg.norm(q[:, None, :] - refs[s][None], axis=2).min(1)
        np.testing.assert_allclose(d[:, j], expected, rtol=1e-5, atol=1e-5)
    # a signer with two ways of signing: a query equal to one of them is at distance 0, not half-way
    two = {"s": np.array([[0.0, 0.0], [4.0, 0.0]])}
    assert writer_distances(np.array([[4.0, 0.0]]), two, "nearest")[1][0, 0] == pytest.approx(0.0, abs=1e-6)
    assert writer_distances(np.array([[4.0, 0.0]]), two)[1][0, 0] == pytest.approx(2.0)
    # one reference: both rules agree
    one = {"s": np.array([[1.0, 2.0]])}
    np.testing.assert_allclose(writer_distances(q[:, :2], one, "nearest")[1], writer_distances(q[:, :2], one)[1], rtol=1e-6)


def test_reference_score_rule_from_the_card():
    assert reference_score({}) == "centroid"
    assert reference_score({"reference_score": "nearest"}) == "nearest"
    with pytest.raises(ValueError, match="'median'"):
        reference_score({"reference_score": "median"})
    with pytest.raises(ValueError, match="'median'"):
        writer_distances(np.zeros((1, 2)), {"a": np.ones((1, 2))}, "median")
    assert "nearest" in score_description("nearest") and "mean" in score_description("centroid")


def test_writer_distances_edge_cases():
    ids, d = writer_distances(np.zeros((2, 4)), {})
    assert ids == [] and d.shape == (2, 0)
    for rule in ("centroid", "nearest"):
        ids, d = writer_distances(np.zeros((0, 4)), {"a": np.ones((2, 4))}, rule)
        assert d.shape == (0, 1)
    with pytest.raises(ValueError, match="references of 'a'"):
        writer_distances(np.zeros((2, 4)), {"a": np.ones((2, 3))})
    with pytest.raises(ValueError, match="queries must be"):
        writer_distances(np.zeros(4), {"a": np.ones((2, 4))})


def test_calibration_decisions_and_card_roundtrip():
    rng = np.random.default_rng(1)
    genuine, forged = rng.normal(1.0, 0.2, 300), rng.normal(2.0, 0.3, 300)
    cal = Calibration.fit(genuine, forged)
    assert cal.match < cal.mismatch
    assert np.mean(forged <= cal.match) <= 0.01 and np.mean(genuine > cal.mismatch) <= 0.01
    assert cal.decide(cal.match) == "match"
    assert cal.decide((cal.match + cal.mismatch) / 2) == "review"
    assert cal.decide(cal.mismatch + 1e-3) == "mismatch"
    s = cal.similarity(np.array([0.0, cal.center, 5.0]))
    assert s[0] > 0.9 and s[1] == pytest.approx(0.5) and s[2] < 0.1
    assert Calibration.from_card({"calibration": cal.to_card()}) == cal
    with pytest.raises(ValueError, match="calibration"):
        Calibration.from_card({"arch": "signet_s4"})
    with pytest.raises(ValueError, match="finite"):
        cal.decide(float("nan"))
