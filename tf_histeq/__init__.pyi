# Type stub of the lazy top-level package: `tf_histeq/__init__.py` loads these
# names on first use (so that `import tf_histeq` stays light); editors and type
# checkers read their signatures here. tests/test_typing.py holds every signature
# below to the real function's (names, kinds and defaults), and tests/test_signatures.py
# the ops' to the schema in `tf_histeq._options`, so they cannot drift.
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from tf_histeq._reference import Histogram as Histogram
from tf_histeq._xla import CompiledShapes

__version__: str
__all__: list[str]

Images: TypeAlias = npt.ArrayLike | tf.Tensor
Mask: TypeAlias = npt.ArrayLike | tf.Tensor | None
ValueRange: TypeAlias = tuple[float, float] | list[float] | None
Alpha: TypeAlias = Literal["auto"] | bool
JitCompile: TypeAlias = Literal["auto"] | bool
SpatialDims: TypeAlias = Literal[2, 3]

def equalize_hist(
    images: Images,
    *,
    value_range: ValueRange = None,
    bins: int | None = None,
    method: Literal["opencv", "pil"] = "opencv",
    channels: Literal["per_channel", "luminance", "joint", "lab"] = "per_channel",
    alpha: Alpha = "auto",
    mask: Mask = None,
    spatial_dims: SpatialDims = 2,
    jit_compile: JitCompile = "auto",
) -> tf.Tensor: ...
def clahe(
    images: Images,
    *,
    clip_limit: float | npt.NDArray[np.floating[Any]] | tf.Tensor = 2.0,
    tile_grid_size: tuple[int, int] | list[int] = (8, 8),
    value_range: ValueRange = None,
    bins: int | None = None,
    channels: Literal["per_channel", "luminance", "lab"] = "per_channel",
    alpha: Alpha = "auto",
    mask: Mask = None,
    jit_compile: JitCompile = "auto",
) -> tf.Tensor: ...
def match_histograms(
    images: Images,
    reference: Images | Histogram,
    *,
    value_range: ValueRange = None,
    bins: int | None = None,
    channels: Literal["per_channel", "joint"] = "per_channel",
    alpha: Alpha = "auto",
    mask: Mask = None,
    reference_mask: Mask = None,
    spatial_dims: SpatialDims = 2,
    jit_compile: JitCompile = "auto",
) -> tf.Tensor: ...
def reference_histogram(
    data: Images | tf.data.Dataset | Iterable[npt.ArrayLike],
    *,
    value_range: ValueRange = None,
    bins: int | None = None,
    alpha: Alpha = "auto",
    mask: Mask = None,
    spatial_dims: SpatialDims = 2,
) -> Histogram: ...
def histogram_equalization(
    image: npt.ArrayLike,
    *,
    value_range: ValueRange = None,
    bins: int | None = None,
    method: Literal["opencv", "pil"] = "opencv",
    channels: Literal["per_channel", "luminance", "joint", "lab"] = "per_channel",
    alpha: Alpha = "auto",
    mask: npt.ArrayLike | None = None,
    spatial_dims: SpatialDims = 2,
    jit_compile: JitCompile = "auto",
) -> np.ndarray: ...
def preprocessing_function(
    op: str = "equalize_hist", *, jit_compile: JitCompile = "auto", **kwargs: Any
) -> Callable[[np.ndarray], np.ndarray]: ...
def compiled_shapes() -> list[CompiledShapes]: ...
def clear_compiled() -> None: ...
