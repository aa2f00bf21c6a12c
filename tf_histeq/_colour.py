"""Colour spaces for the lightness modes: OpenCV's YCrCb and CIE Lab, bit-exact on uint8.

An op run on the lightness of an RGB image converts to a colour space, runs on
one plane and converts back; `on_lightness` does that for any `ColourSpace` in
`SPACES`, so a new mode is a new entry there, not an edit of an op. The
conversions reproduce `cv2.cvtColor` bit for bit: on uint8 every one of the
2**24 inputs in both directions (`tests/test_colour.py` checks them all), on
float32 RGB -> Lab always and Lab -> RGB except under XLA (see the end). The
integer paths use nothing but int32 table lookups (`tf.gather` on constants of
at most 35937 rows), int32 multiplies and adds, arithmetic right shifts,
truncating divisions and clips at run time. The tables are computed here in
NumPy from the formulas below, once per process (`_tables`, `_lab_lut`); none
is pasted.

Notation: `sat8(v) = clip(v, 0, 255)`; `v >> s` is the arithmetic (floor)
shift; `descale(v, s) = (v + 2**(s-1)) >> s`; `rne` rounds half to even;
`f32(...)` rounds to float32 and every float32 operation rounds once.

YCrCb (`COLOR_RGB2YCrCb` / `COLOR_YCrCb2RGB`, uint8, 14 fractional bits):

1. `Y = descale(4899 R + 9617 G + 1868 B, 14)`;
   `Cr = sat8(descale((R - Y) 11682 + 128 * 2**14, 14))`;
   `Cb = sat8(descale((B - Y) 9241 + 128 * 2**14, 14))` (`_YCRCB_FORWARD`).
2. With `cr = Cr - 128` and `cb = Cb - 128`: `R = sat8(Y + descale(22987 cr, 14))`,
   `G = sat8(Y + descale(-11698 cr - 5636 cb, 14))`,
   `B = sat8(Y + descale(29049 cb, 14))` (`_YCRCB_INVERSE`).

Lab, uint8 (`COLOR_RGB2Lab`: OpenCV's `RGB2Lab_b` on its `initLabTabs`
tables; sRGB primaries, D65 white; `L = 255/100 L*`, `a = a* + 128`,
`b = b* + 128`):

1. Gamma table, 256 entries in `[0, 2040]`: `x = f32(i) / f32(255)`, the sRGB
   EOTF in double (`_srgb_eotf`: `x / (323/25)` up to `809/20000`, else
   `((x + 11/200) / (211/200)) ** (12/5)`), rounded to float32, times
   `f32(2040)` in float32, `rne`.
2. Matrix `C[k][j] = rne(4096 M[k][j] / D65[k])` with `M = _SRGB_TO_XYZ` and
   `D65 = _D65`, asserted equal to `_LAB_FORWARD_MATRIX`; then
   `i_k = (sum_j C[k][j] gamma[c_j] + 2048) >> 12`, in `[0, 2040]`.
3. f table, 2041 entries: `x = f32(f32(1/2040) i)`; below `f32(216/24389)`
   `f = f32(x 841/108 + 16/116)` with one rounding (a fused multiply-add of
   the float32 constants, evaluated exactly with `fractions.Fraction`); from
   there on `f` is OpenCV's software cube root (`_opencv_cbrt`: the mantissa
   scaled into `[1/8, 1)`, Turkowski's quartic-over-quartic rational function
   evaluated in double, the double's mantissa *truncated* to 23 bits; it is
   not correctly rounded, 1 ulp below `cbrt` on about half the entries).
   Entry `= rne(f32(32768) f)` in float32 (ties stay even).
4. `L = sat8((296 fY - 1336934 + 2**14) >> 15)`,
   `a = sat8((500 (fX - fY) + 128 * 2**15 + 2**14) >> 15)`,
   `b = sat8((200 (fY - fZ) + 128 * 2**15 + 2**14) >> 15)`.

Lab, uint8, back (`COLOR_Lab2RGB`: `Lab2RGBinteger`, 14 fractional bits):

1. Table of `(y, ify)` per L: for `L <= 20`,
   `y = rne(f32(180 * 2**14 L) / f32(17 * 29**3))` and
   `ify = rne(f32(2**14) (f32(16) / f32(116) + f32(5 L) / f32(1479)))`; above,
   `fy = f32(100 * 2**14 L) / f32(255 * 116) + f32(16 * 2**14) / f32(116)`,
   `ify = rne(fy)`, `y = rne(fy fy fy / f32(2**28))`, all in float32.
2. `ifx = ify + ((5 a 53687 + 2**7) >> 13) - 4194`,
   `ifz = ify - ((b 41943 + 2**4) >> 9) + 10484`.
3. `v -> trunc(108 v / 841) - 290` (C division, toward zero) for `v <= 3390`,
   else `((v v) // 2**14) v // 2**14`, for `v` in `ifx` and `ifz` (`x`, `z`).
4. `C[j][i] = rne(4096 Minv[j][i] D65[i])` with `Minv = _XYZ_TO_SRGB`,
   asserted equal to `_LAB_INVERSE_MATRIX`;
   `channel_j = clip(descale(C[j] . (x, y, z), 14), 0, 4095)`.
5. Inverse gamma table, 4096 entries: `rne(f32(255) f32(oetf(i / 4096)))` with
   the sRGB OETF in double (`_srgb_oetf`: `x 323/25` up to `7827/2500000`,
   else `(211/200) x ** (5/12) - 11/200`); the output is `table[channel_j]`.

All int32 intermediates stay below 2**31 (the largest, `((v v) // 2**14) v`
for `v` up to 26868, is about 1.2e9).

Lab, float32 (`COLOR_RGB2Lab` on float32 RGB in `[0, 1]`, bit-exact; `L*` in
`[0, 100]`): OpenCV interpolates in a grid instead of evaluating the formulas
(`RGB2Lab_f` with `enableRGB2LabInterpolation`), and so does `rgb_to_lab`:

1. The grid (`_lab_lut`): 33**3 colours `(R, G, B) / 32`, each through the
   EOTF in double rounded to float32, `XYZ = (M / D65) RGB` in float32 with
   the matrix rounded to float32 (one rounding per multiply and per add), f
   as above (`_opencv_cbrt` above `f32(216/24389)`, else the fused
   multiply-add), `L = 116 fY - 16` (or `f32(24389) / f32(27) Y`),
   `a = 500 (fX - fY)`, `b = 200 (fY - fZ)`, stored as
   `rne(2**14 L / 100)`, `rne(2**14 (a + 128) / 256)`, `rne(2**14 (b + 128) / 256)`.
2. Per pixel: `c = rne(2**14 clip(channel, 0, 1))`; cell `c >> 9`, weight
   `w = (c >> 5) & 15`; trilinear over the cell's 8 corners (the upper corner
   clamped to 32) with integer weights `w` / `16 - w` per axis;
   `descale(sum, 12)`.
3. `L* = f32(iL) * (100 / 2**14)`, `a* = f32(ia) * (256 / 2**14) - 128`, same for `b*`.

Lab, float32, back (`COLOR_Lab2RGB` on float32, `Lab2RGBfloat`), bit-exact
eagerly and in `tf.function`:

1. OpenCV converts row by row, 8 pixels at a time with SIMD and the last
   `width % 8` pixels of each row with scalar code, and the two round
   differently, so `lab_to_rgb` computes both (`_lab_to_linear`) and picks by
   column. SIMD: `y = L* * f32(1/903.3)` and `fy = 7.787 y + 16/116` for
   `L* <= 8`, else `fy = (L* + 16) * f32(1/116)`, `y = fy fy fy`;
   `fx = a* * f32(1/500) + fy`, `fz = b* * f32(-1/200) + fy`;
   `f^-1(t) = (t - 16/116) * f32(1/7.787)` for `t <= f32(6/29)`, else `t t t`;
   `R = C0 x + (C1 y + C2 z)`. Scalar: the same with divisions by `903.3`,
   `116`, `500`, `200`, `7.787` and `R = (C0 x + C1 y) + C2 z`. Every
   operation is a float32 operation rounded once (OpenCV's baseline SSE has no
   fused multiply-add); `C = f32(Minv D65)` rounded from double
   (`_FLOAT_INVERSE_MATRIX`).
2. Clip to `[0, 1]`, then OpenCV's sRGB OETF spline (`_inverse_gamma_spline`:
   1024 cubic pieces solved in float32 from the knots `f32(oetf(i / 1024))`):
   `x = 1024 v`, piece `i = clip(int(x), 0, 1023)`, `t = x - i`,
   `((d t + c) t + b) t + a`.

Grappler would rewrite a division by a constant into a product with its
reciprocal and a sum of three terms into one `AddN`; the divisions are written
as `tf.math.divide_no_nan` and the sums as subtractions of negated products
(exact rewrites) so that the graph keeps OpenCV's rounding. XLA does not keep
it: it fuses products and sums into fused multiply-adds and divisions by
constants into products, so compiled, float32 Lab -> RGB agrees with OpenCV
within `XLA_FLOAT_RGB_BOUND` (max abs difference 9.4e-6, measured on CPU with
OpenCV 5.1 over the Lab of all 2**24 uint8 colours / 255). RGB -> Lab is
exact compiled too: its float operations are exact or rounded once.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tf_histeq._options import fail

# RGB -> YCrCb: Y weights and the Cr, Cb scales; YCrCb -> RGB: Cr->R, Cb->G, Cr->G, Cb->B (all / 2**14).
_YCRCB_SHIFT = 14
_YCRCB_FORWARD = (4899, 9617, 1868, 11682, 9241)
_YCRCB_INVERSE = (22987, -5636, -11698, 29049)

# sRGB <-> XYZ matrices and the D65 white point, as OpenCV writes them.
_SRGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_XYZ_TO_SRGB = ((3.240479, -1.53715, -0.498535), (-0.969256, 1.875991, 0.041556), (0.055648, -0.204043, 1.057311))
_D65 = (0.950456, 1.0, 1.088754)
# What the fixed-point matrices must come to (asserted when the tables are built).
_LAB_FORWARD_MATRIX = ((1777, 1541, 778), (871, 2929, 296), (73, 448, 3575))
_LAB_INVERSE_MATRIX = ((12615, -6296, -2223), (-3773, 7684, 185), (217, -836, 4715))

_GAMMA_SCALE = 2040  # RGB2Lab_b's linear-light scale (8 * 255)
_INV_GAMMA_SIZE = 4096  # Lab2RGBinteger's linear-light levels
_F_SCALE = 15  # f table in Q15
_LAB_Q = 14  # Lab2RGBinteger's fixed point

# Turkowski's rational approximation of cbrt on [1/8, 1), as the raw doubles of OpenCV's softfloat.cpp:
# numerator then denominator coefficients, highest power first (the denominator's constant term is 1).
_CBRT_NUM = (0x4046A09E6653BA70, 0x406808F46C6116E0, 0x405DCA97439CAE14, 0x402ADD70D2827500, 0x3FC4F15F83F55D2D)
_CBRT_DEN = (0x402D9E20660EDB21, 0x4062FF15C0285815, 0x406510D06A8112CE, 0x4040FECBC9E2C375)

# Max |lab_to_rgb - cv2| on float32 under XLA (measured 9.4e-6 on CPU over the Lab of all 2**24 uint8 colours).
XLA_FLOAT_RGB_BOUND = 1e-5

_f32 = np.float32


def _double(raw: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", raw))[0]


def _srgb_eotf(x: float) -> float:
    """The sRGB EOTF (encoded -> linear) in double, with OpenCV's constants."""
    if x <= 809 / 20000:
        return x / (323 / 25)
    return ((x + 11 / 200) / (1 + 11 / 200)) ** (12 / 5)


