"""`HistogramMatching`: match every image to a reference histogram, as a Keras 3 layer."""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from tf_histeq import _convert, _options, _reference_counts, _xla, ops
from tf_histeq._options import fail
from tf_histeq._reference import Histogram
from tf_histeq.layers._base import Equalizer


@keras.saving.register_keras_serializable(package="tf_histeq")
class HistogramMatching(Equalizer):
    """Map every channel of every image so that its histogram matches a reference, as a Keras layer.

    Thin wrapper around `tf_histeq.match_histograms`, which documents the
    algorithm and its parity with `skimage.exposure.match_histograms`. The
    reference is given (an image, a 1-D array of counts or a
    `tf_histeq.Histogram`) or learned with `adapt(data)`, which pools the
    histograms of a whole dataset per channel, as `keras.layers.Normalization`
    learns its mean: matching to the adapted reference is matching to all the
    dataset's images side by side. It is held as non-trainable float64 weights
    (`reference_counts`, shape `(C, bins)`), so `model.save(".keras")` and
    `model.export(...)` keep it. Each image still gets its own mapping, from
    its own histogram, in training and in inference alike. See
    `tf_histeq.layers` for dtypes, masks and backends.

    Args:
        reference: Optional reference: an image `(H', W')`, `(H', W', C)` or
            batch `(N, H', W', C)` (counted with this layer's `value_range`,
            `bins` and `alpha` for its own dtype), a 1-D array of `bins` counts,
            or a `tf_histeq.Histogram`. Without it, call `adapt` before use.
        value_range: `(low, high)` of the pixel values; defaults as in
            `tf_histeq.match_histograms` (uint8 `(0, 255)`, uint16 `(0, 65535)`,
            int16 `(-32768, 32767)`, float `(0, 255)`).
        bins: Number of histogram bins; defaults as in `tf_histeq.match_histograms`.
        channels: `"per_channel"` or `"joint"` (one histogram over all channels).
        alpha: `"auto"` (the last of 2 or 4 channels is alpha and passes
            through), True (the last channel is alpha) or False (no alpha).
        reference_mask: Optional mask `(H', W')` of a reference image: only its
            pixels are counted.
        jit_compile: `"auto"`, True or False, as in `HistogramEqualization`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        images: `(H, W, C)` or `(N, H, W, C)`, channels last; any dtype that
            `tf_histeq.match_histograms` accepts, read with the reference's
            `value_range` and `bins`.
        mask: Optional histogram mask of shape `(H, W)`, `(N, H, W)`, or either
            with a trailing 1. Defaults to the input's Keras mask, if any.

    Input shape:
        `(H, W, C)` or `(N, H, W, C)`; H and W may be unknown (`None`).

    Output shape:
        Same as the input, in the layer's `compute_dtype`.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If an argument has a bad value, the reference does not fit
            the options, or the layer is used with no reference; when called, if
            the images do not fit the reference (bins, channels, value range).

    Example:
        >>> import numpy as np
        >>> from tf_histeq.layers import HistogramMatching
        >>> layer = HistogramMatching()
        >>> layer.adapt(np.array([[[[100], [200]]], [[[200], [250]]]], np.uint8))  # quantiles 0.25, 0.75, 1
        >>> images = np.array([[[[3], [4], [5], [6]]]], np.uint8)  # quantiles 0.25, 0.5, 0.75, 1
        >>> layer(images).numpy()[0, 0, :, 0]  # 0.5: halfway from 100 (0.25) to 200 (0.75)
        array([100., 150., 200., 250.], dtype=float32)

    In a model, standardizing uint8 scans to a training set's histogram:

    ```python
    matching = tf_histeq.layers.HistogramMatching()
    matching.adapt(train_images)  # (N, H, W, 1) uint8, or a batched tf.data.Dataset
    inputs = keras.Input(shape=(None, None, 1), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(matching(inputs))
    ```
    """

    _OP = "match_histograms"

    def __init__(
        self,
        reference=None,
        *,
        value_range=None,
        bins=None,
        channels=_options.CHANNEL_MODE,
        alpha=_options.ALPHA,
        reference_mask=None,
        jit_compile=_xla.JIT_COMPILE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        options = _options.arguments(self._OP, locals())
        del options["reference"], options["reference_mask"]  # state (weights, set below), not config
        self._configure(**options)
        self.jit_compile = _xla.check_jit_compile(jit_compile)
        self.reference_counts = None
        self._reference_range = None
        if reference is not None:
            self._set_reference(self._as_histogram(reference, reference_mask))
        elif reference_mask is not None:
            fail(ValueError, "reference_mask", "be None when no reference image is given", "a mask")

    def _configure(self, **options) -> None:
        # Equalizer._configure, but the reference is state (weights), not config.
        self._op_kwargs = _options.resolve(self._OP, options, exclude=("mask", "reference", "reference_mask"))
        for name, value in self._op_kwargs.items():
            setattr(self, name, value)
        compute_dtype = tf.as_dtype(self.compute_dtype)
        if compute_dtype.is_floating and compute_dtype in _convert.FLOAT_DTYPES:
            _convert.level_spec(compute_dtype, self.value_range, self.bins)

    @property
    def reference(self) -> Histogram | None:
        """The reference as a `tf_histeq.Histogram` (read eagerly), or None before `adapt`."""
        if self.reference_counts is None:
            return None
        return Histogram(self.reference_counts.numpy(), value_range=self._reference_range)

    def adapt(self, data, *, mask=None) -> None:
        """Pool the histograms of `data` per channel into the reference.

        Follows `keras.layers.Normalization.adapt`: call it before the layer is
        used (or again later, with data of the same channels and bins). The
        images are read with the layer's `value_range`, `bins` and `alpha`.

        Args:
            data: A NumPy array or tensor `(N, H, W, C)` (or one image), a
                batched `tf.data.Dataset` of images or of `(images, ...)` tuples,
                or any iterable of arrays (sizes may differ).
            mask: Optional mask `(H, W)` applied to every image: only pixels
                inside it are counted (e.g. the field inside an X-ray's collimation).

        Raises:
            TypeError: If `data` has an unsupported dtype.
            ValueError: If `data` holds no pixel in some channel, its images
                disagree in dtype or channels, or the layer already holds a
                reference of another shape.
        """
        self._set_reference(
            ops.reference_histogram(data, value_range=self.value_range, bins=self.bins, alpha=self.alpha, mask=mask)
        )

    def _as_histogram(self, reference, reference_mask) -> Histogram:
        """The `Histogram` of a reference given to the constructor."""
        if isinstance(reference, (list, tuple)):
            reference = np.asarray(reference)
        if isinstance(reference, Histogram) or np.ndim(reference) == 1:
            if reference_mask is not None:
                fail(ValueError, "reference_mask", "be None when `reference` is a histogram (counts)", "a mask")
            if not isinstance(reference, Histogram):
                reference = Histogram(reference, value_range=self.value_range)
        else:
            reference = ops.reference_histogram(
                reference, value_range=self.value_range, bins=self.bins, alpha=self.alpha, mask=reference_mask
            )
        if self.bins is not None and reference.bins != self.bins:
            fail(ValueError, "reference.bins", f"be {self.bins}, the layer's bins", reference.bins)
        return reference

    def _set_reference(self, histogram: Histogram) -> None:
        if self.value_range is not None and histogram.value_range not in (None, self.value_range):
            fail(
                ValueError,
                "reference.value_range",
                f"be {self.value_range}, the layer's value_range",
                histogram.value_range,
            )
        if self.reference_counts is None:
            self._create_reference(histogram.counts.shape, histogram.value_range)
        elif tuple(self.reference_counts.shape) != histogram.counts.shape:
            fail(
                ValueError,
                "reference.counts.shape",
                f"be {tuple(self.reference_counts.shape)}, the shape of the layer's reference (channels, bins)",
                histogram.counts.shape,
                hint="create a new layer for images of other channels or bins.",
            )
        self.reference_counts.assign(histogram.counts)
        self._set_reference_range(histogram.value_range)

    def _create_reference(self, shape, value_range) -> None:
        # float64, never autocast: pooled counts stay exact integers up to 2**53.
        self.reference_counts = self._add_exact_weight("reference_counts", shape, "float64")
        self._set_reference_range(value_range)

    def _set_reference_range(self, value_range) -> None:
        """Record the reference's value range, and the runner that matches to it (see `tf_histeq._xla`)."""
        self._reference_range = None if value_range is None else tuple(value_range)
        options = {**self._op_kwargs, "reference_range": self._reference_range}
        self._runner = _xla.JitRunner(_match_counts, options, self.jit_compile, self.compute_dtype)

    def build(self, input_shape):
        """Refuse to build without a reference (given, adapted, or loaded)."""
        if self.reference_counts is None:
            fail(
                ValueError,
                "reference",
                "be given (HistogramMatching(reference=...)) or learned (layer.adapt(data)) before the layer is used",
                None,
            )

    def get_build_config(self):
        """Return the build config, with the reference's shape and value range (its counts are weights)."""
        config = super().get_build_config() or {}
        if self.reference_counts is not None:
            value_range = None if self._reference_range is None else list(self._reference_range)
            config["reference"] = {"shape": list(self.reference_counts.shape), "value_range": value_range}
        return config or None

    def build_from_config(self, config):
        """Create the reference weights that `get_build_config` describes, then build."""
        reference = config.get("reference")
        if reference is not None and self.reference_counts is None:
            self._create_reference(reference["shape"], reference["value_range"])
        super().build_from_config({key: value for key, value in config.items() if key != "reference"})

    def _call_tensors(self) -> dict:
        return {"counts": tf.convert_to_tensor(self.reference_counts)}

    def _apply(self, images, mask):
        return _match_counts(
            images, mask, reference_range=self._reference_range, **self._op_kwargs, **self._call_tensors()
        )


def _match_counts(images, mask=None, *, counts, reference_range, **options):
    """`match_histograms` to reference counts held in a tensor: what the layer runs, compiled or not."""
    ingest = functools.partial(_reference_counts.layer_counts, counts, reference_range)
    return ops.match_counts(images, ingest, mask=mask, **options)
