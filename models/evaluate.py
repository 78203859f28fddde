"""Evaluation CLI: ``python -m models.evaluate verification --manifest M.csv [...]``.

Subcommands register in ``SUBCOMMANDS`` (name -> (add_arguments, run)); ``cleaning`` and
``detection`` are added by their own issues; ``contracts`` (``models.evaluate_pages.contract_recall``)
counts how often the detector finds a synthetic signature on synthetic contracts, without any data.

Verification protocol: for each writer, its first K genuine images in sorted ``path`` order are the
references and every other image of that writer is a query. "Writer" here is the signer
(``models.data.Sample.signer``): the person, or (person, name) where a dataset has every person write
several names (cross_media_chinese), so that references and queries show the same signature. A writer with K or fewer genuine images
keeps all but one as references (logged, counted in ``n_writers_fewer_references``). A query's score
is ``writer_distances`` with the model card's ``reference_score`` rule (distance to the mean of the
references, or to the nearest one), as in the pipeline. ``--on-pages digital|scanned|scanned_red``
scores the queries after a round trip through a synthetic contract page, the detector and the
pipeline's crop (``models.evaluate_pages``; ``scanned_red``: a colour scan with a red seal, rendered
with ``--colour-dropout`` as the pipeline's ``--colour_dropout``); ``--noisy-queries`` adds document
noise to the image files instead.

How sure a figure is: ``eer_ci95`` resamples the signers (``metrics.signer_bootstrap``); ``--scores Q.npz``
keeps each query's distance, and ``python -m models.evaluate compare A.npz B.npz`` compares two scorings of
the same queries paired, signers resampled once for both.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from models import evaluate_cleaning, evaluate_detection, evaluate_pages, metrics
from models.data import Sample, load_gray, read_manifest
from models.evaluate_cleaning import query_images
from models.evaluate_pages import PAGE_KINDS, page_queries
from models.verification import Calibration, reference_score, writer_distances
from transforms.dropout import DROPOUT_COLOURS
from transforms.noise import NOISE_KINDS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProtocolScores:
    """Writer-level distances: genuine queries (all writers), genuine queries of the writers that have
    skilled forgeries, skilled forgeries, and other writers' genuine queries (random forgeries)."""

    genuine: np.ndarray
    genuine_forged_writers: np.ndarray
    skilled: np.ndarray
    random: np.ndarray
    n_writers: int
    n_writers_fewer_references: int
    queries: QueryScores | None = None


