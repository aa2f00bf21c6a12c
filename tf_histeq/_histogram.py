"""Private kernels for global equalization on int32 levels: histograms, lookup tables, lookup.

Layout: levels are `(N, H, W, P)` int32 in `[0, bins)`, one histogram per
(image, plane) (or per image, `joint`), never pooled over the batch.

Histograms (`histograms`, `count_rows`) are scatter-adds of ones
(`tf.math.unsorted_segment_sum`) at `level + bins * (plane + P * image)`:
XLA compiles them (`tf.histogram_fixed_width` has no XLA kernel), TensorFlow
Lite runs them as a builtin op (`DenseBincount` is not one), tf2onnx maps them
to ONNX (see `tf_histeq.deploy.to_onnx`), and they need no one-hot tensor:
memory is O(input + N * P * bins). They run in pieces of at most 2**18 pixels:
XLA's CPU scatter slows down several times past a few million updates, and
independent pieces run concurrently.

The lookup tables reproduce two libraries exactly, generalised from 256 to any
number of bins (`C` is the inclusive cumulative histogram, `N` the pixel count):

- `lut_opencv`: OpenCV's `cv::equalizeHist` (`modules/imgproc/src/histogram.cpp`,
  `EqualizeHistLut_Invoker`). With `f` the lowest occupied level, a plane with
  `h[f] == N` is returned unchanged (OpenCV's `dst.setTo(f)`); otherwise
  `scale = (bins - 1.f) / (N - h[f])` is a float32 division and
  `lut[v] = saturate_cast(cvRound(f32(C(v) - h[f]) * scale))`: the int count is
  converted to float32 and *multiplied* by the rounded reciprocal, then
  rounded half to even. Dividing instead flips exact ties: with `N - h[f] = 14`,
  `7 * 255 / 14 = 127.5` rounds to 128, OpenCV's `7 * f32(255 / 14)` is
  127.49999 and gives 127.
- `lut_pil`: Pillow's `ImageOps.equalize` (`src/PIL/ImageOps.py`), all in
  integers: `step = (N - h[top]) // (bins - 1)` with `top` the highest occupied
  level, `lut[v] = min(bins - 1, (step // 2 + C(v - 1)) // step)` with the
  *exclusive* cumulative histogram (the `min` is `Image.point`'s clipping); the
  identity when at most one level is occupied or `step == 0`. Pillow counts
  only pixels inside its mask and maps every pixel, as the `valid` argument does.

`apply_luts` looks every pixel up in its plane's table with one gather.
`materialize` makes XLA compute a small table once, before the per-pixel
gather that reads it, instead of once per pixel.
"""

from __future__ import annotations

import tensorflow as tf


def histograms(levels: tf.Tensor, bins: int, valid: tf.Tensor | None = None, *, joint: bool = False) -> tf.Tensor:
    """Count levels per image and plane.

    Args:
        levels: int32 `(N, H, W, P)` in `[0, bins)`.
        bins: Number of levels.
        valid: Optional bool tensor broadcastable to `levels`; only True pixels count.
        joint: Pool the `P` planes of an image into one histogram.

    Returns:
        int32 `(N, Q, bins)` with `Q = 1` if `joint` else `P`.
    """
    planes = 1 if joint else levels.shape[-1]
    batch = static_or_dynamic(levels, 0)
    index = levels
    if planes > 1:
        index = index + tf.range(planes, dtype=tf.int32) * bins
    size = planes * bins
    if valid is not None:
        # Pixels outside the mask (or NaN) go to one extra bin that is dropped.
        index = tf.where(valid, index, size)
        size += 1
    counts = count_rows(tf.reshape(index, [batch, -1]), size)
    return tf.reshape(counts[:, : planes * bins], [batch, planes, bins])


# Updates per scatter: XLA's CPU scatter slows down 3-5x past a few million
# updates, and independent pieces run concurrently.
_PIECE = 2**18


