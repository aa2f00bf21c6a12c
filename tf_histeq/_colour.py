"""Colour spaces for the lightness modes: OpenCV's YCrCb and CIE Lab, bit-exact on uint8.

An op run on the lightness of an RGB image converts to a colour space, runs on
one plane and converts back; `on_lightness` does that for any `ColourSpace` in
`SPACES`, so a new mode is a new entry there, not an edit of an op. The
conversions reproduce `cv2.cvtColor` bit for bit: on uint8 every one of the
2**24 inputs in both directions (`tests/test_colour.py` checks them all), and
float32 Lab in `_colour_float` (Lab -> RGB within a stated bound under XLA).
The uint8 paths use nothing but int32 table lookups (`tf.gather` on constants
of at most 4096 entries), int32 multiplies and adds, arithmetic right shifts,
truncating divisions and clips at run time. The tables are computed in NumPy
from the formulas below (with `_softfloat`'s curves and cube root), once per
process (`_tables`); none is pasted.

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
   EOTF in double (`srgb_eotf`: `x / (323/25)` up to `809/20000`, else
   `((x + 11/200) / (211/200)) ** (12/5)`), rounded to float32, times
   `f32(2040)` in float32, `rne`.
2. Matrix `C[k][j] = rne(4096 M[k][j] / D65[k])` with `M = SRGB_TO_XYZ` and
   `D65 = D65`, asserted equal to `_LAB_FORWARD_MATRIX`; then
   `i_k = (sum_j C[k][j] gamma[c_j] + 2048) >> 12`, in `[0, 2040]`.
3. f table, 2041 entries: `x = f32(f32(1/2040) i)`; below `f32(216/24389)`
   `f = f32(x 841/108 + 16/116)` with one rounding (a fused multiply-add of
   the float32 constants, evaluated exactly with `fractions.Fraction`); from
   there on `f` is OpenCV's software cube root (`opencv_cbrt`: the mantissa
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
4. `C[j][i] = rne(4096 Minv[j][i] D65[i])` with `Minv = XYZ_TO_SRGB`,
   asserted equal to `_LAB_INVERSE_MATRIX`;
   `channel_j = clip(descale(C[j] . (x, y, z), 14), 0, 4095)`.
5. Inverse gamma table, 4096 entries: `rne(f32(255) f32(oetf(i / 4096)))` with
   the sRGB OETF in double (`srgb_oetf`: `x 323/25` up to `7827/2500000`,
   else `(211/200) x ** (5/12) - 11/200`); the output is `table[channel_j]`.

All int32 intermediates stay below 2**31 (the largest, `((v v) // 2**14) v`
for `v` up to 26868, is about 1.2e9).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tf_histeq import _colour_float
from tf_histeq._options import fail
from tf_histeq._softfloat import (
    D65,
    SRGB_TO_XYZ,
    XYZ_TO_SRGB,
    f32,
    f32_exact,
    mul_add,
    opencv_cbrt,
    rne,
    srgb_eotf,
    srgb_oetf,
)

# RGB -> YCrCb: Y weights and the Cr, Cb scales; YCrCb -> RGB: Cr->R, Cb->G, Cr->G, Cb->B (all / 2**14).
_YCRCB_SHIFT = 14
_YCRCB_FORWARD = (4899, 9617, 1868, 11682, 9241)
_YCRCB_INVERSE = (22987, -5636, -11698, 29049)

# What the fixed-point matrices must come to (asserted when the tables are built).
_LAB_FORWARD_MATRIX = ((1777, 1541, 778), (871, 2929, 296), (73, 448, 3575))
_LAB_INVERSE_MATRIX = ((12615, -6296, -2223), (-3773, 7684, 185), (217, -836, 4715))

LEVELS = 256  # the levels of the 8-bit conversions (an op's `bins` for the OpenCV round trip)
_GAMMA_SCALE = 2040  # RGB2Lab_b's linear-light scale (8 * 255)
_INV_GAMMA_SIZE = 4096  # Lab2RGBinteger's linear-light levels
_F_SCALE = 15  # f table in Q15
_LAB_Q = 14  # Lab2RGBinteger's fixed point


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
    gamma = [rne(f32(srgb_eotf(float(f32(i) / f32(255)))) * f32(_GAMMA_SCALE)) for i in range(256)]
    forward = [[rne(4096 * SRGB_TO_XYZ[k][j] / D65[k]) for j in range(3)] for k in range(3)]
    inverse = [[rne(4096 * XYZ_TO_SRGB[j][i] * D65[i]) for i in range(3)] for j in range(3)]
    assert tuple(map(tuple, forward)) == _LAB_FORWARD_MATRIX, forward
    assert tuple(map(tuple, inverse)) == _LAB_INVERSE_MATRIX, inverse

    step, threshold = f32(1.0 / _GAMMA_SCALE), f32(216 / 24389)
    slope, offset = f32_exact(Fraction(841, 108)), f32_exact(Fraction(16, 116))
    x = step * np.arange(_GAMMA_SCALE + 1, dtype=f32)
    f = opencv_cbrt(np.maximum(x, threshold))
    for i in np.flatnonzero(x < threshold):
        f[i] = mul_add(x[i], slope, offset)
    f = np.rint(f32(1 << _F_SCALE) * f)

    y, ify = [], []
    q = 1 << _LAB_Q
    for lightness in range(256):
        if lightness <= 20:
            y.append(rne(f32(lightness * q * 180) / f32(17 * 29**3)))
            ify.append(rne(f32(q) * (f32(16) / f32(116) + f32(5 * lightness) / f32(3 * 17 * 29))))
        else:
            fy = f32(lightness * 100 * q) / f32(255 * 116) + f32(16 * q) / f32(116)
            ify.append(rne(fy))
            y.append(rne(fy * fy * fy / f32(2**28)))

    inv_gamma = [rne(f32(255) * f32(srgb_oetf(i / _INV_GAMMA_SIZE))) for i in range(_INV_GAMMA_SIZE)]
    as_int = functools.partial(np.asarray, dtype=np.int32)
    return _Tables(*map(as_int, (gamma, f, y, ify, inv_gamma, forward, inverse)))


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


def luma(levels: tf.Tensor) -> tf.Tensor:
    """OpenCV's Y (step 1 above) of int32 RGB levels `(..., 3)` of any range; shape `(..., 1)`.

    The weights sum to 2**14, so Y stays in the levels' range (no clip), e.g.
    for the 65536 levels of uint16 (the largest sum, 65535 * 2**14, fits int32).
    """
    weights = tf.constant(_YCRCB_FORWARD[:3], tf.int32)
    return _descale(tf.reduce_sum(levels * weights, axis=-1, keepdims=True), _YCRCB_SHIFT)


@tf.autograph.experimental.do_not_convert  # plain Python loops: nothing for AutoGraph to convert
def rgb_to_ycrcb(images) -> tf.Tensor:
    """RGB -> YCrCb exactly as `cv2.cvtColor(COLOR_RGB2YCrCb)` on uint8 (int32: levels, clipped to 0..255).

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


