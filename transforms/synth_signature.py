"""Synthetic handwritten signatures: a writer's hand (``SignatureStyle``) and samples drawn from it.

A style is a name-like cursive sequence (a capital, then humps, loops, descenders and spikes) stored as
control points, plus the writer's slant, width, pen and flourish. ``draw_signature`` turns a style into a
``(H, W) uint8`` image, ink dark on white: genuine samples jitter a little around the style, forgeries
imitate it with larger, systematic deviations (tremor, blunt uniform strokes, slant and proportions off).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Letter templates: control points relative to the pen at the baseline (x right, y up, x-height 1).
# Each entry is (points, advance).
_LETTERS: dict[str, tuple[tuple[tuple[float, float], ...], float]] = {
    "hump": (((0.10, 0.85), (0.30, 1.00), (0.48, 0.55), (0.55, 0.00)), 0.55),
    "double": (((0.08, 0.85), (0.25, 1.0), (0.38, 0.45), (0.42, 0.05), (0.55, 0.95), (0.72, 0.6),
                (0.78, 0.0)), 0.8),
    "tall": (((0.22, 1.5), (0.32, 2.35), (0.16, 2.3), (0.18, 1.0), (0.32, 0.0)), 0.42),
    "oval": (((0.35, 0.95), (0.12, 0.6), (0.25, 0.05), (0.48, 0.45), (0.40, 0.95), (0.58, 0.6)), 0.6),
    "eye": (((0.28, 0.45), (0.36, 0.9), (0.14, 0.75), (0.12, 0.2), (0.38, 0.0)), 0.45),
    "desc": (((0.35, 0.9), (0.10, 0.5), (0.32, 0.25), (0.45, 0.9), (0.40, -0.8), (0.16, -1.05),
              (0.12, -0.6), (0.55, 0.05)), 0.6),
    "spike": (((0.12, 0.85), (0.22, 0.12), (0.32, 0.0)), 0.34),
    "cup": (((0.05, 0.85), (0.10, 0.12), (0.28, 0.0), (0.42, 0.85), (0.42, 0.1), (0.52, 0.0)), 0.55),
}
_LETTER_NAMES = tuple(_LETTERS)
_LETTER_WEIGHTS = np.array([3, 1.5, 2, 2.5, 2.5, 1.2, 1.5, 2], dtype=float)
_CAPITALS: tuple[tuple[tuple[float, float], ...], ...] = (
    ((0.0, 0.3), (0.35, 2.6), (0.6, 2.2), (0.25, 0.0), (0.05, 0.5), (0.8, 1.4), (1.0, 0.4), (1.1, 0.0)),
    ((0.2, 2.0), (0.55, 2.7), (0.3, 1.0), (0.1, 0.0), (0.5, 1.2), (0.95, 1.9), (0.75, 0.2), (1.0, 0.0)),
    ((0.9, 2.3), (0.45, 2.6), (0.05, 1.4), (0.3, 0.0), (0.85, 0.5), (0.9, 0.9), (0.95, 0.0)),
    ((0.1, 0.0), (0.35, 2.6), (0.55, 1.4), (0.85, 2.6), (0.95, 0.0)),
)


@dataclass(frozen=True)
class SignatureStyle:
    """A writer's hand: fixed control points (tuples of ``(N, 2)`` float64 arrays in x-height units,
    y up) and the writer's habits."""

    strokes: tuple[np.ndarray, ...]
    slant: float  # radians, positive leans right
    x_stretch: float
    pen_width: float  # fraction of the drawn height
    ink: int  # darkest gray level 0..255
    taper: float  # 0..1, how thin the stroke ends get


def _catmull_rom(points: np.ndarray, samples_per_segment: int = 14) -> np.ndarray:
    """Dense ``(M, 2)`` curve through the ``(N, 2)`` control points (uniform Catmull-Rom spline)."""
    if len(points) < 2:
        return points.copy()
    p = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    t = np.linspace(0.0, 1.0, samples_per_segment, endpoint=False)[:, None]
    t2, t3 = t * t, t * t * t
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t3))
    out.append(points[-1:])
    return np.vstack(out)


