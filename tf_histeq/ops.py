"""The public operations: `equalize_hist` and `clahe`.

Each function validates its Python arguments and static shapes at trace time
(`_options`, `_convert`), turns the images into integer levels (`_convert`),
runs a kernel on the levels (`_histogram`, `_clahe`) and turns the levels back
into values of the input dtype. The defaults live in `_options`, which the
layers, `tf_histeq.data`, the NumPy API and the command line share.

Gradients: there are none. Equalization maps quantized levels through tables
built from counts, a piecewise-constant function of the pixels, so its true
derivative is zero almost everywhere and undefined at the steps. Rather than let
`tf.GradientTape` return a silent `None` (or a misleading partial gradient
through the clipped and NaN pixels), float inputs pass through
`tf.raw_ops.PreventGradient`: asking for a gradient through an op raises a
`LookupError` that names it. Put the ops before any trainable layer (where no
gradient is asked of them), or wrap their output in `tf.stop_gradient`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tf_histeq import _clahe, _convert, _histogram, _options
from tf_histeq._options import fail

# OpenCV's fixed-point RGB -> Y coefficients (cv::COLOR_RGB2YCrCb, 14 fractional bits):
# 0.299, 0.587 and 0.114 scaled by 2**14. Using them makes the Y plane, and so its
# histogram, identical to OpenCV's for 8-bit images.
_Y_COEFFS = (4899, 9617, 1868)
_Y_SHIFT = 14


class _Tables(NamedTuple):
    """Per-plane lookup tables from a global kernel, applied by `_run` in the output dtype."""

    luts: tf.Tensor  # int32 (N, Q, bins) levels
    keep: tf.Tensor  # bool (N, Q): return this plane unchanged
    joint: bool  # one table for all planes of an image (Q == 1)


# A kernel maps int32 levels (N, H, W, P) and an optional validity mask to either
# output levels of the same shape or per-plane tables.
_Kernel = Callable[[tf.Tensor, "tf.Tensor | None"], "tf.Tensor | _Tables"]


def equalize_hist(
    images,
    *,
    value_range=None,
    bins=None,
    method=_options.METHOD,
    channels=_options.CHANNEL_MODE,
    alpha=_options.ALPHA,
    mask=None,
):
    """Equalize the histogram of every channel of every image.

    Each (image, channel) plane gets its own histogram and lookup table; nothing
    is pooled across the batch, so an image's result never depends on its
    batch-mates (unlike `keras.layers.Equalization`).

    Parity: for uint8 input with the default `value_range` and `bins`,
    `method="opencv"` is bit-identical to `cv2.equalizeHist` applied plane by
    plane, and `method="pil"` to `PIL.ImageOps.equalize` (mask included) band by
    band, which torchvision's `equalize` also reproduces. Both formulas are
    generalised to other dtypes through `value_range` and `bins`.

    Args:
        images: Array or tensor of shape `(H, W)`, `(H, W, C)` or `(N, H, W, C)`,
            channels last, dtype uint8, uint16, int32, float16, bfloat16, float32
            or float64. The input is never modified.
        value_range: `(low, high)` of the pixel values. Defaults: uint8 `(0, 255)`,
            uint16 `(0, 65535)`, int32 `(0, 255)`, float `(0, 255)` (the Keras
            convention). Values outside it are clipped; float NaN pixels are left
            out of the histogram and stay NaN.
        bins: Number of histogram bins (levels). Defaults: 256 for uint8 and
            float, one per integer of `value_range` for uint16 and int32 (65536 for
            uint16). The output keeps as many distinct levels as the binning gives.
        method: Lookup-table formula: `"opencv"` (`cv2.equalizeHist`: the lowest
            occupied level maps to 0, the highest to the top) or `"pil"`
            (`PIL.ImageOps.equalize`).
        channels: `"per_channel"` (each channel alone), `"luminance"` (equalize
            the Y of YCbCr and add the change to R, G and B, so hue and the
            chroma differences are kept; needs 3 or 4 channels), or `"joint"` (one
            histogram over all channels of an image).
        alpha: Whether the last channel is alpha, which passes through
            unchanged: `"auto"` (the last of 2 or 4 channels: gray + alpha,
            RGBA), True (the last channel, whatever the count) or False (no
            alpha: every channel is equalized, e.g. dual-energy or RGB + NIR).
        mask: Optional bool (or 0/1) array of shape `(H, W)`, `(N, H, W)`, or
            either with a trailing 1. Only pixels inside the mask build the
            histogram; every pixel is mapped. An all-false mask leaves the image
            unchanged.

    Returns:
        A tensor with the same shape and dtype as `images`.

    Raises:
        TypeError: If `images` or `mask` has an unsupported dtype, or an argument
            has the wrong type.
        ValueError: If `images` is not rank 2, 3 or 4, or an argument has a bad value.
        LookupError: When a gradient through the result is computed (there is none).

    Example:
        >>> import numpy as np
        >>> import tf_histeq
        >>> img = np.array([[0, 1, 2, 2, 2, 2, 2]], dtype=np.uint8)
        >>> tf_histeq.equalize_hist(img).numpy()  # level 1 -> 42.5 -> 42: ties round to even
        array([[  0,  42, 255, 255, 255, 255, 255]], dtype=uint8)
    """
    with tf.name_scope("equalize_hist"):
        images = _convert.as_images(images)
        method = _options.check_option("equalize_hist", "method", method)
        channels = _options.check_option("equalize_hist", "channels", channels)
        alpha = _options.check_alpha(alpha)
        spec = _convert.level_spec(images.dtype, value_range, bins)
        build = _histogram.LUT_BUILDERS[method]
        joint = channels == "joint"

        def kernel(levels, valid):
            luts, keep = build(_histogram.histograms(levels, spec.bins, valid, joint=joint))
            return _Tables(luts, keep, joint)

        return _run("equalize_hist", images, spec, channels, alpha, mask, kernel)


def clahe(
    images,
    *,
    clip_limit=_options.CLIP_LIMIT,
    tile_grid_size=_options.TILE_GRID_SIZE,
    value_range=None,
    bins=None,
    channels=_options.CHANNEL_MODE,
    alpha=_options.ALPHA,
    mask=None,
):
    """Contrast Limited Adaptive Histogram Equalization of every channel of every image.

    The image is cut into a grid of tiles; each tile's histogram is clipped at
    `clip_limit` times its mean bin count, the excess is spread over all bins, and
    each pixel is mapped by bilinear interpolation between the four nearest tile
    lookup tables. Tile histograms are per image and per channel, never pooled
    over the batch.

    Parity: for uint8 (256 bins) and uint16 (65536 bins) input with the default
    `value_range` and `bins`, the result is bit-identical to
    `cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(cols, rows)).apply`
    plane by plane, for any clip limit and tile grid, including sizes not
    divisible by the grid (reflect-101 padding of both axes, as OpenCV does).
    Note that OpenCV's `tileGridSize` is `(cols, rows)`; ours is `(rows, cols)`.

    scikit-image's `equalize_adapthist(clip_limit=c)` counts the clip limit as a
    fraction of the tile's pixels: `clip_limit = c * bins` here clips at the same
    count (`c * 256` for 8-bit images), though skimage's algorithm differs in its
    redistribution and interpolation.

    For 12-bit data stored in uint16, `value_range=(0, 4095), bins=4096` keeps
    the result in 0..4095; the default (65536 bins) reproduces OpenCV, which
    stretches it to 16 bits.

    Args:
        images: Array or tensor of shape `(H, W)`, `(H, W, C)` or `(N, H, W, C)`,
            channels last, dtype uint8, uint16, int32, float16, bfloat16, float32
            or float64. The input is never modified.
        clip_limit: Contrast limit in OpenCV units (a multiple of the mean bin
            count of a tile); `<= 0` disables clipping. Either a number for
            every image, or a float tensor or NumPy array of shape `(N,)` with
            one limit per image of an `(N, H, W, C)` batch (shape `(1,)` or
            `()` for a single image): image `i` then equals
            `cv2.createCLAHE(float(clip_limit[i]), ...)`, e.g. for limits
            sampled per image (`tf_histeq.layers.RandomCLAHE`). A number must be
            finite; the values of a tensor are only known when it runs, so
            there a NaN or `-inf` disables clipping like `<= 0`, and `+inf` clips
            every bin at a count of 1, as OpenCV does with these values. A list
            or tuple is refused, so that `(1.0, 4.0)` is never mistaken for a
            range to sample from.
        tile_grid_size: Number of tiles as `(rows, cols)`; may exceed the image size.
        value_range: `(low, high)` of the pixel values; defaults as in
            `equalize_hist` (uint8 `(0, 255)`, uint16 `(0, 65535)`, float `(0, 255)`).
            Values outside it are clipped; float NaN pixels are left out of the
            histograms and stay NaN.
        bins: Number of histogram bins; defaults as in `equalize_hist` (256 for
            uint8 and float, 65536 for uint16).
        channels: `"per_channel"` or `"luminance"` (Y of YCbCr, needs 3 colour
            channels besides alpha).
        alpha: `"auto"`, True or False, as in `equalize_hist`: with `"auto"`
            the last of 2 or 4 channels is alpha and passes through unchanged.
        mask: Optional bool (or 0/1) array of shape `(H, W)`, `(N, H, W)`, or
            either with a trailing 1. Only pixels inside the mask build the tile
            histograms; every pixel is mapped. A tile with no pixel inside the
            mask uses the identity table.

    Returns:
        A tensor with the same shape and dtype as `images`.

    Raises:
        TypeError: If `images` or `mask` has an unsupported dtype, or an argument
            has the wrong type.
        ValueError: If `images` is not rank 2, 3 or 4, or an argument has a bad
            value (per-image `clip_limit` of rank above 1, or whose static
            length is not the number of images).
        InvalidArgumentError: When the graph runs, if per-image `clip_limit`
            and a batch of unknown size at trace time differ in length.
        LookupError: When a gradient through the result is computed (there is none).

    Example:
        >>> import numpy as np
        >>> import tf_histeq
        >>> img = np.tile(np.arange(100, 116, dtype=np.uint8), (16, 1))  # a 16-level ramp
        >>> tf_histeq.clahe(img, clip_limit=0, tile_grid_size=(1, 1)).numpy()[0]
        array([ 16,  32,  48,  64,  80,  96, 112, 128, 143, 159, 175, 191, 207,
               223, 239, 255], dtype=uint8)

        One limit per image: the first image is not clipped (a full stretch),
        the second is clipped at 2 (a gentle one).

        >>> pair = np.stack([img, img])[..., None]  # (2, 16, 16, 1)
        >>> out = tf_histeq.clahe(pair, clip_limit=np.array([0.0, 2.0]), tile_grid_size=(1, 1))
        >>> out.numpy()[:, 0, :4, 0]
        array([[ 16,  32,  48,  64],
               [103, 106, 109, 112]], dtype=uint8)
    """
    with tf.name_scope("clahe"):
        images = _convert.as_images(images)
        clip_limit = _clip_limits(clip_limit, images)
        grid = _options.check_grid(tile_grid_size)
        channels = _options.check_option("clahe", "channels", channels)
        alpha = _options.check_alpha(alpha)
        spec = _convert.level_spec(images.dtype, value_range, bins)

        def kernel(levels, valid):
            return _clahe.clahe_levels(levels, bins=spec.bins, clip_limit=clip_limit, grid=grid, valid=valid)

        return _run("clahe", images, spec, channels, alpha, mask, kernel)


OPS: dict[str, Callable] = {"equalize_hist": equalize_hist, "clahe": clahe}


def _clip_limits(clip_limit, images: tf.Tensor) -> float | tf.Tensor:
    """`clahe`'s `clip_limit`: a checked float, or a float tensor of per-image limits."""
    if isinstance(clip_limit, (list, tuple)):
        fail(
            TypeError,
            "clip_limit",
            "be a number, or a float tensor or NumPy array of shape (N,) with one limit per image",
            clip_limit,
            hint="to sample limits from a (min, max) range, use tf_histeq.layers.RandomCLAHE or "
            "tf_histeq.data.random_map_fn; for per-image limits pass np.asarray(...).",
        )
    if not (tf.is_tensor(clip_limit) or (isinstance(clip_limit, np.ndarray) and clip_limit.ndim)):
        return _options.check_clip_limit(clip_limit)
    limits = tf.convert_to_tensor(clip_limit)
    if not limits.dtype.is_floating:
        fail(TypeError, "clip_limit.dtype", "be a float dtype for per-image limits", limits.dtype.name)
    if limits.shape.rank is None or limits.shape.rank > 1:
        shape = None if limits.shape.rank is None else tuple(limits.shape)
        fail(ValueError, "clip_limit.shape", "be () or (N,): one limit per image", shape)
    count = images.shape[0] if images.shape.rank == 4 else 1
    length = limits.shape[0] if limits.shape.rank == 1 else None
    if length is not None and count is not None and length != count:
        fail(
            ValueError,
            "clip_limit.shape",
            f"be ({count},): one limit per image of images.shape={tuple(images.shape)}",
            tuple(limits.shape),
        )
    if limits.shape.rank == 1 and (length is None or count is None):
        # Known only when the graph runs (an unknown batch size or number of limits).
        check = tf.debugging.assert_equal(
            tf.size(limits),
            tf.shape(images)[0] if images.shape.rank == 4 else 1,
            message="`clip_limit` must have one limit per image (the first axis of `images`)",
        )
        with tf.control_dependencies([check]):
            limits = tf.identity(limits)
    return limits


