"""Tests of the detector architectures."""
from __future__ import annotations

import pytest
import torch

from models.detector import DETECTORS, OUTPUT_CHANNELS, OUTPUT_STRIDE, build_detector


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_output_shape_and_positive_distances(name: str) -> None:
    torch.manual_seed(0)
    model = build_detector(name).eval()
    with torch.inference_mode():
        out = model(torch.rand(2, 1, 128, 96))
    assert out.shape == (2, OUTPUT_CHANNELS, 128 // OUTPUT_STRIDE, 96 // OUTPUT_STRIDE)
    assert bool((out[:, 1:] > 0).all())
    # a fresh head predicts a low centre probability everywhere (focal-loss prior)
    assert float(torch.sigmoid(out[:, 0]).max()) < 0.2


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_compact_with_stable_names(name: str) -> None:
    model = build_detector(name)
    assert sum(p.numel() for p in model.parameters()) < 2_000_000  # a few MB of float32
    keys = set(model.state_dict())
    assert "stem.conv.weight" in keys and "head.out.bias" in keys
    assert keys == set(build_detector(name).state_dict())


def test_unknown_name_raises() -> None:
    with pytest.raises(ValueError, match="unknown detector 'yolo'"):
        build_detector("yolo")


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (1, 1, 100, 64), (1, 64, 64)])
def test_bad_input_shape_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="divisible by 32"):
        build_detector("centernet_s")(torch.zeros(shape))


def test_gradients_reach_the_stem() -> None:
    model = build_detector("centernet_s")
    model(torch.rand(2, 1, 64, 64)).sum().backward()
    assert model.stem.conv.weight.grad is not None and float(model.stem.conv.weight.grad.abs().sum()) > 0
