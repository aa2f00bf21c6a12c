"""The shared logic of the tf_histeq layers, and its thin Keras 3 base.

`EqualizerLogic` holds what every layer does whatever its Keras: options,
XLA, dtype policy, masks, config. It calls Keras only through a few hooks
(`_seed_generator`, `_is_seed_generator`, `_outermost_call`,
`_add_exact_weight`, `_backend`), which each thin base defines: `Equalizer`
here for Keras 3, and `tf_histeq.layers._keras2.Equalizer` for tf_keras
(Keras 2), whose layers are built from the Keras 3 classes by
`tf_histeq.layers._keras2.twin`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tf_histeq import _compat, _convert, _options, _xla, ops
from tf_histeq._options import fail
from tf_histeq.layers import _kerases

# `_configure`'s `jit_compile` for layers without that option.
_NO_OPTION = object()

# The largest integer each float compute dtype holds exactly, with every integer below it.
_EXACT_INTEGERS = {tf.float16: 2048, tf.bfloat16: 256, tf.float32: 2**24, tf.float64: 2**53}

# What the 3-D layers take: a batch of volumes `(N, D, H, W, C)`.
VOLUME_RANK = 5


def check_layout(layer, shape, spatial_dims: int) -> None:
    """Refuse input of the other layout: a 3-D layer takes `(N, D, H, W, C)` only, a 2-D layer no rank-5 input."""
    rank = None if shape is None else len(shape)
    name = type(layer).__name__
    if spatial_dims == 3 and rank != VOLUME_RANK:
        fail(
            ValueError,
            "images.shape",
            f"be a batch of volumes (N, D, H, W, C), rank {VOLUME_RANK}, for {name}",
            None if shape is None else tuple(shape),
            hint=f"for images (N, H, W, C) use {name[:-2]}; give one volume as volume[None].",
        )
    if spatial_dims == 2 and rank == VOLUME_RANK:
        fail(
            ValueError,
            "images.shape",
            f"be images (H, W, C) or (N, H, W, C) for {name}",
            tuple(shape),
            hint=f"a batch of volumes (N, D, H, W, C): use {name}3D.",
        )


class EqualizerLogic:
    """Shared plumbing, for either Keras: options, XLA, dtype policy, mask, config.

    Subclasses name the wrapped function in `_OP` and spell out its keyword
    arguments (and defaults) in their `__init__`, which passes them to
    `_configure`. Those that pass `jit_compile` too get the XLA policy of
    `tf_histeq._xla` in `call` and the option in their config; the others run
    `_apply` as it is. The layer classes derive from a thin base (`Equalizer`)
    and reach Keras only through its hooks, never through the `keras` module:
    so the same class bodies make the tf_keras layers (see `tf_histeq.layers._keras2`).
    """

    _OP: str
    # Which Keras the thin base belongs to, as the cross-Keras error messages name it.
    KERAS: str
    _runner: _xla.JitRunner | None = None

    def _configure(self, *, jit_compile=_NO_OPTION, **options) -> None:
        """Validate `options` with the function's validators and store them as attributes."""
        self._op_kwargs = _options.resolve(self._OP, options, exclude=("mask",))
        self._function = ops.OPS[self._OP]
        for name, value in self._op_kwargs.items():
            setattr(self, name, value)
        if jit_compile is not _NO_OPTION:
            self.jit_compile = _xla.check_jit_compile(jit_compile)
            self._runner = _xla.JitRunner(self._function, self._op_kwargs, self.jit_compile, self.compute_dtype)
        # `value_range` and `bins` together, for the float dtype the layer computes in.
        compute_dtype = tf.as_dtype(self.compute_dtype)
        if compute_dtype.is_floating and compute_dtype in _convert.FLOAT_DTYPES:
            _convert.level_spec(compute_dtype, self.value_range, self.bins)

    def call(self, images, mask=None, training=None):
        # The output does not depend on `training`. Only the steps of Keras's fit,
        # evaluate and predict (and their *_on_batch), whose graphs are never
        # exported, compile the op in a traced graph (see tf_histeq._xla): the
        # graphs of model.export, of the TensorFlow Lite converter (which passes
        # training=False) and of tf2onnx keep the plain op.
        self._check_exact_output(images.dtype)
        if self._runner is None:
            return tf.cast(self._apply(images, mask), self.compute_dtype)
        return self._runner(images, mask, graphs=_xla.in_keras_step(), **self._call_tensors())

    def _call_tensors(self) -> dict:
        """Per-call tensor arguments of the op that the layer holds as state (none here)."""
        return {}

    def _check_exact_output(self, input_dtype: tf.DType) -> None:
        """Refuse integer inputs whose levels the compute dtype cannot hold (uint16 under float16).

        The output is cast to the compute dtype; float16 holds the integers up to
        2048 exactly (bfloat16 up to 256), so uint16 results would come out
        rounded, or as `inf` above 65504.
        """
        compute_dtype = tf.as_dtype(self.compute_dtype)
        input_dtype = tf.as_dtype(input_dtype)
        if input_dtype not in _convert.INTEGER_DTYPES or compute_dtype not in _EXACT_INTEGERS:
            return  # floats arrive in the compute dtype; unsupported dtypes get the op's own error
        spec = _convert.level_spec(input_dtype, self.value_range, self.bins)
        limit = _EXACT_INTEGERS[compute_dtype]
        if max(abs(spec.low), abs(spec.high)) > limit:
            fail(
                ValueError,
                "dtype",
                f"hold the layer's outputs exactly: {input_dtype.name} images with value_range="
                f"{(spec.low, spec.high)} give values up to {spec.high}, but {compute_dtype.name} holds integers "
                f"exactly only up to {limit}",
                self.dtype_policy.name,
                hint=f"give this layer a float32 policy of its own, e.g. {type(self).__name__}(dtype='float32'), "
                "which keeps the rest of the model in mixed precision.",
            )

    def compute_output_shape(self, input_shape, mask_shape=None):
        """Return the input shape: equalization keeps the shape."""
        return tuple(input_shape)

    def compute_mask(self, inputs, previous_mask=None):
        # The mask selects the pixels that build the histograms; it does not
        # describe the output, which is a whole image.
        return None

    def _apply(self, images, mask):
        return self._function(images, mask=mask, **self._op_kwargs)

    def get_config(self):
        """Return the layer configuration (JSON-serializable)."""
        # The layout (`spatial_dims`) is the class's (`HistogramEqualization3D`), not an option.
        config = {**super().get_config(), **{k: v for k, v in self._op_kwargs.items() if k != "spatial_dims"}}
        if hasattr(self, "jit_compile"):  # the layers that take the option
            config["jit_compile"] = self.jit_compile
        return config

    # The hooks through which the layers reach Keras; each Keras's thin base defines them.

    def _backend(self) -> str:
        """The Keras backend's name ("tensorflow" for tf_keras)."""
        raise NotImplementedError

    def _seed_generator(self, seed):
        """A seed generator (its `next()` returns a `(2,)` int64 seed and advances) for the int `seed`, or None."""
        raise NotImplementedError

    def _is_seed_generator(self, value) -> bool:
        """Whether `value` is a seed generator of this Keras."""
        raise NotImplementedError

    def _outermost_call(self):
        """The layer or model whose call is the outermost one in progress: None, `self`, or another / unknown."""
        raise NotImplementedError

    def _add_exact_weight(self, name: str, shape, dtype):
        """A zero-initialized non-trainable weight that is never autocast (counts, landmarks)."""
        raise NotImplementedError


