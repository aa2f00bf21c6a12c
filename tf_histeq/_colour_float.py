"""Float32 CIE Lab as OpenCV computes it: `cv2.cvtColor(COLOR_RGB2Lab / COLOR_Lab2RGB)` on float32.

`_colour.rgb_to_lab` and `_colour.lab_to_rgb` hand float32 images here. The
notation and the f of the 8-bit Lab are `_colour`'s.

RGB -> Lab (float32 RGB in `[0, 1]`, bit-exact, compiled or not; `L*` in
`[0, 100]`): OpenCV interpolates in a grid instead of evaluating the formulas
(`RGB2Lab_f` with `enableRGB2LabInterpolation`), and so does `lab_from_rgb`.
Its operations are int32 arithmetic and float32 products that are exact or
rounded once, and the grid is 35937 x 3 int32, gathered 8 times per pixel:

1. The grid (`_lab_lut`): 33**3 colours `(R, G, B) / 32`, each through the
   EOTF in double rounded to float32, `XYZ = (M / D65) RGB` in float32 with
   the matrix rounded to float32 (one rounding per multiply and per add), f
   as above (`opencv_cbrt` above `f32(216/24389)`, else the fused
   multiply-add), `L = 116 fY - 16` (or `f32(24389) / f32(27) Y`),
   `a = 500 (fX - fY)`, `b = 200 (fY - fZ)`, stored as
   `rne(2**14 L / 100)`, `rne(2**14 (a + 128) / 256)`, `rne(2**14 (b + 128) / 256)`.
2. Per pixel: `c = rne(2**14 clip(channel, 0, 1))`; cell `c >> 9`, weight
   `w = (c >> 5) & 15`; trilinear over the cell's 8 corners (the upper corner
   clamped to 32) with integer weights `w` / `16 - w` per axis;
   `descale(sum, 12)`.
3. `L* = f32(iL) * (100 / 2**14)`, `a* = f32(ia) * (256 / 2**14) - 128`, same for `b*`.

Lab -> RGB (`Lab2RGBfloat`, `rgb_from_lab`), bit-exact eagerly and in
`tf.function`:

1. OpenCV converts row by row, 8 pixels at a time with SIMD and the last
   `width % 8` pixels of each row with scalar code, and the two round
   differently, so `rgb_from_lab` computes both (`_lab_to_linear`) and picks by
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
from fractions import Fraction

import numpy as np
import tensorflow as tf

from tf_histeq._softfloat import (
    D65,
    SRGB_TO_XYZ,
    XYZ_TO_SRGB,
    f32,
    f32_exact,
    mul_add,
    opencv_cbrt,
    srgb_eotf,
    srgb_oetf,
)

# Max |lab_to_rgb - cv2| on float32 under XLA (measured 9.4e-6 on CPU over the Lab of all 2**24 uint8 colours).
XLA_FLOAT_RGB_BOUND = 1e-5

_LUT_DIM = 33  # grid points per axis of OpenCV's float RGB -> Lab table (32 cells)
_LUT_BASE = 14  # its RGB and Lab fixed point: 1 = 2**14


@functools.cache
def _lab_lut() -> np.ndarray:
    """OpenCV's float RGB -> Lab grid (`RGB2LabLUT_s16`): `(33**3, 3)` Q14 `(L/100, (a+128)/256, (b+128)/256)`.

    Row `blue + 33 green + 33**2 red` holds the colour `(red, green, blue) / 32`,
    computed as OpenCV does in softfloat: float32 gamma of the double EOTF, the
    white-scaled matrix in float32 (no fused operations), f by `opencv_cbrt` or
    a fused multiply-add, then `rne(2**14 L / 100)` and `rne(2**14 (a + 128) / 256)`.
    """
    linear = np.array([f32(srgb_eotf(p / (_LUT_DIM - 1))) for p in range(_LUT_DIM)], f32)
    blue, green, red = (linear[axis.ravel()] for axis in np.indices((_LUT_DIM,) * 3)[::-1])
    threshold = f32_exact(Fraction(216, 24389))
    slope, offset = f32_exact(Fraction(841, 108)), f32_exact(Fraction(16, 116))

    def f(t):
        out = opencv_cbrt(np.maximum(t, threshold))
        for i in np.flatnonzero(t <= threshold):
            out[i] = mul_add(t[i], slope, offset)
        return out

    xyz = []
    for row in range(3):
        scale = 1.0 / D65[row]
        coeffs = [f32(SRGB_TO_XYZ[row][j] * scale) for j in range(3)]
        xyz.append(blue * coeffs[2] + green * coeffs[1] + red * coeffs[0])
    fx, fy, fz = map(f, xyz)
    kappa = f32(24389) / f32(27)
    lightness = np.where(xyz[1] > threshold, f32(116) * fy - f32(16), kappa * xyz[1])
    a, b = f32(500) * (fx - fy), f32(200) * (fy - fz)
    base = f32(1 << _LUT_BASE)
    columns = (base * lightness / f32(100), base * (a + f32(128)) / f32(256), base * (b + f32(128)) / f32(256))
    return np.rint(np.stack(columns, axis=-1)).astype(np.int32)


_GAMMA_KNOTS = 1024  # OpenCV's float gamma splines: 1024 cubic pieces on [0, 1]


@functools.cache
def _inverse_gamma_spline() -> np.ndarray:
    """OpenCV's `sRGBInvGammaTab`: `(1024, 4)` float32 cubic coefficients of the sRGB OETF (`splineBuild`).

    The knots are `f32(oetf(i / 1024))`, i = 0..1024; a natural cubic spline
    solved in float32 (every operation rounded once), coefficients
    `(f[i], b, c, d)` of `f[i] + b t + c t**2 + d t**3`.
    """
    knots = np.array([f32(srgb_oetf(i / _GAMMA_KNOTS)) for i in range(_GAMMA_KNOTS + 1)], f32)
    n, two, three, four = _GAMMA_KNOTS, f32(2), f32(3), f32(4)
    table = np.zeros((n, 4), f32)
    for i in range(1, n):
        t = (knots[i + 1] - knots[i] * two + knots[i - 1]) * three
        ell = f32(1) / (four - table[i - 1, 0])
        table[i, 0], table[i, 1] = ell, (t - table[i - 1, 1]) * ell
    following = f32(0)
    for i in range(n - 1, -1, -1):
        c = table[i, 1] - table[i, 0] * following
        b = knots[i + 1] - knots[i] - (following + c * two) / three
        d = (following - c) / three
        table[i] = knots[i], b, c, d
        following = c
    return table


# Float32 constants of OpenCV's float Lab -> RGB, rounded as its C++ (float literals, float divisions).
_FLOAT_CONSTANTS = {
    "16": f32(16),
    "116": f32(116),
    "500": f32(500),
    "200": f32(200),
    "903": f32(903.3),
    "7.787": f32(7.787),
    "16/116": f32(16) / f32(116),
    "inv_903": f32(1) / f32(903.3),
    "inv_116": f32(1) / f32(116),
    "inv_500": f32(1) / f32(500),
    "neg_inv_200": f32(-1) / f32(200),
    "inv_7.787": f32(1) / f32(7.787),
    "l_threshold": f32(8),
    "f_threshold": f32(6) / f32(29),
}
# XYZ -> RGB times the white point, rounded from double to float32 (Lab2RGBfloat's coeffs).
_FLOAT_INVERSE_MATRIX = tuple(tuple(f32(XYZ_TO_SRGB[j][i] * D65[i]) for i in range(3)) for j in range(3))


@tf.autograph.experimental.do_not_convert  # plain Python loops: nothing for AutoGraph to convert
def lab_from_rgb(images: tf.Tensor) -> tf.Tensor:
    """Float32 RGB `(..., 3)` in `[0, 1]` (clipped) -> `(L*, a*, b*)`, as `cv2.cvtColor(COLOR_RGB2Lab)`."""
    lut = tf.constant(_lab_lut())
    cells = _LUT_BASE - 5  # 32 cells: the top 5 bits of a Q14 level pick the cell, the next 4 its weight
    levels = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * (1 << _LUT_BASE)), tf.int32)
    red, green, blue = tf.unstack(levels, axis=-1)
    corners = [tf.bitwise.right_shift(c, cells) for c in (blue, green, red)]
    # (c >> 5) & 15, written without BitwiseAnd (TensorFlow Lite has no builtin kernel for it)
    fractions = [
        tf.bitwise.right_shift(c, cells - 4) - corner * 16
        for c, corner in zip((blue, green, red), corners, strict=True)
    ]
    total = 0
    for step in range(8):
        offsets = ((step >> 2) & 1, (step >> 1) & 1, step & 1)
        index, weight = 0, 1
        for axis, (corner, fraction, offset) in enumerate(zip(corners, fractions, offsets, strict=True)):
            index += tf.minimum(corner + offset, _LUT_DIM - 1) * _LUT_DIM**axis
            weight *= fraction if offset else 16 - fraction
        total += tf.gather(lut, index) * tf.expand_dims(weight, -1)
    lab = tf.cast(tf.bitwise.right_shift(total + (1 << 11), 12), tf.float32)  # descale(sum, 12)
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


@tf.autograph.experimental.do_not_convert  # plain Python loops: nothing for AutoGraph to convert
def rgb_from_lab(images: tf.Tensor) -> tf.Tensor:
    """Float32 `(L*, a*, b*)` `(..., 3)` -> RGB in `[0, 1]`, as `cv2.cvtColor(COLOR_Lab2RGB)` row by row."""
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