@tf.autograph.experimental.do_not_convert  # plain Python loops: nothing for AutoGraph to convert
def ycrcb_to_rgb(images) -> tf.Tensor:
    """YCrCb -> RGB exactly as `cv2.cvtColor(COLOR_YCrCb2RGB)` on uint8 (int32: levels, clipped to 0..255).

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


@tf.autograph.experimental.do_not_convert  # plain Python loops: nothing for AutoGraph to convert
def rgb_to_lab(images) -> tf.Tensor:
    """RGB -> CIE Lab exactly as `cv2.cvtColor(COLOR_RGB2Lab)` on uint8 and on float32.

    Args:
        images: tensor `(..., 3)`, RGB: uint8 (int32: levels, clipped to 0..255),
            or float32 in `[0, 1]` (clipped).

    Returns:
        A tensor of the input's dtype and shape: 8-bit `(255/100 L*, a* + 128,
        b* + 128)` for integers, `(L*, a*, b*)` for float32.
    """
    images = _check(images, "images", floats=True)
    if images.dtype == tf.float32:
        return _colour_float.lab_from_rgb(images)
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


@tf.autograph.experimental.do_not_convert  # plain Python loops: nothing for AutoGraph to convert
def lab_to_rgb(images) -> tf.Tensor:
    """CIE Lab -> RGB exactly as `cv2.cvtColor(COLOR_Lab2RGB)` (float32 under XLA: within `XLA_FLOAT_RGB_BOUND`).

    Args:
        images: tensor `(..., 3)` in `rgb_to_lab`'s encoding of its dtype.

    Returns:
        A tensor of the input's dtype and shape, RGB (float32 in `[0, 1]`).
    """
    images = _check(images, "images", floats=True)
    if images.dtype == tf.float32:
        return _colour_float.rgb_from_lab(images)
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


@tf.autograph.experimental.do_not_convert  # plain Python loops: nothing for AutoGraph to convert
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
    levels = _check(levels, "levels", floats=False)
    colour = SPACES[space]
    converted = colour.forward(levels)
    planes = tf.unstack(tf.cast(converted, tf.int32), axis=-1)
    planes[colour.plane] = tf.squeeze(op(tf.expand_dims(planes[colour.plane], -1)), -1)
    return colour.inverse(tf.cast(tf.stack(planes, axis=-1), levels.dtype))
