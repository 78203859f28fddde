"""CycleGAN networks: shapes, odd sizes, parameter counts, stable layer names."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.cyclegan import (
    DEFAULT_GENERATOR,
    GENERATORS,
    build_discriminator,
    build_generator,
    clean_batch,
    clean_image,
    count_parameters,
    layer_names,
    padded_size,
    to_tensor,
    to_uint8,
)


def test_generator_keeps_shape_and_range():
    g = build_generator(DEFAULT_GENERATOR).eval()
    x = torch.rand(2, 1, 32, 48) * 2 - 1
    with torch.no_grad():
        y = g(x)
    assert y.shape == x.shape and float(y.abs().max()) <= 1.0


def test_generator_rejects_sizes_not_multiple_of_4():
    g = build_generator(DEFAULT_GENERATOR)
    with pytest.raises(ValueError, match="multiples of 4"):
        g(torch.zeros(1, 1, 30, 48))


@pytest.mark.parametrize("shape", [(37, 101), (13, 9), (40, 200), (1, 1)])
def test_clean_image_keeps_odd_and_wide_sizes(shape):
    g = build_generator("resnet_4blocks_ngf8").eval()
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = clean_image(g, img)
    assert out.shape == shape and out.dtype == np.uint8


def test_clean_batch_validates_input():
    g = build_generator("resnet_4blocks_ngf8").eval()
    with pytest.raises(ValueError, match="uint8"):
        clean_batch(g, np.zeros((1, 8, 8), np.float32))
    assert clean_batch(g, np.zeros((0, 8, 8), np.uint8)).shape == (0, 8, 8)


def test_parameter_counts():
    # ResnetGenerator(ngf=64, 9 blocks) of pytorch-CycleGAN-and-pix2pix has 11.378M parameters for RGB;
    # (11,378,179); one input and one output channel remove 2 x 2 x 49 x 64 weights and 2 biases
    assert count_parameters(build_generator("resnet_9blocks")) == 11_378_179 - 4 * 49 * 64 - 2
    assert count_parameters(build_generator(DEFAULT_GENERATOR)) < 500_000
    # the 70x70 PatchGAN with ndf 64: 2,764,737 parameters for RGB, 2 x 16 x 64 fewer on one channel
    assert count_parameters(build_discriminator()) == 2_764_737 - 2 * 16 * 64


def test_layer_names_are_stable():
    names = layer_names(build_generator("resnet_6blocks_ngf16"))
    assert names[:4] == ["stem_pad", "stem_conv", "stem_norm", "stem_relu"]
    assert "res6" in names and "res7" not in names and names[-1] == "head_tanh"
    keys = set(build_generator("resnet_6blocks_ngf16").state_dict())
    assert {"model.stem_conv.weight", "model.res1.block.conv1.weight", "model.up2_conv.weight",
            "model.head_conv.bias"} <= keys


def test_discriminator_patch_output():
    d = build_discriminator(ndf=8)
    out = d(torch.zeros(1, 1, 64, 128))
    assert out.shape == (1, 1, 6, 14)  # 70x70 patches: /8 then two 4x4 stride-1 convs


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="unknown generator"):
        build_generator("unet_256")
    with pytest.raises(ValueError, match="unknown discriminator"):
        build_discriminator("pixel")
    assert DEFAULT_GENERATOR in GENERATORS


def test_scaling_roundtrip_and_padded_size():
    img = np.arange(256, dtype=np.uint8).reshape(16, 16)
    x = to_tensor(img[None])
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    np.testing.assert_array_equal(to_uint8(x)[0], img)
    assert padded_size(37, 101) == (40, 104) and padded_size(40, 8) == (40, 8) and padded_size(1, 5) == (8, 8)