def smooth_stroke(points: np.ndarray, samples_per_segment: int = 14) -> np.ndarray:
    """Public spline helper (used by the noise module for stray strokes): ``(M, 2)`` float64 curve."""
    return _catmull_rom(np.asarray(points, dtype=np.float64), samples_per_segment)


def _word(rng: np.random.Generator, n_letters: int, x: float) -> tuple[np.ndarray, float]:
    """Control points of one cursive word starting at ``x``; returns the points and the end x."""
    cap = np.array(_CAPITALS[int(rng.integers(len(_CAPITALS)))], dtype=np.float64)
    cap = cap * [rng.uniform(0.8, 1.3), rng.uniform(0.8, 1.2)] + rng.normal(0, 0.07, cap.shape)
    pts = [cap + [x, 0.0]]
    x += float(cap[:, 0].max()) + 0.05
    probs = _LETTER_WEIGHTS / _LETTER_WEIGHTS.sum()
    for _ in range(n_letters):
        name = _LETTER_NAMES[int(rng.choice(len(_LETTER_NAMES), p=probs))]
        tpl, adv = _LETTERS[name]
        arr = np.array(tpl, dtype=np.float64) + rng.normal(0, 0.06, (len(tpl), 2))
        pts.append(arr + [x, 0.0])
        x += adv * rng.uniform(0.85, 1.2)
    return np.vstack(pts), x


def make_style(rng: np.random.Generator) -> SignatureStyle:
    """A new writer drawn from ``rng``: one or two words (an initial or a first name, then a surname),
    optionally a flourish under or after the name."""
    strokes: list[np.ndarray] = []
    x = 0.0
    if rng.random() < 0.6:
        first, x = _word(rng, int(rng.integers(0, 5)), x)
        strokes.append(first)
        x += rng.uniform(0.3, 0.7)
    last, x = _word(rng, int(rng.integers(3, 8)), x)
    strokes.append(last)
    flourish = rng.random()
    if flourish < 0.35:  # underline swoosh back under the name
        y = rng.uniform(-0.9, -0.4)
        strokes.append(np.array([[x + 0.2, 0.3], [x + 0.4, y + 0.2], [x * 0.6, y],
                                 [x * 0.2, y - 0.1], [rng.uniform(-0.3, 0.2), y + 0.15]]))
    elif flourish < 0.6:  # tail extending the last stroke
        tail = np.array([[0.4, -0.2], [0.9, 0.5], [1.4, 0.9]]) * [rng.uniform(0.6, 1.4), 1]
        strokes[-1] = np.vstack([strokes[-1], tail + [x, 0.0]])
    if rng.random() < 0.3:  # dot or short tick above
        cx = rng.uniform(0.2, 0.8) * x
        strokes.append(np.array([[cx, 1.6], [cx + 0.12, 1.7]]))
    return SignatureStyle(
        strokes=tuple(strokes), slant=float(rng.uniform(-0.15, 0.55)),
        x_stretch=float(rng.uniform(0.7, 1.4)), pen_width=float(rng.uniform(0.018, 0.04)),
        ink=int(rng.integers(10, 70)), taper=float(rng.uniform(0.2, 0.8)))


def _variant(style: SignatureStyle, rng: np.random.Generator, forged: bool) -> tuple[list[np.ndarray], float]:
    """Control points of one sample after the writer's (or a forger's) deviations; and the slant."""
    if not forged:
        slant = style.slant + rng.normal(0, 0.04)
        sx, jitter = style.x_stretch * rng.uniform(0.95, 1.05), 0.03
        y_scale = np.ones(len(style.strokes))
    else:  # a forger copies the shape but gets proportions and slant systematically wrong
        slant = style.slant + rng.choice([-1, 1]) * rng.uniform(0.12, 0.25)
        sx, jitter = style.x_stretch * rng.choice([0.8, 1.2]) * rng.uniform(0.95, 1.05), 0.07
        y_scale = rng.uniform(0.75, 1.3, len(style.strokes))
    out = []
    for k, s in enumerate(style.strokes):
        p = s + rng.normal(0, jitter, s.shape)
        p[:, 1] *= y_scale[k]
        p[:, 0] *= sx
        out.append(p)
    return out, float(slant)


