"""Tests of models.widen: a wider generator computes what the narrow one did, and can grow apart."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.cyclegan import ResnetGenerator, build_generator, init_weights
from models.train_cyclegan import init_state
from models.widen import channel_map, generator_ngf, widen_generator_state


def _narrow() -> ResnetGenerator:
    return init_weights(ResnetGenerator(ngf=4, n_blocks=2), seed=3).eval()


def test_channel_map_keeps_old_channels_first() -> None:
    m = channel_map(3, 7, np.random.default_rng(0))
    assert m[:3].tolist() == [0, 1, 2] and len(m) == 7 and m.max() < 3
    with pytest.raises(ValueError, match="widen"):
        channel_map(5, 4, np.random.default_rng(0))


def test_widening_without_noise_preserves_the_function() -> None:
    g = _narrow()
    with torch.no_grad():  # trained-looking weights: break the init's near-symmetry
        for p in g.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    wide = ResnetGenerator(ngf=7, n_blocks=2).eval()
    wide.load_state_dict(widen_generator_state(g.state_dict(), 7, seed=1, noise=0.0))
    x = torch.rand(2, 1, 24, 40) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(g(x), wide(x), atol=1e-5)
    assert generator_ngf(wide.state_dict()) == 7


def test_noise_moves_the_copies_a_little() -> None:
    g = _narrow()
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    wide = ResnetGenerator(ngf=8, n_blocks=2).eval()
    wide.load_state_dict(widen_generator_state(g.state_dict(), 8, seed=1, noise=0.01))
    with torch.no_grad():
        diff = (g(x) - wide(x)).abs()
    assert 0 < diff.max() < 0.2
    copies = wide.state_dict()["model.stem_conv.weight"]
    assert not torch.equal(copies[4:], copies[torch.as_tensor(channel_map(4, 8, np.random.default_rng([1, 1511]))[4:])])


def test_widen_rejects_narrowing_and_foreign_states() -> None:
    with pytest.raises(ValueError, match="new_ngf"):
        widen_generator_state(_narrow().state_dict(), 2)
    with pytest.raises(ValueError, match="stem_conv"):
        generator_ngf({"conv.weight": torch.zeros(1)})


def test_init_state_widens_only_a_narrower_generator() -> None:
    narrow = build_generator("resnet_6blocks_ngf8").state_dict()
    wide = build_generator("resnet_6blocks_ngf12")
    wide.load_state_dict(init_state(narrow, wide, seed=0))  # shapes match after widening
    same = build_generator("resnet_6blocks_ngf8")
    assert init_state(narrow, same, seed=0) is narrow
