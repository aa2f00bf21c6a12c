"""Private kernel: scikit-image's `exposure.equalize_adapthist`, 2-D and 3-D, bit-exact, in TensorFlow ops.

Layout: `images` are `(N, *spatial, C)` with a spatial rank of 2 or 3 that
the caller states (`spatial_dims`; nothing is guessed from the shape); every
(image, channel) plane is processed on its own, as skimage processes one
plane given alone. The spatial sizes must be known when tracing (the tiling
depends on them); `N` and `C` may be unknown. The reference is
`skimage/exposure/_adapthist.py` (scikit-image 0.26), step by step:

1. `equalize_adapthist`, the input conversion: `img_as_uint`
   (`skimage/util/dtype.py`, `_convert`) gives 16-bit values `u`:
   uint8 `x * 257`; uint16 `x`; int16 `_scale(x, 15, 16)` =
   `(x * 32769) // 16384` with negatives set to 0 (so every negative value,
   e.g. Hounsfield units of air, fat and water below 0, becomes 0, as in
   skimage); int32 `max(x, 0)` when the plane's maximum is below 2**16, else
   `max(x // 2**15, 0)`; float32 and float64 `rint(x * 65535)` in the input's
   own precision, clipped to `[0, 65535]` (rounding half to even). skimage
   refuses float input outside `[-1, 1]`; this kernel clips it, so the caller
   must check (NaN gives an unspecified result).
2. `rescale_intensity(u, out_range=(0, NR_OF_GRAY - 1))` and `np.round`, the
   14-bit image `q` (`NR_OF_GRAY = 2**14`): in float64, with the plane's
   `umin`, `umax`, `q = round((u - umin) / (umax - umin) * 16383)` (half to
   even); a constant plane gives `q = min(u, 16383)` (`np.clip` to the range).
   `quantized` returns `q`.
3. `_clahe`, the geometry. `kernel_size` is `max(s // 8, 1)` per axis by
   default, an int for every axis, or one int per axis (`kernel_shape`). Each
   axis of size `s` is padded with `np.pad(mode="reflect")` by `k // 2` before
   and `(k - s % k) % k + ceil(k / 2)` after: the padded size is
   `(ceil(s / k) + 1) * k`. Reflection (`dcb|abcd|cba`) repeats with period
   `2 * (s - 1)` when a pad is longer than the axis, and a 1-voxel axis repeats
   its value, as NumPy does. The padding is never materialized: a voxel at
   `i` is at padded position `i + k // 2`, and only the reflected voxels the
   last tile reads are gathered.
4. The bins: `bin = q // bin_size` with `bin_size = 1 + NR_OF_GRAY // nbins`
   (skimage's `lut`), always `< nbins`.
5. The histograms: `ceil(s / k)` tiles per axis (`ns_hist`), tile `j` covering
   padded positions `k // 2 + j * k ...` (original voxels `j * k` to
   `(j + 1) * k - 1`, the last tile reaching into the reflection), `nbins` bins
   each (`np.bincount(minlength=nbins)`), counted with scatter-adds over all
   tiles of all planes at once, a slab of rows per step (`_histograms`).
6. `clip_histogram`, when `clip_limit > 0`, with
   `clim = int(np.clip(clip_limit * prod(kernel_size), 1, None))` (a float64
   product in Python, truncated); `clip_limit == 0` means no clipping, as does
   any `clim >= prod(kernel_size)` (no bin can exceed it). Exactly skimage's
   steps, vectorized over all histograms (`_clip`): clip at `clim`,
   `n_excess` the clipped counts; `bin_incr = n_excess // nbins`,
   `upper = clim - bin_incr`; bins `< upper` gain `bin_incr` (and `n_excess`
   loses it per bin); then bins in `[upper, clim)` *of the updated histogram*
   are set to `clim`, adding `bin - clim` to `n_excess` (which may go
   negative); then the redistribution loop, one `tf.while_loop` step per
   iteration of skimage's inner `for index in range(nbins)` (all histograms
   in step, each with its own `index`, `n_excess` and `prev_n_excess`): with
   `u` the number of bins `< clim`, `step = max(1, u // n_excess)`, the bins
   `< clim` among `index, index + step, ...` gain 1 and `n_excess` loses their
   count; a histogram stops when `n_excess <= 0`, when a whole pass over the
   indices leaves `n_excess` unchanged, or when no bin is below `clim` (no
   later step can change it).
7. `map_histogram`: `cumsum` as float64, times `16383 / prod(kernel_size)`
   (a Python float64 quotient), clipped above at 16383, truncated to int.
8. The multilinear interpolation (bilinear in 2-D, trilinear in 3-D): voxel
   `i` at padded position `p = i + k // 2` lies in block `b = p // k` at
   `r = p % k`, with `c = (arange(k) / k)[r]` and `1 - c` (float64) weighting
   the maps of tiles `clip(b - 1, 0, ns_hist - 1)` and `clip(b, 0,
   ns_hist - 1)` (skimage's edge-padded `map_array`). For each corner `edge`
   in `np.ndindex(2, ..., 2)` order, the corner weight is the float64 product
   of the per-axis weights taken from the *last* axis to the first
   (`np.prod` over `coeffs`, built from `kernel_size[::-1]`); the mapped value
   times that weight (float64) is rounded to float32 and added to a float32
   sum that starts at 0, corner after corner; the sum is truncated to
   uint16 (`result.astype(dtype)`). `clahe_integer` returns this image.
9. The output: `astype(float_dtype)` (float64 for integer input, float32 for
   float32 input) and `rescale_intensity` to `[0, 1]`: with the plane's
   `rmin`, `rmax`, `(r - rmin) / (rmax - rmin)` computed in the output dtype;
   a constant plane gives `clip(r, 0, 1)`. `rmin` and `rmax` are reduced from
   the int16 image (the cast never decreases, so they are the extremes of the
   cast image), a quarter of the bytes of the float64 one.

Parity: float64 outputs (integer and float64 input) equal skimage's exactly,
and so do float32 outputs: skimage's step 9 runs in float32 too (NumPy keeps
float32 against Python floats), with the same correctly rounded operations.
The rounding bound of float32 output (float32 input): `r - rmin` and
`rmax - rmin` are integers below 2**14, exact in float32, so the only
rounding is the quotient's: each value is within half a float32 ulp of the
real `(r - rmin) / (rmax - rmin)`, at most 2**-25 in `[0, 1]` (2**-54 in
float64), and identical to skimage's float32 value (0 differing, tested).
Steps 1-8 are integer-exact in every dtype (the float32 input's
`rint(x * 65535)` is computed in float32, as skimage's `img_as_uint` does).

Structure (for XLA on CPU and GPU alike): every step is a fixed set of
tensor ops over all planes at once, with two `tf.while_loop`s: over slabs
of rows for the histograms (`_SLAB_VOXELS` voxels at most per step, a trip
count fixed by the shape) and over the redistribution steps (`nbins` per
pass, until no histogram changes). Under XLA the interpolation is one
elementwise expression over the whole volume behind a `tf.cond` (XLA's only
fusion barrier here; `_adapthist_interpolate`); outside XLA it runs in
slabs too (a third loop), so that eager and `tf.function` calls store no
whole-volume float64 intermediates (peak memory above the input, steady
call: 8.1x the volume's float32 size eager, 6.4x in a `tf.function`). No
Python loop runs over tiles or voxels, nothing returns to the host inside
the function, and the compiled HLO has no custom call, send, receive,
infeed or outfeed (`tests/test_adapthist.py` reads it). On a GPU, XLA may
copy the predicates of the `tf.cond` and of the redistribution loop's steps
to the host (a few bytes each, as for any conditional or data-dependent
loop); not measured on a GPU yet.

Speed (`tf-histeq bench`, rows `equalize_adapthist 3-D` and `2-D`): on a
128x256x256 uint16 volume, 174-200 ms of CPU per call (user + system)
against 211-246 for the slab-loop kernel this one replaced, in the same runs
on the 2-core machine while other work loaded it: 192 against 287 ms per
call at load average 5 (10.1x against 6.8x scikit-image's 1.9 s there),
541 against 638 ms at load 8.4 (7.3x against 6.2x). On the idle machine
scikit-image takes 1.1 s: about 11x is what 180 ms of CPU on two cores
allows. A 1024x1024 image: 14 ms of CPU, 15 ms per call at load 4.6, 8.3x
scikit-image (the old kernel 4.8x). Short of the 30x aspiration. Where
the CPU goes: the float64 output (about 50 ms, most of it the kernel's page
faults on the freshly allocated 64 MiB), the interpolation (about 45 ms: 4
gathers per voxel; XLA does not vectorize a loop with gathers), the
histograms' scatter-add (about 20 ms, on one thread), and the extremes and
quantization (about 20 ms). Peak memory above the input (steady call): 2.5x
the volume's size in float32 under XLA, against 2.7x before (the float64
output is 2x of it).

RGB images: `tf_histeq._adapthist_hsv` (skimage's `hsv_value` mode).

Eager, `tf.function` and XLA results are identical (tested). Grappler
rewrites a chain of float32 adds into one `AddN`, which sums in another order
in a plain `tf.function`: the corner sums are rounded through float64
(`_adapthist_interpolate.add_float32`), which gives the float32 sum exactly. XLA contracts
`a * b + c` into a fused multiply-add (one rounding instead of two); the
kernel has no such expression (products are rounded to float32 before they
are added, and skimage's `+ omin` terms add 0, so they are left out), and its
only constant divisors (`arange(k) / k`) are computed by NumPy when tracing.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tf_histeq import _adapthist_interpolate, _histogram
from tf_histeq._adapthist_options import check_nbins, clip_count, kernel_shape
from tf_histeq._options import fail

NR_OF_GRAY = 2**14  # skimage's number of internal gray levels
_TOP = NR_OF_GRAY - 1
_UINT16_MAX = 65535

# Input dtypes and skimage's float output dtype (`_supported_float_type`) for each.
OUTPUT_DTYPES = {
    tf.uint8: tf.float64,
    tf.uint16: tf.float64,
    tf.int16: tf.float64,
    tf.int32: tf.float64,
    tf.float32: tf.float32,
    tf.float64: tf.float64,
}


# --- layout ---------------------------------------------------------------------------------------------------------


def _to_planes(images: tf.Tensor, spatial_dims: int) -> tuple[tf.Tensor, tuple[int, ...], callable]:
    """`(N, *spatial, C)` -> `(P, *spatial)` with `P = N * C`, and the inverse for a result."""
    if spatial_dims not in (2, 3):
        fail(ValueError, "spatial_dims", "be 2 or 3", spatial_dims)
    rank = images.shape.rank
    if rank != spatial_dims + 2:
        fail(
            ValueError,
            "images",
            f"have rank {spatial_dims + 2}, (N, {'D, ' if spatial_dims == 3 else ''}H, W, C)",
            tuple(images.shape),
        )
    spatial = tuple(images.shape[1:-1])
    if any(s is None for s in spatial):
        fail(ValueError, "images", "have spatial sizes known when tracing", tuple(images.shape))
    if images.dtype not in OUTPUT_DTYPES:
        fail(TypeError, "images", f"have a dtype among {[d.name for d in OUTPUT_DTYPES]}", images.dtype.name)
    batch = _histogram.static_or_dynamic(images, 0)
    channels = _histogram.static_or_dynamic(images, rank - 1)
    static = isinstance(batch, int) and isinstance(channels, int)
    order = [0, rank - 1, *range(1, rank - 1)]
    planes = tf.reshape(tf.transpose(images, order), [batch * channels if static else -1, *spatial])

    def restore(result: tf.Tensor) -> tf.Tensor:
        shaped = tf.reshape(
            result, tf.stack([batch, channels, *spatial]) if not static else [batch, channels, *spatial]
        )
        return tf.transpose(shaped, [0, *range(2, rank), 1])

    return planes, spatial, restore


def _plane_reduce(fn, x: tf.Tensor) -> tf.Tensor:
    """`fn` over the spatial axes of `(P, *spatial)`, kept as broadcastable `(P, 1, ...)`."""
    return fn(x, axis=list(range(1, x.shape.rank)), keepdims=True)


# --- steps 1 and 2: skimage's img_as_uint and the 14-bit image ----------------------------------------------------


def as_uint16(planes: tf.Tensor, top: tf.Tensor) -> tf.Tensor:
    """Return skimage's `img_as_uint` values (step 1), as int32 in `[0, 65535]`.

    `top` is the plane's maximum (broadcastable), which decides int32's scaling.
    The mapping never decreases, so the maps of a plane's minimum and maximum
    are the minimum and maximum of its values.
    """
    dtype = planes.dtype
    if dtype == tf.uint8:
        return tf.cast(planes, tf.int32) * 257  # _scale(a, 8, 16): a * (2**16 - 1) // (2**8 - 1)
    if dtype == tf.uint16:
        return tf.cast(planes, tf.int32)
    if dtype == tf.int16:
        # _scale(a, 15, 16): a * 32769 (int32) // 2**14, then np.maximum(., 0).
        a = tf.cast(planes, tf.int32)
        return tf.maximum(2 * a + a // NR_OF_GRAY, 0)
    if dtype == tf.int32:
        # _scale(a, 31, 16): values that fit 16 bits are kept (np.maximum(., 0)), else a // 2**15.
        fits = top < 2**16
        return tf.maximum(tf.where(fits, planes, planes // 2**15), 0)
    if dtype in (tf.float32, tf.float64):
        # np.multiply(image, 65535, dtype=input dtype); np.rint; np.clip(0, 65535).
        scaled = tf.round(planes * tf.constant(_UINT16_MAX, dtype))  # half to even, like np.rint
        return tf.cast(tf.clip_by_value(scaled, 0.0, float(_UINT16_MAX)), tf.int32)
    fail(TypeError, "images", f"have a dtype among {[d.name for d in OUTPUT_DTYPES]}", dtype.name)


def quantize(planes: tf.Tensor) -> tf.Tensor:
    """Steps 1-2: `np.round(rescale_intensity(img_as_uint(x), out_range=(0, 2**14 - 1)))`, int32 `(P, *spatial)`.

    The extremes are taken from the input (the conversion never decreases):
    the 16-bit values are then computed where they are used, never stored.
    """
    top = _plane_reduce(tf.reduce_max, planes)
    low = tf.cast(as_uint16(_plane_reduce(tf.reduce_min, planes), top), tf.float64)
    high = tf.cast(as_uint16(top, top), tf.float64)
    u = as_uint16(planes, top)
    same = tf.equal(low, high)
    # (image - imin) / (imax - imin) * (omax - omin) + omin, with omin = 0 (the + 0.0 changes nothing).
    scaled = (tf.cast(u, tf.float64) - low) / tf.where(same, tf.ones_like(high), high - low) * float(_TOP)
    return tf.where(same, tf.minimum(u, _TOP), tf.cast(tf.round(scaled), tf.int32))


# --- steps 3 to 8: skimage's _clahe --------------------------------------------------------------------------------


def _reflect(index: np.ndarray, size: int) -> np.ndarray:
    """`np.pad(mode="reflect")` positions: period `2 * (size - 1)`; a 1-voxel axis repeats its value."""
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    folded = np.abs(index) % period
    return np.where(folded >= size, period - folded, folded)


class _Axis:
    """Per-axis geometry of `_clahe`: tiles, histogram source positions, interpolation tiles and weights."""

    def __init__(self, size: int, k: int):
        self.size, self.k = size, k
        self.tiles = -(-size // k)  # ns_hist = ceil(s / k)
        # Histogram region: original positions 0 .. tiles*k - 1 (reflected past the end).
        self.source = _reflect(np.arange(self.tiles * k), size)
        p = np.arange(size) + k // 2  # padded position of each voxel
        block, r = p // k, p % k
        self.block = block  # 0 .. tiles: the blocks of skimage's map_array
        self.tile = (np.clip(block - 1, 0, self.tiles - 1), np.clip(block, 0, self.tiles - 1))
        coeff = (np.arange(k) / k)[r]  # float64, as skimage's np.arange(k) / k
        self.weight = (1 - coeff, coeff)  # edge 0: inv_coeffs, edge 1: coeffs


def _histograms(bins: tf.Tensor, axes: list[_Axis], nbins: int) -> tf.Tensor:
    """Step 5: int32 `(P, tiles * nbins)` tile histograms of the binned planes `(P, *spatial)`.

    Counted in slabs of rows of the first axis of the histogram region (one
    `tf.while_loop` step and one scatter-add each), so that only one slab's
    bin ids exist at a time; the reflected rows and columns of the last tiles
    are gathered per slab.
    """
    rank = len(axes)
    planes = _histogram.static_or_dynamic(bins, 0)
    static_planes = planes if isinstance(planes, int) else 1
    extended = [ax.source.size for ax in axes]
    rows = _slab_rows(extended[0], static_planes * math.prod(extended[1:]))
    steps = extended[0] // rows
    strides = [nbins * math.prod(ax.tiles for ax in axes[a + 1 :]) for a in range(rank)]
    size = strides[0] * axes[0].tiles
    wide = not isinstance(planes, int) or planes * size >= 2**31
    id_dtype = tf.int64 if wide else tf.int32

    def along(a: int, values) -> tf.Tensor:
        shape = [1] * rank
        shape[a] = -1
        return tf.reshape(tf.cast(values, id_dtype), shape)

    source0 = tf.constant(axes[0].source, tf.int32)
    tile0 = tf.constant(np.arange(extended[0]) // axes[0].k * strides[0], id_dtype)
    offset_rest = sum(along(a, np.arange(extended[a]) // axes[a].k * strides[a]) for a in range(1, rank))
    plane_offset = along(0, tf.range(planes, dtype=id_dtype) * size)  # planes on axis 0 of the slab
    segments = tf.cast(planes, id_dtype) * size

    def body(step, hist):
        begin = step * rows
        slab = tf.gather(bins, tf.slice(source0, [begin], [rows]), axis=1)
        for a in range(1, rank):
            if extended[a] != axes[a].size:  # the last tile reaches into the reflection
                slab = tf.gather(slab, axes[a].source.astype(np.int32), axis=a + 1)
        index = tf.cast(slab, id_dtype) + tf.expand_dims(along(0, tf.slice(tile0, [begin], [rows])), 0)
        index = index + (offset_rest if rank > 1 else 0) + tf.reshape(plane_offset, [-1] + [1] * rank)
        flat = tf.reshape(index, [-1])
        return step + 1, hist + tf.math.unsorted_segment_sum(tf.ones_like(flat, tf.int32), flat, segments)

    zeros = tf.zeros(tf.reshape(segments, [1]), tf.int32)
    _, hist = tf.while_loop(lambda step, hist: step < steps, body, (tf.constant(0), zeros))
    return tf.reshape(hist, [planes, size])


def _clip(hist: tf.Tensor, clim: int) -> tf.Tensor:
    """Step 6: skimage's `clip_histogram` on every row of int32 `(M, nbins)`."""
    nbins = hist.shape[-1]
    excess = tf.reduce_sum(tf.maximum(hist - clim, 0), axis=-1)
    hist = tf.minimum(hist, clim)
    bin_incr = excess // nbins
    upper = (clim - bin_incr)[:, None]
    low = hist < upper
    excess -= tf.reduce_sum(tf.cast(low, tf.int32), axis=-1) * bin_incr
    hist = tf.where(low, hist + bin_incr[:, None], hist)
    mid = tf.logical_and(hist >= upper, hist < clim)
    excess -= tf.reduce_sum(tf.where(mid, clim - hist, 0), axis=-1)
    hist = tf.where(mid, clim, hist)
    return _redistribute(hist, excess, tf.constant(clim, tf.int32))


