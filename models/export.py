"""Calibrate a trained run on its validation writers and export weights plus a model card."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load_file

from models.data import Split, load_gray, load_preprocessed, read_manifest
from models.embed import embed_images, embed_preprocessed
from models.evaluate import ProtocolScores, protocol_roles, protocol_scores, query_row_scores, summarize
from models.metrics import confident_threshold, fit_logistic, match_threshold, mismatch_threshold
from models.signet import build_embedder, count_parameters
from models.verification import Calibration, score_description
from models.weights import save_embedder
from models.whitening import fold_into_linear, whitening_matrix, within_signer_covariance
from transforms.preprocess import INPUT_SIZE

if TYPE_CHECKING:
    from models.train_signet import TrainConfig

log = logging.getLogger(__name__)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hardware() -> dict[str, Any]:
    """Where the run was trained: CPU model, cores visible, torch threads and version."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores_visible": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "cuda": torch.cuda.is_available()}


def genuine_training_images(train: list, ink: str) -> tuple[list, np.ndarray]:
    """The genuine rows of a training split and their images preprocessed with the run's ``ink`` mask (what
    whitening is fitted on: the images as the network was trained on them)."""
    genuine = [s for s in train if s.label == "genuine"]
    return genuine, load_preprocessed(genuine, ink)


def fit_whitening(model: torch.nn.Module, genuine: list, images: np.ndarray, shrinkage: float) -> dict[str, Any]:
    """Fold within-signer whitening (``models.whitening``), fitted on the embeddings of the genuine
    training rows ``genuine`` (preprocessed ``images``, ``genuine_training_images``), into
    ``model.head.fc2`` in place; returns what the card records."""
    emb = embed_preprocessed(model, [im.astype(np.float32) / 255.0 for im in images], 64)
    cov, n_signers = within_signer_covariance(emb, [s.signer for s in genuine])
    fold_into_linear(model.head.fc2, whitening_matrix(cov, shrinkage))
    log.info("whitening fitted on %d genuine training images of %d signers (shrinkage %.2f)",
             len(genuine), n_signers, shrinkage)
    return {"applied": True, "shrinkage": shrinkage, "n_images": len(genuine), "n_signers": n_signers,
            "fitted_on": "embeddings of the training split's genuine images (eval mode, no augmentation), "
                         "covariance around each signer's mean; folded into head.fc2 (models.whitening)"}


def read_attachments(items: list[str]) -> dict[str, Any]:
    """``--attach NAME=JSON`` items -> {name: parsed JSON}; each file must exist."""
    attach = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not Path(path).is_file():
            raise ValueError(f"--attach must be NAME=existing.json, got {item!r}")
        attach[name] = json.loads(Path(path).read_text())
    return attach


def calibrate(model: torch.nn.Module, val: list, k: int,
              rule: str = "centroid") -> tuple[Calibration, dict[str, Any], bool]:
    """Thresholds and similarity map of ``model`` on the validation rows ``val`` (K references each),
    scored with the ``writer_distances`` rule ``rule``: ``calibration_from_scores`` of their
    ``validation_scores`` (the image files, embedded as ``models.evaluate`` and the pipeline embed them)."""
    return calibration_from_scores(validation_scores(model, val, k, rule, clean=False)[0])


def validation_scores(model: Any, rows: list, k: int, rule: str, clean: bool,
                      cleaner: Path | None = None) -> tuple[ProtocolScores, ProtocolScores | None]:
    """The protocol scores of the validation ``rows``: image files as queries, and (``clean``) the queries
    cleaned as ``models.evaluate verification --clean`` cleans them (else None). References are the files."""
    from models.evaluate_cleaning import query_images

    roles = protocol_roles(rows, k)
    images = [load_gray(s.path) for s in rows]
    emb = embed_images(model, images, 64)
    files = protocol_scores(rows, emb, k, rule=rule, roles=roles)
    if not clean:
        return files, None
    cleaned = embed_images(model, query_images([images[i] for i in roles.queries], True, None, cleaner), 64)
    return files, query_row_scores(rows, emb, roles, k, cleaned, rule)


