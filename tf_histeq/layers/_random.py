"""`RandomCLAHE` and `RandomEqualization`: the ops as random augmentation layers.

They follow the contract of Keras 3's image augmentation layers
(`keras.layers.RandomContrast`, `RandomGrayscale`), rebuilt on public API:
Keras's base class for them lives in the private `keras.src` package. So:

- `get_random_transformation(data, training=True, seed=None)` draws the
  per-image parameters, `transform_images(images, transformation,
  training=True)` applies them, and `call` chains the two;
- they transform with `training=True` (what `fit` passes) and in a direct
  call that does not say (`layer(images)`, `dataset.map(layer)`), as Keras's
  `RandomContrast` does; they pass the images through with `training=False`
  (`predict`, `evaluate`, `tf.lite.TFLiteConverter.from_keras_model`) and,
  unlike Keras's own random layers, inside a model called without `training`
  (`model(images)`, the `serve` endpoint of `model.export`, everything
  converted from it, `tf_histeq.deploy.to_onnx`): a served model never changes
  its inputs at random, and exports hold no random op. So a Keras model used as
  an augmentation pipeline in `tf.data` is called with `training=True`:
  `dataset.map(lambda x, y: (augment(x, training=True), y))`, or use
  `tf_histeq.data.random_map_fn`;
- a dict input (`{"images": ..., "labels": ..., "bounding_boxes": ...,
  "segmentation_masks": ...}`) gets its `"images"` transformed and every other
  entry back unchanged (contrast changes move no box and no mask); the
  `transform_labels`, `transform_bounding_boxes` and
  `transform_segmentation_masks` methods return their input;
- the randomness comes from a `keras.random.SeedGenerator(seed)`: two layers
  with the same seed give the same outputs, call after call. Like Keras's
  own random layers, a model reloaded from a `.keras` file starts again from
  the seed (the generator's state is not saved). Under a `tf.distribute`
  strategy each replica folds its id into the drawn seed, so the images of
  different replicas get different draws. Keras leaves XLA off under a
  strategy (`jit_compile="auto"`); `jit_compile=True` there fails for every
  layer with a seed generator, `keras.layers.RandomContrast` included
  (the generator's variable lives on each replica's device).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_histeq import _augment, _convert, _options, _xla
from tf_histeq._options import fail
from tf_histeq.layers._base import Equalizer


class _RandomEqualizer(Equalizer):
    """Shared plumbing of the random layers: factor, seed, the augmentation contract.

    Subclasses configure the wrapped op as `Equalizer` subclasses do; the
    RandomCLAHE subclass sets `_clip_range` to its clip limit (or range).
    """

    _clip_range: float | tuple[float, float] | None = None

    def __init__(self, *, factor, seed, jit_compile, **kwargs):
        super().__init__(**kwargs)
        self.factor = _options.check_probability(factor)
        self.seed = _options.check_seed(seed)
        self.jit_compile = _xla.check_jit_compile(jit_compile)
        self.generator = self._seed_generator(self.seed)

    def _make_runner(self) -> None:
        """The runner of the transformation (`tf_histeq._xla`), once the op's options are final."""
        options = {"op": self._function, **self._op_kwargs}
        self._runner = _xla.JitRunner(_augment.transform, options, self.jit_compile, self.compute_dtype)

    def _call_outside_tensorflow_backend(self, data, **kwargs):
        fail(
            TypeError,
            "keras.backend.backend()",
            f"be 'tensorflow' for {type(self).__name__} (its seed generator is a Keras variable of the backend)",
            self._backend(),
            hint="in tf.data with another backend, use tf_histeq.data.random_map_fn, which needs no Keras.",
        )

    def call(self, data, training=None):
        images = data["images"] if isinstance(data, dict) else data
        if self._augments(training):
            images = self.transform_images(images, self.get_random_transformation(data), training=True)
        else:  # nothing drawn: the graph holds no random op (exports, converters)
            images = self.transform_images(images, training=False)
        return {**data, "images": images} if isinstance(data, dict) else images

    def _augments(self, training) -> bool:
        """Whether a call transforms: `training` if given (by the caller or an outer model), else if direct.

        Keras resolves `training` from the call, then from an outer layer's
        call (a model's), and leaves it None when neither says. Then a direct
        call (this layer is the outermost Keras call: `layer(images)`,
        `dataset.map(layer)`) augments, as Keras's random layers do, and a call
        inside a model (`model(images)`, `model.export`'s `serve`) does not.
        """
        if training is not None:
            return bool(training)
        outermost = self._outermost_call()
        # None: `call` itself was called, not through Keras. Unknown (another Keras): pass
        # through, since a model must never augment unasked.
        return outermost is None or outermost is self

    def get_random_transformation(self, data, training=True, seed=None):
        """Draw the per-image parameters of a call.

        Args:
            data: Images `(N, H, W, C)` or `(H, W, C)` (one image), or a dict
                with them under `"images"`.
            training: With False, no image is transformed (`"apply"` is all
                False, `"clip_limit"` the lowest limit) and the seed generator
                is not advanced.
            seed: None (the layer's seed generator), an int, a
                `keras.random.SeedGenerator`, or a stateless seed: an int
                tensor of shape `(2,)`.

        Returns:
            A dict of per-image tensors: `"apply"`, bool `(N,)`, True for the
            images to transform (`N = 1` for one image); for `RandomCLAHE` also
            `"clip_limit"`, float32 `(N,)`, each image's clip limit.
        """
        images = data["images"] if isinstance(data, dict) else data
        images = tf.convert_to_tensor(images)
        count = tf.shape(images)[0] if images.shape.rank == 4 else 1
        if not training:  # nothing to transform; the generator is not advanced
            transformation = {"apply": tf.zeros([count], tf.bool)}
            if self._clip_range is not None:
                low = self._clip_range[0] if isinstance(self._clip_range, tuple) else self._clip_range
                transformation["clip_limit"] = tf.fill([count], tf.constant(low, tf.float32))
            return transformation
        if seed is None:
            seed = self.generator
        if self._is_seed_generator(seed):
            seed = seed.next()  # its state, then advanced
        elif not tf.is_tensor(seed):
            seed = tf.constant([_options.check_seed(seed, optional=False), 0], tf.int64)
        replicas = tf.distribute.get_replica_context()
        if replicas is not None and replicas.num_replicas_in_sync > 1:
            # Every replica holds the same generator state: without this, the images at
            # the same place of each replica's part of the batch would get the same draws.
            seed = tf.random.experimental.stateless_fold_in(seed, replicas.replica_id_in_sync_group, alg=_augment.ALG)
        return _augment.draw(seed, count, factor=self.factor, clip_limit=self._clip_range)

    def transform_images(self, images, transformation=None, training=True):
        """Apply a transformation from `get_random_transformation` (or a new one, if None).

        Args:
            images: `(N, H, W, C)` or `(H, W, C)`, as the wrapped function accepts them.
            transformation: Per-image parameters for these images.
            training: With False, the images pass through.

        Returns:
            The images in the layer's `compute_dtype`: the selected ones
            transformed, the others unchanged.
        """
        images = _convert.as_images(images)
        self._check_exact_output(images.dtype)
        if training:
            if transformation is None:
                transformation = self.get_random_transformation(images)
            # Compiled as the other layers' op is (see `Equalizer.call`): in Keras's steps, and eagerly.
            return self._runner(images, graphs=_xla.in_keras_step(), **_augment.tensors(transformation))
        return tf.cast(images, self.compute_dtype)

    def transform_labels(self, labels, transformation=None, training=True):
        """Return `labels` unchanged: a contrast change keeps the labels."""
        return labels

    def transform_bounding_boxes(self, bounding_boxes, transformation=None, training=True):
        """Return `bounding_boxes` unchanged: a contrast change moves no box."""
        return bounding_boxes

    def transform_segmentation_masks(self, segmentation_masks, transformation=None, training=True):
        """Return `segmentation_masks` unchanged: a contrast change moves no pixel."""
        return segmentation_masks

    def compute_output_spec(self, data, training=None):
        """Check symbolic images by tracing the op (see `Equalizer`); other dict entries pass through."""
        if isinstance(data, dict):
            return {**data, "images": super().compute_output_spec(data["images"])}
        return super().compute_output_spec(data)

    def get_config(self):
        """Return the layer configuration (JSON-serializable)."""
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}