@dataclass(frozen=True)
class QueryScores:
    """Per query, in order: a key naming it (its manifest path, prefixed by the noise or page seed where
    several scorings are pooled), its signer, whether it is a skilled forgery, and its distance to its own
    signer's references. What signer bootstraps and paired comparisons (``compare``) need."""

    keys: np.ndarray
    signers: np.ndarray
    forged: np.ndarray
    distances: np.ndarray

    def prefixed(self, prefix: str) -> QueryScores:
        """The same scores with every key prefixed by ``prefix``."""
        return QueryScores(np.char.add(prefix, self.keys.astype(str)), self.signers, self.forged, self.distances)

    def taken(self, order: np.ndarray) -> QueryScores:
        """The rows at ``order`` (indices), every field alike."""
        return QueryScores(self.keys[order], self.signers[order], self.forged[order], self.distances[order])

    def skilled_sets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(genuine, genuine_signers, forged, forged_signers)``: the genuine queries of the signers that
        have skilled forgeries and the forgeries, each with its signer (the figures ``eer`` uses)."""
        with_forgeries = np.isin(self.signers, self.signers[self.forged])
        g = ~self.forged & with_forgeries
        return self.distances[g], self.signers[g], self.distances[self.forged], self.signers[self.forged]


@dataclass(frozen=True)
class ProtocolRoles:
    """Which rows are references and which are queries: ``references`` maps each signer to the row indices
    of its references; ``queries`` and ``query_writers`` list the query rows and their signers, in order."""

    references: dict[str, list[int]]
    queries: tuple[int, ...]
    query_writers: tuple[str, ...]
    n_fewer: int  # signers with <= k genuine images: all but one of them are references


def protocol_roles(samples: Sequence[Sample], k: int) -> ProtocolRoles:
    """The protocol's split of ``samples``: per signer, the first ``k`` genuine images in ``rel_path`` order
    are references (all but one when it has ``k`` or fewer; signers with under 2 are skipped), every
    other image of that signer is a query."""
    if k < 1:
        raise ValueError(f"references per writer must be >= 1, got {k}")
    by_writer: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_writer[s.signer].append(i)  # one reference set per signer (= writer unless a dataset rule)
    refs: dict[str, list[int]] = {}
    query_idx, query_writer = [], []
    fewer = 0
    for w in sorted(by_writer):
        idx = sorted(by_writer[w], key=lambda i: samples[i].rel_path)
        gen = [i for i in idx if samples[i].label == "genuine"]
        if len(gen) < 2:
            log.warning("writer %s has %d genuine image(s): skipped", w, len(gen))
            continue
        kw = k if len(gen) > k else len(gen) - 1
        fewer += kw < k
        refs[w] = gen[:kw]
        for i in idx:
            if i not in gen[:kw]:
                query_idx.append(i)
                query_writer.append(w)
    if fewer:
        log.warning("%d writer(s) have <= %d genuine images: they keep all but one as references", fewer, k)
    return ProtocolRoles(refs, tuple(query_idx), tuple(query_writer), fewer)


def protocol_scores(samples: Sequence[Sample], embeddings: np.ndarray, k: int,
                    query_embeddings: np.ndarray | None = None, rule: str = "centroid",
                    roles: ProtocolRoles | None = None) -> ProtocolScores:
    """Apply the protocol to ``samples`` and their ``(N, D)`` embeddings (same order); queries use
    ``query_embeddings`` (same rows, e.g. of noisy or cleaned images) when given; ``rule``: the
    ``writer_distances`` score (the model card's ``reference_score``); ``roles``: ``protocol_roles(samples, k)``
    when the caller has it already."""
    if len(samples) != len(embeddings):
        raise ValueError(f"{len(samples)} samples but {len(embeddings)} embeddings")
    roles = protocol_roles(samples, k) if roles is None else roles
    refs = {w: embeddings[idx] for w, idx in roles.references.items()}
    query_idx, query_writer, fewer = list(roles.queries), list(roles.query_writers), roles.n_fewer
    ids, d = writer_distances((embeddings if query_embeddings is None else query_embeddings)[query_idx], refs, rule)
    col = {w: j for j, w in enumerate(ids)}
    own = np.array([col[w] for w in query_writer], dtype=np.int64)
    is_forged = np.array([samples[i].label == "forged" for i in query_idx], dtype=bool)
    own_d = d[np.arange(len(query_idx)), own] if query_idx else np.zeros(0, np.float32)
    gen_rows = d[~is_forged]
    other = np.ones_like(gen_rows, dtype=bool)
    other[np.arange(gen_rows.shape[0]), own[~is_forged]] = False
    queries = QueryScores(np.array([samples[i].rel_path for i in query_idx], dtype=str),
                          np.array(query_writer, dtype=str), is_forged, np.asarray(own_d, np.float64))
    # one derivation of "genuine queries of the signers with skilled forgeries": the one the interval uses
    return ProtocolScores(genuine=own_d[~is_forged], genuine_forged_writers=queries.skilled_sets()[0],
                          skilled=own_d[is_forged], random=gen_rows[other],
                          n_writers=len(refs), n_writers_fewer_references=int(fewer), queries=queries)


def query_row_scores(samples: Sequence[Sample], embeddings: np.ndarray, roles: ProtocolRoles, k: int,
                     query_rows: np.ndarray, rule: str = "centroid") -> ProtocolScores:
    """``protocol_scores`` where only the query rows get new embeddings: ``query_rows`` ``(Q, D)`` for
    ``roles.queries`` in order (e.g. of cleaned or page crops); the references keep ``embeddings``."""
    q_emb = embeddings.copy()
    q_emb[list(roles.queries)] = query_rows
    return protocol_scores(samples, embeddings, k, query_embeddings=q_emb, rule=rule, roles=roles)


def pool_scores(parts: Sequence[ProtocolScores]) -> ProtocolScores:
    """One ``ProtocolScores`` holding the scores of several scorings of the same writers (for example one
    per noise seed): distances concatenated, writer counts of the first."""
    if not parts:
        raise ValueError("need at least one set of scores to pool")
    if len(parts) == 1:
        return parts[0]
    queries = None
    if all(x.queries is not None for x in parts):
        queries = QueryScores(*(np.concatenate([getattr(x.queries, f) for x in parts])
                                for f in ("keys", "signers", "forged", "distances")))
    return ProtocolScores(*(np.concatenate([getattr(x, f) for x in parts])
                            for f in ("genuine", "genuine_forged_writers", "skilled", "random")),
                          n_writers=parts[0].n_writers, n_writers_fewer_references=parts[0].n_writers_fewer_references,
                          queries=queries)


def summarize(scores: ProtocolScores, calibration: Calibration | None, resamples: int = 0) -> dict[str, Any]:
    """EER / AUC / FAR / FRR figures of ``scores``.

    Skilled figures (``eer``, ``auc``, ``far``, ``frr``) use the genuine queries of the writers that have
    skilled forgeries; ``*_random`` figures use every genuine query against other writers' references.
    ``resamples`` > 0 (and per-query scores at hand): ``eer_ci95``, the 95 % interval of the skilled EER
    over that many bootstrap resamples of the signers (``metrics.signer_bootstrap``, seed 0).
    """
    gf = scores.genuine_forged_writers
    out: dict[str, Any] = {"n_writers": scores.n_writers, "n_genuine": int(scores.genuine.size),
                           "n_genuine_forged_writers": int(gf.size),
                           "n_forged": int(scores.skilled.size), "n_random": int(scores.random.size),
                           "n_writers_fewer_references": scores.n_writers_fewer_references}
    has_g, has_f, has_r = scores.genuine.size > 0, scores.skilled.size > 0, scores.random.size > 0
    out["eer"] = metrics.eer(gf, scores.skilled) if gf.size and has_f else None
    out["auc"] = metrics.auc(gf, scores.skilled) if gf.size and has_f else None
    out["eer_random"] = metrics.eer(scores.genuine, scores.random) if has_g and has_r else None
    out["auc_random"] = metrics.auc(scores.genuine, scores.random) if has_g and has_r else None
    if resamples > 0 and scores.queries is not None and out["eer"] is not None:
        g, gs, f, fs = scores.queries.skilled_sets()
        lo, hi = metrics.interval(metrics.signer_bootstrap(g, f, gs, fs, resamples=resamples))
        out["eer_ci95"] = [round(lo, 4), round(hi, 4)]
        out["eer_ci95_method"] = (f"{resamples} bootstrap resamples of the {len(np.unique(np.concatenate([gs, fs])))} "
                                  "signers with skilled forgeries (seed 0)")
    if calibration is not None:
        t = calibration.match
        out["match_threshold"] = t
        out["far"] = float(np.mean(scores.skilled <= t)) if has_f else None
        out["far_random"] = float(np.mean(scores.random <= t)) if has_r else None
        out["frr"] = float(np.mean(gf > t)) if gf.size else None
        out["frr_all_writers"] = float(np.mean(scores.genuine > t)) if has_g else None
        out["review_rate_genuine"] = (float(np.mean([calibration.decide(x) == "review" for x in scores.genuine]))
                                      if has_g else None)
    return out


def _add_verification(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", required=True, type=Path, help="CSV with path, writer, label")
    p.add_argument("--references-per-writer", type=int, default=5, metavar="K")
    p.add_argument("--weights", type=Path, default=None, help="safetensors file (default: the shipped models/weights/signet_default.safetensors)")
    p.add_argument("--clean", action="store_true", help="run the cleaning model on the queries first")
    p.add_argument("--noisy-queries", type=int, nargs="+", default=None, metavar="SEED",
                   help="seeded document noise on the queries; several seeds score every query once per seed and "
                        "pool the scores (eer etc.), with each seed's EER in eer_per_noise_seed")
    p.add_argument("--noise-kind", action="append", default=None, choices=NOISE_KINDS, dest="noise_kinds",
                   help="with --noisy-queries: only these noise kinds (repeatable; default: a random mix per image)")
    p.add_argument("--cleaner", type=Path, default=None, help="cleaner safetensors (default: shipped cyclegan_default)")
    p.add_argument("--on-pages", choices=PAGE_KINDS, default=None,
                   help="sign each query into a synthetic contract (born-digital or scanned), render it and cut the "
                        "detector's best region out, as the pipeline does (models.evaluate_pages); with --clean the "
                        "crops are cleaned")
    p.add_argument("--page-seed", type=int, default=0, help="with --on-pages: seed of the contracts")
    p.add_argument("--colour-dropout", choices=DROPOUT_COLOURS, default="none",
                   help="with --on-pages: render the contracts as run_pipeline.py --colour_dropout does")
    p.add_argument("--detector", type=Path, default=None,
                   help="with --on-pages: detector safetensors (default: the shipped detector)")
    p.add_argument("--split", choices=("all", "validation", "train"), default="all",
                   help="restrict to the model card's validation (or training) writers")
    p.add_argument("--dataset", action="append", default=None, help="restrict to a dataset (repeatable)")
    p.add_argument("--max-writers", type=int, default=None, help="first N writers (sorted) only, for quick checks")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu", help="auto | cpu | cuda")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--scores", type=Path, default=None,
                   help="also write each query's distance to its signer's references here (.npz), for compare")
    p.add_argument("--ci-resamples", type=int, default=1000,
                   help="bootstrap resamples of the signers for eer_ci95 (0: no interval)")


def select_samples(samples: Sequence[Sample], card: dict[str, Any], split: str, datasets: Sequence[str] | None,
                   max_writers: int | None) -> list[Sample]:
    """Rows of the requested split (from the card's writer lists), datasets and writer cap."""
    rows = list(samples)
    if split != "all":
        key = {"validation": "val_writers", "train": "train_writers"}[split]
        writers = set(card.get("data", {}).get(key, []))
        if not writers:
            raise ValueError(f"model card lists no {key}: cannot restrict to split {split!r}")
        rows = [s for s in rows if s.writer in writers]
    if datasets:
        rows = [s for s in rows if s.dataset in set(datasets)]
    if max_writers is not None:
        keep = set(sorted({s.writer for s in rows})[:max_writers])
        rows = [s for s in rows if s.writer in keep]
    if not rows:
        raise ValueError("no manifest rows left after the split/dataset/writer filters")
    return rows


def _keyed(scores: ProtocolScores, prefix: str) -> ProtocolScores:
    return scores if scores.queries is None else replace(scores, queries=scores.queries.prefixed(prefix))


def save_query_scores(path: Path, scores: ProtocolScores, model_version: str | None, cleaner: str = "") -> None:
    """Write ``scores.queries`` as ``.npz`` (keys, signers, forged, distances, model_version, cleaner: the
    cleaner weights the queries went through, "" for none) for ``compare``."""
    if scores.queries is None:
        raise ValueError("these scores carry no per-query rows to save")
    q = scores.queries
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        np.savez(fh, keys=q.keys.astype(str), signers=q.signers.astype(str), forged=q.forged.astype(bool),
                 distances=q.distances.astype(np.float64), model_version=np.array(str(model_version)),
                 cleaner=np.array(cleaner))
    log.info("per-query scores written to %s", path)


def load_query_scores(path: Path) -> tuple[QueryScores, str, str]:
    """``(QueryScores, model_version, cleaner)`` from a ``save_query_scores`` file (no pickle)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            q = QueryScores(z["keys"], z["signers"], z["forged"].astype(bool), z["distances"].astype(np.float64))
            version, cleaner = str(z["model_version"]), str(z["cleaner"]) if "cleaner" in z else ""
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"cannot read per-query scores from {path}: {exc}") from exc
    if len(np.unique(q.keys)) != q.keys.size:
        raise ValueError(f"{path}: query keys repeat")
    return q, version, cleaner


def compare_scores(a: QueryScores, b: QueryScores, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Paired comparison of two scorings of the same queries (matched by key): skilled EER of each, the
    difference ``b - a`` and its 95 % interval over ``resamples`` bootstrap resamples of the signers, and
    the share of resamples where ``b`` is lower (better). The queries, signers and labels must agree."""
    if a.keys.size != b.keys.size or set(a.keys.tolist()) != set(b.keys.tolist()):
        only_a = sorted(set(a.keys.tolist()) - set(b.keys.tolist()))[:3]
        only_b = sorted(set(b.keys.tolist()) - set(a.keys.tolist()))[:3]
        raise ValueError(f"the two scorings hold different queries (only in the first: {only_a}, only in the "
                         f"second: {only_b}): compare runs of the same protocol")
    a, b = a.taken(np.argsort(a.keys)), b.taken(np.argsort(b.keys))
    if not (np.array_equal(a.signers, b.signers) and np.array_equal(a.forged, b.forged)):
        raise ValueError("the two scorings give the same queries other signers or labels")
    ga, gs, fa, fs = a.skilled_sets()
    gb, _, fb, _ = b.skilled_sets()
    diffs = metrics.signer_bootstrap(ga, fa, gs, fs, resamples=resamples, seed=seed, others=(gb, fb))
    eer_a, eer_b = metrics.eer(ga, fa), metrics.eer(gb, fb)
    lo, hi = metrics.interval(diffs)
    return {"eer_a": round(eer_a, 4), "eer_b": round(eer_b, 4), "eer_difference": round(eer_b - eer_a, 4),
            "difference_ci95": [round(lo, 4), round(hi, 4)], "b_better_share": round(float(np.mean(diffs < 0)), 3),
            "b_worse_share": round(float(np.mean(diffs > 0)), 3),
            "auc_a": round(metrics.auc(ga, fa), 4), "auc_b": round(metrics.auc(gb, fb), 4),
            "n_genuine": int(ga.size), "n_forged": int(fa.size), "n_signers": len(np.unique(np.concatenate([gs, fs]))),
            "resamples": int(diffs.size), "seed": seed}


def _add_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("first", type=Path, help="per-query scores of model A (verification --scores A.npz)")
    p.add_argument("second", type=Path, help="per-query scores of model B, same protocol")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of the signers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")


def run_compare(args: argparse.Namespace) -> dict[str, Any]:
    """``compare A.npz B.npz``: is B's skilled EER lower than A's on the same queries, beyond the signers' spread?"""
    a, version_a, cleaner_a = load_query_scores(args.first)
    b, version_b, cleaner_b = load_query_scores(args.second)
    out = {"a": str(args.first), "b": str(args.second), "model_version_a": version_a, "model_version_b": version_b,
           "cleaner_a": cleaner_a, "cleaner_b": cleaner_b}
    out.update(compare_scores(a, b, args.resamples, args.seed))
    return out


def run_verification(args: argparse.Namespace) -> dict[str, Any]:
    """Embed the manifest's images with the shipped (or given) weights and score the protocol."""
    from models.embed import embed_images
    from models.weights import load_embedder, resolve_device

    if args.noise_kinds and args.noisy_queries is None:
        raise ValueError(f"--noise-kind {args.noise_kinds} needs --noisy-queries SEED")
    if args.colour_dropout != "none" and not args.on_pages:
        raise ValueError(f"--colour-dropout {args.colour_dropout} renders contract pages: it needs --on-pages")
    if args.on_pages and args.noisy_queries is not None:
        raise ValueError(f"--on-pages {args.on_pages} and --noisy-queries {args.noisy_queries} are two ways to make "
                         "the queries: choose one")
    device = resolve_device(args.device)
    model, card = load_embedder(args.weights, device)
    rule = reference_score(card)
    rows = select_samples(read_manifest(args.manifest), card, args.split, args.dataset, args.max_writers)
    log.info("embedding %d images of %d writers", len(rows), len({s.writer for s in rows}))
    images = [load_gray(s.path) for s in rows]
    emb = embed_images(model, images, args.batch_size, device)
    per_seed: list[ProtocolScores] = []
    missed = None
    roles = protocol_roles(rows, args.references_per_writer)
    if args.on_pages:
        queries = roles.queries
        crops, missed = page_queries([images[i] for i in queries], args.on_pages, args.page_seed, args.detector, device,
                                     args.colour_dropout)
        query_rows = (embed_images(model, query_images(crops, args.clean, None, args.cleaner, device), args.batch_size,
                                   device) if queries else emb[:0])
        per_seed.append(_keyed(query_row_scores(rows, emb, roles, args.references_per_writer, query_rows, rule),
                               f"{args.on_pages}-page{args.page_seed}:"))
    for seed in [] if args.on_pages else args.noisy_queries or [None]:
        if args.clean or seed is not None:  # queries noisy and/or cleaned (only they are made), references as they are
            made = query_images(images, args.clean, seed, args.cleaner, device, args.noise_kinds, indices=roles.queries)
            scored = query_row_scores(rows, emb, roles, args.references_per_writer,
                                      embed_images(model, made, args.batch_size, device), rule)
        else:
            scored = protocol_scores(rows, emb, args.references_per_writer, rule=rule, roles=roles)
        per_seed.append(scored if seed is None else _keyed(scored, f"noise{seed}:"))
    scores = pool_scores(per_seed)
    if args.scores is not None:
        save_query_scores(args.scores, scores, card.get("model_version"),
                          str(args.cleaner or "shipped cleaner") if args.clean else "")
    out = {"model_version": card.get("model_version"), "manifest": str(args.manifest), "split": args.split,
           "datasets": args.dataset, "references_per_writer": args.references_per_writer, "reference_score": rule,
           "clean": args.clean, "noisy_queries": args.noisy_queries, "noise_kinds": args.noise_kinds}
    if args.on_pages:
        out.update(on_pages=args.on_pages, page_seed=args.page_seed, colour_dropout=args.colour_dropout,
                   pages_without_region=missed)
    out.update(summarize(scores, Calibration.from_card(card), resamples=args.ci_resamples))
    if len(per_seed) > 1:
        out["eer_per_noise_seed"] = [summarize(x, None)["eer"] for x in per_seed]
    return out


SUBCOMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], dict[str, Any]]]] = {
    "verification": (_add_verification, run_verification),
    "detection": (evaluate_detection.add_arguments, evaluate_detection.run),
    "cleaning": (evaluate_cleaning.add_arguments, evaluate_cleaning.run),
    "contracts": (evaluate_pages.add_arguments, evaluate_pages.run),
    "compare": (_add_compare, run_compare),
}


def build_parser() -> argparse.ArgumentParser:
    """The CLI parser, one subparser per entry of ``SUBCOMMANDS``."""
    parser = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, _) in SUBCOMMANDS.items():
        add_arguments(sub.add_parser(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand, print its figures as JSON (and write them with ``--json``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    result = SUBCOMMANDS[args.command][1](args)
    text = json.dumps(result, indent=2)
    if getattr(args, "json", None):
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