def _srgb_oetf(x: float) -> float:
    """The sRGB OETF (linear -> encoded) in double, with OpenCV's constants."""
    if x <= 7827 / 2500000:
        return x * (323 / 25)
    return (1 + 11 / 200) * x ** (1 / (12 / 5)) - 11 / 200


def _rne(value) -> int:
    return int(np.rint(value))


def _f32_exact(value: Fraction) -> np.float32:
    """`value` rounded once to float32 (nearest, ties to even), without a detour through double."""
    guess = _f32(float(value))
    candidates = (np.nextafter(guess, _f32(-np.inf)), guess, np.nextafter(guess, _f32(np.inf)))

    def key(c):
        return abs(Fraction(float(c)) - value), int(c.view(np.uint32)) & 1

    return min(candidates, key=key)


def _mul_add(x: np.float32, y: np.float32, z: np.float32) -> np.float32:
    """`x y + z` with one rounding to float32 (softfloat's `mulAdd`)."""
    return _f32_exact(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)))


def _opencv_cbrt(x) -> np.ndarray:
    """OpenCV's softfloat `cbrt` of positive normal float32s (`f32_cbrt` in modules/core/src/softfloat.cpp)."""
    bits = np.asarray(x, _f32).view(np.uint32).astype(np.int64)
    exponent = ((bits >> 23) & 0xFF) - 127
    shift = np.fmod(exponent, 3)  # C's %, toward zero
    shift = np.where(shift >= 0, shift - 3, shift)  # in {-3, -2, -1}: the mantissa goes to [1/8, 1)
    root_exponent = np.trunc((exponent - shift) / 3).astype(np.int64) - 1
    fraction = (((shift + 1023) << 52) | ((bits & 0x7FFFFF) << 29)).astype(np.uint64).view(np.float64)
    num, den = np.zeros_like(fraction), np.zeros_like(fraction)
    for raw in _CBRT_NUM:  # Horner in double, one rounding per operation (NumPy does not fuse)
        num = num * fraction + _double(raw)
    for raw in _CBRT_DEN:
        den = den * fraction + _double(raw)
    root = num / (den * fraction + 1.0)  # in [1/2, 1): its mantissa bits become the result's
    mantissa = (root.view(np.uint64) & np.uint64((1 << 52) - 1)) >> np.uint64(29)  # truncated, not rounded
    return (((root_exponent + 127) << 23).astype(np.uint64) | mantissa).astype(np.uint32).view(_f32)


