"""Tests of the detector's page preprocessing, target encoding and box decoding."""
from __future__ import annotations

import numpy as np
import pytest

from transforms.boxes import Box, iou
from transforms.detection_prep import DEFAULT_INPUT_SIZE, decode_boxes, encode_targets, prepare_page


def test_prepare_page_stretches_to_square_float_in_unit_range() -> None:
    page = np.full((1754, 1240), 255, np.uint8)  # A4 at 150 dpi
    page[100:300, 100:400] = 0  # ink in the top-left corner
    out = prepare_page(page)
    assert out.shape == (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    s = DEFAULT_INPUT_SIZE
    ys, xs = np.nonzero(out < 0.5)
    # stretched, not letterboxed: normalized coordinates are kept on both axes
    assert abs(ys.min() / s - 100 / 1754) < 0.01 and abs(ys.max() / s - 300 / 1754) < 0.01
    assert abs(xs.min() / s - 100 / 1240) < 0.01 and abs(xs.max() / s - 400 / 1240) < 0.01


def test_prepare_page_upscales_small_pages() -> None:
    assert prepare_page(np.zeros((100, 80), np.uint8), 128).shape == (128, 128)


@pytest.mark.parametrize("bad", [np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), np.float32),
                                 np.zeros((1, 10), np.uint8), "page"])
def test_prepare_page_rejects_bad_pages(bad: object) -> None:
    with pytest.raises(ValueError, match="page must"):
        prepare_page(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [100, 32, 4096])
def test_prepare_page_rejects_bad_sizes(size: int) -> None:
    with pytest.raises(ValueError, match="size must be a multiple of 32"):
        prepare_page(np.zeros((64, 64), np.uint8), size)


def test_encode_targets_centre_weights_and_distances() -> None:
    box = Box(0.25, 0.5, 0.75, 0.625)  # cells x 8..24, y 16..20 on a 32x32 grid
    heat, ltrb, weight = encode_targets([box], 32, 32)
    assert heat.shape == (32, 32) and ltrb.shape == (4, 32, 32) and weight.shape == (32, 32)
    assert heat[18, 16] == 1.0 and (heat == 1.0).sum() == 1
    assert weight.sum() == pytest.approx(1.0) and weight[0, 0] == 0.0
    np.testing.assert_allclose(ltrb[:, 18, 16], [16.5 - 8, 18.5 - 16, 24 - 16.5, 20 - 18.5])
    assert heat[18, 16] > heat[18, 20] > heat[18, 26] and heat[18, 16] > heat[16, 16]


def test_encode_targets_without_boxes_is_empty() -> None:
    heat, ltrb, weight = encode_targets([], 8, 8)
    assert heat.max() == 0.0 and weight.max() == 0.0 and ltrb.shape == (4, 8, 8)


def test_encode_then_decode_round_trips_boxes() -> None:
    truth = [Box(0.1, 0.2, 0.4, 0.26), Box(0.5, 0.7, 0.9, 0.8), Box(0.05, 0.85, 0.2, 0.95)]
    heat, ltrb, _ = encode_targets(truth, 96, 96)
    decoded = decode_boxes(heat, ltrb, score_threshold=0.9)
    assert len(decoded) == 3
    for t in truth:
        assert max(iou(t, d) for d in decoded) > 0.97


def test_decode_hand_made_heatmap_gives_the_box() -> None:
    heat = np.zeros((16, 16), np.float32)
    heat[4, 8] = 0.8  # one peak at row 4, column 8
    heat[4, 9] = 0.6  # a neighbour, not a local maximum
    ltrb = np.zeros((4, 16, 16), np.float32)
    ltrb[:, 4, 8] = [2.5, 0.5, 1.5, 1.5]
    boxes = decode_boxes(heat, ltrb, score_threshold=0.3)
    assert len(boxes) == 1
    b = boxes[0]
    assert (b.x0, b.y0, b.x1, b.y1) == pytest.approx((6 / 16, 4 / 16, 10 / 16, 6 / 16))
    assert b.score == pytest.approx(0.8) and isinstance(b.x0, float)
    assert decode_boxes(heat, ltrb, score_threshold=0.9) == []


