"""Read a ``signet_s4x2_hog``'s (``signet_s4x3_hog``'s) SigNet members at conv4, instead of or beside their FC heads.

    python -m models.attach_pooled --out NEW.safetensors [--weights W] [--manifest M.csv] [--keep-heads]
    python -m models.attach_pooled --out NEW.safetensors [--weights W] --add-run runs/<member> [--add-run ...]

The new embedder is ``signet_s4x2_pool_hog`` (``signet_s4x3_pool_hog``): each member's trunk (unchanged weights, up to conv4 and its
ReLU) read by ``models.signet.PooledConv`` (conv4 maps averaged on a 3 x 4 grid, square-rooted, each cell
L2-normalised), and the same scaled gradient histogram. The FC heads are dropped. Each pooled member gets
the scale that makes its median genuine-query distance equal to the histogram's on the card's *training*
writers (the protocol with the card's K), so that the three parts have an equal say; nothing is tuned on
validation writers. The card is copied with the new ``arch``, a ``pooled_conv4`` section and a new
``model_version``; its calibration is still the old one, so run
``python -m models.recalibrate --weights NEW --clean --write`` next.

With ``--keep-heads`` the embedder is ``signet_s4x2_headpool_hog`` (``signet_s4x3_...``): each member (``models.signet.SigNetWithPooled``,
all its weights, heads included) returns its head's embedding and its pooled conv4 maps from one trunk pass;
the members' pooled maps together get the histogram's median genuine distance, the heads keep theirs
(which the histogram was scaled to), so heads, pooled maps and histogram have an equal say.

With ``--add-run RUN`` (repeatable) the best checkpoint of a ``models.train_signet`` run of the same writer split
joins the members, read at conv4 the same way (its head, and so its whitening, is dropped): a two-member model
(``signet_s4x2_hog`` or an already pooled ``signet_s4x2_pool_hog``) becomes ``signet_s4x3_pool_hog``. Every pooled
member's scale is set again on the training writers, as above.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from models.attach_hog import (
    add_source_arguments,
    inherited_fields,
    load_source,
    median_genuine_distance,
    storage_dtype,
)
from models.data import load_gray
from models.embed import embed_preprocessed
from models.ensemble import load_member, member_record
from models.export import write_weights_and_card
from models.signet import (
    EMBEDDERS,
    ENSEMBLE_SIZES,
    EmbedderEnsemble,
    PooledConv,
    SigNetWithPooled,
    build_embedder,
)
from models.train_signet import load_config
from transforms.preprocess import preprocess_signature

log = logging.getLogger(__name__)

# the arch of the source (SigNet members and the histogram) -> the arch read at conv4, heads dropped / kept
POOLED = {f"signet_s4x{n}_hog": f"signet_s4x{n}_pool_hog" for n in ENSEMBLE_SIZES}
WITH_HEADS = {f"signet_s4x{n}_hog": f"signet_s4x{n}_headpool_hog" for n in ENSEMBLE_SIZES}
_SCALE_BUFFERS = ("scale", "head_scale", "pool_scale")


def pooled_from(source: EmbedderEnsemble, arch: str | None = None) -> EmbedderEnsemble:
    """An ``arch`` embedder (one of ``POOLED`` or ``WITH_HEADS``; default: the ``POOLED`` one of ``source``'s
    member count) holding ``source``'s member weights and histogram; the new readings' scales stay 1 until
    ``set_pooled_scales``. Raises when the member counts differ or a weight is missing from ``source``."""
    if arch is None:
        arch = POOLED.get(f"signet_s4x{len(source.members) - 1}_hog")
        if arch is None:
            raise ValueError(f"source has {len(source.members)} members: not one of {sorted(POOLED)}")
    known = [*POOLED.values(), *WITH_HEADS.values()]
    if arch not in known:
        raise ValueError(f"arch must be one of {known}, got {arch!r}")
    model = build_embedder(arch)
    if len(model.members) != len(source.members):
        raise ValueError(f"{arch} has {len(model.members)} members, the source {len(source.members)}")
    theirs, mine = source.state_dict(), model.state_dict()
    new = {k for k in mine if k not in theirs and k.rsplit(".", 1)[-1] in _SCALE_BUFFERS
           and not k.startswith(f"members.{len(model.members) - 1}.")}
    missing = [k for k in mine if k not in new and k not in theirs]
    if missing:
        raise ValueError(f"source weights lack {missing[:3]}: not one of {sorted(POOLED)}")
    model.load_state_dict({k: v if k in new else theirs[k] for k, v in mine.items()})
    return model.eval()


def with_added_members(model: EmbedderEnsemble, trunks: Sequence[nn.Module]) -> tuple[EmbedderEnsemble, str]:
    """``(ensemble, arch)``: ``model``'s conv4 readings (``PooledConv`` members), those of ``trunks`` (``signet_s4``
    embedders) after them and ``model``'s histogram last, as the registered ``signet_s4x<n>_pool_hog``; the added
    readings' scales stay 1 until ``set_pooled_scales``. Raises naming what does not fit."""
    old = list(model.members[:-1])
    if not all(isinstance(m, PooledConv) for m in old):
        raise ValueError("members are added to a conv4 reading without heads (PooledConv members) only, got "
                         f"{sorted({type(m).__name__ for m in old})}")
    arch = f"signet_s4x{len(old) + len(trunks)}_pool_hog"
    if arch not in EMBEDDERS:
        raise ValueError(f"no {arch}: ensembles of {ENSEMBLE_SIZES} members are registered")
    new = build_embedder(arch)
    for mine, theirs in zip(new.members, old, strict=False):
        mine.load_state_dict(theirs.state_dict())
    for mine, trunk in zip(new.members[len(old):-1], trunks, strict=True):
        theirs = trunk.state_dict()
        missing = [k for k in mine.state_dict() if k != "scale" and k not in theirs]
        if missing:
            raise ValueError(f"added member lacks {missing[:3]}: not a signet_s4 trunk")
        mine.load_state_dict({k: v if k == "scale" else theirs[k] for k, v in mine.state_dict().items()})
    new.members[-1].load_state_dict(model.members[-1].state_dict())
    return new.eval(), arch


