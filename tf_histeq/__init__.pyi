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
def equalize_adapthist(
    images: Images,
    *,
    kernel_size: int | tuple[int, ...] | list[int] | None = None,
    clip_limit: float = 0.01,
    nbins: int = 256,
    spatial_dims: Literal[2, 3] = 2,
    channels: Literal["per_channel", "hsv_value"] = "per_channel",
    alpha: Alpha = "auto",
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
def percentiles(
    images: Images, q: float | Iterable[float], *, mask: Mask = None, spatial_dims: int = 2
) -> tf.Tensor: ...
def scale_intensity_range(
    images: Images,
    *,
    a_min: float,
    a_max: float,
    b_min: float | None = None,
    b_max: float | None = None,
    clip: bool = False,
    spatial_dims: int = 2,
) -> tf.Tensor: ...
def window(
    images: Images,
    windows: str | tuple[float, float] | Iterable[str | tuple[float, float]],
    *,
    b_min: float = 0.0,
    b_max: float = 1.0,
    clip: bool = True,
    spatial_dims: int = 2,
) -> tf.Tensor: ...

WINDOWS: dict[str, tuple[float, float]]

def scale_intensity_percentiles(
    images: Images,
    *,
    lower: float,
    upper: float,
    b_min: float | None,
    b_max: float | None,
    clip: bool = False,
    relative: bool = False,
    channel_wise: bool = False,
    mask: Mask = None,
    spatial_dims: int = 2,
) -> tf.Tensor: ...
def nyul_landmarks(
    images: Images, *, cutoff: tuple[float, float] = (0.01, 0.99), mask: Mask = None, spatial_dims: int = 2
) -> tf.Tensor: ...
def nyul_fit(
    images_iterable: Iterable[Any],
    *,
    cutoff: tuple[float, float] = (0.01, 0.99),
    output_range: tuple[float, float] = (0.0, 100.0),
    mask: Mask = None,
    spatial_dims: int = 2,
) -> np.ndarray: ...
def nyul_standardize(
    images: Images,
    landmarks: npt.ArrayLike | tf.Tensor,
    *,
    cutoff: tuple[float, float] = (0.01, 0.99),
    mask: Mask = None,
    spatial_dims: int = 2,
) -> tf.Tensor: ...
def compiled_shapes() -> list[CompiledShapes]: ...
def clear_compiled() -> None: ...
