"""The classical signature finder: a page image in, scored signature boxes out (OpenCV and numpy only).

binarize -> remove ruled lines -> drop printed text (components no thicker than a character, text-layer
words) -> group the remaining strokes into candidates at a few distances -> score each from hand-made
features with a small logistic model fitted offline -> boost candidates near anchor words -> NMS.
Two regimes: pages at most ``work_side`` (low-resolution scans such as detection/*) keep the original
grouping and model; larger pages (rendered at ~200 dpi) are downscaled with a minimum filter, grouped more
finely, get tight boxes and their own model (fitted on synthetic contracts and upscaled detection/train).
A learned detector replaces this later behind the same interface.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from transforms.boxes import Box, nms
from transforms.pdf import Word

logger = logging.getLogger(__name__)

ANCHOR = re.compile(r"^(signature|signed|sign|by:?|signatory|unterschrift|signé|firma)[:.]?$", re.IGNORECASE)


@dataclass(frozen=True)
class FinderConfig:
    """Knobs of the finder; the defaults were tuned on detection/train (see benchmarks/classical_regions.py)."""

    work_side: int = 1000          # pages are downscaled so that the longest side is at most this
    line_fraction: float = 0.1     # ruled lines: straight runs at least this fraction of the page side
    text_factor: float = 1.8       # components at most this many character sizes are printed text
    group_factors: tuple[float, ...] = (1.5, 3.0, 5.0)  # strokes closer than this many character sizes group
    fine_factors: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 5.0)  # the same on pages larger than work_side
    wide_factors: tuple[float, ...] = (3.0, 5.0)  # and there, side by side (half a character up or down)
    min_score: float = 0.2         # candidates below are dropped (near the F1-best threshold on detection/train)
    anchor_boost: float = 0.5      # a candidate near an anchor word keeps only this share of its doubt
    nms_iou: float = 0.3
    box_pad: float = 1.0           # boxes are grown by this many character sizes on each side on pages at
    fine_pad: float = 0.3          # most work_side (low-resolution scans), by this many on larger pages
    contrast: int = 10             # ink is at least this much darker than its 31x31 neighbourhood mean
    margin: float = 0.6            # and darker than Otsu's threshold moved this share towards white


# Logistic regressions on the standardized features and their pairwise products (quadratic_terms), fitted by
# benchmarks/classical_regions.py --fit and pasted from its output: _LOW_* on detection/train candidates
# (low-resolution pages, at most work_side), _FINE_* on synthetic contracts rendered at 200 dpi (seeds 100-219,
# never the demo's seed 0) plus detection/train upscaled to 2200x1700: the candidates of larger pages.
_LOW_MEAN = np.array([
    2.5219, 7.656, 0.9444, 0.3974, 0.8891, 0.7903, 0.3809, -6.0475, 40.9494, 1.3199, -0.0426, 1.0328
])
_LOW_SCALE = np.array([
    1.1384, 6.3989, 0.6875, 0.1696, 0.1792, 0.1439, 0.1278, 2.0923, 24.331, 0.9103, 0.493, 0.2401
])
_LOW_WEIGHTS = np.array([
    0.0141, 0.5505, -0.3796, -0.8348, 0.1196, 0.4043, 0.1958, 0.8768, -0.4805, 0.0127, -0.178, -0.3177,
    -0.1067, 0.0896, -0.1438, 0.2049, 0.1235, 0.1188, -0.1856, 0.085, -0.0057, -0.1776, -0.1586, 0.0619,
    0.1646, -0.68, 0.246, 0.1937, 0.1849, -0.0489, 0.0979, -0.0818, 0.1099, -0.1452, 0.3415, -0.3742,
    -0.45, -0.0174, 0.1933, -0.4988, 0.3166, -0.5411, -0.2818, -0.1393, -0.2417, -0.7206, 0.0681,
    -0.4596, -0.512, -0.3416, 0.5872, 0.716, 0.0476, 0.2372, -0.3704, -0.3753, 0.2288, 0.0763, -0.0636,
    -0.1691, -0.0028, -0.1586, -0.8146, -0.3806, 0.3193, -0.443, -0.5081, -0.1379, 0.3023, 0.1489,
    -0.2074, 0.1774, -0.5563, -0.3398, -0.3364, -0.3646, 0.0592, -0.0214, 0.323, -0.4524, 0.0956,
    0.3159, -0.2962, 0.5882, -0.2891, -0.1627, 0.0437, -0.4675, -0.5126, -0.4262
])
_LOW_BIAS = -2.7625
_FINE_MEAN = np.array([
    2.7329, 8.8884, 0.9035, 0.3731, 0.8623, 0.8135, 0.4412, -6.2063, 42.8647, 1.4137, 0.0226, 0.9821
])
_FINE_SCALE = np.array([
    1.1915, 7.1427, 0.6385, 0.1669, 0.1906, 0.1232, 0.102, 2.0848, 25.2504, 1.0297, 0.5257, 0.2298
])
_FINE_WEIGHTS = np.array([
    -1.7876, -0.9031, -0.6759, -1.8814, 0.6049, -0.8706, -0.025, 2.7216, -2.3798, -0.2509, -0.2458, -0.078,
    0.1676, 0.7412, 0.2087, 0.5946, -0.1696, 0.4968, -0.266, 0.5716, 0.2907, 0.7841, 0.5113, 0.1773, 0.0497,
    -1.0748, 0.3068, 0.1817, 0.7206, 0.112, 0.3497, -0.1283, 0.1156, 0.1289, -0.3452, -0.6844, -0.0738, 0.217,
    -0.0529, -0.8558, 0.7185, -0.8281, -0.5238, -0.1323, -0.2429, -2.2067, 0.3457, -0.3497, 0.5196, -1.0869,
    1.4361, 0.1992, 0.2032, 0.234, -0.1718, 0.1254, 0.4213, 0.1279, -0.317, -0.0747, -0.065, 0.1679, -0.8553,
    -0.4822, 0.5579, -0.0097, -0.2334, -0.0665, 0.4246, -0.2954, 0.4223, 0.086, -0.2746, -0.5381, -0.3276,
    -1.1103, 0.582, -0.3917, 0.0637, -0.0459, -0.3206, 0.6731, -0.2753, 0.376, -0.8592, -0.1866, 0.4964,
    -0.4785, -0.1681, -0.2044
])
_FINE_BIAS = -3.489


def quadratic_terms(features: np.ndarray, mean: np.ndarray = _LOW_MEAN, scale: np.ndarray = _LOW_SCALE) -> np.ndarray:
    """Standardized features followed by their pairwise products (upper triangle): (12,) -> (90,) float."""
    z = (features - mean) / scale
    return np.concatenate([z, np.outer(z, z)[np.triu_indices(len(z))]])


def _binarize(gray: np.ndarray, contrast: int, margin: float) -> np.ndarray:
    """Ink mask (uint8 0/255) from a gray page: pixels ``contrast`` darker than their neighbourhood and
    darker than the Otsu threshold moved ``margin`` of the way towards white (faint pen strokes count)."""
    blurred = cv2.GaussianBlur(gray, (3, 3), 0)
    otsu, _ = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    threshold = min(otsu + margin * (255 - otsu), 230) if otsu < 200 else 160  # Otsu splits paper noise
    _, global_ink = cv2.threshold(blurred, threshold, 255, cv2.THRESH_BINARY_INV)
    local_ink = cv2.adaptiveThreshold(blurred, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 31, contrast)
    return cv2.bitwise_and(global_ink, local_ink)


def _downscale(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` resized by ``scale`` <= 1; a gray minimum filter first keeps thin pen strokes dark (plain
    area averaging fades a one-pixel stroke of a 200-dpi page into the paper)."""
    if scale >= 1:
        return image
    k = int(round(1 / scale))
    darkest = cv2.erode(image, np.ones((k, k), np.uint8)) if k > 1 else image
    return cv2.resize(darkest, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _remove_lines(ink: np.ndarray, fraction: float) -> np.ndarray:
    """``ink`` without long horizontal and vertical ruled lines (morphological opening with long kernels)."""
    height, width = ink.shape
    lines = np.zeros_like(ink)
    for size in ((max(int(width * fraction), 8), 1), (1, max(int(height * fraction), 8))):
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, size)
        lines |= cv2.dilate(cv2.morphologyEx(ink, cv2.MORPH_OPEN, kernel), np.ones((3, 3), np.uint8))
    return cv2.bitwise_and(ink, cv2.bitwise_not(lines))


