"""Weigh a ``signet_s4x2_pool_hog``'s (``signet_s4x3_pool_hog``'s) columns by what separates its training writers' forgeries.

    python -m models.fit_metric --out NEW.safetensors [--weights W] [--manifest M.csv] [--shrinkage 0.1]
        [--draws 5] [--random-per-draw 5] [--seed 0]

The conv4 reading scores a query by the plain squared distance of its embedding to the mean of its signer's
references: every column counts the same. Here the columns get weights ``w >= 0``, one per group of columns (a
pooled member's channel over its grid cells, or a gradient-histogram bin over its cells), so the score becomes
``sum_g w_g * sum_{d in g} (q_d - c_d) ** 2``: a diagonal metric, the writer-independent "dichotomy" approach of
Rivard et al. 2013 and Souza et al. 2018 restricted to weights of a distance. The weights are fitted on the card's
*training* writers only: per signer ``--draws`` random sets of K references (the card's K), its other genuine images
as genuine queries, its skilled forgeries and ``--random-per-draw`` other signers' genuine images as forgeries; a
logistic model of ``log(score)`` (classes balanced; skilled and random forgeries weighted by ``--skilled-weight``
and ``--random-weight``) with the penalty ``shrinkage * mean((log w) ** 2)`` pulling the weights toward the plain
distance. ``--shrinkage`` is the one setting chosen on validation writers (SigNet card: ``metric_weights``).

The weights are folded into the embedder (``models.signet.WeightedEnsemble.dim_scale = sqrt(w)``, arch
``signet_s4xN_pool_hog_metric``), so the pipeline, the calibration and the evaluation read it as any other model.
The card is copied with a ``metric_weights`` section and a new ``model_version``; its calibration is still the old
one, so run ``python -m models.recalibrate --weights NEW --clean --write`` next.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models import metrics
from models.attach_hog import add_source_arguments, inherited_fields, load_source, storage_dtype
from models.data import Sample, load_gray
from models.embed import embed_images
from models.export import write_weights_and_card
from models.hog import GradientHistogram
from models.signet import ENSEMBLE_SIZES, EmbedderEnsemble, PooledConv, WeightedEnsemble, build_embedder

log = logging.getLogger(__name__)

# the arch of the source -> the arch with column weights
WEIGHTED = {f"signet_s4x{n}_pool_hog": f"signet_s4x{n}_pool_hog_metric" for n in ENSEMBLE_SIZES}
GENUINE, SKILLED, RANDOM = 0, 1, 2


def column_groups(model: EmbedderEnsemble) -> np.ndarray:
    """``(D,) int64``: the group of each embedding column. A ``PooledConv`` member's columns are channel-major
    (``channel * cells + cell``), one group per channel; a ``GradientHistogram``'s are cell-major
    (``cell * bins + bin``), one group per bin. Raises for any other member."""
    groups, offset = [], 0
    for member in model.members:
        if isinstance(member, PooledConv):
            cells = member.grid[0] * member.grid[1]
            part = np.arange(member.embedding_dim) // cells
        elif isinstance(member, GradientHistogram):
            part = np.arange(member.embedding_dim) % member.bins
        else:
            raise ValueError(f"member is {type(member).__name__}: only PooledConv and GradientHistogram columns are grouped")
        groups.append(offset + part)
        offset += int(part.max()) + 1
    return np.concatenate(groups).astype(np.int64)


@dataclass(frozen=True)
class Pairs:
    """Query-to-references comparisons: ``features`` ``(n, G)`` the squared differences to the references' mean summed
    per column group, ``kind`` ``(n,)`` GENUINE, SKILLED or RANDOM."""

    features: np.ndarray
    kind: np.ndarray


def dichotomy_pairs(samples: Sequence[Sample], embeddings: np.ndarray, groups: np.ndarray, k: int, draws: int,
                    random_per_draw: int, seed: int) -> Pairs:
    """Per signer with at least two genuine images and per draw: K (at most all but one) of its genuine images, drawn
    at random, as references; its other genuine images (GENUINE), its forgeries (SKILLED) and ``random_per_draw``
    genuine images of other signers (RANDOM) compared with the references' mean."""
    if len(samples) != len(embeddings) or len(groups) != embeddings.shape[1]:
        raise ValueError(f"{len(samples)} samples, embeddings {embeddings.shape}, {len(groups)} column groups")
    if k < 1 or draws < 1 or random_per_draw < 0:
        raise ValueError(f"need k >= 1, draws >= 1, random_per_draw >= 0, got {k}, {draws}, {random_per_draw}")
    onehot = np.zeros((len(groups), int(groups.max()) + 1), np.float64)
    onehot[np.arange(len(groups)), groups] = 1.0
    by_signer: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_signer[s.signer].append(i)
    genuine_rows = np.array([i for i, s in enumerate(samples) if s.label == "genuine"])
    genuine_signers = np.array([samples[i].signer for i in genuine_rows])
    rng = np.random.default_rng(seed)
    feats, kinds = [], []
    for signer in sorted(by_signer):
        rows = by_signer[signer]
        gen = np.array([i for i in rows if samples[i].label == "genuine"])
        forged = [i for i in rows if samples[i].label == "forged"]
        if len(gen) < 2:
            continue
        others = genuine_rows[genuine_signers != signer]
        for _ in range(draws):
            order = rng.permutation(gen)
            refs, queries = order[:min(k, len(gen) - 1)], list(order[min(k, len(gen) - 1):])
            impostors = list(rng.choice(others, min(random_per_draw, len(others)), replace=False))
            rows_q = queries + forged + impostors
            diff = embeddings[rows_q].astype(np.float64) - embeddings[refs].astype(np.float64).mean(axis=0)
            feats.append((diff ** 2) @ onehot)
            kinds += [GENUINE] * len(queries) + [SKILLED] * len(forged) + [RANDOM] * len(impostors)
    if not feats:
        raise ValueError("no signer has two genuine images: nothing to compare")
    return Pairs(np.concatenate(feats), np.array(kinds, np.int64))


