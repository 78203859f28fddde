"""Train the cleaning CycleGAN (A = noisy crops -> B = clean signatures) on CPU, resumably.

    nice -n 15 python -m models.train_cyclegan --out runs/cyclegan [--generator resnet_6blocks_ngf16]
        [--steps N --decay-steps N] [--lambda-paired 10] [--ink-weight 0] [--minutes M] [--resume] [--export NAME]

Zhu et al. 2017 / pytorch-CycleGAN-and-pix2pix ``cycle_gan_model.py``: LSGAN losses, cycle (lambda 10)
and identity (0.5 x lambda) losses, image pools of 50, Adam(2e-4, beta1 0.5), learning rate constant
for ``steps`` then linearly decaying to 0 over ``decay_steps``. Optional paired L1 term on the synthetic
(noisy, clean) pairs, optionally weighted towards the target's ink (``--ink-weight``). Writes
``config.json``, ``last.pt``/``best.pt`` (best = highest PSNR on a fixed monitor set of held-out
training writers) and ``log.jsonl`` under ``--out``; ``--export`` ships ``best`` as
``models/weights/cyclegan_<name>.safetensors`` with its card.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from models.clean import clean_images, default_cleaner_path, save_cleaner
from models.cleaning_data import (
    CleaningData,
    load_clean,
    noisy_pair,
    real_noisy_crops,
    synthetic_pairs,
    training_writers,
)
from models.cyclegan import (
    DEFAULT_GENERATOR,
    GENERATORS,
    ResnetGenerator,
    build_discriminator,
    build_generator,
    init_weights,
    to_tensor,
)
from models.data import read_manifest, shared_data_dir
from models.evaluate_cleaning import psnr
from models.feature_loss import FeatureLoss
from models.weights import WEIGHTS_DIR, load_embedder
from models.widen import generator_ngf, widen_generator_state
from transforms.noise import NOISE_KINDS
from transforms.preprocess import ink_geometry

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Resolved training configuration (written to ``<out>/config.json``)."""

    out: Path
    manifest: Path = field(default_factory=lambda: shared_data_dir() / "signatures" / "manifest.csv")
    detection: Path = field(default_factory=lambda: shared_data_dir() / "detection" / "train")
    generator: str = DEFAULT_GENERATOR
    ndf: int = 32
    crop: tuple[int, int] = (64, 128)
    scale: int = 256  # working scale: longest side in px, = clean_images(max_side=...)
    batch_size: int = 4
    steps: int = 700
    decay_steps: int = 700
    lr: float = 2e-4
    beta1: float = 0.5
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    lambda_paired: float = 10.0
    ink_weight: float = 0.0  # paired L1 weight of a target pixel = 1 + ink_weight x its darkness (0..1)
    lambda_feature: float = 0.0  # weight of the verifier-feature loss on whole synthetic pairs (models.feature_loss)
    feature_pairs: int = 2  # whole synthetic pairs per step for the feature loss
    feature_clean_share: float = 0.0  # share of those pairs fed clean (G must then leave the embedding alone)
    feature_weights: Path | None = None  # frozen SigNet of the feature loss (None: the shipped default)
    pool_size: int = 50
    n_synthetic: int = 2000
    n_clean: int | None = 4000
    synthetic_share: float = 0.6
    monitor_writers: int = 8
    eval_every: int = 100
    minutes: float = 0.0
    seed: int = 1
    threads: int = 2
    aligned_targets: bool = True  # paired/monitor targets turned like their noisy crop (False: runs before 2026-11-29)
    init_from: Path | None = None  # start all four networks from this run's last.pt (fine-tuning; narrower G widened)
    extra_pairs: dict[str, int] = field(default_factory=dict)  # "stamp+scan" -> n more pairs with only those kinds

    def to_json(self) -> dict:
        d = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