def _char_size(sizes: np.ndarray, side: int) -> float:
    """Typical printed character size in pixels: the median short side of small components, clamped."""
    small = sizes[(sizes >= 2) & (sizes <= 0.03 * side)]
    median = float(np.median(small)) if len(small) >= 20 else 0.01 * side
    return float(np.clip(median, 0.004 * side, 0.03 * side))


def _mask_words(ink: np.ndarray, words: Sequence[Word]) -> None:
    """Erase, in place, the ink under text-layer words (printed text we already know about)."""
    height, width = ink.shape
    for word in words:
        x0, y0 = max(int(word.x0 * width) - 1, 0), max(int(word.y0 * height) - 1, 0)
        ink[y0:int(np.ceil(word.y1 * height)) + 1, x0:int(np.ceil(word.x1 * width)) + 1] = 0


@dataclass(frozen=True)
class _PageInk:
    """A page at working scale: gray (h, w) uint8, ink and big-stroke masks (h, w) uint8 0/255, the
    character size in pixels, the page's median ink gray and mean stroke half-width, and the (N, 4) int
    pixel bounds x0, y0, x1, y1 of the other ink components (thin strokes a signature may own)."""

    gray: np.ndarray
    ink: np.ndarray
    big: np.ndarray
    distance: np.ndarray
    char: float
    ink_gray: float
    stroke: float
    parts: np.ndarray


