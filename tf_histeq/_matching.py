"""Private TensorFlow kernel of histogram matching, and the reference counts it matches to.

The algorithm is scikit-image's `exposure.match_histograms`, plane by plane: a
source level `v` maps to

    np.interp(C_s(v) / N_s, [C_r(t) / N_r for t in T], [value(t) for t in T])

with `C_s` the inclusive cumulative count of the source plane, `N_s` its pixel
count, `T` the occupied levels of the reference, `C_r` and `N_r` its cumulative
count and total. Every step is float64, as NumPy computes it, so integer
results are the round-half-even of skimage's float64 values, bit for bit:

- the quantiles are float64 divisions of exact integer counts;
- `np.interp` is `slope * (x - xp[j]) + fp[j]` with
  `slope = (fp[j+1] - fp[j]) / (xp[j+1] - xp[j])`, `fp[0]` left of the first
  quantile, `fp[-1]` from the last one on, and `fp[j]` where `x == xp[j]`;
- XLA contracts a multiply-add into one fused multiply-add (rounded once, where
  NumPy rounds twice), so the product is materialized first (see
  `_histogram.materialize`): eager, `tf.function` and XLA agree to the bit.

All of it works on per-plane tables of `bins` entries; pixels only meet the
final gather, so the cost is that of two histograms and one lookup. float64 is
what CPUs and GPUs run; TPUs have no float64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tf_histeq import _convert, _histogram
from tf_histeq._options import FrozenArray, Histogram, check_counts, fail

_F64 = tf.float64


class Counts(NamedTuple):
    """Reference counts float64 `(R, bins)` (R: 1 for every channel, or one per colour channel)."""

    counts: tf.Tensor
    value_range: tuple | None  # of the images counted, when known


def match_tables(source: tf.Tensor, reference: tf.Tensor, values: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-plane matching tables: `np.interp` of the source quantiles onto the reference's.

    Args:
        source: int32 `(N, Q, bins)` histograms of the planes.
        reference: float64 `(R, bins)` counts, `R == 1` (one for all planes) or `R == Q`.
        values: float64 `(bins,)`, the value of each level (what is interpolated).

    Returns:
        `(tables, keep)`: float64 `(N, Q, bins)` output values per source level,
        and bool `(N, Q)`, True for planes with no pixel (or a reference with no
        count), whose tables are `values` (the identity).
    """
    bins = source.shape[-1]
    batch, planes = tf.shape(source)[0], tf.shape(source)[1]
    cdf = tf.cumsum(source, axis=-1)
    x = tf.cast(cdf, _F64) / tf.cast(cdf[..., -1:], _F64)  # NaN in an empty plane, replaced below
    xp, fp, size = _occupied(reference, values)

    def per_plane(table):  # (R, bins) -> (N * Q, bins)
        width = table.shape[-1]
        return tf.reshape(tf.broadcast_to(table[None], [batch, planes, width]), [batch * planes, width])

    xp, fp, size = per_plane(xp), per_plane(fp), per_plane(size)
    x = tf.reshape(x, [batch * planes, bins])
    above = _count_at_or_below(xp, x)  # occupied levels with a quantile <= x
    low = tf.clip_by_value(above - 1, 0, bins - 1)
    high = tf.clip_by_value(tf.minimum(above, size - 1), 0, bins - 1)
    x0, x1 = tf.gather(xp, low, batch_dims=1), tf.gather(xp, high, batch_dims=1)
    y0, y1 = tf.gather(fp, low, batch_dims=1), tf.gather(fp, high, batch_dims=1)
    slope = (y1 - y0) / (x1 - x0)
    inner = _histogram.materialize(slope * (x - x0)) + y0  # two roundings, as NumPy: no fused multiply-add
    tables = tf.where(above == 0, y1, tf.where((above >= size) | (x == x0), y0, inner))
    tables = tf.reshape(tables, [batch, planes, bins])

    keep = (cdf[..., -1] == 0) | (tf.reduce_sum(reference, axis=-1) <= 0)[None, :]
    return tf.where(keep[..., None], values, tables), keep