def _run(
    op: str,
    images: tf.Tensor,
    spec: _convert.LevelSpec,
    channels: str,
    alpha: str | bool,
    mask,
    kernel: _Kernel,
) -> tf.Tensor:
    """Shared plumbing: layout, alpha, mask, NaN, luminance, gradients, levels <-> values."""
    rank = images.shape.rank
    x = _convert.to_nhwc(images)
    if x.dtype.is_floating:
        x = tf.raw_ops.PreventGradient(
            input=x,
            message=f"tf_histeq.{op} has no gradient (it maps quantized levels through count-based tables); "
            "apply it before any trainable layer, or wrap its output in tf.stop_gradient",
        )
    n_channels = x.shape[-1]
    has_alpha = _has_alpha(alpha, n_channels)
    n_color = n_channels - has_alpha
    if channels == "luminance" and n_color != 3:
        fail(
            ValueError,
            "channels",
            "be 'per_channel' or 'joint' unless images have 3 colour channels (RGB, or RGBA with alpha)",
            channels,
            hint=f"images have {n_channels} channel(s), {'the last as alpha' if has_alpha else 'no alpha'}.",
        )
    valid = _convert.prepare_mask(mask, images)
    if has_alpha:  # gray + alpha, RGBA: alpha passes through
        color, alpha_channel = x[..., :-1], x[..., -1:]
    else:
        color, alpha_channel = x, None

    levels, nan = _convert.to_levels(color, spec)
    if nan is not None:
        not_nan = tf.logical_not(nan)
        valid = not_nan if valid is None else tf.logical_and(valid, not_nan)

    keep = None
    if channels == "luminance":
        luma = _luma(levels)
        luma_valid = None if valid is None else tf.reduce_all(valid, axis=-1, keepdims=True)
        new_luma = kernel(luma, luma_valid)
        if isinstance(new_luma, _Tables):
            keep = new_luma.keep
            new_luma = _histogram.apply_luts(new_luma.luts, luma)
        out = _convert.to_values(tf.clip_by_value(levels + (new_luma - luma), 0, spec.bins - 1), spec)
    else:
        result = kernel(levels, valid)
        if isinstance(result, _Tables):
            # Map the small tables to output values first: one gather, in the output dtype.
            keep = result.keep
            out = _histogram.apply_luts(_convert.to_values(result.luts, spec), levels, joint=result.joint)
        else:
            out = _convert.to_values(result, spec)

    if not spec.exact and keep is not None:
        # Identity planes return the (clipped) input, not its quantized levels.
        out = tf.where(keep[:, None, None, :], _convert.clip_values(color, spec), out)
    if nan is not None:
        out = tf.where(nan, color, out)
    if alpha_channel is not None:
        out = tf.concat([out, alpha_channel], axis=-1)
    return _convert.from_nhwc(out, rank)


def _has_alpha(alpha: str | bool, n_channels: int) -> bool:
    """Whether the last of `n_channels` channels is alpha (see the `alpha` argument)."""
    if alpha == "auto":
        return n_channels in (2, 4)
    if alpha and n_channels < 2:
        fail(
            ValueError,
            "alpha",
            "be False or 'auto' for single-channel images (True takes the last channel as alpha)",
            alpha,
        )
    return bool(alpha)


def _luma(levels: tf.Tensor) -> tf.Tensor:
    """Y of YCbCr from RGB levels `(N, H, W, 3)`, rounded as OpenCV does; shape `(N, H, W, 1)`."""
    weights = tf.constant(_Y_COEFFS, tf.int32)
    weighted = tf.reduce_sum(levels * weights, axis=-1, keepdims=True)
    return tf.bitwise.right_shift(weighted + (1 << (_Y_SHIFT - 1)), _Y_SHIFT)
