"""Train a SigNet embedder on a signature manifest, then calibrate and export it with a model card.

    python -m models.train_signet --manifest ../shared/data/signatures/manifest.csv --arch signet_s4 \
        --out runs/<name> [--exclude-dataset handwritten_divyanshrai] [--steps N] [--minutes N] [--seed S] [--resume]
    python -m models.train_signet --out runs/<name> --export [--export-to runs/<name>/export/<arch>.safetensors]
    python -m models.ensemble --run runs/<a> --run runs/<b> --out models/weights/signet_default.safetensors

Loss: all-pairs contrastive loss in each writers x samples batch (Eq. 1 of Dey et al. 2017), plus
optional auxiliary heads on the embedding used only in training (writer classification as in
sigver's SigNet, genuine/forged classification as SigNet-F); the shipped weights hold the embedder only.
``--loss batch_hard`` swaps the contrastive loss for the batch-hard soft-margin triplet loss (Hermans et al.
2017, ``models.losses.batch_hard_triplet_loss``) on the same batches.
``--synthetic-forgeries N`` adds, per signer of a batch, N of its genuine images warped as a forger's copy
(``transforms.imitation``) as skilled negatives of the metric loss (not of the forgery head).
``--swa-start S`` averages the embedder's weights from step S on, every ``--swa-every`` steps (stochastic weight
averaging, ``models.weight_average``), and saves the average with BatchNorm statistics of its own as ``swa``.
``--pooled-weight W`` adds the same contrastive loss on the conv4 maps read as the shipped
``signet_s4x2_pool_hog`` reads them (``models.signet.PooledConv``), and selects the best checkpoint by that reading.
``--weight-decay D`` sets AdamW's decoupled weight decay (default 1e-4, the shipped members').
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from models.data import (
    BatchSpec,
    Sample,
    Split,
    WriterBatchSampler,
    iter_chunks,
    load_page_copies,
    load_preprocessed,
    make_batch,
    read_manifest,
    split_samples,
)
from models.embed import embed_preprocessed
from models.evaluate import protocol_scores, summarize
from models.export import export_model, read_attachments
from models.losses import LOSSES, batch_loss
from models.signet import EMBEDDERS, POOLED_GRID, SigNet, build_embedder
from models.verification import REFERENCE_SCORES
from models.weight_average import RunningAverage, recompute_batchnorm
from models.weights import save_embedder
from transforms.preprocess import INK_MASKS

log = logging.getLogger("train_signet")


@dataclass
class TrainConfig:
    """Everything that defines a run; written to ``<out>/config.json`` and the model card."""

    manifest: str
    out: str
    arch: str = "signet_s4"
    exclude_datasets: list[str] = field(default_factory=list)
    # left out of training only: the writer split and the validation writers stay those of all datasets
    train_exclude_datasets: list[str] = field(default_factory=list)
    seed: int = 1
    # seed of the writer split (None: ``seed``): members trained from different seeds on the same split
    split_seed: int | None = None
    val_fraction: float = 0.2
    steps: int = 6000
    minutes: float = 0.0  # wall-clock cap (0 = none): the run stops early and can be resumed
    batch: BatchSpec = field(default_factory=BatchSpec)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    margin: float = 1.0
    skilled_weight: float = 0.5
    writer_weight: float = 0.0  # weight of the auxiliary writer-classification loss (0 = pure contrastive)
    forgery_weight: float = 0.0  # weight of the auxiliary genuine/forged loss
    augment: bool = True
    eval_every: int = 250
    references_per_writer: int = 5
    threads: int = 2
    init_from: str = ""  # embedder safetensors to start from (a fine-tune); "" = random initialisation
    # same-text images of other signers as skilled negatives of signers without forgeries (models.data)
    impostors: bool = False
    # classes of the writer head: "signer" (one class per signature) or "person" (a person's signatures share
    # a class, so the head learns a hand's style across texts; the contrastive loss stays per signer)
    writer_classes: str = "signer"
    # at export: fold within-signer whitening of the training embeddings into the last layer (models.whitening)
    whiten: bool = True
    whiten_shrinkage: float = 0.1
    # writer-level score of in-training validation and of the exported card (models.verification.writer_distances)
    reference_score: str = "centroid"
    # page-like copies of each training image (transforms.degrade.page_rendering), drawn instead of the
    # image with probability page_share: signatures as the pipeline cuts them from rendered or scanned pages
    page_copies: int = 0
    page_share: float = 0.5
    # ink mask of the training (and in-training validation) images: "otsu", what the shipped members were trained
    # on, or "hysteresis", what evaluation and the pipeline use (transforms.preprocess.INK_MASKS). Weights
    # trained on Otsu masks and scored with the hysteresis mask generalized best (SigNet card:
    # preprocessing_generalization_20261201). A config.json without the key (runs before it) reads as "otsu".
    ink_mask: str = "otsu"
    # weight of a second contrastive loss on the trunk's conv4 maps read as the shipped model reads them
    # (models.signet.PooledConv: 3 x 4 cells, scaled to unit norm); 0 = none. With it, in-training
    # validation and the best checkpoint follow that reading instead of the head's.
    pooled_weight: float = 0.0
    # metric loss of the batch (models.losses.LOSSES): SigNet's contrastive loss (Eq. 1) over every pair, or the
    # batch-hard triplet loss with a soft margin (each genuine anchor's hardest positive and negatives)
    loss: str = "contrastive"
    # stochastic weight averaging (models.weight_average): from this step on (0 = off), every swa_every steps, the
    # embedder's parameters join a running mean; at the end it gets BatchNorm statistics of its own and is
    # validated and saved as <out>/swa.safetensors. The training trajectory is the same with it or without
    swa_start: int = 0
    swa_every: int = 10

    @property
    def writer_split_seed(self) -> int:
        """The seed of the writer split: ``split_seed``, or ``seed`` when that is None."""
        return self.seed if self.split_seed is None else self.split_seed

    def writer_split(self, samples: Sequence[Sample]) -> Split:
        """This run's writer-disjoint split of ``samples`` (``models.data.split_samples``)."""
        return split_samples(samples, self.val_fraction, self.writer_split_seed, self.train_exclude_datasets)