# signer resamples behind a confident calibration (calibration_from_scores(confidence=...)), and their seed
CONFIDENCE_RESAMPLES = 2000
CONFIDENCE_SEED = 0


def calibration_from_scores(scores: ProtocolScores,
                            confidence: float | None = None) -> tuple[Calibration, dict[str, Any], bool]:
    """The calibration of validation protocol ``scores``, the protocol figures under it, and whether
    skilled forgeries were available.

    match: FAR on skilled forgeries (random ones where validation has none); mismatch: FRR over the
    genuine queries of every validation writer (all datasets and media). With ``confidence`` (needs skilled
    forgeries and ``scores.queries``) each threshold is the one that keeps its 1 % promise in that share of
    ``CONFIDENCE_RESAMPLES`` resamples of the validation signers (``models.metrics.confident_threshold``).
    """
    negatives = scores.skilled if scores.skilled.size else scores.random
    positives = scores.genuine_forged_writers if scores.skilled.size else scores.genuine
    center, slope = fit_logistic(positives, negatives)
    if confidence is None:
        match, mismatch = match_threshold(negatives), mismatch_threshold(scores.genuine)
    else:
        if not scores.skilled.size or scores.queries is None:
            raise ValueError(f"confidence {confidence} needs skilled forgeries and per-query signers in the scores")
        q = scores.queries
        match = confident_threshold(scores.skilled, q.signers[q.forged], match_threshold, confidence, "lower",
                                    CONFIDENCE_RESAMPLES, CONFIDENCE_SEED)
        mismatch = confident_threshold(scores.genuine, q.signers[~q.forged], mismatch_threshold, confidence,
                                       "higher", CONFIDENCE_RESAMPLES, CONFIDENCE_SEED)
    cal = Calibration(match=match, mismatch=mismatch, center=center, slope=slope)
    return cal, summarize(scores, cal), bool(scores.skilled.size)


def calibration_rule(had_forgeries: bool, confidence: float | None = None) -> str:
    """The card's words for how ``calibrate`` (``calibration_from_scores``) set the thresholds."""
    rule = ("validation writers, K references each: match = largest distance with FAR <= 1 % on "
            + ("skilled forgeries" if had_forgeries else "random forgeries")
            + "; mismatch = distance beyond which <= 1 % of all genuine queries lie; similarity = "
              "class-balanced logistic fit of genuine (writers with forgeries) vs those forgeries")
    if confidence is not None:
        rule += (f"; each threshold as strict as needed to keep its promise in {confidence:.0%} of "
                 f"{CONFIDENCE_RESAMPLES} bootstrap resamples of the validation signers (seed {CONFIDENCE_SEED}; "
                 "models.metrics.confident_threshold)")
    return rule


VALIDATION_PROTOCOL = ("per writer the first K genuine images in sorted path order are references, every other "
                       "image of the writer is a query; writers with <= K genuine images keep all but one as "
                       "references; a writer here is a signer (data.signers)")


def data_card(cfg: TrainConfig, samples: list, split: Split) -> dict[str, Any]:
    """The card's ``data`` section: manifest, datasets, signer rule and the writer split."""
    return {"manifest": cfg.manifest, "datasets": sorted({s.dataset for s in samples}),
            "excluded_datasets": cfg.exclude_datasets,
            "signers": "models.data.Sample.signer: the writer, except cross_media_chinese where every person "
                       "writes the same ten names: a signer is (person, name), references and queries "
                       "are per signer, and with impostors on, other persons' images of the same name are "
                       "a signer's skilled negatives in training",
            "split_rule": "models.data.split_writers: per dataset (sorted), writers sorted and permuted by "
                          "numpy default_rng(seed); the first round(val_fraction * n) go to validation",
            "seed": cfg.writer_split_seed, "val_fraction": cfg.val_fraction,
            "n_train_writers": len(split.train_writers), "n_val_writers": len(split.val_writers),
            "n_val_images": len(split.val), "val_writers": split.val_writers, "train_writers": split.train_writers}


