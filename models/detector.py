"""Compact signature detectors built from a name: a page in, a heatmap and box distances out.

Every detector maps ``(N, 1, S, S) float32`` pages (``transforms.detection_prep.prepare_page``: ink
dark, values in 0..1, S divisible by 32) to ``(N, 5, S/4, S/4) float32``:

- channel 0: centre heatmap logits (CenterNet, Zhou et al. 2019, arXiv 1904.07850; elliptical
  Gaussians as in TTFNet, Liu et al. 2019, arXiv 1909.00700);
- channels 1-4: distances from each output cell's centre to the box's left, top, right and bottom
  edges, in output cells, already positive (``exp`` of the raw head, TTFNet's ltrb regression).

``transforms.detection_prep.decode_boxes`` turns one page's output into boxes. The backbone is a
small FPN over plain 3x3 conv stages with a stride-4 head (plain convs trained about 3x faster than
depthwise-separable ones on this CPU for the same accuracy budget); layers are named through
``OrderedDict`` so safetensors keys stay stable.

- ``centernet_s``: widths 8-16-32-64-128, neck 24 (about 0.51 M parameters).
- ``centernet_m``: widths 12-24-48-96-160, neck 32 (about 0.90 M parameters).
- ``centernet_mw``: ``centernet_m`` with the two deep stages 1.5x wider, 12-24-48-144-240, neck 32 (about
  1.88 M parameters for about 1.2x the time per page): the shape ``models.widen_detector`` grows a trained
  ``centernet_m`` into.
- ``<arch>x2``, ``<arch>x3``: two or three separately trained detectors of one architecture in one
  file (:class:`DetectorEnsemble`, built by ``models.combine_detectors``); each test-time view of the
  card names the member that runs it and ``models.detect`` fuses the boxes of all views.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

OUTPUT_STRIDE = 4
OUTPUT_CHANNELS = 5
_HEAT_PRIOR = 0.01  # initial heatmap probability (focal-loss prior, Lin et al. 2017, Sec. 4.1)
_LTRB_INIT = 3.0    # initial edge distance in output cells


@dataclass(frozen=True)
class DetectorSpec:
    """Channel widths of the five stages (strides 2, 4, 8, 16, 32) and of the FPN neck."""

    widths: tuple[int, int, int, int, int]
    neck: int


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k // 2)
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=False)),
        ("bn", nn.BatchNorm2d(cout)),
        ("relu", nn.ReLU(inplace=True)),
    ]))


def _stage(cin: int, cout: int, blocks: int, dilations: tuple[int, ...] = ()) -> nn.Sequential:
    """A stride-2 3x3 conv then ``blocks - 1`` 3x3 convs (optionally dilated), all BatchNorm + ReLU."""
    layers: list[tuple[str, nn.Module]] = [("down", _conv_bn(cin, cout, stride=2))]
    for i in range(blocks - 1):
        layers.append((f"block{i + 1}", _conv_bn(cout, cout, dilation=dilations[i] if i < len(dilations) else 1)))
    return nn.Sequential(OrderedDict(layers))


class CenterDetector(nn.Module):
    """Stem + four conv stages, a top-down FPN back to stride 4, and a 5-channel head."""

    def __init__(self, spec: DetectorSpec) -> None:
        super().__init__()
        self.spec = spec
        w1, w2, w3, w4, w5 = spec.widths
        n = spec.neck
        self.stem = _conv_bn(1, w1, 3, stride=2)
        self.stage2 = _stage(w1, w2, 2)
        self.stage3 = _stage(w2, w3, 2)
        self.stage4 = _stage(w3, w4, 3)
        self.stage5 = _stage(w4, w5, 3, dilations=(2, 4))  # wide context: a signature spans much of a line
        self.lat5, self.lat4 = _conv_bn(w5, n, 1), _conv_bn(w4, n, 1)
        self.lat3, self.lat2 = _conv_bn(w3, n, 1), _conv_bn(w2, n, 1)
        self.smooth4, self.smooth3, self.smooth2 = _conv_bn(n, n), _conv_bn(n, n), _conv_bn(n, n)
        self.head = nn.Sequential(OrderedDict([
            ("body", _conv_bn(n, n)),
            ("out", nn.Conv2d(n, OUTPUT_CHANNELS, 1)),
        ]))
        with torch.no_grad():
            self.head.out.bias.zero_()
            self.head.out.bias[0] = -math.log((1 - _HEAT_PRIOR) / _HEAT_PRIOR)
            self.head.out.bias[1:] = math.log(_LTRB_INIT)
            self.head.out.weight[1:].mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, S, S)`` pages -> ``(N, 5, S/4, S/4)``: heatmap logits, then ltrb distances (cells)."""
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(f"input must be (N, 1, H, W) with H, W divisible by 32, got {tuple(x.shape)}")
        c2 = self.stage2(self.stem(x))
        c3 = self.stage3(c2)
        c4 = self.stage4(c3)
        c5 = self.stage5(c4)
        p = self.lat5(c5)
        p = self.smooth4(self.lat4(c4) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        p = self.smooth3(self.lat3(c3) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        p = self.smooth2(self.lat2(c2) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        out = self.head(p)
        return torch.cat([out[:, :1], torch.exp(out[:, 1:].clamp(max=6.0))], dim=1)


class DetectorEnsemble(nn.Module):
    """Several detectors of one architecture side by side; ``forward(x, member)`` runs one of them.

    Its state dict keys are the members' keys under ``members.<i>.``. ``models.detect.detect_batch``
    runs each card view through the member it names and fuses all views' boxes.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor, member: int = 0) -> torch.Tensor:
        """Member ``member``'s output for ``x`` (see :class:`CenterDetector`)."""
        if not 0 <= member < len(self.members):
            raise ValueError(f"member must be 0..{len(self.members) - 1}, got {member}")
        return self.members[member](x)


def _ensemble(base: Callable[[], nn.Module], n: int) -> DetectorEnsemble:
    return DetectorEnsemble([base() for _ in range(n)])


SINGLE_DETECTORS: dict[str, Callable[[], nn.Module]] = {
    "centernet_s": lambda: CenterDetector(DetectorSpec((8, 16, 32, 64, 128), 24)),
    "centernet_m": lambda: CenterDetector(DetectorSpec((12, 24, 48, 96, 160), 32)),
    "centernet_mw": lambda: CenterDetector(DetectorSpec((12, 24, 48, 144, 240), 32)),
}
ENSEMBLE_SIZES = (2, 3)
DETECTORS: dict[str, Callable[[], nn.Module]] = {
    **SINGLE_DETECTORS,
    **{f"{name}x{n}": partial(_ensemble, base, n) for name, base in SINGLE_DETECTORS.items() for n in ENSEMBLE_SIZES},
}


def ensemble_name(arch: str, n: int) -> str:
    """The registered name of ``n`` members of the single detector ``arch`` (e.g. ``centernet_mx2``)."""
    name = f"{arch}x{n}"
    if arch not in SINGLE_DETECTORS or name not in DETECTORS:
        raise ValueError(f"no registered ensemble of {n} {arch!r} detectors (known: {sorted(DETECTORS)})")
    return name


def build_detector(name: str) -> nn.Module:
    """A fresh (randomly initialised) detector of architecture ``name`` (a key of ``DETECTORS``)."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}, expected one of {sorted(DETECTORS)}")
    return DETECTORS[name]()