class AuxHeads(nn.Module):
    """Training-only heads on the embedding: writer logits and a forgery logit."""

    def __init__(self, dim: int, n_writers: int) -> None:
        super().__init__()
        self.writer = nn.Linear(dim, n_writers)
        self.forgery = nn.Linear(dim, 1)


WRITER_CLASSES = ("signer", "person")


def writer_class_labels(samples: Sequence[Sample], kind: str) -> torch.Tensor:
    """Class id per sample for the writer head: by ``Sample.signer`` or by ``Sample.writer`` (the person)."""
    if kind not in WRITER_CLASSES:
        raise ValueError(f"writer classes must be one of {WRITER_CLASSES}, got {kind!r}")
    keys = [s.signer if kind == "signer" else s.writer for s in samples]
    index = {k: i for i, k in enumerate(sorted(set(keys)))}
    return torch.tensor([index[k] for k in keys], dtype=torch.int64)


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up then cosine decay to 1 % over ``cfg.steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.train_signet", description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=str, default=None)
    p.add_argument("--out", type=str, required=True)
    p.add_argument("--arch", choices=sorted(EMBEDDERS), default="signet_s4")
    p.add_argument("--exclude-dataset", action="append", default=[], dest="exclude_datasets")
    p.add_argument("--train-exclude-dataset", action="append", default=[], dest="train_exclude_datasets",
                   help="leave a dataset out of training only (its validation writers stay)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--split-seed", type=int, default=None,
                   help="seed of the writer split (default: --seed); set it to train another member on the same split")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--minutes", type=float, default=None,
                   help="wall-clock cap on the run's total training time (0 = none); a resume may change it")
    p.add_argument("--batch-writers", type=int, default=12)
    p.add_argument("--genuine-per-writer", type=int, default=4)
    p.add_argument("--forged-per-writer", type=int, default=2)
    p.add_argument("--synthetic-forgeries", type=int, default=0,
                   help="per signer in a batch, this many of its genuine images warped into skilled negatives "
                        "(transforms.imitation); 0 = none")
    p.add_argument("--forgery-writer-share", type=float, default=0.5,
                   help="share of a batch's writers drawn from writers with skilled forgeries")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay,
                   help="AdamW's decoupled weight decay (default 1e-4, the shipped members')")
    p.add_argument("--writer-weight", type=float, default=0.0)
    p.add_argument("--forgery-weight", type=float, default=0.0)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--impostors", action="store_true",
                   help="signers without forgeries get other signers' images of the same text as skilled negatives")
    p.add_argument("--writer-classes", choices=WRITER_CLASSES, default="signer",
                   help="classes of the writer head: signers, or persons (a hand across its texts)")
    p.add_argument("--whiten-shrinkage", type=float, default=None,
                   help="at export, shrinkage of the within-signer whitening (default 0.1; also on --export)")
    p.add_argument("--no-whiten", action="store_true", help="export without within-signer whitening")
    p.add_argument("--score", choices=REFERENCE_SCORES, default=None, dest="reference_score",
                   help="writer-level score for validation and the exported calibration: distance to the references' "
                        "mean (centroid, the default) or to the nearest reference (nearest); may be changed at --export")
    p.add_argument("--page-copies", type=int, default=0,
                   help="page-like copies of each training image (small, lighter or darker, scanned; 0 = none)")
    p.add_argument("--page-share", type=float, default=0.5,
                   help="probability that a training image is replaced by one of its page-like copies")
    p.add_argument("--ink-mask", choices=INK_MASKS, default=TrainConfig.ink_mask,
                   help="ink mask of the training images (default otsu, as the shipped members; evaluation and the "
                        "pipeline always use hysteresis)")
    p.add_argument("--pooled-weight", type=float, default=0.0,
                   help="weight of a contrastive loss on the conv4 maps read as PooledConv reads them (0 = none); "
                        "the best checkpoint then follows that reading")
    p.add_argument("--loss", choices=LOSSES, default="contrastive",
                   help="metric loss: SigNet's all-pairs contrastive loss or the batch-hard soft-margin triplet loss")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--init-from", type=str, default="", help="start from these embedder weights (safetensors)")
    p.add_argument("--swa-start", type=int, default=0,
                   help="average the weights from this step on (stochastic weight averaging; 0 = off): "
                        "<out>/swa.safetensors at the end")
    p.add_argument("--swa-every", type=int, default=10, help="steps between averaged snapshots")
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.* with <out>/config.json")
    p.add_argument("--export", action="store_true", help="only calibrate and export <out>/best")
    p.add_argument("--export-to", type=str, default=None, help="weights path (default: <out>/export/<arch>.safetensors)")
    p.add_argument("--attach", action="append", default=[], metavar="NAME=JSON",
                   help="with --export: add an evaluation JSON (models.evaluate --json) to the card under evaluations.NAME")
    return p.parse_args(argv)


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    if a.manifest is None:
        raise ValueError("--manifest is required for a new run")
    if not a.weight_decay >= 0.0:
        raise ValueError(f"--weight-decay must be >= 0, got {a.weight_decay}")
    return TrainConfig(manifest=a.manifest, out=a.out, arch=a.arch, exclude_datasets=a.exclude_datasets,
                       train_exclude_datasets=a.train_exclude_datasets, seed=a.seed, split_seed=a.split_seed,
                       val_fraction=a.val_fraction, steps=a.steps, minutes=a.minutes or 0.0,
                       batch=BatchSpec(a.batch_writers, a.genuine_per_writer, a.forged_per_writer,
                                       a.forgery_writer_share, a.synthetic_forgeries),
                       lr=a.lr, weight_decay=a.weight_decay, writer_weight=a.writer_weight, forgery_weight=a.forgery_weight,
                       augment=not a.no_augment, eval_every=a.eval_every, threads=a.threads,
                       init_from=a.init_from, warmup_steps=a.warmup_steps, impostors=a.impostors,
                       swa_start=a.swa_start, swa_every=a.swa_every,
                       writer_classes=a.writer_classes, whiten=not a.no_whiten,
                       whiten_shrinkage=0.1 if a.whiten_shrinkage is None else a.whiten_shrinkage,
                       reference_score=a.reference_score or "centroid", page_copies=a.page_copies,
                       page_share=a.page_share, ink_mask=a.ink_mask, pooled_weight=a.pooled_weight,
                       loss=a.loss)