def write_weights_and_card(model: torch.nn.Module, arch: str, export_to: Path, fields: dict[str, Any],
                           storage_dtype: torch.dtype | None = None, rule: str = "centroid") -> dict[str, Any]:
    """Save the weights, name the version after their digest, then write the card (``fields`` after the
    common keys); fails if the weights changed between the two saves. Returns the card.

    ``rule``: the ``writer_distances`` score the calibration in ``fields`` was made with, written as
    ``reference_score`` and ``score``; a rule other than 'centroid' is also named in the model_version,
    since the same weights then give other distances and decisions."""
    export_to.parent.mkdir(parents=True, exist_ok=True)
    card: dict[str, Any] = {"arch": arch}
    save_embedder(model, card, export_to, storage_dtype)
    digest = file_sha256(export_to)
    today = dt.datetime.now(dt.timezone.utc)
    version = f"{arch}-{today:%Y%m%d}-{digest[:8]}" + ("" if rule == "centroid" else f"-{rule}")
    card.update({"model_version": version, "weights_sha256": digest, "reference_score": rule,
                 "score": score_description(rule),
                 "embedding_dim": model.embedding_dim, "parameters": count_parameters(model),
                 "input_size": list(INPUT_SIZE),
                 "preprocessing": "transforms.preprocess.preprocess_signature (ink bright, 0..1)"})
    card.update(fields)
    card["created"] = today.isoformat(timespec="seconds")
    save_embedder(model, card, export_to, storage_dtype)
    if file_sha256(export_to) != digest:
        raise RuntimeError(f"weights of {export_to} changed between saves")
    log.info("exported %s (%s): validation %s", export_to, card["model_version"], card.get("validation"))
    return card


def export_model(cfg: TrainConfig, out: Path, export_to: Path, command: str,
                 attach: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load ``out/best.safetensors``, calibrate on the validation writers, write weights + card.

    ``attach``: further evaluations (name -> figures) recorded under ``evaluations`` in the card.

    Thresholds come from the skilled-forgery distances when the validation writers have
    forgeries, else from other writers' genuine signatures (random forgeries).
    """
    torch.set_num_threads(cfg.threads)
    samples = [s for s in read_manifest(cfg.manifest) if s.dataset not in set(cfg.exclude_datasets)]
    split = cfg.writer_split(samples)
    model = build_embedder(cfg.arch)
    model.load_state_dict(load_file(str(out / "best.safetensors")))
    model.eval()
    whitening = (fit_whitening(model, *genuine_training_images(split.train, cfg.ink_mask), cfg.whiten_shrinkage) if cfg.whiten
                 else {"applied": False})
    cal, figures, had_forgeries = calibrate(model, split.val, cfg.references_per_writer, cfg.reference_score)
    state = json.loads((out / "last.json").read_text())
    best = json.loads((out / "best.json").read_text())
    return write_weights_and_card(model, cfg.arch, export_to, {
        "whitening": whitening,
        "calibration": cal.to_card() | {
            "calibrated_on": calibration_rule(had_forgeries), "max_far": 0.01, "max_frr": 0.01},
        "validation": figures | {"references_per_writer": cfg.references_per_writer, "protocol": VALIDATION_PROTOCOL},
        "data": data_card(cfg, samples, split) | {"train_excluded_datasets": cfg.train_exclude_datasets,
                                                  "n_train_images": len(split.train)},
        "training": {"config": asdict(cfg), "steps_done": state["step"], "best_step": best.get("step"),
                     "train_seconds": round(state["train_seconds"], 1), "hardware": hardware(),
                     "history": state["history"]},
        "evaluations": attach or {},
        "command": state.get("command", command),
        "export_command": command,
    }, rule=cfg.reference_score)
