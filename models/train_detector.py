"""Train the signature detector from scratch on CPU; export weights and a model card.

    python -m models.train_detector --out runs/detector [--minutes N] [--steps N] [--seed S] [--resume]
    python -m models.train_detector --out runs/detector --export      # best checkpoint -> models/weights
    python -m models.train_detector --out runs/all --holdout-fraction 0 ...   # every train page, then:
    python -m models.train_detector --out runs/all --export --checkpoint last --settings-from TWIN.json

Data: ``detection/train`` real pages (a seeded ``--holdout-fraction`` of them held out for model
selection and the score threshold; with 0 none is, and the test-time settings come from the card of a
twin run that held pages out) plus ``--synthetic`` synthetic contract pages signed with genuine
signatures of SigNet's training writers only. Every batch is augmented (``augment_page``: quarter
turns, flips, zoom over ``--zoom``, tilt, contrast, noise); ``--mosaic P`` makes that share of the batch
YOLO mosaics of four augmented pages (``mosaic_page``); ``--copy-paste P`` first pastes 1-2 labelled
signatures of the real training pages onto blank spots of that share of real pages (``copy_paste``).
``detection/valid`` is only scored at export, never used for a choice. Loss: CenterNet focal loss on the centre heatmap + 5 x TTFNet's Gaussian-weighted GIoU
on the ltrb distances. ``config.json``, ``best.pt``, ``last.pt`` and ``log.jsonl`` go to ``--out``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from models.data import shared_data_dir
from models.detect import DEFAULT_DETECTOR_PATH, detect_batch, save_detector
from models.detector import OUTPUT_STRIDE, SINGLE_DETECTORS, build_detector
from models.detector_data import (
    ZOOM_RANGE,
    Page,
    augment_page,
    copy_paste,
    load_yolo_pages,
    mosaic_page,
    signature_bank,
    synthetic_pages,
    training_signature_paths,
    upright_pages,
)
from models.evaluate_detection import AP_MIN_SCORE, predict_folder, score_predictions, yolo_pairs
from models.weights import WEIGHTS_DIR
from transforms.boxes import Box
from transforms.detection_metrics import detection_scores
from transforms.detection_prep import encode_targets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    out: Path
    arch: str = "centernet_m"
    input_size: int = 384
    seed: int = 0
    steps: int = 3000
    minutes: float = 55.0
    batch: int = 12
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    synthetic: int = 600
    synthetic_fraction: float = 0.25
    holdout_fraction: float = 0.12
    eval_every: int = 250
    threads: int = 2
    giou_weight: float = 5.0
    signet_val_fraction: float = 0.2
    signet_seed: int = 1
    init_from: str = ""  # detector safetensors to start from (a fine-tune); "" = random initialisation
    upright: bool = False  # put the real training pages upright first (models.detector_data.upright_pages)
    quarter_turns: float = 0.5  # probability of a random quarter turn in augmentation
    letters: float = 0.0  # share of synthetic pages that are typewritten business letters instead of contracts
    handwritten_marks: float = 0.0  # share of synthetic pages given handwritten non-signature marks (negatives)
    ema: float = 0.0  # exponential moving average of the weights (and BN statistics) scored and exported; 0 = off
    zoom: tuple[float, float] = ZOOM_RANGE  # augment_page's zoom range (log-uniform)
    mosaic: float = 0.0  # share of batch images that are a mosaic of four augmented pages (YOLO); 0 = off
    copy_paste: float = 0.0  # share of real pages given 1-2 real signatures of other pages (copy_paste); 0 = off
    stream_seed: int | None = None  # seed of the batches' random stream (and torch's); None = seed


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (Zhou et al. 2019, Eq. 1), alpha=2, beta=4, / #centres."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    pos_loss = -torch.log(p) * (1 - p) ** 2 * pos  # -(1 - p)^2 log p at centres
    neg_loss = -torch.log(1 - p) * p**2 * (1 - target) ** 4 * (1 - pos)  # -(1 - y)^4 p^2 log(1 - p)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1.0)


def giou_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, n_boxes: int) -> torch.Tensor:
    """Weighted 1 - GIoU (Rezatofighi et al. 2019) of ltrb boxes sharing each cell's centre (TTFNet Eq. 4)."""
    mask = weight > 0
    if not bool(mask.any()):
        return pred.sum() * 0.0
    p = pred.permute(0, 2, 3, 1)[mask]  # (M, 4) l, t, r, b
    t = target.permute(0, 2, 3, 1)[mask]
    w = weight[mask]
    inter = (torch.min(p[:, 0], t[:, 0]) + torch.min(p[:, 2], t[:, 2])) * \
            (torch.min(p[:, 1], t[:, 1]) + torch.min(p[:, 3], t[:, 3]))
    area_p = (p[:, 0] + p[:, 2]) * (p[:, 1] + p[:, 3])
    area_t = (t[:, 0] + t[:, 2]) * (t[:, 1] + t[:, 3])
    union = area_p + area_t - inter
    enclose = (torch.max(p[:, 0], t[:, 0]) + torch.max(p[:, 2], t[:, 2])) * \
              (torch.max(p[:, 1], t[:, 1]) + torch.max(p[:, 3], t[:, 3]))
    giou = inter / union - (enclose - union) / enclose
    return (w * (1 - giou)).sum() / max(n_boxes, 1)