class Equalizer(EqualizerLogic, keras.layers.Layer):
    """The thin Keras 3 base: backends, symbolic tensors, weights, seeds, the call context."""

    KERAS = "Keras 3"

    # No tensor-dependent Python control flow here: AutoGraph (which tf.data
    # applies to mapped callables) would only slow down tracing.
    @tf.autograph.experimental.do_not_convert
    def __call__(self, images, *args, **kwargs):
        _kerases.refuse_other_keras(self, images, *args, *kwargs.values())
        if keras.backend.backend() == "tensorflow":
            return super().__call__(images, *args, **kwargs)
        return self._call_outside_tensorflow_backend(images, *args, **kwargs)

    def _call_outside_tensorflow_backend(self, images, mask=None, **_):
        """Run on TensorFlow tensors (e.g. in `tf.data`) when Keras uses another backend."""
        if not (tf.is_tensor(images) or isinstance(images, np.ndarray)) or isinstance(images, keras.KerasTensor):
            fail(
                TypeError,
                "images",
                f"be a TensorFlow tensor or NumPy array when the Keras backend is {keras.backend.backend()!r} "
                "(tf_histeq layers run TensorFlow ops)",
                type(images).__name__,
                hint="use the layer in tf.data (`dataset.map(layer)`), or set KERAS_BACKEND=tensorflow "
                "to use it inside a model.",
            )
        images = tf.convert_to_tensor(images)
        if self.autocast and images.dtype.is_floating:
            images = tf.cast(images, self.compute_dtype)
        return self.call(images, mask=mask)

    def compute_output_spec(self, images, mask=None, training=None):
        """Check the symbolic inputs by tracing the op, and return the output spec.

        Tracing (not running) the function runs its static checks (dtype, rank,
        channels, mask shape) when a Functional model is built, with the
        function's own message.
        """
        self._check_exact_output(images.dtype)
        image_spec = tf.TensorSpec(images.shape, images.dtype)
        mask_spec = None if mask is None else tf.TensorSpec(mask.shape, mask.dtype)
        tf.function(self._apply, autograph=False).get_concrete_function(image_spec, mask_spec)
        return keras.KerasTensor(images.shape, dtype=self.compute_dtype)

    def __str__(self):
        # Keras's message for a layer added to a model of the other Keras quotes it.
        return _kerases.describe(self, super().__str__())

    def _backend(self) -> str:
        return keras.backend.backend()

    def _seed_generator(self, seed):
        return keras.random.SeedGenerator(seed)

    def _is_seed_generator(self, value) -> bool:
        return isinstance(value, keras.random.SeedGenerator)

    def _outermost_call(self):
        return _compat.keras_outermost_call()

    def _add_exact_weight(self, name, shape, dtype):
        # Never autocast: the layer's counts stay exact in its own dtype.
        return self.add_weight(
            shape=tuple(shape), initializer="zeros", dtype=dtype, trainable=False, autocast=False, name=name
        )
