"""Intensity standardization in TensorFlow ops: percentiles, CT windows, percentile scaling, Nyúl–Udupa.

The references are MONAI's `ScaleIntensityRange` and
`ScaleIntensityRangePercentiles` (monai 1.6) and TorchIO's
`HistogramStandardization` (torchio 1.2); tests/test_standardize.py compares
every op with them. Every op works per image (and per channel where said),
never pooled over the batch, on uint8, uint16, int16 (CT in Hounsfield
units), float32 and float64 inputs, in the layout of `spatial_dims` (2:
`(H, W)`, `(H, W, C)`, `(N, H, W, C)`; 3: `(D, H, W)`, `(D, H, W, C)`,
`(N, D, H, W, C)`), eagerly, in `tf.function` and under XLA
(`jit_compile=True`), with no host round trip.

Output dtype: float64 for float64 inputs, float32 for the others (MONAI
computes in the input tensor's dtype, float32 for integer images combined with
Python numbers, and returns float32 by default: `float32(ours)` equals its
output for float64 inputs too). Nyúl's apply always returns float32, as
TorchIO does.

Masks restrict which voxels are counted (percentiles, landmarks); every voxel
is mapped. A mask has the spatial shape, optionally with N in front and/or a
trailing 1; one that selects no voxel of an image raises a ValueError where
its values are known at the call (a NumPy array, an eager tensor); inside a
traced function such an image's percentiles are NaN.

These ops are not rows of `tf_histeq._options.OP_KEYWORDS`: that schema
describes image-to-image ops with `value_range`/`bins`/`channels`/`alpha`
keywords, and each row becomes a `tf-histeq` subcommand that writes 8/16-bit
image files and a generated layer and NumPy door; these ops take other
keywords (`a_min`, `windows`, `landmarks`), return float, and Nyúl needs a fit
step. Their checks live here (`check_*`), for the layers and the command line
to reuse.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from tf_histeq import _nyul, _quantiles
from tf_histeq._options import NYUL_CUTOFF, NYUL_OUTPUT_RANGE, _is_real, _item, fail

# Named CT windows, (level, width) in Hounsfield units. The values are the usual
# radiology conventions as Radiopaedia's "Windowing (CT)" article lists them, where it
# gives ranges a value inside them: `subdural` (there W 130-300, L 50-100) is the
# (80, 200) used by the RSNA 2019 intracranial haemorrhage challenge's solutions,
# `head_soft_tissue` (there W 350-400, L 20-60) is (40, 380), and `stroke` is the
# article's second choice (W 40, L 40; the other is W 8, L 32).
WINDOWS: Mapping[str, tuple[float, float]] = {
    "brain": (40, 80),
    "subdural": (80, 200),
    "stroke": (40, 40),
    "temporal_bone": (600, 2800),
    "head_soft_tissue": (40, 380),
    "lung": (-600, 1500),
    "mediastinum": (50, 350),
    "soft_tissue": (50, 400),
    "liver": (30, 150),
    "bone": (400, 1800),
}


# The ops have no tensor-dependent Python control flow: AutoGraph, which `tf.function` applies to
# what it calls, would only spend seconds converting their helpers (a caller's trace of
# `percentiles` on volumes took 2.5 s converted, 0.1 s not).
_NO_AUTOGRAPH = tf.autograph.experimental.do_not_convert


def _number(value: Any, name: str, *, optional: bool = False) -> float | None:
    value = _item(value)
    if value is None and optional:
        return None
    what = "a finite number" + (" or None" if optional else "")
    if not _is_real(value):
        fail(TypeError, name, f"be {what}", value)
    if not math.isfinite(value):
        fail(ValueError, name, f"be {what}", value)
    return float(value)


def _bool(value: Any, name: str) -> bool:
    value = _item(value)
    if not isinstance(value, (bool, np.bool_)):
        fail(TypeError, name, "be True or False", value)
    return bool(value)


def _work_dtype(dtype: tf.DType) -> tf.DType:
    return tf.float64 if dtype == tf.float64 else tf.float32


@_NO_AUTOGRAPH
def percentiles(images, q, *, mask=None, spatial_dims: int = 2) -> tf.Tensor:
    """The percentiles of every image and channel, as `np.percentile(..., method="linear")` gives them.

    Equal bit for bit to `np.percentile(values, np.asarray(q))` of each
    image's channel (its voxels inside `mask`). Exact linear interpolation
    needs the two order statistics around `(n - 1) * q / 100`: for integer
    images they come from per-level histograms (a cumulative count and a
    search, no sort), for float32 from a radix selection (two 16-bit
    histogram passes over the values' bits, no sort: TensorFlow has no
    selection op and its sort is 30 times slower than NumPy's), for float64
    from one `tf.sort`. A channel holding NaN gives NaN, as NumPy.

    Args:
        images: See the module docstring for layouts and dtypes.
        q: A percentile or a 1-D sequence of them, in [0, 100].
        mask: Optional: the voxels counted.
        spatial_dims: 2 (images) or 3 (volumes).

    Returns:
        float64 `(N, C, len(q))`, with N = 1 and C = 1 where the input has no
        such axis (float64: the interpolated values of 16-bit data and the
        exact percentiles of float64 data do not fit float32).
    """
    q = _quantiles.check_q(q)
    x, layout = _quantiles.as_nvc(images, spatial_dims)
    mask = _quantiles.prepare_mask(mask, x, layout)
    return _quantiles.order_statistics(x, mask, np.true_divide(q, 100))


def _scale(x, a_min, span, b_min, b_max, clip):
    """MONAI's `ScaleIntensityRange` arithmetic on `x` (work dtype); `a_min`, `span` broadcastable to it."""
    dtype = x.dtype
    # A run-time zero keeps XLA from turning a division by a constant into a
    # multiplication by its reciprocal (float32: 40 of 343 values moved by an ulp).
    zero = _quantiles.runtime_zero(x)
    scaled = (x - a_min) / (span + zero)
    if b_min is not None and b_max is not None:
        scaled = _quantiles.rounded(scaled * tf.constant(b_max - b_min, dtype), zero) + tf.constant(b_min, dtype)
    if clip and (b_min is not None or b_max is not None):
        low = tf.constant(-np.inf if b_min is None else b_min, dtype)
        high = tf.constant(np.inf if b_max is None else b_max, dtype)
        scaled = tf.minimum(tf.maximum(scaled, low), high)
    # a_min == a_max: MONAI returns `x - a_min (+ b_min)`, unclipped.
    flat = x - a_min if b_min is None else x - a_min + tf.constant(b_min, dtype)
    return tf.where(tf.equal(span, 0), flat, scaled)


@_NO_AUTOGRAPH
def scale_intensity_range(
    images, *, a_min, a_max, b_min=None, b_max=None, clip: bool = False, spatial_dims: int = 2
) -> tf.Tensor:
    """Map `[a_min, a_max]` linearly onto `[b_min, b_max]`: MONAI's `ScaleIntensityRange`.

    In the work dtype (float32, or float64 for float64 input), as MONAI's
    tensor arithmetic: `(x - a_min) / (a_max - a_min)` (the difference taken
    in float64, then rounded), then `* (b_max - b_min) + b_min` if both are
    set, then clipped to them if `clip` (a None bound is not clipped). With
    `a_min == a_max` MONAI warns and returns `x - a_min (+ b_min)`, unclipped;
    so does this (a `UserWarning`). Output values equal MONAI's bit for bit.

    Args:
        images: See the module docstring.
        a_min: Input value mapped to `b_min`.
        a_max: Input value mapped to `b_max` (may be below `a_min`: the map decreases).
        b_min: Output of `a_min`, or None.
        b_max: Output of `a_max`, or None.
        clip: Clip the output to `[b_min, b_max]`.
        spatial_dims: 2 (images) or 3 (volumes); only the layout is checked.

    Returns:
        The input's shape, float32 (float64 for float64 input).
    """
    a_min, a_max = _number(a_min, "a_min"), _number(a_max, "a_max")
    b_min, b_max = _number(b_min, "b_min", optional=True), _number(b_max, "b_max", optional=True)
    clip = _bool(clip, "clip")
    x, layout = _quantiles.as_nvc(images, spatial_dims)
    if a_max - a_min == 0:
        warnings.warn("scale_intensity_range: a_min == a_max, the output is images - a_min (+ b_min)", stacklevel=2)
    dtype = _work_dtype(x.dtype)
    # MONAI divides by the Python difference `a_max - a_min`, rounded once to the work dtype.
    out = _scale(tf.cast(x, dtype), tf.constant(a_min, dtype), tf.constant(a_max - a_min, dtype), b_min, b_max, clip)
    return _quantiles.from_nvc(out, layout)


def check_window(value: Any, *, name: str = "windows") -> tuple[float, float]:
    """Return one window, a name of `WINDOWS` or a `(level, width)` pair with width > 0, as `(level, width)`."""
    if isinstance(value, str):
        if value not in WINDOWS:
            fail(ValueError, name, "be a name of tf_histeq.standardize.WINDOWS (" + ", ".join(WINDOWS) + ")", value)
        level, width = WINDOWS[value]
        return float(level), float(width)
    pair = value.tolist() if isinstance(value, np.ndarray) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        fail(TypeError, name, "be a window name or a (level, width) pair, or a list of them", value)
    level, width = _number(pair[0], f"{name} level"), _number(pair[1], f"{name} width")
    if not width > 0:
        fail(ValueError, name, "have a width > 0 ((level, width) pairs)", value)
    return level, width


def check_windows(value: Any, *, name: str = "windows") -> tuple[list[tuple[float, float]], bool]:
    """Return `(windows, stacked)`: the `(level, width)` of each window, and whether a list was given."""
    single = isinstance(value, str) or (
        isinstance(value, (tuple, list, np.ndarray))
        and len(value) == 2
        and not any(isinstance(v, (str, tuple, list, np.ndarray)) for v in value)
    )
    if single:
        return [check_window(value, name=name)], False
    if not isinstance(value, (tuple, list)) or not value:
        fail(TypeError, name, "be a window name or a (level, width) pair, or a non-empty list of them", value)
    return [check_window(v, name=f"{name}[{i}]") for i, v in enumerate(value)], True


def window_range(level: float, width: float) -> tuple[float, float]:
    """`(a_min, a_max) = (level - width / 2, level + width / 2)`: the window's bounds in input units."""
    return level - width / 2, level + width / 2


@_NO_AUTOGRAPH
def window(images, windows, *, b_min=0.0, b_max=1.0, clip: bool = True, spatial_dims: int = 2) -> tf.Tensor:
    """CT windowing: `scale_intensity_range` from `level ± width / 2` to `[b_min, b_max]`, clipped.

    The bounds are `a_min = level - width / 2`, `a_max = level + width / 2`, as
    MONAI users write them for `ScaleIntensityRange` (DICOM's VOI LUT instead
    uses `level - 0.5 ± (width - 1) / 2` for integer display levels). Values
    equal MONAI's `ScaleIntensityRange(a_min, a_max, b_min, b_max, clip)` bit
    for bit.

    Args:
        images: See the module docstring; in Hounsfield units for the named windows.
        windows: A name of `WINDOWS` or a `(level, width)` pair (width > 0): the
            output has the input's shape, every channel windowed. Or a list of
            them: K windows stacked as K output channels, for an input with one
            channel or none (`(H, W)` gives `(H, W, K)`).
        b_min: Output of `a_min`.
        b_max: Output of `a_max`.
        clip: Clip the output to `[b_min, b_max]`.
        spatial_dims: 2 (images) or 3 (volumes).

    Returns:
        float32 (float64 for float64 input).

    Example:
        >>> import tf_histeq
        >>> from tf_histeq import samples
        >>> ct = samples.ct_phantom((16, 32, 32))
        >>> tf_histeq.window(ct, ["lung", "mediastinum", "bone"], spatial_dims=3).shape
        TensorShape([16, 32, 32, 3])
    """
    pairs, stacked = check_windows(windows)
    b_min, b_max = _number(b_min, "b_min"), _number(b_max, "b_max")
    clip = _bool(clip, "clip")
    x, layout = _quantiles.as_nvc(images, spatial_dims)
    if stacked and x.shape[-1] != 1:
        fail(
            ValueError,
            "images.shape",
            "have one channel (or none) when several windows are stacked as channels",
            tuple(layout.static),
        )
    dtype = _work_dtype(x.dtype)
    x = tf.cast(x, dtype)
    outs = []
    for level, width in pairs:
        a_min, a_max = window_range(level, width)
        outs.append(_scale(x, tf.constant(a_min, dtype), tf.constant(a_max - a_min, dtype), b_min, b_max, clip))
    if not stacked:
        return _quantiles.from_nvc(outs[0], layout)
    return _quantiles.from_nvc(tf.concat(outs, axis=-1), layout, channels=len(outs))


def check_percentile_bounds(lower: Any, upper: Any) -> tuple[float, float]:
    """Return `(lower, upper)`, two percentiles with 0 <= lower < upper <= 100."""
    lower, upper = _number(lower, "lower"), _number(upper, "upper")
    for name, value in (("lower", lower), ("upper", upper)):
        if not 0 <= value <= 100:
            fail(ValueError, name, "be a percentile in [0, 100]", value)
    if not lower < upper:
        fail(ValueError, "upper", f"be above lower ({lower})", upper)
    return lower, upper


@_NO_AUTOGRAPH
def scale_intensity_percentiles(
    images,
    *,
    lower,
    upper,
    b_min,
    b_max,
    clip: bool = False,
    relative: bool = False,
    channel_wise: bool = False,
    mask=None,
    spatial_dims: int = 2,
) -> tf.Tensor:
    """Map each image's `[lower, upper]` percentiles onto `[b_min, b_max]`: MONAI's `ScaleIntensityRangePercentiles`.

    The percentiles are `np.percentile`'s (`percentiles`), of each image's
    voxels (inside `mask`), all channels pooled, or of each channel with
    `channel_wise`; rounded to the work dtype, they are MONAI's `a_min` and
    `a_max`, and `scale_intensity_range`'s arithmetic follows, with the span
    `a_max - a_min` taken in the work dtype. `relative` maps them to the same
    percentiles of the output range instead: `b_min + (b_max - b_min) * lower
    / 100` and `b_min + (b_max - b_min) * upper / 100`. A constant image (equal
    percentiles) gives `x - a_min + b_min`, i.e. `b_min`, unclipped, as MONAI.

    MONAI itself takes the percentiles with `torch.quantile` in float32 for
    images of at most 1,000,000 voxels (its rank `(n - 1) * q` and the
    interpolation are rounded to float32) and with `np.percentile` above: the
    outputs equal MONAI's bit for bit above that size, and to the float32
    rounding of its percentiles below it (tests/test_standardize.py measures
    it). Integer images are compared with MONAI on the same image as float32,
    as MONAI's `LoadImage` reads them.

    Args:
        images: See the module docstring.
        lower: Lower percentile, in [0, 100].
        upper: Upper percentile, in (lower, 100].
        b_min: Output of the lower percentile, or None (no scaling to a range).
        b_max: Output of the upper percentile, or None.
        clip: Clip the output to `[b_min, b_max]`.
        relative: Map to the output range's own percentiles (needs both bounds).
        channel_wise: Percentiles of each channel rather than of the whole image.
        mask: Optional: the voxels counted.
        spatial_dims: 2 (images) or 3 (volumes).

    Returns:
        The input's shape, float32 (float64 for float64 input).
    """
    lower, upper = check_percentile_bounds(lower, upper)
    b_min, b_max = _number(b_min, "b_min", optional=True), _number(b_max, "b_max", optional=True)
    clip, relative = _bool(clip, "clip"), _bool(relative, "relative")
    channel_wise = _bool(channel_wise, "channel_wise")
    if relative:
        if b_min is None or b_max is None:
            fail(ValueError, "relative", "be False when b_min or b_max is None", relative)
        b_min, b_max = (b_max - b_min) * (lower / 100.0) + b_min, (b_max - b_min) * (upper / 100.0) + b_min
    x, layout = _quantiles.as_nvc(images, spatial_dims)
    mask = _quantiles.prepare_mask(mask, x, layout)
    bounds = _quantiles.order_statistics(x, mask, np.true_divide([lower, upper], 100), joint=not channel_wise)
    dtype = _work_dtype(x.dtype)
    bounds = tf.cast(bounds[:, None], dtype)  # (N, 1, C or 1, 2)
    a_min, a_max = bounds[..., 0], bounds[..., 1]
    out = _scale(tf.cast(x, dtype), a_min, a_max - a_min, b_min, b_max, clip)
    return _quantiles.from_nvc(out, layout)


def check_cutoff(value: Any, *, name: str = "cutoff") -> tuple[float, float]:
    """Return `(low, high)` quantiles with 0 <= low <= 0.09 and 0.91 <= high <= 1.

    The range where TorchIO's `_standardize_cutoff` leaves a cutoff as it is,
    so its training and apply use the same landmarks, 13 of them (a cutoff on a
    decile would merge two).
    """
    pair = value.tolist() if isinstance(value, np.ndarray) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        fail(TypeError, name, "be a pair of quantiles (low, high)", value)
    low, high = _number(pair[0], name), _number(pair[1], name)
    if not (0 <= low <= 0.09 and 0.91 <= high <= 1):
        fail(ValueError, name, "be quantiles (low, high) with 0 <= low <= 0.09 and 0.91 <= high <= 1", value)
    return low, high


def check_output_range(value: Any, *, name: str = "output_range") -> tuple[float, float]:
    """Return `(s1, s2)`, two finite numbers with s1 < s2."""
    pair = value.tolist() if isinstance(value, np.ndarray) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        fail(TypeError, name, "be a pair of numbers (low, high)", value)
    low, high = _number(pair[0], name), _number(pair[1], name)
    if not low < high:
        fail(ValueError, name, "satisfy low < high", value)
    return low, high


@_NO_AUTOGRAPH
def nyul_landmarks(images, *, cutoff=NYUL_CUTOFF, mask=None, spatial_dims: int = 2) -> tf.Tensor:
    """Each image's and channel's 13 Nyúl landmarks, as TorchIO's `HistogramStandardization.train` takes them.

    The percentiles `100 * cutoff`, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80,
    90 (`np.percentile`, linear, of the voxels inside `mask`; see `percentiles`).

    Args:
        images: See the module docstring.
        cutoff: `(low, high)` quantiles, `0 <= low <= 0.09`, `0.91 <= high <= 1`.
        mask: Optional: the voxels counted (TorchIO's `mask_path` image).
        spatial_dims: 2 (images) or 3 (volumes).

    Returns:
        float64 `(N, C, 13)`.
    """
    cutoff = check_cutoff(cutoff)
    x, layout = _quantiles.as_nvc(images, spatial_dims)
    mask = _quantiles.prepare_mask(mask, x, layout)
    return _quantiles.order_statistics(x, mask, _nyul.fractions(cutoff))


def nyul_fit(
    images_iterable: Iterable,
    *,
    cutoff=NYUL_CUTOFF,
    output_range=NYUL_OUTPUT_RANGE,
    mask=None,
    spatial_dims: int = 2,
) -> np.ndarray:
    """The standard landmarks of a dataset: TorchIO's `HistogramStandardization.train`, per channel.

    Each image's landmarks `p` (`nyul_landmarks`) get the slope `(s2 - s1) /
    (p[12] - p[0])` onto `output_range = (s1, s2)`; the result is the mean of
    `slope * p` plus the mean of `s1 - slope * p[0]`. One pass, with `(C, 13)`
    sums as state, so a dataset larger than memory fits in bounded memory.
    The landmarks are exact per image (`percentiles`), whatever the batching;
    the sums' rounding differs from TorchIO's by about 1e-16 of the range.
    TorchIO pools the channels of a multi-channel image; this fits each channel.

    Args:
        images_iterable: An iterable (list, generator, `tf.data.Dataset`) of
            arrays or tensors, each an image or a batch in the layout of
            `spatial_dims`, or `(images, mask)` pairs.
        cutoff: `(low, high)` quantiles (see `nyul_landmarks`).
        output_range: `(s1, s2)`, TorchIO's standard range `(0, 100)` by default.
        mask: Optional mask for every element without its own.
        spatial_dims: 2 (images) or 3 (volumes).

    Returns:
        float64 `(C, 13)`.

    Raises:
        ValueError: If the iterable is empty, if an image's counted voxels are
            constant (TorchIO would give it an infinite slope), or the channel
            counts differ.
    """
    cutoff, output_range = check_cutoff(cutoff), check_output_range(output_range)
    if isinstance(images_iterable, (np.ndarray, tf.Tensor)) or not isinstance(images_iterable, Iterable):
        fail(
            TypeError,
            "images_iterable",
            "be an iterable of images or batches (a list, a generator, a tf.data.Dataset)",
            type(images_iterable).__name__,
            hint="for one array of images, pass [images].",
        )
    sums = _nyul.FitSums(output_range)
    for item, element in enumerate(images_iterable):
        images, item_mask = element if isinstance(element, tuple) and len(element) == 2 else (element, mask)
        landmarks = nyul_landmarks(images, cutoff=cutoff, mask=item_mask, spatial_dims=spatial_dims)
        sums.add(np.asarray(landmarks), name="images_iterable", item=item)
    if sums.count == 0:
        fail(ValueError, "images_iterable", "hold at least one image", "an empty iterable")
    return sums.result()


def check_landmarks(value: Any, *, name: str = "landmarks") -> Any:
    """Check concrete landmarks (13 or `(C, 13)` finite, non-decreasing, first < last).

    A symbolic tensor or a variable read in a traced function (a layer's
    weight) has its shape checked only, and is returned as a tensor.
    """
    traced = isinstance(value, tf.Variable) and not tf.executing_eagerly()  # a layer's weight in its call
    if traced or (isinstance(value, tf.Tensor) and tf.is_symbolic_tensor(value)):
        if value.shape.rank not in (1, 2) or value.shape[-1] != _nyul.N_LANDMARKS:
            fail(ValueError, f"{name}.shape", "be (13,) or (C, 13)", value.shape)
        return tf.convert_to_tensor(value)
    array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    if array.dtype.kind not in "iuf":
        fail(TypeError, name, "be 13 numbers, or (C, 13)", value)
    if array.ndim not in (1, 2) or array.shape[-1] != _nyul.N_LANDMARKS:
        fail(ValueError, f"{name}.shape", "be (13,) or (C, 13)", array.shape)
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        fail(ValueError, name, "be finite (no NaN or inf)", array.tolist())
    if np.any(np.diff(array, axis=-1) < 0) or np.any(array[..., -1] <= array[..., 0]):
        fail(ValueError, name, "be sorted (non-decreasing, first < last) in every channel", array.tolist())
    return array.reshape(-1, _nyul.N_LANDMARKS)


@_NO_AUTOGRAPH
def nyul_standardize(images, landmarks, *, cutoff=NYUL_CUTOFF, mask=None, spatial_dims: int = 2) -> tf.Tensor:
    """Map each image piecewise-linearly from its own landmarks to `landmarks`: TorchIO's apply.

    Each image's landmarks (of its voxels inside `mask`, from its float32
    values, as TorchIO reads the image) but the quartiles 25 and 75 bound 10
    linear segments that map them onto the standard ones. Every voxel is
    mapped: below the low cutoff landmark by the first segment extended,
    above the high one by the last segment extended (no clipping). A segment
    whose image landmarks are less than 1e-5 apart has slope 0 (TorchIO's
    guard), so a constant image maps to the standard 90th-percentile landmark.
    Slopes, intercepts and `slope * x + intercept` are float64, rounded once
    to float32: the output equals TorchIO's bit for bit
    (tests/test_standardize.py). TorchIO pools the channels of a
    multi-channel image; this maps each channel with its own landmarks.

    Args:
        images: See the module docstring; float64 images are read as float32, as TorchIO does.
        landmarks: The standard landmarks (`nyul_fit`): 13, used for every
            channel, or `(C, 13)`. Where known at the call, they must be
            finite and sorted (non-decreasing, first < last).
        cutoff: The cutoff of the fit (TorchIO's apply always uses its default (0.01, 0.99)).
        mask: Optional: the voxels whose landmarks are computed (TorchIO's `masking_method`).
        spatial_dims: 2 (images) or 3 (volumes).

    Returns:
        float32, the input's shape.
    """
    cutoff = check_cutoff(cutoff)
    landmarks = check_landmarks(landmarks)
    x, layout = _quantiles.as_nvc(images, spatial_dims)
    rows = landmarks.shape[0] if len(landmarks.shape) == 2 else 1
    if rows not in (1, None, x.shape[-1]):
        fail(ValueError, "landmarks.shape", f"be (13,) or ({x.shape[-1]}, 13) for these images", landmarks.shape)
    landmarks = tf.reshape(tf.cast(landmarks, tf.float64), [-1, _nyul.N_LANDMARKS])
    mask = _quantiles.prepare_mask(mask, x, layout)
    return _quantiles.from_nvc(_nyul.apply(x, mask, landmarks, cutoff), layout)