def load_config(out: Path) -> TrainConfig:
    raw = json.loads((out / "config.json").read_text())
    raw["batch"] = BatchSpec(**raw["batch"])
    return TrainConfig(**raw)


def pooled_reading(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pooled conv4 cells scaled to unit norm, head embedding)`` of a ``SigNet`` in one trunk pass."""
    if not isinstance(model, SigNet):
        raise ValueError(f"the pooled loss needs a single SigNet (arch signet or signet_s4), got {type(model).__name__}")
    cells, emb = model.pooled_and_embedding(x, POOLED_GRID)
    return cells / math.sqrt(POOLED_GRID[0] * POOLED_GRID[1]), emb


class _BothReadings(nn.Module):
    """Embeds through the head and the pooled conv4 reading at once: ``(N, head dim + pooled dim)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cells, emb = pooled_reading(self.model, x)
        return torch.cat([emb, cells], dim=1)


def validate(model: nn.Module, val_cache: np.ndarray, val_samples: list, k: int,
             rule: str = "centroid", pooled: bool = False) -> dict[str, Any]:
    """Protocol figures of ``model`` on the validation writers (eval mode, no augmentation). With ``pooled``
    the figures are the pooled conv4 reading's, and ``head`` holds the head's."""
    model.eval()
    images = [im.astype(np.float32) / 255.0 for im in val_cache]
    try:
        if not pooled:
            return summarize(protocol_scores(val_samples, embed_preprocessed(model, images, 64), k, rule=rule), None)
        both = embed_preprocessed(_BothReadings(model), images, 64)
    finally:
        model.train()
    dim = int(model.embedding_dim)
    fig = summarize(protocol_scores(val_samples, both[:, dim:], k, rule=rule), None)
    fig["reading"] = "pooled_conv4"
    fig["head"] = summarize(protocol_scores(val_samples, both[:, :dim], k, rule=rule), None)
    return fig


