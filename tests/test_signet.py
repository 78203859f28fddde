"""SigNet embedders: shapes, parameter counts, stable layer names, factory errors."""
from __future__ import annotations

import pytest
import torch

from models.signet import EMBEDDERS, build_embedder, count_parameters


def test_signet_s4_shapes_and_size():
    torch.manual_seed(0)
    model = build_embedder("signet_s4").eval()
    with torch.no_grad():
        out = model(torch.rand(3, 1, 155, 220))
    assert out.shape == (3, 128) and out.dtype == torch.float32
    assert model.embedding_dim == 128
    assert 6.3e6 < count_parameters(model) < 6.7e6  # the released variant: about 6.5 M


def test_signet_s4_layer_names_are_stable():
    keys = set(build_embedder("signet_s4").state_dict())
    for name in ("features.conv1.weight", "features.norm1.running_mean", "features.conv4.bias",
                 "head.fc1.weight", "head.fc2.weight"):
        assert name in keys


def test_signet_paper_table():
    model = build_embedder("signet").eval()
    kinds = {name: type(m).__name__ for name, m in model.features.named_children()}
    assert kinds["norm1"] == "LocalResponseNorm" and kinds["norm2"] == "LocalResponseNorm"
    assert model.features.conv1.stride == (1, 1) and model.features.conv1.kernel_size == (11, 11)
    assert model.features.conv2.out_channels == 256 and model.features.conv3.out_channels == 384
    assert model.head.fc1.out_features == 1024 and model.embedding_dim == 128
    # flatten size measured at construction: 155x220 -> conv1 145x210 -> pools 72x104, 35x51, 17x25
    assert model.head.fc1.in_features == 256 * 17 * 25


def test_dropout_only_in_training():
    torch.manual_seed(0)
    model = build_embedder("signet_s4").eval()
    x = torch.rand(2, 1, 155, 220)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_unknown_name_and_bad_input():
    with pytest.raises(ValueError, match="resnet"):
        build_embedder("resnet")
    assert {"signet", "signet_s4"} <= set(EMBEDDERS)
    with pytest.raises(ValueError, match="input must be"):
        build_embedder("signet_s4")(torch.rand(2, 155, 220))