class _Tables(NamedTuple):
    gamma: np.ndarray  # (256,) sRGB -> linear, 0..2040
    f: np.ndarray  # (2041,) Q15 Lab f(t) of t = i / 2040
    y: np.ndarray  # (256,) Q14 Y of an 8-bit L
    ify: np.ndarray  # (256,) Q14 f(Y) of an 8-bit L
    inv_gamma: np.ndarray  # (4096,) linear -> sRGB uint8
    forward: np.ndarray  # (3, 3) Q12 RGB -> XYZ / white
    inverse: np.ndarray  # (3, 3) Q12 XYZ * white -> RGB


@functools.cache
def _tables() -> _Tables:
    """OpenCV's 8-bit Lab tables, computed from their formulas (the module docstring's steps)."""
    gamma = [_rne(_f32(_srgb_eotf(float(_f32(i) / _f32(255)))) * _f32(_GAMMA_SCALE)) for i in range(256)]
    forward = [[_rne(4096 * _SRGB_TO_XYZ[k][j] / _D65[k]) for j in range(3)] for k in range(3)]
    inverse = [[_rne(4096 * _XYZ_TO_SRGB[j][i] * _D65[i]) for i in range(3)] for j in range(3)]
    assert tuple(map(tuple, forward)) == _LAB_FORWARD_MATRIX, forward
    assert tuple(map(tuple, inverse)) == _LAB_INVERSE_MATRIX, inverse

    step, threshold = _f32(1.0 / _GAMMA_SCALE), _f32(216 / 24389)
    slope, offset = _f32_exact(Fraction(841, 108)), _f32_exact(Fraction(16, 116))
    x = step * np.arange(_GAMMA_SCALE + 1, dtype=_f32)
    f = _opencv_cbrt(np.maximum(x, threshold))
    for i in np.flatnonzero(x < threshold):
        f[i] = _mul_add(x[i], slope, offset)
    f = np.rint(_f32(1 << _F_SCALE) * f)

    y, ify = [], []
    q = 1 << _LAB_Q
    for lightness in range(256):
        if lightness <= 20:
            y.append(_rne(_f32(lightness * q * 180) / _f32(17 * 29**3)))
            ify.append(_rne(_f32(q) * (_f32(16) / _f32(116) + _f32(5 * lightness) / _f32(3 * 17 * 29))))
        else:
            fy = _f32(lightness * 100 * q) / _f32(255 * 116) + _f32(16 * q) / _f32(116)
            ify.append(_rne(fy))
            y.append(_rne(fy * fy * fy / _f32(2**28)))

    inv_gamma = [_rne(_f32(255) * _f32(_srgb_oetf(i / _INV_GAMMA_SIZE))) for i in range(_INV_GAMMA_SIZE)]
    as_int = functools.partial(np.asarray, dtype=np.int32)
    return _Tables(*map(as_int, (gamma, f, y, ify, inv_gamma, forward, inverse)))


