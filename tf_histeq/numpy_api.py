"""NumPy in, NumPy out: the ops for `ImageDataGenerator` and offline NumPy code.

`histogram_equalization(image)` is a drop-in for the NumPy function of the same
name that projects pass to `ImageDataGenerator(preprocessing_function=...)`, and
`preprocessing_function(op, **kwargs)` returns a configured callable for any op.
Both return exactly what `tf_histeq.equalize_hist` / `tf_histeq.clahe` return
for the same array, so data pre-computed offline equals data equalized in a
model or in `tf.data`.

In Keras 3 (3.15) `ImageDataGenerator` lives only at
`tf.keras.preprocessing.image.ImageDataGenerator` (not `keras.preprocessing.image`);
`tf_keras.preprocessing.image.ImageDataGenerator` (Keras 2) works the same way.

Each configuration, image shape and dtype is traced and XLA-compiled once, the
first time it is seen, and the compiled function is reused by every later call
(from any thread, any callable with the same configuration); the most recently
used 64 are kept. The callables are thread-safe, as `ImageDataGenerator`
workers need.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from tf_histeq import _convert, _options, ops
from tf_histeq._options import fail

__all__ = ["histogram_equalization", "preprocessing_function"]

_CACHE_SIZE = 64
_cache: collections.OrderedDict[tuple, Callable] = collections.OrderedDict()
_lock = threading.Lock()


def histogram_equalization(
    image,
    *,
    value_range=None,
    bins=None,
    method=_options.METHOD,
    channels=_options.CHANNEL_MODE,
    alpha=_options.ALPHA,
    mask=None,
):
    """Equalize the histogram of every channel of a NumPy image.

    NumPy in, NumPy out: the result is exactly `tf_histeq.equalize_hist(image,
    ...)` as an array, with the shape and dtype of `image`. The default suits
    `ImageDataGenerator(preprocessing_function=histogram_equalization)`, which
    passes one float32 `(H, W, C)` image of unscaled pixels (0..255, before
    `rescale`): float input is read with `value_range=(0, 255)`.

    Replacing the original NumPy function of this name: that function pooled
    all channels into one histogram and used
    `lut = trunc((C(v) - C(0)) * 255 / (C(255) - C(0)))` in float64, returning
    float64. `channels="joint"` reproduces the pooling. The results still differ
    where the original departs from OpenCV's formula, which this one follows:

    - the lowest *occupied* level maps to 0 (the original subtracted the count
      of zeros, so an image without zeros never reached 0);
    - values are rounded half to even, not truncated (the original came out one
      level lower about half the time);
    - a constant image is returned unchanged (the original gave 255, or NaN
      cast to an integer for an all-zero image);
    - the output keeps the input dtype (float32 from `ImageDataGenerator`),
      not float64.

    Args:
        image: NumPy array (or anything `np.asarray` takes) of shape `(H, W)`,
            `(H, W, C)` or `(N, H, W, C)`, dtype uint8, uint16, int16, int32,
            float16, float32 or float64. It is not modified.
        value_range: `(low, high)` of the pixel values; uint8 `(0, 255)`, uint16
            `(0, 65535)`, int16 `(-32768, 32767)`, float `(0, 255)` by default.
        bins: Number of histogram bins; 256 for uint8 and float, 65536 for uint16
            and int16 by default.
        method: `"opencv"` (`cv2.equalizeHist`) or `"pil"` (`PIL.ImageOps.equalize`).
        channels: `"per_channel"`, `"joint"` (one histogram over all channels,
            like the original function), or `"luminance"` / `"lab"` (RGB:
            OpenCV's YCrCb / Lab round trip on 8-bit levels; see
            `tf_histeq.equalize_hist`).
        alpha: `"auto"` (the last of 2 or 4 channels is alpha and passes
            through unchanged), True (the last channel is alpha) or False (no alpha).
        mask: Optional bool (or 0/1) array of shape `(H, W)` (or as
            `tf_histeq.equalize_hist` accepts); only pixels inside it build
            the histograms.

    Returns:
        A NumPy array with the shape and dtype of `image`.

    Raises:
        TypeError: If `image` or `mask` has an unsupported dtype, or an argument
            has the wrong type.
        ValueError: If `image` is not rank 2, 3 or 4, or an argument has a bad value.

    Example:
        >>> import numpy as np
        >>> from tf_histeq import histogram_equalization
        >>> image = np.array([[[0], [1], [2], [2], [2], [2], [2]]], np.float32)  # (1, 7, 1), 0..255 scale
        >>> histogram_equalization(image)[..., 0]  # level 1 -> 42.5 -> 42: ties round to even
        array([[  0.,  42., 255., 255., 255., 255., 255.]], dtype=float32)
    """
    options = _options.arguments("equalize_hist", locals())  # the keywords of the signature
    mask = options.pop("mask")
    return _run("equalize_hist", _options.resolve("equalize_hist", options, exclude=("mask",)), image, _as_mask(mask))


def preprocessing_function(op: str = "equalize_hist", **kwargs: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Return a NumPy-in, NumPy-out equalizer configured once, for `ImageDataGenerator`.

    The returned callable takes one array and returns
    `tf_histeq.equalize_hist(image, **kwargs)` or `tf_histeq.clahe(image,
    **kwargs)` as a NumPy array of the same shape and dtype. Float input is
    read with `value_range=(0, 255)` by default, which is what
    `ImageDataGenerator` passes (float32 `(H, W, C)`, before `rescale`). The
    op name and the keyword arguments are checked now, with the functions'
    messages. A `mask` keyword is a fixed histogram mask used for every image.

    Args:
        op: `"equalize_hist"` or `"clahe"`.
        **kwargs: Keyword arguments of the function, with its defaults (for
            example `clip_limit=2.0, tile_grid_size=(8, 8)` for `"clahe"`).

    Returns:
        A thread-safe callable `image -> equalized image`.

    Raises:
        TypeError: If a keyword argument is not one of the function's or has the
            wrong type.
        ValueError: If `op` is unknown or an argument has a bad value.

    Example:
        >>> import numpy as np
        >>> import tf_histeq
        >>> equalize = tf_histeq.preprocessing_function("clahe", clip_limit=0, tile_grid_size=(1, 1))
        >>> ramp = np.tile(np.arange(100, 116, dtype=np.float32), (16, 1))[..., None]  # (16, 16, 1)
        >>> equalize(ramp)[0, :6, 0]
        array([16., 32., 48., 64., 80., 96.], dtype=float32)

        With Keras: `ImageDataGenerator(preprocessing_function=tf_histeq.preprocessing_function("clahe",
        clip_limit=3.0))`.
    """
    checked = _options.resolve(op, kwargs)
    mask = _as_mask(checked.pop("mask", None))

    def preprocess(image):
        return _run(op, checked, image, mask)

    preprocess.__name__ = f"{op}_preprocessing_function"
    preprocess.__qualname__ = preprocess.__name__
    preprocess.__doc__ = f"Return `tf_histeq.{op}(image, **{checked!r})` as a NumPy array."
    return preprocess


