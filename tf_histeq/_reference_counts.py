"""The reference of `match_histograms` as counts for given images: ingestion, in TensorFlow.

`reference_counts` turns what a user passes as `reference` (an image or
batch, a 1-D array of counts, a `tf_histeq.Histogram`) into float64 `Counts`
checked against the images; `layer_counts` checks counts held in a tensor
(the `HistogramMatching` layer's weights); `check_fit` is the same check for
what the command line knows before decoding (a dtype's levels and a channel
count); `pooled_histogram` is `tf_histeq.reference_histogram`. The matching
kernel (`tf_histeq._matching`) receives the counts tensor only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tf_histeq import _convert, _histogram
from tf_histeq._options import fail
from tf_histeq._reference import FrozenArray, Histogram, check_counts, unfreeze

_F64 = tf.float64


class Counts(NamedTuple):
    """Reference counts float64 `(R, bins)` (R: 1 for every channel, or one per colour channel)."""

    counts: tf.Tensor
    value_range: tuple | None  # of the images counted, when known


def reference_counts(reference, reference_mask, images: tf.Tensor, spec: _convert.LevelSpec, has_alpha: bool) -> Counts:
    """Turn the `reference` of `match_histograms` into checked `Counts` for `images`.

    A `Histogram` or a 1-D array is taken as counts; anything else is an image
    (or batch of images) read like `images`. A reference known when the function
    is traced (a NumPy array, an eager tensor, a constant) is counted once, then,
    and its values are checked; a symbolic one is counted in the graph.
    """
    n_channels = images.shape[-1] if images.shape.rank > 2 else 1
    n_color = n_channels - has_alpha
    reference = unfreeze(reference)
    if reference is None:
        fail(TypeError, "reference", "be an image, a (bins,) array of counts or a tf_histeq.Histogram", None)
    if isinstance(reference, Histogram):
        counts = Counts(tf.constant(reference.counts), reference.value_range)
    elif _rank(reference) == 1:
        counts = _array_counts(reference, reference_mask)
    else:
        counts = _image_counts(reference, unfreeze(reference_mask), images, spec, has_alpha, n_color)
    _check_fit(counts.counts.shape, counts.value_range, spec, n_color)
    return counts


def layer_counts(
    counts: tf.Tensor, value_range, images: tf.Tensor, spec: _convert.LevelSpec, has_alpha: bool
) -> Counts:
    """Checked `Counts` from float64 `(R, bins)` counts held in a tensor, recorded on images of `value_range`."""
    n_channels = images.shape[-1] if images.shape.rank > 2 else 1
    _check_fit(counts.shape, value_range, spec, n_channels - has_alpha)
    return Counts(counts, value_range)


def check_fit(reference: Histogram, spec: _convert.LevelSpec, colour_channels: int) -> None:
    """Raise `match_histograms`'s ValueError if `reference` does not fit images read as `spec`.

    For callers that know the images' levels (`_convert.level_spec` of their
    dtype and options) and colour channels (alpha left out) before they have
    any image, as the command line does from file headers.
    """
    _check_fit(reference.counts.shape, reference.value_range, spec, colour_channels)


def _rank(value) -> int | None:
    if tf.is_tensor(value):
        return value.shape.rank
    try:
        return np.ndim(value)
    except ValueError:  # ragged lists: the image path reports them
        return None


def _array_counts(reference, reference_mask) -> Counts:
    if reference_mask is not None:
        fail(ValueError, "reference_mask", "be None when `reference` is a histogram (counts)", "an array")
    static = _static(reference)
    if static is not None:
        return Counts(tf.constant(check_counts(static, name="reference")), None)
    if not reference.dtype.is_integer and not reference.dtype.is_floating:
        fail(TypeError, "reference.dtype", "be a number type (counts per level)", reference.dtype.name)
    return Counts(tf.cast(reference, _F64)[None], None)


def _check_fit(shape, value_range, spec: _convert.LevelSpec, n_color: int) -> None:
    rows, bins = shape
    if bins != spec.bins:
        fail(ValueError, "reference.bins", f"be {spec.bins}, the number of levels (bins) of the images", bins)
    if rows not in (1, n_color):
        expected = "1" if n_color == 1 else f"1 or {n_color}"
        fail(ValueError, "reference.channels", f"be {expected}, the colour channels of the images", rows)
    if value_range is not None and tuple(value_range) != (spec.low, spec.high):
        fail(
            ValueError,
            "reference.value_range",
            f"be {(spec.low, spec.high)}, the value_range of the images",
            tuple(value_range),
        )


def _image_counts(reference, reference_mask, images, spec, has_alpha, n_color) -> Counts:
    """Counts of a reference image `(H', W')`, `(H', W', C)` or batch `(N', H', W', C)`."""
    n_channels = n_color + has_alpha

    def count(reference, reference_mask):
        ref = _convert.as_images(reference, name="reference")
        if ref.dtype != images.dtype:
            if images.dtype.is_integer:
                fail(
                    TypeError,
                    "reference.dtype",
                    f"be {images.dtype.name}, the dtype of the images (an image reference is read like them)",
                    ref.dtype.name,
                )
            ref = tf.cast(ref, images.dtype)  # float images: any reference, read through the same value_range
        color = _convert.to_nhwc(ref)
        if color.shape[-1] == n_channels and has_alpha:
            color = color[..., :-1]
        elif color.shape[-1] not in (1, n_color):
            _fail_channels(ref, n_color, has_alpha)
        if color.shape[:3].is_fully_defined() and color.shape[:3].num_elements() == 0:
            fail(ValueError, "reference.shape", "have at least one pixel", tuple(ref.shape))
        return _level_counts(ref, color, reference_mask, spec, name="reference_mask"), color

    static, static_mask = _static(reference), _static(reference_mask)
    if static is None or (reference_mask is not None and static_mask is None):
        return Counts(count(reference, reference_mask)[0], (spec.low, spec.high))
    with tf.init_scope():  # known now: count it once, outside any graph
        counts, color = count(static, static_mask)
        counts, color = counts.numpy(), color.numpy().astype(np.float64)
    if color.size and not np.isnan(color).all():
        low, high = np.nanmin(color), np.nanmax(color)
        if low < spec.low or high > spec.high:
            fail(
                ValueError,
                "(reference.min(), reference.max())",
                f"lie within the images' value_range {(spec.low, spec.high)}",
                (low.item(), high.item()),
            )
    if not (counts.sum(axis=-1) > 0).all():
        name = "reference" if reference_mask is None else "reference_mask"
        fail(ValueError, name, "leave at least one pixel (not NaN) of the reference in every channel", "no pixel")
    return Counts(tf.constant(counts), (spec.low, spec.high))


def _fail_channels(ref: tf.Tensor, n_color: int, has_alpha: bool) -> None:
    """Refuse a reference image whose channels fit neither one histogram for all nor one per colour channel."""
    if n_color == 1:
        expected = "have 1 channel" + (" (or 2 with alpha)" if has_alpha else "") + ", like the gray images"
        hint = "convert the reference to gray, or pass a tf_histeq.Histogram of 1 row."
    else:
        expected = f"have 1 or {n_color} channels" + (f" (or {n_color + 1} with alpha)" if has_alpha else "")
        expected += ", like the images"
        hint = None
    fail(ValueError, "reference.shape", expected, tuple(ref.shape), hint=hint)


def check_selects_pixels(mask, images: tf.Tensor, *, name: str = "mask") -> None:
    """Raise if a mask known now (NumPy, eager, constant) leaves an image with no pixel inside."""
    static = _static(unfreeze(mask))
    if static is None:
        return
    with tf.init_scope():
        valid = _convert.prepare_mask(static, images, name=name).numpy()
    inside = valid.reshape(valid.shape[0], -1).any(axis=1)
    if valid.size and not inside.all():
        empty = np.flatnonzero(~inside).tolist()
        fail(ValueError, name, "select at least one pixel of every image", f"no pixel inside for image(s) {empty}")


def _static(value) -> np.ndarray | None:
    """The value of `value` if it is known now (NumPy, list, eager tensor, constant), else None."""
    if value is None or isinstance(value, tf.Variable):
        return None
    if tf.is_tensor(value):
        return tf.get_static_value(value)
    try:
        return np.asarray(value)
    except ValueError:  # ragged lists: reported by the tensor conversion
        return None


# --------------------------------------------------------------------------- pooled references


def pooled_histogram(
    data, *, value_range, bins, mask, has_alpha: Callable[[int], bool], spatial_dims: int = 2
) -> Histogram:
    """`tf_histeq.reference_histogram`: the counts of all images in `data`, per colour channel.

    `has_alpha(channels)` applies the `alpha` option to a channel count;
    `spatial_dims=3` reads the elements (and `mask`) as volumes.
    """
    given_mask = unfreeze(mask)

    def count(item, spec, name):
        images, mask, _ = _convert.as_layout(item, given_mask, spatial_dims, name=name)
        color = _convert.to_nhwc(images)
        if has_alpha(color.shape[-1]):
            color = color[..., :-1]
        return _level_counts(images, color, mask, spec, name="mask")

    if isinstance(data, tf.data.Dataset):
        element = data.element_spec[0] if isinstance(data.element_spec, tuple) else data.element_spec
        if not isinstance(element, tf.TensorSpec):
            fail(TypeError, "data", "yield images, or tuples whose first item is the images", data.element_spec)
        spec = _convert.level_spec(element.dtype, value_range, bins)
        counted = data.map(  # no AutoGraph: no tensor-dependent Python control flow, much faster to trace
            tf.autograph.experimental.do_not_convert(lambda *item: count(item[0], spec, "data"))
        )
        zero = tf.zeros(counted.element_spec.shape, _F64)
        counts = counted.reduce(zero, lambda total, c: total + c).numpy()
    else:
        single = isinstance(data, (np.ndarray, FrozenArray)) or tf.is_tensor(data)
        counts, spec, dtype = None, None, None
        for index, item in enumerate([data] if single else data):
            name = "data" if single else f"data[{index}]"
            images = _convert.as_images(item, name=name, spatial_dims=spatial_dims)
            if spec is None:
                spec, dtype = _convert.level_spec(images.dtype, value_range, bins), images.dtype
            elif images.dtype != dtype:
                fail(TypeError, f"{name}.dtype", f"be {dtype.name}, like data[0]", images.dtype.name)
            item_counts = count(images, spec, name).numpy()
            if counts is not None and item_counts.shape != counts.shape:
                fail(
                    ValueError,
                    f"{name}.shape",
                    f"have {counts.shape[0]} colour channel(s), like data[0]",
                    tuple(images.shape),
                )
            counts = item_counts if counts is None else counts + item_counts
        if counts is None:
            fail(ValueError, "data", "hold at least one image", data)
    if not (counts.sum(axis=-1) > 0).all():
        fail(ValueError, "data", "have at least one pixel (inside the mask, not NaN) in every channel", "no pixel")
    return Histogram(counts, value_range=(spec.low, spec.high))


def _level_counts(images, color, mask, spec, *, name) -> tf.Tensor:
    """float64 `(C, bins)`: levels of `color` `(N, H, W, C)`, pooled over N; `mask` fits `images`."""
    valid = _convert.prepare_mask(mask, images, name=name)
    levels, nan = _convert.to_levels(color, spec)
    if nan is not None:
        valid = tf.logical_not(nan) if valid is None else tf.logical_and(valid, tf.logical_not(nan))
    return tf.reduce_sum(tf.cast(_histogram.histograms(levels, spec.bins, valid), _F64), axis=0)
