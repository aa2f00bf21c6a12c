"""`AdaptiveEqualization` and `AdaptiveEqualization3D`: scikit-image's `equalize_adapthist` as Keras 3 layers."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_histeq import _options, _xla
from tf_histeq._options import fail
from tf_histeq.layers._base import Equalizer


class _Adaptive(Equalizer):
    """The shared body: `tf_histeq.equalize_adapthist` on `(N, *spatial, C)` batches of one spatial rank."""

    _OP = "equalize_adapthist"
    _SPATIAL_DIMS: int
    _LAYOUT: str
    # The base's checks of value levels read these; this op has none to set (scikit-image's
    # `img_as_uint` reads the values), and its output lies in [0, 1], which every float dtype holds.
    value_range = None
    bins = None

    def _check_rank(self, shape) -> None:
        rank = len(shape) if shape is not None else None
        if rank != self._SPATIAL_DIMS + 2:
            hint = None
            if self._SPATIAL_DIMS == 2 and rank == 5:
                hint = "a batch of volumes (N, D, H, W, C): use tf_histeq.layers.AdaptiveEqualization3D"
            elif self._SPATIAL_DIMS == 3 and rank in (3, 4):
                hint = "add the batch and channel axes (`volume[None, ..., None]` for one (D, H, W) volume)"
            fail(ValueError, "images.shape", f"be {self._LAYOUT} for {type(self).__name__}", shape, hint=hint)

    def _check_exact_output(self, input_dtype: tf.DType) -> None:
        """Nothing to refuse: the values lie in [0, 1], rounded to the compute dtype."""

    def call(self, images, mask=None, training=None):
        if mask is not None:
            fail(TypeError, "mask", f"be None: {type(self).__name__} takes no mask", type(mask).__name__)
        self._check_rank(tuple(images.shape))
        return super().call(images, training=training)

    def compute_output_spec(self, images, mask=None, training=None):
        """Check the symbolic input's rank, then trace the op as the base does."""
        self._check_rank(tuple(images.shape))
        return super().compute_output_spec(images, training=training)

    def _apply(self, images, mask):
        return self._function(images, **self._op_kwargs)  # the op takes no mask


@keras.saving.register_keras_serializable(package="tf_histeq")
class AdaptiveEqualization(_Adaptive):
    """scikit-image's adaptive histogram equalization of 2-D images, as a Keras layer.

    Thin wrapper around `tf_histeq.equalize_adapthist` (`spatial_dims=2`),
    which documents the algorithm and its parity with
    `skimage.exposure.equalize_adapthist`. Tiles and histograms are per image
    and channel, never pooled over the batch; the layer applies in training
    and in inference alike. No mask: scikit-image's algorithm has none.

    Output dtype: the layer's `compute_dtype`. With `dtype="float64"` the
    output is scikit-image's value exactly (float64 for integer and float
    inputs: Keras casts float inputs to float64). With the default float32,
    integer inputs give scikit-image's float64 values rounded to float32, and
    float inputs (cast to float32 by Keras) scikit-image's float32 result
    exactly. Under `mixed_float16` the values are rounded to float16, and
    float inputs, which arrive as float16, are refused by the op (a dtype
    scikit-image cannot read exactly): give the layer `dtype="float32"`.

    Args:
        kernel_size: The tile size in pixels: None (`max(s // 8, 1)` per
            axis), an int, or `(rows, cols)`.
        clip_limit: A fraction in `[0, 1]` of a tile's pixels; 0 disables clipping.
        nbins: Number of histogram bins.
        channels: `"per_channel"` or `"hsv_value"` (RGB images, scikit-image's mode).
        alpha: `"auto"`, True or False, as in `tf_histeq.equalize_adapthist`.
        jit_compile: `"auto"`, True or False, as in `tf_histeq.layers.CLAHE`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        images: `(N, H, W, C)`, channels last, of a dtype
            `tf_histeq.equalize_adapthist` accepts; H, W and C known when the
            model is built (the tiling depends on them). Float values in `[-1, 1]`.
        training: Ignored by the result.

    Input shape:
        `(N, H, W, C)`.

    Output shape:
        Same as the input, in the layer's `compute_dtype`, values in `[0, 1]`.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If an argument has a bad value; when built or called, if
            the input is not 4-D.

    Example:
        >>> import numpy as np
        >>> from tf_histeq.layers import AdaptiveEqualization
        >>> ramp = np.tile(np.arange(8, dtype=np.uint8), (8, 1))[None, :, :, None]  # (1, 8, 8, 1)
        >>> AdaptiveEqualization(kernel_size=8, clip_limit=0, dtype="float64")(ramp).numpy()[0, 0, :4, 0]
        array([0.        , 0.14285714, 0.28571429, 0.42857143])
    """

    _SPATIAL_DIMS = 2
    _LAYOUT = "4-D (N, H, W, C)"

    def __init__(
        self,
        *,
        kernel_size=_options.KERNEL_SIZE,
        clip_limit=_options.ADAPTHIST_CLIP_LIMIT,
        nbins=_options.NBINS,
        channels=_options.CHANNEL_MODE,
        alpha=_options.ALPHA,
        jit_compile=_xla.JIT_COMPILE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        options = _options.arguments(self._OP, locals())
        self._configure(jit_compile=jit_compile, spatial_dims=self._SPATIAL_DIMS, **options)


@keras.saving.register_keras_serializable(package="tf_histeq")
class AdaptiveEqualization3D(AdaptiveEqualization):
    """scikit-image's adaptive histogram equalization of volumes, as a Keras layer (like `Conv3D`: 5-D input).

    Thin wrapper around `tf_histeq.equalize_adapthist` with `spatial_dims=3`:
    every volume and channel of an `(N, D, H, W, C)` batch equals
    `skimage.exposure.equalize_adapthist` on that `(D, H, W)` volume alone.
    Output dtype, masks and everything else as in `AdaptiveEqualization`.

    Args:
        kernel_size: The tile size in voxels: None (`max(s // 8, 1)` per
            axis), an int, or `(depth, rows, cols)`.
        clip_limit: A fraction in `[0, 1]` of a tile's voxels; 0 disables clipping.
        nbins: Number of histogram bins.
        channels: `"per_channel"` (`"hsv_value"` is for 2-D RGB images and is refused here).
        alpha: `"auto"`, True or False, as in `tf_histeq.equalize_adapthist`.
        jit_compile: `"auto"`, True or False, as in `tf_histeq.layers.CLAHE`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        images: `(N, D, H, W, C)`, channels last; D, H, W and C known when
            the model is built.
        training: Ignored by the result.

    Input shape:
        `(N, D, H, W, C)`.

    Output shape:
        Same as the input, in the layer's `compute_dtype`, values in `[0, 1]`.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If an argument has a bad value; when built or called, if
            the input is not 5-D.

    Example:
        >>> import numpy as np
        >>> from tf_histeq.layers import AdaptiveEqualization3D
        >>> volume = np.arange(64, dtype=np.uint16).reshape(1, 4, 4, 4, 1)
        >>> AdaptiveEqualization3D(kernel_size=4, clip_limit=0, dtype="float64")(volume).shape
        TensorShape([1, 4, 4, 4, 1])
    """

    _SPATIAL_DIMS = 3  # AdaptiveEqualization's __init__ passes it on
    _LAYOUT = "5-D (N, D, H, W, C)"