_LUT_DIM = 33  # grid points per axis of OpenCV's float RGB -> Lab table (32 cells)
_LUT_BASE = 14  # its RGB and Lab fixed point: 1 = 2**14


@functools.cache
def _lab_lut() -> np.ndarray:
    """OpenCV's float RGB -> Lab grid (`RGB2LabLUT_s16`): `(33**3, 3)` Q14 `(L/100, (a+128)/256, (b+128)/256)`.

    Row `blue + 33 green + 33**2 red` holds the colour `(red, green, blue) / 32`,
    computed as OpenCV does in softfloat: float32 gamma of the double EOTF, the
    white-scaled matrix in float32 (no fused operations), f by `_opencv_cbrt` or
    a fused multiply-add, then `rne(2**14 L / 100)` and `rne(2**14 (a + 128) / 256)`.
    """
    linear = np.array([_f32(_srgb_eotf(p / (_LUT_DIM - 1))) for p in range(_LUT_DIM)], _f32)
    blue, green, red = (linear[axis.ravel()] for axis in np.indices((_LUT_DIM,) * 3)[::-1])
    threshold = _f32_exact(Fraction(216, 24389))
    slope, offset = _f32_exact(Fraction(841, 108)), _f32_exact(Fraction(16, 116))

    def f(t):
        out = _opencv_cbrt(np.maximum(t, threshold))
        for i in np.flatnonzero(t <= threshold):
            out[i] = _mul_add(t[i], slope, offset)
        return out

    xyz = []
    for row in range(3):
        scale = 1.0 / _D65[row]
        coeffs = [_f32(_SRGB_TO_XYZ[row][j] * scale) for j in range(3)]
        xyz.append(blue * coeffs[2] + green * coeffs[1] + red * coeffs[0])
    fx, fy, fz = map(f, xyz)
    kappa = _f32(24389) / _f32(27)
    lightness = np.where(xyz[1] > threshold, _f32(116) * fy - _f32(16), kappa * xyz[1])
    a, b = _f32(500) * (fx - fy), _f32(200) * (fy - fz)
    base = _f32(1 << _LUT_BASE)
    columns = (base * lightness / _f32(100), base * (a + _f32(128)) / _f32(256), base * (b + _f32(128)) / _f32(256))
    return np.rint(np.stack(columns, axis=-1)).astype(np.int32)


