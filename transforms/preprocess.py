"""The one signature preprocessing shared by SigNet training, evaluation and the pipeline.

``preprocess_signature`` chains small steps, each a function of its own:
grayscale -> polarity (ink dark) -> flatten background (denoise, divide by a blurred background)
-> ink mask (Otsu with a hysteresis for faint strokes, or Otsu alone) -> frame lines at the border excluded -> crop to the ink -> center on a canvas of the
target aspect ratio -> invert (ink bright) -> resize -> scale to 0..1.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

INPUT_SIZE: tuple[int, int] = (155, 220)

# Below this grey-level spread (after denoising) an image holds no ink: it is blank.
MIN_CONTRAST = 24.0
# A border row/column whose ink covers at least this fraction of its length is a frame line.
# Box borders and ruled lines cross a crop from side to side (fill ~1). At 0.6, long straight pen
# strokes at the edge of tightly cropped signatures counted as frames and were cut away: 55 % of
# the paper and 52 % of the iPad Chinese signatures and 7 % of SigComp's lost 15-23 % of their ink
# (1500 shared images). At 0.9: 3 of 1500, none of them SigComp or divyanshrai.
FRAME_LINE_FILL = 0.9
# Frame lines are searched within this fraction of the image from each side.
FRAME_SEARCH = 0.2
FRAME_GAP = 2
# Connected ink components smaller than this fraction of the largest one are specks.
SPECK_FRACTION = 0.02
# Faint ink: pixels darker than the Otsu threshold moved this share of the way to the paper's grey level
# count as ink where they touch Otsu's ink. Signatures cut from pages rendered at 150-200 dpi are small and
# their thin strokes antialiased light: with Otsu alone whole strokes fell out. With the shipped SigNet
# (trained on Otsu masks), validation forgeries and genuine queries of SigComp and divyanshrai signed into
# born-digital contracts (2 x 321 pages) scored 23.0 % EER through the pipeline's path, 18.1 % with this
# (on one of the two renderings: Otsu 23.1 %, shares 0.2 / 0.4 / 0.6 / 0.8 20.9 / 19.6 / 19.6 / 22.0 %); the image
# files themselves 18.3 -> 17.6 %, all 49 validation writers 17.0 -> 17.4 %.
WEAK_SHARE = 0.5
# The ink masks ``preprocess_signature`` can use: "hysteresis" (the default: evaluation and the pipeline) and
# "otsu" (Otsu's dark class alone, what the shipped SigNet members were trained on and what training uses by
# default: on a collection left out of training, weights trained on Otsu masks scored 19.7 % skilled EER with
# the hysteresis mask at inference and 23.7 % with Otsu's; the mask in training made no difference step for
# step; SigNet card: preprocessing_generalization_20261201).
INK_MASKS = ("hysteresis", "otsu")
DEFAULT_INK_MASK = "hysteresis"
# Margin around the ink on the canvas, as a fraction of the canvas side.
CANVAS_MARGIN = 0.04


def to_gray(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3|4)`` numeric array -> ``(H, W) uint8`` grey levels."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        # ITU-R BT.601 luma of RGB channels
        image = image[:, :, :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if image.ndim != 2:
        raise ValueError(f"image must be (H, W) or (H, W, 3), got shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"image must not be empty, got shape {image.shape}")
    if image.dtype != np.uint8:
        image = np.rint(np.clip(np.nan_to_num(image.astype(np.float32)), 0, 255)).astype(np.uint8)
    return image


def ink_dark(gray: np.ndarray) -> np.ndarray:
    """Flip ``(H, W) uint8`` so that ink is dark: the background is the larger Otsu class."""
    thr, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return 255 - gray if np.count_nonzero(gray > thr) < gray.size / 2 else gray


def flatten_background(gray: np.ndarray) -> np.ndarray:
    """Denoise, then divide by the local background (uneven light, grey paper) -> ``(H, W) uint8``.

    The background is a closing (removes dark strokes) blurred wide; division maps paper to ~255.
    """
    h, w = gray.shape
    den = cv2.GaussianBlur(gray, (3, 3), 0) if min(h, w) >= 3 else gray
    k = max(3, (min(h, w) // 4) | 1)
    background = cv2.morphologyEx(den, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    background = cv2.blur(background, (k, k)).astype(np.float32)
    flat = den.astype(np.float32) / np.maximum(background, 1.0) * 255.0
    return np.clip(flat, 0, 255).astype(np.uint8)


def frame_interior(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounds ``(y0, y1, x0, x1)`` inside any frame lines: mostly-ink rows/columns near a side.

    ``mask``: ``(H, W) bool``, True on ink. Everything outside the innermost frame line is excluded.
    """
    h, w = mask.shape
    rows, cols = mask.mean(axis=1), mask.mean(axis=0)
    sh, sw = int(np.ceil(h * FRAME_SEARCH)), int(np.ceil(w * FRAME_SEARCH))
    top = [i for i in range(sh) if rows[i] >= FRAME_LINE_FILL]
    bottom = [i for i in range(h - sh, h) if rows[i] >= FRAME_LINE_FILL]
    left = [j for j in range(sw) if cols[j] >= FRAME_LINE_FILL]
    right = [j for j in range(w - sw, w) if cols[j] >= FRAME_LINE_FILL]
    # FRAME_GAP more pixels go with a frame line: denoising blurs its edge
    y0, y1 = (max(top) + 1 + FRAME_GAP if top else 0), (min(bottom) - FRAME_GAP if bottom else h)
    x0, x1 = (max(left) + 1 + FRAME_GAP if left else 0), (min(right) - FRAME_GAP if right else w)
    return y0, max(y1, y0), x0, max(x1, x0)


