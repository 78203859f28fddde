"""Within-signer whitening: covariance, the whitening matrix and folding it into a linear layer."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models.whitening import fold_into_linear, whitening_matrix, within_signer_covariance


def _signers(rng: np.random.Generator, n_signers: int = 40, per: int = 6) -> tuple[np.ndarray, list[str]]:
    """Signers spread widely; genuine variation tight along dim 0, loose along dim 1."""
    centers = rng.normal(0, 5, size=(n_signers, 3))
    noise = rng.normal(size=(n_signers, per, 3)) * np.array([0.1, 2.0, 1.0])
    x = (centers[:, None] + noise).reshape(-1, 3)
    return x, [f"s{i}" for i in range(n_signers) for _ in range(per)]


def test_covariance_is_around_each_signers_mean():
    x, signers = _signers(np.random.default_rng(0))
    cov, n = within_signer_covariance(x, [*signers[:-1], "lonely"])
    assert n == 40  # the one-image signer is skipped
    assert cov[0, 0] < 0.02 and 3.0 < cov[1, 1] < 5.0  # signer spread (variance 25) is not in it
    with pytest.raises(ValueError, match="two or more"):
        within_signer_covariance(x[:3], ["a", "b", "c"])
    with pytest.raises(ValueError, match="one signer per row"):
        within_signer_covariance(x, signers[:-1])


def test_whitening_equalises_within_signer_variance_and_keeps_its_total():
    x, signers = _signers(np.random.default_rng(1))
    cov, _ = within_signer_covariance(x, signers)
    w = whitening_matrix(cov, 0.0)
    white, _ = within_signer_covariance(x @ w, signers)
    np.testing.assert_allclose(white, np.eye(3) * np.trace(cov) / 3, atol=1e-8)
    shrunk, _ = within_signer_covariance(x @ whitening_matrix(cov, 0.5), signers)
    assert shrunk[0, 0] < white[0, 0] and shrunk[1, 1] > white[1, 1] * 0.2  # between raw and fully white
    with pytest.raises(ValueError, match="shrinkage"):
        whitening_matrix(cov, 1.5)
    with pytest.raises(ValueError, match="square"):
        whitening_matrix(cov[:2], 0.1)


def test_whitening_ranks_a_forgery_off_the_tight_direction_as_farther():
    x, signers = _signers(np.random.default_rng(2))
    w = whitening_matrix(within_signer_covariance(x, signers)[0], 0.1)
    ref = x[:6].mean(0)
    natural, forged = ref + np.array([0.0, 1.5, 0.0]), ref + np.array([0.6, 0.0, 0.0])
    assert np.linalg.norm(forged - ref) < np.linalg.norm(natural - ref)  # raw: the forgery looks closer
    assert np.linalg.norm((forged - ref) @ w) > np.linalg.norm((natural - ref) @ w)


def test_fold_into_linear_equals_whitening_the_output():
    torch.manual_seed(0)
    layer = nn.Linear(5, 3)
    x = torch.randn(7, 5)
    before = layer(x).detach().numpy()
    w = np.random.default_rng(3).normal(size=(3, 3))
    fold_into_linear(layer, w)
    np.testing.assert_allclose(layer(x).detach().numpy(), before @ w, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        fold_into_linear(layer, np.eye(4))