def _augmented(pages: Sequence[Page], synthetic: Sequence[Page], cfg: TrainConfig,
               rng: np.random.Generator, bank: Sequence[np.ndarray] = ()) -> Page:
    """One page drawn from the real or (with ``cfg.synthetic_fraction``) the synthetic pool, augmented;
    a real page first gets signatures of ``bank`` pasted on it with probability ``cfg.copy_paste``."""
    pool = synthetic if synthetic and rng.random() < cfg.synthetic_fraction else pages
    page, boxes = pool[int(rng.integers(len(pool)))]
    if pool is pages and cfg.copy_paste > 0.0 and rng.random() < cfg.copy_paste:
        page, boxes = copy_paste(page, boxes, bank, rng)
    return augment_page(page, boxes, rng, cfg.quarter_turns, cfg.zoom)


def make_batch(pages: Sequence[Page], synthetic: Sequence[Page], cfg: TrainConfig,
               rng: np.random.Generator, bank: Sequence[np.ndarray] = ()) -> tuple[torch.Tensor, ...]:
    """An augmented batch: pages ``(B, 1, S, S)``, heat ``(B, h, w)``, ltrb ``(B, 4, h, w)``, weight, #boxes
    (``bank``: the signatures ``cfg.copy_paste`` pastes, :func:`models.detector_data.signature_bank`)."""
    grid = cfg.input_size // OUTPUT_STRIDE
    xs, heats, ltrbs, weights, n = [], [], [], [], 0
    for _ in range(cfg.batch):
        if cfg.mosaic > 0.0 and rng.random() < cfg.mosaic:
            image, moved = mosaic_page([_augmented(pages, synthetic, cfg, rng, bank) for _ in range(4)], rng)
        else:
            image, moved = _augmented(pages, synthetic, cfg, rng, bank)
        heat, ltrb, weight = encode_targets(moved, grid, grid)
        xs.append(image.astype(np.float32) / 255.0)
        heats.append(heat)
        ltrbs.append(ltrb)
        weights.append(weight)
        n += len(moved)
    return (torch.from_numpy(np.stack(xs)[:, None]), torch.from_numpy(np.stack(heats)),
            torch.from_numpy(np.stack(ltrbs)), torch.from_numpy(np.stack(weights)), n)


def split_holdout(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of ``n`` train pages: (training indices, held-out indices), both sorted."""
    perm = np.random.default_rng([seed, 7]).permutation(n)
    k = int(round(fraction * n))
    return sorted(perm[k:].tolist()), sorted(perm[:k].tolist())


class WeightEMA:
    """Exponential moving average of a model's parameters and buffers (the ModelEMA of YOLO-family
    training): ``update(model)`` after each optimizer step; the decay ramps up as
    ``min(decay, (1 + n) / (10 + n))`` so early averages do not lean on the initial weights."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay, self.updates = decay, 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def update(self, model: torch.nn.Module) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if v.is_floating_point():
                    self.state[k].mul_(d).add_(v.detach(), alpha=1 - d)
                else:
                    self.state[k].copy_(v)


