"""Contrastive loss (Eq. 1 of Dey et al. 2017), its all-pairs batch form, and the batch-hard triplet loss."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.losses import (
    batch_contrastive_loss,
    batch_hard_triplet_loss,
    batch_loss,
    contrastive_loss,
    euclidean_matrix,
    pair_masks,
)


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


def _descend(kind: str, emb: torch.Tensor, writers: torch.Tensor, forged: torch.Tensor, steps: int,
             lr: float) -> tuple[float, float]:
    """Plain SGD on the embeddings themselves under ``batch_loss(kind)``: (first loss, last loss)."""
    opt = torch.optim.SGD([emb], lr=lr)
    losses = []
    for _ in range(steps):
        loss, _ = batch_loss(kind, emb, writers, forged)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses[0], losses[-1]


def test_batch_loss_trains_embeddings():
    torch.manual_seed(0)
    emb = torch.randn(6, 4, requires_grad=True)
    writers = torch.tensor([0, 0, 0, 1, 1, 1])
    forged = torch.tensor([False, False, True, False, False, True])
    first, last = _descend("contrastive", emb, writers, forged, 15, 0.3)
    assert last < 0.5 * first


def test_batch_without_pairs_raises():
    with pytest.raises(ValueError, match="no usable pair"):
        batch_contrastive_loss(torch.randn(2, 3), torch.tensor([0, 0]), torch.tensor([True, True]))


def test_batch_hard_loss_by_hand():
    # writer 0: genuine at 0, 1, 3 on a line, a forgery at 2; writer 1: genuine at 10, 12
    emb = torch.tensor([[0.0], [1.0], [3.0], [2.0], [10.0], [12.0]])
    writers = torch.tensor([0, 0, 0, 0, 1, 1])
    forged = torch.tensor([False, False, False, True, False, False])
    loss, stats = batch_hard_triplet_loss(emb, writers, forged, skilled_weight=0.25)
    # hardest positive per genuine anchor: 0 -> 3, 1 -> 2, 3 -> 3, 10 -> 2, 12 -> 2
    # hardest skilled (writer 0 anchors only): 2, 1, 1; hardest random: 7, 7, 7, 7, 9
    skilled = F.softplus(torch.tensor([3 - 2.0, 2 - 1.0, 3 - 1.0])).mean()
    random = F.softplus(torch.tensor([3 - 10.0, 2 - 9.0, 3 - 7.0, 2 - 7.0, 2 - 9.0])).mean()
    assert loss.item() == pytest.approx((0.25 * skilled + 0.75 * random).item(), rel=1e-4)
    assert stats["d_hard_pos"] == pytest.approx(12 / 5, rel=1e-4)
    assert stats["d_hard_skilled"] == pytest.approx(4 / 3, rel=1e-4)


def test_batch_hard_loss_trains_embeddings():
    torch.manual_seed(0)
    emb = torch.randn(8, 4, requires_grad=True)
    writers = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    forged = torch.tensor([False, False, True, False, False, True, False, False])
    loss, _ = batch_hard_triplet_loss(emb, writers, forged)
    loss.backward()
    assert emb.grad is not None and torch.isfinite(emb.grad).all()
    emb.grad = None
    first, last = _descend("batch_hard", emb, writers, forged, 40, 0.5)
    assert last < 0.5 * first
    d = euclidean_matrix(emb.detach())
    assert d[0, 1] < d[0, 2] and d[3, 4] < d[3, 5]  # genuine pairs closer than their forgeries


def test_batch_hard_loss_errors_and_dispatch():
    with pytest.raises(ValueError, match="no anchor"):
        batch_hard_triplet_loss(torch.randn(3, 2), torch.tensor([0, 1, 2]), torch.tensor([False, False, False]))
    with pytest.raises(ValueError, match="no negative"):
        batch_hard_triplet_loss(torch.randn(2, 2), torch.tensor([0, 0]), torch.tensor([False, False]))
    with pytest.raises(ValueError, match="skilled_weight"):
        batch_hard_triplet_loss(torch.randn(2, 2), torch.tensor([0, 0]), torch.tensor([False, False]), 1.5)
    with pytest.raises(ValueError, match="unknown loss 'arcface'"):
        batch_loss("arcface", torch.randn(2, 2), torch.tensor([0, 0]), torch.tensor([False, True]))
    emb, writers, forged = torch.randn(4, 3), torch.tensor([0, 0, 1, 1]), torch.tensor([False, False, False, True])
    assert batch_loss("batch_hard", emb, writers, forged)[0] == batch_hard_triplet_loss(emb, writers, forged)[0]
    assert batch_loss("contrastive", emb, writers, forged)[0] == batch_contrastive_loss(emb, writers, forged)[0]
