"""A genuine signature bent into a synthetic skilled forgery: the same shape, drawn by another hand.

A skilled forger copies the shape of a signature, but not its proportions: parts come out a little larger,
smaller, higher or further apart, and a slow, careful line wavers. ``imitation_warp`` makes such a copy of a
preprocessed signature (``transforms.preprocess.preprocess_signature``: ``(H, W) float32``, ink bright, 0..1)
with a smooth elastic displacement (the proportions) plus a finer one of small amplitude (the wavering line).
Used as extra skilled negatives of a signer in training (``models.train_signet --synthetic-forgeries``),
for signers of collections without forgeries above all. Pure and seeded: the same ``rng`` state gives the
same image.
"""
from __future__ import annotations

import cv2
import numpy as np

# Largest displacement of the smooth field, px on the 155 x 220 canvas: drawn uniformly from this range.
AMPLITUDE = (6.0, 12.0)
# Gaussian sigma of the smooth field, px: the size of the parts that move together.
SMOOTHNESS = (16.0, 28.0)
# Largest displacement of the fine field (the wavering line), px, and its sigma.
TREMOR_AMPLITUDE = (0.5, 1.5)
TREMOR_SMOOTHNESS = 2.5


def _field(shape: tuple[int, int], sigma: float, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """A ``(2, H, W) float32`` displacement field, Gaussian-smoothed noise scaled so its largest |value| is
    ``amplitude``."""
    noise = rng.standard_normal((2, *shape)).astype(np.float32)
    smooth = np.stack([cv2.GaussianBlur(n, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) for n in noise])
    peak = float(np.abs(smooth).max())
    return smooth * (amplitude / peak) if peak > 0 else smooth


def imitation_warp(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(H, W) float32`` signature (ink bright, 0..1) -> the same signature warped as a forger's copy, ``float32``.

    Displacement = a smooth field (sigma in ``SMOOTHNESS``, largest shift in ``AMPLITUDE``) + a fine one (sigma
    ``TREMOR_SMOOTHNESS``, largest shift in ``TREMOR_AMPLITUDE``); pixels pulled from outside the image are
    background (0).
    """
    if not isinstance(image, np.ndarray) or image.ndim != 2 or min(image.shape) < 2:
        raise ValueError(f"image must be a (H, W) array of at least 2 x 2, got {getattr(image, 'shape', type(image).__name__)}")
    if image.dtype != np.float32:
        raise ValueError(f"image must be float32 (ink bright, 0..1), got {image.dtype}")
    h, w = image.shape
    d = _field((h, w), rng.uniform(*SMOOTHNESS), rng.uniform(*AMPLITUDE), rng)
    d += _field((h, w), TREMOR_SMOOTHNESS, rng.uniform(*TREMOR_AMPLITUDE), rng)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    out = cv2.remap(image, xs + d[0], ys + d[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
