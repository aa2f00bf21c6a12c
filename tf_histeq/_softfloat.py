"""OpenCV's reference numerics, in NumPy: the sRGB curves, its matrices and its software cube root.

The colour tables (`_colour`, `_colour_float`) are computed from these, once
per process. Every float32 value is produced as OpenCV's softfloat produces
it: rounded once, to nearest with ties to even.
"""

from __future__ import annotations

import struct
from fractions import Fraction

import numpy as np

# sRGB <-> XYZ matrices and the D65 white point, as OpenCV writes them.
SRGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
XYZ_TO_SRGB = ((3.240479, -1.53715, -0.498535), (-0.969256, 1.875991, 0.041556), (0.055648, -0.204043, 1.057311))
D65 = (0.950456, 1.0, 1.088754)

# Turkowski's rational approximation of cbrt on [1/8, 1), as the raw doubles of OpenCV's softfloat.cpp:
# numerator then denominator coefficients, highest power first (the denominator's constant term is 1).
_CBRT_NUM = (0x4046A09E6653BA70, 0x406808F46C6116E0, 0x405DCA97439CAE14, 0x402ADD70D2827500, 0x3FC4F15F83F55D2D)
_CBRT_DEN = (0x402D9E20660EDB21, 0x4062FF15C0285815, 0x406510D06A8112CE, 0x4040FECBC9E2C375)

f32 = np.float32


def _double(raw: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", raw))[0]


def srgb_eotf(x: float) -> float:
    """The sRGB EOTF (encoded -> linear) in double, with OpenCV's constants."""
    if x <= 809 / 20000:
        return x / (323 / 25)
    return ((x + 11 / 200) / (1 + 11 / 200)) ** (12 / 5)


def srgb_oetf(x: float) -> float:
    """The sRGB OETF (linear -> encoded) in double, with OpenCV's constants."""
    if x <= 7827 / 2500000:
        return x * (323 / 25)
    return (1 + 11 / 200) * x ** (1 / (12 / 5)) - 11 / 200


def rne(value) -> int:
    return int(np.rint(value))


def f32_exact(value: Fraction) -> np.float32:
    """`value` rounded once to float32 (nearest, ties to even), without a detour through double."""
    guess = f32(float(value))
    candidates = (np.nextafter(guess, f32(-np.inf)), guess, np.nextafter(guess, f32(np.inf)))

    def key(c):
        return abs(Fraction(float(c)) - value), int(c.view(np.uint32)) & 1

    return min(candidates, key=key)


def mul_add(x: np.float32, y: np.float32, z: np.float32) -> np.float32:
    """`x y + z` with one rounding to float32 (softfloat's `mulAdd`)."""
    return f32_exact(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)))


def opencv_cbrt(x) -> np.ndarray:
    """OpenCV's softfloat `cbrt` of positive normal float32s (`f32_cbrt` in modules/core/src/softfloat.cpp)."""
    bits = np.asarray(x, f32).view(np.uint32).astype(np.int64)
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
    return (((root_exponent + 127) << 23).astype(np.uint64) | mantissa).astype(np.uint32).view(f32)
