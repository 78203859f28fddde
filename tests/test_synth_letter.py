"""Tests of the synthetic business letters used as detector training pages."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from transforms.synth_letter import make_letter_page


def _signature() -> np.ndarray:
    sig = np.full((70, 220), 255, np.uint8)
    cv2.putText(sig, "Jsmith", (5, 55), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.8, 0, 4)
    return sig


@pytest.mark.parametrize("seed", range(4))
def test_signatures_are_boxed_tightly_on_their_ink(seed: int) -> None:
    sig = _signature()
    page, boxes = make_letter_page(np.random.default_rng(seed), [sig, sig], dpi=90, marks=False)
    assert page.ndim == 2 and page.dtype == np.uint8
    assert page.shape[0] > page.shape[1]  # a portrait page
    assert len(boxes) == 2
    h, w = page.shape
    for b in boxes:
        assert 0.0 <= b.x0 < b.x1 <= 1.0 and 0.0 <= b.y0 < b.y1 <= 1.0
        assert b.y0 > 0.3  # below the letterhead, address and first paragraphs
        x0, y0, x1, y1 = b.to_pixels(w, h)
        assert 15 < y1 - y0 < 90  # at most 60 pt at 90 dpi (less where the line is too short for the width)
        assert page[y0:y1, x0:x1].min() < 120
    a, b = boxes
    assert a.x1 <= b.x0 or b.x1 <= a.x0  # the two signers sign side by side


def test_unsigned_letter_has_no_box_and_pages_are_reproducible() -> None:
    page, boxes = make_letter_page(np.random.default_rng(5), [None])
    assert boxes == [] and page.mean() > 150
    again, _ = make_letter_page(np.random.default_rng(5), [None])
    assert np.array_equal(page, again)


def test_bad_arguments_name_the_value() -> None:
    sig = _signature()
    with pytest.raises(ValueError, match="got 3"):
        make_letter_page(np.random.default_rng(0), [sig, sig, sig])
    with pytest.raises(ValueError, match="got 20"):
        make_letter_page(np.random.default_rng(0), [sig], dpi=20)
    with pytest.raises(ValueError, match="float32"):
        make_letter_page(np.random.default_rng(0), [sig.astype(np.float32)])
