"""Cleaning training data: working scale, patches, seeded batches, writer split fallback."""
from __future__ import annotations

import numpy as np
import pytest

from models.cleaning_data import (
    CleaningData,
    pad_to,
    random_patch,
    synthetic_pairs,
    to_scale,
    training_writers,
)
from models.data import Sample


def test_to_scale_and_pad():
    img = np.zeros((100, 400), np.uint8)
    assert to_scale(img, 256).shape == (64, 256)
    assert to_scale(np.zeros((50, 20), np.uint8), 200).shape == (200, 80)
    assert pad_to(np.zeros((10, 20), np.uint8), 16, 8).shape == (16, 20)


def test_random_patch_is_the_same_window_for_a_pair():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (50, 90), dtype=np.uint8)
    pa, pb = random_patch([a, a.copy()], (32, 64), rng)
    assert pa.shape == (32, 64) and np.array_equal(pa, pb)


def test_batches_are_seeded_and_shaped():
    rng = np.random.default_rng(1)
    clean = [np.full((60, 150), 250, np.uint8) for _ in range(3)]
    syn_a, syn_c = synthetic_pairs(clean, 4, rng)
    real = [rng.integers(0, 256, (40, 100), dtype=np.uint8)]
    data = CleaningData(real, syn_a, syn_c, clean, (32, 64), 5, 0.5, seed=3)
    a1, b1, p1, s1 = data.batch(7)
    a2, b2, p2, s2 = data.batch(7)
    assert a1.shape == b1.shape == p1.shape == (5, 32, 64) and s1.dtype == bool
    assert np.array_equal(a1, a2) and np.array_equal(s1, s2)
    with pytest.raises(ValueError, match="both domains"):
        CleaningData([], [], [], clean, (32, 64), 2, 0.5, 0)


def test_training_writers_fall_back_to_the_signet_split(tmp_path):
    samples = [Sample(tmp_path / f"{w}.png", f"{w}.png", f"w{w}", "genuine", "d") for w in range(10)]
    train, val, source = training_writers(samples, tmp_path / "missing.json")
    assert len(val) == 2 and not set(train) & set(val) and "split_writers" in source
    card = tmp_path / "signet.json"
    card.write_text('{"data": {"val_writers": ["w1", "w2", "w3"]}}')
    train, val, source = training_writers(samples, card)
    assert val == ["w1", "w2", "w3"] and len(train) == 7 and source == str(card)


def test_synthetic_pairs_aligned_targets_are_turned_like_their_noisy_crop():
    clean = [np.full((64, 128), 255, np.uint8) for _ in range(3)]
    for c in clean:
        c[20:44, 30:100] = 0
    noisy_a, targets_a = synthetic_pairs(clean, 12, np.random.default_rng(5), aligned=True)
    noisy_u, targets_u = synthetic_pairs(clean, 12, np.random.default_rng(5), aligned=False)
    assert all(np.array_equal(a, b) for a, b in zip(noisy_a, noisy_u, strict=True))  # same noise either way
    assert all(any(t is c for c in clean) for t in targets_u)  # unaligned: the clean image itself
    turned = [i for i, (a, u) in enumerate(zip(targets_a, targets_u, strict=True)) if not np.array_equal(a, u)]
    assert turned  # some pairs had a scanner turn, and only their targets moved
    for i in turned:
        assert (np.abs(targets_a[i].astype(int) - noisy_a[i]) < 100).mean() > \
            (np.abs(targets_u[i].astype(int) - noisy_a[i]) < 100).mean()
