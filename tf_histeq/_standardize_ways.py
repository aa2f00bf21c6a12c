"""The standardization ops behind `tf_histeq.data.standardize_fn` and `tf_histeq.numpy_api.standardize`.

One runner per configuration (`tf_histeq._xla.JitRunner`), the arguments
checked when the configuration is made, by one eager call of the op on a tiny
image (the op's own messages), so that a bad argument fails before a dataset
is mapped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from tf_histeq import _xla, standardize
from tf_histeq._options import check_choice, check_spatial_dims


def _nyul(images, mask=None, *, landmarks, **options):
    with tf.name_scope("nyul_standardize"):
        return standardize.nyul_standardize(images, landmarks, mask=mask, **options)


def _percentiles(images, mask=None, **options):
    with tf.name_scope("scale_intensity_percentiles"):
        return standardize.scale_intensity_percentiles(images, mask=mask, **options)


def _window(images, mask=None, *, windows, **options):
    del mask  # windows map every voxel alike
    return standardize.window(images, windows, **options)


def _range(images, mask=None, **options):
    del mask
    return standardize.scale_intensity_range(images, **options)


# The op names `standardize_fn` and `numpy_api.standardize` take, and their kernels.
OPS: dict[str, Callable[..., Any]] = {
    "nyul_standardize": _nyul,
    "scale_intensity_percentiles": _percentiles,
    "window": _window,
    "scale_intensity_range": _range,
}


def _frozen(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def configure(
    op: Any, kwargs: dict, spatial_dims: Any, jit_compile: Any, *, probe: bool = True
) -> tuple[_xla.JitRunner, dict]:
    """Check `op` and its keywords; return the runner and the per-call tensors (Nyúl's landmarks).

    `probe`: check the keywords now, by the op on a tiny image (for a map function, before a dataset is
    mapped); a caller that runs the op at once on its image (the NumPy function) leaves that to the call.
    """
    op = check_choice(op, name="op", choices=tuple(OPS))
    spatial_dims = check_spatial_dims(spatial_dims)
    kwargs = dict(kwargs)
    if "mask" in kwargs:
        raise TypeError("`mask` is no option of a configuration: pass it with each call (the NumPy function).")
    tensors = {}
    if op == "nyul_standardize":
        if "landmarks" not in kwargs:
            raise TypeError("standardize op 'nyul_standardize' needs `landmarks` (e.g. from tf_histeq.nyul_fit).")
        tensors["landmarks"] = tf.constant(standardize.check_landmarks(kwargs.pop("landmarks")), tf.float64)
    if probe:  # the op's own checks, on a tiny varied image of the layout
        tiny = np.arange(2 ** (spatial_dims + 1), dtype=np.float32).reshape((2,) * spatial_dims + (2,))[..., :1]
        OPS[op](tiny, **kwargs, **tensors, spatial_dims=spatial_dims)
    options = {key: _frozen(value) for key, value in kwargs.items()}
    return _xla.JitRunner(OPS[op], {**options, "spatial_dims": spatial_dims}, jit_compile), tensors