class ImagePool:
    """History of generated images (Shrivastava et al. 2017): with probability 0.5 a query image is
    swapped for a stored one. Seeded per call: ``query(x, rng)``."""

    def __init__(self, size: int) -> None:
        self.size, self.images = size, []

    def query(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if self.size == 0:
            return x
        out = []
        for im in x.detach():
            im = im.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(im)
                out.append(im)
            elif rng.random() < 0.5:
                j = int(rng.integers(self.size))
                out.append(self.images[j].clone())
                self.images[j] = im
            else:
                out.append(im)
        return torch.cat(out)


def lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    """LSGAN loss (Mao et al. 2017): ``mean((D(x) - 1)^2)`` for real, ``mean(D(x)^2)`` for fake."""
    return ((pred - (1.0 if real else 0.0)) ** 2).mean()


def paired_l1(fake: torch.Tensor, target: torch.Tensor, ink_weight: float = 0.0) -> torch.Tensor:
    """Mean ``|fake - target|`` (images in [-1, 1], ink dark), each pixel weighted by
    ``1 + ink_weight x darkness(target)`` (darkness 0 on white paper, 1 on black ink): with
    ``ink_weight > 0`` erasing the signature's own strokes costs more than leaving noise on the paper."""
    if ink_weight < 0:
        raise ValueError(f"ink_weight must be >= 0, got {ink_weight}")
    weight = 1.0 + ink_weight * (1.0 - target) / 2.0
    return (weight * (fake - target).abs()).mean()


def generate_whole(g: nn.Module, image: np.ndarray) -> torch.Tensor:
    """``g`` on a whole ``(H, W) uint8`` crop (padded, edge replicate, to a multiple of 4 and cropped
    back), with the inference's remove-only rule ``max(out, input)`` -> ``(1, H, W)`` in [-1, 1]."""
    h, w = image.shape
    x = to_tensor(cv2.copyMakeBorder(image, 0, -h % 4, 0, -w % 4, cv2.BORDER_REPLICATE)[None])
    return torch.maximum(g(x)[0, :, :h, :w], x[0, :, :h, :w])


def lr_factor(step: int, steps: int, decay_steps: int) -> float:
    """1 for ``step < steps``, then linear to 0 at ``steps + decay_steps``."""
    return 1.0 if step < steps else max(0.0, 1.0 - (step - steps) / max(decay_steps, 1))


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, bool, str | None]:
    p = argparse.ArgumentParser(prog="python -m models.train_cyclegan", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    d = TrainConfig(out=Path("."))
    p.add_argument("--manifest", type=Path, default=d.manifest)
    p.add_argument("--detection", type=Path, default=d.detection, help="detection split with images/ labels/")
    p.add_argument("--generator", choices=sorted(GENERATORS), default=d.generator)
    for name in ("ndf", "batch_size", "steps", "decay_steps", "scale", "pool_size", "n_synthetic",
                 "n_clean", "monitor_writers", "eval_every", "seed", "threads", "feature_pairs"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name))
    for name in ("lr", "beta1", "lambda_cycle", "lambda_identity", "lambda_paired", "ink_weight", "lambda_feature",
                 "feature_clean_share", "synthetic_share", "minutes"):
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name))
    p.add_argument("--aligned-targets", action=argparse.BooleanOptionalAction, default=d.aligned_targets,
                   help="clean targets turned by the noise's own scanner rotation (default on)")
    p.add_argument("--init-from", type=Path, default=None, metavar="LAST_PT",
                   help="start the four networks from another run's last.pt (optimizers and step start fresh); "
                        "a narrower generator there is widened to --generator (models.widen)")
    p.add_argument("--feature-weights", type=Path, default=None, metavar="SAFETENSORS",
                   help="frozen SigNet of --lambda-feature (default: the shipped signet_default)")
    p.add_argument("--crop", type=int, nargs=2, default=list(d.crop), metavar=("H", "W"))
    p.add_argument("--extra-pairs", nargs="*", default=[], metavar="KINDS=N",
                   help="add N synthetic pairs noised with only these kinds ('+'-joined NOISE_KINDS), e.g. "
                        "scan=600 stamp+scan=600: more of what the random mix under-serves (own seed stream)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.add_argument("--export", default=None, metavar="NAME",
                   help="after training, ship best.pt as models/weights/cyclegan_<NAME>.safetensors")
    a = p.parse_args(argv)
    if a.crop[0] % 4 or a.crop[1] % 4:
        p.error(f"--crop must be multiples of 4, got {a.crop}")
    try:
        extra = parse_extra_pairs(a.extra_pairs)
    except ValueError as e:
        p.error(str(e))
    kw = {k: getattr(a, k) for k in TrainConfig.__dataclass_fields__ if k not in ("crop", "extra_pairs")}
    return TrainConfig(**kw, crop=(a.crop[0], a.crop[1]), extra_pairs=extra), a.resume, a.export


