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

XLA: `jit_compile="auto"` (the default) means what it means for
`tf_histeq.clahe` called eagerly, which these functions are: tf_histeq's one
runner (`tf_histeq.compiled_shapes`) compiles an image shape once it has run
uncompiled `tf_histeq._xla.COMPILE_AFTER_VALUES` values, each call counting
as at least `tf_histeq._xla.EAGER_CALL_VALUES` values (the fixed cost of an
uncompiled eager call): a large image compiles from its second call, a small
one (as `ImageDataGenerator` passes, one image per call) after a few dozen
calls, and a one-off call never waits about a second for the compiler. The
counts are shared with `tf_histeq.equalize_hist` / `tf_histeq.clahe` called
eagerly with the same options. `jit_compile=True` compiles each shape the
first time it is seen (what these functions always did before the option
existed), `False` never compiles. The callables are thread-safe, as
`ImageDataGenerator` workers need.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tf_histeq import _convert, _options, _standardize_ways, _xla, ops
from tf_histeq._options import fail

__all__ = ["histogram_equalization", "preprocessing_function", "standardize"]


def histogram_equalization(
    image,
    *,
    value_range=None,
    bins=None,
    method=_options.METHOD,
    channels=_options.CHANNEL_MODE,
    alpha=_options.ALPHA,
    mask=None,
    spatial_dims=2,
    jit_compile=_xla.JIT_COMPILE,
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
            `(H, W, C)` or `(N, H, W, C)` (volumes with `spatial_dims=3`), dtype uint8, uint16, int16, int32,
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
        spatial_dims: 2 (images, the shapes above) or 3 (volumes: `(D, H,
            W)`, `(D, H, W, C)` or `(N, D, H, W, C)`, one histogram per volume
            and channel), as in `tf_histeq.equalize_hist`.
        jit_compile: `"auto"`, True or False, as in `tf_histeq.equalize_hist`
            (see the module docstring).

    Returns:
        A NumPy array with the shape and dtype of `image`.

    Raises:
        TypeError: If `image` or `mask` has an unsupported dtype, or an argument
            has the wrong type.
        ValueError: If `image` does not have a rank of its layout (2, 3 or 4;
            3, 4 or 5 with `spatial_dims=3`), or an argument has a bad value.

    Example:
        >>> import numpy as np
        >>> from tf_histeq import histogram_equalization
        >>> image = np.array([[[0], [1], [2], [2], [2], [2], [2]]], np.float32)  # (1, 7, 1), 0..255 scale
        >>> histogram_equalization(image)[..., 0]  # level 1 -> 42.5 -> 42: ties round to even
        array([[  0.,  42., 255., 255., 255., 255., 255.]], dtype=float32)
    """
    options = _options.arguments("equalize_hist", locals())  # the keywords of the signature
    mask = options.pop("mask")
    checked = _options.resolve("equalize_hist", options, exclude=("mask",))
    runner = _xla.JitRunner(ops.OPS["equalize_hist"], checked, jit_compile)
    return _run(runner, image, _as_mask(mask), checked["spatial_dims"])


def preprocessing_function(
    op: str = "equalize_hist", *, jit_compile: str | bool = _xla.JIT_COMPILE, **kwargs: Any
) -> Callable[[np.ndarray], np.ndarray]:
    """Return a NumPy-in, NumPy-out equalizer configured once, for `ImageDataGenerator`.

    The returned callable takes one array and returns
    `tf_histeq.equalize_hist(image, **kwargs)` or `tf_histeq.clahe(image,
    **kwargs)` as a NumPy array of the same shape and dtype (for
    `"equalize_adapthist"`, scikit-image's float result, whose float input
    must lie in `[-1, 1]`: not `ImageDataGenerator`'s unscaled pixels). Float input is
    read with `value_range=(0, 255)` by default, which is what
    `ImageDataGenerator` passes (float32 `(H, W, C)`, before `rescale`). The
    op name and the keyword arguments are checked now, with the functions'
    messages. A `mask` keyword is a fixed histogram mask used for every image.

    Args:
        op: `"equalize_hist"`, `"clahe"`, or another op of `tf_histeq.ops.OPS`
            (`"equalize_adapthist"`).
        jit_compile: `"auto"`, True or False, as in `tf_histeq.clahe` (see
            the module docstring).
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
    runner = _xla.JitRunner(ops.OPS[op], checked, jit_compile)
    check_values = getattr(ops.OPS[op], "check_values", None)

    def preprocess(image):
        return _run(runner, image, mask, checked.get("spatial_dims", 2), check_values)

    preprocess.__name__ = f"{op}_preprocessing_function"
    preprocess.__qualname__ = preprocess.__name__
    preprocess.__doc__ = f"Return `tf_histeq.{op}(image, **{checked!r})` as a NumPy array."
    return preprocess


def standardize(image, op: str, *, mask=None, spatial_dims: int = 2, jit_compile=_xla.JIT_COMPILE, **kwargs):
    """Standardize a NumPy image or volume with an op of `tf_histeq.standardize`: NumPy in, float NumPy out.

    Exactly what the op returns for the same array, as an array (float32, or
    float64 for float64 input where the op keeps it). The ops are
    `tf_histeq.data.standardize_fn`'s: `"nyul_standardize"` (with
    `landmarks`), `"scale_intensity_percentiles"`, `"window"` (with
    `windows`), `"scale_intensity_range"`. The XLA policy is
    `histogram_equalization`'s.

    Args:
        image: A NumPy array in the layout of `spatial_dims`.
        op: The op's name.
        mask: Optional: the voxels counted (Nyúl, percentiles).
        spatial_dims: 2 (images) or 3 (volumes).
        jit_compile: `"auto"`, True or False.
        **kwargs: The op's keyword arguments.

    Returns:
        The standardized array.

    Example:
        >>> import numpy as np
        >>> from tf_histeq.numpy_api import standardize
        >>> standardize(np.array([[0, 50, 100]], np.uint8), "scale_intensity_range", a_min=0, a_max=100, b_min=0,
        ...             b_max=1).tolist()
        [[0.0, 0.5, 1.0]]
    """
    # No probe call: the op checks its keywords on this very image, in the call below.
    runner, tensors = _standardize_ways.configure(op, kwargs, spatial_dims, jit_compile, probe=False)
    out = runner(np.asarray(image), _as_mask(mask), **tensors).numpy()
    return out if out.flags.writeable else out.copy()


def _as_mask(mask) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype.kind not in "biuf":
        fail(TypeError, "mask.dtype", "be bool or a number type (nonzero = inside)", str(mask.dtype))
    return mask


def _run(runner: _xla.JitRunner, image, mask: np.ndarray | None, spatial_dims: int, check_values=None) -> np.ndarray:
    # The op's own checks, naming the NumPy argument; then the runner, which calls the op.
    if check_values is None:
        images = _convert.as_images(np.asarray(image), name="image", spatial_dims=spatial_dims)
    else:  # an op that reads its layout by `spatial_dims` and checks the values it is given (equalize_adapthist)
        images = np.asarray(image)
        check_values(images, name="image")
    out = runner(images, mask).numpy()
    # ImageDataGenerator rescales the result in place.
    return out if out.flags.writeable else out.copy()