@keras.saving.register_keras_serializable(package="tf_histeq")
class RandomCLAHE(_RandomEqualizer):
    """CLAHE with a clip limit drawn for every image, as a Keras augmentation layer.

    Each image in a training batch is transformed with probability `factor`, by
    `tf_histeq.clahe` at its own clip limit, drawn uniformly from the
    `clip_limit` range; the other images pass through. Each transformed image
    equals `cv2.createCLAHE(float(c), ...)` at its drawn limit `c`. Outside
    training (`predict`, `evaluate`, `training=False`, and a model called
    without `training`: `model.export`, TensorFlow Lite, ONNX) every image
    passes through. Outputs are in the layer's `compute_dtype` either way
    (float32 by default), like the `CLAHE` layer's. See the module docstring
    for the contract (when a call transforms, transformations, dict inputs,
    seeds) and `tf_histeq.layers` for dtypes and backends.

    For a per-element deterministic `tf.data` pipeline whatever its
    parallelism, use `tf_histeq.data.random_map_fn`.

    Args:
        clip_limit: A clip limit >= 0 in OpenCV units, or a `(min, max)` range
            to draw each image's limit from (default `(1.0, 4.0)`).
        tile_grid_size: Number of tiles as `(rows, cols)`.
        value_range: `(low, high)` of the pixel values, as in `tf_histeq.clahe`.
        bins: Number of histogram bins, as in `tf_histeq.clahe`.
        channels: `"per_channel"`, `"luminance"` or `"lab"`, as in `tf_histeq.clahe`.
        alpha: `"auto"`, True or False, as in `tf_histeq.clahe`.
        factor: Probability that an image is transformed (default 1.0: all).
        seed: An int for reproducible draws, or None.
        jit_compile: `"auto"`, True or False: XLA for the transformation,
            as in the `CLAHE` layer (the draws stay outside the compiled
            function).
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: Images `(N, H, W, C)` or `(H, W, C)`, or a dict with them under
            `"images"`.
        training: Transform (True) or pass through (False). None (the
            default): the outer model's value; in a direct call, transform;
            inside a model called without it, pass through.

    Raises:
        TypeError: If an argument has the wrong type; when called, if the Keras
            backend is not TensorFlow.
        ValueError: If an argument has a bad value.

    Example:
        >>> import numpy as np
        >>> from tf_histeq.layers import RandomCLAHE
        >>> images = np.tile(np.arange(100, 116, dtype=np.uint8), (3, 16, 1))[..., None]  # 3 ramps
        >>> layer = RandomCLAHE(clip_limit=(1.0, 4.0), tile_grid_size=(1, 1))
        >>> transformation = layer.get_random_transformation(images, seed=1)
        >>> transformation["clip_limit"].numpy().round(2)  # one limit per image
        array([2.52, 3.17, 1.96], dtype=float32)
        >>> layer.transform_images(images, transformation).numpy()[:, 0, :3, 0]  # clipped at 2, 3 and 1 per bin
        array([[103., 106., 109.],
               [104., 108., 112.],
               [102., 104., 106.]], dtype=float32)
        >>> layer(images, training=False).numpy()[:, 0, :3, 0]  # inference: unchanged
        array([[100., 101., 102.],
               [100., 101., 102.],
               [100., 101., 102.]], dtype=float32)

    In a model, before the trainable layers:

    ```python
    inputs = keras.Input(shape=(None, None, 1), dtype="uint8")
    x = tf_histeq.layers.RandomCLAHE(clip_limit=(1.0, 4.0), factor=0.5)(inputs)
    x = keras.layers.Rescaling(1 / 255)(x)
    ```
    """

    _OP = "clahe"

    def __init__(
        self,
        *,
        clip_limit=_options.RANDOM_CLIP_LIMIT,
        tile_grid_size=_options.TILE_GRID_SIZE,
        value_range=None,
        bins=None,
        channels=_options.CHANNEL_MODE,
        alpha=_options.ALPHA,
        factor=_options.RANDOM_FACTOR["clahe"],
        seed=None,
        jit_compile=_xla.JIT_COMPILE,
        **kwargs,
    ):
        super().__init__(factor=factor, seed=seed, jit_compile=jit_compile, **kwargs)
        clip_range = _options.check_clip_range(clip_limit)
        options = _options.arguments(self._OP, locals())  # the keywords of the signature
        del options["clip_limit"]
        self._configure(**options)
        del self._op_kwargs["clip_limit"]  # drawn per image
        self.clip_limit = self._clip_range = clip_range
        self._make_runner()

    def get_config(self):
        """Return the layer configuration (JSON-serializable)."""
        return {**super().get_config(), "clip_limit": self.clip_limit}