def test_decode_clips_to_the_page_and_caps_the_count() -> None:
    heat = np.zeros((8, 8), np.float32)
    ltrb = np.full((4, 8, 8), 0.4, np.float32)
    for k in range(4):
        heat[2 * k, 2 * k] = 0.5 + 0.1 * k
    ltrb[:, 0, 0] = 3.0  # runs off the top-left corner
    boxes = decode_boxes(heat, ltrb, score_threshold=0.1, max_boxes=3)
    assert [round(b.score, 2) for b in boxes] == [0.8, 0.7, 0.6]
    all_boxes = decode_boxes(heat, ltrb, score_threshold=0.1)
    corner = min(all_boxes, key=lambda b: b.score)
    assert corner.x0 == 0.0 and corner.y0 == 0.0


def test_decode_suppresses_overlapping_peaks() -> None:
    heat = np.zeros((16, 16), np.float32)
    heat[8, 4], heat[8, 7] = 0.9, 0.7  # two peaks, same large box
    ltrb = np.full((4, 16, 16), 5.0, np.float32)
    assert len(decode_boxes(heat, ltrb, 0.3, nms_iou=0.5)) == 1
    assert len(decode_boxes(heat, ltrb, 0.3, nms_iou=0.99)) == 2


@pytest.mark.parametrize(("heat", "ltrb", "kwargs", "match"), [
    (np.zeros((4, 4), np.float32), np.zeros((4, 4, 5), np.float32), {}, "heat must be"),
    (np.zeros((4, 4), np.float32), np.zeros((4, 4, 4), np.float32), {"score_threshold": 1.5}, "score_threshold"),
    (np.zeros((4, 4), np.float32), np.zeros((4, 4, 4), np.float32), {"max_boxes": 0}, "max_boxes"),
])
def test_decode_rejects_bad_arguments(heat: np.ndarray, ltrb: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        decode_boxes(heat, ltrb, **kwargs)


def test_fuse_boxes_averages_agreeing_views_and_discounts_lonely_boxes() -> None:
    from transforms.boxes import fuse_boxes, scale_boxes
    a, b = Box(0.10, 0.10, 0.30, 0.20, 0.8), Box(0.12, 0.10, 0.32, 0.20, 0.8)
    lonely = Box(0.6, 0.6, 0.7, 0.7, 0.9)
    fused = fuse_boxes([[a, lonely], [b]])
    assert len(fused) == 2
    assert fused[0].score == pytest.approx(0.8) and fused[0].x0 == pytest.approx(0.11)
    assert fused[1].score == pytest.approx(0.45) and fused[1].x0 == pytest.approx(0.6)
    assert fuse_boxes([[a], []])[0].score == pytest.approx(0.4)
    with pytest.raises(ValueError, match="at least one view"):
        fuse_boxes([])
    grown = scale_boxes([Box(0.8, 0.4, 0.96, 0.6, 0.5)], 1.5, 0.5)[0]
    assert (grown.x0, grown.x1, grown.y0, grown.y1) == pytest.approx((0.76, 1.0, 0.45, 0.55))
    with pytest.raises(ValueError, match="positive"):
        scale_boxes([a], 0.0, 1.0)


def test_fuse_boxes_at_the_page_edge_stays_on_the_page() -> None:
    """Six views' boxes all reaching the bottom edge: with these scores the normalized weights sum to
    1.0000000000000002, which made the fused box's y1 leave the page and fail the bounds check (seen on a
    valid page on an AMD EPYC machine)."""
    from transforms.boxes import fuse_boxes

    scores = [0.401, 0.152, 0.727, 0.535, 0.324, 0.496]
    views = [[Box(0.60 + 0.01 * i, 0.90, 0.98, 1.0, s)] for i, s in enumerate(scores)]
    fused = fuse_boxes(views)
    assert len(fused) == 1
    assert fused[0].y1 == 1.0 and fused[0].y0 == pytest.approx(0.90)
    assert 0.60 <= fused[0].x0 <= 0.65
