"""Handwritten marks that are not signatures: dates, figures, short block-letter notes, ticks, circles,
underlines and arrows, drawn as jittered pen strokes.

Real scanned letters carry such marks beside their signatures (a date by the signature line, a figure in
the margin, a tick, a circled word), and a detector trained only on printed pages and signatures takes
them for signatures. ``add_handwritten_marks`` draws a few of them on a page image, away from the boxes
that must stay untouched, as negatives for detector training. Pure numpy/OpenCV; deterministic for a
given generator state.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

Stroke = tuple[tuple[float, float], ...]

# Single-stroke glyphs in a unit cell: x to the right (0..~0.7), y downwards (0 = cap height, 1 = baseline).
_GLYPHS: dict[str, tuple[Stroke, ...]] = {
    "0": (((0.35, 0.0), (0.1, 0.2), (0.05, 0.6), (0.3, 1.0), (0.55, 0.75), (0.6, 0.3), (0.35, 0.0)),),
    "1": (((0.15, 0.2), (0.35, 0.0), (0.35, 1.0)),),
    "2": (((0.05, 0.2), (0.3, 0.0), (0.55, 0.2), (0.45, 0.5), (0.05, 1.0), (0.6, 1.0)),),
    "3": (((0.05, 0.1), (0.35, 0.0), (0.55, 0.2), (0.3, 0.45), (0.6, 0.7), (0.35, 1.0), (0.05, 0.9)),),
    "4": (((0.45, 1.0), (0.45, 0.0), (0.05, 0.65), (0.6, 0.65)),),
    "5": (((0.55, 0.0), (0.12, 0.0), (0.08, 0.45), (0.4, 0.4), (0.58, 0.7), (0.35, 1.0), (0.05, 0.9)),),
    "6": (((0.5, 0.0), (0.15, 0.35), (0.08, 0.8), (0.3, 1.0), (0.55, 0.8), (0.4, 0.5), (0.1, 0.6)),),
    "7": (((0.05, 0.0), (0.6, 0.0), (0.25, 1.0)),),
    "8": (((0.3, 0.45), (0.08, 0.22), (0.3, 0.0), (0.52, 0.2), (0.3, 0.45), (0.05, 0.75), (0.3, 1.0),
           (0.58, 0.75), (0.3, 0.45)),),
    "9": (((0.55, 0.35), (0.3, 0.5), (0.08, 0.3), (0.3, 0.0), (0.55, 0.2), (0.5, 0.6), (0.3, 1.0)),),
    "/": (((0.5, -0.05), (0.05, 1.05)),),
    "-": (((0.08, 0.55), (0.45, 0.52)),),
    ".": (((0.1, 0.97), (0.14, 1.0)),),
    ",": (((0.15, 0.92), (0.1, 1.15)),),
    ":": (((0.1, 0.35), (0.13, 0.38)), ((0.1, 0.95), (0.13, 0.98))),
    "$": (((0.55, 0.15), (0.3, 0.05), (0.08, 0.25), (0.3, 0.5), (0.55, 0.75), (0.3, 0.95), (0.05, 0.85)),
          ((0.3, -0.1), (0.3, 1.1))),
    "A": (((0.0, 1.0), (0.3, 0.0), (0.6, 1.0)), ((0.15, 0.6), (0.45, 0.6))),
    "C": (((0.6, 0.15), (0.35, 0.0), (0.05, 0.3), (0.1, 0.8), (0.4, 1.0), (0.62, 0.85)),),
    "D": (((0.05, 0.0), (0.05, 1.0), (0.4, 0.92), (0.58, 0.5), (0.4, 0.08), (0.05, 0.0)),),
    "E": (((0.55, 0.0), (0.05, 0.0), (0.05, 1.0), (0.55, 1.0)), ((0.05, 0.5), (0.4, 0.5))),
    "F": (((0.55, 0.0), (0.05, 0.0), (0.05, 1.0)), ((0.05, 0.5), (0.4, 0.5))),
    "I": (((0.15, 0.0), (0.15, 1.0)),),
    "K": (((0.05, 0.0), (0.05, 1.0)), ((0.55, 0.0), (0.05, 0.6)), ((0.2, 0.45), (0.6, 1.0))),
    "L": (((0.05, 0.0), (0.05, 1.0), (0.5, 1.0)),),
    "N": (((0.05, 1.0), (0.05, 0.0), (0.55, 1.0), (0.55, 0.0)),),
    "O": (((0.32, 0.0), (0.05, 0.3), (0.1, 0.85), (0.4, 1.0), (0.62, 0.6), (0.55, 0.15), (0.32, 0.0)),),
    "P": (((0.05, 1.0), (0.05, 0.0), (0.45, 0.05), (0.5, 0.3), (0.05, 0.5)),),
    "R": (((0.05, 1.0), (0.05, 0.0), (0.45, 0.05), (0.5, 0.3), (0.05, 0.5), (0.55, 1.0)),),
    "S": (((0.55, 0.12), (0.3, 0.0), (0.05, 0.2), (0.3, 0.5), (0.58, 0.75), (0.3, 1.0), (0.02, 0.88)),),
    "T": (((0.0, 0.0), (0.6, 0.0)), ((0.3, 0.0), (0.3, 1.0))),
    "X": (((0.0, 0.0), (0.6, 1.0)), ((0.6, 0.0), (0.0, 1.0))),
    "Y": (((0.0, 0.0), (0.3, 0.5), (0.6, 0.0)), ((0.3, 0.5), (0.3, 1.0))),
    "c": (((0.45, 0.5), (0.25, 0.42), (0.05, 0.7), (0.2, 1.0), (0.48, 0.92)),),
    "o": (((0.28, 0.42), (0.05, 0.65), (0.2, 1.0), (0.45, 0.85), (0.4, 0.5), (0.28, 0.42)),),
}
_NOTES = ("OK", "RE", "CC", "NO", "FILE", "PLS", "cc", "TO", "FAX", "SENT", "COPY", "ATT", "NOTE", "RECD")
MARK_KINDS = ("date", "figure", "note", "tick", "circle", "underline", "arrow", "cross")


def _smooth(points: np.ndarray, per_segment: int = 6) -> np.ndarray:
    """Catmull-Rom curve through ``points`` (N, 2): a pen's rounded path instead of a polyline."""
    if len(points) < 3:
        return points
    p = np.vstack([points[:1], points, points[-1:]])
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    out.append(p[-2:-1])
    return np.vstack(out)


