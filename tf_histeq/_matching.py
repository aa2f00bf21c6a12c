"""Private TensorFlow kernel of histogram matching (the reference counts come from `_reference_counts`).

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

import numpy as np
import tensorflow as tf

from tf_histeq import _convert, _histogram

_F64 = tf.float64


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
