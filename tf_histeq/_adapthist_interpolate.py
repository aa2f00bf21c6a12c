"""Step 8 of `tf_histeq._adapthist` (skimage's multilinear interpolation), and two exactness helpers.

The spec of the step is `tf_histeq._adapthist`'s module docstring (step 8);
the geometry (`_Axis`: tiles, blocks, weights per axis) comes from there.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import tensorflow as tf

from tf_histeq import _histogram, _xla

# Bits of one map value in a word of `_pair_table` (maps are < 2**14).
_MAP_BITS = 14


def stored(compute, witness: tf.Tensor, like: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """Return `compute()` (`dtype`, shaped like `like`), written to memory once under XLA.

    XLA fuses cheap elementwise work into every consumer (recomputing it) and
    stores what two fusions share: a per-voxel expression read by several
    consumers is either computed again per consumer or split at its gathers
    into whole-volume intermediates. TensorFlow has no fusion barrier; a
    conditional is one (its result is a buffer), and a predicate XLA cannot
    evaluate when compiling (`witness`, true whenever it runs) keeps it. The
    other branch returns zeros and never runs.
    """
    return tf.cond(witness, compute, lambda: tf.zeros(tf.shape(like), dtype))


def _pair_table(maps: tf.Tensor, planes, axes: list, nbins: int) -> tf.Tensor:
    """The maps of both last-axis tiles of every block, one int32 word each: flat `(P, *tiles, blocks, nbins)`.

    Along the last axis, block `b` (`0 .. tiles`) reads tiles `clip(b - 1)`
    and `clip(b)` (skimage's `map_array`); the word is
    `map[clip(b - 1)] + map[clip(b)] * 2**14` (maps are `< 2**14`).
    Materialized: XLA would otherwise fuse the ops that build it into every
    gather.
    """
    last = axes[-1].tiles
    maps = tf.reshape(tf.cast(maps, tf.int32), [planes, *(ax.tiles for ax in axes), nbins])
    low = tf.gather(maps, np.clip(np.arange(last + 1) - 1, 0, last - 1).astype(np.int32), axis=len(axes))
    high = tf.gather(maps, np.clip(np.arange(last + 1), 0, last - 1).astype(np.int32), axis=len(axes))
    return tf.reshape(_histogram.materialize(low + high * 2**_MAP_BITS), [-1])


def interpolate(bins: tf.Tensor, maps: tf.Tensor, axes: list, nbins: int, rows: int) -> tuple[tf.Tensor, ...]:
    """Step 8: the float32 sum over corners of float64 `map * weight` products, truncated; int16 `(P, *spatial)`.

    Returned with each plane's minimum and maximum (int16 `(P,)`), which step
    9 needs, reduced from the int16 result.

    One elementwise expression over the whole volume (`_corner_sum`),
    computed behind `stored` so that XLA writes only the int16 result, in
    one loop over the voxels split over the CPU's threads. A voxel gathers
    the maps of its two last-axis corners in one int32 word (`_pair_table`):
    2 gathers per voxel in 2-D, 4 in 3-D. Measured on the 128x256x256 volume
    (a loaded 2-core machine): 46 ms of CPU against 88 with one gather per
    corner and 80-110 for the slabs of packed int64 words in a
    `tf.while_loop` that came before (there, the loop's in-place writes ran
    on one thread, and int64 shifts and conversions do not vectorize on
    AVX2).

    Outside XLA (eager, a plain `tf.function`) every op of that expression
    would store a whole-volume intermediate (peak memory about 31x the
    volume's float32 size, against 8x in slabs): there the same arithmetic
    runs on slabs of `rows` rows of the first axis, one `tf.while_loop` step
    each, written into a `tf.TensorArray`.
    """
    rank = len(axes)
    planes = _histogram.static_or_dynamic(bins, 0)
    sizes = [ax.tiles for ax in axes[:-1]] + [axes[-1].tiles + 1]
    strides = [nbins * math.prod(sizes[a + 1 :]) for a in range(rank)]
    plane_size = strides[0] * sizes[0]
    wide = not isinstance(planes, int) or planes * plane_size >= 2**31
    id_dtype = tf.int64 if wide else tf.int32
    table = _pair_table(maps, planes, axes, nbins)
    first = [tf.constant(axes[0].tile[e] * strides[0], id_dtype) for e in (0, 1)]
    first += [tf.constant(axes[0].weight[e], tf.float64) for e in (0, 1)]
    if _xla.in_xla_context():
        r = stored(
            lambda: _corner_sum(bins, table, axes, strides, plane_size, id_dtype, first),
            tf.reduce_all(table >= 0),  # words are >= 0
            bins,
            tf.int16,
        )
    else:
        r = _slabs(bins, table, axes, strides, plane_size, id_dtype, first, rows)
    spatial_axes = list(range(1, rank + 1))
    return r, tf.reduce_min(r, axis=spatial_axes), tf.reduce_max(r, axis=spatial_axes)


def _slabs(bins, table, axes, strides, plane_size, id_dtype, first, rows: int) -> tf.Tensor:
    """`_corner_sum` on slabs of `rows` rows of the first axis, one `tf.while_loop` step each."""
    rank = len(axes)
    planes = _histogram.static_or_dynamic(bins, 0)
    rest = [ax.size for ax in axes[1:]]

    def body(step, out):
        begin = step * rows
        # tf.slice with static sizes: a dynamic-slice for XLA (the -1 size pads the operand there).
        slab = tf.slice(bins, [0, begin] + [0] * (rank - 1), tf.stack([tf.shape(bins)[0], rows, *rest]))
        part = [tf.slice(values, [begin], [rows]) for values in first]
        return step + 1, out.write(step, _corner_sum(slab, table, axes, strides, plane_size, id_dtype, part))

    steps = axes[0].size // rows
    out = tf.TensorArray(tf.int16, size=steps, element_shape=None)
    _, out = tf.while_loop(lambda step, out: step < steps, body, (tf.constant(0), out))
    stacked = tf.transpose(out.stack(), [1, 0, *range(2, rank + 2)])  # (P, steps, rows, *rest)
    return tf.reshape(stacked, [planes, *(ax.size for ax in axes)])


def _corner_sum(bins, table, axes, strides, plane_size, id_dtype, first) -> tf.Tensor:
    """Step 8's arithmetic on the word table of `_pair_table`: int16 `(P, *spatial)`.

    `first`: the first axis's table offsets of both corner tiles and their
    weights (for the rows of `bins`).

    A gathered word `w` (an integer below 2**28, exact in float64) splits
    exactly into `high = floor(w * 2**-14)` and `low = w - high * 2**14`, in
    float64: each word is then read once, which lets XLA fuse its gather
    into the loop (an integer shift and mask read it twice, and XLA stores
    every gathered word of the volume first).
    """
    rank = len(axes)
    planes = _histogram.static_or_dynamic(bins, 0)

    def along(a: int, values, dtype) -> tf.Tensor:
        shape = [1] * (rank + 1)
        shape[a + 1] = -1
        return tf.reshape(tf.cast(values, dtype), shape)

    level = tf.cast(bins, id_dtype) + along(rank - 1, axes[-1].block * strides[-1], id_dtype)
    if not isinstance(planes, int) or planes > 1:
        level += tf.reshape(tf.range(planes, dtype=id_dtype) * plane_size, [-1] + [1] * rank)
    mapped = {}
    for edge in itertools.product((0, 1), repeat=rank - 1):
        index = level
        for a in range(rank - 1):
            index += along(a, first[edge[0]] if a == 0 else axes[a].tile[edge[a]] * strides[a], id_dtype)
        word = tf.cast(tf.gather(table, index), tf.float64)
        high = tf.floor(word * 2.0**-_MAP_BITS)
        mapped[(*edge, 0)], mapped[(*edge, 1)] = word - high * 2.0**_MAP_BITS, high
    result = None
    for edge in itertools.product((0, 1), repeat=rank):  # np.ndindex(2, ..., 2) order
        weight = None
        for a in reversed(range(rank)):  # np.prod over coeffs: last axis first
            w = along(a, first[2 + edge[0]] if a == 0 else axes[a].weight[edge[a]], tf.float64)
            weight = w if weight is None else weight * w
        term = tf.cast(mapped[edge] * weight, tf.float32)
        result = term if result is None else add_float32(result, term)
    return tf.cast(result, tf.int16)  # astype(uint16): truncation of values in [0, 16383]


def add_float32(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """`a + b` of float32 tensors, rounded once to float32, in every way of running.

    Computed in float64 and rounded to float32: the float64 sum of two
    float32 values rounded to float32 is their float32 sum (53 >= 2 * 24 + 1
    bits, so the double rounding is innocuous). A plain chain of float32 adds
    is not safe in a `tf.function`: Grappler's arithmetic optimizer rewrites it
    into one `AddN`, which sums in another order (values 1 apart in `r`).
    """
    return tf.cast(tf.cast(a, tf.float64) + tf.cast(b, tf.float64), tf.float32)