_GAMMA_KNOTS = 1024  # OpenCV's float gamma splines: 1024 cubic pieces on [0, 1]


@functools.cache
def _inverse_gamma_spline() -> np.ndarray:
    """OpenCV's `sRGBInvGammaTab`: `(1024, 4)` float32 cubic coefficients of the sRGB OETF (`splineBuild`).

    The knots are `f32(oetf(i / 1024))`, i = 0..1024; a natural cubic spline
    solved in float32 (every operation rounded once), coefficients
    `(f[i], b, c, d)` of `f[i] + b t + c t**2 + d t**3`.
    """
    knots = np.array([_f32(_srgb_oetf(i / _GAMMA_KNOTS)) for i in range(_GAMMA_KNOTS + 1)], _f32)
    n, two, three, four = _GAMMA_KNOTS, _f32(2), _f32(3), _f32(4)
    table = np.zeros((n, 4), _f32)
    for i in range(1, n):
        t = (knots[i + 1] - knots[i] * two + knots[i - 1]) * three
        ell = _f32(1) / (four - table[i - 1, 0])
        table[i, 0], table[i, 1] = ell, (t - table[i - 1, 1]) * ell
    following = _f32(0)
    for i in range(n - 1, -1, -1):
        c = table[i, 1] - table[i, 0] * following
        b = knots[i + 1] - knots[i] - (following + c * two) / three
        d = (following - c) / three
        table[i] = knots[i], b, c, d
        following = c
    return table


# Float32 constants of OpenCV's float Lab -> RGB, rounded as its C++ (float literals, float divisions).
_FLOAT_CONSTANTS = {
    "16": _f32(16),
    "116": _f32(116),
    "500": _f32(500),
    "200": _f32(200),
    "903": _f32(903.3),
    "7.787": _f32(7.787),
    "16/116": _f32(16) / _f32(116),
    "inv_903": _f32(1) / _f32(903.3),
    "inv_116": _f32(1) / _f32(116),
    "inv_500": _f32(1) / _f32(500),
    "neg_inv_200": _f32(-1) / _f32(200),
    "inv_7.787": _f32(1) / _f32(7.787),
    "l_threshold": _f32(8),
    "f_threshold": _f32(6) / _f32(29),
}
# XYZ -> RGB times the white point, rounded from double to float32 (Lab2RGBfloat's coeffs).
_FLOAT_INVERSE_MATRIX = tuple(tuple(_f32(_XYZ_TO_SRGB[j][i] * _D65[i]) for i in range(3)) for j in range(3))


# ---------------------------------------------------------------------------------------------- TensorFlow