def train(cfg: TrainConfig, resume: bool, command: str) -> Path:
    """Run (or resume) training; keeps ``best``/``last`` checkpoints in ``cfg.out``. Returns ``cfg.out``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    samples = [s for s in read_manifest(cfg.manifest) if s.dataset not in set(cfg.exclude_datasets)]
    split = cfg.writer_split(samples)
    train_w, val_w, tr, va = split.train_writers, split.val_writers, split.train, split.val
    log.info("%d train images (%d writers), %d validation images (%d writers)", len(tr), len(train_w), len(va), len(val_w))
    t0 = time.time()
    tr_cache, va_cache = load_preprocessed(tr, cfg.ink_mask), load_preprocessed(va, cfg.ink_mask)
    page_cache = load_page_copies(tr, cfg.page_copies, cfg.seed, cfg.ink_mask) if cfg.page_copies else None
    log.info("preprocessed in %.0f s", time.time() - t0)
    # the contrastive loss compares signers (a person's one signature); the split above is by person
    writer_index = {w: i for i, w in enumerate(sorted({s.signer for s in tr}))}
    class_of = writer_class_labels(tr, cfg.writer_classes)
    sampler = WriterBatchSampler(tr, train_w, cfg.batch, cfg.seed, cfg.impostors)

    model = build_embedder(cfg.arch)
    if cfg.init_from:
        model.load_state_dict(load_file(cfg.init_from))
        log.info("initialised from %s", cfg.init_from)
    model = model.to(memory_format=torch.channels_last)
    heads = AuxHeads(model.embedding_dim, int(class_of.max()) + 1)
    params = list(model.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    state: dict[str, Any] = {"step": 0, "best_eer": None, "best_step": None, "train_seconds": 0.0, "history": [],
                             "command": command}
    if resume:
        state = json.loads((out / "last.json").read_text())
        model.load_state_dict(load_file(str(out / "last.safetensors")))
        extra = torch.load(out / "last_optim.pt", weights_only=True)
        heads.load_state_dict(extra["heads"])
        opt.load_state_dict(extra["optimizer"])
        state.setdefault("resumed_with", []).append(command)
        log.info("resumed at step %d", state["step"])
    else:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    (out / "data_split.json").write_text(json.dumps({"train_writers": train_w, "val_writers": val_w}, indent=1) + "\n")
    swa = swa_average(cfg, out, resume)

    model.train()
    start, seg_start = state["step"], time.time()
    running: dict[str, float] = {}
    step = start
    while step < cfg.steps:
        if cfg.minutes and (state["train_seconds"] + time.time() - seg_start) > cfg.minutes * 60:
            log.info("time cap of %.1f min reached at step %d", cfg.minutes, step)
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, step)
        batch = sampler.batch(step)
        rng = np.random.default_rng([cfg.seed, step, 1]) if cfg.augment else None
        x, writers, forged = make_batch(tr_cache, tr, batch.indices, writer_index, rng, batch.impostor_of,
                                       page_cache, cfg.page_share, batch.warp, np.random.default_rng([cfg.seed, step, 2]))
        # impostors (and synthetic forgeries) are no one's imitations: skilled negatives for the metric loss only
        imitation = forged & torch.tensor([not t for t in batch.impostor_of], dtype=torch.bool)
        x = x.contiguous(memory_format=torch.channels_last)
        if cfg.pooled_weight > 0:
            cells, emb = pooled_reading(model, x)
        else:
            emb = model(x)
        loss, stats = batch_loss(cfg.loss, emb, writers, forged, cfg.margin, cfg.skilled_weight)
        stats[cfg.loss] = float(loss.detach())
        if cfg.pooled_weight > 0:
            pooled_loss, pooled_stats = batch_loss(cfg.loss, cells, writers, forged, cfg.margin, cfg.skilled_weight)
            loss = loss + cfg.pooled_weight * pooled_loss
            stats["pooled"] = float(pooled_loss.detach())
            stats.update({f"pooled_{k}": v for k, v in pooled_stats.items()})
        if cfg.writer_weight > 0:
            # writer classification on genuine images: cross-entropy(W e + b, class of the image)
            classes = class_of[torch.as_tensor(batch.indices, dtype=torch.int64)]
            ce = F.cross_entropy(heads.writer(emb[~forged]), classes[~forged])
            loss = loss + cfg.writer_weight * ce
            stats["writer_ce"] = float(ce.detach())
        if cfg.forgery_weight > 0 and imitation.any():
            # genuine/forged classification: BCE(w . e + b, forged), impostors left out
            natural = ~forged | imitation
            bce = F.binary_cross_entropy_with_logits(heads.forgery(emb[natural]).squeeze(1), imitation[natural].float())
            loss = loss + cfg.forgery_weight * bce
            stats["forgery_bce"] = float(bce.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if swa is not None and step >= cfg.swa_start and step % cfg.swa_every == 0:
            swa.update(model)
        for key, v in stats.items():
            running[key] = running.get(key, 0.0) + v
        if step % 50 == 0:
            log.info("step %d lr %.2e %s", step, lr_at(cfg, step), " ".join(f"{k} {v / 50:.4f}" for k, v in running.items()))
            running = {}
        if step % cfg.eval_every == 0 or step == cfg.steps:
            state["train_seconds"] += time.time() - seg_start
            validate_and_save(cfg, out, model, heads, opt, state, step, va_cache, va, swa)
            seg_start = time.time()
    state["train_seconds"] += time.time() - seg_start
    if state["step"] != step or state["best_step"] is None:  # stopped between validations
        validate_and_save(cfg, out, model, heads, opt, state, step, va_cache, va, swa)
    if swa is not None and step >= cfg.steps:
        save_swa(cfg, out, swa, step, tr_cache, va_cache, va)
    return out


def swa_average(cfg: TrainConfig, out: Path, resume: bool) -> RunningAverage | None:
    """The run's running weight average: none without ``cfg.swa_start``, the saved one when resuming."""
    if cfg.swa_start <= 0:
        return None
    if cfg.swa_every < 1:
        raise ValueError(f"swa_every must be >= 1 step, got {cfg.swa_every}")
    path = out / "swa_running.safetensors"
    if resume and path.is_file():
        swa = RunningAverage.load(path)
        log.info("resumed the weight average of %d snapshots", swa.n)
        return swa
    return RunningAverage()


