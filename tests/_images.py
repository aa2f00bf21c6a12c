"""Designed low-contrast test images.

Uniform noise is already equalized and says little about an equalizer; these
images concentrate their levels so that every lookup table does real work.
Each factory takes `(shape, dtype)` and is deterministic.
"""

from __future__ import annotations

import numpy as np

_TOP = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def _scale(unit: np.ndarray, dtype) -> np.ndarray:
    """Map values in [0, 1] to the full integer range of `dtype`."""
    top = _TOP[np.dtype(dtype)]
    return np.clip(np.rint(unit * top), 0, top).astype(dtype)


def _rng(shape, salt: int) -> np.random.Generator:
    return np.random.default_rng(abs(hash((tuple(shape), salt))) % (2**32))


def band(low: float, high: float):
    """Smooth gradient plus noise confined to [low, high] (fractions of the range)."""

    def make(shape, dtype=np.uint8):
        rng = _rng(shape, 1)
        h, w = shape[:2]
        yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
        base = (0.6 * xx + 0.4 * yy)[..., None] if len(shape) == 3 else 0.6 * xx + 0.4 * yy
        base = np.broadcast_to(base, shape) + rng.normal(0, 0.08, shape)
        unit = low + (high - low) * np.clip(base, 0, 1)
        return _scale(unit, dtype)

    return make


def beta(a: float, b: float, low: float = 0.2, high: float = 0.7):
    """Beta(a, b)-distributed pixels squeezed into [low, high]."""

    def make(shape, dtype=np.uint8):
        unit = low + (high - low) * _rng(shape, 2).beta(a, b, shape)
        return _scale(unit, dtype)

    return make


def two_levels(first: float, second: float):
    """Two levels in a blocky pattern (a tie-heavy case)."""

    def make(shape, dtype=np.uint8):
        pick = _rng(shape, 3).random(shape) < 0.3
        return _scale(np.where(pick, second, first), dtype)

    return make


def no_zeros():
    """A dim image whose lowest level is well above 0 (OpenCV anchors at the lowest occupied level)."""

    def make(shape, dtype=np.uint8):
        unit = 0.4 + 0.05 * _rng(shape, 4).standard_normal(shape)
        return _scale(np.clip(unit, 0.35, 0.5), dtype)

    return make


def full_range():
    """Dark-heavy image that still touches both ends of the range."""

    def make(shape, dtype=np.uint8):
        unit = _rng(shape, 5).exponential(0.08, shape)
        unit.flat[0], unit.flat[-1] = 0.0, 1.0
        return _scale(np.clip(unit, 0, 1), dtype)

    return make


def xray(border: int = 4):
    """A chest-X-ray-like phantom: soft blobs in a narrow band and a black collimation border."""

    def make(shape, dtype=np.uint8):
        rng = _rng(shape, 6)
        h, w = shape[:2]
        yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
        lungs = np.exp(-(((np.abs(xx) - 0.45) / 0.25) ** 2 + (yy / 0.6) ** 2))
        body = 0.45 + 0.15 * lungs - 0.05 * yy + rng.normal(0, 0.02, (h, w))
        body[: min(border, h // 4)], body[:, : min(border, w // 4)] = 0.0, 0.0
        if len(shape) == 3:
            body = np.repeat(body[..., None], shape[2], axis=2) + rng.normal(0, 0.01, shape)
        return _scale(np.clip(body, 0, 1), dtype)

    return make


def constant(level: float):
    def make(shape, dtype=np.uint8):
        return _scale(np.full(shape, level), dtype)

    return make


def xray_mask(shape, border: int = 4) -> np.ndarray:
    """The field inside `xray`'s collimation border."""
    mask = np.ones(shape[:2], bool)
    mask[: min(border, shape[0] // 4)], mask[:, : min(border, shape[1] // 4)] = False, False
    return mask


DESIGNED = {
    "band-40-55": band(0.4, 0.55),
    "beta-2-5": beta(2, 5),
    "beta-0.5-0.5": beta(0.5, 0.5),
    "two-levels": two_levels(0.2, 0.25),
    "no-zeros": no_zeros(),
    "full-range": full_range(),
    "xray": xray(),
}


# Four designed images that differ from one another: batches of them make per-image histograms matter.
VARIED = (band(0.4, 0.55), beta(2, 5), xray(), no_zeros())


def varied(index: int, shape, dtype=np.uint8) -> np.ndarray:
    """The `index`-th image of `VARIED` (cycling), of `shape` and `dtype`."""
    return VARIED[index % len(VARIED)](shape, dtype)


def batch(count: int, shape, dtype=np.uint8) -> np.ndarray:
    """`count` different designed images of `shape`, stacked: `(count, *shape)`."""
    return np.stack([varied(i, shape, dtype) for i in range(count)])
