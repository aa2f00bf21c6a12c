"""The layers under mixed precision: exact float16 outputs for 8-bit data, a clear error for 16-bit data.

float16 holds every integer up to 2048 exactly (bfloat16 up to 256), so uint8
results are exact in a `mixed_float16` layer, while uint16 results (up to 65535,
`inf` in float16 above 65504) are refused with a message that names `dtype` and
the fix: a float32 policy for that layer alone.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests._references import assert_same_pixels
from tests.test_layers import CASES, batch, expected, functional
from tf_histeq.layers import CLAHE, HistogramEqualization

LAYERS = [
    pytest.param(HistogramEqualization, tf_histeq.equalize_hist, {}, id="HistogramEqualization"),
    pytest.param(CLAHE, tf_histeq.clahe, {"tile_grid_size": (2, 2)}, id="CLAHE"),
]


@pytest.fixture
def mixed_float16():
    """The global `mixed_float16` policy for one test; the previous policy is restored whatever happens."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def refused(layer_cls, policy: str) -> str:
    """The message for uint16 images under `policy` (an exact match, punctuation escaped)."""
    compute = policy.removeprefix("mixed_")
    limit = {"float16": 2048, "bfloat16": 256}[compute]
    return (
        r"`dtype` must hold the layer's outputs exactly: uint16 images with value_range=\(0, 65535\) give values up "
        rf"to 65535, but {compute} holds integers exactly only up to {limit}\. Received: dtype='{policy}'\. "
        rf"Hint: give this layer a float32 policy of its own, e\.g\. {layer_cls.__name__}\(dtype='float32'\)"
    )


@pytest.mark.parametrize(("layer_cls", "function", "kwargs"), CASES)
def test_mixed_float16_output_is_float16_and_matches_function(layer_cls, function, kwargs):
    images = batch()
    layer = layer_cls(dtype="mixed_float16", **kwargs)
    out = layer(images.astype(np.float32))  # autocast to float16
    assert out.dtype == tf.float16
    assert_same_pixels(out.numpy(), function(images.astype(np.float16), **kwargs).numpy())
    assert_same_pixels(out.numpy(), expected(function, images, kwargs, np.float16))
    assert_same_pixels(layer(images).numpy(), out.numpy())  # uint8 in, float16 out


@pytest.mark.parametrize(("layer_cls", "function", "kwargs"), LAYERS)
def test_uint8_model_under_the_global_mixed_policy_is_exact(mixed_float16, layer_cls, function, kwargs):
    images = batch()
    model = functional(layer_cls(**kwargs), dtype="uint8")
    out = model.predict(images, verbose=0)
    assert out.dtype == np.float16
    assert_same_pixels(out, expected(function, images, kwargs, np.float16))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize(("layer_cls", "function", "kwargs"), LAYERS)
def test_uint16_images_under_a_16_bit_policy_raise_when_called(layer_cls, function, kwargs, policy):
    images = batch(2, shape=(64, 64, 1), dtype=np.uint16)
    with pytest.raises(ValueError, match=refused(layer_cls, policy)):
        layer_cls(dtype=policy, **kwargs)(images)


@pytest.mark.parametrize(("layer_cls", "function", "kwargs"), LAYERS)
def test_uint16_input_under_the_global_mixed_policy_raises_when_the_model_is_built(
    mixed_float16, layer_cls, function, kwargs
):
    with pytest.raises(ValueError, match=refused(layer_cls, "mixed_float16")):
        functional(layer_cls(**kwargs), shape=(None, None, 1), dtype="uint16")


@pytest.mark.parametrize(("layer_cls", "function", "kwargs"), LAYERS)
def test_a_float32_layer_in_a_mixed_model_keeps_uint16_exact(mixed_float16, layer_cls, function, kwargs):
    images = batch(2, shape=(64, 64, 1), dtype=np.uint16)
    inputs = keras.Input((64, 64, 1), dtype="uint16")
    equalized = layer_cls(dtype="float32", **kwargs)(inputs)
    features = keras.layers.Conv2D(2, 3)(keras.layers.Rescaling(1 / 65535)(equalized))
    model = keras.Model(inputs, [equalized, features])
    assert model.layers[-1].compute_dtype == "float16"  # the rest of the model stays in mixed precision
    out, _ = model.predict(images, verbose=0)
    reference = function(images, **kwargs).numpy()
    with np.errstate(over="ignore"):  # above 65504 float16 gives inf
        assert np.count_nonzero(reference.astype(np.float16) != reference) > 1000  # what float16 would change
    assert out.dtype == np.float32
    assert_same_pixels(out, reference.astype(np.float32))


def test_16_bit_data_within_the_float16_integers_is_allowed_and_exact():
    images = (batch(2, shape=(32, 32, 1), dtype=np.uint16) >> 5).astype(np.uint16)  # 11 bits: 0..2047
    kwargs = {"value_range": (0, 2047), "bins": 2048}
    out = HistogramEqualization(dtype="mixed_float16", **kwargs)(images)
    assert out.dtype == tf.float16
    assert_same_pixels(out.numpy(), expected(tf_histeq.equalize_hist, images, kwargs, np.float16))
    assert out.numpy().max() == 2047
