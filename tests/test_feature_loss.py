"""Verifier-feature loss of the cleaner: soft preprocessing close to the real one, differentiable."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.cyclegan import build_generator, to_tensor
from models.feature_loss import FeatureLoss, soft_preprocess
from models.signet import build_embedder
from models.train_cyclegan import generate_whole
from transforms.preprocess import INPUT_SIZE, ink_geometry, preprocess_signature
from transforms.synth_signature import draw_signature, make_style


def signature(seed: int = 0) -> np.ndarray:
    s = draw_signature(make_style(np.random.default_rng(seed)), np.random.default_rng(seed + 1), height=90)
    page = np.full((s.shape[0] + 30, s.shape[1] + 40), 255, np.uint8)
    page[15:15 + s.shape[0], 20:20 + s.shape[1]] = s
    return page


def test_soft_preprocess_is_close_to_the_real_one():
    img = signature()
    soft = soft_preprocess(to_tensor(img[None])[0], ink_geometry(img))
    hard = preprocess_signature(img)
    assert soft.shape == (1, *INPUT_SIZE)
    assert float(np.abs(soft[0].numpy() - hard).mean()) < 0.03
    assert float(np.corrcoef(soft[0].numpy().ravel(), hard.ravel())[0, 1]) > 0.9


def test_soft_preprocess_is_differentiable_and_checks_input():
    img = signature(3)
    x = to_tensor(img[None])[0].requires_grad_(True)
    soft_preprocess(x, ink_geometry(img)).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="outside"):
        soft_preprocess(x[:, :10, :10], ink_geometry(img))
    with pytest.raises(ValueError, match=r"\(1, H, W\)"):
        soft_preprocess(x[0], ink_geometry(img))


def test_feature_loss_zero_on_target_positive_on_noise_and_frozen():
    torch.manual_seed(0)
    loss = FeatureLoss(build_embedder("signet_s4"))
    loss.train()
    assert not loss.embedder.training and not any(p.requires_grad for p in loss.embedder.parameters())
    img = signature(5)
    t, g = to_tensor(img[None])[0], ink_geometry(img)
    assert float(loss([t], [t], [g])) == pytest.approx(0.0, abs=1e-5)
    noisy = img.copy()
    noisy[:, ::7] = 0  # dark vertical lines over the signature
    x = to_tensor(noisy[None])[0].requires_grad_(True)
    value = loss([x], [t], [g])
    value.backward()
    assert value.item() > 1e-3 and x.grad.abs().sum().item() > 0
    with pytest.raises(ValueError, match="matching"):
        loss([t], [], [g])


def test_generate_whole_keeps_size_and_only_lightens():
    torch.manual_seed(0)
    g = build_generator("resnet_6blocks_ngf12").eval()
    img = signature(7)[:, :101]  # a width that is not a multiple of 4
    out = generate_whole(g, img)
    assert out.shape == (1, *img.shape)
    assert bool((out >= to_tensor(img[None])[0] - 1e-6).all())


def test_feature_loss_caches_target_embeddings_by_key():
    torch.manual_seed(0)
    loss = FeatureLoss(build_embedder("signet_s4"))
    imgs = [signature(s) for s in (11, 13)]
    ts, gs = [to_tensor(i[None])[0] for i in imgs], [ink_geometry(i) for i in imgs]
    x = to_tensor(np.minimum(imgs[0], 128)[None])[0]
    plain = float(loss([x, ts[1]], ts, gs))
    assert float(loss([x, ts[1]], ts, gs, keys=[0, 1])) == pytest.approx(plain, rel=1e-5)
    calls = []
    hook = loss.embedder.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    assert float(loss([x, ts[1]], ts, gs, keys=[0, 1])) == pytest.approx(plain, rel=1e-5)
    assert calls == [2]  # only the cleaned batch went through the embedder; the targets came from the cache
    hook.remove()
    with pytest.raises(ValueError, match="one key per target"):
        loss([x], ts[:1], gs[:1], keys=[0, 1])