def load_runs(runs: Sequence[Path], card: dict) -> tuple[list[nn.Module], list[dict]]:
    """Each run's best checkpoint and its card record; exits naming a run whose writer split is not ``card``'s
    (a member trained on a writer the calibration then sees would flatter the figures)."""
    trunks, records = [], []
    for run in runs:
        cfg = load_config(run)
        split = json.loads((run / "data_split.json").read_text())
        for key in ("train_writers", "val_writers"):
            if sorted(split[key]) != sorted(card["data"][key]):
                raise SystemExit(f"{run}: its {key} are not those of {card['model_version']}: train it with the "
                                 "same --split-seed and datasets")
        trunks.append(load_member(run, cfg, "best"))
        records.append(member_record(run, cfg, "best", {
            "applied": False, "why": "read at conv4 (models.attach_pooled --add-run): the head, on which the "
                                     "whitening acts, is dropped"}))
    return trunks, records


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
    add_source_arguments(p, POOLED)
    p.add_argument("--keep-heads", action="store_true",
                   help="read each member through its head and at conv4 in one pass (signet_s4xN_headpool_hog) "
                        "instead of at conv4 only (signet_s4xN_pool_hog)")
    p.add_argument("--add-run", action="append", type=Path, default=[],
                   help="a models.train_signet run of the same writer split whose best checkpoint joins the "
                        "members, read at conv4 (repeatable; --weights may then be a signet_s4xN_pool_hog)")
    return p.parse_args(argv)


def _card_fields(model: EmbedderEnsemble, medians: dict[str, float], n_train: int, k: int) -> dict:
    """The ``pooled_conv4`` section and the ``score`` text of the new card."""
    signets = model.members[:-1]
    n = {2: "two", 3: "three"}.get(len(signets), str(len(signets)))
    section = {"grid": list(signets[0].grid), "median_genuine_distance_train": medians}
    if isinstance(signets[0], SigNetWithPooled):
        section.update(
            module="models.signet.SigNetWithPooled", pool_scales=[float(m.pool_scale) for m in signets],
            head_scales=[float(m.head_scale) for m in signets],
            scale_rule=f"the {n} members' pooled maps together made to the gradient histogram's median genuine-query "
                       f"distance, heads unchanged, on the card's {n_train} training images (protocol K={k}); never "
                       "tuned on validation writers")
        score = (f"squared distances of the {n} members' head embeddings, of their pooled conv4 maps and of the "
                 "gradient histogram, each scaled, summed (models.signet.SigNetWithPooled, models.hog)")
    else:
        section.update(
            module="models.signet.PooledConv", scales=[float(m.scale) for m in signets],
            scale_rule="each pooled member's median genuine-query distance made equal to the gradient histogram's "
                       f"on the card's {n_train} training images (protocol K={k}); never tuned on validation writers")
        score = (f"squared distances of the {n} members' pooled conv4 maps and of the gradient histogram, each scaled, "
                 "summed (models.signet.PooledConv, models.hog)")
    return {"pooled_conv4": section, "score": score}


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    if a.add_run and a.keep_heads:
        raise SystemExit("--add-run reads the added members at conv4 only: drop --keep-heads")
    source, card, train, k, rule = load_source(a.weights, a.manifest,
                                               [*POOLED, *(POOLED.values() if a.add_run else ())])
    if card["arch"] in POOLED:
        arch = (WITH_HEADS if a.keep_heads else POOLED)[card["arch"]]
        model = pooled_from(source, arch)
    else:
        model = source
    records: list[dict] = []
    if a.add_run:
        trunks, records = load_runs(a.add_run, card)
        model, arch = with_added_members(model, trunks)
    log.info("scaling the pooled readings on %d training images", len(train))
    with torch.inference_mode():
        medians = set_pooled_scales(model, train, k, rule)
    fields = inherited_fields(card)
    fields.update(_card_fields(model, medians, len(train), k))
    fields["pooled_conv4"].update(
        source_model_version=card["model_version"],
        command="python -m models.attach_pooled " + " ".join(sys.argv[1:] if argv is None else argv))
    if records:
        fields["pooled_conv4"]["added_members"] = [r["run"] for r in records]
        fields["members"] = [*card.get("members", []), *records]
        if "train_seconds" in fields.get("training", {}):
            fields["training"] = fields["training"] | {
                "train_seconds": round(fields["training"]["train_seconds"] + sum(r["train_seconds"] for r in records), 1)}
    new = write_weights_and_card(model, arch, a.out, fields, storage_dtype(card), rule)
    log.info("wrote %s (%s); calibrate it with models.recalibrate --clean --write", a.out, new["model_version"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
