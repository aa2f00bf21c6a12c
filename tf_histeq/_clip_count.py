"""OpenCV's CLAHE clip count, reproduced exactly in int32 arithmetic.

OpenCV (`modules/imgproc/src/clahe.cpp`, `CLAHE_Impl::apply`) computes the
number of counts a tile histogram bin may hold as

    clipLimit = static_cast<int>(clipLimit_ * tileSizeTotal / histSize);   // then max(clipLimit, 1)

with `clipLimit_` a double, `tileSizeTotal` the tile's pixel count `a` and
`histSize` the number of bins `b`: a float64 product and a float64 quotient,
each rounded to nearest even, then truncated toward zero. The product's
rounding matters: with the double nearest 4.1, `4.1 * 2560` is
10495.999999999998 exactly but rounds to 10496.0, so `b = 256` gives 41, not
the 40 of exact arithmetic. Decimal clip limits and power-of-two tile sizes meet
such near-integers often.

TensorFlow Lite has no float64 kernels, and XLA and Grappler rewrite a division
by a constant into a multiplication by its reciprocal (a different double when
`b` is not a power of two), so the count is computed here with integers only:

1. The quotient's rounding never changes the truncated result: for an integer
   `k >= 1` with `b * k < 2**53` and any double `p >= 0`,
   `fl(p / b) >= k` if and only if `p >= b * k`. (`k` and `b * k` are doubles
   with an even last significand bit, and `b * k - b * ulp(k) / 2` lies
   strictly above the double below `b * k`.) So the count is
   `floor(fl(c * a) / b)`, computed exactly, and it overflows OpenCV's int
   exactly when it reaches `2**31`.
2. `c = M * 2**-F` with an integer `M < 2**53`, so `c * a = M * a * 2**-F` is
   an integer `X = M * a` (at most 84 bits) scaled by a power of two, and
   `fl(c * a)` is `X` rounded to its 53 leading bits, half to even.
3. `X`, its rounding and the final division are carried out on numbers held as
   int32 tensors of 14-bit limbs (least significant first): every product of
   two limbs and every carry stays far inside int32, so TensorFlow, XLA, GPUs
   and the TensorFlow Lite interpreter all compute the same integers.

On x86-64, OpenCV's conversion of a quotient of `2**31` or more gives
`INT_MIN`, and `max(INT_MIN, 1)` is 1: such clip limits clip to one count per
bin, reproduced here. The same holds for an infinite clip limit; a NaN or a
limit `<= 0` disables clipping (`clipLimit_ > 0.0` is false).

The work is per tile (a few hundred integer operations on small tensors),
nothing per pixel, and it folds to a constant wherever the tile area is known
when tracing.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf

_BITS = 14
_BASE = 1 << _BITS
# 7 limbs hold 98 bits; the largest number below is under 2**85 (X = M * a, M < 2**53, a < 2**31).
_LIMBS = 7
_POW2 = tuple(1 << k for k in range(_BITS + 1))
# Outside [2**-32, 2**47) the count needs no arithmetic: below, c * a / b < 1 for
# any int32 area (the count is 1); above, c * a >= b * 2**31 for every area >= 1.
_LOWEST, _HIGHEST = -32, 46
_SMALLEST, _LARGEST = 2.0**_LOWEST, 2.0 ** (_HIGHEST + 1)
# A count no histogram bin reaches: "no clipping" for an image whose limit is <= 0.
NO_CLIP = 2**31 - 1


def clip_counts(clip_limit: float | tf.Tensor, area: tf.Tensor, bins: int) -> tf.Tensor | None:
    """OpenCV's `max(int(clip_limit * area / bins), 1)`, bit-exact, as int32.

    Args:
        clip_limit: A Python float, or a float tensor broadcastable against
            `area` (e.g. one limit per image, reshaped to `(N, 1, 1, 1)`); a
            float32 (or float16 or bfloat16) tensor keeps the graph free of
            float64 and int64, for TensorFlow Lite.
        area: int32 tile pixel counts, `>= 0`.
        bins: The number of histogram bins, 2..65536.

    Returns:
        int32 counts with the broadcast shape of `clip_limit` and `area`;
        `NO_CLIP` where a tensor limit is `<= 0` or NaN. None for a Python
        limit `<= 0` (no clipping at all).

    Example:
        >>> int(clip_counts(4.1, tf.constant(2560), 256))  # 4.1 * 2560 rounds up to 10496.0
        41
        >>> int(clip_counts(4.1, tf.constant(2559), 256))
        40
    """
    if not tf.is_tensor(clip_limit) and not clip_limit > 0:
        return None
    known_limit, known_area = _known(clip_limit), _known(area)
    if known_limit is not None and known_area is not None:
        # Eagerly on CPU, or for a tile size known when tracing: NumPy's float64 is OpenCV's double.
        if tf.is_tensor(clip_limit):  # the same rule for subnormal limits as below
            tiny = np.finfo(np.float64 if clip_limit.dtype == tf.float64 else np.float32).tiny
            known_limit = np.where(known_limit >= tiny, known_limit, 0.0)
        return tf.constant(_counts_float64(known_limit, known_area, bins))
    area = tf.convert_to_tensor(area, tf.int32)
    if not tf.is_tensor(clip_limit):
        c = float(clip_limit)
        if not _SMALLEST <= c < _LARGEST:
            return tf.ones_like(area)
        mantissa, exponent = math.frexp(c)  # c = mantissa * 2**exponent, 0.5 <= mantissa < 1
        big_m = tf.constant(_limbs_of(int(mantissa * 2**53)), tf.int32)
        return _call_count(big_m, tf.constant(53 - exponent), area, bins)
    c = tf.convert_to_tensor(clip_limit)
    if not c.dtype.is_floating:
        raise TypeError(f"A tensor `clip_limit` must have a float dtype. Received: clip_limit.dtype={c.dtype.name}.")
    if c.dtype != tf.float64:
        c = tf.cast(c, tf.float32)  # exact from float16 and bfloat16
    # No clipping for limits <= 0 and NaN (`clipLimit_ > 0.0` is false), nor below the
    # smallest normal number: CPUs running TensorFlow flush subnormals to 0.
    clips = c >= np.finfo(c.dtype.as_numpy_dtype).tiny
    in_range = (c >= _SMALLEST) & (c < _LARGEST)
    # c = m * 2**(e - 52), with e = floor(log2(c)) counted by comparisons with powers
    # of two and m = c * 2**(52 - e) an integer in [2**52, 2**53) (for float32,
    # m * 2**-29 in [2**23, 2**24)): scaling by a power of two is exact.
    c = tf.where(in_range, c, 1.0)  # keeps the arithmetic below small
    exponents = np.arange(_LOWEST, _HIGHEST + 1)
    exponent = _LOWEST - 1 + tf.reduce_sum(tf.cast(tf.expand_dims(c, -1) >= 2.0**exponents, tf.int32), axis=-1)
    if c.dtype == tf.float64:
        m = tf.cast(c * tf.gather(2.0 ** (52 - exponents), exponent - _LOWEST), tf.int64)
        low = [tf.cast(m // _BASE**i % _BASE, tf.int32) for i in range(4)]  # 53 bits: 4 limbs
        limbs = tf.stack(low + [tf.zeros_like(low[0])] * (_LIMBS - 4), axis=-1)
    else:  # 2 m' = c * 2**(24 - e) < 2**25 in limbs 2.. is m' * 2**29 = m
        twice = tf.cast(c * tf.gather(2.0 ** (24 - exponents).astype(np.float32), exponent - _LOWEST), tf.int32)
        limbs = _up(_split(twice), 2)
    count = _call_count(limbs, 52 - exponent, area, bins)
    clipped = tf.where(in_range, count, 1)  # tiny or huge (inf included) limits give 1, as above
    return tf.where(clips, clipped, NO_CLIP)


def _known(value):
    """`value` as NumPy data where it is known without running the graph or reading a device, else None."""
    if not tf.is_tensor(value):
        return value
    if hasattr(value, "numpy") and not value.backing_device.endswith("CPU:0"):
        return None  # an eager tensor on an accelerator: no host round trip
    return tf.get_static_value(value)


def _counts_float64(limit, area, bins: int) -> np.ndarray:
    """The same counts from known values, in NumPy float64 (IEEE, like OpenCV's double)."""
    c = np.asarray(limit, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        quotient = c * np.asarray(area, np.float64) / np.float64(bins)
    # Out of int range (inf and NaN included: inf * 0), OpenCV's conversion gives INT_MIN, then 1.
    fits = quotient < 2.0**31
    counts = np.where(fits, np.maximum(np.trunc(np.where(fits, quotient, 0)), 1), 1)
    return np.where(c > 0, counts, NO_CLIP).astype(np.int32)


def _call_count(big_m: tf.Tensor, shift: tf.Tensor, area: tf.Tensor, bins: int) -> tf.Tensor:
    """`_count` through one `tf.function` per number of bins, with the broadcast static shape of its inputs.

    `_count` is a few hundred small integer ops. Built into every graph that
    counts tiles of a size unknown when tracing, they took about 0.15 s of
    Python per trace (a third of a CLAHE trace); traced once per process, each
    graph holds a single call, which Grappler, XLA, the TensorFlow Lite
    converter and tf2onnx inline.
    """
    count = _traced_count(bins)(big_m, shift, area)
    count.set_shape(tf.broadcast_static_shape(big_m.shape[:-1], tf.broadcast_static_shape(shift.shape, area.shape)))
    return count


@functools.cache
def _traced_count(bins: int):
    spec = tf.TensorSpec(None, tf.int32)  # any shape: scalars, one limit per image, a mask's tile areas
    return tf.function(lambda m, s, a: _count(m, s, a, bins), input_signature=[spec] * 3, autograph=False)


def _count(big_m: tf.Tensor, shift: tf.Tensor, area: tf.Tensor, bins: int) -> tf.Tensor:
    """`max(floor(fl(M * area * 2**-shift) / bins), 1)`, or 1 from `2**31` on (OpenCV's overflow); `shift >= 0`."""
    product = _multiply(big_m, area)  # X = M * a, exact
    # fl(X): keep the 53 leading bits, rounding half to even. With `drop` bits below
    # them, adding 2**(drop - 1) - 1 plus the lowest kept bit and then clearing the
    # `drop` low bits rounds up exactly when the dropped part exceeds one half, or
    # equals it and the kept part is odd.
    drop = tf.maximum(_bit_length(product) - 53, 0)
    lowest_kept = _unit(_bit(product, drop))
    nudge = tf.where(tf.expand_dims(drop > 0, -1), _all_ones(drop - 1) + lowest_kept, 0)
    rounded = _clear_low_bits(_carry(product + nudge), drop)  # fl(c * a) * 2**shift
    quotient = _divide(_shift_right(rounded, shift), bins)
    overflow = tf.reduce_any(quotient[..., 3:] > 0, axis=-1) | (quotient[..., 2] >= 2 ** (31 - 2 * _BITS))
    value = quotient[..., 0] + quotient[..., 1] * _BASE + quotient[..., 2] * _BASE**2
    return tf.where(overflow, 1, tf.maximum(value, 1))


# --- non-negative integers as (..., _LIMBS) int32 tensors of 14-bit limbs, least significant first ------------


def _limbs_of(value: int) -> list[int]:
    """A Python integer's limbs."""
    return [(value >> (_BITS * i)) & (_BASE - 1) for i in range(_LIMBS)]


def _split(x: tf.Tensor) -> tf.Tensor:
    """The limbs of int32 values `x >= 0` (three at most)."""
    x = tf.convert_to_tensor(x, tf.int32)
    low = [x % _BASE, (x // _BASE) % _BASE, x // _BASE**2]
    return tf.stack(low + [tf.zeros_like(x)] * (_LIMBS - 3), axis=-1)


def _unit(x: tf.Tensor) -> tf.Tensor:
    """A number whose lowest limb is `x` (int32 in `[0, 2**14)`), the others 0."""
    return tf.expand_dims(x, -1) * tf.constant(_limbs_of(1))


def _carry(v: tf.Tensor) -> tf.Tensor:
    """Propagate carries so that every limb is below 2**14 (limbs in `[0, 2**31 - 2**17)`)."""
    out, carry = [], 0
    for i in range(_LIMBS):
        total = v[..., i] + carry
        out.append(total % _BASE)
        carry = total // _BASE
    return tf.stack(out, axis=-1)


# Integer FloorDiv and FloorMod below only ever see non-negative numbers: tf2onnx
# maps them to ONNX's Div, which truncates.


def _up(x: tf.Tensor, places: int) -> tf.Tensor:
    """Move the limbs `places` positions towards the most significant (times 2**(14 * places))."""
    return tf.concat([tf.zeros_like(x[..., :places]), x[..., : _LIMBS - places]], axis=-1)


def _multiply(x: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
    """`x * z` for int32 `z >= 0`: each of z's three limbs times a limb of x is below 2**28."""
    z = _split(z)
    return _carry(sum(_up(x * z[..., j : j + 1], j) for j in range(3)))


def _bit_length(x: tf.Tensor) -> tf.Tensor:
    """The number of bits of `x` (0 for 0)."""
    in_limb = tf.reduce_sum(tf.cast(tf.expand_dims(x, -1) >= tf.constant(_POW2[:_BITS]), tf.int32), axis=-1)
    return tf.reduce_max(tf.where(x > 0, _BITS * tf.range(_LIMBS) + in_limb, 0), axis=-1)


def _limb(x: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """Limb `index` of `x` (0 past the top)."""
    return tf.reduce_sum(x * tf.cast(tf.equal(tf.range(_LIMBS), tf.expand_dims(index, -1)), tf.int32), axis=-1)


def _bit(x: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    """Bit `k >= 0` of `x`, as int32 0 or 1."""
    return (_limb(x, k // _BITS) // tf.gather(tf.constant(_POW2), k % _BITS)) % 2


def _all_ones(k: tf.Tensor) -> tf.Tensor:
    """`2**k - 1` (0 for k <= 0)."""
    bits_in_limb = tf.clip_by_value(tf.expand_dims(k, -1) - _BITS * tf.range(_LIMBS), 0, _BITS)
    return tf.gather(tf.constant(_POW2), bits_in_limb) - 1


def _clear_low_bits(x: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    """`x` with its `k` lowest bits set to 0."""
    return x - x % (_all_ones(k) + 1)


def _shift_right(x: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
    """`floor(x / 2**n)` for `n >= 0`: limbs move down by `n // 14`, then bits by `n % 14`."""
    source = tf.expand_dims(tf.expand_dims(n // _BITS, -1), -1) + tf.range(_LIMBS)[:, None]  # (..., out, 1)
    pick = tf.cast(tf.equal(source, tf.range(_LIMBS)), tf.int32)  # (..., out limb, in limb)
    moved = tf.reduce_sum(tf.expand_dims(x, -2) * pick, axis=-1)
    above = tf.concat([moved[..., 1:], tf.zeros_like(moved[..., :1])], axis=-1)
    bits = tf.expand_dims(n % _BITS, -1)
    pow2 = tf.constant(_POW2)
    return moved // tf.gather(pow2, bits) + above % tf.gather(pow2, bits) * tf.gather(pow2, _BITS - bits)


def _divide(x: tf.Tensor, d: int) -> tf.Tensor:
    """`floor(x / d)` for a Python int `1 <= d <= 2**16`, by long division from the top limb."""
    out, remainder = [None] * _LIMBS, 0
    for i in reversed(range(_LIMBS)):
        current = remainder * _BASE + x[..., i]  # < 2**16 * 2**14 + 2**14
        out[i] = current // d
        remainder = current % d
    return tf.stack(out, axis=-1)
