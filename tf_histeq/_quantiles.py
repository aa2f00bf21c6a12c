"""Private kernels of the standardization ops: one layout, masks, and `np.percentile` in TensorFlow ops.

Layout. Every op of `tf_histeq.standardize` reads its input as `(N, V, C)`:
N images (1 for an unbatched input), V voxels (the spatial axes flattened), C
channels (1 where the input has no channel axis), following the layout
contract: with `spatial_dims=2`, rank 2 `(H, W)`, 3 `(H, W, C)`, 4
`(N, H, W, C)`; with `spatial_dims=3`, rank 3 `(D, H, W)`, 4 `(D, H, W, C)`,
5 `(N, D, H, W, C)`. Masks have the spatial shape, optionally with N in front
and/or a trailing 1, and become bool `(N or 1, V, 1)`.

Percentiles. `order_statistics` returns `np.percentile(x, q, method="linear")`
of every plane (image and channel, or image with `joint`), computed as NumPy
does for an array `q`: with `n` counted values and `h = (n - 1) * (q / 100)`,
the order statistics `a = x[floor(h)]`, `b = x[floor(h) + 1]` (both `x[n - 1]`
once `h >= n - 1`), `d = b - a` in the input's dtype (so rounded to float32 for
float32 inputs, as NumPy does), and `a + d * g` for `g = h - floor(h) < 0.5`,
`b - d * (1 - g)` otherwise, in float64. The results are equal to NumPy's bit
for bit (tests/test_standardize.py).

- Integer images (uint8, uint16, int16) need no sort: one histogram per plane
  with a bin per level (256 or 65536), its cumulative sum, and the order
  statistic of rank `k` is the number of levels whose cumulative count is
  `<= k` (a compare and a sum, which XLA compiles; `tf.searchsorted` has no
  XLA kernel). `d` is exact in float64; NumPy subtracts in the input dtype,
  which wraps for int16 neighbours more than 32767 apart (NumPy's result is
  then wrong, this one is not).
- float32 images: a radix selection (`_from_radix`), exact and without a
  sort: the values' order-preserving 32-bit keys are counted by their high
  16 bits, which gives the bucket of every needed rank, then the low 16 bits
  of the elements in those buckets only give the rank within it. Two
  scatter-adds over the voxels, like the integer path; `tf.sort` (what
  TensorFlow has: no selection op, and `tf.math.top_k` is a partial sort that
  costs as much for the middle ranks) took 10 s on a 128x256x256 volume here,
  30 times NumPy's sort; the selection takes 0.3 s for two percentiles.
- float64 images are sorted (`tf.sort`): their 64-bit keys would need four
  passes; uncounted voxels are moved to the end as `+inf`. So are float32
  images in graphs traced for ONNX (`float32_sorted`, which
  `tf_histeq.deploy.to_onnx` sets): ONNX has no bitcast, and both ways give
  the same order statistics.
- A plane holding NaN gives NaN, as NumPy does.

A plane with no counted voxel (an empty mask) gives NaN; the public functions
refuse such a mask where its values are known when called.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from tf_histeq import _convert, _histogram
from tf_histeq._options import check_spatial_dims, fail

SUPPORTED_DTYPES = (tf.uint8, tf.uint16, tf.int16, tf.float32, tf.float64)
# The histogram of an integer dtype: (number of levels, value of level 0).
INTEGER_LEVELS = {tf.uint8: (256, 0), tf.uint16: (65536, 0), tf.int16: (65536, -32768)}


class Layout(NamedTuple):
    """How an input was read as `(N, V, C)`, to write an output back in its layout."""

    shape: tf.Tensor  # int32, the input's dynamic shape
    static: tf.TensorShape  # the input's static shape
    rank: int
    spatial_dims: int
    channels: bool  # the input has a channel axis
    batched: bool  # the input has a batch axis


def _layouts(spatial_dims: int) -> str:
    if spatial_dims == 2:
        return "rank 2 (H, W), 3 (H, W, C) or 4 (N, H, W, C) with spatial_dims=2"
    return "rank 3 (D, H, W), 4 (D, H, W, C) or 5 (N, D, H, W, C) with spatial_dims=3"


def as_nvc(images: Any, spatial_dims: Any, *, name: str = "images") -> tuple[tf.Tensor, Layout]:
    """Read `images` as `(N, V, C)` in its own dtype (one of `SUPPORTED_DTYPES`)."""
    spatial_dims = check_spatial_dims(spatial_dims)
    images = _convert.number_tensor(images, SUPPORTED_DTYPES, name=name)
    rank = images.shape.rank
    if rank is None:
        fail(ValueError, f"{name}.shape", "have a statically known rank", images.shape)
    if spatial_dims == 2 and rank == 5:
        fail(
            ValueError,
            f"{name}.shape",
            f"have {_layouts(2)}",
            tuple(images.shape),
            hint="a batch of volumes (N, D, H, W, C): pass spatial_dims=3.",
        )
    if not spatial_dims <= rank <= spatial_dims + 2:
        fail(ValueError, f"{name}.shape", f"have {_layouts(spatial_dims)}", tuple(images.shape))
    channels = rank > spatial_dims
    batched = rank == spatial_dims + 2
    if channels and images.shape[-1] is None:
        fail(ValueError, f"{name}.shape", "have a statically known number of channels (the last axis)", images.shape)
    layout = Layout(tf.shape(images), images.shape, rank, spatial_dims, channels, batched)
    n = images.shape[0] if batched and images.shape[0] is not None else (tf.shape(images)[0] if batched else 1)
    c = images.shape[-1] if channels else 1
    return tf.reshape(images, [n, -1, c]), layout


def from_nvc(values: tf.Tensor, layout: Layout, *, channels: int | None = None) -> tf.Tensor:
    """Write `(N, V, C')` back in the input's layout; `channels` set: a channel axis of that size."""
    if channels is None:
        return tf.reshape(values, layout.shape)
    spatial = layout.shape[: layout.rank - 1] if layout.channels else layout.shape
    return tf.reshape(values, tf.concat([spatial, [channels]], 0))


