"""Tests of models.widen_detector: a wider detector that computes what the trained one computes."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from models.detector import DetectorSpec, build_detector
from models.widen_detector import detector_spec, main, widen_detector_state


def _trained_like(seed: int = 0) -> torch.nn.Module:
    """A centernet_m with non-trivial BatchNorm statistics (as after training), in eval mode."""
    torch.manual_seed(seed)
    model = build_detector("centernet_m")
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 1, 64, 64))
    return model.eval()


def test_widened_detector_computes_the_same_maps() -> None:
    model = _trained_like()
    state = widen_detector_state(model.state_dict(), detector_spec("centernet_m"), detector_spec("centernet_mw"),
                                 seed=0, noise=0.0)
    wide = build_detector("centernet_mw")
    wide.load_state_dict(state, strict=True)
    wide.eval()
    x = torch.rand(2, 1, 96, 128)
    with torch.no_grad():
        a, b = model(x), wide(x)
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    assert sum(p.numel() for p in wide.parameters()) > 1.9 * sum(p.numel() for p in model.parameters())


def test_noise_parts_the_copies_and_is_seeded() -> None:
    state = _trained_like().state_dict()
    old, new = detector_spec("centernet_m"), detector_spec("centernet_mw")
    a = widen_detector_state(state, old, new, seed=3, noise=0.01)
    b = widen_detector_state(state, old, new, seed=3, noise=0.01)
    c = widen_detector_state(state, old, new, seed=4, noise=0.01)
    key = "stage5.block2.conv.weight"
    assert torch.equal(a[key], b[key]) and not torch.equal(a[key], c[key])
    w = a["stage4.down.conv.weight"]  # the first 96 channels are the old ones, untouched
    assert torch.equal(w[:96], state["stage4.down.conv.weight"])
    assert w.shape[0] == 144


def test_only_growing_backbones_are_accepted() -> None:
    state = _trained_like().state_dict()
    m = detector_spec("centernet_m")
    with pytest.raises(ValueError, match="widths can only grow"):
        widen_detector_state(state, m, DetectorSpec((12, 24, 48, 64, 160), 32))
    with pytest.raises(ValueError, match="only the backbone widens: neck 32 -> 48"):
        widen_detector_state(state, m, DetectorSpec((12, 24, 48, 144, 240), 48))
    with pytest.raises(ValueError, match="unknown single detector 'centernet_mx2'"):
        detector_spec("centernet_mx2")
    with pytest.raises(ValueError, match=r"backbone widths \(12, 24, 48, 96, 160\), not the given architecture's \(8, 16"):
        widen_detector_state(state, detector_spec("centernet_s"), detector_spec("centernet_mw"))
    with pytest.raises(ValueError, match="not a CenterDetector state dict"):
        widen_detector_state({"model.stem_conv.weight": torch.zeros(1)}, m, detector_spec("centernet_mw"))


def test_cli_writes_a_loadable_wider_state(tmp_path: Path) -> None:
    src, out = tmp_path / "m.safetensors", tmp_path / "w" / "mw.safetensors"
    save_file({k: v.contiguous() for k, v in _trained_like().state_dict().items()}, str(src))
    assert main(["--weights", str(src), "--arch", "centernet_mw", "--out", str(out), "--noise", "0"]) == 0
    build_detector("centernet_mw").load_state_dict(load_file(str(out)), strict=True)
    with pytest.raises(SystemExit):
        main(["--weights", str(src), "--arch", "centernet_s", "--out", str(out)])