def _check(images, name: str, *, floats: bool) -> tf.Tensor:
    images = tf.convert_to_tensor(images)
    allowed = (tf.uint8, tf.int32, tf.float32) if floats else (tf.uint8, tf.int32)
    if images.dtype not in allowed:
        fail(TypeError, name, "have dtype " + " or ".join(d.name for d in allowed), images.dtype.name)
    if images.shape.rank is None or images.shape.rank < 1 or images.shape[-1] != 3:
        fail(ValueError, name, "have 3 channels in its last axis", images.shape)
    return images


def _levels(images: tf.Tensor) -> list[tf.Tensor]:
    """The three channels as int32 in [0, 255]."""
    levels = tf.clip_by_value(tf.cast(images, tf.int32), 0, 255)
    return tf.unstack(levels, axis=-1)


def _back(channels: list[tf.Tensor], dtype: tf.DType) -> tf.Tensor:
    return tf.cast(tf.stack(channels, axis=-1), dtype)


def _descale(value: tf.Tensor, shift: int) -> tf.Tensor:
    return tf.bitwise.right_shift(value + (1 << (shift - 1)), shift)


def _sat8(value: tf.Tensor) -> tf.Tensor:
    return tf.clip_by_value(value, 0, 255)


def rgb_to_ycrcb(images) -> tf.Tensor:
    """RGB -> YCrCb exactly as `cv2.cvtColor(COLOR_RGB2YCrCb)` on uint8 (int32 taken as levels 0..255).

    Args:
        images: uint8 or int32 tensor `(..., 3)`, RGB.

    Returns:
        A tensor of the input's dtype and shape: Y, Cr, Cb.
    """
    images = _check(images, "images", floats=False)
    r, g, b = _levels(images)
    wr, wg, wb, scale_cr, scale_cb = _YCRCB_FORWARD
    half = 128 << _YCRCB_SHIFT
    y = _descale(wr * r + wg * g + wb * b, _YCRCB_SHIFT)
    cr = _sat8(_descale((r - y) * scale_cr + half, _YCRCB_SHIFT))
    cb = _sat8(_descale((b - y) * scale_cb + half, _YCRCB_SHIFT))
    return _back([y, cr, cb], images.dtype)


def ycrcb_to_rgb(images) -> tf.Tensor:
    """YCrCb -> RGB exactly as `cv2.cvtColor(COLOR_YCrCb2RGB)` on uint8 (int32 taken as levels 0..255).

    Args:
        images: uint8 or int32 tensor `(..., 3)`: Y, Cr, Cb.

    Returns:
        A tensor of the input's dtype and shape, RGB.
    """
    images = _check(images, "images", floats=False)
    y, cr, cb = _levels(images)
    cr, cb = cr - 128, cb - 128
    cr_r, cb_g, cr_g, cb_b = _YCRCB_INVERSE
    r = _sat8(y + _descale(cr_r * cr, _YCRCB_SHIFT))
    g = _sat8(y + _descale(cb_g * cb + cr_g * cr, _YCRCB_SHIFT))
    b = _sat8(y + _descale(cb_b * cb, _YCRCB_SHIFT))
    return _back([r, g, b], images.dtype)


def _dot(row, x, y, z) -> tf.Tensor:
    return int(row[0]) * x + int(row[1]) * y + int(row[2]) * z


def rgb_to_lab(images) -> tf.Tensor:
    """RGB -> CIE Lab exactly as `cv2.cvtColor(COLOR_RGB2Lab)` on uint8 and on float32.

    Args:
        images: tensor `(..., 3)`, RGB: uint8 (int32 taken as levels 0..255),
            or float32 in `[0, 1]` (clipped).

    Returns:
        A tensor of the input's dtype and shape: 8-bit `(255/100 L*, a* + 128,
        b* + 128)` for integers, `(L*, a*, b*)` for float32.
    """
    images = _check(images, "images", floats=True)
    if images.dtype == tf.float32:
        return _lab_from_rgb_float(images)
    tables = _tables()
    gamma, f = tf.constant(tables.gamma), tf.constant(tables.f)
    linear = [tf.gather(gamma, c) for c in _levels(images)]
    fx, fy, fz = (tf.gather(f, tf.bitwise.right_shift(_dot(row, *linear) + 2048, 12)) for row in tables.forward)
    half = (128 << _F_SCALE) + (1 << (_F_SCALE - 1))
    lightness = _sat8(tf.bitwise.right_shift(296 * fy - 1336934 + (1 << (_F_SCALE - 1)), _F_SCALE))
    a = _sat8(tf.bitwise.right_shift(500 * (fx - fy) + half, _F_SCALE))
    b = _sat8(tf.bitwise.right_shift(200 * (fy - fz) + half, _F_SCALE))
    return _back([lightness, a, b], images.dtype)