def count_rows(rows: tf.Tensor, size: int) -> tf.Tensor:
    """Histogram of each row of an int32 `(R, L)` tensor with values in `[0, size)`: int32 `(R, size)`.

    `unsorted_segment_sum`s of ones over `value + row * size`: scatter-adds that
    XLA compiles (`tf.histogram_fixed_width` has no XLA kernel), that TensorFlow
    Lite runs as a builtin op (`DenseBincount` is not one), that tf2onnx maps
    to ONNX (`tf_histeq.deploy.to_onnx`) and that need no one-hot tensor.

    With a static shape the rows are counted in pieces of at most `_PIECE`
    pixels (blocks of whole rows, or column blocks of a long row whose counts
    are added), each with int32 ids that cannot overflow; otherwise in four
    column blocks, with int64 ids.
    """
    n, length = rows.shape
    if n is None or length is None:
        total = tf.shape(rows)[1]
        blocks = [rows[:, (total * j) // 4 : (total * (j + 1)) // 4] for j in range(4)]
        return _sum([_count(block, size, tf.int64) for block in blocks])
    step = max(min(_PIECE // max(length, 1), (2**31 - 1) // size), 1)  # whole rows per piece
    width = min(max(length, 1), _PIECE)  # columns per piece
    pieces = []
    for first in range(0, n, step):
        block = rows[first : first + step]
        parts = [_count(block[:, c : c + width], size, tf.int32) for c in range(0, max(length, 1), width)]
        pieces.append(_sum(parts))
    return tf.concat(pieces, axis=0) if pieces else tf.zeros([0, size], tf.int32)


def _sum(tensors: list[tf.Tensor]) -> tf.Tensor:
    """Element-wise sum by `+` (`tf.add_n` becomes ONNX's `Sum`, which has no integer kernels)."""
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total


def _count(rows: tf.Tensor, size: int, id_dtype: tf.DType) -> tf.Tensor:
    """One scatter-add of ones: the histograms of the rows, int32 `(R, size)`."""
    batch = tf.shape(rows, out_type=id_dtype)[0]
    ids = tf.reshape(tf.cast(rows, id_dtype) + tf.range(batch)[:, None] * size, [-1])  # 1-D, for tf2onnx
    counts = tf.math.unsorted_segment_sum(tf.ones_like(ids, tf.int32), ids, batch * size)
    return tf.reshape(counts, [-1, size])


# TensorFlow Lite's scatter and gather kernels take these dtypes; tables of other
# dtypes are materialized and gathered in a wider one (exactly) and cast back.
_WIDER = {tf.uint8: tf.int32, tf.uint16: tf.int32, tf.float16: tf.float32, tf.bfloat16: tf.float32}


def materialize(table: tf.Tensor) -> tf.Tensor:
    """Return `table` unchanged, computed once before the per-pixel gather that reads it.

    XLA fuses a gather's operand into the gather, so the few ops that build a
    small table would be recomputed for every pixel (3-5x slower here). A
    scatter is never fused into its consumer: scattering the table onto its own
    positions (an identity `unsorted_segment_sum`, cheap for a table) makes XLA
    write it to memory first. Outside XLA it is a plain copy. Narrow dtypes are
    scattered as int32 or float32 (exactly), which TensorFlow Lite supports.
    """
    wide = _WIDER.get(table.dtype, table.dtype)
    flat = tf.reshape(tf.cast(table, wide), [-1])
    size = tf.size(flat)
    copy = tf.math.unsorted_segment_sum(flat, tf.range(size), size)
    return tf.cast(tf.reshape(copy, tf.shape(table)), table.dtype)


def lut_opencv(hist: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`cv2.equalizeHist` lookup tables, generalised to any number of bins.

    `lut[v] = rne(f32(C(v) - h[f]) * f32((bins - 1) / f32(N - h[f])))` with `f` the
    lowest occupied level and `C` the inclusive cumsum. A plane with at most one
    occupied level (or no pixel) is left unchanged.

    Args:
        hist: int32 `(..., bins)`.

    Returns:
        `(lut, keep)`: int32 `(..., bins)` levels and a bool `(...)` that is True
        where the plane is to be returned unchanged.

    Example:
        >>> hist = tf.constant([[1, 7, 7] + [0] * 253])  # N = 15, so scale = f32(255 / 14)
        >>> lut, keep = lut_opencv(hist)
        >>> lut[0, :3].numpy()  # 7 * f32(255 / 14) = 127.49999 rounds to 127, not 128
        array([  0, 127, 255], dtype=int32)
    """
    bins = hist.shape[-1]
    total = tf.reduce_sum(hist, axis=-1, keepdims=True)
    cdf = tf.cumsum(hist, axis=-1)
    first = tf.argmax(tf.cast(hist > 0, tf.int32), axis=-1, output_type=tf.int32)[..., None]  # ONNX: no bool ArgMax
    h_first = tf.gather(hist, first, batch_dims=len(hist.shape) - 1)
    # OpenCV multiplies by a float32 reciprocal. Dividing instead flips exact
    # ties: 7 * 255 / 14 = 127.5 rounds to 128, OpenCV's 7 * f32(255 / 14) to 127.
    scale = tf.math.divide_no_nan(tf.constant(bins - 1, tf.float32), tf.cast(total - h_first, tf.float32))
    lut = tf.round(tf.cast(cdf - h_first, tf.float32) * scale)  # tf.round is half to even, like cvRound
    lut = tf.cast(tf.clip_by_value(lut, 0.0, bins - 1), tf.int32)
    keep = tf.squeeze(h_first == total, -1)
    return _identity_where(keep, lut), keep


def lut_pil(hist: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`PIL.ImageOps.equalize` lookup tables, generalised to any number of bins.

    Integer arithmetic throughout: `step = (N - h[top]) // (bins - 1)` with `top`
    the highest occupied level, `lut[v] = min(bins - 1, (step // 2 + C(v - 1)) // step)`
    with the *exclusive* cumsum. Pillow returns the plane unchanged when
    `step == 0` (fewer than `bins - 1` pixels below the top level) or when at
    most one level is occupied.

    Example:
        >>> hist = tf.constant([[300, 200] + [0] * 254])  # 500 pixels on two levels: step = 300 // 255 = 1
        >>> lut, keep = lut_pil(hist)
        >>> lut[0, :3].numpy()  # (0 + 0) // 1, then (0 + 300) // 1, clipped to 255
        array([  0, 255, 255], dtype=int32)
    """
    bins = hist.shape[-1]
    total = tf.reduce_sum(hist, axis=-1, keepdims=True)
    occupied = hist > 0
    top = bins - 1 - tf.argmax(tf.reverse(tf.cast(occupied, tf.int32), [-1]), axis=-1, output_type=tf.int32)[..., None]
    h_top = tf.gather(hist, top, batch_dims=len(hist.shape) - 1)
    step = (total - h_top) // (bins - 1)
    n_occupied = tf.reduce_sum(tf.cast(occupied, tf.int32), axis=-1, keepdims=True)
    keep = (step == 0) | (n_occupied <= 1)
    safe_step = tf.maximum(step, 1)
    exclusive = tf.cumsum(hist, axis=-1, exclusive=True)
    lut = tf.minimum((safe_step // 2 + exclusive) // safe_step, bins - 1)
    keep = tf.squeeze(keep, -1)
    return _identity_where(keep, lut), keep


def _identity_where(keep: tf.Tensor, lut: tf.Tensor) -> tf.Tensor:
    """Replace the tables of planes flagged in `keep` by the identity."""
    identity = tf.range(lut.shape[-1], dtype=lut.dtype)
    return tf.where(keep[..., None], identity, lut)


LUT_BUILDERS = {"opencv": lut_opencv, "pil": lut_pil}


def apply_luts(luts: tf.Tensor, levels: tf.Tensor, *, joint: bool = False) -> tf.Tensor:
    """Look up every pixel in its own image and plane's table.

    Args:
        luts: `(N, Q, bins)` tables (any dtype); `Q` is 1 if `joint` else `P`.
        levels: int32 `(N, H, W, P)`.
        joint: One table per image for all planes.

    Returns:
        `(N, H, W, P)` of the tables' dtype.
    """
    bins = luts.shape[-1]
    planes = levels.shape[-1]
    index = levels
    if not joint and planes > 1:
        index = index + tf.range(planes, dtype=tf.int32) * bins
    gathered = luts.dtype if luts.dtype == tf.uint8 else _WIDER.get(luts.dtype, luts.dtype)
    table = tf.reshape(tf.cast(materialize(luts), gathered), [static_or_dynamic(levels, 0), -1])
    return tf.cast(gather_rows(table, index), luts.dtype)


def static_or_dynamic(x: tf.Tensor, axis: int) -> int | tf.Tensor:
    """The size of `x` along `axis`: a Python int where known when tracing, else a scalar tensor."""
    size = x.shape[axis]
    return size if size is not None else tf.shape(x)[axis]


def gather_rows(table: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """`table[n, index[n, ...]]` for a `(N, T)` table and int32 `(N, ...)` positions.

    One gather from the flattened table at `index + n * T`: `tf.gather(...,
    batch_dims=1)` would have XLA write a (position, image) pair per pixel
    first, and runs at half the speed. The offsets are int32 when `N * T` is
    known to fit, int64 otherwise.
    """
    n, size = table.shape
    wide = n is None or size is None or n * size >= 2**31
    dtype = tf.int64 if wide else tf.int32
    rows = tf.range(tf.shape(table, out_type=dtype)[0]) * tf.cast(tf.shape(table)[1], dtype)
    offsets = tf.reshape(rows, tf.concat([[-1], tf.ones([index.shape.rank - 1], tf.int32)], 0))
    return tf.gather(tf.reshape(table, [-1]), tf.cast(index, dtype) + offsets)
