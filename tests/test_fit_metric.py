"""Column weights of the conv4 reading learned on training writers (models.fit_metric, models.signet.WeightedEnsemble)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models import metrics
from models.attach_hog import with_hog
from models.attach_pooled import pooled_from
from models.data import Sample, read_manifest
from models.fit_metric import (
    GENUINE,
    RANDOM,
    SKILLED,
    Pairs,
    column_groups,
    dichotomy_pairs,
    fit_group_weights,
    main,
    weighted_model,
)
from models.signet import build_embedder
from models.weights import load_embedder, save_embedder
from transforms.demo_corpus import write_signature_manifest


def _pooled() -> torch.nn.Module:
    torch.manual_seed(0)
    return pooled_from(with_hog(build_embedder("signet_s4x2").eval(), 0.5))


def test_column_groups_follow_the_channel_and_bin_layout():
    groups = column_groups(_pooled())
    assert groups.shape == (2 * 3072 + 288,) and groups.max() == 2 * 256 + 12 - 1
    assert list(groups[[0, 11, 12, 3071]]) == [0, 0, 1, 255]  # pooled columns: channel * 12 cells + cell
    assert list(groups[[3072, 6143]]) == [256, 511]
    assert list(groups[[6144, 6145, 6144 + 11, 6144 + 12]]) == [512, 513, 523, 512]  # histogram: cell * 12 bins + bin
    with pytest.raises(ValueError, match="only PooledConv and GradientHistogram"):
        column_groups(build_embedder("signet_s4x2"))


def _sample(signer: str, label: str, i: int) -> Sample:
    return Sample(Path(f"/x/{signer}/{label}{i}.png"), f"{signer}/{label}{i}.png", signer, label)


def test_dichotomy_pairs_compare_queries_forgeries_and_impostors_with_the_reference_mean():
    samples = [_sample(w, "genuine", i) for w in "ab" for i in range(4)] + [_sample("a", "forged", 0)]
    emb = np.zeros((9, 3), np.float32)
    emb[4:8] = [1.0, 1.0, 1.0]  # signer b's genuine images
    emb[8] = [3.0, 4.0, 0.0]  # signer a's forgery
    pairs = dichotomy_pairs(samples, emb, np.array([0, 1, 1]), k=2, draws=3, random_per_draw=1, seed=0)
    assert pairs.features.shape == (3 * (2 + 1 + 1) + 3 * (2 + 1), 2)
    assert np.sum(pairs.kind == GENUINE) == 12 and np.sum(pairs.kind == SKILLED) == 3 and np.sum(pairs.kind == RANDOM) == 6
    assert np.all(pairs.features[pairs.kind == GENUINE] == 0)  # every genuine image of a signer is the same here
    assert np.allclose(pairs.features[pairs.kind == SKILLED], [9.0, 16.0])
    assert np.allclose(pairs.features[pairs.kind == RANDOM], [1.0, 2.0])  # a <-> b: (1)^2 and (1)^2 + (1)^2
    with pytest.raises(ValueError, match="column groups"):
        dichotomy_pairs(samples, emb, np.array([0, 1]), 2, 1, 1, 0)
    with pytest.raises(ValueError, match="draws >= 1"):
        dichotomy_pairs(samples, emb, np.array([0, 1, 1]), 2, 0, 1, 0)


def _synthetic_pairs(n: int = 400, seed: int = 0) -> Pairs:
    """Group 0 is noise for both classes; group 1 is larger for forgeries."""
    rng = np.random.default_rng(seed)
    kind = np.array([GENUINE] * n + [SKILLED] * n + [RANDOM] * n)
    noise = rng.gamma(2.0, 1.0, size=(3 * n, 1)) * 4
    signal = rng.gamma(2.0, 1.0, size=(3 * n, 1)) * np.where(kind == GENUINE, 1.0, 2.5)[:, None]
    return Pairs(np.hstack([noise, signal]), kind)


def test_fit_group_weights_weighs_the_group_that_separates_forgeries():
    pairs = _synthetic_pairs()
    w = fit_group_weights(pairs, shrinkage=0.01)
    assert w[1] > 2 * w[0]
    score = pairs.features
    gen, forged = pairs.kind == GENUINE, pairs.kind != GENUINE
    plain = metrics.eer(score.sum(1)[gen], score.sum(1)[forged])
    weighted = metrics.eer((score @ w)[gen], (score @ w)[forged])
    assert weighted < plain - 0.05
    held = np.exp(np.abs(np.log(fit_group_weights(pairs, shrinkage=1e4))))
    assert np.all(held < 1.05)  # a strong pull keeps the plain distance
    with pytest.raises(ValueError, match="no forged pairs"):
        fit_group_weights(Pairs(pairs.features[:10], pairs.kind[:10]), 0.1)
    with pytest.raises(ValueError, match="shrinkage"):
        fit_group_weights(pairs, -1.0)


def test_weighted_model_scales_each_column_and_round_trips(tmp_path):
    source = _pooled()
    w = np.random.default_rng(0).uniform(0.2, 3.0, size=2 * 3072 + 288)
    model = weighted_model(source, "signet_s4x2_pool_hog_metric", w)
    x = torch.rand(2, 1, 155, 220)
    with torch.no_grad():
        expected = source(x) * torch.as_tensor(np.sqrt(w), dtype=torch.float32)
        assert torch.allclose(model(x), expected, atol=1e-5)
        loaded, _ = load_embedder(save_embedder(model, {"arch": "signet_s4x2_pool_hog_metric"}, tmp_path / "m.safetensors"))
        assert torch.allclose(loaded(x), expected, atol=1e-5)
    with pytest.raises(ValueError, match="expected \\(6432,\\)"):
        weighted_model(source, "signet_s4x2_pool_hog_metric", w[:10])
    with pytest.raises(ValueError, match=">= 0"):
        weighted_model(source, "signet_s4x2_pool_hog_metric", -w)


def test_fit_metric_cli_writes_a_loadable_card(tmp_path):
    manifest = write_signature_manifest(tmp_path / "data", n_writers=4, n_genuine=5, n_forged=2, height=50)
    writers = sorted({s.writer for s in read_manifest(manifest)})
    base = save_embedder(_pooled(), {"arch": "signet_s4x2_pool_hog", "model_version": "signet_s4x2_pool_hog-test",
                                     "storage_dtype": "float16", "score": "plain",
                                     "data": {"manifest": str(manifest), "train_writers": writers},
                                     "validation": {"references_per_writer": 2}},
                         tmp_path / "base.safetensors", torch.float16)
    out = tmp_path / "metric.safetensors"
    assert main(["--weights", str(base), "--out", str(out), "--draws", "2", "--random-per-draw", "2"]) == 0
    model, card = load_embedder(out)
    section = card["metric_weights"]
    assert card["arch"] == "signet_s4x2_pool_hog_metric" and section["n_groups"] == 524
    assert section["source_model_version"] == "signet_s4x2_pool_hog-test" and section["pairs"]["skilled"] == 4 * 2 * 2
    assert card["score"].startswith("plain; each column weighted")
    scale = model.dim_scale.numpy()
    assert scale.shape == (6432,) and np.all(scale > 0) and len(np.unique(scale[:12])) == 1  # one weight per channel
    with pytest.raises(SystemExit, match="expected 'signet_s4x2_pool_hog'"):
        main(["--weights", str(out), "--out", str(tmp_path / "again.safetensors")])