def _text_strokes(text: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Strokes of ``text`` in units of the glyph height, each glyph jittered, slanted and spaced by hand."""
    unknown = sorted({ch for ch in text if ch != " " and ch not in _GLYPHS})
    if unknown:
        raise ValueError(f"no handwritten glyph for {unknown!r} in {text!r}")
    slant = float(rng.uniform(-0.35, 0.1))  # x shift per unit of height above the baseline
    strokes, x = [], 0.0
    for ch in text:
        if ch == " ":
            x += float(rng.uniform(0.35, 0.6))
            continue
        scale = float(rng.uniform(0.85, 1.1))
        drift = float(rng.normal(0.0, 0.05))
        width = 0.0
        for stroke in _GLYPHS[ch]:
            pts = np.array(stroke, np.float64) * scale
            pts += rng.normal(0.0, 0.035, pts.shape)
            pts[:, 0] += slant * (1.0 - pts[:, 1]) + x
            pts[:, 1] += drift
            strokes.append(pts)
            width = max(width, float(np.max(np.array(stroke)[:, 0])) * scale)
        x += width + float(rng.uniform(0.12, 0.3))
    return strokes


def _text(rng: np.random.Generator, kind: str) -> str:
    d, m, y = int(rng.integers(1, 29)), int(rng.integers(1, 13)), int(rng.integers(60, 100))
    if kind == "date":
        sep = "/-."[int(rng.integers(3))]
        year = f"19{y}" if rng.random() < 0.3 else str(y)
        return f"{m}{sep}{d}{sep}{year}" if rng.random() < 0.7 else f"{d}{sep}{m}{sep}{year}"
    if kind == "figure":
        value = int(rng.integers(1, 100000))
        text = f"{value:,}" if rng.random() < 0.5 else str(value)
        return ("$" + text) if rng.random() < 0.4 else text
    words = [_NOTES[int(rng.integers(len(_NOTES)))] for _ in range(int(rng.integers(1, 3)))]
    if rng.random() < 0.4:
        words.append(str(int(rng.integers(1, 999))))
    return " ".join(words)


def _shape_strokes(rng: np.random.Generator, kind: str) -> list[np.ndarray]:
    """A tick, circle, underline, arrow or cross in units of its height."""
    def j(pts: list[tuple[float, float]]) -> np.ndarray:  # a hand's wobble on each point
        return np.array(pts, np.float64) + rng.normal(0.0, 0.04, (len(pts), 2))

    if kind == "tick":
        return [j([(0.0, 0.55), (0.3, 1.0), (0.9, 0.0)])]
    if kind == "circle":
        w = float(rng.uniform(1.5, 5.0))
        t = np.linspace(0.0, 2 * np.pi * float(rng.uniform(1.0, 1.2)), 24)
        pts = np.stack([w / 2 * (1 + np.cos(t)), 0.5 * (1 + np.sin(t))], 1)
        return [pts + rng.normal(0.0, 0.03, pts.shape)]
    if kind == "underline":
        w = float(rng.uniform(3.0, 10.0))
        return [j([(0.0, 0.5), (w / 2, 0.45 + float(rng.normal(0, 0.05))), (w, 0.5 + float(rng.normal(0, 0.1)))])]
    if kind == "arrow":
        w = float(rng.uniform(2.0, 5.0))
        return [j([(0.0, 0.6), (w / 2, 0.5), (w, 0.5)]), j([(w - 0.4, 0.2), (w, 0.5), (w - 0.4, 0.8)])]
    if kind == "cross":
        return [j([(0.0, 0.0), (0.8, 1.0)]), j([(0.8, 0.0), (0.0, 1.0)])]
    raise ValueError(f"unknown mark kind {kind!r}; expected one of {MARK_KINDS}")


def handwritten_mark(rng: np.random.Generator, height: int, kind: str | None = None) -> np.ndarray:
    """One mark as an ink-dark ``(H, W) uint8`` image (paper 255) whose glyphs are ``height`` px tall;
    ``kind`` one of :data:`MARK_KINDS` (random when ``None``)."""
    if height < 6:
        raise ValueError(f"mark height must be >= 6 px, got {height}")
    kind = kind if kind is not None else MARK_KINDS[int(rng.integers(len(MARK_KINDS)))]
    if kind in ("date", "figure", "note"):
        strokes = _text_strokes(_text(rng, kind), rng)
    else:
        strokes = _shape_strokes(rng, kind)
    thickness = int(rng.integers(1, 3 if height < 16 else 4))
    pad = thickness + 2
    pts = [_smooth(s) * height for s in strokes]
    every = np.vstack(pts)
    lo, hi = every.min(axis=0), every.max(axis=0)
    size = np.ceil(hi - lo).astype(int) + 2 * pad
    canvas = np.full((max(size[1], 1), max(size[0], 1)), 255, np.uint8)
    ink = int(rng.integers(10, 110))
    for p in pts:
        q = np.round((p - lo + pad) * 4).astype(np.int32).reshape(-1, 1, 2)  # 2 fractional bits
        cv2.polylines(canvas, [q], False, ink, thickness, cv2.LINE_AA, shift=2)
    return canvas


def add_handwritten_marks(image: np.ndarray, rng: np.random.Generator, count: int,
                          avoid: Sequence[tuple[float, float, float, float]] = (),
                          height_range: tuple[float, float] = (0.012, 0.03)) -> np.ndarray:
    """``image`` ``(H, W) uint8`` with up to ``count`` marks darkened in (minimum of page and mark).

    Glyph heights are drawn from ``height_range`` (fractions of the page height: about 10-24 pt on a
    letter page). A mark is not placed where its box, grown by half its height, would touch any of
    ``avoid`` (normalized ``x0, y0, x1, y1``) or an earlier mark; up to ten tries each.
    """
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"page must be (H, W) uint8, got {image.shape} {image.dtype}")
    if count < 0:
        raise ValueError(f"mark count must be >= 0, got {count}")
    lo_h, hi_h = height_range
    if not 0.0 < lo_h <= hi_h < 0.5:
        raise ValueError(f"height_range must satisfy 0 < low <= high < 0.5, got {height_range}")
    out = image.copy()
    h, w = out.shape
    blocked = [(x0 * w, y0 * h, x1 * w, y1 * h) for x0, y0, x1, y1 in avoid]
    for _ in range(count):
        mark = handwritten_mark(rng, max(6, int(round(float(rng.uniform(lo_h, hi_h)) * h))))
        mh, mw = mark.shape
        if mh >= h or mw >= w:
            continue
        for _try in range(10):
            x, y = int(rng.integers(0, w - mw)), int(rng.integers(0, h - mh))
            gap = 0.5 * mh
            if all(x + mw + gap < bx0 or x - gap > bx1 or y + mh + gap < by0 or y - gap > by1
                   for bx0, by0, bx1, by1 in blocked):
                np.minimum(out[y:y + mh, x:x + mw], mark, out=out[y:y + mh, x:x + mw])
                blocked.append((x, y, x + mw, y + mh))
                break
    return out