def prepare_mask(mask: Any, x: tf.Tensor, layout: Layout, *, name: str = "mask") -> tf.Tensor | None:
    """Return `mask` as bool `(N or 1, V, 1)`, refusing one that selects no voxel of an image where known.

    Accepted shapes: the spatial shape `S`, `S + (1,)`, and for batches also
    `(N,) + S` and `(N,) + S + (1,)`. Nonzero numbers mean "counted".
    """
    if mask is None:
        return None
    mask = _convert.mask_tensor(mask, name=name)
    first = 1 if layout.batched else 0
    spatial = layout.static[first : first + layout.spatial_dims]
    batch = layout.static[:1] if layout.batched else tf.TensorShape([1])
    candidates = [(spatial, False), (spatial.concatenate([1]), False)]
    if layout.batched:
        candidates += [(batch.concatenate(spatial), True), (batch.concatenate(spatial).concatenate([1]), True)]
    found = None
    for shape, per_image in candidates:
        if mask.shape.rank == shape.rank and mask.shape.is_compatible_with(shape):
            found = per_image
            break
    if found is None:
        expected = " or ".join(str(tuple(s.as_list())).replace("None", "?") for s, _ in candidates)
        fail(ValueError, f"{name}.shape", f"be {expected} for images of shape {tuple(layout.static)}", mask.shape)
    if mask.dtype != tf.bool:
        mask = tf.not_equal(mask, tf.zeros([], mask.dtype))
    mask = tf.reshape(mask, [-1 if found else 1, tf.shape(x)[1], 1])
    if not tf.is_symbolic_tensor(mask):
        empty = np.flatnonzero(~mask.numpy().any(axis=(1, 2)))
        if empty.size:
            which = "the mask" if not found else f"image(s) {empty.tolist()}"
            fail(ValueError, name, "select at least one voxel of every image", f"no voxel selected in {which}")
    return mask


