import cv2
import numpy as np
import pytest

from transforms.boxes import Box, iou
from transforms.orientation import _untilt_size, estimate_orientation, label_orientation, upright_page

SIZE = 384


def _text_page() -> tuple[np.ndarray, Box]:
    """A square page of printed lines with a wide dark 'signature' block, and that block's box."""
    page = np.full((SIZE, SIZE), 245, np.uint8)
    for i, y in enumerate(range(40, 300, 18)):
        cv2.putText(page, "The parties agree to the terms " + "x" * (i % 5), (30, y), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, 20, 1, cv2.LINE_AA)
    x0, y0, x1, y1 = 200, 320, 330, 345
    cv2.rectangle(page, (x0, y0), (x1, y1), 30, -1)
    return page, Box.from_pixels(x0, y0, x1 + 1, y1 + 1, SIZE, SIZE)


def _tilted(page: np.ndarray, box: Box, angle: float) -> tuple[np.ndarray, Box]:
    """``page`` rotated by ``angle`` degrees and the bounding box of the rotated ``box`` (as labels come)."""
    m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), angle, 1.0)
    out = cv2.warpAffine(page, m, (SIZE, SIZE), borderValue=245)
    corners = np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x0, box.y1], [box.x1, box.y1]]) * SIZE
    moved = corners @ m[:, :2].T + m[:, 2]
    (a, b), (c, d) = moved.min(axis=0), moved.max(axis=0)
    return out, Box.from_pixels(a, b, c, d, SIZE, SIZE)


@pytest.mark.parametrize("angle", [0.0, 6.0, -12.0])
def test_tilt_is_found_and_the_label_shrinks_back_to_the_signature(angle):
    page, truth = _text_page()
    tilted, label = _tilted(page, truth, angle)
    orientation = estimate_orientation(tilted)
    assert orientation.quarter_turns == 0
    assert orientation.angle == pytest.approx(-angle, abs=0.75)
    assert orientation.contrast > 1.5
    fixed, boxes = upright_page(tilted, [label], orientation)
    assert fixed.shape == tilted.shape and len(boxes) == 1
    assert iou(boxes[0], truth) > 0.8
    if angle:
        assert iou(label, truth) < 0.7  # the tilted label alone was far off: the fix matters


def test_quarter_turned_page_is_turned_back_to_horizontal_lines():
    page, truth = _text_page()
    turned = np.ascontiguousarray(np.rot90(page, 3))  # clockwise: lines run vertically
    label = Box(1.0 - truth.y1, truth.x0, 1.0 - truth.y0, truth.x1)  # (x, y) -> (1 - y, x)
    orientation = estimate_orientation(turned)
    assert orientation.quarter_turns == 1 and abs(orientation.angle) <= 0.75
    fixed, boxes = upright_page(turned, [label], orientation)
    np.testing.assert_array_equal(fixed[50:300, 50:300], page[50:300, 50:300])
    assert iou(boxes[0], truth) > 0.95


def test_untilt_keeps_near_square_boxes_and_inverts_the_tilt():
    w, h, angle = 100.0, 20.0, 10.0
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    assert _untilt_size(w * c + h * s, w * s + h * c, angle) == pytest.approx((w, h))
    side = 50.0 / (c + s)  # a tilted square's bounding box comes from a smaller square
    assert _untilt_size(50.0, 50.0, 10.0) == pytest.approx((side, side))
    assert _untilt_size(50.0, 10.0, 30.0) == (50.0, 10.0)  # too flat to be a tilted rectangle: kept
    assert _untilt_size(80.0, 30.0, 0.0) == pytest.approx((80.0, 30.0))


def test_bad_pages_are_named():
    with pytest.raises(ValueError, match="uint8"):
        estimate_orientation(np.zeros((20, 20), np.float32))
    with pytest.raises(ValueError, match="square"):
        upright_page(np.zeros((20, 30), np.uint8), [], estimate_orientation(np.full((20, 30), 200, np.uint8)))


def _sparse_turned_page() -> tuple[np.ndarray, Box]:
    """A page on its side whose few text lines mislead the profiles: vertical 'text' columns drawn as
    horizontal bars, a tall signature box (a wide signature turned by a quarter)."""
    page = np.full((SIZE, SIZE), 245, np.uint8)
    for y in range(40, 340, 12):  # dense horizontal rules: the row profile prefers "no turn"
        cv2.line(page, (20, y), (120, y), 30, 1)
    x0, y0, x1, y1 = 250, 60, 280, 250
    cv2.line(page, (265, y0), (265, y1), 30, 1)  # a thin stroke: little ink, as a signature has
    return page, Box.from_pixels(x0, y0, x1 + 1, y1 + 1, SIZE, SIZE)


def test_label_orientation_turns_pages_whose_signature_boxes_are_tall():
    page, box = _sparse_turned_page()
    assert estimate_orientation(page).quarter_turns == 0  # the text-line profiles alone get it wrong
    orientation = label_orientation(page, [box])
    assert orientation.quarter_turns == 1
    _, boxes = upright_page(page, [box], orientation)
    assert (boxes[0].x1 - boxes[0].x0) > 3 * (boxes[0].y1 - boxes[0].y0)  # the signature lies along the line now


def test_label_orientation_keeps_wide_boxes_and_falls_back_without_labels():
    page, box = _text_page()
    turned = np.ascontiguousarray(np.rot90(page))
    assert label_orientation(page, [box]).quarter_turns == 0
    assert label_orientation(turned, []) == estimate_orientation(turned)
    with pytest.raises(ValueError, match="quarter_turns"):
        estimate_orientation(page, quarter_turns=2)