def remove_specks(mask: np.ndarray) -> np.ndarray:
    """Drop connected components far smaller than the largest one (dust, JPEG noise)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.concatenate([[False], areas >= max(2.0, SPECK_FRACTION * areas.max())])
    return keep[labels]


def otsu_threshold(pixels: np.ndarray) -> float:
    """Otsu's threshold of uint8 ``pixels`` (any shape): the highest grey level of the dark class."""
    thr, _ = cv2.threshold(pixels.reshape(1, -1), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return float(thr)


def otsu_mask(pixels: np.ndarray) -> np.ndarray:
    """Pixels at or below their Otsu threshold (the dark class), same shape, bool."""
    return pixels <= otsu_threshold(pixels)


def hysteresis_mask(pixels: np.ndarray, weak_share: float = WEAK_SHARE) -> np.ndarray:
    """Ink of ``(H, W) uint8`` pixels (ink dark) by two thresholds -> ``(H, W) bool``.

    Strong ink is Otsu's dark class; weak ink is darker than the Otsu threshold moved ``weak_share`` of
    the way to the paper's level (the median). Weak pixels are kept where they touch strong ink (8-connected),
    so faint strokes joined to the signature stay while faint specks and smudges do not.
    """
    thr = otsu_threshold(pixels)
    strong = pixels <= thr
    weak = pixels <= thr + weak_share * max(float(np.median(pixels)) - thr, 0.0)
    n, labels = cv2.connectedComponents(weak.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False
    return keep[labels]


def check_ink_mask(kind: str) -> str:
    """``kind`` if it names one of ``INK_MASKS``; ValueError naming it otherwise."""
    if kind not in INK_MASKS:
        raise ValueError(f"ink mask must be one of {INK_MASKS}, got {kind!r}")
    return kind


def ink_mask(flat: np.ndarray, kind: str = DEFAULT_INK_MASK) -> np.ndarray:
    """Ink of a flattened ``(H, W) uint8`` image (ink dark) -> ``(H, W) bool``.

    A first Otsu pass finds frame lines at the sides; the ink inside the frame is then found by
    ``hysteresis_mask`` (``kind`` 'hysteresis') or ``otsu_mask`` ('otsu'), so a dark frame neither counts
    as ink nor shifts the threshold.
    """
    inner = hysteresis_mask if check_ink_mask(kind) == "hysteresis" else otsu_mask
    y0, y1, x0, x1 = frame_interior(otsu_mask(flat))
    mask = np.zeros(flat.shape, bool)
    inside = flat[y0:y1, x0:x1]
    if inside.size and float(np.percentile(inside, 99.5)) - float(inside.min()) >= MIN_CONTRAST:
        mask[y0:y1, x0:x1] = inner(inside)
    return remove_specks(mask)


def canvas_layout(h: int, w: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(canvas_h, canvas_w, y0, x0)``: the canvas of ``size``'s aspect ratio (plus a margin) that an
    ``(h, w)`` ink crop is centred on, and where the crop's top-left corner lands."""
    if h < 1 or w < 1:
        raise ValueError(f"crop must be at least 1x1 px, got {h}x{w}")
    target = size[1] / size[0]
    ch, cw = (h, int(round(h * target))) if w / h < target else (int(round(w / target)), w)
    pad = int(round(CANVAS_MARGIN * max(ch, cw)))
    ch, cw = ch + 2 * pad, cw + 2 * pad
    return ch, cw, (ch - h) // 2, (cw - w) // 2


def center_on_canvas(ink: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pad ``(h, w) float32`` ink intensities (ink bright) to the aspect ratio of ``size``, centred."""
    h, w = ink.shape
    ch, cw, y0, x0 = canvas_layout(h, w, size)
    canvas = np.zeros((ch, cw), np.float32)
    canvas[y0 : y0 + h, x0 : x0 + w] = ink
    return canvas


def flat_and_ink(image: np.ndarray, kind: str = DEFAULT_INK_MASK) -> tuple[np.ndarray, np.ndarray] | None:
    """``(flat, mask)`` of a crop: the flattened ``(H, W) uint8`` image (ink dark) and its ink
    ``(H, W) bool`` (``ink_mask`` of ``kind``); None for crops without ink (blank, too small or too faint)."""
    gray = to_gray(image)
    if min(gray.shape) < 2 or float(gray.max()) - float(gray.min()) < MIN_CONTRAST:
        return None
    flat = flatten_background(ink_dark(gray))
    if float(np.percentile(flat, 99.5)) - float(flat.min()) < MIN_CONTRAST:
        return None
    mask = ink_mask(flat, kind)
    return (flat, mask) if mask.any() else None


@dataclass(frozen=True)
class InkGeometry:
    """Where ``preprocess_signature`` finds the ink of an image and how it scales it.

    ``box``: ``(y0, y1, x0, x1)`` of the ink; ``threshold``: the highest grey level (flattened image,
    ink dark) counted as ink; ``scale``: the ink intensity (``255 - grey``) mapped to 1.
    """

    box: tuple[int, int, int, int]
    threshold: float
    scale: float


def geometry_of(flat: np.ndarray, mask: np.ndarray) -> InkGeometry:
    """The ``InkGeometry`` of a flattened image and its non-empty ink mask (``flat_and_ink``)."""
    ys, xs = np.nonzero(mask)
    ink = 255.0 - flat[mask].astype(np.float32)
    return InkGeometry((int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1),
                       float(flat[mask].max()), max(float(np.percentile(ink, 95)), 1.0))


def preprocess_signature(image: np.ndarray, size: tuple[int, int] = INPUT_SIZE,
                         ink: str = DEFAULT_INK_MASK) -> np.ndarray:
    """A signature crop -> the network input: ``(size[0], size[1]) float32`` in 0..1, ink bright.

    ``image``: ``(H, W)`` or ``(H, W, 3)`` uint8, ink dark on light paper as scanned (a light-on-dark
    crop is flipped). Never raises on tiny or blank crops: a crop without ink gives zeros. ``ink``: the
    ink mask (``INK_MASKS``); evaluation and the pipeline use the default, SigNet training may choose.
    """
    if len(size) != 2 or min(size) < 8:
        raise ValueError(f"size must be (height, width) of at least 8 px, got {size}")
    out = np.zeros(size, np.float32)
    found = flat_and_ink(image, ink)
    if found is None:
        return out
    flat, mask = found
    geometry = geometry_of(flat, mask)
    y0, y1, x0, x1 = geometry.box
    # invert (ink bright) and keep grey levels on the ink only; the darkest ink maps to 1
    ink = np.where(mask[y0:y1, x0:x1], 255.0 - flat[y0:y1, x0:x1].astype(np.float32), 0.0)
    ink /= geometry.scale
    canvas = center_on_canvas(np.clip(ink, 0.0, 1.0).astype(np.float32), size)
    resized = cv2.resize(canvas, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.clip(resized, 0.0, 1.0).astype(np.float32)


def ink_geometry(image: np.ndarray) -> InkGeometry | None:
    """The ``InkGeometry`` of an ``(H, W)`` uint8 crop (ink dark), or None where
    ``preprocess_signature`` finds no ink (it would return zeros)."""
    found = flat_and_ink(image)
    return None if found is None else geometry_of(*found)