def fit_group_weights(pairs: Pairs, shrinkage: float, skilled_weight: float = 1.0, random_weight: float = 0.5,
                      iterations: int = 300) -> np.ndarray:
    """``(G,)`` weights ``w = exp(theta)`` of the column groups: minimise the class-balanced logistic loss of
    ``a * log(score / m) + b`` (``score = features @ w``, ``m`` the genuine pairs' median plain score; forgeries
    positive, skilled ones weighted ``skilled_weight``, random ones ``random_weight``) plus
    ``shrinkage * mean(theta ** 2)``, by L-BFGS from ``w = 1`` (the plain distance)."""
    if shrinkage < 0 or skilled_weight < 0 or random_weight < 0:
        raise ValueError(f"shrinkage and weights must be >= 0, got {shrinkage}, {skilled_weight}, {random_weight}")
    kind = torch.as_tensor(pairs.kind)
    forged = (kind != GENUINE).to(torch.float64)
    weight = torch.where(kind == SKILLED, skilled_weight, torch.where(kind == RANDOM, random_weight, 1.0)).to(torch.float64)
    for label in (0.0, 1.0):
        total = weight[forged == label].sum()
        if total <= 0:
            raise ValueError(f"no {'forged' if label else 'genuine'} pairs with weight > 0 to fit on")
        weight[forged == label] /= 2 * total
    x = torch.as_tensor(pairs.features, dtype=torch.float64)
    median = x[kind == GENUINE].sum(dim=1).median().clamp_min(1e-12)
    theta = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    ab = torch.tensor([5.0, 0.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([theta, ab], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logit = ab[0] * torch.log((x @ torch.exp(theta)) / median + 1e-9) + ab[1]
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(logit, forged, reduction="none") * weight).sum()
        loss = loss + shrinkage * (theta ** 2).mean()
        loss.backward()
        return loss

    opt.step(closure)
    return torch.exp(theta).detach().numpy()


def weighted_model(source: EmbedderEnsemble, arch: str, column_weights: np.ndarray) -> WeightedEnsemble:
    """An ``arch`` (``WeightedEnsemble``) holding ``source``'s weights, its ``dim_scale`` the square roots of
    ``column_weights`` ``(D,)``. Raises when a weight of ``arch`` is missing from ``source``."""
    model = build_embedder(arch)
    theirs, mine = source.state_dict(), model.state_dict()
    missing = [key for key in mine if key != "dim_scale" and key not in theirs]
    if missing or column_weights.shape != (model.embedding_dim,):
        raise ValueError(f"source lacks {missing[:3]} or column weights are {column_weights.shape}, "
                         f"expected ({model.embedding_dim},) for {arch}")
    if np.any(column_weights < 0) or not np.all(np.isfinite(column_weights)):
        raise ValueError("column weights must be finite and >= 0")
    model.load_state_dict({key: torch.as_tensor(np.sqrt(column_weights), dtype=value.dtype) if key == "dim_scale"
                           else theirs[key] for key, value in mine.items()})
    return model.eval()


def pair_eers(pairs: Pairs, group_weights: np.ndarray) -> dict[str, float]:
    """Skilled and random EER of ``pairs`` scored with ``group_weights`` (every draw pooled, in-sample)."""
    score = pairs.features @ group_weights
    gen = score[pairs.kind == GENUINE]
    return {"skilled": round(metrics.eer(gen, score[pairs.kind == SKILLED]), 4),
            "random": round(metrics.eer(gen, score[pairs.kind == RANDOM]), 4)}


def _member_columns(model: EmbedderEnsemble) -> list[np.ndarray]:
    """Each member's column indices in the concatenated embedding."""
    out, at = [], 0
    for member in model.members:
        out.append(np.arange(at, at + member.embedding_dim))
        at += member.embedding_dim
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.fit_metric", description=__doc__.split("\n\n")[0])
    add_source_arguments(p, WEIGHTED)
    p.add_argument("--shrinkage", type=float, default=0.1, help="pull of the log-weights toward 0 (the plain distance)")
    p.add_argument("--draws", type=int, default=5, help="reference draws per training signer")
    p.add_argument("--random-per-draw", type=int, default=5, help="other signers' genuine images per draw")
    p.add_argument("--skilled-weight", type=float, default=1.0, help="weight of a skilled-forgery pair")
    p.add_argument("--random-weight", type=float, default=0.5, help="weight of a random-forgery pair")
    p.add_argument("--seed", type=int, default=0, help="seed of the reference and impostor draws")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    source, card, train, k, rule = load_source(a.weights, a.manifest, WEIGHTED)
    groups = column_groups(source)
    log.info("embedding %d training images", len(train))
    with torch.inference_mode():
        emb = embed_images(source, [load_gray(s.path) for s in train], 64)
    pairs = dichotomy_pairs(train, emb, groups, k, a.draws, a.random_per_draw, a.seed)
    log.info("fitting %d group weights on %d pairs (%d skilled, %d random forgeries)", int(groups.max()) + 1,
             len(pairs.kind), int(np.sum(pairs.kind == SKILLED)), int(np.sum(pairs.kind == RANDOM)))
    w = fit_group_weights(pairs, a.shrinkage, a.skilled_weight, a.random_weight)
    model = weighted_model(source, WEIGHTED[card["arch"]], w[groups])
    fields = inherited_fields(card)
    fields["metric_weights"] = {
        "module": "models.signet.WeightedEnsemble (dim_scale = sqrt of each column's group weight)",
        "groups": "one per pooled member's conv4 channel (over its cells) and one per gradient-histogram bin",
        "n_groups": len(w), "weight_range": [round(float(w.min()), 4), round(float(w.max()), 4)],
        "weight_mean_per_member": [round(float(w[np.unique(groups[m])].mean()), 4) for m in _member_columns(source)],
        "rule": f"class-balanced logistic model of log(score) on the card's {len(train)} training images: "
                f"{a.draws} draws of K={k} references per signer; penalty shrinkage * mean((log w)^2)",
        "pairs": {"genuine": int(np.sum(pairs.kind == GENUINE)), "skilled": int(np.sum(pairs.kind == SKILLED)),
                  "random": int(np.sum(pairs.kind == RANDOM))},
        "training_pairs_eer (in-sample)": {"plain": pair_eers(pairs, np.ones_like(w)), "weighted": pair_eers(pairs, w)},
        "settings": {"shrinkage": a.shrinkage, "draws": a.draws, "random_per_draw": a.random_per_draw,
                     "skilled_weight": a.skilled_weight, "random_weight": a.random_weight, "seed": a.seed},
        "source_model_version": card["model_version"],
        "command": "python -m models.fit_metric " + " ".join(sys.argv[1:] if argv is None else argv)}
    fields["score"] = card.get("score", "") + "; each column weighted (models.fit_metric)"
    new = write_weights_and_card(model, WEIGHTED[card["arch"]], a.out, fields, storage_dtype(card), rule)
    log.info("wrote %s (%s); calibrate it with models.recalibrate --clean --write", a.out, new["model_version"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