def _predict(model: torch.nn.Module, pages: Sequence[Page], cfg: TrainConfig) -> list[list]:
    card = {"input_size": cfg.input_size, "max_boxes": 20, "nms_iou": 0.5, "score_threshold": AP_MIN_SCORE}
    model.eval()
    out = []
    for i in range(0, len(pages), 16):
        batch = np.stack([p.astype(np.float32) / 255.0 for p, _ in pages[i:i + 16]])
        out += detect_batch(model, batch, card, "cpu", AP_MIN_SCORE)
    model.train()
    return out


def best_threshold(predictions: Sequence[Sequence], truth: Sequence[Sequence]) -> tuple[float, float]:
    """The score threshold (0.05..0.95 by 0.01) with the highest F1 on these pages, and that F1
    (ties: the higher threshold)."""
    best = (0.5, -1.0)
    for t in np.round(np.arange(0.05, 0.951, 0.01), 2):
        f1 = detection_scores(predictions, truth, 0.5, float(t)).f1
        if f1 >= best[1]:
            best = (float(t), f1)
    return best


def _data(cfg: TrainConfig) -> tuple[list[Page], list[Page], list[Page], dict[str, Any]]:
    root = shared_data_dir()
    stems, pages = load_yolo_pages(root / "detection/train/images", root / "detection/train/labels", cfg.input_size)
    if cfg.upright:
        pages = upright_pages(pages)
    train_idx, hold_idx = split_holdout(len(pages), cfg.holdout_fraction, cfg.seed)
    signet_card = WEIGHTS_DIR / "signet_default.json"
    card_writers = json.loads(signet_card.read_text()).get("data", {}).get("train_writers") if signet_card.is_file() else None
    sig_paths, writers = training_signature_paths(root / "signatures/manifest.csv", cfg.signet_val_fraction,
                                                  cfg.signet_seed, card_writers)
    variant = (f"_marks{cfg.handwritten_marks:g}" if cfg.handwritten_marks else "") + (
        f"_letters{cfg.letters:g}" if cfg.letters else "")
    cache = cfg.out / f"synthetic_{cfg.synthetic}_{cfg.seed}_{cfg.input_size}{variant}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            images = z["images"]  # read once: every z[...] access decompresses again
            synth = [(images[i], [Box(*map(float, row)) for row in z[f"boxes_{i}"]]) for i in range(len(images))]
    else:
        log.info("generating %d synthetic pages from %d signatures of %d writers", cfg.synthetic, len(sig_paths), len(writers))
        synth = synthetic_pages(cfg.synthetic, cfg.seed, sig_paths, cfg.input_size, cfg.handwritten_marks,
                                cfg.letters)
        arrays = {f"boxes_{i}": np.array([[b.x0, b.y0, b.x1, b.y1, b.score] for b in bx], np.float64).reshape(-1, 5)
                  for i, (_, bx) in enumerate(synth)}
        np.savez_compressed(cache, images=np.stack([p for p, _ in synth]), **arrays)
    info = {"train_pages": len(train_idx), "holdout_pages": len(hold_idx),
            "holdout_stems": [stems[i] for i in hold_idx], "synthetic_pages": len(synth),
            "signature_writers": "models/weights/signet_default.json data.train_writers" if card_writers else
            f"models.data.split_writers(manifest, val_fraction={cfg.signet_val_fraction}, seed={cfg.signet_seed})[0]",
            "n_signature_writers": len(writers), "n_signature_images": len(sig_paths)}
    return [pages[i] for i in train_idx], [pages[i] for i in hold_idx], synth, info


def schedule_progress(step: int, elapsed: float, steps: int, minutes: float) -> tuple[float, bool]:
    """The cosine schedule's progress (0..1 and beyond at the end): whichever of ``steps`` and ``minutes``
    runs out first; and whether the clock led at this step (its learning rate then depends on the
    machine's speed, so the run replays from its card only on an equally fast machine)."""
    by_steps, by_time = step / steps, elapsed / (minutes * 60)
    return max(by_steps, by_time), by_time > by_steps


def schedule_record(time_led_steps: int, steps: int) -> dict[str, Any]:
    """The card's account of what drove the learning-rate schedule over a run's ``steps`` steps."""
    if time_led_steps == 0:
        return {"bound": "steps", "time_led_steps": 0,
                "replay": "step for step from the card's command (same seed, data and threads)"}
    return {"bound": "minutes", "time_led_steps": time_led_steps,
            "replay": f"the clock set the learning rate for {time_led_steps} of {steps} steps: only an equally "
                      "fast machine replays the run; set --minutes beyond the run's time and --steps to the "
                      "steps wanted for a run the card replays"}