def _occupied(reference: tf.Tensor, values: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`np.interp`'s `xp` and `fp` per row: quantiles and values of the occupied levels, in order.

    Each row is compacted to its first `size` entries (a scatter of each
    occupied level to its rank); the rest of `xp` is `inf`, so that a search
    never lands there.

    Returns:
        `(xp, fp, size)`: float64 `(R, bins)`, float64 `(R, bins)`, int32 `(R, 1)`.
    """
    rows, bins = tf.shape(reference)[0], reference.shape[-1]
    cdf = tf.cumsum(reference, axis=-1)
    quantiles = cdf / cdf[:, -1:]
    occupied = reference > 0
    rank = tf.cumsum(tf.cast(occupied, tf.int32), axis=-1)
    size = rank[:, -1:]
    slot = tf.where(occupied, rank - 1, bins) + tf.range(rows)[:, None] * (bins + 1)

    def compact(table):
        # Each slot receives one value (or none): the sums are exact.
        packed = tf.math.unsorted_segment_sum(table, slot, rows * (bins + 1))
        return tf.reshape(packed, [rows, bins + 1])[:, :bins]

    xp = tf.where(tf.range(bins) < size, compact(quantiles), tf.constant(np.inf, _F64))
    fp = compact(tf.broadcast_to(values, tf.shape(reference)))
    return xp, fp, size


def _count_at_or_below(sorted_rows: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """`tf.searchsorted(sorted_rows, x, side="right")` as a binary search of `log2(bins)` gathers.

    XLA lowers `tf.searchsorted` to a comparison of every value with every
    entry: `bins**2` per row, 48 GiB for three planes of 65536 levels. Each
    step here gathers one candidate per value instead.
    """
    bins = sorted_rows.shape[-1]
    count = tf.zeros_like(x, tf.int32)
    step = 1 << (bins.bit_length() - 1)
    while step:
        candidate = count + step
        fits = candidate <= bins
        below = tf.gather(sorted_rows, tf.minimum(candidate, bins) - 1, batch_dims=1) <= x
        count = tf.where(fits & below, candidate, count)
        step >>= 1
    return count


def to_dtype(tables: tf.Tensor, spec: _convert.LevelSpec) -> tf.Tensor:
    """float64 values in the input dtype: integers round half to even, floats as they are."""
    if spec.dtype.is_integer:
        tables = tf.clip_by_value(tf.round(tables), spec.low, spec.high)
    return tf.cast(tables, spec.dtype)


def level_values(spec: _convert.LevelSpec) -> tf.Tensor:
    """float64 `(bins,)`: the value of each level in the input dtype, as the reference's pixels hold it."""
    return tf.cast(_convert.value_table(spec), _F64)


# --------------------------------------------------------------------------- references


def reference_counts(reference, reference_mask, images: tf.Tensor, spec: _convert.LevelSpec, has_alpha: bool) -> Counts:
    """Turn the `reference` of `match_histograms` into checked `Counts` for `images`.

    A `Histogram` or a 1-D array is taken as counts; anything else is an image
    (or batch of images) read like `images`. A reference known when the function
    is traced (a NumPy array, an eager tensor, a constant) is counted once, then,
    and its values are checked; a symbolic one is counted in the graph.
    """
    n_channels = images.shape[-1] if images.shape.rank > 2 else 1
    n_color = n_channels - has_alpha
    if isinstance(reference, FrozenArray):
        reference = reference.array
    if reference is None:
        fail(TypeError, "reference", "be an image, a (bins,) array of counts or a tf_histeq.Histogram", None)
    if isinstance(reference, Histogram):
        counts = Counts(tf.constant(reference.counts), reference.value_range)
    elif isinstance(reference, Counts):
        counts = reference
    elif _rank(reference) == 1:
        counts = _array_counts(reference, reference_mask)
    else:
        counts = _image_counts(reference, reference_mask, images, spec, has_alpha, n_color)
    _check_fit(counts, spec, n_color)
    return counts


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


def _check_fit(counts: Counts, spec: _convert.LevelSpec, n_color: int) -> None:
    rows, bins = counts.counts.shape
    if bins != spec.bins:
        fail(ValueError, "reference.bins", f"be {spec.bins}, the number of levels (bins) of the images", bins)
    if rows not in (1, n_color):
        expected = "1" if n_color == 1 else f"1 or {n_color}"
        fail(ValueError, "reference.channels", f"be {expected}, the colour channels of the images", rows)
    if counts.value_range is not None and tuple(counts.value_range) != (spec.low, spec.high):
        fail(
            ValueError,
            "reference.value_range",
            f"be {(spec.low, spec.high)}, the value_range of the images",
            tuple(counts.value_range),
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
            expected = f"1 or {n_color}" + (f" (or {n_channels} with alpha)" if has_alpha else "")
            fail(ValueError, "reference.shape", f"have {expected} channel(s), like the images", tuple(ref.shape))
        if color.shape[:3].is_fully_defined() and color.shape[:3].num_elements() == 0:
            fail(ValueError, "reference.shape", "have at least one pixel", tuple(ref.shape))
        return _level_counts(ref, color, reference_mask, spec, name="reference_mask"), color

    if isinstance(reference_mask, FrozenArray):
        reference_mask = reference_mask.array
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


def check_selects_pixels(mask, images: tf.Tensor, *, name: str = "mask") -> None:
    """Raise if a mask known now (NumPy, eager, constant) leaves an image with no pixel inside."""
    if isinstance(mask, FrozenArray):
        mask = mask.array
    static = _static(mask)
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


def pooled_histogram(data, *, value_range, bins, mask, has_alpha: Callable[[int], bool]) -> Histogram:
    """`tf_histeq.reference_histogram`: the counts of all images in `data`, per colour channel.

    `has_alpha(channels)` applies the `alpha` option to a channel count.
    """
    if isinstance(mask, FrozenArray):
        mask = mask.array

    def count(images, spec):
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
            tf.autograph.experimental.do_not_convert(
                lambda *item: count(_convert.as_images(item[0], name="data"), spec)
            )
        )
        zero = tf.zeros(counted.element_spec.shape, _F64)
        counts = counted.reduce(zero, lambda total, c: total + c).numpy()
    else:
        single = isinstance(data, (np.ndarray, FrozenArray)) or tf.is_tensor(data)
        counts, spec, dtype = None, None, None
        for index, item in enumerate([data] if single else data):
            name = "data" if single else f"data[{index}]"
            images = _convert.as_images(item, name=name)
            if spec is None:
                spec, dtype = _convert.level_spec(images.dtype, value_range, bins), images.dtype
            elif images.dtype != dtype:
                fail(TypeError, f"{name}.dtype", f"be {dtype.name}, like data[0]", images.dtype.name)
            item_counts = count(images, spec).numpy()
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
