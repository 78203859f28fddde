"""Read a shipped ``signet_s4x2_hog``'s two SigNet members at conv4, instead of or beside their FC heads.

    python -m models.attach_pooled --out NEW.safetensors [--weights W] [--manifest M.csv] [--keep-heads]

The new embedder is ``signet_s4x2_pool_hog``: each member's trunk (unchanged weights, up to conv4 and its
ReLU) read by ``models.signet.PooledConv`` (conv4 maps averaged on a 3 x 4 grid, square-rooted, each cell
L2-normalised), and the same scaled gradient histogram. The FC heads are dropped. Each pooled member gets
the scale that makes its median genuine-query distance equal to the histogram's on the card's *training*
writers (the protocol with the card's K), so that the three parts have an equal say; nothing is tuned on
validation writers. The card is copied with the new ``arch``, a ``pooled_conv4`` section and a new
``model_version``; its calibration is still the old one, so run
``python -m models.recalibrate --weights NEW --clean --write`` next.

With ``--keep-heads`` the embedder is ``signet_s4x2_headpool_hog``: each member (``models.signet.SigNetWithPooled``,
all its weights, heads included) returns its head's embedding and its pooled conv4 maps from one trunk pass;
the two members' pooled maps together get the histogram's median genuine distance, the heads keep theirs
(which the histogram was scaled to), so heads, pooled maps and histogram have an equal say.
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
from models.signet import EmbedderEnsemble, PooledConv, SigNetWithPooled, build_embedder
from transforms.preprocess import preprocess_signature

log = logging.getLogger(__name__)

SOURCE_ARCH = "signet_s4x2_hog"
ARCH = "signet_s4x2_pool_hog"
ARCH_WITH_HEADS = "signet_s4x2_headpool_hog"
_SCALE_BUFFERS = ("scale", "head_scale", "pool_scale")


def pooled_from(source: EmbedderEnsemble, arch: str = ARCH) -> EmbedderEnsemble:
    """An ``arch`` embedder (``ARCH`` or ``ARCH_WITH_HEADS``) holding ``source``'s member weights and
    histogram; the new readings' scales stay 1 until ``set_pooled_scales``. Raises when a weight is missing
    from ``source``."""
    if arch not in (ARCH, ARCH_WITH_HEADS):
        raise ValueError(f"arch must be {ARCH!r} or {ARCH_WITH_HEADS!r}, got {arch!r}")
    model = build_embedder(arch)
    theirs, mine = source.state_dict(), model.state_dict()
    new = {k for k in mine if k not in theirs and k.rsplit(".", 1)[-1] in _SCALE_BUFFERS
           and not k.startswith(f"members.{len(model.members) - 1}.")}
    missing = [k for k in mine if k not in new and k not in theirs]
    if missing:
        raise ValueError(f"source weights lack {missing[:3]}: not a {SOURCE_ARCH}")
    model.load_state_dict({k: v if k in new else theirs[k] for k, v in mine.items()})
    return model.eval()


def _pooled_columns(model: EmbedderEnsemble) -> tuple[list[int], list[int]]:
    """Column indices of the SigNet members' output (histogram left out): ``(heads, pooled maps)``."""
    heads, pooled, at = [], [], 0
    for member in model.members[:-1]:
        if isinstance(member, SigNetWithPooled):
            heads += range(at, at + member.head_dim)
            pooled += range(at + member.head_dim, at + member.embedding_dim)
        elif isinstance(member, PooledConv):
            pooled += range(at, at + member.embedding_dim)
        else:
            raise ValueError(f"member is {type(member).__name__}, expected PooledConv or SigNetWithPooled")
        at += member.embedding_dim
    return heads, pooled