def _ab_to_xz(v: tf.Tensor) -> tf.Tensor:
    linear = tf.truncatediv(v * 108, 841) - 290  # C's division: toward zero, v may be negative
    cube = tf.bitwise.right_shift(tf.bitwise.right_shift(v * v, _LAB_Q) * v, _LAB_Q)  # v > 3390 here
    return tf.where(v <= 3390, linear, cube)


def lab_to_rgb(images) -> tf.Tensor:
    """CIE Lab -> RGB exactly as `cv2.cvtColor(COLOR_Lab2RGB)` (float32 under XLA: within `XLA_FLOAT_RGB_BOUND`).

    Args:
        images: tensor `(..., 3)` in `rgb_to_lab`'s encoding of its dtype.

    Returns:
        A tensor of the input's dtype and shape, RGB (float32 in `[0, 1]`).
    """
    images = _check(images, "images", floats=True)
    if images.dtype == tf.float32:
        return _rgb_from_lab_float(images)
    tables = _tables()
    lightness, a, b = _levels(images)
    y = tf.gather(tf.constant(tables.y), lightness)
    ify = tf.gather(tf.constant(tables.ify), lightness)
    x = _ab_to_xz(ify + tf.bitwise.right_shift(5 * a * 53687 + (1 << 7), 13) - 4194)
    z = _ab_to_xz(ify - tf.bitwise.right_shift(b * 41943 + (1 << 4), 9) + 10484)
    inv_gamma = tf.constant(tables.inv_gamma)
    channels = [
        tf.gather(inv_gamma, tf.clip_by_value(_descale(_dot(row, x, y, z), _LAB_Q), 0, _INV_GAMMA_SIZE - 1))
        for row in tables.inverse
    ]
    return _back(channels, images.dtype)


def _lab_from_rgb_float(images: tf.Tensor) -> tf.Tensor:
    lut = tf.constant(_lab_lut())
    cells = _LUT_BASE - 5  # 32 cells: the top 5 bits of a Q14 level pick the cell, the next 4 its weight
    levels = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * (1 << _LUT_BASE)), tf.int32)
    red, green, blue = tf.unstack(levels, axis=-1)
    corners = [tf.bitwise.right_shift(c, cells) for c in (blue, green, red)]
    fractions = [tf.bitwise.bitwise_and(tf.bitwise.right_shift(c, cells - 4), 15) for c in (blue, green, red)]
    total = 0
    for step in range(8):
        offsets = ((step >> 2) & 1, (step >> 1) & 1, step & 1)
        index, weight = 0, 1
        for axis, (corner, fraction, offset) in enumerate(zip(corners, fractions, offsets, strict=True)):
            index += tf.minimum(corner + offset, _LUT_DIM - 1) * _LUT_DIM**axis
            weight *= fraction if offset else 16 - fraction
        total += tf.gather(lut, index) * tf.expand_dims(weight, -1)
    lab = tf.cast(_descale(total, 12), tf.float32)
    return lab * tf.constant([100 / (1 << _LUT_BASE), 256 / (1 << _LUT_BASE), 256 / (1 << _LUT_BASE)]) - tf.constant(
        [0.0, 128.0, 128.0]
    )


_SIMD_PIXELS = 8  # OpenCV's float Lab -> RGB loop: blocks of 2 x 4 lanes, then a scalar loop for the rest of a row


def _divide(x: tf.Tensor, constant: np.float32) -> tf.Tensor:
    # DivNoNan is IEEE division for a nonzero divisor; Grappler leaves it alone, while it turns RealDiv by a
    # constant into a product with the reciprocal (a different rounding).
    return tf.math.divide_no_nan(x, constant)


def _dot3(row, x: tf.Tensor, y: tf.Tensor, z: tf.Tensor, *, left_first: bool) -> tf.Tensor:
    """`(r0 x + r1 y) + r2 z` or `r0 x + (r1 y + r2 z)`, each product and sum rounded once, in that order.

    Written as subtractions of products by the negated coefficients (exact in
    IEEE arithmetic), because Grappler rewrites trees of additions into one
    `AddN` that sums in its own order.
    """
    first, minus_second = row[0] * x, -row[1] * y
    if left_first:
        return (first - minus_second) - -row[2] * z
    return first - (minus_second - row[2] * z)


