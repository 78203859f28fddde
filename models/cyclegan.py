"""CycleGAN networks (Zhu et al. 2017; pytorch-CycleGAN-and-pix2pix ``models/networks.py``) for cleaning
signature crops, and the fully convolutional inference on ``(H, W) uint8`` crops (ink dark).

- ``ResnetGenerator``: reflection pad + 7x7 stem, two stride-2 downsamplings, ``n_blocks`` residual
  blocks, two transposed-conv upsamplings, 7x7 head, tanh; instance norm (no affine, no running stats).
- ``NLayerDiscriminator``: the 70x70 PatchGAN (``n_layers=3``), LSGAN output (no sigmoid).

Networks are built by name from ``GENERATORS`` / ``DISCRIMINATORS``; layers are named
(``nn.Sequential(OrderedDict(...))``) so weight keys stay stable. Images enter scaled to [-1, 1]
(``x / 127.5 - 1``), one channel.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MULTIPLE = 4  # two stride-2 downsamplings: sizes must be multiples of 4 for the output to match


@dataclass(frozen=True)
class GeneratorSpec:
    """ResnetGenerator hyper-parameters: base width ``ngf`` and ``n_blocks`` residual blocks."""

    ngf: int
    n_blocks: int


# the original (Zhu et al. 2017, 256x256 inputs) and compact CPU variants; the default is chosen by
# measurement (benchmarks/cleaning_throughput.py): >= 20 crops/s of 150x400 on 2 CPU cores.
GENERATORS: dict[str, GeneratorSpec] = {
    "resnet_9blocks": GeneratorSpec(ngf=64, n_blocks=9),
    "resnet_6blocks": GeneratorSpec(ngf=64, n_blocks=6),
    "resnet_6blocks_ngf20": GeneratorSpec(ngf=20, n_blocks=6),
    "resnet_6blocks_ngf16": GeneratorSpec(ngf=16, n_blocks=6),
    "resnet_6blocks_ngf12": GeneratorSpec(ngf=12, n_blocks=6),
    "resnet_6blocks_ngf8": GeneratorSpec(ngf=8, n_blocks=6),
    "resnet_4blocks_ngf8": GeneratorSpec(ngf=8, n_blocks=4),
}
DEFAULT_GENERATOR = "resnet_6blocks_ngf12"
DISCRIMINATORS: dict[str, int] = {"patchgan_70": 3}  # name -> n_layers


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """``x + conv-norm-relu-conv-norm(x)`` with reflection padding (no dropout)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(OrderedDict([
            ("pad1", nn.ReflectionPad2d(1)), ("conv1", nn.Conv2d(dim, dim, 3, bias=True)), ("norm1", _norm(dim)),
            ("relu1", nn.ReLU(True)),
            ("pad2", nn.ReflectionPad2d(1)), ("conv2", nn.Conv2d(dim, dim, 3, bias=True)), ("norm2", _norm(dim)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """``(N, 1, H, W)`` in [-1, 1] -> ``(N, 1, H, W)`` in [-1, 1]; H and W multiples of 4."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9, in_channels: int = 1, out_channels: int = 1) -> None:
        super().__init__()
        if ngf < 1 or n_blocks < 0:
            raise ValueError(f"ngf must be >= 1 and n_blocks >= 0, got ngf={ngf} n_blocks={n_blocks}")
        layers: list[tuple[str, nn.Module]] = [
            ("stem_pad", nn.ReflectionPad2d(3)), ("stem_conv", nn.Conv2d(in_channels, ngf, 7, bias=True)),
            ("stem_norm", _norm(ngf)), ("stem_relu", nn.ReLU(True)),
        ]
        for i in range(2):  # downsampling
            c = ngf * 2 ** i
            layers += [(f"down{i + 1}_conv", nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=True)),
                       (f"down{i + 1}_norm", _norm(2 * c)), (f"down{i + 1}_relu", nn.ReLU(True))]
        layers += [(f"res{i + 1}", ResnetBlock(ngf * 4)) for i in range(n_blocks)]
        for i in range(2):  # upsampling
            c = ngf * 2 ** (2 - i)
            layers += [(f"up{i + 1}_conv", nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1,
                                                              bias=True)),
                       (f"up{i + 1}_norm", _norm(c // 2)), (f"up{i + 1}_relu", nn.ReLU(True))]
        layers += [("head_pad", nn.ReflectionPad2d(3)), ("head_conv", nn.Conv2d(ngf, out_channels, 7)),
                   ("head_tanh", nn.Tanh())]
        self.model = nn.Sequential(OrderedDict(layers))
        self.ngf, self.n_blocks = ngf, n_blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % MULTIPLE or x.shape[-1] % MULTIPLE:
            raise ValueError(f"input height and width must be multiples of {MULTIPLE}, got {tuple(x.shape)}")
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """PatchGAN: ``(N, 1, H, W)`` -> ``(N, 1, H', W')`` real/fake scores (70x70 receptive field for
    ``n_layers=3``); LSGAN, so no sigmoid."""

    def __init__(self, ndf: int = 64, n_layers: int = 3, in_channels: int = 1) -> None:
        super().__init__()
        layers: list[tuple[str, nn.Module]] = [("conv0", nn.Conv2d(in_channels, ndf, 4, 2, 1)),
                                               ("relu0", nn.LeakyReLU(0.2, True))]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [(f"conv{n}", nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=True)),
                       (f"norm{n}", _norm(ndf * mult)), (f"relu{n}", nn.LeakyReLU(0.2, True))]
        layers.append(("out", nn.Conv2d(ndf * mult, 1, 4, 1, 1)))
        self.model = nn.Sequential(OrderedDict(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_generator(name: str) -> ResnetGenerator:
    """A generator from ``GENERATORS`` by name; ValueError on an unknown name."""
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}, expected one of {sorted(GENERATORS)}")
    spec = GENERATORS[name]
    return ResnetGenerator(ngf=spec.ngf, n_blocks=spec.n_blocks)


def build_discriminator(name: str = "patchgan_70", ndf: int = 64) -> NLayerDiscriminator:
    """A PatchGAN from ``DISCRIMINATORS`` by name; ValueError on an unknown name."""
    if name not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {name!r}, expected one of {sorted(DISCRIMINATORS)}")
    return NLayerDiscriminator(ndf=ndf, n_layers=DISCRIMINATORS[name])


def init_weights(net: nn.Module, gain: float = 0.02, seed: int | None = None) -> nn.Module:
    """Normal(0, gain) init of conv weights, zero biases (the reference 'normal' init)."""
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * gain)
                if m.bias is not None:
                    m.bias.zero_()
    return net


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W) uint8`` -> ``(N, 1, H, W) float32`` in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).float().div(127.5).sub(1.0).unsqueeze(1)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(N, 1, H, W)`` in [-1, 1] -> ``(N, H, W) uint8`` (CPU numpy)."""
    return ((x.detach().float().cpu()[:, 0] + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def padded_size(h: int, w: int, multiple: int = MULTIPLE, minimum: int = 8) -> tuple[int, int]:
    """Smallest ``(H', W') >= (h, w)`` that are multiples of ``multiple`` and at least ``minimum``
    (the bottleneck's reflection padding needs 2 px there)."""
    return max(minimum, -(-h // multiple) * multiple), max(minimum, -(-w // multiple) * multiple)


def clean_batch(model: nn.Module, images: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """Clean ``(N, H, W) uint8`` crops of one size (ink dark): pad to multiples of 4 by edge reflection
    (never resized), run the generator under ``inference_mode``, crop back -> ``(N, H, W) uint8``."""
    if not (isinstance(images, np.ndarray) and images.ndim == 3 and images.dtype == np.uint8):
        raise ValueError(f"images must be (N, H, W) uint8, got {getattr(images, 'shape', None)} "
                         f"{getattr(images, 'dtype', type(images))}")
    n, h, w = images.shape
    if n == 0:
        return images.copy()
    if h < 1 or w < 1:
        raise ValueError(f"images must be at least 1x1, got {h}x{w}")
    ph, pw = padded_size(h, w)
    x = to_tensor(images).to(device)
    if (ph, pw) != (h, w):
        mode = "reflect" if h > ph - h and w > pw - w else "replicate"
        x = F.pad(x, (0, pw - w, 0, ph - h), mode=mode)
    with torch.inference_mode():
        y = model(x)
    return to_uint8(y[:, :, :h, :w])


def clean_image(model: nn.Module, image: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """Clean one ``(H, W) uint8`` crop (ink dark) -> ``(H, W) uint8`` of the same size."""
    if not (isinstance(image, np.ndarray) and image.ndim == 2):
        raise ValueError(f"image must be (H, W) uint8, got {getattr(image, 'shape', None)}")
    return clean_batch(model, image[None], device)[0]


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad))


def layer_names(net: nn.Module) -> Sequence[str]:
    """Top-level layer names of a generator or discriminator (stable weight-key prefixes)."""
    return list(net.model._modules) if hasattr(net, "model") else []