def _as_mask(mask) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype.kind not in "biuf":
        fail(TypeError, "mask.dtype", "be bool or a number type (nonzero = inside)", str(mask.dtype))
    return mask


def _as_image(image) -> np.ndarray:
    array = np.asarray(image)
    try:
        dtype = tf.as_dtype(array.dtype)
    except TypeError:
        dtype = None
    if dtype not in _convert.SUPPORTED_DTYPES:
        expected = ", ".join(d.name for d in _convert.SUPPORTED_DTYPES)
        fail(TypeError, "image.dtype", f"be one of {expected}", str(array.dtype))
    if array.ndim not in (2, 3, 4):
        fail(ValueError, "image.shape", "have rank 2 (H, W), 3 (H, W, C) or 4 (N, H, W, C)", array.shape)
    return array


def _run(op: str, checked: dict, image, mask: np.ndarray | None) -> np.ndarray:
    array = _as_image(image)
    config = tuple(sorted(checked.items()))
    mask_key = None if mask is None else (mask.dtype.str, mask.shape)
    key = (op, config, array.dtype.str, array.shape, mask_key)
    compiled = _compiled(key, ops.OPS[op], checked, array, mask)
    args = (array,) if mask is None else (array, mask)
    out = compiled(*map(tf.constant, args)).numpy()
    # ImageDataGenerator rescales the result in place.
    return out if out.flags.writeable else out.copy()


def _compiled(key: tuple, function: Callable, checked: dict, array: np.ndarray, mask: np.ndarray | None) -> Callable:
    """Return the compiled function for `key`, tracing it once (under the lock) on first use."""
    with _lock:
        compiled = _cache.get(key)
        if compiled is not None:
            _cache.move_to_end(key)
            return compiled

        def equalize(*args):
            return function(args[0], mask=args[1] if len(args) > 1 else None, **checked)

        signature = [tf.TensorSpec(array.shape, array.dtype)]
        if mask is not None:
            signature.append(tf.TensorSpec(mask.shape, mask.dtype))
        compiled = tf.function(equalize, input_signature=signature, jit_compile=True).get_concrete_function()
        _cache[key] = compiled
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return compiled
