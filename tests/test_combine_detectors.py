"""Detector ensembles and weight averages: combining members, running each view by its member, averaging
weights, the checks on the members."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.combine_detectors import average, check_members, combine, default_views, main
from models.detect import detect_batch, detect_pages, load_detector, prepare_views, save_detector, stack_views
from models.detector import DetectorEnsemble, build_detector

HOLDOUT = {"seed": 0, "config": {"upright": True}, "data": {"holdout_stems": ["a", "b"]}, "command": "train"}


def _member(seed: int, views: list, threshold: float = 0.3, training: dict | None = None) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(seed)
    model = build_detector("centernet_s")
    with torch.no_grad():  # a centre prior high enough that random pages give boxes
        model.head.out.bias[0] = 2.0
    card = {"arch": "centernet_s", "input_size": 64, "output_stride": 4, "preprocessing": "stretch",
            "score_threshold": threshold, "nms_iou": 0.5, "max_boxes": 20, "model_version": f"m{seed}",
            "views": views, "training": training or HOLDOUT}
    return model.eval(), card


def _pages(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (96, 80)).astype(np.uint8) for _ in range(n)]


def test_combined_card_runs_each_members_views(tmp_path: Path) -> None:
    members = [_member(1, [[64, False], [96, True]], 0.2), _member(2, [[64, False]], 0.4)]
    ensemble, card = combine(*zip(*members, strict=True))
    assert isinstance(ensemble, DetectorEnsemble) and card["arch"] == "centernet_sx2"
    assert card["views"] == [[64, False, 0], [96, True, 0], [64, False, 1]] == default_views([c for _, c in members])
    assert card["score_threshold"] == 0.3 and "box_scale" not in card
    assert card["training"]["data"]["holdout_stems"] == ["a", "b"]
    assert [m["model_version"] for m in card["members"]] == ["m1", "m2"]
    pages = _pages()
    # views naming one member give exactly that member's boxes
    for i, (model, member_card) in enumerate(members):
        only = {**card, "views": [[64, False, i]], "score_threshold": 0.05}
        alone = {**member_card, "views": [[64, False]], "score_threshold": 0.05}
        assert detect_pages(ensemble, pages, only) == detect_pages(model, pages, alone)
    # the fused ensemble differs from either member alone; saved and loaded (channels-last) it gives the same boxes
    fused = detect_pages(ensemble, pages, {**card, "score_threshold": 0.05})
    assert fused != detect_pages(members[0][0], pages, {**members[0][1], "score_threshold": 0.05})
    loaded, loaded_card = load_detector(save_detector(ensemble, card, tmp_path / "ens.safetensors"))
    again = detect_pages(loaded, pages, {**loaded_card, "score_threshold": 0.05})
    assert [len(p) for p in again] == [len(p) for p in fused]
    assert np.allclose([[b.x0, b.y0, b.x1, b.y1, b.score] for p in again for b in p],
                       [[b.x0, b.y0, b.x1, b.y1, b.score] for p in fused for b in p], atol=1e-4)


def test_views_must_name_an_existing_member() -> None:
    members = [_member(1, [[64, False]]), _member(2, [[64, False]])]
    with pytest.raises(ValueError, match="names member 2; there are 2"):
        combine(*zip(*members, strict=True), views=[[64, False, 0], [64, False, 2]])
    ensemble, card = combine(*zip(*members, strict=True))
    batch = stack_views([prepare_views(_pages(1)[0], card)])
    with pytest.raises(ValueError, match="names detector member 3, but the ensemble has 2 members"):
        detect_batch(ensemble, batch, {**card, "views": [[64, False, 3]]})
    with pytest.raises(ValueError, match="names detector member 1, but the detector is a single network"):
        detect_batch(members[0][0], batch, {**card, "views": [[64, False, 1]]})


def test_members_must_share_architecture_and_held_out_pages() -> None:
    a, b = _member(1, [[64, False]]), _member(2, [[64, False]])
    check_members([a[1], b[1]])
    with pytest.raises(ValueError, match="at least two"):
        check_members([a[1]])
    with pytest.raises(ValueError, match="differ in input_size"):
        check_members([a[1], {**b[1], "input_size": 96}])
    other = {**HOLDOUT, "data": {"holdout_stems": ["a", "c"]}}
    with pytest.raises(ValueError, match="different held-out train pages"):
        check_members([a[1], _member(2, [[64, False]], training=other)[1]])
    with pytest.raises(ValueError, match="names no held-out train pages"):
        check_members([a[1], _member(2, [[64, False]], training={"config": {}})[1]])


def test_cli_writes_a_loadable_ensemble(tmp_path: Path) -> None:
    paths = []
    for seed in (1, 2, 3):
        model, card = _member(seed, [[64, False]])
        paths.append(save_detector(model, card, tmp_path / f"m{seed}.safetensors"))
    out = tmp_path / "e.safetensors"
    assert main(["--weights", *map(str, paths), "--out", str(out), "--views", "64", "64f@1", "96@2"]) == 0
    model, card = load_detector(out)
    assert card["arch"] == "centernet_sx3" and card["views"] == [[64, False], [64, True, 1], [96, False, 2]]
    assert card["model_version"].startswith("detector-centernet_sx3-") and "--views 64 64f@1 96@2" in card["command"]
    assert len(detect_pages(model, _pages(2), card)) == 2
    with pytest.raises(SystemExit):
        main(["--weights", *map(str, paths), "--out", str(out), "--views", "64@x"])


def test_average_is_one_network_with_the_members_mean_weights(tmp_path: Path) -> None:
    members = [_member(1, [[64, False], [96, True]], 0.2), _member(2, [[64, False]], 0.4), _member(3, [[64, True]])]
    soup, card = average(*zip(*members, strict=True))
    assert card["arch"] == "centernet_s" and card["model_version"].startswith("detector-centernet_s-soup3-")
    assert card["views"] == [[64, False], [96, True]] and card["score_threshold"] == 0.3
    assert "box_scale" not in card and "soup" in card and [m["model_version"] for m in card["members"]] == ["m1", "m2", "m3"]
    states = [m.state_dict() for m, _ in members]
    for key, value in soup.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, sum(s[key] for s in states) / 3, atol=1e-6), key
        else:
            assert torch.equal(value, states[0][key]), key
    # not a member, and the same boxes once saved and loaded
    pages = _pages()
    low = {**card, "score_threshold": 0.05}
    boxes = detect_pages(soup, pages, low)
    assert boxes != detect_pages(members[0][0], pages, {**members[0][1], "score_threshold": 0.05})
    loaded, loaded_card = load_detector(save_detector(soup, card, tmp_path / "soup.safetensors"))
    assert loaded_card["views"] == card["views"]
    x = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # the network's maps (boxes of this random network tie in score)
        assert torch.allclose(loaded(x), soup(x), atol=1e-5)
    # the average of one network with itself is that network
    twin, _ = average([members[0][0], members[0][0]], [members[0][1], {**members[0][1], "model_version": "m1b"}])
    assert detect_pages(twin, pages, low) == detect_pages(members[0][0], pages, low)


def test_average_refuses_other_networks_and_member_views() -> None:
    a = _member(1, [[64, False]])
    other = build_detector("centernet_m").eval()
    with pytest.raises(ValueError, match="differ in arch"):
        average([a[0], other], [a[1], {**a[1], "arch": "centernet_m", "model_version": "big"}])
    with pytest.raises(ValueError, match="has other tensors than 'm1'"):
        average([a[0], other], [a[1], {**a[1], "model_version": "big"}])
    with pytest.raises(ValueError, match="names member 1, but an average is one network"):
        average([a[0], _member(2, [[64, False]])[0]], [a[1], a[1]], views=[[64, False, 1]])


def test_main_average_writes_a_soup(tmp_path: Path) -> None:
    paths = []
    for seed in (1, 2):
        model, card = _member(seed, [[64, False]])
        paths.append(save_detector(model, card, tmp_path / f"m{seed}.safetensors"))
    out = tmp_path / "soup.safetensors"
    assert main(["--weights", *map(str, paths), "--out", str(out), "--average"]) == 0
    model, card = load_detector(out)
    assert not isinstance(model, DetectorEnsemble) and card["command"].endswith("--average")
