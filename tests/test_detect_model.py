"""Tests of detector weights I/O and ``detect_batch`` (a tiny model with hand-set weights)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from models.detect import (
    detect_batch,
    detect_pages,
    detector_views,
    load_detector,
    prepare_views,
    save_detector,
    stack_views,
    view_sizes,
)
from models.detector import build_detector
from transforms.detection_prep import prepare_page


class InkCentres(nn.Module):
    """Hand-set detector: heatmap logit = 40 * (mean ink of each 4x4 cell) - 20; ltrb = 2 cells each way."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.Conv2d(1, 1, 4, stride=4, bias=True)
        with torch.no_grad():
            self.pool.weight.fill_(-40.0 / 16)  # ink is dark: 1 - x summed over the cell
            self.pool.bias.fill_(40.0 - 20.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        heat = self.pool(x)
        return torch.cat([heat, torch.full_like(heat, 2.0).repeat(1, 4, 1, 1)], dim=1)


CARD = {"arch": "centernet_s", "input_size": 64, "score_threshold": 0.5, "nms_iou": 0.5, "max_boxes": 20,
        "model_version": "test"}


def test_detect_batch_finds_the_hand_placed_ink() -> None:
    page = np.full((128, 128), 255, np.uint8)
    page[40:48, 80:88] = 0  # one 4x4 output cell (row 5, column 10) of a 64-pixel input
    empty = np.full((200, 150), 250, np.uint8)
    batch = np.stack([prepare_page(page, 64), prepare_page(empty, 64)])
    boxes = detect_batch(InkCentres().eval(), batch, CARD)
    assert len(boxes) == 2 and boxes[1] == []
    assert len(boxes[0]) == 1
    b = boxes[0][0]
    assert (b.x0, b.y0, b.x1, b.y1) == pytest.approx(((10.5 - 2) / 16, (5.5 - 2) / 16, (10.5 + 2) / 16, (5.5 + 2) / 16))
    assert b.score > 0.99


def test_detect_batch_threshold_override_and_empty_batch() -> None:
    page = np.full((64, 64), 255, np.uint8)
    page[0:4, 0:4] = 128  # half-strength ink: probability sigmoid(0) = 0.5
    batch = prepare_page(page, 64)[None]
    assert detect_batch(InkCentres(), batch, {**CARD, "score_threshold": 0.6}) == [[]]
    assert len(detect_batch(InkCentres(), batch, CARD, score_threshold=0.4)[0]) == 1
    assert detect_batch(InkCentres(), np.zeros((0, 64, 64), np.float32), CARD) == []


def test_detect_batch_rejects_wrong_sizes() -> None:
    with pytest.raises(ValueError, match=r"batch must be \(N, 64, 64\)"):
        detect_batch(InkCentres(), np.zeros((1, 32, 32), np.float32), CARD)


def _one_mark_page() -> np.ndarray:
    page = np.full((128, 128), 255, np.uint8)
    page[40:48, 80:88] = 0
    return page


def test_views_default_to_one_unflipped_input_size_and_are_checked() -> None:
    assert detector_views(CARD) == [(64, False, 0)] and view_sizes(CARD) == [64]
    card = {**CARD, "views": [[64, False], [96, True], [64, True]]}
    assert view_sizes(card) == [64, 96]
    inputs = prepare_views(_one_mark_page(), card)
    assert [x.shape for x in inputs] == [(64, 64), (96, 96)]
    assert [s.shape for s in stack_views([inputs, inputs])] == [(2, 64, 64), (2, 96, 96)]
    for bad in ([[65, False]], [[64, False], [64, False]], [[64]], [[64, False, -1]], [[64, False, 0, 1]]):
        with pytest.raises(ValueError, match="view"):
            detector_views({**CARD, "views": bad})
    with pytest.raises(ValueError, match=r"one stack per view size \[64, 96\]"):
        detect_batch(InkCentres(), stack_views([inputs])[:1], card)


def test_flipped_and_resized_views_fuse_onto_the_same_box() -> None:
    page = _one_mark_page()
    plain = detect_batch(InkCentres().eval(), prepare_page(page, 64)[None], CARD)[0]
    card = {**CARD, "views": [[64, False], [64, True], [128, False]], "score_threshold": 0.1}
    fused = detect_batch(InkCentres().eval(), stack_views([prepare_views(page, card)]), card)[0]
    assert len(plain) == 1
    # the 64-px view and its mirror agree; the 128-px view's boxes (2 cells there are half as wide) do not
    top = fused[0]
    assert (top.x0, top.y0, top.x1, top.y1) == pytest.approx((plain[0].x0, plain[0].y0, plain[0].x1, plain[0].y1))
    assert top.score == pytest.approx(2 / 3, abs=0.01)
    assert len(fused) > 1 and all(b.score <= 1 / 3 + 1e-6 for b in fused[1:])


def test_a_mirrored_view_maps_its_box_back_to_the_page() -> None:
    page = _one_mark_page()
    card = {**CARD, "views": [[64, True]]}
    mirrored = detect_batch(InkCentres().eval(), stack_views([prepare_views(page, card)]), card)[0]
    plain = detect_batch(InkCentres().eval(), prepare_page(page, 64)[None], CARD)[0]
    assert len(mirrored) == len(plain) == 1
    assert (mirrored[0].x0, mirrored[0].y0, mirrored[0].x1, mirrored[0].y1) == \
        pytest.approx((plain[0].x0, plain[0].y0, plain[0].x1, plain[0].y1))


def test_detect_pages_chunks_whole_pages_like_one_batch() -> None:
    card = {**CARD, "views": [[64, False], [64, True]]}
    pages = [_one_mark_page(), np.full((90, 70), 255, np.uint8), _one_mark_page()[:, ::-1].copy()]
    whole = detect_batch(InkCentres().eval(), stack_views([prepare_views(p, card) for p in pages]), card)
    assert detect_pages(InkCentres().eval(), pages, card, batch_size=2) == whole
    assert len(whole) == 3 and whole[1] == [] and whole[0] and whole[2]
    with pytest.raises(ValueError, match="batch size"):
        detect_pages(InkCentres(), pages, card, batch_size=0)


def test_box_scale_shrinks_about_the_centre() -> None:
    batch = prepare_page(_one_mark_page(), 64)[None]
    plain = detect_batch(InkCentres().eval(), batch, CARD)[0][0]
    scaled = detect_batch(InkCentres().eval(), batch, {**CARD, "box_scale": [0.5, 0.8]})[0][0]
    assert (scaled.x1 - scaled.x0) == pytest.approx(0.5 * (plain.x1 - plain.x0))
    assert (scaled.y1 - scaled.y0) == pytest.approx(0.8 * (plain.y1 - plain.y0))
    assert scaled.x0 + scaled.x1 == pytest.approx(plain.x0 + plain.x1)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_detector("centernet_s").eval()
    path = save_detector(model, CARD, tmp_path / "det.safetensors")
    loaded, card = load_detector(path)
    assert card == CARD and not loaded.training
    x = torch.rand(1, 1, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), loaded(x))
    batch = np.random.default_rng(0).random((2, 64, 64), dtype=np.float32)
    # load_detector keeps the weights channels-last (faster on CPU): the other layout sums in another order
    # (1e-6), which reorders this untrained net's near-tied scores, so compare like with like.
    model.to(memory_format=torch.channels_last)
    conv = next(m for m in loaded.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)
                and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    assert detect_batch(model, batch, card, score_threshold=0.0) == detect_batch(loaded, batch, card, score_threshold=0.0)


def test_save_rejects_incomplete_card(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lacks keys"):
        save_detector(build_detector("centernet_s"), {"arch": "centernet_s"}, tmp_path / "d.safetensors")


def test_load_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        load_detector(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match=".safetensors"):
        load_detector(tmp_path / "weights.pt")
    path = save_detector(build_detector("centernet_s"), CARD, tmp_path / "d.safetensors")
    path.with_suffix(".json").write_text(json.dumps({"arch": "centernet_s"}))
    with pytest.raises(ValueError, match="lacks keys"):
        load_detector(path)
