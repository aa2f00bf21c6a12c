"""The options of `_adapthist`, scikit-image's names and meanings: `kernel_size`, `clip_limit`, `nbins`.

Checked in Python at trace time, with the house message grammar (`_options.fail`).
"""

from __future__ import annotations

import math

import numpy as np

from tf_histeq._options import _is_int, _is_real, fail


def check_kernel_size(kernel_size) -> int | tuple[int, ...] | None:
    """Return `kernel_size` as None, an int or a tuple of 2 or 3 ints, each at least 1, before the shape is known.

    Lists (from JSON configs) and NumPy integers become tuples and ints, so
    equal configurations compare equal. Its length against the spatial axes
    is checked by `kernel_shape`, when the images are seen.

    Raises:
        TypeError: If `kernel_size` is not None, an int or a sequence of ints.
        ValueError: If it has a value below 1, or a length other than 2 or 3.
    """
    if kernel_size is None:
        return None
    if isinstance(kernel_size, np.ndarray) and kernel_size.ndim == 0:
        kernel_size = kernel_size.item()
    if _is_int(kernel_size):
        if kernel_size < 1:
            fail(ValueError, "kernel_size", "be at least 1 on every axis", kernel_size)
        return int(kernel_size)
    if not isinstance(kernel_size, (list, tuple, np.ndarray)):
        fail(TypeError, "kernel_size", "be None, an int or a sequence of ints", kernel_size)
    if not all(_is_int(k) for k in kernel_size):
        fail(TypeError, "kernel_size", "hold ints", kernel_size)
    if len(kernel_size) not in (2, 3):
        fail(ValueError, "kernel_size", "have one value per spatial axis (2 or 3)", kernel_size)
    if min(kernel_size) < 1:
        fail(ValueError, "kernel_size", "be at least 1 on every axis", kernel_size)
    return tuple(int(k) for k in kernel_size)


def check_clip_limit(clip_limit) -> float:
    """Return scikit-image's `clip_limit` as a float in `[0, 1]` (0: no clipping).

    Raises:
        TypeError: If `clip_limit` is not a number.
        ValueError: If it is NaN or outside [0, 1].
    """
    if isinstance(clip_limit, np.ndarray) and clip_limit.ndim == 0:
        clip_limit = clip_limit.item()
    if not _is_real(clip_limit):
        fail(TypeError, "clip_limit", "be a number in [0, 1]", clip_limit)
    if not math.isfinite(clip_limit) or not 0 <= clip_limit <= 1:
        fail(ValueError, "clip_limit", "be a number in [0, 1]", clip_limit)
    return float(clip_limit)


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
