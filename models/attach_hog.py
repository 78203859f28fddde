"""Put the untrained shape feature (``models.hog.GradientHistogram``) beside a trained ``signet_s4x2`` or ``signet_s4x3``.

    python -m models.attach_hog --weights models/weights/signet_default.safetensors --out NEW.safetensors
        [--manifest M.csv] [--weight 1.0]

The new embedder is ``signet_s4x2_hog`` (``signet_s4x3_hog``): the SigNet members unchanged and the gradient
histogram as the last member of the ``EmbedderEnsemble``, so a query's squared distance to a signer's references is
SigNet's plus the histogram's, scaled. The scale is not tuned on validation writers: it makes the two
parts' median genuine-query distances equal on the card's *training* writers (the protocol with the card's
K), times ``--weight`` (1: equal say). The card is copied with the new ``arch``, ``gradient_histogram``
(scale, how it was set, the medians) and a new ``model_version``; its calibration is still the old
one, so run ``python -m models.recalibrate --weights NEW --clean --write`` next.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.data import load_gray, read_manifest
from models.embed import embed_preprocessed
from models.evaluate import protocol_scores, select_samples
from models.export import write_weights_and_card
from models.hog import GradientHistogram
from models.signet import ENSEMBLE_SIZES, EmbedderEnsemble
from models.verification import reference_score
from transforms.preprocess import preprocess_signature

log = logging.getLogger(__name__)

# the arch of the source ensemble -> the arch with the histogram
WITH_HOG = {f"signet_s4x{n}": f"signet_s4x{n}_hog" for n in ENSEMBLE_SIZES}


def median_genuine_distance(samples: Sequence, embeddings: np.ndarray, k: int, rule: str) -> float:
    """Median writer-level distance of the protocol's genuine queries (``models.evaluate.protocol_scores``)."""
    scores = protocol_scores(samples, embeddings, k, rule=rule)
    if not scores.genuine.size:
        raise ValueError("no genuine queries: every signer needs more than one genuine image")
    return float(np.median(scores.genuine))


def hog_scale(signet: torch.nn.Module, samples: Sequence, k: int, rule: str, weight: float = 1.0,
              batch_size: int = 64) -> tuple[float, dict[str, float]]:
    """``(scale, medians)``: ``weight`` times the ratio of SigNet's median genuine distance to the (unscaled)
    gradient histogram's on ``samples``."""
    if weight <= 0:
        raise ValueError(f"weight must be > 0, got {weight}")
    pre = [preprocess_signature(load_gray(s.path)) for s in samples]  # once, for both embedders
    signet_d = median_genuine_distance(samples, embed_preprocessed(signet, pre, batch_size), k, rule)
    hog_d = median_genuine_distance(samples, embed_preprocessed(GradientHistogram().eval(), pre, batch_size), k, rule)
    if hog_d <= 0:
        raise ValueError(f"median gradient-histogram distance is {hog_d}: cannot scale it")
    return weight * signet_d / hog_d, {"signet": signet_d, "gradient_histogram": hog_d}


def with_hog(signet: EmbedderEnsemble, scale: float) -> EmbedderEnsemble:
    """``signet``'s members and a ``GradientHistogram(scale=scale)`` as one ensemble (members shared)."""
    return EmbedderEnsemble([*signet.members, GradientHistogram(scale=scale)])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.attach_hog", description=__doc__.split("\n\n")[0])
    add_source_arguments(p, WITH_HOG)
    p.add_argument("--weight", type=float, default=1.0,
                   help="the histogram's say: its median genuine distance is made this many times SigNet's")
    return p.parse_args(argv)


def add_source_arguments(p: argparse.ArgumentParser, archs: Collection[str]) -> None:
    """``--weights`` (one of ``archs``), ``--out`` and ``--manifest``: the arguments ``load_source`` and
    ``write_weights_and_card`` take, shared by the CLIs that build a new embedder from a shipped one."""
    p.add_argument("--weights", type=Path, default=None, help=f"{' or '.join(archs)} safetensors (default: the shipped one)")
    p.add_argument("--out", type=Path, required=True, help="where to write the new safetensors and card")
    p.add_argument("--manifest", type=Path, default=None, help="signature manifest (default: the card's data.manifest)")


def load_source(weights: Path | None, manifest: Path | None,
                archs: Collection[str]) -> tuple[torch.nn.Module, dict[str, Any], list, int, str]:
    """``(model, card, training samples, K, rule)`` of the embedder at ``weights`` (default: the shipped one),
    whose arch must be one of ``archs``; the training samples are the card's training writers' rows of ``manifest``
    (default: the card's ``data.manifest``). Exits with a message naming the file otherwise."""
    from models.weights import default_weights_path, load_embedder

    weights = weights or default_weights_path()
    model, card = load_embedder(weights, "cpu")
    if card.get("arch") not in archs:
        raise SystemExit(f"{weights}: arch {card.get('arch')!r}, expected {' or '.join(map(repr, archs))}")
    manifest = manifest or Path(card["data"]["manifest"])
    if not manifest.is_file():
        raise SystemExit(f"no signature manifest at {manifest}: pass --manifest")
    train = select_samples(read_manifest(manifest), card, "train", None, None)
    return model, card, train, int(card["validation"]["references_per_writer"]), reference_score(card)


def inherited_fields(card: dict[str, Any]) -> dict[str, Any]:
    """The old card's fields, less those ``write_weights_and_card`` derives from the new weights."""
    derived = ("arch", "model_version", "weights_sha256", "embedding_dim", "parameters", "created")
    return {key: value for key, value in card.items() if key not in derived}


def storage_dtype(card: dict[str, Any]) -> torch.dtype | None:
    """The dtype the old card's weights were stored in (float16), for the new weights; ``None``: as they are."""
    return torch.float16 if card.get("storage_dtype") == "float16" else None


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    model, card, train, k, rule = load_source(a.weights, a.manifest, WITH_HOG)
    log.info("scaling the gradient histogram on %d training images", len(train))
    scale, medians = hog_scale(model, train, k, rule, a.weight)
    out_model = with_hog(model, scale)
    fields = inherited_fields(card)
    hog = out_model.members[-1]
    fields.update(
        gradient_histogram={
            "module": "models.hog.GradientHistogram", "grid": list(hog.grid), "bins": hog.bins,
            "scale": scale, "weight": a.weight, "median_genuine_distance_train": medians,
            "scale_rule": "weight x SigNet's median genuine-query distance / the histogram's, on the card's "
                          f"{len(train)} training images (protocol K={k}); never tuned on validation writers",
            "signet_model_version": card["model_version"],
            "command": "python -m models.attach_hog " + " ".join(sys.argv[1:] if argv is None else argv)},
        score=card.get("score", "") + "; plus the scaled gradient histogram's squared distance (models.hog)",
    )
    new = write_weights_and_card(out_model, WITH_HOG[card["arch"]], a.out, fields, storage_dtype(card), rule)
    log.info("wrote %s (%s, scale %.5f); calibrate it with models.recalibrate --clean --write", a.out,
             new["model_version"], scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
