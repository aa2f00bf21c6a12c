"""Keras 3 layers: `HistogramEqualization`, `CLAHE` and `HistogramMatching`.

Each layer stores its configuration, validates it in `__init__` with the same
validators (and messages) as the function it wraps, and delegates to the
function in `call`. The layers:

- equalize in training and in inference alike (no `training` argument): what a
  model learned on is what it serves;
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
`value_range=(0, 65535), bins=65536`).

Output dtype: the layer's `compute_dtype` (the Keras convention), float32 by
default and float16 under the `mixed_float16` policy, which holds levels
0..2048 exactly. The `value_range` and `bins` combination is checked against the
compute dtype in `__init__`, since float inputs arrive in it and every output
is in it. Integer inputs whose levels the compute dtype cannot hold (uint16
under `mixed_float16`, where 65535 would become `inf`) raise a `ValueError`
when the layer is called or built on them; give such a layer a float32 policy
of its own (`CLAHE(dtype="float32")`) inside a mixed-precision model.

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

from tf_histeq.layers._equalization import CLAHE, HistogramEqualization
from tf_histeq.layers._matching import HistogramMatching
from tf_histeq.layers._random import RandomCLAHE, RandomEqualization

__all__ = ["CLAHE", "HistogramEqualization", "HistogramMatching", "RandomCLAHE", "RandomEqualization"]