@keras.saving.register_keras_serializable(package="tf_histeq")
class RandomEqualization(_RandomEqualizer):
    """Histogram equalization of randomly chosen images, as a Keras augmentation layer.

    Each image in a training batch is equalized with probability `factor` by
    `tf_histeq.equalize_hist` (one histogram per image and channel, bit-exact
    with `cv2.equalizeHist` or `PIL.ImageOps.equalize`); the other images pass
    through. Outside training every image passes through, as in
    `RandomCLAHE`. Outputs are in the layer's `compute_dtype`. See the module
    docstring for the contract.

    Args:
        value_range: `(low, high)` of the pixel values, as in `tf_histeq.equalize_hist`.
        bins: Number of histogram bins, as in `tf_histeq.equalize_hist`.
        method: `"opencv"` or `"pil"`, as in `tf_histeq.equalize_hist`.
        channels: `"per_channel"`, `"luminance"`, `"joint"` or `"lab"`, as in
            `tf_histeq.equalize_hist`.
        alpha: `"auto"`, True or False, as in `tf_histeq.equalize_hist`.
        factor: Probability that an image is equalized (default 0.5).
        seed: An int for reproducible draws, or None.
        jit_compile: `"auto"`, True or False, as in `RandomCLAHE`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: Images `(N, H, W, C)` or `(H, W, C)`, or a dict with them under
            `"images"`.
        training: Transform (True) or pass through (False); None (the
            default) as in `RandomCLAHE`.

    Raises:
        TypeError: If an argument has the wrong type; when called, if the Keras
            backend is not TensorFlow.
        ValueError: If an argument has a bad value.

    Example:
        >>> import numpy as np
        >>> from tf_histeq.layers import RandomEqualization
        >>> images = np.array([[[[0], [1], [2], [2], [2], [2], [2]]]] * 4, np.uint8)  # (4, 1, 7, 1)
        >>> out = RandomEqualization(factor=0.5, seed=4)(images)
        >>> out.numpy()[:, 0, :3, 0]  # images 0 and 2 equalized
        array([[  0.,  42., 255.],
               [  0.,   1.,   2.],
               [  0.,  42., 255.],
               [  0.,   1.,   2.]], dtype=float32)
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
        factor=_options.RANDOM_FACTOR["equalize_hist"],
        seed=None,
        jit_compile=_xla.JIT_COMPILE,
        **kwargs,
    ):
        super().__init__(factor=factor, seed=seed, jit_compile=jit_compile, **kwargs)
        self._configure(**_options.arguments(self._OP, locals()))  # the keywords of the signature
        self._make_runner()
