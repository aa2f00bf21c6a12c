"""`HistogramEqualization` and `CLAHE`: the two ops as Keras 3 layers."""

from __future__ import annotations

import keras

from tf_histeq import _options, _xla
from tf_histeq.layers._base import Equalizer


@keras.saving.register_keras_serializable(package="tf_histeq")
class HistogramEqualization(Equalizer):
    """Equalize the histogram of every channel of every image, as a Keras layer.

    Thin wrapper around `tf_histeq.equalize_hist`, which documents the formulas
    and their parity with `cv2.equalizeHist` and `PIL.ImageOps.equalize`. One
    histogram per image and channel (never pooled over the batch), applied in
    training and in inference alike. See the module docstring for dtypes, masks
    and backends.

    Args:
        value_range: `(low, high)` of the pixel values. Defaults: uint8
            `(0, 255)`, uint16 `(0, 65535)`, int16 `(-32768, 32767)`, float
            `(0, 255)` (the Keras convention). Values outside it are clipped.
        bins: Number of histogram bins; defaults as in `tf_histeq.equalize_hist`
            (one per level of the input dtype, 256 for floats).
        method: `"opencv"` (`cv2.equalizeHist`) or `"pil"` (`PIL.ImageOps.equalize`).
        channels: `"per_channel"`, `"joint"`, or `"luminance"` / `"lab"` (RGB:
            OpenCV's YCrCb / Lab round trip on 8-bit levels; see
            `tf_histeq.equalize_hist`).
        alpha: `"auto"` (the last of 2 or 4 channels is alpha and passes
            through), True (the last channel is alpha) or False (no alpha).
        jit_compile: `"auto"` (compile the op with XLA for the shapes that
            repeat, in `fit`, `evaluate`, `predict` and eager calls), True
            (compile every call) or False (never); see the module docstring.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        images: `(H, W, C)` or `(N, H, W, C)`, channels last; any dtype that
            `tf_histeq.equalize_hist` accepts.
        mask: Optional histogram mask of shape `(H, W)`, `(N, H, W)`, or either
            with a trailing 1. Defaults to the input's Keras mask, if any.
        training: Ignored by the result; passed by Keras in `fit`,
            `evaluate` and `predict`, where `jit_compile="auto"` compiles.

    Input shape:
        `(H, W, C)` or `(N, H, W, C)`; H and W may be unknown (`None`).

    Output shape:
        Same as the input, in the layer's `compute_dtype`.

    Raises:
        TypeError: If an argument has the wrong type (`jit_compile` included).
        ValueError: If an argument has a bad value, or `value_range` and `bins`
            do not fit the compute dtype (e.g. `bins > 2048` under float16); when
            called, if the compute dtype cannot hold the outputs exactly (uint16
            images under `mixed_float16`).

    Example:
        >>> import numpy as np
        >>> from tf_histeq.layers import HistogramEqualization
        >>> images = np.array([[[[0], [1], [2], [2], [2], [2], [2]]]], np.uint8)  # (1, 1, 7, 1)
        >>> HistogramEqualization()(images).numpy()[0, 0, :, 0]  # level 1 -> 42.5 -> 42
        array([  0.,  42., 255., 255., 255., 255., 255.], dtype=float32)

    In a model, from uint8 images:

    ```python
    inputs = keras.Input(shape=(None, None, 3), dtype="uint8")
    x = tf_histeq.layers.HistogramEqualization()(inputs)
    x = keras.layers.Rescaling(1 / 255)(x)
    ```
    """

    _OP = "equalize_hist"

    def __init__(
        self,
        *,
        value_range=None,
        bins=None,
        method=_options.METHOD,
        channels=_options.CHANNEL_MODE,
        alpha=_options.ALPHA,
        jit_compile=_xla.JIT_COMPILE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # The function's own validators, run now: a bad config fails when the
        # model is built, not in the first batch. The keywords come from the
        # signature (held to the schema by tests/test_signatures.py).
        self._configure(jit_compile=jit_compile, **_options.arguments(self._OP, locals()))


@keras.saving.register_keras_serializable(package="tf_histeq")
class CLAHE(Equalizer):
    """Contrast Limited Adaptive Histogram Equalization, as a Keras layer.

    Thin wrapper around `tf_histeq.clahe`, which documents the algorithm and its
    parity with `cv2.createCLAHE`. Tile histograms are per image and channel,
    never pooled over the batch; the layer applies in training and in inference
    alike. See the module docstring for dtypes, masks and backends.

    Args:
        clip_limit: Contrast limit in OpenCV units; `<= 0` disables clipping.
        tile_grid_size: Number of tiles as `(rows, cols)` (OpenCV's
            `tileGridSize` is `(cols, rows)`).
        value_range: `(low, high)` of the pixel values; defaults as in
            `tf_histeq.clahe` (uint8 `(0, 255)`, uint16 `(0, 65535)`, int16
            `(-32768, 32767)`, float `(0, 255)`).
        bins: Number of histogram bins; defaults as in `tf_histeq.clahe`.
        channels: `"per_channel"`, `"luminance"` or `"lab"` (RGB: OpenCV's
            YCrCb / Lab round trip on 8-bit levels; see `tf_histeq.clahe`).
        alpha: `"auto"` (the last of 2 or 4 channels is alpha and passes
            through), True (the last channel is alpha) or False (no alpha).
        jit_compile: `"auto"`, True or False, as in `HistogramEqualization`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        images: `(H, W, C)` or `(N, H, W, C)`, channels last; any dtype that
            `tf_histeq.clahe` accepts.
        mask: Optional histogram mask of shape `(H, W)`, `(N, H, W)`, or either
            with a trailing 1. Defaults to the input's Keras mask, if any.
        training: Ignored by the result; passed by Keras in `fit`,
            `evaluate` and `predict`, where `jit_compile="auto"` compiles.

    Input shape:
        `(H, W, C)` or `(N, H, W, C)`; H and W may be unknown (`None`).

    Output shape:
        Same as the input, in the layer's `compute_dtype`.

    Raises:
        TypeError: If an argument has the wrong type (`jit_compile` included).
        ValueError: If an argument has a bad value, or `value_range` and `bins`
            do not fit the compute dtype.

    Example:
        >>> import numpy as np
        >>> from tf_histeq.layers import CLAHE
        >>> ramp = np.tile(np.arange(100, 116, dtype=np.uint8), (16, 1))[None, :, :, None]  # 16 levels
        >>> CLAHE(clip_limit=0, tile_grid_size=(1, 1))(ramp).numpy()[0, 0, :4, 0]
        array([16., 32., 48., 64.], dtype=float32)

    In a model, from uint8 images:

    ```python
    inputs = keras.Input(shape=(None, None, 1), dtype="uint8")
    x = tf_histeq.layers.CLAHE(clip_limit=2.0, tile_grid_size=(8, 8))(inputs)
    ```
    """

    _OP = "clahe"

    def __init__(
        self,
        *,
        clip_limit=_options.CLIP_LIMIT,
        tile_grid_size=_options.TILE_GRID_SIZE,
        value_range=None,
        bins=None,
        channels=_options.CHANNEL_MODE,
        alpha=_options.ALPHA,
        jit_compile=_xla.JIT_COMPILE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._configure(jit_compile=jit_compile, **_options.arguments(self._OP, locals()))
