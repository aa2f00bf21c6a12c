"""The public op `equalize_adapthist`: scikit-image's `exposure.equalize_adapthist`, 2-D and 3-D, exactly.

The op states its layout (`spatial_dims`), splits alpha off, checks float
values, and hands the colour channels to the private kernels: every (image,
channel) plane to `tf_histeq._adapthist.equalize_adapthist_planes`, or an
RGB image's HSV value channel to `tf_histeq._adapthist_hsv` (scikit-image's
`adapt_rgb(hsv_value)`), which document the algorithm step by step.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from tf_histeq import _adapthist, _adapthist_hsv, _compat, _convert, _options, _xla
from tf_histeq._options import fail

# The input dtypes, and the float dtype of the result for each (scikit-image's `_supported_float_type`).
OUTPUT_DTYPES = _adapthist.OUTPUT_DTYPES
_FLOATS = (tf.float32, tf.float64)
# The keywords that shape the graph (the tiling, the clip count): read as Python values.
_CONFIGURATION = ("kernel_size", "clip_limit", "nbins", "spatial_dims")
_LAYOUTS = {
    2: "rank 2 (H, W), 3 (H, W, C) or 4 (N, H, W, C) with spatial_dims=2",
    3: "rank 3 (D, H, W), 4 (D, H, W, C) or 5 (N, D, H, W, C) with spatial_dims=3",
}


def check_values(images, *, name: str = "images") -> None:
    """Refuse float images whose values are known now (NumPy, eager tensors) and leave `[-1, 1]`.

    scikit-image refuses float images outside `[-1, 1]` (`img_as_uint`);
    NaN and infinities are refused too. Values known only when a graph runs
    are not checked here: there the op returns NaN planes (see
    `equalize_adapthist`).

    Raises:
        ValueError: If a float value is NaN, infinite or outside `[-1, 1]`.
    """
    if isinstance(images, np.ndarray):
        values = images
    elif tf.is_tensor(images) and hasattr(images, "numpy") and images.dtype in _FLOATS:
        values = images.numpy()
    else:
        return
    if values.dtype.kind != "f":
        return
    outside = ~(np.abs(values) <= 1)
    if outside.any():
        counts = {
            "NaN": int(np.isnan(values).sum()),
            "inf": int(np.isinf(values).sum()),
            "finite outside [-1, 1]": int((np.isfinite(values) & outside).sum()),
        }
        fail(
            ValueError,
            name,
            "hold finite values in [-1, 1] (scikit-image's range for float images)",
            {k: v for k, v in counts.items() if v},
            hint="scale the images to [0, 1] first, e.g. divide 8-bit values by 255.",
        )


def _checks_values(door):
    """The eager checks of known float values, before the door (`_xla.eager_door`) runs the op.

    The NumPy functions, which run the op through the runner, call
    `check_values` themselves (the op's attribute of that name).
    """

    @functools.wraps(door)
    def op(images, *args, **kwargs):
        check_values(images)
        for name in _CONFIGURATION:  # Python values: the door passes arrays and tensors to its function per call
            value = kwargs.get(name)
            if isinstance(value, np.ndarray) or (tf.is_tensor(value) and hasattr(value, "numpy")):
                kwargs[name] = np.asarray(value).tolist()
        return door(images, *args, **kwargs)

    op.check_values = check_values
    return op


def _as_batch(images, spatial_dims: int) -> tuple[tf.Tensor, int]:
    """`images` as a checked `(N, *spatial, C)` tensor, and the caller's rank."""
    images = _convert.number_tensor(images, tuple(OUTPUT_DTYPES), expectation=_dtype_expectation())
    rank = images.shape.rank
    if rank is None or not spatial_dims <= rank <= spatial_dims + 2:
        hint = "a batch of volumes (N, D, H, W, C): pass spatial_dims=3" if rank == 5 and spatial_dims == 2 else None
        fail(ValueError, "images.shape", f"have {_LAYOUTS[spatial_dims]}", _shape(images), hint=hint)
    start = {spatial_dims: 0, spatial_dims + 1: 0, spatial_dims + 2: 1}[rank]
    known = images.shape[start : start + spatial_dims]
    if not known.is_fully_defined() or (rank > spatial_dims and images.shape[-1] is None):
        fail(
            ValueError,
            "images.shape",
            "have spatial sizes and channels known when tracing (the tiling depends on the sizes)",
            _shape(images),
            hint="set them in the input signature or call `tf.ensure_shape`.",
        )
    if rank == spatial_dims:
        images = tf.expand_dims(images, -1)
    if rank < spatial_dims + 2:
        images = tf.expand_dims(images, 0)
    return images, rank


def _shape(images: tf.Tensor):
    return tuple(images.shape) if images.shape.rank is not None else None


def _dtype_expectation() -> str:
    return "be one of " + ", ".join(d.name for d in OUTPUT_DTYPES) + " (scikit-image's dtypes)"


@_checks_values
@_xla.eager_door
@tf.autograph.experimental.do_not_convert  # plain Python control flow only: tracing stays fast
def equalize_adapthist(
    images,
    *,
    kernel_size=_options.KERNEL_SIZE,
    clip_limit=_options.ADAPTHIST_CLIP_LIMIT,
    nbins=_options.NBINS,
    spatial_dims=2,
    channels=_options.CHANNEL_MODE,
    alpha=_options.ALPHA,
    jit_compile=_xla.JIT_COMPILE,
):
    """Contrast Limited Adaptive Histogram Equalization as scikit-image computes it, of images or volumes.

    scikit-image's `exposure.equalize_adapthist`, with its parameter names
    and meanings, for every image (or volume) and channel on its own: a
    tile of `kernel_size` pixels (voxels) around every point, histograms of
    `nbins` bins over scikit-image's 14-bit internal image, clipped at
    `clip_limit` as a fraction of a tile's pixels, and multilinear
    (bilinear, trilinear) interpolation between the tiles' maps. Nothing is
    pooled across the batch. `tf_histeq.clahe` is OpenCV's algorithm (clip
    limit in OpenCV units, tiles as a grid), which this is not.

    Parity: image `n`, channel `c` of the result equals
    `skimage.exposure.equalize_adapthist(images[n, ..., c], kernel_size,
    clip_limit, nbins)` (the plane given alone) with 0 differing values, in
    float64 (integer and float64 input) and in float32 (float32 input),
    for uint8, uint16, int16, int32, float32 and float64 input, sizes not
    divisible by the kernel, any kernel size from 1 to the whole axis and
    clip limits from 0 to 1. Float32 bound: the final rescale
    `(r - rmin) / (rmax - rmin)` of integers below 2**14 is one correctly
    rounded float32 division, so each value is within half a float32 ulp
    (at most 2**-25) of the real quotient, and equals scikit-image's
    float32 value. With `channels="hsv_value"`, an RGB image equals
    `skimage.exposure.equalize_adapthist(image)` on the RGB array (its
    `adapt_rgb(hsv_value)`: RGB to HSV, the value channel equalized, back to
    RGB), within float64 rounding (0 differing values measured).

    Layout (never guessed from the shape; scikit-image reads any
    `(Z, Y, 3)` or `(Z, Y, 4)` array as an RGB picture): with
    `spatial_dims=2`, `(H, W)`, `(H, W, C)` or `(N, H, W, C)`; with
    `spatial_dims=3`, `(D, H, W)`, `(D, H, W, C)` or `(N, D, H, W, C)`. So
    a `(3, 64, 64)` array is a volume of 3 slices with `spatial_dims=3` and
    an image of 64 channels with `spatial_dims=2`. Spatial sizes and the
    channel count must be known when tracing; the batch may vary.

    Args:
        images: Array or tensor in the layout above, of uint8, uint16, int16,
            int32, float32 or float64 (scikit-image's `img_as_uint` reads
            the values: uint8 times 257, int16 negatives as 0, floats times
            65535 from `[-1, 1]`). The input is never modified.
        kernel_size: The tile size in pixels (voxels): None (`max(s // 8, 1)`
            for each spatial axis of size `s`), an int for every axis, or one
            int per spatial axis (anisotropic), each at least 1.
        clip_limit: The clip limit, a fraction in `[0, 1]` of a tile's
            pixels (`int(max(clip_limit * prod(kernel_size), 1))` counts); 0
            disables clipping. Not OpenCV's units (`tf_histeq.clahe`).
        nbins: Number of histogram bins, at least 1.
        spatial_dims: 2 (images) or 3 (volumes): how the shape is read.
        channels: `"per_channel"` (each channel alone, the default: the
            layout is stated, never inferred from a channel count) or
            `"hsv_value"` (scikit-image's mode for RGB images: 3 colour
            channels besides alpha, `spatial_dims=2`).
        alpha: `"auto"` (the last of 2 or 4 channels is alpha; none in
            volumes, `spatial_dims=3`), True (the
            last channel is alpha) or False (no alpha). Alpha passes through
            on the output's scale, as scikit-image's `img_as_float` reads it
            (uint8 255 becomes 1.0); scikit-image drops it.
        jit_compile: `"auto"`, True or False: XLA for eager calls, as in
            `tf_histeq.equalize_hist`.

    Float values outside `[-1, 1]` (NaN and infinities included):
    scikit-image raises, and so does this function for values it can read
    when called (NumPy arrays, eager tensors), with a `ValueError` naming
    `images`. Values known only when a graph runs (a `tf.function`, a layer
    in a model, `tf.data`) cannot raise without a round trip to the host;
    there every plane (every image in `"hsv_value"` mode) that holds such a
    value comes out all NaN.

    Returns:
        The images in `[0, 1]`, with the shape of `images`: float64 for
        integer and float64 input, float32 for float32 input (scikit-image's
        dtypes).

    Raises:
        TypeError: If `images` has an unsupported dtype, or an argument has
            the wrong type.
        ValueError: If the rank fits neither layout (a rank-5 input with
            `spatial_dims=2` is a batch of volumes), a spatial size or the
            channel count is unknown, a float value known now is outside
            `[-1, 1]`, or an argument has a bad value (`kernel_size` below 1
            or of another length than `spatial_dims`, `clip_limit` outside
            `[0, 1]` or NaN, `nbins` below 1, `"hsv_value"` without 3 colour
            channels or with volumes).
        LookupError: When a gradient through the result is computed (there is none).

    Example:
        >>> import numpy as np
        >>> import tf_histeq
        >>> ramp = np.tile(np.arange(8, dtype=np.uint8), (8, 1))  # 8 levels
        >>> tf_histeq.equalize_adapthist(ramp, kernel_size=8, clip_limit=0).numpy()[0]  # float64, k / 7
        array([0.        , 0.14285714, 0.28571429, 0.42857143, 0.57142857,
               0.71428571, 0.85714286, 1.        ])
    """
    with tf.name_scope("equalize_adapthist"):
        options = _options.resolve(
            "equalize_adapthist",
            dict(
                kernel_size=kernel_size,
                clip_limit=clip_limit,
                nbins=nbins,
                spatial_dims=spatial_dims,
                channels=channels,
                alpha=alpha,
            ),
        )
        spatial_dims = options["spatial_dims"]
        x, rank = _as_batch(images, spatial_dims)
        if x.dtype in _FLOATS:
            x = _compat.prevent_gradient(
                x,
                "tf_histeq.equalize_adapthist has no gradient (it maps quantized levels through count-based "
                "tables); apply it before any trainable layer, or wrap its output in tf.stop_gradient",
            )
        has_alpha = _options.has_alpha(_options.check_alpha(options["alpha"], spatial_dims=spatial_dims), x.shape[-1])
        colour = x[..., :-1] if has_alpha else x
        kernel = dict(kernel_size=options["kernel_size"], clip_limit=options["clip_limit"], nbins=options["nbins"])
        spatial_axes = list(range(1, spatial_dims + 1))
        if options["channels"] == "hsv_value":
            if spatial_dims != 2 or colour.shape[-1] != 3:
                fail(
                    ValueError,
                    "channels",
                    "be 'per_channel' unless the images are 2-D RGB (spatial_dims=2, 3 colour channels besides "
                    f"alpha; these have {colour.shape[-1]} with spatial_dims={spatial_dims}): 'hsv_value' is "
                    "scikit-image's mode for RGB images",
                    options["channels"],
                )
            out = _adapthist_hsv.equalize_adapthist_hsv(colour, **kernel)
            invalid_axes = [*spatial_axes, spatial_dims + 1]  # one RGB image: all its channels
        else:
            out = _adapthist.equalize_adapthist_planes(colour, spatial_dims=spatial_dims, **kernel)
            invalid_axes = spatial_axes  # one plane
        if colour.dtype in _FLOATS:  # scikit-image refuses values outside [-1, 1]: NaN planes here
            # Not `logical_not(abs(x) <= 1)`: Grappler rewrites it as `abs(x) > 1`, which is False for NaN.
            outside = tf.logical_or(tf.logical_not(tf.math.is_finite(colour)), tf.abs(colour) > 1)
            invalid = tf.reduce_any(outside, axis=invalid_axes, keepdims=True)
            # NaN computed from the (gradient-guarded) input: asking a gradient reaches the guard and raises.
            out = tf.where(invalid, tf.cast(colour, out.dtype) + np.nan, out)
        if has_alpha:  # on the output's scale, as scikit-image's img_as_float reads it
            out = tf.concat([out, tf.cast(_adapthist_hsv._as_float(x[..., -1:]), out.dtype)], axis=-1)
        if rank < spatial_dims + 2:
            out = out[0]
        return out[..., 0] if rank == spatial_dims else out