def train(cfg: TrainConfig, resume: bool) -> Path:
    """Train until ``cfg.steps`` or ``cfg.minutes``; returns the best checkpoint's path."""
    torch.set_num_threads(cfg.threads)
    stream = cfg.seed if cfg.stream_seed is None else cfg.stream_seed
    torch.manual_seed(stream)
    cfg.out.mkdir(parents=True, exist_ok=True)
    conf = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(cfg).items()}
    conf["command"] = "python -m models.train_detector " + shlex.join(sys.argv[1:])
    if resume and (cfg.out / "config.json").is_file():  # keep the original command, note the resumption
        old = json.loads((cfg.out / "config.json").read_text())
        conf["resumed_with"] = old.get("resumed_with", []) + [conf["command"]]
        conf["command"] = old.get("command", conf["command"])
    (cfg.out / "config.json").write_text(json.dumps(conf, indent=2) + "\n")
    pages, holdout, synth, info = _data(cfg)
    (cfg.out / "data.json").write_text(json.dumps(info, indent=2) + "\n")
    log.info("train %d real + %d synthetic pages, holdout %d", len(pages), len(synth), len(holdout))
    bank = signature_bank(pages) if cfg.copy_paste > 0.0 else []
    model = build_detector(cfg.arch)
    if cfg.init_from and not resume:
        model.load_state_dict(load_file(cfg.init_from), strict=True)
        log.info("initialised from %s", cfg.init_from)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = WeightEMA(model, cfg.ema) if cfg.ema > 0 else None
    scored = build_detector(cfg.arch) if ema is not None else model  # the network scored on the holdout and exported
    step, elapsed, best_ap, time_led_steps = 0, 0.0, -1.0, 0
    last = cfg.out / "last.pt"
    if resume and last.is_file():
        ck = torch.load(last, map_location="cpu", weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, elapsed, best_ap = int(ck["step"]), float(ck["elapsed"]), float(ck["best_ap"])
        time_led_steps = int(ck.get("time_led_steps", 0))
        if ema is not None:
            if "ema" not in ck:
                raise ValueError(f"--ema {cfg.ema} but {last} was saved without an EMA")
            ema.state, ema.updates = ck["ema"], int(ck["ema_updates"])
        log.info("resumed at step %d (%.1f min)", step, elapsed / 60)
    evaluated = step  # a resumed run does not re-score the step it resumed at
    model.train()
    holdout_truth = [b for _, b in holdout]
    start = time.perf_counter() - elapsed
    logf = (cfg.out / "log.jsonl").open("a")
    while True:
        elapsed = time.perf_counter() - start
        progress, time_led = schedule_progress(step, elapsed, cfg.steps, cfg.minutes)
        done = progress >= 1.0
        if step != evaluated and (step % cfg.eval_every == 0 or done):
            evaluated = step
            row: dict[str, Any] = {"step": step, "minutes": round(elapsed / 60, 2)}
            ap = None
            if holdout:  # without held-out pages (--holdout-fraction 0) only the last checkpoint is kept
                if ema is not None:
                    scored.load_state_dict(ema.state)
                preds = _predict(scored, holdout, cfg)
                s = detection_scores(preds, holdout_truth, 0.5, 0.3)
                thr, f1 = best_threshold(preds, holdout_truth)
                ap = s.ap
                row.update({"holdout_ap50": round(s.ap, 4), "holdout_f1_at_0.3": round(s.f1, 4),
                            "holdout_best_f1": round(f1, 4), "best_threshold": thr})
            logf.write(json.dumps(row) + "\n")
            logf.flush()
            log.info("eval %s", row)
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "elapsed": elapsed,
                     "best_ap": float(best_ap if ap is None else max(best_ap, ap)), "arch": cfg.arch,
                     "time_led_steps": time_led_steps}
            if ema is not None:  # the EMA is what was scored here, so export takes it
                state.update(ema=ema.state, ema_updates=ema.updates)
            if ap is not None and ap > best_ap:
                best_ap = ap
                torch.save(state, cfg.out / "best.pt")
            torch.save(state, last)
        if done:
            break
        time_led_steps += int(time_led)
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = float(lr)
        x, heat, ltrb, weight, n = make_batch(pages, synth, cfg, np.random.default_rng([stream, step]), bank)
        out = model(x)
        l_heat = focal_loss(out[:, 0], heat)
        l_box = giou_loss(out[:, 1:], ltrb, weight, n)
        loss = l_heat + cfg.giou_weight * l_box  # L = L_focal + 5 * L_giou (TTFNet Eq. 5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update(model)
        step += 1
        if step % 25 == 0:
            log.info("step %d lr %.2e loss %.4f (heat %.4f, giou %.4f) %.2f s/step", step, lr, loss.item(),
                     l_heat.item(), l_box.item(), (time.perf_counter() - start) / max(step, 1))
    logf.close()
    return cfg.out / ("best.pt" if holdout else "last.pt")


