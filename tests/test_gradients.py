"""Gradients: the ops have none, and asking for one fails with a `LookupError` that names the op.

Equalization is piecewise constant in the pixels, so a gradient through it is
refused rather than returned as a silent `None`; the layers belong before any
trainable layer, where no gradient is asked of them.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests import _images
from tf_histeq.layers import CLAHE, HistogramEqualization

OPS = [
    pytest.param(tf_histeq.equalize_hist, id="equalize_hist"),
    pytest.param(tf_histeq.clahe, id="clahe"),
]
LAYERS = [
    pytest.param(HistogramEqualization, "equalize_hist", id="HistogramEqualization"),
    pytest.param(CLAHE, "clahe", id="CLAHE"),
]


def no_gradient(op_name: str) -> str:
    return (
        rf"tf_histeq\.{op_name} has no gradient \(it maps quantized levels through count-based tables\); "
        r"apply it before any trainable layer, or wrap its output in tf\.stop_gradient"
    )


def clean(op_name: str) -> str:
    """The whole message, as written: not TensorFlow's `Gradient explicitly disabled. Reason: b'...'`."""
    return "^" + no_gradient(op_name) + "$"


def images(n: int = 4, shape=(16, 16, 1)) -> np.ndarray:
    return _images.batch(n, shape).astype(np.float32)


@pytest.mark.parametrize("op", OPS)
def test_a_gradient_through_the_op_raises_eagerly(op):
    x = tf.Variable(images(1)[0])
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(op(x))
    with pytest.raises(LookupError, match=clean(op.__name__)):
        tape.gradient(y, x)


@pytest.mark.parametrize("op", OPS)
def test_a_gradient_through_the_op_raises_in_tf_function(op):
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(op(x))
        return tape.gradient(y, x)

    x = tf.constant(images(2))
    with pytest.raises(LookupError, match=clean(op.__name__)):
        tf.function(gradient, autograph=False)(x)
    # AutoGraph re-raises errors of types it does not know as a StagingError with the same message.
    with pytest.raises(Exception, match=r"LookupError: " + no_gradient(op.__name__)):
        tf.function(gradient)(x)


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_a_gradient_through_a_tf_function_holding_the_op_raises_under_an_outer_tape(jit_compile):
    function = tf.function(tf_histeq.clahe, autograph=False, jit_compile=jit_compile)
    x = tf.constant(images(2))
    with pytest.raises(LookupError, match=clean("clahe")), tf.GradientTape() as tape:  # raised by the call or by
        tape.watch(x)  # `gradient`: a tf.function called under a tape builds its gradient function when called
        tape.gradient(tf.reduce_sum(function(x)), x)


@pytest.mark.parametrize("op", OPS)
def test_stop_gradient_is_the_way_around(op):
    weight = tf.Variable(2.0)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(tf.stop_gradient(op(weight * images(1)[0])) * weight)
    assert float(tape.gradient(y, weight)) == float(tf.reduce_sum(op(2.0 * images(1)[0])))


@pytest.mark.parametrize(("layer_cls", "op_name"), LAYERS)
def test_a_model_with_the_layer_before_its_trainable_layers_trains(layer_cls, op_name):
    inputs = keras.Input((16, 16, 1))  # float32: the ops refuse gradients only for float input
    x = keras.layers.Rescaling(1 / 255)(layer_cls()(inputs))
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(x)))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(images(), np.linspace(0, 1, 4, dtype=np.float32), batch_size=2, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert all((a != b).any() for a, b in zip(model.get_weights(), before, strict=True))  # every weight moved


@pytest.mark.parametrize(("layer_cls", "op_name"), LAYERS)
def test_the_layer_after_a_trainable_layer_fails_in_fit_with_the_message(layer_cls, op_name):
    inputs = keras.Input((16, 16, 1))
    x = layer_cls()(keras.layers.Conv2D(1, 3, padding="same")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(x)))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(LookupError, match=clean(op_name)):
        model.fit(images(), np.zeros(4, np.float32), batch_size=2, epochs=1, verbose=0)


@pytest.mark.slow  # saves, exports and reloads a model
def test_the_message_after_keras_reload_and_after_export_reload(tmp_path):
    inputs = keras.Input((16, 16, 1))
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(CLAHE()(keras.layers.Conv2D(1, 3, padding="same")(inputs))))
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    reloaded.compile(optimizer="sgd", loss="mse")
    with pytest.raises(LookupError, match=clean("clahe")):
        reloaded.fit(images(), np.zeros(4, np.float32), batch_size=2, epochs=1, verbose=0)

    # A SavedModel keeps the op (PreventGradient) but no Python: TensorFlow's own wording, naming the op.
    model.export(str(tmp_path / "exported"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "exported"))
    x = tf.constant(images())
    with pytest.raises(LookupError, match=r"Gradient explicitly disabled\. Reason: b'" + no_gradient("clahe")):
        with tf.GradientTape() as tape:
            tape.watch(x)
            tape.gradient(tf.reduce_sum(served.serve(x)), x)
