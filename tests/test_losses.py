"""Contrastive loss (Eq. 1 of Dey et al. 2017) and its all-pairs batch form."""
from __future__ import annotations

import pytest
import torch

from models.losses import batch_contrastive_loss, contrastive_loss, euclidean_matrix, pair_masks


def test_contrastive_loss_by_hand():
    d = torch.tensor([0.5, 0.2, 1.5])
    y = torch.tensor([0, 1, 1])  # similar, dissimilar inside the margin, dissimilar beyond it
    expected = (0.5**2 + (1 - 0.2) ** 2 + 0.0) / 3
    assert contrastive_loss(d, y).item() == pytest.approx(expected)
    assert contrastive_loss(d, y, margin=2.0).item() == pytest.approx((0.25 + 1.8**2 + 0.5**2) / 3)


def test_contrastive_loss_errors():
    with pytest.raises(ValueError, match="same shape"):
        contrastive_loss(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="margin"):
        contrastive_loss(torch.zeros(2), torch.zeros(2), margin=0)


def test_euclidean_matrix():
    e = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    d = euclidean_matrix(e)
    assert d[0, 1].item() == pytest.approx(5.0, abs=1e-4)
    assert d[1, 2].item() == pytest.approx((9 + 9) ** 0.5, abs=1e-4)
    assert torch.allclose(d, d.T)


def test_pair_masks_counts():
    # writer 0: 3 genuine + 1 forged; writer 1: 2 genuine
    writers = torch.tensor([0, 0, 0, 0, 1, 1])
    forged = torch.tensor([False, False, False, True, False, False])
    pos, skilled, rand = pair_masks(writers, forged)
    assert pos.sum() == 3 + 1  # C(3,2) + C(2,2)
    assert skilled.sum() == 3  # writer 0's forgery with each of its genuine signatures
    assert rand.sum() == 3 * 2  # genuine of writer 0 x genuine of writer 1
    assert not (pos & skilled).any() and not (pos & rand).any()


def test_batch_loss_matches_pairwise_formula():
    torch.manual_seed(0)
    emb = torch.randn(6, 4) * 0.3
    writers = torch.tensor([0, 0, 0, 0, 1, 1])
    forged = torch.tensor([False, False, False, True, False, False])
    loss, stats = batch_contrastive_loss(emb, writers, forged, skilled_weight=0.5)
    d = torch.cdist(emb, emb)
    pos, skilled, rand = pair_masks(writers, forged)
    expected = (d[pos] ** 2).mean() + 0.5 * (torch.clamp(1 - d[skilled], min=0) ** 2).mean() \
        + 0.5 * (torch.clamp(1 - d[rand], min=0) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    assert set(stats) == {"d_pos", "d_skilled", "d_random"}


def test_batch_loss_trains_embeddings():
    torch.manual_seed(0)
    emb = torch.randn(6, 4, requires_grad=True)
    writers = torch.tensor([0, 0, 0, 1, 1, 1])
    forged = torch.tensor([False, False, True, False, False, True])
    opt = torch.optim.SGD([emb], lr=0.3)
    first = None
    for _ in range(15):
        loss, _ = batch_contrastive_loss(emb, writers, forged)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_batch_without_pairs_raises():
    with pytest.raises(ValueError, match="no usable pair"):
        batch_contrastive_loss(torch.randn(2, 3), torch.tensor([0, 0]), torch.tensor([True, True]))