def save_swa(cfg: TrainConfig, out: Path, swa: RunningAverage, step: int, tr_cache: np.ndarray,
             va_cache: np.ndarray, va: list) -> None:
    """The averaged embedder with BatchNorm statistics measured on the training images (no augmentation),
    validated like a checkpoint, as ``<out>/swa.safetensors``."""
    if not swa.n:
        log.warning("no weights were averaged (swa_start %d >= steps %d?): no swa.safetensors", cfg.swa_start, cfg.steps)
        return
    model = swa.apply_to(build_embedder(cfg.arch).to(memory_format=torch.channels_last))
    recompute_batchnorm(model, (tr_cache[c].astype(np.float32) / 255.0 for c in iter_chunks(len(tr_cache), 64)))
    fig = validate(model, va_cache, va, cfg.references_per_writer, cfg.reference_score, cfg.pooled_weight > 0)
    fig["step"] = step
    swa_card = {"start": cfg.swa_start, "every": cfg.swa_every, "snapshots": swa.n}
    save_embedder(model.eval(), {"arch": cfg.arch, "step": step, "swa": swa_card, "validation": fig},
                  out / "swa.safetensors")
    log.info("weight average of %d snapshots (steps %d-%d): eer %s eer_random %s auc %s", swa.n, cfg.swa_start,
             step, fig["eer"], fig["eer_random"], fig["auc"])