def draw_signature(style: SignatureStyle, rng: np.random.Generator, *, height: int = 120,
                   forged: bool = False, margin: int = 4) -> np.ndarray:
    """One sample of ``style``: ``(H, W) uint8``, ink dark on white (255), tightly cropped with ``margin``
    pixels. ``H`` is about ``height`` (the ink's height varies a little from sample to sample)."""
    if not 16 <= height <= 1024:
        raise ValueError(f"height must be 16..1024, got {height}")
    if not 0 <= margin <= 64:
        raise ValueError(f"margin must be 0..64, got {margin}")
    ss = 3  # supersampling for anti-aliasing
    strokes, slant = _variant(style, rng, forged)
    angle = rng.normal(0, 0.03 if not forged else 0.05)
    ca, sa = np.cos(angle), np.sin(angle)
    curves = []
    for p in strokes:
        c = _catmull_rom(p, 16 if not forged else 22)
        c = c @ np.array([[ca, sa], [-sa, ca]])
        if forged:  # tremor: slow, hesitant strokes wobble at high frequency
            c = c + rng.normal(0, 0.018, c.shape)
            c = c + 0.02 * np.sin(np.arange(len(c))[:, None] * rng.uniform(0.8, 1.5) + [0.0, 1.3])
        c = c.copy()
        c[:, 0] = c[:, 0] + c[:, 1] * np.tan(slant)
        curves.append(c)
    allp = np.vstack(curves)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    ink_h = (height - 2 * margin) * rng.uniform(0.93, 1.07) * ss
    scale = ink_h / max(hi[1] - lo[1], 1e-6)
    pen = max(style.pen_width * (height - 2 * margin) * ss * rng.uniform(0.9, 1.1), 1.5)
    if forged:
        pen *= rng.uniform(1.1, 1.35)
    pad = int(pen * 2) + 2
    w = int((hi[0] - lo[0]) * scale) + 2 * pad + 1
    h = int((hi[1] - lo[1]) * scale) + 2 * pad + 1
    ink = np.zeros((h, w), np.uint8)
    for c in curves:
        px = (c - lo) * scale
        px[:, 1] = (hi[1] - lo[1]) * scale - px[:, 1]  # y up -> image rows down
        px += pad
        seg = np.diff(px, axis=0)
        speed = np.hypot(seg[:, 0], seg[:, 1])
        # pressure: slower (shorter) segments press harder; genuine strokes taper at their ends
        rel = speed / (speed.mean() + 1e-9)
        width = pen * np.clip(1.25 - 0.3 * rel, 0.6, 1.3)
        if not forged:
            n = len(width)
            ramp = np.minimum(np.arange(n) + 1, n - np.arange(n)) / max(n * 0.08, 1.0)
            width = width * (1.0 - style.taper * (1.0 - np.clip(ramp, 0, 1)))
        else:
            width = np.full_like(width, pen)
        pts = np.round(px * 16).astype(np.int32)
        for i in range(len(seg)):
            cv2.line(ink, tuple(pts[i]), tuple(pts[i + 1]), 255, max(int(round(width[i])), 1),
                     cv2.LINE_AA, shift=4)
    small = cv2.resize(ink, (max(w // ss, 1), max(h // ss, 1)), interpolation=cv2.INTER_AREA)
    img = 255.0 - small.astype(np.float32) / 255.0 * (255.0 - style.ink)
    out = np.clip(img, 0, 255).astype(np.uint8)
    return crop_to_ink(out, margin)


def crop_to_ink(img: np.ndarray, margin: int = 4, threshold: int = 230) -> np.ndarray:
    """``(H, W) uint8`` cropped to the pixels darker than ``threshold`` plus ``margin`` white pixels;
    an image without ink is returned unchanged."""
    ys, xs = np.nonzero(img < threshold)
    if len(ys) == 0:
        return img
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = img[y0:y1, x0:x1]
    return cv2.copyMakeBorder(crop, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=255)
