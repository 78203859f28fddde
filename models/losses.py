"""Contrastive loss of SigNet (Dey et al. 2017) and its all-pairs-in-batch form."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def contrastive_loss(d: torch.Tensor, dissimilar: torch.Tensor, margin: float = 1.0,
                     alpha: float = 1.0, beta: float = 1.0) -> torch.Tensor:
    """Mean contrastive loss over pairs, Eq. (1) of Dey et al. 2017.

    # L(s1, s2, y) = alpha * (1 - y) * D^2 + beta * y * max(0, m - D)^2,  y = 1 for dissimilar pairs
    ``d``: ``(P,)`` Euclidean distances; ``dissimilar``: ``(P,)`` bool or {0, 1}.
    """
    if d.shape != dissimilar.shape:
        raise ValueError(f"d and dissimilar must have the same shape, got {tuple(d.shape)} and {tuple(dissimilar.shape)}")
    if margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    y = dissimilar.to(d.dtype)
    return (alpha * (1 - y) * d.pow(2) + beta * y * torch.clamp(margin - d, min=0).pow(2)).mean()


def euclidean_matrix(emb: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """``(B, D)`` embeddings -> ``(B, B)`` Euclidean distances (gradient-safe at zero)."""
    sq = (emb * emb).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * emb @ emb.T
    return torch.sqrt(torch.clamp(d2, min=0.0) + eps)


def pair_masks(writers: torch.Tensor, forged: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Upper-triangle pair masks ``(B, B) bool``: positives, skilled negatives, random negatives.

    positive: two genuine signatures of one writer; skilled: a writer's genuine signature and a
    forgery of that writer; random: genuine signatures of two different writers. Pairs of two
    forgeries, and a forgery with another writer's genuine, are not used.
    """
    upper = torch.triu(torch.ones(len(writers), len(writers), dtype=torch.bool, device=writers.device), diagonal=1)
    pos, skilled, rand = _symmetric_pair_masks(writers, forged)
    return pos & upper, skilled & upper, rand & upper