def parse_extra_pairs(items: list[str]) -> dict[str, int]:
    """``["scan=600", "stamp+scan=400"]`` -> ``{"scan": 600, "stamp+scan": 400}``; kinds must be
    ``NOISE_KINDS``, counts positive."""
    out: dict[str, int] = {}
    for item in items:
        kinds, sep, n = item.partition("=")
        unknown = [k for k in kinds.split("+") if k not in NOISE_KINDS]
        if not sep or not kinds or unknown or not n.isdigit() or int(n) < 1:
            raise ValueError(f"--extra-pairs wants KINDS=N with KINDS '+'-joined from {NOISE_KINDS} "
                             f"and N >= 1, got {item!r}")
        out[kinds] = int(n)
    return out


def build_data(cfg: TrainConfig) -> tuple[CleaningData, list[np.ndarray], list[np.ndarray], dict]:
    """Training data plus a fixed monitor set (noisy, clean) of held-out training writers."""
    rng = np.random.default_rng([cfg.seed, 12345])
    samples = read_manifest(cfg.manifest)
    train_w, val_w, source = training_writers(samples, WEIGHTS_DIR / "signet_default.json")
    perm = [train_w[i] for i in rng.permutation(len(train_w))]
    monitor_w, fit_w = sorted(perm[:cfg.monitor_writers]), sorted(perm[cfg.monitor_writers:])
    clean = load_clean(cfg.manifest, fit_w, cfg.scale, cfg.n_clean, rng)
    real = real_noisy_crops(cfg.detection, cfg.scale)
    syn_noisy, syn_clean = synthetic_pairs(clean, cfg.n_synthetic, rng, aligned=cfg.aligned_targets)
    mon_clean = load_clean(cfg.manifest, monitor_w, cfg.scale, 48, rng)
    mon_noisy, mon_clean = map(list, zip(*(noisy_pair(c, rng, cfg.aligned_targets) for c in mon_clean), strict=True))
    extra_rng = np.random.default_rng([cfg.seed, 54321])  # own stream: the base pairs stay as they were
    for kinds, n in cfg.extra_pairs.items():
        x, t = synthetic_pairs(clean, n, extra_rng, aligned=cfg.aligned_targets, kinds=kinds.split("+"))
        syn_noisy += x
        syn_clean += t
    data = CleaningData(real, syn_noisy, syn_clean, clean, cfg.crop, cfg.batch_size, cfg.synthetic_share, cfg.seed)
    info = {"split_source": source, "n_train_writers": len(fit_w), "monitor_writers": monitor_w,
            "n_val_writers_excluded": len(val_w), "n_clean": len(clean), "n_real_noisy": len(real),
            "n_synthetic_pairs": len(syn_noisy), "extra_pairs": dict(cfg.extra_pairs)}
    return data, mon_noisy, mon_clean, info


