"""A signature as the pipeline cuts it from a contract page: small, lighter or darker, blurred, compressed.

Signature datasets scan a signature large (SigComp's are about 400 px wide); on a page rendered at
150-200 dpi the same signature is 55-135 px tall, its thin strokes antialiased lighter, and a scanned page
adds blur, grain and JPEG blocks. ``page_rendering`` makes such a version of a dataset image, so that
SigNet can be trained on both (``models.train_signet --page-copies``). Pure and seeded: the same ``rng``
state gives the same image.
"""
from __future__ import annotations

import cv2
import numpy as np

from transforms.noise import scan_artifacts

# Ink height on the page, px: 28-46 pt signatures (transforms.synth_document) at 150-200 dpi are 58-128 px.
INK_HEIGHT = (55.0, 135.0)
# Ink darkness multiplier: < 1 lightens (a thin stroke antialiased over white), > 1 darkens (a pen on a scan).
INK_GAIN = (0.55, 1.5)
# Share of images that also go through scanner damage (blur, grain, speckle, JPEG).
SCAN_SHARE = 0.5
# Grey level under which a pixel counts as ink when measuring the ink's height.
INK_LEVEL = 200


def _check(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 2 or image.dtype != np.uint8 or min(image.shape) < 1:
        raise ValueError(f"image must be a non-empty (H, W) uint8 array (ink dark), got "
                         f"{getattr(image, 'shape', type(image).__name__)} {getattr(image, 'dtype', '')}")


def ink_height(image: np.ndarray) -> int:
    """Rows between the first and last row holding ink (grey < ``INK_LEVEL``); the image height if none."""
    _check(image)
    rows = np.flatnonzero((image < INK_LEVEL).any(axis=1))
    return int(rows[-1] - rows[0] + 1) if rows.size else image.shape[0]


def page_rendering(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(H, W) uint8`` signature (ink dark) -> the same signature as on a rendered or scanned page, ``uint8``.

    Shrunk (never enlarged) so its ink is ``INK_HEIGHT`` px tall, its ink lightened or darkened by a gain
    drawn from ``INK_GAIN``, and for ``SCAN_SHARE`` of the draws passed through ``scan_artifacts``
    (no rotation). The result is smaller than the input; preprocessing scales it back.
    """
    _check(image)
    h, w = image.shape
    target = float(rng.uniform(*INK_HEIGHT))
    gain = float(rng.uniform(*INK_GAIN))
    scanned = rng.random() < SCAN_SHARE
    f = min(1.0, target / max(ink_height(image), 1))
    out = image
    if f < 1.0:
        out = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    ink = (255.0 - out.astype(np.float32)) * gain
    out = np.clip(255.0 - ink + 0.5, 0, 255).astype(np.uint8)
    if scanned and min(out.shape) >= 8:
        out = scan_artifacts(out, rng, rotate=False, jpeg=True)
    return out
