"""The options of `_adapthist`, scikit-image's names and meanings: `kernel_size`, `clip_limit`, `nbins`.

Checked in Python at trace time, with the house message grammar (`_options.fail`).
"""

from __future__ import annotations

import math

import numpy as np

from tf_histeq._options import _is_int, _is_real, fail


def kernel_shape(kernel_size, spatial_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Return skimage's `kernel_size` per axis: `max(s // 8, 1)` by default, an int broadcast, or one per axis.

    Raises:
        TypeError: If `kernel_size` is not None, an int or a sequence of ints.
        ValueError: If it has the wrong length or a value below 1.
    """
    rank = len(spatial_shape)
    if kernel_size is None:
        return tuple(max(s // 8, 1) for s in spatial_shape)
    if _is_int(kernel_size):
        kernel = (int(kernel_size),) * rank
    elif isinstance(kernel_size, (list, tuple, np.ndarray)):
        if len(kernel_size) != rank:
            fail(ValueError, "kernel_size", f"have one value per spatial axis ({rank})", kernel_size)
        if not all(_is_int(k) for k in kernel_size):
            fail(TypeError, "kernel_size", "hold ints", kernel_size)
        kernel = tuple(int(k) for k in kernel_size)
    else:
        fail(TypeError, "kernel_size", "be None, an int or a sequence of ints", kernel_size)
    if min(kernel) < 1:
        fail(ValueError, "kernel_size", "be at least 1 on every axis", kernel_size)
    return kernel


def clip_count(clip_limit: float, kernel_elements: int) -> int | None:
    """Return skimage's `clim`, or None where clipping cannot change a histogram.

    `clim = int(np.clip(clip_limit * kernel_elements, 1, None))` for
    `clip_limit > 0`; no clipping for 0, nor for `clim >= kernel_elements`
    (a tile's bins never exceed its voxel count).

    Raises:
        TypeError: If `clip_limit` is not a number.
        ValueError: If it is NaN or outside [0, 1].
    """
    if not _is_real(clip_limit):
        fail(TypeError, "clip_limit", "be a number in [0, 1]", clip_limit)
    if not math.isfinite(clip_limit) or not 0 <= clip_limit <= 1:
        fail(ValueError, "clip_limit", "be a number in [0, 1]", clip_limit)
    if clip_limit <= 0:
        return None
    clim = int(np.clip(float(clip_limit) * kernel_elements, 1, None))
    return clim if clim < kernel_elements else None


def check_nbins(nbins) -> int:
    """Return `nbins` as an int of at least 1 (skimage's own lower bound)."""
    if not _is_int(nbins):
        fail(TypeError, "nbins", "be an int of at least 1", nbins)
    if nbins < 1:
        fail(ValueError, "nbins", "be an int of at least 1", nbins)
    return int(nbins)