@tf.function(
    input_signature=[
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([], tf.int32),
    ],
    autograph=False,
)
def _redistribute(hist: tf.Tensor, excess: tf.Tensor, clim: tf.Tensor) -> tf.Tensor:
    """Run skimage's `while n_excess > 0` loop, all rows in step (one traced graph, also when called eagerly)."""
    nbins = tf.shape(hist)[-1]
    positions = tf.range(nbins)[None, :]
    rows = tf.shape(hist)[0]

    def body(hist, excess, index, prev, active):
        under = hist < clim
        count = tf.reduce_sum(tf.cast(under, tf.int32), axis=-1)
        step = tf.maximum(count // tf.maximum(excess, 1), 1)
        offset = positions - index[:, None]
        chosen = under & (offset >= 0) & (offset % step[:, None] == 0) & active[:, None]
        hist += tf.cast(chosen, tf.int32)
        excess -= tf.reduce_sum(tf.cast(chosen, tf.int32), axis=-1)
        index += 1
        pass_done = tf.equal(index, nbins)
        stalled = pass_done & tf.equal(excess, prev)
        active &= (excess > 0) & ~stalled & (count > 0)
        index = tf.where(pass_done, 0, index)
        prev = tf.where(pass_done, excess, prev)
        return hist, excess, index, prev, active

    zeros = tf.zeros([rows], tf.int32)
    hist, *_ = tf.while_loop(
        lambda hist, excess, index, prev, active: tf.reduce_any(active),
        body,
        (hist, excess, zeros, excess, excess > 0),
    )
    return hist


def _maps(hist: tf.Tensor, kernel_elements: int) -> tf.Tensor:
    """Step 7: skimage's `map_histogram(hist, 0, NR_OF_GRAY - 1, kernel_elements)`, int32."""
    out = tf.cast(tf.cumsum(hist, axis=-1), tf.float64) * (_TOP / kernel_elements)
    return tf.cast(tf.minimum(out, float(_TOP)), tf.int32)  # non-negative: truncation = astype(int)


# Voxels (of all planes together) per step of the histogram loop.
_SLAB_VOXELS = 2**18


def _slab_rows(first_axis: int, per_row: int) -> int:
    """The largest divisor of `first_axis` whose rows hold at most `_SLAB_VOXELS` voxels (at least 1)."""
    best = 1
    for rows in range(1, first_axis + 1):
        if first_axis % rows == 0 and rows * per_row <= _SLAB_VOXELS:
            best = rows
    return best


def clahe_integer_planes(q: tf.Tensor, kernel: tuple[int, ...], clip_limit: float, nbins: int) -> tuple[tf.Tensor, ...]:
    """Return skimage's `_clahe(q, kernel, clip_limit, nbins)` on int32 14-bit planes `(P, *spatial)` (steps 3-8).

    int16 `(P, *spatial)`, with each plane's minimum and maximum (int16 `(P,)`).
    """
    axes = [_Axis(s, k) for s, k in zip(q.shape[1:], kernel, strict=True)]
    kernel_elements = math.prod(kernel)
    tiles = math.prod(ax.tiles for ax in axes)
    if tiles * nbins >= 2**31:
        fail(ValueError, "kernel_size", "leave fewer than 2**31 / nbins tiles per plane", kernel)
    # Bins are < nbins (and < 2**14): one byte each where they fit, which halves what steps 5 and 8 read.
    # q >= 0: a truncating division, one XLA divide that XLA fuses with the quantization (a floordiv is not fused).
    bins = tf.cast(tf.truncatediv(q, 1 + NR_OF_GRAY // nbins), tf.uint8 if nbins <= 256 else tf.int16)
    hist = tf.reshape(_histograms(bins, axes, nbins), [-1, nbins])
    clim = clip_count(clip_limit, kernel_elements)
    if clim is not None:
        hist = _clip(hist, clim)
    maps = _maps(hist, kernel_elements)
    planes = _histogram.static_or_dynamic(bins, 0)
    rows = _slab_rows(axes[0].size, (planes if isinstance(planes, int) else 1) * math.prod(q.shape[2:]))
    return _adapthist_interpolate.interpolate(bins, maps, axes, nbins, rows)


# --- step 9 and the public-facing kernel functions --------------------------------------------------------------


def rescale_unit(r: tf.Tensor, low: tf.Tensor, high: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """Step 9: `rescale_intensity(r.astype(dtype))` to `[0, 1]`, per plane, in `dtype`.

    `low` and `high` are the integer planes' extremes `(P,)`: cast, they are
    the extremes of the cast image (the cast never decreases).
    """
    shape = [-1] + [1] * (r.shape.rank - 1)
    low = tf.reshape(tf.cast(low, dtype), shape)
    high = tf.reshape(tf.cast(high, dtype), shape)
    x = tf.cast(r, dtype)
    same = tf.equal(low, high)
    scaled = (x - low) / tf.where(same, tf.ones_like(high), high - low)
    return tf.where(same, tf.clip_by_value(x, 0.0, 1.0), scaled)


def _prepare(images, spatial_dims, kernel_size, clip_limit, nbins):
    images = tf.convert_to_tensor(images)
    planes, spatial, restore = _to_planes(images, spatial_dims)
    kernel = kernel_shape(kernel_size, spatial)
    clip_count(clip_limit, math.prod(kernel))  # validates
    return images, planes, kernel, check_nbins(nbins), restore


@tf.autograph.experimental.do_not_convert  # plain Python control flow only: tracing stays fast
def quantized(images, *, spatial_dims: int) -> tf.Tensor:
    """Return skimage's 14-bit image (steps 1-2) of every plane: int32, the layout of `images`."""
    images = tf.convert_to_tensor(images)
    planes, _, restore = _to_planes(images, spatial_dims)
    return restore(quantize(planes))


@tf.autograph.experimental.do_not_convert  # plain Python control flow only: tracing stays fast
def clahe_integer(images, *, spatial_dims: int, kernel_size=None, clip_limit: float = 0.01, nbins: int = 256):
    """Return skimage's integer image before its final rescale (`_clahe`'s result, steps 1-8), int32."""
    _, planes, kernel, nbins, restore = _prepare(images, spatial_dims, kernel_size, clip_limit, nbins)
    r, _, _ = clahe_integer_planes(quantize(planes), kernel, clip_limit, nbins)
    return restore(tf.cast(r, tf.int32))


@tf.autograph.experimental.do_not_convert  # plain Python control flow only: tracing stays fast
def equalize_adapthist_planes(
    images, *, spatial_dims: int, kernel_size=None, clip_limit: float = 0.01, nbins: int = 256
) -> tf.Tensor:
    """Apply skimage's `exposure.equalize_adapthist` to every (image, channel) plane, bit-exact.

    Image `n`, channel `c` of the result equals
    `skimage.exposure.equalize_adapthist(images[n, ..., c], kernel_size, clip_limit, nbins)`
    (a 2-D or 3-D array given alone, so never read as RGB): 0 differing values
    in float64 and in float32.

    Args:
        images: `(N, H, W, C)` (`spatial_dims=2`) or `(N, D, H, W, C)`
            (`spatial_dims=3`) of uint8, uint16, int16, int32, float32 or
            float64; spatial sizes known when tracing. Float values must lie in
            `[-1, 1]` (skimage raises otherwise; here they are clipped).
        spatial_dims: 2 for images, 3 for volumes. Stated, never guessed.
        kernel_size: skimage's: None (`max(s // 8, 1)` per axis), an int, or
            one int per spatial axis.
        clip_limit: skimage's clip limit in `[0, 1]`; 0 disables clipping.
        nbins: Number of histogram bins.

    Returns:
        float64 `images`-shaped for integer and float64 input, float32 for float32 input, in `[0, 1]`.

    Raises:
        ValueError: If the rank is not `spatial_dims + 2`, a spatial size is
            unknown, `kernel_size`, `clip_limit` or `nbins` is out of range.
        TypeError: If the dtype or `kernel_size`'s type is not supported.
    """
    images, planes, kernel, nbins, restore = _prepare(images, spatial_dims, kernel_size, clip_limit, nbins)
    r, low, high = clahe_integer_planes(quantize(planes), kernel, clip_limit, nbins)
    return restore(rescale_unit(r, low, high, OUTPUT_DTYPES[images.dtype]))