def _features(page: _PageInk, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Features of the candidate at pixels ``[y0:y1, x0:x1]`` of ``page``:

    [log size in characters and its square, log aspect (long/short side), ink density, big-stroke share,
     orientation entropy, stroke-width variation, log area share of the page and its square, log stroke count,
     ink gray relative to the page's, stroke width relative to the page's].
    """
    crop_ink, crop_big = page.ink[y0:y1, x0:x1], page.big[y0:y1, x0:x1]
    h, w = crop_ink.shape
    ink = crop_ink > 0
    ink_count = max(int(ink.sum()), 1)
    density = ink_count / (h * w)
    big_share = float((crop_big > 0).sum()) / ink_count
    gx = cv2.Sobel(crop_ink, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(crop_ink, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.hypot(gx, gy)
    edges = magnitude > 0.5 * magnitude.max() if magnitude.max() > 0 else magnitude > 0
    angles = (np.arctan2(gy[edges], gx[edges]) % np.pi) if edges.any() else np.zeros(1)
    hist = np.histogram(angles, bins=8, range=(0, np.pi))[0].astype(float) + 1e-6
    hist /= hist.sum()
    entropy = float(-(hist * np.log(hist)).sum() / np.log(8))  # 1 = every direction, cursive; low = printed
    distance = page.distance[y0:y1, x0:x1][ink].astype(np.float64)
    mean_distance = float(distance.mean()) if distance.size else 0.0
    width_variation = float(distance.std()) / mean_distance if mean_distance > 0 else 0.0
    strokes = cv2.connectedComponents(crop_big, connectivity=8)[0] - 1
    gray = page.gray[y0:y1, x0:x1][ink]
    gray_diff = (float(np.median(gray)) - page.ink_gray) / 64 if gray.size else 0.0
    height, area = np.log(max(h, w) / page.char), np.log(h * w / page.gray.size)
    return np.array([height, height ** 2, np.log(max(h, w) / min(h, w)), density, big_share, entropy,
                     width_variation, area, area ** 2, np.log1p(strokes), gray_diff,
                     mean_distance / page.stroke], dtype=float)


def _near_anchor(box: Box, anchors: Sequence[Word]) -> bool:
    """Whether ``box`` lies where a signature for an anchor word would: right of it or just above/below."""
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    for word in anchors:
        right = word.x0 <= cx <= word.x1 + 0.4 and abs(cy - (word.y0 + word.y1) / 2) < 0.05
        stacked = abs(cx - (word.x0 + word.x1) / 2) < 0.25 and -0.08 < (word.y0 - cy) < 0.1
        if right or stacked:
            return True
    return False


def candidate_features(image: np.ndarray, words: Sequence[Word] = (),
                       config: FinderConfig = FinderConfig()) -> list[tuple[Box, np.ndarray]]:
    """Candidate boxes (score 1.0) of a ``(H, W) uint8`` page with their feature vectors (for scoring, tuning)."""
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W) uint8, got shape {image.shape} dtype {image.dtype}")
    height, width = image.shape
    if min(height, width) < 16:
        return []
    scale = min(1.0, config.work_side / max(height, width))
    gray = _downscale(image, scale)
    h, w = gray.shape
    ink = _remove_lines(_binarize(gray, config.contrast, config.margin), config.line_fraction)
    _mask_words(ink, words)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    cw, ch = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    # printed words blur into blobs at scan resolution: their short side stays one character size,
    # whatever the page's rotation; signature strokes loop and climb over several
    short = np.minimum(cw, ch)
    char = _char_size(short, min(h, w))
    x, y = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    touches_border = (x == 0) | (y == 0) | (x + cw >= w) | (y + ch >= h)
    too_big = (cw > 0.6 * w) | (ch > 0.6 * h)
    big = (short > config.text_factor * char) & ~too_big & ~touches_border
    keep = np.zeros(count, dtype=np.uint8)
    keep[1:][big] = 255
    big_mask = keep[labels]
    if not big_mask.any():
        return []
    distance = cv2.distanceTransform(ink, cv2.DIST_L2, 3)
    inked = ink > 0
    small = ~big & (np.maximum(cw, ch) >= 0.5 * char) & ~too_big & ~touches_border
    parts = np.stack([x, y, x + cw, y + ch], axis=1)[small]
    page = _PageInk(gray, ink, big_mask, distance, char, float(np.median(gray[inked])),
                    max(float(distance[inked].mean()), 0.5), parts)
    # a page larger than work_side was rendered at a real resolution (~200 dpi): its character size is
    # measured on a finer grid, and boxes tight around the ink fit better than the loose low-res ones
    fine = scale < 1
    pad = config.fine_pad if fine else config.box_pad
    results = []
    for factor in config.fine_factors if fine else config.group_factors:
        results += _groups(page, max(int(factor * char), 1), pad, fine=fine)
    for factor in config.wide_factors if fine else ():  # the words of a signature sit side by side
        results += _groups(page, max(int(factor * char), 1), pad, max(int(0.5 * char), 1), fine=fine)
    return results


def _groups(page: _PageInk, reach: int, box_pad: float, rise: int | None = None,
            fine: bool = False) -> list[tuple[Box, np.ndarray]]:
    """Candidates from the page's big strokes dilated by ``reach`` pixels sideways and ``rise`` (default
    ``reach``) up and down, with their features; ``fine`` (a large page) lets a group take in the thin
    strokes within its reach."""
    h, w = page.ink.shape
    rise = reach if rise is None else rise
    grouped = cv2.dilate(page.big, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * rise + 1)))
    _, _, group_stats, _ = cv2.connectedComponentsWithStats(grouped, connectivity=8)
    results = []
    for x, y, gw, gh, _ in group_stats[1:]:
        # the group's extent without the dilation margin
        x0, y0 = min(x + reach, w - 1), min(y + rise, h - 1)
        x1, y1 = max(x + gw - reach, x0 + 1), max(y + gh - rise, y0 + 1)
        # thin strokes (not big themselves) lying wholly within the group's reach belong to it
        p = page.parts
        inside = p[(p[:, 0] >= x) & (p[:, 1] >= y) & (p[:, 2] <= x + gw) & (p[:, 3] <= y + gh)]
        if fine and len(inside):
            x0, y0 = min(x0, int(inside[:, 0].min())), min(y0, int(inside[:, 1].min()))
            x1, y1 = max(x1, int(inside[:, 2].max())), max(y1, int(inside[:, 3].max()))
        if max(x1 - x0, y1 - y0) < 2 * page.char:
            continue
        pad = box_pad * page.char
        results.append((Box.from_pixels(x0 - pad, y0 - pad, x1 + pad, y1 + pad, w, h),
                        _features(page, x0, y0, x1, y1)))
    return results


def is_fine(image: np.ndarray, config: FinderConfig = FinderConfig()) -> bool:
    """Whether a page of this shape is larger than ``config.work_side`` (finer grouping, the _FINE_ model)."""
    return max(image.shape[:2]) > config.work_side


def score_features(features: np.ndarray, fine: bool = False) -> float:
    """Signature likelihood in 0..1 of one candidate's (12,) feature vector (quadratic logistic); ``fine``
    picks the model of pages larger than work_side (see :func:`is_fine`)."""
    if fine:
        logit = quadratic_terms(features, _FINE_MEAN, _FINE_SCALE) @ _FINE_WEIGHTS + _FINE_BIAS
    else:
        logit = quadratic_terms(features) @ _LOW_WEIGHTS + _LOW_BIAS
    return float(1.0 / (1.0 + np.exp(-logit)))


def find_signature_regions(image: np.ndarray, words: Sequence[Word] = (), *, max_regions: int = 8,
                           config: FinderConfig = FinderConfig()) -> list[Box]:
    """Scored signature boxes (0..1 page coordinates, best first, after NMS) on a ``(H, W) uint8`` page,
    ink dark. ``words`` of a text layer, when given, erase printed text and boost candidates near anchors
    such as "Signature", "Signed", "By:"."""
    if max_regions < 1:
        raise ValueError(f"max_regions must be >= 1, got {max_regions}")
    anchors = [word for word in words if ANCHOR.match(word.text.strip())]
    boxes = []
    fine = image.ndim == 2 and is_fine(image, config)
    for box, features in candidate_features(image, words, config):
        score = score_features(features, fine)
        if anchors and _near_anchor(box, anchors):
            score = 1.0 - (1.0 - score) * config.anchor_boost
        if score >= config.min_score:
            boxes.append(Box(box.x0, box.y0, box.x1, box.y1, score))
    kept = nms(boxes, config.nms_iou)[:max_regions]
    logger.debug("%d candidates scored, %d kept", len(boxes), len(kept))
    return kept
