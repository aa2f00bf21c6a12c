"""`HistogramEqualization3D` and `HistogramMatching3D`: the global ops on batches of volumes, as Keras 3 layers.

Named like Keras's 3-D layers (`Conv3D` takes 5-D input): each takes `(N, D,
H, W, C)` input only, sets `spatial_dims=3` itself (it is not an argument,
nor part of the config), and is otherwise its 2-D layer: the same options,
masks, XLA policy, dtype rules and saving. One histogram per volume and
channel, over all its voxels (`tf_histeq.equalize_hist(..., spatial_dims=3)`).
CLAHE on volumes is another algorithm (`tf_histeq.equalize_adapthist`), with
its own layers.
"""

from __future__ import annotations

import keras

from tf_histeq.layers._base import check_layout
from tf_histeq.layers._equalization import HistogramEqualization
from tf_histeq.layers._matching import HistogramMatching


class _Volumes:
    """The 3-D twin of a 2-D layer: `spatial_dims=3` and a rank-5 input check."""

    def _configure(self, **options) -> None:
        super()._configure(spatial_dims=3, **options)

    def _check_volumes(self, shape) -> None:
        check_layout(self, shape, 3)

    def build(self, input_shape):
        """Refuse input that is not a batch of volumes `(N, D, H, W, C)`, then build as the 2-D layer does."""
        self._check_volumes(input_shape)
        super().build(input_shape)

    def call(self, images, mask=None, training=None):
        self._check_volumes(images.shape)
        return super().call(images, mask=mask, training=training)

    def compute_output_spec(self, images, mask=None, training=None):
        """Check the symbolic input's rank, then trace the op as the 2-D layer does."""
        self._check_volumes(images.shape)
        return super().compute_output_spec(images, mask=mask, training=training)


@keras.saving.register_keras_serializable(package="tf_histeq")
class HistogramEqualization3D(_Volumes, HistogramEqualization):
    """Equalize the histogram of every channel of every volume, as a Keras layer.

    `HistogramEqualization` for batches of volumes `(N, D, H, W, C)`: one
    histogram per volume and channel, over all its voxels, applied in training
    and inference alike (`tf_histeq.equalize_hist(..., spatial_dims=3)`, whose
    result for uint8 is `cv2.equalizeHist` on the volume's slices stacked into
    one image). The arguments are `HistogramEqualization`'s.

    Args:
        value_range: `(low, high)` of the voxel values; defaults as in
            `tf_histeq.equalize_hist` (int16 `(-32768, 32767)`: pass a CT
            window such as `(-1024, 3071)` with `bins=4096`).
        bins: Number of histogram bins; defaults as in `tf_histeq.equalize_hist`.
        method: `"opencv"` (`cv2.equalizeHist`) or `"pil"` (`PIL.ImageOps.equalize`).
        channels: `"per_channel"`, `"joint"`, `"luminance"` or `"lab"`, as in
            `tf_histeq.equalize_hist` (the colour modes convert voxel by voxel).
        alpha: `"auto"`, True or False, as in `HistogramEqualization`.
        jit_compile: `"auto"`, True or False, as in `HistogramEqualization`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        images: `(N, D, H, W, C)`, channels last.
        mask: Optional histogram mask `(D, H, W)`, `(N, D, H, W)`, or either
            with a trailing 1 (e.g. a body mask from a segmentation).
        training: Ignored by the result.

    Input shape:
        `(N, D, H, W, C)`; D, H and W may be unknown (`None`).

    Output shape:
        Same as the input, in the layer's `compute_dtype`.

    Raises:
        ValueError: As `HistogramEqualization`; when built or called, if the
            input is not 5-D.

    Example:
        >>> import numpy as np
        >>> from tf_histeq.layers import HistogramEqualization3D
        >>> volume = np.array([0, 1, 2, 2, 2, 2, 2, 2], np.uint8).reshape(1, 2, 2, 2, 1)  # (N, D, H, W, C)
        >>> HistogramEqualization3D()(volume).numpy().ravel()  # one histogram: level 1 -> 36.4 -> 36
        array([  0.,  36., 255., 255., 255., 255., 255., 255.], dtype=float32)
    """


@keras.saving.register_keras_serializable(package="tf_histeq")
class HistogramMatching3D(_Volumes, HistogramMatching):
    """Match the histogram of every channel of every volume to a reference, as a Keras layer.

    `HistogramMatching` for batches of volumes `(N, D, H, W, C)`: one mapping
    per volume and channel, from the histogram of all its voxels
    (`tf_histeq.match_histograms(..., spatial_dims=3)`). A `reference` given
    here, and the data of `adapt`, are volumes: `(D, H, W)`, `(D, H, W, C)`
    or batches `(N, D, H, W, C)` (pooled), or a `tf_histeq.Histogram`. The
    arguments are `HistogramMatching`'s.

    Args:
        reference: Optional reference: a volume or batch of volumes, a 1-D
            array of `bins` counts or a `tf_histeq.Histogram`; or learn it
            with `adapt`.
        value_range: `(low, high)` of the voxel values; defaults as in
            `tf_histeq.match_histograms`.
        bins: Number of histogram bins; defaults as in `tf_histeq.match_histograms`.
        channels: `"per_channel"` or `"joint"`.
        alpha: `"auto"`, True or False, as in `HistogramMatching`.
        reference_mask: Optional mask `(D', H', W')` of a reference volume.
        jit_compile: `"auto"`, True or False, as in `HistogramMatching`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        images: `(N, D, H, W, C)`, channels last.
        mask: Optional histogram mask `(D, H, W)`, `(N, D, H, W)`, or either
            with a trailing 1.
        training: Ignored by the result.

    Input shape:
        `(N, D, H, W, C)`; D, H and W may be unknown (`None`).

    Output shape:
        Same as the input, in the layer's `compute_dtype`.

    Raises:
        ValueError: As `HistogramMatching`; when built or called, if the input
            is not 5-D.

    Example:
        >>> import numpy as np
        >>> from tf_histeq.layers import HistogramMatching3D
        >>> layer = HistogramMatching3D()
        >>> layer.adapt(np.array([100, 200, 200, 250], np.uint8).reshape(1, 2, 1, 2, 1))  # one volume
        >>> layer(np.array([3, 4, 5, 6], np.uint8).reshape(1, 2, 2, 1, 1)).numpy().ravel()
        array([100., 150., 200., 250.], dtype=float32)
    """