def validate_and_save(cfg: TrainConfig, out: Path, model: nn.Module, heads: nn.Module, opt: torch.optim.Optimizer,
                      state: dict[str, Any], step: int, va_cache: np.ndarray, va: list,
                      swa: RunningAverage | None = None) -> None:
    """Validate at ``step``, keep ``best`` (lowest skilled EER, else random EER) and ``last``, and the running
    weight average ``swa`` (written before ``last.json``, so a resume goes on from it)."""
    if swa is not None and swa.n:
        swa.save(out / "swa_running.safetensors.tmp")
        os.replace(out / "swa_running.safetensors.tmp", out / "swa_running.safetensors")
    fig = validate(model, va_cache, va, cfg.references_per_writer, cfg.reference_score, cfg.pooled_weight > 0)
    score = fig["eer"] if fig["eer"] is not None else fig["eer_random"]
    fig["step"], fig["train_seconds"] = step, round(state["train_seconds"], 1)
    state["history"].append(fig)
    log.info("validation at step %d: eer %s eer_random %s auc %s", step, fig["eer"], fig["eer_random"], fig["auc"])
    if state["best_eer"] is None or score < state["best_eer"]:
        state["best_eer"], state["best_step"] = score, step
        save_embedder(model, {"arch": cfg.arch, "step": step, "validation": fig}, out / "best.safetensors")
    state["step"] = step
    save_checkpoint(out, cfg.arch, model, heads, opt, state)


def save_checkpoint(out: Path, arch: str, model: nn.Module, heads: nn.Module, opt: torch.optim.Optimizer,
                    state: dict[str, Any]) -> None:
    """``last.safetensors`` (embedder), ``last_optim.pt`` (heads + optimizer, runs/ only), ``last.json``."""
    save_embedder(model, {"arch": arch, "step": state["step"]}, out / "last_model.safetensors")
    (out / "last_model.json").unlink(missing_ok=True)
    os.replace(out / "last_model.safetensors", out / "last.safetensors")
    torch.save({"heads": heads.state_dict(), "optimizer": opt.state_dict()}, out / "last_optim.pt")
    (out / "last.json").write_text(json.dumps(state, indent=1) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    command = "python -m models.train_signet " + " ".join(sys.argv[1:] if argv is None else argv)
    out = Path(a.out)
    if not a.export:
        cfg = load_config(out) if a.resume else config_from_args(a)
        if a.resume and a.minutes is not None:
            cfg.minutes = a.minutes  # a resumed run may get a new wall-clock cap; the schedule stays
        train(cfg, a.resume, command)
    cfg = load_config(out)
    if a.export or a.resume:  # export choices may be changed on an existing run
        cfg.whiten = cfg.whiten and not a.no_whiten
        if a.whiten_shrinkage is not None:
            cfg.whiten_shrinkage = a.whiten_shrinkage
        if a.reference_score is not None:
            cfg.reference_score = a.reference_score
    export_to = Path(a.export_to) if a.export_to else out / "export" / f"{cfg.arch}.safetensors"
    attach = read_attachments(a.attach)
    card = export_model(cfg, out, export_to, command, attach)
    print(json.dumps({"weights": str(export_to), "model_version": card["model_version"],
                      "validation": card["validation"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