def check_q(q: Any, *, name: str = "q") -> np.ndarray:
    """Return percentiles as a 1-D float64 array in [0, 100] (a number gives one)."""
    if hasattr(q, "numpy"):
        q = q.numpy()
    array = np.asarray(q)
    if array.dtype.kind not in "iuf" or array.ndim > 1 or array.size == 0:
        fail(TypeError, name, "be a number or a 1-D sequence of numbers in [0, 100]", q)
    array = array.astype(np.float64).reshape(-1)
    if not np.all((array >= 0) & (array <= 100)):  # NaN fails too
        fail(ValueError, name, "lie in [0, 100]", q)
    return array


def plane_rows(x: tf.Tensor, *, joint: bool) -> tf.Tensor:
    """`(N, V, C)` as rows `(N * C, V)` (one per image and channel), or `(N, V * C)` if `joint`."""
    if joint:
        return tf.reshape(x, [tf.shape(x)[0], -1])
    return tf.reshape(tf.transpose(x, [0, 2, 1]), [-1, tf.shape(x)[1]])


_sort_float32 = False  # set by `float32_sorted` while a graph for ONNX is traced


@contextlib.contextmanager
def float32_sorted():
    """Trace float32 order statistics with `tf.sort` instead of the radix selection: the same values, no bitcast."""
    global _sort_float32
    previous, _sort_float32 = _sort_float32, True
    try:
        yield
    finally:
        _sort_float32 = previous


def order_statistics(
    x: tf.Tensor, mask: tf.Tensor | None, fractions: Sequence[float], *, joint: bool = False
) -> tf.Tensor:
    """`np.percentile(plane, 100 * fractions, method="linear")` of every plane of `x`.

    Args:
        x: `(N, V, C)` in one of `SUPPORTED_DTYPES`.
        mask: bool `(N or 1, V, 1)` or None: the voxels counted.
        fractions: The quantiles as NumPy computes them, `q / 100` in float64.
        joint: One plane per image (its channels pooled) instead of one per channel.

    Returns:
        float64 `(N, C, K)`, or `(N, 1, K)` if `joint`.
    """
    n_images = tf.shape(x)[0]
    planes = 1 if joint else x.shape[-1]
    rows = plane_rows(x, joint=joint)
    valid = None
    if mask is not None:
        valid = tf.broadcast_to(mask, tf.concat([[n_images], tf.shape(mask)[1:2], [x.shape[-1]]], 0))
        valid = plane_rows(valid, joint=joint)
    fractions = tf.constant(np.asarray(fractions, np.float64))
    if x.dtype in INTEGER_LEVELS:
        result = _from_histograms(rows, valid, fractions, *INTEGER_LEVELS[x.dtype])
    elif x.dtype == tf.float32 and not _sort_float32:
        result = _from_radix(rows, valid, fractions)
    else:
        result = _from_sort(rows, valid, fractions)
    return tf.reshape(result, [n_images, planes, -1])


