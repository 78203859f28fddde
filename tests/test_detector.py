"""Tests of the detector architectures."""
from __future__ import annotations

import pytest
import torch

from models.detector import (
    DETECTORS,
    OUTPUT_CHANNELS,
    OUTPUT_STRIDE,
    SINGLE_DETECTORS,
    DetectorEnsemble,
    build_detector,
    ensemble_name,
)


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


@pytest.mark.parametrize("name", sorted(SINGLE_DETECTORS))
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


def test_ensembles_are_registered_by_name_and_keep_member_keys() -> None:
    assert ensemble_name("centernet_m", 2) == "centernet_mx2" and "centernet_sx3" in DETECTORS
    model = build_detector("centernet_mx3")
    assert isinstance(model, DetectorEnsemble) and len(model.members) == 3
    single = set(build_detector("centernet_m").state_dict())
    assert set(model.state_dict()) == {f"members.{i}.{k}" for i in range(3) for k in single}
    for bad in (("centernet_m", 4), ("centernet_mx2", 2), ("yolo", 2)):
        with pytest.raises(ValueError, match="no registered ensemble"):
            ensemble_name(*bad)


def test_ensemble_runs_the_member_it_is_asked_for() -> None:
    torch.manual_seed(0)
    model = build_detector("centernet_sx2").eval()
    x = torch.rand(1, 1, 64, 64)
    with torch.inference_mode():
        for i in range(2):
            assert torch.equal(model(x, i), model.members[i](x))
        assert not torch.equal(model(x, 0), model(x, 1))  # separately initialised members
    with pytest.raises(ValueError, match="member must be 0..1, got 2"):
        model(x, 2)
    with pytest.raises(ValueError, match="at least two members"):
        DetectorEnsemble([build_detector("centernet_s")])
