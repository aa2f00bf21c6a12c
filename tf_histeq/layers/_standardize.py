"""Intensity standardization as Keras 3 layers: Nyúl–Udupa, percentile scaling, CT windows, 2-D and 3-D.

Thin wrappers around the ops of `tf_histeq.standardize`, which document the
algorithms and their parity with TorchIO and MONAI:

- `NyulStandardization` (`nyul_standardize`): the standard landmarks are given
  or learned with `adapt(data)`, held as non-trainable float64 weights
  (`standard_landmarks`, `(C, 13)`), so `.keras` files and `model.export`
  keep them. `adapt` streams: each batch's per-image landmarks are reduced at
  once to per-channel running sums (`tf_histeq._nyul.FitSums`, `(C, 13)`
  floats), as TorchIO's `train` averages them, so a dataset of any length is
  fitted in one pass holding one batch at a time.
- `PercentileScaling` (`scale_intensity_percentiles`, MONAI's
  `ScaleIntensityRangePercentiles`): the percentiles of each image, computed
  in the graph at every call; no state and no `adapt` (see its docstring).
- `CTWindows` (`window`): fixed windows, several stacked as output channels.

Each has a 3-D twin (`NyulStandardization3D`, `PercentileScaling3D`,
`CTWindows3D`) that takes batches of volumes `(N, D, H, W, C)` only, as
Keras's `Conv3D` does, and computes per volume. The output is float: the
layer's compute dtype (float32 by default). Every image is mapped the same
way in training and inference; the XLA policy is the other layers' (see
`tf_histeq.layers`), except that `jit_compile="auto"` leaves Nyúl and
percentile scaling of float64 inputs (a float64 dtype policy) uncompiled:
their exact percentiles need a sort, which XLA's CPU sort runs about 5x
slower than TensorFlow's (measured on a 128x256x256 volume: 14.8 s compiled,
2.7 s not). Integer and float32 inputs use histograms (a radix selection for
float32) and compile.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tf_histeq import _nyul, _xla, standardize
from tf_histeq._options import fail
from tf_histeq.layers._base import Equalizer, check_layout

# Each kernel runs in a name scope of its op's name: tf_histeq.deploy finds the ops by it.


def _nyul_kernel(images, mask=None, *, landmarks, cutoff, spatial_dims):
    with tf.name_scope("nyul_standardize"):
        return standardize.nyul_standardize(images, landmarks, cutoff=cutoff, mask=mask, spatial_dims=spatial_dims)


def _landmarks_kernel(images, mask=None, *, cutoff, spatial_dims):
    return standardize.nyul_landmarks(images, cutoff=cutoff, mask=mask, spatial_dims=spatial_dims)


def _percentiles_kernel(images, mask=None, **options):
    with tf.name_scope("scale_intensity_percentiles"):
        return standardize.scale_intensity_percentiles(images, mask=mask, **options)


def _window_kernel(images, mask=None, **options):
    del mask  # windows map every voxel alike
    with tf.name_scope("window"):
        return standardize.window(images, **options)


class _Standardizer(Equalizer):
    """Shared plumbing: options as config, the XLA runner, the output spec, the volumes check."""

    _SPATIAL_DIMS = 2
    _KERNEL: Any = None  # a staticmethod of the kernel
    # Whether the op sorts float64 inputs (their exact percentiles), which XLA does not speed up.
    _SORTS = True

    def _setup(self, options: dict, jit_compile, *, config_only=()) -> None:
        """Store the checked `options` (config; the kernel's keywords but `config_only`) and the runner."""
        self._op_kwargs = dict(options)
        for name, value in options.items():
            setattr(self, name, value)
        self.jit_compile = _xla.check_jit_compile(jit_compile)
        kernel_options = {key: _frozen(value) for key, value in options.items() if key not in config_only}
        self._kernel_options = {**kernel_options, "spatial_dims": self._SPATIAL_DIMS}
        self._runner = _xla.JitRunner(type(self)._KERNEL, self._kernel_options, self.jit_compile, self.compute_dtype)

    def _check_exact_output(self, input_dtype) -> None:
        """Nothing to check: the outputs are float, not levels."""

    def _check_rank(self, shape) -> None:
        check_layout(self, shape, self._SPATIAL_DIMS)

    def build(self, input_shape):
        """Check the input's rank (3-D layers: 5-D input only)."""
        self._check_rank(input_shape)

    def call(self, images, mask=None, training=None):
        self._check_rank(images.shape)
        if self._SORTS and self.jit_compile == "auto" and images.dtype == tf.float64:
            # Exact percentiles of float64 images need a sort, which XLA's CPU sort runs about 5x
            # slower than TensorFlow's: "auto" leaves it uncompiled.
            return tf.cast(self._apply(images, mask), self.compute_dtype)
        return super().call(images, mask=mask, training=training)

    def _apply(self, images, mask):
        return type(self)._KERNEL(images, mask, **self._kernel_options, **self._call_tensors())

    def compute_output_spec(self, images, mask=None, training=None):
        """Check the symbolic inputs by tracing the op, and return its output's shape in the compute dtype."""
        self._check_rank(images.shape)
        image_spec = tf.TensorSpec(images.shape, images.dtype)
        mask_spec = None if mask is None else tf.TensorSpec(mask.shape, mask.dtype)
        traced = tf.function(self._apply, autograph=False).get_concrete_function(image_spec, mask_spec)
        return keras.KerasTensor(tuple(traced.structured_outputs.shape), dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape, mask_shape=None):
        """Return the input shape (`CTWindows` with several windows: one channel per window)."""
        return tuple(input_shape)


def _frozen(value):
    """`value` with lists as tuples (hashable: the runner shares one compiled function per configuration)."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _listed(value):
    """`value` with tuples and arrays as lists, NumPy scalars as Python numbers (a JSON config)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_listed(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _batches(data) -> Iterable:
    """The image batches of `adapt`'s `data`: one array, a list/iterable of arrays, a dataset of `(images, ...)`."""
    if isinstance(data, (np.ndarray, tf.Tensor)):
        return [data]
    if isinstance(data, tf.data.Dataset):
        return (element[0] if isinstance(element, (tuple, list)) else element for element in data)
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes, dict)):
        return data
    fail(
        TypeError,
        "data",
        "be an array or tensor of images, a batched tf.data.Dataset, or an iterable of arrays",
        type(data).__name__,
    )
    return []