def _ranks(counts: tf.Tensor, fractions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The 0-based ranks below and above `(n - 1) * q` of each row, and the weight `g`, as NumPy has them."""
    n = tf.cast(counts, tf.float64)[:, None]
    h = (n - 1.0) * fractions[None, :]
    below = tf.floor(h)
    last = n - 1.0
    low = tf.cast(tf.clip_by_value(below, 0.0, tf.maximum(last, 0.0)), tf.int32)
    high = tf.cast(tf.clip_by_value(below + 1.0, 0.0, tf.maximum(last, 0.0)), tf.int32)
    return low, high, h - below


def runtime_zero(t: tf.Tensor) -> tf.Tensor:
    """A +0.0 of `t`'s dtype that only exists at run time (from one element of `t`, NaN and inf ignored).

    XLA contracts `a * b + c` into a fused multiply-add (one rounding where
    NumPy, TorchIO and MONAI round twice); `rounded(a * b, zero) + c` cannot be
    contracted past the add of `zero`, so the product is rounded on its own.
    """
    first = tf.reshape(t, [-1])[:1]
    first = tf.where(tf.math.is_finite(first), first, tf.zeros_like(first))
    return tf.minimum(tf.reduce_min(tf.abs(first)), tf.zeros([], t.dtype))


def rounded(product: tf.Tensor, zero: tf.Tensor) -> tf.Tensor:
    """`product` rounded on its own before any add that follows (see `runtime_zero`)."""
    return product + zero


def _lerp(a: tf.Tensor, b: tf.Tensor, g: tf.Tensor, diff_dtype: tf.DType) -> tf.Tensor:
    """NumPy's `_lerp`: `a + d * g` below `g = 0.5`, `b - d * (1 - g)` from it, `d = b - a` in `diff_dtype`."""
    d = tf.cast(tf.cast(b, diff_dtype) - tf.cast(a, diff_dtype), tf.float64)
    a, b = tf.cast(a, tf.float64), tf.cast(b, tf.float64)
    zero = runtime_zero(g)
    return tf.where(g >= 0.5, b - rounded(d * (1.0 - g), zero), a + rounded(d * g, zero))


def _from_histograms(rows, valid, fractions, levels: int, offset: int) -> tf.Tensor:
    index = tf.cast(rows, tf.int32) - offset
    if valid is not None:
        index = tf.where(valid, index, levels)  # an extra bin, dropped
    hist = _histogram.count_rows(index, levels + (valid is not None))[:, :levels]
    cumulative = tf.cumsum(hist, axis=-1)
    counts = cumulative[:, -1]
    low, high, g = _ranks(counts, fractions)

    def level_of(rank):  # the value of the order statistic of each rank: (R, K)
        below = tf.cast(cumulative[:, None, :] <= rank[:, :, None], tf.int32)
        return tf.cast(tf.reduce_sum(below, axis=-1) + offset, tf.float64)

    result = _lerp(level_of(low), level_of(high), g, tf.float64)
    return tf.where(counts[:, None] > 0, result, tf.constant(np.nan, tf.float64))


def _from_sort(rows, valid, fractions) -> tf.Tensor:
    nan = tf.math.is_nan(rows)
    counted = tf.logical_not(nan) if valid is None else tf.logical_and(valid, tf.logical_not(nan))
    ordered = tf.sort(tf.where(counted, rows, tf.constant(np.inf, rows.dtype)), axis=-1)
    counts = tf.reduce_sum(tf.cast(counted, tf.int32), axis=-1)
    low, high, g = _ranks(counts, fractions)
    a = tf.gather(ordered, low, batch_dims=1)
    b = tf.gather(ordered, high, batch_dims=1)
    result = _lerp(a, b, g, rows.dtype)
    has_nan = tf.reduce_any(tf.logical_and(nan, valid) if valid is not None else nan, axis=-1)
    return tf.where(tf.logical_or(has_nan[:, None], counts[:, None] == 0), tf.constant(np.nan, tf.float64), result)


_HALF = 65536  # 16 bits: the digits of the float32 selection


def _float32_keys(x: tf.Tensor) -> tf.Tensor:
    """uint32 keys of float32 values, ordered as the values (negatives: all bits flipped; others: the sign bit)."""
    bits = tf.bitcast(x, tf.uint32)
    negative = tf.equal(tf.bitwise.right_shift(bits, 31), 1)
    return tf.where(negative, tf.bitwise.invert(bits), tf.bitwise.bitwise_or(bits, tf.constant(0x80000000, tf.uint32)))


def _float32_values(keys: tf.Tensor) -> tf.Tensor:
    """Invert `_float32_keys`."""
    positive = tf.equal(tf.bitwise.right_shift(keys, 31), 1)
    bits = tf.where(positive, tf.bitwise.bitwise_and(keys, tf.constant(0x7FFFFFFF, tf.uint32)), tf.bitwise.invert(keys))
    return tf.bitcast(bits, tf.float32)


def _select(hist: tf.Tensor, ranks: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """For `(R, B)` or `(R, K, B)` counts and `(R, K)` 0-based ranks: the bin of each rank and the rank within it."""
    cumulative = tf.cumsum(hist, axis=-1)
    if hist.shape.rank == 2:
        cumulative = cumulative[:, None, :]
    below = tf.cast(cumulative <= ranks[:, :, None], tf.int32)
    bins = tf.reduce_sum(below, axis=-1)  # (R, K)
    before = tf.reduce_sum(below * tf.cast(hist if hist.shape.rank == 3 else hist[:, None, :], tf.int32), axis=-1)
    return bins, ranks - before


def _from_radix(rows, valid, fractions) -> tf.Tensor:
    """Exact order statistics of float32 rows by two 16-bit histogram passes (a radix selection), no sort.

    Pass 1 counts the high 16 bits of the order-preserving keys and finds the
    bucket of every needed rank; pass 2 counts the low 16 bits of the elements
    in those buckets only (one histogram per distinct bucket, `2 K` at most),
    and finds the rank within its bucket: two scatter-adds over the voxels, as
    the integer path, instead of a sort (TensorFlow's sort of 8 M floats took
    10 s here, 30 times NumPy's).
    """
    nan = tf.math.is_nan(rows)
    counted = tf.logical_not(nan) if valid is None else tf.logical_and(valid, tf.logical_not(nan))
    keys = _float32_keys(rows)
    high = tf.cast(tf.bitwise.right_shift(keys, 16), tf.int32)
    low_digit = tf.cast(tf.bitwise.bitwise_and(keys, tf.constant(0xFFFF, tf.uint32)), tf.int32)
    n_rows = tf.shape(rows)[0]
    hist = _histogram.count_rows(tf.where(counted, high, _HALF), _HALF + 1)[:, :_HALF]
    counts = tf.reduce_sum(hist, axis=-1)
    low, high_rank, g = _ranks(counts, fractions)
    ranks = tf.concat([low, high_rank], axis=1)  # (R, 2K)
    slots = ranks.shape[1]
    bucket, within = _select(hist, ranks)
    bucket = tf.minimum(bucket, _HALF - 1)  # rows with no counted value
    # Slot of each selected bucket: the first rank that selected it; other buckets: `slots` (none).
    row_offsets = tf.range(n_rows)[:, None] * _HALF
    first = tf.math.unsorted_segment_min(
        tf.broadcast_to(tf.range(slots)[None, :], tf.shape(ranks)), bucket + row_offsets, n_rows * _HALF
    )
    table = tf.minimum(first, slots)  # empty segments hold the dtype's max
    slot = tf.gather(tf.reshape(table, [-1]), high + row_offsets)  # (R, V)
    index = tf.where(tf.logical_and(counted, slot < slots), slot * _HALF + low_digit, slots * _HALF)
    hist2 = _histogram.count_rows(index, slots * _HALF + 1)[:, : slots * _HALF]
    hist2 = tf.reshape(hist2, [n_rows, slots, _HALF])
    own = tf.gather(tf.reshape(table, [n_rows, _HALF]), bucket, batch_dims=1)  # (R, 2K): each rank's slot
    digit, _ = _select(tf.gather(hist2, own, batch_dims=1), within)
    keys = tf.bitwise.bitwise_or(
        tf.bitwise.left_shift(tf.cast(bucket, tf.uint32), 16), tf.cast(tf.minimum(digit, _HALF - 1), tf.uint32)
    )
    values = _float32_values(keys)
    k = fractions.shape[0]
    result = _lerp(values[:, :k], values[:, k:], g, tf.float32)
    has_nan = tf.reduce_any(tf.logical_and(nan, valid) if valid is not None else nan, axis=-1)
    return tf.where(tf.logical_or(has_nan[:, None], counts[:, None] == 0), tf.constant(np.nan, tf.float64), result)