def _symmetric_pair_masks(writers: torch.Tensor, forged: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`pair_masks` over the whole ``(B, B)`` matrix, diagonal excluded (each pair counted both ways)."""
    same = writers[:, None] == writers[None, :]
    gen = ~forged
    both_genuine = gen[:, None] & gen[None, :]
    pos = same & both_genuine & ~torch.eye(len(writers), dtype=torch.bool, device=writers.device)
    skilled = same & (gen[:, None] ^ gen[None, :])
    rand = ~same & both_genuine
    return pos, skilled, rand


def _check_batch(emb: torch.Tensor, writers: torch.Tensor, forged: torch.Tensor) -> None:
    if emb.ndim != 2 or writers.shape != (emb.shape[0],) or forged.shape != (emb.shape[0],):
        raise ValueError(f"need emb (B, D), writers (B,), forged (B,), got {tuple(emb.shape)}, "
                         f"{tuple(writers.shape)}, {tuple(forged.shape)}")


def _mix_negatives(neg: dict[str, torch.Tensor], skilled_weight: float) -> torch.Tensor | None:
    """The ``skilled`` and ``random`` negative terms mixed ``skilled_weight : 1 - skilled_weight``, the one
    present when only one is, None when neither is."""
    if len(neg) == 2:
        return skilled_weight * neg["skilled"] + (1 - skilled_weight) * neg["random"]
    return next(iter(neg.values())) if neg else None


def batch_contrastive_loss(emb: torch.Tensor, writers: torch.Tensor, forged: torch.Tensor, margin: float = 1.0,
                           skilled_weight: float = 0.5) -> tuple[torch.Tensor, dict[str, float]]:
    """Contrastive loss over every usable pair of a batch, each image embedded once.

    ``emb``: ``(B, D)``; ``writers``: ``(B,)`` int writer ids; ``forged``: ``(B,)`` bool.
    Positive and negative pairs are averaged separately and summed (Eq. 1 with balanced classes);
    negatives mix skilled and random ones as ``skilled_weight : 1 - skilled_weight`` when both exist.
    Returns ``(loss, stats)`` with mean distances per pair kind for logging.
    """
    _check_batch(emb, writers, forged)
    d = euclidean_matrix(emb)
    pos, skilled, rand = pair_masks(writers, forged)
    # similar pairs: D^2; dissimilar pairs: max(0, m - D)^2  (Eq. 1, alpha = beta = 1)
    terms = {}
    if pos.any():
        terms["pos"] = d[pos].pow(2).mean()
    neg = {}
    if skilled.any():
        neg["skilled"] = torch.clamp(margin - d[skilled], min=0).pow(2).mean()
    if rand.any():
        neg["random"] = torch.clamp(margin - d[rand], min=0).pow(2).mean()
    mixed = _mix_negatives(neg, skilled_weight)
    if mixed is not None:
        terms["neg"] = mixed
    if not terms:
        raise ValueError("batch has no usable pair: need two genuine signatures of one writer or a negative pair")
    loss = sum(terms.values())
    stats = {f"d_{k}": float(d[m].detach().mean()) for k, m in (("pos", pos), ("skilled", skilled), ("random", rand)) if m.any()}
    return loss, stats


def batch_hard_triplet_loss(emb: torch.Tensor, writers: torch.Tensor, forged: torch.Tensor,
                            skilled_weight: float = 0.5) -> tuple[torch.Tensor, dict[str, float]]:
    """Batch-hard triplet loss with a soft margin (Hermans et al. 2017, arXiv 1703.07737), in SigNet's pairs.

    # L = mean_a softplus(max_p D(a, p) - min_n D(a, n))
    Anchors are the genuine images with at least one other genuine image of their writer (the positives).
    Each anchor's hardest negative is taken twice: among its writer's forgeries (skilled) and among other
    writers' genuine images (random); the two terms are averaged over their anchors and mixed as
    ``skilled_weight : 1 - skilled_weight`` when both exist. Same inputs and outputs as
    :func:`batch_contrastive_loss`; ``stats`` adds the mean hardest distances.
    """
    _check_batch(emb, writers, forged)
    if not 0.0 <= skilled_weight <= 1.0:
        raise ValueError(f"skilled_weight must be in [0, 1], got {skilled_weight}")
    d = euclidean_matrix(emb)
    pos, skilled, rand = _symmetric_pair_masks(writers, forged)
    skilled = skilled & ~forged[:, None]  # rows are genuine anchors, so the skilled columns are forgeries
    anchors = pos.any(1)
    if not anchors.any():
        raise ValueError("batch has no anchor: need two genuine signatures of one writer")
    inf = torch.finfo(d.dtype).max
    hardest_pos = torch.where(pos, d, torch.zeros_like(d)).max(1).values
    neg, stats = {}, {"d_hard_pos": float(hardest_pos[anchors].detach().mean())}
    for name, mask in (("skilled", skilled), ("random", rand)):
        use = anchors & mask.any(1)
        if use.any():
            hardest_neg = torch.where(mask, d, torch.full_like(d, inf)).min(1).values
            neg[name] = F.softplus(hardest_pos[use] - hardest_neg[use]).mean()
            stats[f"d_hard_{name}"] = float(hardest_neg[use].detach().mean())
    loss = _mix_negatives(neg, skilled_weight)
    if loss is None:
        raise ValueError("batch has no negative for its anchors: need a forgery or another writer's genuine")
    return loss, stats


LOSSES = ("contrastive", "batch_hard")


def batch_loss(kind: str, emb: torch.Tensor, writers: torch.Tensor, forged: torch.Tensor, margin: float = 1.0,
               skilled_weight: float = 0.5) -> tuple[torch.Tensor, dict[str, float]]:
    """The metric loss named ``kind`` (one of :data:`LOSSES`); ``margin`` is the contrastive loss's only."""
    if kind == "contrastive":
        return batch_contrastive_loss(emb, writers, forged, margin, skilled_weight)
    if kind == "batch_hard":
        return batch_hard_triplet_loss(emb, writers, forged, skilled_weight)
    raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")