@keras.saving.register_keras_serializable(package="tf_histeq")
class NyulStandardization(_Standardizer):
    """Nyúl–Udupa histogram standardization (TorchIO's `HistogramStandardization`), as a Keras layer.

    Each image's (and channel's) own landmarks are mapped piecewise-linearly
    onto standard landmarks (`tf_histeq.standardize.nyul_standardize`, equal
    to TorchIO's apply bit for bit). The standard landmarks are given, or
    learned with `adapt(data)` as TorchIO's `train` learns them
    (`tf_histeq.standardize.nyul_fit`), and held in the non-trainable float64
    weight `standard_landmarks` `(C, 13)`, which `.keras` files and
    `model.export` keep. The same mapping runs in training and inference.

    Args:
        landmarks: Optional standard landmarks: 13 numbers (every channel) or
            `(C, 13)`, finite, non-decreasing, first < last. None: learn them
            with `adapt`.
        cutoff: `(low, high)` quantiles of the first and last landmark
            (TorchIO's `(0.01, 0.99)` by default).
        output_range: The standard range `(s1, s2)` that `adapt` maps each
            image's cutoff landmarks onto before averaging (TorchIO's `(0, 100)`).
        jit_compile: `"auto"`, True or False, as in `HistogramEqualization`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        images: `(H, W, C)` or `(N, H, W, C)`, uint8, uint16, int16 or float.
        mask: Optional: the pixels whose landmarks are computed (every pixel is mapped).

    Example:
        >>> import numpy as np
        >>> from tf_histeq.layers import NyulStandardization
        >>> layer = NyulStandardization()
        >>> layer.adapt(np.arange(2 * 10 * 10, dtype=np.uint8).reshape(2, 10, 10, 1))
        >>> tuple(layer.standard_landmarks.shape)
        (1, 13)
    """

    _KERNEL = staticmethod(_nyul_kernel)

    def __init__(
        self,
        landmarks=None,
        *,
        cutoff=standardize.NYUL_CUTOFF,
        output_range=standardize.NYUL_OUTPUT_RANGE,
        jit_compile=_xla.JIT_COMPILE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        options = {
            "cutoff": standardize.check_cutoff(cutoff),
            "output_range": standardize.check_output_range(output_range),
        }
        self._setup(options, jit_compile, config_only=("output_range",))
        self._landmarks_runner = _xla.JitRunner(
            _landmarks_kernel, {"cutoff": options["cutoff"], "spatial_dims": self._SPATIAL_DIMS}, self.jit_compile
        )
        self.standard_landmarks = None
        if landmarks is not None:
            self._set_landmarks(standardize.check_landmarks(landmarks))

    def adapt(self, data, *, mask=None) -> None:
        """Learn the standard landmarks of `data`, in one pass, as TorchIO's `train` does.

        Follows `keras.layers.Normalization.adapt`: call it before the layer is
        used; a second call learns afresh (the channels must match). Each
        batch's per-image landmarks are added to per-channel running sums at
        once, so memory holds one batch: a dataset larger than memory fits.

        Args:
            data: A NumPy array or tensor (one image or a batch, in the
                layer's layout), a batched `tf.data.Dataset` of images or of
                `(images, ...)` tuples, or any iterable of arrays (sizes may differ).
            mask: Optional mask applied to every image: only its voxels are counted.

        Raises:
            TypeError: If `data` is of an unsupported type or dtype.
            ValueError: If `data` holds no image, an image's counted voxels are
                constant, the channel counts differ, or they differ from the
                layer's landmarks.
        """
        sums = _nyul.FitSums(self.output_range)
        for item, images in enumerate(_batches(data)):
            landmarks = self._landmarks_runner(tf.convert_to_tensor(images), mask)
            sums.add(np.asarray(landmarks), name="data", item=item)
        if sums.count == 0:
            fail(ValueError, "data", "hold at least one image", "an empty dataset or iterable")
        self._set_landmarks(sums.result())

    def _set_landmarks(self, landmarks: np.ndarray) -> None:
        if self.standard_landmarks is None:
            self._create_landmarks(landmarks.shape)
        elif tuple(self.standard_landmarks.shape) != landmarks.shape:
            fail(
                ValueError,
                "landmarks.shape",
                f"be {tuple(self.standard_landmarks.shape)}, the shape of the layer's landmarks (channels, 13)",
                landmarks.shape,
                hint="create a new layer for images of other channels.",
            )
        self.standard_landmarks.assign(landmarks)

    def _create_landmarks(self, shape) -> None:
        self.standard_landmarks = self._add_exact_weight("standard_landmarks", tuple(shape), "float64")

    def build(self, input_shape):
        """Refuse to build without landmarks (given, adapted, or loaded)."""
        super().build(input_shape)
        if self.standard_landmarks is None:
            fail(
                ValueError,
                "landmarks",
                f"be given ({type(self).__name__}(landmarks=...)) or learned (layer.adapt(data)) before the layer "
                "is used",
                None,
            )

    def get_build_config(self):
        """Return the build config, with the landmarks' shape (their values are weights)."""
        config = super().get_build_config() or {}
        if self.standard_landmarks is not None:
            config["landmarks_shape"] = list(self.standard_landmarks.shape)
        return config or None

    def build_from_config(self, config):
        """Create the landmark weights that `get_build_config` describes, then build."""
        shape = config.get("landmarks_shape")
        if shape is not None and self.standard_landmarks is None:
            self._create_landmarks(shape)
        super().build_from_config({key: value for key, value in config.items() if key != "landmarks_shape"})

    def _call_tensors(self) -> dict:
        return {"landmarks": tf.convert_to_tensor(self.standard_landmarks)}


@keras.saving.register_keras_serializable(package="tf_histeq")
class PercentileScaling(_Standardizer):
    """Map each image's `[lower, upper]` percentiles onto `[b_min, b_max]`: MONAI's `ScaleIntensityRangePercentiles`.

    Thin wrapper around `tf_histeq.standardize.scale_intensity_percentiles`
    (equal to MONAI's output, see there): the percentiles are each image's
    own, computed at every call in training and inference alike. No `adapt`:
    MONAI's semantics are per image, and a scaling fixed by a dataset's
    percentiles is a fixed range, `CTWindows` or
    `tf_histeq.standardize.scale_intensity_range` with the dataset's values.

    Args:
        lower: Lower percentile, in [0, 100].
        upper: Upper percentile, in (lower, 100].
        b_min: Output of the lower percentile, or None.
        b_max: Output of the upper percentile, or None.
        clip: Clip the output to `[b_min, b_max]`.
        relative: Map to the output range's own percentiles.
        channel_wise: Percentiles of each channel rather than of the whole image.
        jit_compile: `"auto"`, True or False, as in `HistogramEqualization`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        images: `(H, W, C)` or `(N, H, W, C)`.
        mask: Optional: the pixels whose percentiles are computed (every pixel is mapped).
    """

    _KERNEL = staticmethod(_percentiles_kernel)

    def __init__(
        self,
        lower=1.0,
        upper=99.0,
        b_min=0.0,
        b_max=1.0,
        *,
        clip=False,
        relative=False,
        channel_wise=False,
        jit_compile=_xla.JIT_COMPILE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        lower, upper = standardize.check_percentile_bounds(lower, upper)
        # The op checks the rest: one eager call on a tiny image runs those checks now.
        options = {
            "lower": lower,
            "upper": upper,
            "b_min": b_min,
            "b_max": b_max,
            "clip": clip,
            "relative": relative,
            "channel_wise": channel_wise,
        }
        standardize.scale_intensity_percentiles(np.zeros((1, 2), np.float32), **options)
        options["b_min"] = None if b_min is None else float(b_min)
        options["b_max"] = None if b_max is None else float(b_max)
        options["clip"], options["relative"], options["channel_wise"] = bool(clip), bool(relative), bool(channel_wise)
        self._setup(options, jit_compile)


@keras.saving.register_keras_serializable(package="tf_histeq")
class CTWindows(_Standardizer):
    """CT windowing (MONAI's `ScaleIntensityRange` from `level ± width / 2`), several windows stacked as channels.

    Thin wrapper around `tf_histeq.standardize.window`, equal to MONAI's
    output: fixed windows, no state.

    Args:
        windows: A name of `tf_histeq.standardize.WINDOWS` or a `(level,
            width)` pair: the output has the input's shape. Or a list of them:
            K windows stacked as K output channels, for one-channel input.
        b_min: Output of `level - width / 2`.
        b_max: Output of `level + width / 2`.
        clip: Clip the output to `[b_min, b_max]`.
        jit_compile: `"auto"`, True or False, as in `HistogramEqualization`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        images: `(H, W, 1)` or `(N, H, W, 1)` in Hounsfield units (int16 or float).

    Example:
        >>> import numpy as np
        >>> from tf_histeq.layers import CTWindows
        >>> CTWindows(["lung", "bone"])(np.zeros((1, 4, 4, 1), np.int16)).shape
        TensorShape([1, 4, 4, 2])
    """

    _KERNEL = staticmethod(_window_kernel)
    _SORTS = False

    def __init__(
        self,
        windows=("brain", "subdural", "bone"),
        *,
        b_min=0.0,
        b_max=1.0,
        clip=True,
        jit_compile=_xla.JIT_COMPILE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        standardize.check_windows(windows)
        standardize.window(np.zeros((1, 1), np.float32), windows, b_min=b_min, b_max=b_max, clip=clip)
        windows = _listed(windows)
        self._setup({"windows": windows, "b_min": float(b_min), "b_max": float(b_max), "clip": bool(clip)}, jit_compile)

    def compute_output_shape(self, input_shape, mask_shape=None):
        """Return the input shape, with one channel per window where several are stacked."""
        _, stacked = standardize.check_windows(self.windows)
        if not stacked:
            return tuple(input_shape)
        return (*tuple(input_shape)[:-1], len(self.windows))


class _Volumes:
    """The 3-D twin of a 2-D layer: `spatial_dims=3`, `(N, D, H, W, C)` input only."""

    _SPATIAL_DIMS = 3


@keras.saving.register_keras_serializable(package="tf_histeq")
class NyulStandardization3D(_Volumes, NyulStandardization):
    """`NyulStandardization` for batches of volumes `(N, D, H, W, C)`: landmarks per volume and channel.

    The arguments, `adapt` and state are `NyulStandardization`'s; `adapt`
    takes volumes `(N, D, H, W, C)` (or one `(D, H, W, C)`), and a mask `(D, H, W)`.
    """


@keras.saving.register_keras_serializable(package="tf_histeq")
class PercentileScaling3D(_Volumes, PercentileScaling):
    """`PercentileScaling` for batches of volumes `(N, D, H, W, C)`: percentiles per volume."""


@keras.saving.register_keras_serializable(package="tf_histeq")
class CTWindows3D(_Volumes, CTWindows):
    """`CTWindows` for batches of volumes `(N, D, H, W, 1)`."""
