"""The layers: `HistogramEqualization`, `CLAHE`, `HistogramMatching` and the random augmentations.

They are the layers of the Keras that `tf.keras` is: Keras 3 (`tf_histeq.keras3`),
or tf_keras (Keras 2, `tf_histeq.keras2`) when `TF_USE_LEGACY_KERAS=1` is set
before TensorFlow is imported. Both are built from the same code, with the same
names, arguments and pixels; a layer of one Keras in a model of the other
raises a `TypeError` that names both and what to import. What follows holds for
both, with Keras 3's names (`model.export` is Keras 3's; tf_keras's
`model.save` writes the SavedModel for TF Serving).

Each layer stores its configuration, validates it in `__init__` with the same
validators (and messages) as the function it wraps, and delegates to the
function in `call`. The layers:

- equalize in training and in inference alike: what a model learned on is what
  it serves (the output never depends on `training`);
- compute one histogram per image and channel, never pooled over the batch
  (unlike `keras.layers.Equalization`);
- work in Sequential, Functional and subclassed models, in `fit`, `evaluate`
  and `predict` (XLA included: `supports_jit` stays true), in `tf.data`
  (`dataset.map(layer)`), and survive `model.save(".keras")` and
  `model.export(...)` (SavedModel for TF Serving).

Backend: the layers run TensorFlow ops, so inside a model they need the
TensorFlow Keras backend. With another backend (JAX, PyTorch) they still work
on TensorFlow tensors, which is what `dataset.map(layer)` gives them; a
symbolic Keras input or a backend array raises a `TypeError` that says so.

Input dtype: Keras casts *float* inputs to the layer's compute dtype and leaves
integer inputs alone. So a uint8 image arrives as uint8 and a uint16 image keeps
its 65536 levels; a float image is read with `value_range` (default `(0, 255)`),
which gives for integer-valued float input exactly the uint8 result. In a
Functional model the dtype of `keras.Input` decides what arrives: the default
float32 `keras.Input(shape)` turns 16-bit data into float32 read through
`(0, 255)`, so declare `keras.Input(shape, dtype="uint16")` (or pass
`value_range=(0, 65535), bins=65536`). The same holds for int16 (CT in
Hounsfield units): `keras.Input(shape, dtype="int16")`, read over its whole
range by default, or pass the CT window `value_range=(-1024, 3071), bins=4096`.

Output dtype: the layer's `compute_dtype` (the Keras convention), float32 by
default and float16 under the `mixed_float16` policy, which holds levels
0..2048 exactly. The `value_range` and `bins` combination is checked against the
compute dtype in `__init__`, since float inputs arrive in it and every output
is in it. Integer inputs whose levels the compute dtype cannot hold (uint16
under `mixed_float16`, where 65535 would become `inf`) raise a `ValueError`
when the layer is called or built on them; give such a layer a float32 policy
of its own (`CLAHE(dtype="float32")`) inside a mixed-precision model.

XLA (`jit_compile="auto"`, the default): the layers compile their op with XLA
themselves where that pays, with identical results, through tf_histeq's one
runner (`tf_histeq._xla`; `tf_histeq.compiled_shapes` reports its decisions).
Keras compiles a whole model only on GPU without a distribution strategy (its
own `jit_compile="auto"`), and the op alone runs several times faster compiled
on CPU. So:

- in `fit`, `evaluate` and `predict` (and their `*_on_batch`) of a model
  with a fixed image size (height, width, channels; the batch may vary), the
  op runs compiled from the first step: the traced step runs that one size;
- with sizes unknown when the step is traced (`keras.Input((None, None, 1))`),
  and in eager calls, a shape (with the dtype and the mask's shape) is compiled
  once `tf_histeq._xla.COMPILE_AFTER_VALUES` values of it have run
  uncompiled (an eager call counting as at least
  `tf_histeq._xla.EAGER_CALL_VALUES`): from the second call on for large
  batches, later for smaller ones. One-off calls never wait for the compiler
  (about a second per shape);
- at most `tf_histeq._xla.MAX_COMPILED_SHAPES` shapes are compiled per
  configuration (the op, its options and the compute dtype, shared by every
  way in that has them; a few more if new shapes arrive in parallel); further
  shapes, as with data of many sizes, run the uncompiled op. XLA keeps one
  executable per shape and device (per replica under a `tf.distribute`
  strategy);
- the counts are kept at run time, so shapes unknown when the graph is traced
  (a dataset of decoded files) compile too;
- in a model that XLA compiles as a whole (`model.compile(jit_compile=True)`,
  or Keras's `"auto"` on GPU), the op is compiled with the model;
- every other traced graph keeps the uncompiled op: `model.export(...)`,
  `tf.lite.TFLiteConverter.from_keras_model` (which traces the model with
  `training=False`), `tf_histeq.deploy.to_onnx`, `dataset.map(layer)` and
  graphs of your own (`tf.function(model)`). So an exported SavedModel holds
  neither an XLA call (which TF Serving and TensorFlow Java cannot run on
  GPU) nor the counting tables, and converts to TFLite as the op does. In
  `tf.data`, `tf_histeq.data.map_fn` compiles; in a graph of your own, set
  `jit_compile=True` to compile.

`jit_compile=True` compiles every call, in every graph (exports included), one
executable per shape without bound; `jit_compile=False` never compiles. The
option is part of `get_config()`.

Gradients: none; see `tf_histeq.ops`. The layers belong before any trainable
layer, where no gradient is asked of them.

Masks: `layer(images, mask=m)` takes the histogram mask of the wrapped function
(`(H, W)`, `(N, H, W)`, or either with a trailing 1; bool or 0/1): only pixels
inside it build the histograms, and every pixel is mapped. A Keras mask attached
to the input (for example by `keras.layers.Masking(0.0)`, which marks pixels
whose channels are all 0 as outside) is used the same way when no `mask` is
passed. The layer consumes the mask: its output carries none.
"""

from __future__ import annotations

from tf_histeq.layers import _kerases

# The layers of the Keras that `tf.keras` is: Keras 3's (`tf_histeq.keras3`), or tf_keras's
# (`tf_histeq.keras2`) under TF_USE_LEGACY_KERAS=1. Every name of `_kerases.LAYERS`.
if _kerases.tf_keras_is_keras2():
    from tf_histeq.layers._keras2 import twins as _twins

    globals().update(_twins())
else:
    globals().update(_kerases.keras3_layers())

__all__ = list(_kerases.LAYERS)