def init_state(state: dict[str, torch.Tensor], net: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """``state`` for ``net``; a narrower generator's state is widened to ``net``'s width first
    (``models.widen``: the same function, seeded noise on the copies) so a wider generator can
    start from a trained narrow one."""
    if isinstance(net, ResnetGenerator) and generator_ngf(state) < net.ngf:
        return widen_generator_state(state, net.ngf, seed=seed)
    return state


def train(cfg: TrainConfig, resume: bool) -> Path:
    """Run (or resume) training; returns the path of ``best.pt``."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    cfg.out.mkdir(parents=True, exist_ok=True)
    data, mon_noisy, mon_clean, info = build_data(cfg)
    (cfg.out / "config.json").write_text(json.dumps({"config": cfg.to_json(), "data": info}, indent=1) + "\n")
    g_ab, g_ba = (init_weights(build_generator(cfg.generator), seed=cfg.seed + i) for i in (0, 1))
    d_a, d_b = (init_weights(build_discriminator(ndf=cfg.ndf), seed=cfg.seed + i) for i in (2, 3))
    opt_g = torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], lr=cfg.lr, betas=(cfg.beta1, 0.999))
    pool_a, pool_b = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)
    nets = {"g_ab": g_ab, "g_ba": g_ba, "d_a": d_a, "d_b": d_b}
    feature, usable, geometries = None, [], []
    if cfg.lambda_feature > 0:
        feature = FeatureLoss(load_embedder(cfg.feature_weights)[0])
        geometries = [ink_geometry(t) for t in data.syn_clean]
        usable = [i for i, g in enumerate(geometries) if g is not None]
        if not usable:
            raise ValueError("--lambda-feature needs synthetic pairs whose clean target has ink; none has")
        log.info("feature loss: frozen %s, %d of %d synthetic pairs usable", cfg.feature_weights or "signet_default",
                 len(usable), len(geometries))
    start, best = 0, -np.inf
    if cfg.init_from is not None:
        ck = torch.load(cfg.init_from, weights_only=True)
        for k, net in nets.items():
            net.load_state_dict(init_state(ck[k], net, cfg.seed))
        log.info("networks initialised from %s (step %s)", cfg.init_from, ck.get("step"))
    if resume and (cfg.out / "last.pt").is_file():
        ck = torch.load(cfg.out / "last.pt", weights_only=True)
        for k, net in nets.items():
            net.load_state_dict(ck[k])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        pool_a.images, pool_b.images = list(ck["pool_a"]), list(ck["pool_b"])
        start, best = int(ck["step"]), float(ck["best_psnr"])
        log.info("resumed at step %d (best monitor PSNR %.2f)", start, best)
    total, t0 = cfg.steps + cfg.decay_steps, time.time()
    l1 = nn.L1Loss()
    for step in range(start, total):
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, cfg.steps, cfg.decay_steps)
        a_np, b_np, pc_np, syn = data.batch(step)
        real_a, real_b, paired = to_tensor(a_np), to_tensor(b_np), to_tensor(pc_np)
        rng = np.random.default_rng([cfg.seed, step, 7])
        # generators: LSGAN adversarial + cycle + identity (+ paired L1)
        for d in (d_a, d_b):
            d.requires_grad_(False)
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
        loss_gan = lsgan(d_b(fake_b), True) + lsgan(d_a(fake_a), True)  # ||D_B(G_A(a)) - 1||^2 + ||D_A(G_B(b)) - 1||^2
        loss_cyc = cfg.lambda_cycle * (l1(rec_a, real_a) + l1(rec_b, real_b))  # ||G_B(G_A(a)) - a||_1 + ||G_A(G_B(b)) - b||_1
        loss_idt = torch.zeros(())
        if cfg.lambda_identity > 0:  # identity: ||G_A(b) - b||_1 + ||G_B(a) - a||_1, weight 0.5 x lambda
            loss_idt = cfg.lambda_cycle * cfg.lambda_identity * (l1(g_ab(real_b), real_b) + l1(g_ba(real_a), real_a))
        loss_pair = torch.zeros(())
        if cfg.lambda_paired > 0 and syn.any():  # paired: ||G_A(a_syn) - b_syn||_1 on synthetic pairs
            m = torch.from_numpy(syn)
            loss_pair = cfg.lambda_paired * paired_l1(fake_b[m], paired[m], cfg.ink_weight)
        loss_feat = torch.zeros(())
        if feature is not None:  # verifier feature: ||E(pre(G_A(a_syn))) - E(pre(b_syn))|| on whole pairs
            frng = np.random.default_rng([cfg.seed, step, 11])
            pick = [usable[int(j)] for j in frng.integers(len(usable), size=cfg.feature_pairs)]
            clean_in = frng.random(cfg.feature_pairs) < cfg.feature_clean_share  # clean input: keep its embedding
            loss_feat = cfg.lambda_feature * feature([generate_whole(g_ab, (data.syn_clean if c else data.syn_a)[i])
                                                      for i, c in zip(pick, clean_in, strict=True)],
                                                     [to_tensor(data.syn_clean[i][None])[0] for i in pick],
                                                     [geometries[i] for i in pick], keys=pick)
        opt_g.zero_grad(set_to_none=True)
        (loss_gan + loss_cyc + loss_idt + loss_pair + loss_feat).backward()
        opt_g.step()
        # discriminators: 0.5 x (||D(real) - 1||^2 + ||D(pool(fake))||^2)
        for d in (d_a, d_b):
            d.requires_grad_(True)
        fb, fa = pool_b.query(fake_b, rng), pool_a.query(fake_a, rng)
        loss_d = 0.5 * (lsgan(d_b(real_b), True) + lsgan(d_b(fb), False)) + \
            0.5 * (lsgan(d_a(real_a), True) + lsgan(d_a(fa), False))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        done = step + 1
        out_of_time = cfg.minutes > 0 and time.time() - t0 > cfg.minutes * 60
        if done % cfg.eval_every == 0 or done == total or out_of_time:
            g_ab.eval()
            cleaned = clean_images(g_ab, mon_noisy, "cpu", max_side=None)
            g_ab.train()
            score = float(np.mean([psnr(c, t) for c, t in zip(cleaned, mon_clean, strict=True)]))
            rec = {"step": done, "lr": opt_g.param_groups[0]["lr"], "loss_gan": loss_gan.item(), "loss_cyc": loss_cyc.item(),
                   "loss_idt": loss_idt.item(), "loss_pair": loss_pair.item(), "loss_feat": loss_feat.item(),
                   "loss_d": loss_d.item(),
                   "monitor_psnr": score, "sec": round(time.time() - t0, 1)}
            log.info("%s", rec)
            with (cfg.out / "log.jsonl").open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            state = {k: net.state_dict() for k, net in nets.items()}
            if score > best:
                best = score
                torch.save({"g_ab": g_ab.state_dict(), "step": done, "monitor_psnr": score}, cfg.out / "best.pt")
            torch.save({**state, "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": done,
                        "best_psnr": best, "pool_a": pool_a.images, "pool_b": pool_b.images}, cfg.out / "last.pt")
        if out_of_time:
            log.info("time budget of %.1f min reached at step %d", cfg.minutes, done)
            break
    return cfg.out / "best.pt"


def export(cfg: TrainConfig, checkpoint: Path, name: str) -> Path:
    """Ship the A->B generator of ``checkpoint`` as ``models/weights/cyclegan_<name>.safetensors`` + card."""
    ck = torch.load(checkpoint, weights_only=True)
    model = build_generator(cfg.generator)
    model.load_state_dict(ck["g_ab"])
    info = json.loads((cfg.out / "config.json").read_text())
    card = {"arch": cfg.generator, "name": name, "model_version": f"cyclegan_{name}@step{ck['step']}",
            "direction": "A (noisy document crop) -> B (clean signature)", "input": "(H, W) uint8, ink dark",
            "max_side": cfg.scale, "remove_only": True, "upscale": "removal", "train": {**info, "checkpoint_step": int(ck["step"]),
                                              "monitor_psnr": float(ck["monitor_psnr"])}}
    return save_cleaner(model, card, default_cleaner_path(name))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg, resume, name = parse_args(argv)
    best = train(cfg, resume)
    if name:
        log.info("exported %s", export(cfg, best, name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