def _lab_to_linear(lightness, a, b, *, vectorized: bool) -> list[tf.Tensor]:
    """Clipped linear RGB from float Lab in the operation order of OpenCV's SIMD or scalar loop."""
    c = _FLOAT_CONSTANTS
    low = lightness <= c["l_threshold"]
    if vectorized:  # products by reciprocals; v_fma is a multiply then an add on OpenCV's baseline SSE
        y_low = lightness * c["inv_903"]
        fy_high = (lightness + c["16"]) * c["inv_116"]
        fx_ = a * c["inv_500"]
        fz_ = b * c["neg_inv_200"]
    else:
        y_low = _divide(lightness, c["903"])
        fy_high = _divide(lightness + c["16"], c["116"])
        fx_ = _divide(a, c["500"])
        fz_ = -_divide(b, c["200"])
    fy = tf.where(low, c["7.787"] * y_low + c["16/116"], fy_high)
    y = tf.where(low, y_low, fy_high * fy_high * fy_high)
    fx, fz = fx_ + fy, fz_ + fy

    def inverse_f(t):
        shifted = t - c["16/116"]
        linear = shifted * c["inv_7.787"] if vectorized else _divide(shifted, c["7.787"])
        return tf.where(t <= c["f_threshold"], linear, t * t * t)

    x, z = inverse_f(fx), inverse_f(fz)
    return [tf.clip_by_value(_dot3(row, x, y, z, left_first=not vectorized), 0.0, 1.0) for row in _FLOAT_INVERSE_MATRIX]


def _rgb_from_lab_float(images: tf.Tensor) -> tf.Tensor:
    lightness, a, b = tf.unstack(images, axis=-1)
    vectorized = _lab_to_linear(lightness, a, b, vectorized=True)
    scalar = _lab_to_linear(lightness, a, b, vectorized=False)
    if images.shape.rank >= 2:  # OpenCV converts row by row: the last width % 8 pixels of a row take the scalar loop
        width = tf.shape(images)[-2]
        tail = tf.range(width) >= width - width % _SIMD_PIXELS
        linear = [tf.where(tail, s, v) for s, v in zip(scalar, vectorized, strict=True)]
    else:
        linear = scalar
    spline = tf.constant(_inverse_gamma_spline())
    encoded = []
    for channel in linear:
        x = channel * np.float32(_GAMMA_KNOTS)
        knot = tf.clip_by_value(tf.cast(x, tf.int32), 0, _GAMMA_KNOTS - 1)  # truncation, as C's int()
        t = x - tf.cast(knot, tf.float32)
        c0, c1, c2, c3 = tf.unstack(tf.gather(spline, knot), axis=-1)
        encoded.append(((c3 * t + c2) * t + c1) * t + c0)
    return tf.stack(encoded, axis=-1)


# --------------------------------------------------------------------------------------- the colour modes


class ColourSpace(NamedTuple):
    """A lightness mode: RGB -> space, the plane an op runs on, space -> RGB."""

    name: str
    forward: Callable[[tf.Tensor], tf.Tensor]
    inverse: Callable[[tf.Tensor], tf.Tensor]
    plane: int


SPACES = {
    "luminance": ColourSpace("luminance", rgb_to_ycrcb, ycrcb_to_rgb, 0),
    "lab": ColourSpace("lab", rgb_to_lab, lab_to_rgb, 0),
}


def on_lightness(space: str, levels: tf.Tensor, op: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
    """Run `op` on the lightness plane of RGB `levels` in colour space `space`, as OpenCV users do.

    `cv2.cvtColor(RGB2<space>)`, `op` on one plane, `cv2.cvtColor(<space>2RGB)`,
    bit for bit on uint8 levels.

    Args:
        space: a key of `SPACES`.
        levels: uint8 or int32 `(..., 3)` RGB levels in `[0, 255]`.
        op: maps int32 levels `(..., 1)` in `[0, 255]` to int32 levels of the
            same shape (a kernel on one plane).

    Returns:
        RGB levels of `levels`' dtype and shape.
    """
    if space not in SPACES:
        fail(ValueError, "space", "be one of " + ", ".join(map(repr, SPACES)), space)
    colour = SPACES[space]
    converted = colour.forward(levels)
    planes = tf.unstack(tf.cast(converted, tf.int32), axis=-1)
    planes[colour.plane] = tf.squeeze(op(tf.expand_dims(planes[colour.plane], -1)), -1)
    return colour.inverse(tf.cast(tf.stack(planes, axis=-1), levels.dtype))