CHECKPOINTS = ("best", "last")


SETTINGS = ("views", "fusion_iou", "box_scale", "score_threshold")  # test-time settings fitted on held-out pages


def twin_settings(card: dict[str, Any], source: str) -> dict[str, Any]:
    """The test-time settings (``SETTINGS``; ``score_threshold`` at least) of ``card``, the card of a twin
    detector trained with held-out pages, for a detector trained without any (``--holdout-fraction 0``)."""
    if "score_threshold" not in card:
        raise ValueError(f"{source} holds no score_threshold to take")
    return {k: card[k] for k in SETTINGS if k in card}


def export(cfg: TrainConfig, weights: Path, checkpoint: str = "best",
           settings_from: Path | None = None) -> dict[str, Any]:
    """A checkpoint (``best``: the holdout's choice, or ``last``) -> ``weights`` + card: threshold chosen
    on the train holdout, then valid scored. A run without held-out pages takes its test-time settings
    from ``settings_from``, the card of its twin trained with a holdout (only ``last`` exists then)."""
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
    conf = json.loads((cfg.out / "config.json").read_text())
    held_out = float(conf["holdout_fraction"]) > 0
    if held_out and settings_from is not None:
        raise ValueError(f"{cfg.out} held train pages out: its settings are fitted on them, not taken from {settings_from}")
    if not held_out and (settings_from is None or checkpoint != "last"):
        raise ValueError(f"{cfg.out} trained on every train page (--holdout-fraction 0): export --checkpoint last "
                         "with --settings-from CARD, the card of its twin trained with held-out pages")
    torch.set_num_threads(cfg.threads)
    ck = torch.load(cfg.out / f"{checkpoint}.pt", map_location="cpu", weights_only=True)
    info = json.loads((cfg.out / "data.json").read_text())
    model = build_detector(conf["arch"])
    model.load_state_dict(ck.get("ema", ck["model"]))  # the weights scored on the holdout
    model.eval()
    cfg = dataclasses.replace(cfg, arch=conf["arch"], input_size=int(conf["input_size"]), seed=int(conf["seed"]),
                              synthetic=int(conf["synthetic"]), holdout_fraction=float(conf["holdout_fraction"]),
                              upright=bool(conf.get("upright", False)),
                              handwritten_marks=float(conf.get("handwritten_marks", 0.0)),
                              letters=float(conf.get("letters", 0.0)))
    pages, holdout, _, _ = _data(cfg)
    truth = [b for _, b in holdout]
    if settings_from is None:
        preds = _predict(model, holdout, cfg)
        model.eval()
        threshold, _ = best_threshold(preds, truth)
    else:
        twin = json.loads(settings_from.read_text())
        taken = twin_settings(twin, str(settings_from))
        threshold = float(taken["score_threshold"])
    card: dict[str, Any] = {
        "arch": conf["arch"], "model_version": f"detector-{conf['arch']}-s{conf['seed']}{'-ft' if conf.get('init_from') else ''}"
                         f"{'' if held_out else '-allpages'}-step{ck['step']}",
        "input_size": int(conf["input_size"]), "output_stride": OUTPUT_STRIDE, "preprocessing": "stretch",
        "score_threshold": threshold, "nms_iou": 0.5, "max_boxes": 20,
        "decode": "3x3 heatmap peaks, ltrb box distances, greedy NMS",
        "design": ("CenterNet/TTFNet-style centre heatmap + ltrb distances at stride 4, plain 3x3 conv FPN. "
                   "Measured on this 2-core CPU (batch 12, 384 px, shared load): depthwise-separable stages "
                   "trained about 3x slower per step than plain convs, so plain convs; stretch (not letterbox) "
                   "because the real training pages are stretched to square; rotated pages handled by "
                   "quarter-turn augmentation, no orientation step at inference."
                   + (" The real training pages were put upright first (transforms.orientation: the export's "
                      "quarter turns and tilts undone, tilt-inflated boxes shrunk back)." if cfg.upright else "")),
        "threshold_rule": "max F1 at IoU>=0.5 on the held-out train pages (0.05..0.95 by 0.01)",
        "holdout": score_predictions(preds, truth, threshold) if settings_from is None else None,
        "training": {"seed": conf["seed"], "command": conf["command"], "steps": int(ck["step"]),
                     "minutes": round(float(ck["elapsed"]) / 60, 1), "config": conf, "data": info,
                     **({"schedule": schedule_record(int(ck["time_led_steps"]), int(ck["step"]))}
                        if "time_led_steps" in ck else {}),
                     "hardware": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                                 f"{conf['threads']} threads on {os.cpu_count()} shared CPU cores, no GPU"},
    }
    if settings_from is not None:
        from models.export import file_sha256  # SigNet's export module: imported only for this

        twin_weights = settings_from.with_suffix(".safetensors")
        card.update(taken)
        card["threshold_rule"] = (f"trained on every train page, so the test-time settings ({', '.join(taken)}) "
                                  "are its twin's, fitted on the twin's held-out train pages")
        card["settings_from"] = {"card": str(settings_from), "model_version": twin.get("model_version"),
                                 "weights_sha256": file_sha256(twin_weights) if twin_weights.is_file() else None,
                                 "twin_holdout": twin.get("holdout")}
    valid = shared_data_dir() / "detection/valid"
    if valid.is_dir():
        p, t, seconds = predict_folder(model, card, yolo_pairs(valid / "images", valid / "labels"))
        card["validation"] = {"data": "detection/valid (reported only, never used for a choice)",
                              **score_predictions(p, t, threshold)}
    save_detector(model, card, weights)
    log.info("exported %s", weights)
    return card


