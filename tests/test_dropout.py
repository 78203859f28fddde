"""Colour dropout: luminance, red chroma, red ink pushed to paper, and the red seal made for measuring it."""
from __future__ import annotations

import numpy as np
import pymupdf
import pytest

from transforms.dropout import drop_red, luminance, red_chroma, to_gray
from transforms.noise import add_colour_stamp, add_stamp
from transforms.pdf import open_pdf, pixmap_rgb, render_page


def _pixels(*rgb: tuple[int, int, int]) -> np.ndarray:
    return np.asarray([rgb], np.uint8)


def test_gray_black_and_blue_ink_keep_their_luminance_exactly() -> None:
    gray = np.random.default_rng(0).integers(0, 256, (20, 30)).astype(np.uint8)
    assert np.array_equal(drop_red(np.repeat(gray[..., None], 3, axis=2)), gray)
    blue = _pixels((20, 40, 160), (0, 0, 0), (240, 238, 230))  # ballpoint blue, black, off-white paper
    assert np.array_equal(drop_red(blue), luminance(blue))
    assert luminance(_pixels((255, 0, 0)))[0, 0] == 76 and luminance(_pixels((0, 0, 255)))[0, 0] == 29


def test_red_ink_goes_to_paper_and_black_over_red_stays_ink() -> None:
    red = _pixels((210, 40, 50), (235, 150, 150), (23, 5, 6), (150, 120, 118))
    out = drop_red(red)
    assert out[0, 0] == 255 and out[0, 1] == 255  # stamp-pad red and its antialiased edge
    assert out[0, 2] == luminance(red)[0, 2] < 20  # black ink printed over the red: chroma 17, kept
    assert luminance(red)[0, 3] < out[0, 3] < 255  # a dull red halfway up the ramp moves part of the way
    assert red_chroma(red).tolist() == [[160, 85, 17, 30]]


def test_the_ramp_is_monotone_in_redness() -> None:
    reds = np.asarray([[(100 + r, 100, 100) for r in range(0, 150, 5)]], np.uint8)
    out = drop_red(reds)[0].astype(int)
    assert (np.diff(out) >= 0).all() and out[-1] == 255


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8),
                                 np.zeros((4, 4, 3), np.float32)])
def test_bad_images_are_named(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected an \\(H, W, 3\\) uint8 RGB image"):
        drop_red(bad)


def test_bad_settings_are_named() -> None:
    rgb = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="need 0 <= low < high <= 255, got low=64 high=24"):
        drop_red(rgb, 64, 24)
    with pytest.raises(ValueError, match="dropout must be one of \\('none', 'red'\\), got 'blue'"):
        to_gray(rgb, "blue")


def test_colour_stamp_reads_as_the_gray_stamp_and_drops_out_again() -> None:
    img = np.full((120, 240), 255, np.uint8)
    img[50:56, 10:230] = 30  # a stroke of ink
    rgb = add_colour_stamp(img, np.random.default_rng(3), ink=(150, 0, 0))  # dark ink: no coverage clipped
    assert rgb.shape == (120, 240, 3) and rgb.dtype == np.uint8
    gray = add_stamp(img, np.random.default_rng(3))
    assert (gray < 250).sum() > (img < 250).sum()  # the seal covers something
    assert np.abs(luminance(rgb).astype(int) - gray.astype(int)).max() <= 2
    dropped = drop_red(rgb)
    assert np.abs(dropped.astype(int) - img.astype(int)).max() <= 40  # only the ink under the seal darkens
    assert ((dropped < 128) == (img < 128)).all()
    with pytest.raises(ValueError, match="too light"):
        add_colour_stamp(img, np.random.default_rng(0), ink=(255, 255, 250))


def _red_seal_pdf() -> bytes:
    doc = pymupdf.open()
    page = doc.new_page(width=300, height=200)
    page.insert_text((40, 100), "Signed by hand", fontsize=20, color=(0, 0, 0))
    page.draw_circle((150, 100), 60, color=(0.85, 0.1, 0.15), width=6)
    data = doc.tobytes()
    doc.close()
    return data


def test_render_page_drops_a_red_seal_and_keeps_black_text() -> None:
    doc = open_pdf(_red_seal_pdf())
    plain = render_page(doc, 0, dpi=72).image
    dropped = render_page(doc, 0, dpi=72, dropout="red").image
    assert plain.shape == dropped.shape == (200, 300) and dropped.dtype == np.uint8
    ring = np.zeros_like(plain, bool)
    yy, xx = np.mgrid[:200, :300]
    ring[np.abs(np.hypot(xx - 150, yy - 100) - 60) < 2] = True
    text = np.zeros_like(ring)
    text[85:102, 40:200] = True
    assert plain[ring & ~text].mean() < 120 and dropped[ring & ~text].min() > 240  # the seal's ring is gone
    assert (dropped[text] < 100).sum() >= 0.9 * (plain[text] < 100).sum() > 100  # the text stays
    with pytest.raises(ValueError, match="dropout must be one of"):
        render_page(doc, 0, dropout="green")


def test_pixmap_rgb_reads_three_channels_and_refuses_others() -> None:
    doc = open_pdf(_red_seal_pdf())
    page = doc.load_page(0)
    rgb = pixmap_rgb(page.get_pixmap(dpi=36, colorspace=pymupdf.csRGB, alpha=False))
    assert rgb.shape == (100, 150, 3) and rgb[..., 0].mean() > rgb[..., 1].mean()  # red ink: more red
    with pytest.raises(ValueError, match="expected a three-channel RGB pixmap, got 1 channels"):
        pixmap_rgb(page.get_pixmap(dpi=36, colorspace=pymupdf.csGRAY, alpha=False))


def test_spread_takes_a_seal_s_faintly_red_rim_and_leaves_black_ink_beside_it() -> None:
    row = _pixels((210, 40, 50), (130, 118, 116), (20, 18, 18), (240, 238, 236))  # seal, JPEG rim, black, paper
    alone, spread = drop_red(row, spread=0), drop_red(row, spread=1)
    assert alone[0, 1] == luminance(row)[0, 1]  # the rim's own chroma (12) is under the ramp
    assert spread[0, 1] == 255 and spread[0, 0] == 255  # its red neighbour takes it along
    assert spread[0, 2] == alone[0, 2] == luminance(row)[0, 2]  # black ink judges by its own colour
    assert spread[0, 3] == luminance(row)[0, 3]  # paper two pixels from the seal is left
    gray = np.random.default_rng(1).integers(0, 256, (9, 9)).astype(np.uint8)
    assert np.array_equal(drop_red(np.repeat(gray[..., None], 3, axis=2), spread=2), gray)


def test_spread_is_checked() -> None:
    with pytest.raises(ValueError, match="spread must be >= 0, got -1"):
        drop_red(np.zeros((2, 2, 3), np.uint8), spread=-1)