def set_pooled_scales(model: EmbedderEnsemble, samples: Sequence, k: int, rule: str,
                      batch_size: int = 64) -> dict[str, float]:
    """Scale the pooled conv4 readings so that their median genuine-query distance on ``samples`` equals the
    last member's (the gradient histogram, at its own scale). Returns the medians before scaling.

    ``PooledConv`` members are scaled one by one (each gets the histogram's median). ``SigNetWithPooled``
    members are scaled together: both members' pooled maps as one part get the histogram's median, their
    heads stay as they are (the histogram's scale already made the two heads' median its own), so the
    heads, the pooled maps and the histogram have an equal say."""
    pre = [preprocess_signature(load_gray(s.path)) for s in samples]
    target = median_genuine_distance(samples, embed_preprocessed(model.members[-1], pre, batch_size), k, rule)
    medians = {"gradient_histogram": target}
    signets = model.members[:-1]
    heads, pooled = _pooled_columns(model)
    for member in signets:
        member.get_buffer("scale" if isinstance(member, PooledConv) else "pool_scale").fill_(1.0)
        if isinstance(member, SigNetWithPooled):
            member.head_scale.fill_(1.0)
    out = embed_preprocessed(EmbedderEnsemble(list(signets)) if len(signets) > 1 else signets[0], pre, batch_size)
    if heads:
        medians["heads"] = median_genuine_distance(samples, out[:, heads], k, rule)
        d = medians["pooled_members"] = median_genuine_distance(samples, out[:, pooled], k, rule)
        if d <= 0:
            raise ValueError(f"median distance of the pooled maps is {d}: cannot scale them")
        for member in signets:
            member.pool_scale.fill_(target / d)
        return medians
    at = 0
    for i, member in enumerate(signets):
        d = median_genuine_distance(samples, out[:, at:at + member.embedding_dim], k, rule)
        at += member.embedding_dim
        if d <= 0:
            raise ValueError(f"median distance of pooled member {i} is {d}: cannot scale it")
        medians[f"pooled_member_{i}"] = d
        member.scale.fill_(target / d)
    return medians


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.attach_pooled", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=None, help=f"{SOURCE_ARCH} safetensors (default: the shipped one)")
    p.add_argument("--out", type=Path, required=True, help="where to write the new safetensors and card")
    p.add_argument("--manifest", type=Path, default=None, help="signature manifest (default: the card's data.manifest)")
    p.add_argument("--keep-heads", action="store_true",
                   help=f"read each member through its head and at conv4 in one pass ({ARCH_WITH_HEADS}) "
                        f"instead of at conv4 only ({ARCH})")
    return p.parse_args(argv)


def _card_fields(model: EmbedderEnsemble, medians: dict[str, float], n_train: int, k: int) -> dict:
    """The ``pooled_conv4`` section and the ``score`` text of the new card."""
    signets = model.members[:-1]
    section = {"grid": list(signets[0].grid), "median_genuine_distance_train": medians}
    if isinstance(signets[0], SigNetWithPooled):
        section.update(
            module="models.signet.SigNetWithPooled", pool_scales=[float(m.pool_scale) for m in signets],
            head_scales=[float(m.head_scale) for m in signets],
            scale_rule="the two members' pooled maps together made to the gradient histogram's median genuine-query "
                       f"distance, heads unchanged, on the card's {n_train} training images (protocol K={k}); never "
                       "tuned on validation writers")
        score = ("squared distances of the two members' head embeddings, of their pooled conv4 maps and of the "
                 "gradient histogram, each scaled, summed (models.signet.SigNetWithPooled, models.hog)")
    else:
        section.update(
            module="models.signet.PooledConv", scales=[float(m.scale) for m in signets],
            scale_rule="each pooled member's median genuine-query distance made equal to the gradient histogram's "
                       f"on the card's {n_train} training images (protocol K={k}); never tuned on validation writers")
        score = ("squared distances of the two members' pooled conv4 maps and of the gradient histogram, each scaled, "
                 "summed (models.signet.PooledConv, models.hog)")
    return {"pooled_conv4": section, "score": score}


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    arch = ARCH_WITH_HEADS if a.keep_heads else ARCH
    source, card, train, k, rule = load_source(a.weights, a.manifest, SOURCE_ARCH)
    model = pooled_from(source, arch)
    log.info("scaling the pooled readings on %d training images", len(train))
    with torch.inference_mode():
        medians = set_pooled_scales(model, train, k, rule)
    dtype = torch.float16 if card.get("storage_dtype") == "float16" else None
    fields = inherited_fields(card)
    fields.update(_card_fields(model, medians, len(train), k))
    fields["pooled_conv4"].update(
        source_model_version=card["model_version"],
        command="python -m models.attach_pooled " + " ".join(sys.argv[1:] if argv is None else argv))
    new = write_weights_and_card(model, arch, a.out, fields, dtype, rule)
    log.info("wrote %s (%s); calibrate it with models.recalibrate --clean --write", a.out, new["model_version"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
