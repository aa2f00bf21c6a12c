"""Private kernels of Nyúl–Udupa histogram standardization, with TorchIO's definitions.

TorchIO's `HistogramStandardization` (torchio 1.2) is the reference:

- Landmarks: the percentiles `100 * cutoff` (default `(0.01, 0.99)`: 1 and 99),
  the quartiles 25, 50, 75 and the deciles 10, ..., 90, sorted, duplicates
  dropped: 13 percentiles, computed as `np.percentile` (linear) of the counted
  voxels (`tf_histeq._quantiles.order_statistics`).
- Training (`train`): each image's 13 landmarks `p` get the slope
  `(s2 - s1) / (p[12] - p[0])` onto the standard range `(s1, s2)` (default
  `(0, 100)`); the standard landmarks are the mean over the images of
  `slope * p`, plus the mean of the intercepts `s1 - slope * p[0]`. `FitSums`
  keeps the two sums and the count, so a dataset of any length is fitted in
  one pass with `(C, 13)` floats of state.
- Apply (`_normalize`): the image is read as float32, its landmarks are
  computed from its counted voxels, the quartile landmarks 25 and 75 are left
  out (11 remain), and every voxel (counted or not) is mapped by the linear
  segment of its interval: segment `j` for `p[j] <= x < p[j + 1]` (NumPy's
  `digitize` on the 9 inner landmarks), the first segment extended below
  `p[0]`, the last one above `p[10]` (values outside the cutoffs are
  extrapolated, not clipped). A segment whose image landmarks differ by less
  than `NYUL_EPSILON` gets slope 0 (TorchIO's `inf` denominator), so a
  constant image maps to the standard landmark of the 90th percentile. The
  slope and intercept are float64, `slope * x + intercept` is float64,
  rounded once to float32.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_histeq import _histogram, _quantiles
from tf_histeq._options import fail

# TorchIO's apply treats image landmarks closer than this as equal (slope 0).
NYUL_EPSILON = 1e-5
# The landmarks the apply uses, of the 13: all but the quartiles 25 and 75.
APPLY_LANDMARKS = (0, 1, 2, 4, 5, 6, 7, 8, 10, 11, 12)
N_LANDMARKS = 13


def percentiles(cutoff: tuple[float, float]) -> np.ndarray:
    """The 13 landmark percentiles of a (checked) cutoff, float64, as TorchIO lists them."""
    cut = (100 * np.array(cutoff, np.float64)).tolist()
    quartiles = [25, 50, 75]
    deciles = list(range(10, 100, 10))
    return np.array(sorted(set(cut + quartiles + deciles)), np.float64)


def fractions(cutoff: tuple[float, float]) -> np.ndarray:
    """The quantiles of the landmark percentiles as `np.percentile` computes them (`q / 100`)."""
    return np.true_divide(percentiles(cutoff), 100)


class FitSums:
    """The state of a streaming fit: per channel, the sums of `slope * p` and of the intercepts, and a count."""

    def __init__(self, output_range: tuple[float, float]):
        """Start an empty fit onto `output_range` (checked)."""
        self.low, self.high = output_range
        self.weighted: np.ndarray | None = None  # (C, 13)
        self.intercepts: np.ndarray | None = None  # (C,)
        self.count = 0

    def add(self, landmarks: np.ndarray, *, name: str, item: int) -> None:
        """Add the float64 `(N, C, 13)` landmarks of one batch (item `item` of the iterable)."""
        spread = landmarks[:, :, -1] - landmarks[:, :, 0]
        bad = np.argwhere(~(spread > 0))  # equal cutoff landmarks, or NaN (an empty mask)
        if bad.size:
            image, channel = bad[0].tolist()
            fail(
                ValueError,
                name,
                "hold images whose counted voxels are not constant: their two cutoff landmarks must differ",
                f"item {item}, image {image}, channel {channel} with landmarks {landmarks[image, channel].tolist()}",
                hint="TorchIO's train would give such an image an infinite slope (non-finite landmarks, or, for "
                "an all-zero image, every landmark scaled by (n - 1) / n): leave it out or mask its background.",
            )
        if self.weighted is not None and self.weighted.shape[0] != landmarks.shape[1]:
            fail(ValueError, name, f"hold images of one channel count ({self.weighted.shape[0]})", landmarks.shape[1])
        slopes = (self.high - self.low) / spread  # (N, C)
        weighted = np.einsum("nc,nck->ck", slopes, landmarks)
        intercepts = np.sum(self.low - slopes * landmarks[:, :, 0], axis=0)
        if self.weighted is None:
            self.weighted, self.intercepts = weighted, intercepts
        else:
            self.weighted = self.weighted + weighted
            self.intercepts = self.intercepts + intercepts
        self.count += landmarks.shape[0]

    def result(self) -> np.ndarray:
        """The standard landmarks, float64 `(C, 13)`."""
        return self.weighted / self.count + (self.intercepts / self.count)[:, None]


def apply(x: tf.Tensor, mask: tf.Tensor | None, landmarks: tf.Tensor, cutoff: tuple[float, float]) -> tf.Tensor:
    """TorchIO's apply on `(N, V, C)`: float32 `(N, V, C)`.

    Args:
        x: `(N, V, C)` images.
        mask: bool `(N or 1, V, 1)` or None: the voxels whose landmarks are computed.
        landmarks: float64 `(1 or C, 13)`, the standard landmarks.
        cutoff: The checked cutoff.
    """
    # TorchIO reads the image as float32. Integers are exact in float32 and their
    # neighbour differences too, so their landmarks come from the histograms, and
    # their output from a table of every level, looked up once per voxel.
    integer = x.dtype in _quantiles.INTEGER_LEVELS
    stats = x if integer else tf.cast(x, tf.float32)
    own = _quantiles.order_statistics(stats, mask, fractions(cutoff))  # (N, C, 13)
    use = list(APPLY_LANDMARKS)
    image = tf.gather(own, use, axis=-1)  # (N, C, 11)
    standard = tf.gather(tf.cast(landmarks, tf.float64), use, axis=-1)[None]  # (1, C or 1, 11)
    d_standard = standard[..., 1:] - standard[..., :-1]
    d_image = image[..., 1:] - image[..., :-1]
    d_image = tf.where(d_image < NYUL_EPSILON, tf.constant(np.inf, tf.float64), d_image)
    slope = d_standard / d_image  # (N, C, 10)
    zero = _quantiles.runtime_zero(image)
    intercept = standard[..., :-1] - _quantiles.rounded(slope * image[..., :-1], zero)
    if not integer:
        return _segments(tf.cast(tf.cast(x, tf.float32), tf.float64), image, slope, intercept, zero)
    levels, offset = _quantiles.INTEGER_LEVELS[x.dtype]
    every_level = tf.cast(tf.range(levels) + offset, tf.float64)[None, :, None]  # (1, L, 1)
    n_images, channels = tf.shape(x)[0], x.shape[-1]
    table = _segments(every_level, image, slope, intercept, zero)  # (N, L, C)
    table = tf.reshape(tf.transpose(table, [0, 2, 1]), [n_images * channels, levels])
    index = _quantiles.plane_rows(tf.cast(x, tf.int32) - offset, joint=False)  # (N * C, V)
    out = _histogram.gather_rows(_histogram.materialize(table), index)
    return tf.transpose(tf.reshape(out, [n_images, channels, -1]), [0, 2, 1])


def _segments(values, image, slope, intercept, zero) -> tf.Tensor:
    """float32 `slope * x + intercept` of the segment of each value: `(N or 1, V, C)` float64 values."""
    slope, intercept = slope[:, None], intercept[:, None]  # (N, 1, C, 10)
    s, c = slope[..., 0], intercept[..., 0]
    for j in range(1, len(APPLY_LANDMARKS) - 1):  # digitize: the last inner landmark <= x picks the segment
        above = values >= image[:, None, :, j]
        s = tf.where(above, slope[..., j], s)
        c = tf.where(above, intercept[..., j], c)
    return tf.cast(_quantiles.rounded(s * values, zero) + c, tf.float32)
