"""Private CLAHE kernel on int32 levels, bit-exact with OpenCV's `cv2.createCLAHE`.

Layout: levels are `(N, H, W, P)` int32 in `[0, bins)`; every (image, plane)
is processed on its own, with `R x C` tiles (`grid = (R, C)`; OpenCV's
`tileGridSize` is `(C, R)`). The steps and their arithmetic follow OpenCV's
`modules/imgproc/src/clahe.cpp`, function by function:

1. `CLAHE_Impl::apply`, the tiling. If `W % C` or `H % R` is not 0, OpenCV
   pads *both* axes, at the bottom and the right, with `BORDER_REFLECT_101`
   (`gfedcb|abcdefgh|gfedcba`), by `R - H % R` rows and `C - W % C` columns:
   an axis that was divisible then gains a whole extra tile. The tile is
   `th = Hp / R` by `tw = Wp / C` pixels of the padded image, `area = th * tw`.
   The padded image only feeds the histograms; the interpolation reads the
   original pixels. Reflect-101 repeats with period `2 * (size - 1)` when a
   pad exceeds the axis (images smaller than the grid), and a 1-pixel axis
   repeats its value (`_reflect_101`; `tf.pad(mode="REFLECT")` cannot pad more
   than the axis). The padding is never materialized: the original pixels are
   counted in place and only the strips (at most `R` rows, `C` columns) are
   gathered.
2. `CLAHE_CalcLut_Body`, the tables. Bins are 256 for 8-bit images and 65536
   for 16-bit ones (`bitShift` 0). Each tile histogram is clipped at
   `clip = max(static_cast<int>(clipLimit * area / bins), 1)`, a float64
   product and quotient truncated toward zero (no clipping when
   `clipLimit <= 0`; `_clip_count` computes this exactly in integers). The
   clipped excess is spread back: `batch = excess / bins` on every bin, then
   one more count on bins `0, step, 2 step, ...` with `step = max(bins /
   residual, 1)`, for the first `residual = excess % bins` of them (OpenCV's
   strided residual; no bin is clipped a second time). The table is
   `lut[i] = saturate_cast(cvRound(f32(cumsum[i]) * lutScale))` with
   `lutScale = f32(bins - 1) / f32(area)`, a float32 division: float32
   products, rounded half to even (`tf.round`).
3. `CLAHE_Interpolation_Body`, the output. Per column, `txf = f32(x) *
   (1.f / tw) - 0.5f`, `tx1 = cvFloor(txf)`, `xa = txf - tx1` and
   `xa1 = 1.f - xa`; then `tx1` is clamped to `>= 0` and `tx2 = tx1 + 1` to
   `<= C - 1`, so pixels within half a tile of the border interpolate between
   a tile and itself (1-D at the edges, one table in the corners). Rows
   likewise. Each pixel reads the four tables at its level and computes, in
   float32 and in this order, `res = (L11 * xa1 + L12 * xa) * ya1 + (L21 * xa1
   + L22 * xa) * ya`, then `cvRound` (half to even) and saturates.

Memory is O(input + N * P * tiles * bins): no one-hot tensor, no padded copy of
the image. Everything works with unknown N, H and W, in `tf.function` and under
XLA (where shape-derived sizes are compile-time constants), in TensorFlow Lite
with builtin ops and in ONNX (`tf_histeq.deploy`).

Eager, `tf.function` and XLA results are bit-identical, and equal OpenCV's.
Three compiler rewrites would break that or the speed, and are blocked where
they happen: XLA contracts `a * b + c` into a fused multiply-add, one rounding
where OpenCV's x86-64 build rounds twice (`_rounded`: the interpolation's six
products and the axis positions); Grappler and XLA turn a division by a
constant into a multiplication by its reciprocal, so the float64 clip count is
computed in integers instead (`_clip_count`); and XLA fuses a gather's operand
into the gather, recomputing a small table's construction for every pixel
(3-5x slower), so the tables and the per-row and per-column weights are
materialized first (`_histogram.materialize`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_histeq import _clip_count, _histogram, _options
from tf_histeq._options import fail

# Tables with at most this many levels hold the four corner values of a pixel's
# interpolation in one int32 (8 bits each), so a pixel needs one gather, not four.
_PACK_MAX_BINS = 256


def clahe_levels(
    levels: tf.Tensor,
    *,
    bins: int,
    clip_limit: float | tf.Tensor,
    grid: tuple[int, int],
    valid: tf.Tensor | None = None,
) -> tf.Tensor:
    """Apply CLAHE to integer levels, bit-exact with `cv2.createCLAHE`.

    Parity: with `valid=None` (or all True) the result equals
    `cv2.createCLAHE(clip_limit, (grid[1], grid[0])).apply` on every plane, for
    uint8 (`bins=256`) and uint16 (`bins=65536`) levels; with a tensor of
    limits, image `n` equals `cv2.createCLAHE(float(clip_limit[n]), ...)`.

    Mask semantics: only pixels where `valid` is True are counted in the tile
    histograms; every pixel is mapped. The padding strips take `valid` from the
    pixels they reflect. A tile's `area` (in the table scale
    `(bins - 1) / area` and in the clip count `max(int(clip_limit * area / bins), 1)`)
    is its number of valid pixels, padding included, so a tile's table always
    spans `[0, bins - 1]` as OpenCV's does; with every pixel valid this is
    `tile_height * tile_width`, OpenCV's value. A tile with no valid pixel gets
    the identity table (`lut[v] = v`).

    Args:
        levels: int32 `(N, H, W, P)`, channels last, values in `[0, bins)`. `N`, `H`
            and `W` may be unknown when tracing; `P` must be static.
        bins: Number of levels, 2..65536 (256 for uint8, 65536 for uint16 parity).
        clip_limit: OpenCV's clip limit (a multiple of the mean bin count of a
            tile); `<= 0` disables clipping. A Python number, or a float tensor
            of shape `(N,)` (or `()`) with one limit per image: float32 keeps
            the graph free of float64 for TensorFlow Lite; a float64 tensor is
            read with all its bits. Per-image limits below the smallest normal
            float (subnormals, which CPUs running TensorFlow flush to zero)
            count as 0.
        grid: `(rows, cols)` of tiles, each >= 1. OpenCV's `tileGridSize` is
            `(cols, rows)`.
        valid: Optional bool tensor broadcastable to `(N, H, W, P)`, with a static
            rank and last dimension (1 or `P`), e.g. `(N, H, W, 1)`, `(1, H, W, P)`
            or `(H, W, 1)`; only True pixels count in the histograms.

    Returns:
        int32 `(N, H, W, P)` output levels in `[0, bins)`.

    Raises:
        ValueError: If `levels` is not `(N, H, W, P)` with a static `P`, or one
            image's tile tables would have 2**31 entries or more.
        TypeError: If a tensor `clip_limit` is not of a float dtype.

    Example:
        >>> row = tf.constant([100] * 8 + list(range(101, 109)))  # level 100 on half the pixels
        >>> two = tf.reshape(tf.stack([row, row]), [2, 1, 16, 1])
        >>> out = clahe_levels(two, bins=256, clip_limit=tf.constant([0.0, 40.0]), grid=(1, 1))
        >>> out[:, 0, 6:10, 0].numpy()  # limit 40 clips level 100 at int(40 * 16 / 256) = 2 counts
        array([[128, 128, 143, 159],
               [ 80,  80,  96, 112]], dtype=int32)
    """
    rows, cols = int(grid[0]), int(grid[1])
    levels = tf.convert_to_tensor(levels, tf.int32)
    planes = levels.shape[-1]
    if levels.shape.rank != 4 or planes is None:
        raise ValueError(f"`levels` must be (N, H, W, P) with a static P. Received: levels.shape={levels.shape}.")
    if rows * cols * planes * bins >= 2**31 - 1:
        # Histogram and table indices are int32 per image.
        raise ValueError(
            "The tile tables of one image must have fewer than 2**31 entries (rows * cols * planes * bins). "
            f"Received: grid={grid}, planes={planes}, bins={bins}."
        )
    geometry = _Geometry(levels, rows, cols)
    if valid is not None:
        valid = _broadcast_valid(valid, geometry)
    hist = _tile_histograms(levels, valid, geometry, bins)  # (N, R*C, P, bins)
    if valid is None:
        area = geometry.tile_area  # scalar int32
    else:
        area = tf.reduce_sum(hist, axis=-1, keepdims=True)  # (N, R*C, P, 1)
    luts = _tile_luts(hist, area, bins, clip_limit)
    return _interpolate(levels, luts, geometry, bins)


class _Geometry:
    """Shape-derived quantities of OpenCV's tiling: Python ints where the shape is static, else int32 tensors."""

    def __init__(self, levels: tf.Tensor, rows: int, cols: int):
        shape = tf.shape(levels)
        self.rows, self.cols, self.planes = rows, cols, levels.shape[-1]
        # Static where known: it keeps table sizes, and so int32 gather offsets, provable.
        self.batch = levels.shape[0] if levels.shape[0] is not None else shape[0]
        h, w = levels.shape[1], levels.shape[2]
        # OpenCV pads *both* axes (bottom and right, reflect-101) as soon as either
        # is not divisible, so a divisible axis then gains a whole extra tile.
        # An empty image is not padded (nothing to reflect, nothing to map).
        if h is not None and w is not None:
            # Known when tracing: everything derived from them, the clip count
            # included, becomes a constant of the graph.
            needs_pad = (h % rows != 0 or w % cols != 0) and h > 0 and w > 0
            pad_h, pad_w = (rows - h % rows, cols - w % cols) if needs_pad else (0, 0)
            # At least 1, so that an empty image divides by nothing worse than 1.
            tile_h, tile_w = max((h + pad_h) // rows, 1), max((w + pad_w) // cols, 1)
        else:
            h, w = shape[1], shape[2]
            needs_pad = tf.logical_and(
                tf.logical_or(h % rows != 0, w % cols != 0),
                tf.logical_and(h > 0, w > 0),
            )
            pad_h = tf.where(needs_pad, rows - h % rows, 0)
            pad_w = tf.where(needs_pad, cols - w % cols, 0)
            tile_h, tile_w = tf.maximum((h + pad_h) // rows, 1), tf.maximum((w + pad_w) // cols, 1)
        self.height, self.width, self.pad_h, self.pad_w = h, w, pad_h, pad_w
        self.tile_h, self.tile_w, self.tile_area = tile_h, tile_w, tile_h * tile_w


def _broadcast_valid(valid: tf.Tensor, g: _Geometry) -> tf.Tensor:
    """`valid` as bool `(N, H, W, 1 or P)`, materialised so that it can be gathered like the levels."""
    valid = tf.convert_to_tensor(valid, tf.bool)
    if valid.shape.rank is None or valid.shape.rank > 4:
        raise ValueError(f"`valid` must have a static rank of at most 4. Received: valid.shape={valid.shape}.")
    while valid.shape.rank < 4:
        valid = tf.expand_dims(valid, 0)
    last = valid.shape[-1] if valid.shape[-1] is not None else g.planes
    return tf.broadcast_to(valid, tf.stack([g.batch, g.height, g.width, last]))


def _reflect_101(index: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Map positions `index >= 0` of a padded axis to `[0, size)` by periodic reflect-101.

    `cv::BORDER_REFLECT_101` (`gfedcb|abcdefgh|gfedcba`) repeated as often as
    needed, which is what OpenCV's padding gives when the pad exceeds the axis:
    the period is `2 * (size - 1)`, and a 1-pixel axis repeats its value.
    """
    period = tf.maximum(2 * (size - 1), 1)
    folded = index % period
    return tf.where(size > 1, tf.minimum(folded, period - folded), tf.zeros_like(index))


def _tile_histograms(levels: tf.Tensor, valid: tf.Tensor | None, g: _Geometry, bins: int) -> tf.Tensor:
    """Histograms of the tiles of the reflect-101 padded image: int32 `(N, R*C, P, bins)`.

    The padded image is the original `(H, W)` block plus a bottom strip (rows
    `H..Hp-1`, all `Wp` columns) and a right strip (rows `0..H-1`, columns
    `W..Wp-1`). Only the strips are gathered; each pixel of the three parts is
    counted at `level + bins * (plane + P * tile)` in one histogram per image.
    """
    rows, cols, planes = g.rows, g.cols, g.planes
    size = rows * cols * planes * bins
    plane_offset = tf.range(planes, dtype=tf.int32) * bins

    def tile_index(part: tf.Tensor, part_valid: tf.Tensor | None, y: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
        # y, x: the padded-image row and column of each row and column of `part`.
        row_offset = (y // g.tile_h) * (cols * planes * bins)
        col_offset = (x // g.tile_w) * (planes * bins)
        index = part + row_offset[:, None, None] + col_offset[None, :, None] + plane_offset
        if part_valid is not None:
            # Pixels outside the mask go to one extra bin, dropped below.
            index = tf.where(part_valid, index, size)
        return tf.reshape(index, [g.batch, -1])

    h, w = g.height, g.width
    y_all = tf.range(h, dtype=tf.int32)
    x_all = tf.range(w, dtype=tf.int32)
    y_pad = tf.range(h, h + g.pad_h, dtype=tf.int32)
    x_pad = tf.range(w, w + g.pad_w, dtype=tf.int32)
    x_full = tf.range(w + g.pad_w, dtype=tf.int32)
    # Reflected source rows / columns of the strips.
    src_y_pad = _reflect_101(y_pad, h)
    src_x_pad = _reflect_101(x_pad, w)
    src_x_full = _reflect_101(x_full, w)

    def strip(t: tf.Tensor, src_y: tf.Tensor | None, src_x: tf.Tensor) -> tf.Tensor:
        if src_y is not None:
            t = tf.gather(t, src_y, axis=1)
        return tf.gather(t, src_x, axis=2)

    parts = [
        tile_index(levels, valid, y_all, x_all),
        tile_index(
            strip(levels, src_y_pad, src_x_full),
            None if valid is None else strip(valid, src_y_pad, src_x_full),
            y_pad,
            x_full,
        ),
        tile_index(
            strip(levels, None, src_x_pad),
            None if valid is None else strip(valid, None, src_x_pad),
            y_all,
            x_pad,
        ),
    ]
    index = tf.concat(parts, axis=1)
    total = size + (0 if valid is None else 1)
    counts = _histogram.count_rows(index, total)[:, :size]
    return tf.reshape(counts, [g.batch, rows * cols, planes, bins])


def _tile_luts(hist: tf.Tensor, area: tf.Tensor, bins: int, clip_limit: float | tf.Tensor) -> tf.Tensor:
    """OpenCV's clipped, redistributed and scaled tile tables: int32, same shape as `hist`.

    Args:
        hist: int32 `(N, tiles, P, bins)` tile histograms.
        area: int32 pixel count per tile, broadcastable to `hist` (scalar without a mask).
        bins: Number of levels.
        clip_limit: OpenCV's clip limit, a Python number or a float `(N,)` tensor.
    """
    if tf.is_tensor(clip_limit):
        clip_limit = tf.reshape(clip_limit, [-1, 1, 1, 1])
    clip = _clip_count.clip_counts(clip_limit, area, bins)
    if clip is not None:
        excess = tf.reduce_sum(tf.maximum(hist - clip, 0), axis=-1, keepdims=True)
        hist = tf.minimum(hist, clip)
        # Spread the excess: `batch` on every bin, then +1 on bins 0, step, 2*step, ...
        # for the first `residual` of them (no bin is clipped a second time).
        batch = excess // bins
        residual = excess - batch * bins
        step = tf.maximum(bins // tf.maximum(residual, 1), 1)
        index = tf.range(bins, dtype=tf.int32)
        bonus = tf.logical_and(index % step == 0, index // step < residual)
        hist = hist + batch + tf.cast(bonus, tf.int32)
    # lutScale = static_cast<float>(histSize - 1) / tileSizeTotal, a float32 division;
    # then float32 products, rounded half to even (tf.round, like cvRound), saturated.
    scale = tf.constant(bins - 1, tf.float32) / tf.cast(tf.maximum(area, 1), tf.float32)
    lut = tf.round(tf.cast(tf.cumsum(hist, axis=-1), tf.float32) * scale)
    lut = tf.cast(tf.clip_by_value(lut, 0.0, bins - 1.0), tf.int32)
    if tf.is_tensor(area) and area.shape.rank:  # a mask: tiles without a valid pixel keep their levels
        lut = tf.where(area > 0, lut, tf.range(bins, dtype=tf.int32))
    return lut


def _rounded(x: tf.Tensor, zero: tf.Tensor) -> tf.Tensor:
    """Return the float32 product `x` rounded on its own, before any add that follows.

    XLA's CPU and GPU backends contract `a * b + c` into a fused multiply-add
    (one rounding instead of two), which moves some results by one level; here
    that changed 45 of 300 random images. Adding `zero`, a float32 +0.0 that only
    exists at run time, gives the product a first consumer no compiler can
    remove: contracted or not, `a * b + 0` is the product rounded once, and the
    add after it is a second rounding, as in OpenCV's C++ (which the x86-64
    wheel compiles without contraction). TensorFlow Lite and ONNX Runtime run
    every multiply and add as a kernel of its own.
    """
    return x + zero


def _axis_weights(size: tf.Tensor, tile: tf.Tensor, tiles: int, zero: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-position interpolation data along one axis, as OpenCV computes it.

    `pos = f32(i) * f32(1.f / tile) - 0.5f`; returns `(first, weight)` with
    `first = floor(pos)` in `[-1, tiles - 1]` (the unclamped lower tile) and the
    float32 weight of the upper tile, `weight = pos - floor(pos)`.
    """
    inv = tf.constant(1.0, tf.float32) / tf.cast(tile, tf.float32)  # a float32 division, like 1.f / tileSize
    pos = _rounded(tf.cast(tf.range(size), tf.float32) * inv, zero) - 0.5
    low = tf.floor(pos)
    weight = pos - low
    first = tf.clip_by_value(tf.cast(low, tf.int32), -1, tiles - 1)
    # Materialized: XLA would otherwise recompute them for every pixel (5x slower).
    return _histogram.materialize(first), _histogram.materialize(weight)


def _interpolate(levels: tf.Tensor, luts: tf.Tensor, g: _Geometry, bins: int) -> tf.Tensor:
    """Bilinear interpolation between tile tables, in OpenCV's float32 expression order.

    Each pixel reads the tables of the four tiles around it at its level:
    `res = (L11 * (1 - xa) + L12 * xa) * (1 - ya) + (L21 * (1 - xa) + L22 * xa) * ya`,
    then rounds half to even. Tiles and weights depend on the row or the column
    only, so they are computed once per row and once per column.
    """
    rows, cols, planes = g.rows, g.cols, g.planes
    # Zero, but only known at run time (tables are >= 0; an empty batch gives min(INT_MAX, 0)).
    zero = tf.cast(tf.minimum(tf.reduce_min(luts), 0), tf.float32)
    ty, ya = _axis_weights(g.height, g.tile_h, rows, zero)
    tx, xa = _axis_weights(g.width, g.tile_w, cols, zero)
    plane_offset = tf.range(planes, dtype=tf.int32) * bins

    def offsets(row_part: tf.Tensor, col_part: tf.Tensor) -> tf.Tensor:
        # (H, W, P): per-position table offset, shared by the images of the batch.
        # expand_dims rather than [:, :, None]: TensorFlow Lite has no such slice of a 2-D dynamic shape.
        return tf.expand_dims(row_part[:, None] + col_part[None, :], -1) + plane_offset

    if bins <= _PACK_MAX_BINS:
        # One int32 per (lower row tile, lower column tile, plane, level) holds the
        # four 8-bit corner values, so each pixel needs a single gather. Lower tiles
        # run over -1..tiles-1 (unclamped); the corners are the clamped tiles
        # max(t, 0) and min(t + 1, tiles - 1), so that pixels within half a tile of
        # the border interpolate between a tile and itself (OpenCV's 1-D case).
        r1, r2 = tf.maximum(tf.range(-1, rows), 0), tf.minimum(tf.range(rows + 1), rows - 1)
        c1, c2 = tf.maximum(tf.range(-1, cols), 0), tf.minimum(tf.range(cols + 1), cols - 1)
        luts = tf.reshape(luts, [g.batch, rows, cols, planes, bins])
        top, bottom = tf.gather(luts, r1, axis=1), tf.gather(luts, r2, axis=1)
        l11, l12, l21, l22 = (tf.gather(t, c, axis=2) for t in (top, bottom) for c in (c1, c2))
        # Bytes 0..2 hold L11, L12 and L21, the signed top byte L22 - 128 (no int32 overflow).
        packed = l11 + l12 * 2**8 + l21 * 2**16 + (l22 - 128) * 2**24
        packed = _histogram.materialize(tf.reshape(packed, [g.batch, -1]))
        index = levels + offsets((ty + 1) * ((cols + 1) * planes * bins), (tx + 1) * (planes * bins))
        word = _histogram.gather_rows(packed, index)
        # Arithmetic right shifts (floor division by 2**8k) peel the bytes off from the top.
        w1, w2, w3 = (tf.bitwise.right_shift(word, 8 * k) for k in (1, 2, 3))
        l11, l12, l21, l22 = (
            tf.cast(v, tf.float32) for v in (word - w1 * 2**8, w1 - w2 * 2**8, w2 - w3 * 2**8, w3 + 128)
        )
    else:
        # Wide tables: four gathers straight from the tile tables (a packed copy
        # would be four times their size). Not `materialize`d: the tables come out
        # of a cumulative sum, which XLA does not fuse into the gathers, and the
        # cheap rounding after it is better recomputed than copied at this size.
        flat = tf.reshape(luts, [g.batch, -1])
        row_parts = [t * (cols * planes * bins) for t in (tf.maximum(ty, 0), tf.minimum(ty + 1, rows - 1))]
        col_parts = [t * (planes * bins) for t in (tf.maximum(tx, 0), tf.minimum(tx + 1, cols - 1))]
        l11, l12, l21, l22 = (
            tf.cast(_histogram.gather_rows(flat, levels + offsets(r, c)), tf.float32)
            for r in row_parts
            for c in col_parts
        )
    xa = xa[None, None, :, None]
    ya = ya[None, :, None, None]
    xa1 = 1.0 - xa
    ya1 = 1.0 - ya
    # Every product is rounded to float32 before it is added (see `_rounded`).
    upper = _rounded(l11 * xa1, zero) + _rounded(l12 * xa, zero)
    lower = _rounded(l21 * xa1, zero) + _rounded(l22 * xa, zero)
    res = _rounded(upper * ya1, zero) + _rounded(lower * ya, zero)
    out = tf.clip_by_value(tf.round(res), 0.0, bins - 1.0)  # tf.round is half to even, like cvRound
    return tf.cast(out, tf.int32)


def check_clip_limits(clip_limit, images: tf.Tensor) -> float | tf.Tensor:
    """`clahe`'s `clip_limit` for `images`: a checked float, or a float tensor of per-image limits."""
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
