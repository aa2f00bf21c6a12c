"""The reference of `tf_histeq.match_histograms`: the public `Histogram` type and its checks, in NumPy.

`Histogram` is what `tf_histeq.reference_histogram` returns and what
`match_histograms`, its layer and the command line match to. The options
schema (`tf_histeq._options.resolve`) checks a `reference` here, and keeps an
array option (`reference`, `reference_mask`) as a `FrozenArray`, a read-only
copy that can key a cache; `unfreeze` gives the array back. Turning a
reference into counts for given images is TensorFlow's work
(`tf_histeq._reference_counts`); this module imports no TensorFlow.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from tf_histeq._options import MAX_BINS, check_value_range, fail


class FrozenArray:
    """A read-only copy of an array option, hashed by identity.

    Options dicts key the compiled-function caches of the NumPy API; a NumPy
    array is unhashable and could change under a cached graph, a frozen copy
    can do neither. NumPy and TensorFlow read it through `__array__`.
    """

    __slots__ = ("array",)

    def __init__(self, value: Any):
        import numpy as np  # here, so that the command line's --help stays light

        array = np.array(value)
        array.flags.writeable = False
        self.array = array

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)

    def __repr__(self) -> str:
        return f"<array shape={self.array.shape} dtype={self.array.dtype}>"


class Histogram:
    """Reference counts for `tf_histeq.match_histograms`: one row of `bins` counts per channel.

    A 1-D array of counts can be passed to `match_histograms` as it is; this
    type carries a per-channel `(C, bins)` histogram (a 2-D array would read as
    a gray image) and, when known, the `value_range` of the images it was
    counted on, which `match_histograms` checks against the images'.
    `tf_histeq.reference_histogram` returns one; histograms of the same shape
    and range add up (`sum(histograms)` pools them).

    Args:
        counts: `(bins,)` or `(C, bins)` non-negative finite numbers with a
            positive total in every row: pixel counts per level (`np.bincount`,
            `np.histogram`), or any target distribution. Copied.
        value_range: Optional `(low, high)` of the images the counts describe.

    Raises:
        TypeError: If `counts` is not an array of numbers or `value_range` not a pair.
        ValueError: If `counts` has a bad shape, negative or non-finite values,
            or an empty row.

    Example:
        >>> import numpy as np
        >>> from tf_histeq import Histogram
        >>> ramp = np.zeros(256)
        >>> ramp[100:110] = 1  # ten equally likely levels
        >>> pooled = sum([Histogram(ramp), Histogram(ramp)])
        >>> pooled.counts.shape, pooled.counts.sum(), pooled.channels, pooled.bins
        ((1, 256), np.float64(20.0), 1, 256)
    """

    __slots__ = ("_counts", "_value_range")

    def __init__(self, counts: Any, *, value_range: Any = None):
        self._counts = check_counts(counts)
        self._value_range = check_value_range(value_range)

    @property
    def counts(self):
        """The counts, a read-only float64 array of shape `(C, bins)`."""
        return self._counts

    @property
    def value_range(self) -> tuple[float, float] | None:
        """`(low, high)` of the images the counts describe, or None."""
        return self._value_range

    @property
    def channels(self) -> int:
        """Number of rows (channels)."""
        return self._counts.shape[0]

    @property
    def bins(self) -> int:
        """Number of levels."""
        return self._counts.shape[1]

    def __add__(self, other: Histogram) -> Histogram:
        if not isinstance(other, Histogram):
            return NotImplemented
        if other.counts.shape != self.counts.shape or other.value_range != self.value_range:
            fail(
                ValueError,
                "other",
                f"have the shape {self.counts.shape} and value_range {self.value_range} of the histogram it joins",
                other,
            )
        return Histogram(self.counts + other.counts, value_range=self.value_range)

    def __radd__(self, other: Any) -> Histogram:
        if isinstance(other, numbers.Number) and other == 0:  # `sum()` starts from 0
            return self
        return self.__add__(other)

    def __repr__(self) -> str:
        return f"Histogram(channels={self.channels}, bins={self.bins}, value_range={self.value_range})"


def check_counts(value: Any, *, name: str = "counts"):
    """Return `value` as a read-only float64 `(C, bins)` array of valid histogram counts."""
    import numpy as np

    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        fail(TypeError, f"{name}.dtype", "be a number type (counts per level)", str(array.dtype))
    if array.ndim not in (1, 2) or array.shape[-1] < 2 or array.shape[-1] > MAX_BINS or array.size == 0:
        fail(ValueError, f"{name}.shape", f"be (bins,) or (C, bins) with 2 <= bins <= {MAX_BINS}", array.shape)
    counts = np.array(array, dtype=np.float64, ndmin=2)
    if np.isnan(counts).any() or (counts < 0).any():
        fail(ValueError, f"{name}.min()", "be a number >= 0 (counts cannot be negative or NaN)", float(counts.min()))
    if np.isinf(counts).any():
        fail(ValueError, f"{name}.max()", "be finite", float(counts.max()))
    totals = counts.sum(axis=-1)
    if not (totals > 0).all():
        fail(
            ValueError,
            f"{name}.sum(axis=-1)",
            "be positive in every row (an empty histogram has nothing to match)",
            totals.tolist(),
        )
    counts.flags.writeable = False
    return counts


def check_reference(value: Any, *, name: str = "reference") -> Any:
    """Return the `reference` option as a `Histogram`, a `FrozenArray`, a symbolic tensor, or None.

    Only the kind of object is checked here; `match_histograms` checks the
    shape, dtype and values against the images.
    """
    if value is None or isinstance(value, (Histogram, FrozenArray)):
        return value
    if isinstance(value, (str, bytes, Mapping)):
        fail(TypeError, name, "be an image, a (bins,) array of counts or a tf_histeq.Histogram", type(value).__name__)
    try:
        return FrozenArray(value)  # NumPy arrays, lists and eager tensors
    except (TypeError, ValueError, NotImplementedError):
        return value  # a symbolic tensor: checked when traced


def unfreeze(value: Any) -> Any:
    """The array of a `FrozenArray`; anything else unchanged."""
    return value.array if isinstance(value, FrozenArray) else value
