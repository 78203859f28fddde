"""transforms.lines: ruled signature lines erased, crossing strokes and signatures without lines kept."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from transforms.lines import BAND, find_ruled_lines, remove_ruled_lines
from transforms.synth_signature import draw_signature, make_style


def _signature(seed: int = 0, height: int = 90) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return draw_signature(make_style(rng), rng, height=height)


def _on_a_line(sig: np.ndarray, paper: int = 245, thickness: int = 2, tilt: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """``(crop, line_only_mask, line_row)``: the signature on paper of level ``paper``, a ruled line
    across the whole crop at 70 % of its height (``tilt`` px lower at the right end)."""
    h, w = sig.shape
    page = np.full((h + 40, w + 60), paper, np.uint8)
    page[10:10 + h, 30:30 + w] = np.minimum(page[10:10 + h, 30:30 + w], sig)
    row = 10 + int(0.7 * h)
    line = np.zeros_like(page)
    cv2.line(line, (0, row), (page.shape[1] - 1, row + tilt), 255, thickness)
    page[line > 0] = 20
    return page, line > 0, row


def _sig_mask(sig: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[10:10 + sig.shape[0], 30:30 + sig.shape[1]] = sig < 128
    return m


@pytest.mark.parametrize("tilt", [0, 6])
def test_the_line_goes_and_the_signature_stays(tilt):
    sig = _signature()
    crop, line, _ = _on_a_line(sig, tilt=tilt)
    ink = _sig_mask(sig, crop.shape)
    out = remove_ruled_lines(crop)
    # the line is erased wherever no stroke comes near it (a stroke within BAND + 1 rows above or below
    # the line's band, one column either side, keeps the line's ink there with it)
    near = cv2.dilate(ink.astype(np.uint8), np.ones((4 * BAND + 3, 3), np.uint8)).astype(bool)
    line_only = line & ~near
    assert line_only.sum() > 0.3 * line.sum()  # the line crosses the signature: much of it is near strokes
    assert (out[line_only] >= 240).all()  # erased to the paper's level
    assert (out[line_only] <= 245).all()  # not whiter than the paper: no light stripe
    kept = (out[ink & ~line] < 128).mean()
    assert kept > 0.97, f"only {kept:.3f} of the signature's ink off the line kept"
    # where strokes cross the line, the crossing survives: ink remains in the line's rows
    crossing = ink & line
    assert crossing.any() and (out[crossing] < 128).mean() > 0.5


def test_a_crop_without_a_line_is_unchanged():
    sig = _signature(3)
    crop = np.full((sig.shape[0] + 20, sig.shape[1] + 20), 250, np.uint8)
    crop[10:-10, 10:-10] = sig
    np.testing.assert_array_equal(remove_ruled_lines(crop), crop)
    blank = np.full((60, 200), 240, np.uint8)
    np.testing.assert_array_equal(remove_ruled_lines(blank), blank)


def test_a_short_or_steep_line_is_not_a_ruled_line():
    crop = np.full((80, 300), 250, np.uint8)
    cv2.line(crop, (0, 40), (120, 40), 10, 2)  # 40 % of the width: a stroke, not a ruled line
    cv2.line(crop, (0, 10), (299, 70), 10, 2)  # slope 0.2: a flourish
    assert find_ruled_lines(crop < 128) == []
    np.testing.assert_array_equal(remove_ruled_lines(crop), crop)
    assert find_ruled_lines(crop < 128, min_length=0.3) != []  # the short one counts at a lower share


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="uint8"):
        remove_ruled_lines(np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError, match="min_length"):
        find_ruled_lines(np.zeros((10, 10), bool), min_length=0)


def test_a_straight_flourish_inside_the_crop_is_kept():
    """A signature file is cropped tight: its long straight underline ends inside the crop, where the
    signature line of a page crop runs out at a side."""
    sig = _signature(5)
    crop, _, row = _on_a_line(sig)
    inner = crop.copy()
    inner[row - 3:row + 4, :] = np.maximum(inner[row - 3:row + 4, :], 245)  # take the ruled line away
    cv2.line(inner, (25, row), (inner.shape[1] - 25, row - 4), 20, 2)  # a flourish of ~85 % of the width
    np.testing.assert_array_equal(remove_ruled_lines(inner), inner)


def test_bright_ink_on_a_dark_ground_is_handled_turned_round():
    sig = _signature(7)
    crop, line, _ = _on_a_line(sig)
    turned = 255 - crop
    np.testing.assert_array_equal(remove_ruled_lines(turned), 255 - remove_ruled_lines(crop))
    assert (remove_ruled_lines(turned)[line] <= 15).mean() > (turned[line] <= 15).mean() + 0.5  # to the dark ground
