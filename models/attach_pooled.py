"""Read a shipped ``signet_s4x2_hog``'s two SigNet members at conv4 instead of through their FC heads.

    python -m models.attach_pooled --out NEW.safetensors [--weights W] [--manifest M.csv]

The new embedder is ``signet_s4x2_pool_hog``: each member's trunk (unchanged weights, up to conv4 and its
ReLU) read by ``models.signet.PooledConv`` (conv4 maps averaged on a 3 x 4 grid, square-rooted, each cell
L2-normalised), and the same scaled gradient histogram. The FC heads are dropped. Each pooled member gets
the scale that makes its median genuine-query distance equal to the histogram's on the card's *training*
writers (the protocol with the card's K), so that the three parts have an equal say; nothing is tuned on
validation writers. The card is copied with the new ``arch``, a ``pooled_conv4`` section and a new
``model_version``; its calibration is still the old one, so run
``python -m models.recalibrate --weights NEW --clean --write`` next.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from models.attach_hog import inherited_fields, load_source, median_genuine_distance
from models.data import load_gray
from models.embed import embed_preprocessed
from models.export import write_weights_and_card
from models.signet import EmbedderEnsemble, PooledConv, build_embedder
from transforms.preprocess import preprocess_signature

log = logging.getLogger(__name__)

SOURCE_ARCH = "signet_s4x2_hog"
ARCH = "signet_s4x2_pool_hog"


def pooled_from(source: EmbedderEnsemble) -> EmbedderEnsemble:
    """A ``signet_s4x2_pool_hog`` holding ``source``'s member trunks and histogram (scales of the pooled
    members 1 until ``set_pooled_scales``). Raises when a trunk weight is missing from ``source``."""
    model = build_embedder(ARCH)
    theirs, mine = source.state_dict(), model.state_dict()
    pooled = {f"members.{i}.scale" for i, m in enumerate(model.members) if isinstance(m, PooledConv)}
    missing = [k for k in mine if k not in pooled and k not in theirs]
    if missing:
        raise ValueError(f"source weights lack {missing[:3]}: not a {SOURCE_ARCH}")
    model.load_state_dict({k: v if k in pooled else theirs[k] for k, v in mine.items()})
    return model.eval()


def set_pooled_scales(model: EmbedderEnsemble, samples: Sequence, k: int, rule: str,
                      batch_size: int = 64) -> dict[str, float]:
    """Scale each ``PooledConv`` member so that its median genuine-query distance on ``samples`` equals the
    last member's (the gradient histogram, at its own scale). Returns the medians before scaling."""
    pre = [preprocess_signature(load_gray(s.path)) for s in samples]
    medians = {}
    target = median_genuine_distance(samples, embed_preprocessed(model.members[-1], pre, batch_size), k, rule)
    medians["gradient_histogram"] = target
    for i, member in enumerate(model.members[:-1]):
        if not isinstance(member, PooledConv):
            raise ValueError(f"member {i} is {type(member).__name__}, expected PooledConv")
        member.scale.fill_(1.0)
        d = median_genuine_distance(samples, embed_preprocessed(member, pre, batch_size), k, rule)
        if d <= 0:
            raise ValueError(f"median distance of pooled member {i} is {d}: cannot scale it")
        medians[f"pooled_member_{i}"] = d
        member.scale.fill_(target / d)
    return medians


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.attach_pooled", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=None, help=f"{SOURCE_ARCH} safetensors (default: the shipped one)")
    p.add_argument("--out", type=Path, required=True, help=f"where to write the {ARCH} safetensors and card")
    p.add_argument("--manifest", type=Path, default=None, help="signature manifest (default: the card's data.manifest)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    source, card, train, k, rule = load_source(a.weights, a.manifest, SOURCE_ARCH)
    model = pooled_from(source)
    log.info("scaling the pooled members on %d training images", len(train))
    with torch.inference_mode():
        medians = set_pooled_scales(model, train, k, rule)
    dtype = torch.float16 if card.get("storage_dtype") == "float16" else None
    fields = inherited_fields(card)
    fields.update(
        pooled_conv4={
            "module": "models.signet.PooledConv", "grid": list(model.members[0].grid),
            "scales": [float(m.scale) for m in model.members[:-1]], "median_genuine_distance_train": medians,
            "scale_rule": "each pooled member's median genuine-query distance made equal to the gradient histogram's "
                          f"on the card's {len(train)} training images (protocol K={k}); never tuned on validation writers",
            "source_model_version": card["model_version"],
            "command": "python -m models.attach_pooled " + " ".join(sys.argv[1:] if argv is None else argv)},
        score="squared distances of the two members' pooled conv4 maps and of the gradient histogram, each scaled, "
              "summed (models.signet.PooledConv, models.hog)",
    )
    new = write_weights_and_card(model, ARCH, a.out, fields, dtype, rule)
    log.info("wrote %s (%s); calibrate it with models.recalibrate --clean --write", a.out, new["model_version"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
