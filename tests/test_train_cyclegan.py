"""CycleGAN training pieces: LSGAN loss, learning-rate schedule, image pool, CLI config."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.train_cyclegan import ImagePool, lr_factor, lsgan, parse_args


def test_lsgan():
    assert float(lsgan(torch.ones(3), True)) == 0.0
    assert float(lsgan(torch.zeros(3), False)) == 0.0
    assert float(lsgan(torch.full((2,), 0.5), True)) == pytest.approx(0.25)


def test_lr_constant_then_linear():
    assert lr_factor(0, 10, 10) == 1.0 and lr_factor(9, 10, 10) == 1.0
    assert lr_factor(15, 10, 10) == pytest.approx(0.5) and lr_factor(25, 10, 10) == 0.0


def test_image_pool_fills_then_swaps():
    pool = ImagePool(2)
    rng = np.random.default_rng(0)
    x = torch.arange(2.0).view(2, 1, 1, 1)
    assert torch.equal(pool.query(x, rng), x) and len(pool.images) == 2
    outs = torch.cat([pool.query(torch.full((1, 1, 1, 1), 9.0), rng) for _ in range(20)])
    assert {float(v) for v in outs.flatten()} <= {0.0, 1.0, 9.0} and len(pool.images) == 2
    assert torch.equal(ImagePool(0).query(x, rng), x)


def test_parse_args(tmp_path):
    cfg, resume, name = parse_args(["--out", str(tmp_path), "--crop", "64", "128", "--lambda-paired", "0", "--resume"])
    assert cfg.crop == (64, 128) and cfg.lambda_paired == 0.0 and resume and name is None
    assert cfg.to_json()["out"] == str(tmp_path)
    with pytest.raises(SystemExit):
        parse_args(["--out", str(tmp_path), "--crop", "63", "128"])


def test_paired_l1_ink_weight():
    from models.train_cyclegan import paired_l1
    target = torch.tensor([[-1.0, 1.0]])  # one ink pixel, one paper pixel
    erase_ink, keep_noise = torch.tensor([[1.0, 1.0]]), torch.tensor([[-1.0, -1.0]])
    assert float(paired_l1(erase_ink, target)) == pytest.approx(float(paired_l1(keep_noise, target)))
    assert float(paired_l1(erase_ink, target, 4.0)) == pytest.approx(5.0)  # (5 x 2 + 1 x 0) / 2
    assert float(paired_l1(keep_noise, target, 4.0)) == pytest.approx(1.0)  # paper pixels keep weight 1
    with pytest.raises(ValueError, match="ink_weight"):
        paired_l1(target, target, -1.0)
    cfg, _, _ = parse_args(["--out", "x", "--ink-weight", "4"])
    assert cfg.ink_weight == 4.0


def test_parse_feature_loss_flags(tmp_path):
    cfg, _, _ = parse_args(["--out", str(tmp_path), "--lambda-feature", "50", "--feature-pairs", "4",
                            "--feature-clean-share", "0.5", "--feature-weights", "w.safetensors"])
    assert (cfg.lambda_feature, cfg.feature_pairs, cfg.feature_clean_share) == (50.0, 4, 0.5)
    assert cfg.to_json()["feature_weights"] == "w.safetensors"
    assert parse_args(["--out", str(tmp_path)])[0].lambda_feature == 0.0  # off unless asked for


def test_parse_extra_pairs(tmp_path):
    cfg, _, _ = parse_args(["--out", str(tmp_path), "--extra-pairs", "scan=600", "stamp+scan=40"])
    assert cfg.extra_pairs == {"scan": 600, "stamp+scan": 40}
    assert cfg.to_json()["extra_pairs"] == {"scan": 600, "stamp+scan": 40}
    assert parse_args(["--out", str(tmp_path)])[0].extra_pairs == {}
    for bad in ("scan", "glitter=5", "scan=0", "=5", "stamp+=3"):
        with pytest.raises(SystemExit):
            parse_args(["--out", str(tmp_path), "--extra-pairs", bad])


def test_synthetic_pairs_with_only_some_kinds():
    from models.cleaning_data import synthetic_pairs
    clean = [np.full((40, 90), 255, np.uint8)]
    clean[0][18:22, 10:80] = 0
    noisy, targets = synthetic_pairs(clean, 3, np.random.default_rng(3), kinds=["line"])
    assert len(noisy) == len(targets) == 3
    for x, t in zip(noisy, targets, strict=True):
        assert np.array_equal(t, clean[0])  # no scanner noise asked for: no turn of the target
        assert (x <= t).all() and (x < t).any()  # a ruled line only adds ink
    noisy, targets = synthetic_pairs(clean, 3, np.random.default_rng(3))  # the random mix: turns and lightens
    assert any(not np.array_equal(t, clean[0]) or (x > t).any() for x, t in zip(noisy, targets, strict=True))