def parse_args(argv: Sequence[str] | None) -> tuple[TrainConfig, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m models.train_detector", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--arch", choices=sorted(SINGLE_DETECTORS), default=TrainConfig.arch)
    p.add_argument("--input-size", type=int, default=TrainConfig.input_size)
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--minutes", type=float, default=TrainConfig.minutes)
    p.add_argument("--batch", type=int, default=TrainConfig.batch)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--synthetic", type=int, default=TrainConfig.synthetic, help="synthetic pages (0: none)")
    p.add_argument("--synthetic-fraction", type=float, default=TrainConfig.synthetic_fraction,
                   help="share of a batch's pages drawn from the synthetic pages")
    p.add_argument("--eval-every", type=int, default=TrainConfig.eval_every)
    p.add_argument("--threads", type=int, default=TrainConfig.threads)
    p.add_argument("--warmup", type=int, default=TrainConfig.warmup, help="linear warm-up steps")
    p.add_argument("--init-from", default="", help="start from these detector weights (safetensors): a fine-tune")
    p.add_argument("--upright", action="store_true",
                   help="put the real training pages upright first (undo the export's turns and tilts)")
    p.add_argument("--quarter-turns", type=float, default=TrainConfig.quarter_turns,
                   help="probability of a random quarter turn in augmentation")
    p.add_argument("--giou-weight", type=float, default=TrainConfig.giou_weight,
                   help="weight of the GIoU box loss against the heatmap focal loss (TTFNet: 5)")
    p.add_argument("--ema", type=float, default=TrainConfig.ema,
                   help="score and export an exponential moving average of the weights with this decay (e.g. 0.998; 0 = off)")
    p.add_argument("--handwritten-marks", type=float, default=TrainConfig.handwritten_marks,
                   help="share of synthetic pages given 1-6 handwritten non-signature marks (dates, figures, ticks)")
    p.add_argument("--letters", type=float, default=TrainConfig.letters,
                   help="share of synthetic pages that are typewritten business letters (transforms/synth_letter.py)")
    p.add_argument("--zoom", type=float, nargs=2, default=ZOOM_RANGE, metavar=("LO", "HI"),
                   help="augmentation zoom range, drawn log-uniformly (YOLO's scale 0.5 is about 0.67 1.5)")
    p.add_argument("--mosaic", type=float, default=TrainConfig.mosaic,
                   help="share of batch images that are YOLO mosaics of four augmented pages (0 = off)")
    p.add_argument("--copy-paste", type=float, default=TrainConfig.copy_paste,
                   help="share of real training pages given 1-2 labelled signatures of the real training pages "
                        "pasted onto blank spots (copy-paste augmentation; 0 = off)")
    p.add_argument("--stream-seed", type=int, default=None,
                   help="seed of the batches' random stream and of torch (default: --seed); --seed alone also "
                        "sets the holdout split and the synthetic pages, which this leaves as they are")
    p.add_argument("--holdout-fraction", type=float, default=TrainConfig.holdout_fraction,
                   help="share of the real train pages held out for checkpoint choice and calibration; 0 trains "
                        "on every page (only the last checkpoint; export then needs --settings-from)")
    p.add_argument("--resume", action="store_true", help="continue from --out/last.pt")
    p.add_argument("--export", action="store_true", help="export --out/best.pt (or --checkpoint) instead of training")
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="best",
                   help="with --export: the holdout-best checkpoint or the last (annealed) one")
    p.add_argument("--weights", type=Path, default=DEFAULT_DETECTOR_PATH, help="export destination")
    p.add_argument("--settings-from", type=Path, default=None,
                   help="with --export of a run without held-out pages: the card of its twin trained with them, "
                        "whose views, fusion IoU, box scale and score threshold the export takes")
    a = p.parse_args(argv)
    for name, value, lo in (("steps", a.steps, 1), ("batch", a.batch, 1), ("eval-every", a.eval_every, 1),
                            ("threads", a.threads, 1), ("synthetic", a.synthetic, 0), ("warmup", a.warmup, 1)):
        if value < lo:
            raise ValueError(f"--{name} must be >= {lo}, got {value}")
    for name, value in (("synthetic-fraction", a.synthetic_fraction), ("quarter-turns", a.quarter_turns),
                        ("handwritten-marks", a.handwritten_marks), ("letters", a.letters),
                        ("mosaic", a.mosaic), ("copy-paste", a.copy_paste)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"--{name} must be a share in [0, 1], got {value}")
    if not 0.0 <= a.holdout_fraction < 1.0:
        raise ValueError(f"--holdout-fraction must be in [0, 1), got {a.holdout_fraction}")
    if a.giou_weight < 0:
        raise ValueError(f"--giou-weight must be >= 0, got {a.giou_weight}")
    if not (a.ema == 0.0 or 0.0 < a.ema < 1.0):
        raise ValueError(f"--ema must be 0 (off) or in (0, 1), got {a.ema}")
    if not 0.0 < a.zoom[0] <= a.zoom[1]:
        raise ValueError(f"--zoom must be LO HI with 0 < LO <= HI, got {a.zoom}")
    if a.minutes <= 0:
        raise ValueError(f"--minutes must be > 0, got {a.minutes}")
    cfg = TrainConfig(out=a.out, arch=a.arch, input_size=a.input_size, seed=a.seed, steps=a.steps, minutes=a.minutes,
                      batch=a.batch, lr=a.lr, synthetic=a.synthetic, eval_every=a.eval_every, threads=a.threads,
                      warmup=a.warmup, init_from=a.init_from, upright=a.upright, quarter_turns=a.quarter_turns,
                      synthetic_fraction=a.synthetic_fraction, ema=a.ema, handwritten_marks=a.handwritten_marks,
                      letters=a.letters, zoom=(a.zoom[0], a.zoom[1]), mosaic=a.mosaic,
                      copy_paste=a.copy_paste, stream_seed=a.stream_seed,
                      giou_weight=a.giou_weight, holdout_fraction=a.holdout_fraction)
    return cfg, a


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg, a = parse_args(argv)
    if a.export:
        card = export(cfg, a.weights, a.checkpoint, a.settings_from)
        print(json.dumps({k: card[k] for k in ("model_version", "score_threshold", "holdout", "validation")
                          if k in card}, indent=2))
    else:
        print(json.dumps({"best": str(train(cfg, a.resume))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
