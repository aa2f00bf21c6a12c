"""The layers `AdaptiveEqualization` (2-D) and `AdaptiveEqualization3D` (5-D input, like `Conv3D`).

Each layer's output is `tf_histeq.equalize_adapthist`'s in the layer's compute
dtype: scikit-image's values exactly with `dtype="float64"`, rounded to float32
by default. Functional models, `.keras` round trips and configs; `model.export`
is slow. The models run with `jit_compile=False` in the default tier (XLA
compiles a shape in about 4 s on 2 cores; its parity is the op's).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests._references import assert_same_pixels
from tests.test_adapthist import images_2d, sk_output, volumes_3d
from tf_histeq.layers import AdaptiveEqualization, AdaptiveEqualization3D

exposure = pytest.importorskip("skimage.exposure")

SHAPE_2D = (24, 32)
SHAPE_3D = (8, 16, 16)


@pytest.fixture(scope="module")
def volume_model():
    """A Functional model of uint16 `(N, 8, 16, 16, 1)` volumes, float64 output, and its inputs."""
    inputs = keras.Input((*SHAPE_3D, 1), dtype="uint16")
    layer = AdaptiveEqualization3D(kernel_size=(3, 5, 7), clip_limit=0.02, dtype="float64", jit_compile=False)
    return keras.Model(inputs, layer(inputs)), volumes_3d("uint16", SHAPE_3D)


def test_3d_model_is_skimage(volume_model):
    model, volumes = volume_model
    out = model(volumes).numpy()  # eager: `predict` traces a step (seconds); the slow export test runs it
    assert out.dtype == np.float64 and out.shape == volumes.shape
    for n in range(len(volumes)):
        expected = sk_output(volumes[n, ..., 0], kernel_size=(3, 5, 7), clip_limit=0.02)
        assert_same_pixels(out[n, ..., 0], expected, f"AdaptiveEqualization3D volume {n}:")


def test_keras_round_trip(volume_model, tmp_path):
    model, volumes = volume_model
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    layer = loaded.layers[-1]
    assert isinstance(layer, AdaptiveEqualization3D)
    assert layer.get_config() == model.layers[-1].get_config()
    assert "spatial_dims" not in layer.get_config()  # the class's, not an argument
    assert_same_pixels(loaded(volumes).numpy(), model(volumes).numpy(), "after .keras:")


def test_2d_model_float32_default_and_rgb():
    """float32 by default: the op's float64 values rounded; float32 input exact; hsv_value on RGB."""
    images = images_2d("uint8", SHAPE_2D)
    inputs = keras.Input((*SHAPE_2D, 2), dtype="uint8")
    model = keras.Model(inputs, AdaptiveEqualization(kernel_size=5, alpha=False, jit_compile=False)(inputs))
    out = model(images).numpy()
    assert out.dtype == np.float32
    expected = tf_histeq.equalize_adapthist(images, kernel_size=5, alpha=False).numpy()
    assert_same_pixels(out, expected.astype(np.float32), "float32 layer vs the op's float64, rounded:")
    floats = images_2d("float32", SHAPE_2D)
    layer = AdaptiveEqualization(kernel_size=5, alpha=False, jit_compile=False)
    assert_same_pixels(layer(floats).numpy()[1, ..., 0], sk_output(floats[1, ..., 0], kernel_size=5), "float32:")
    rgb = images_2d("uint16", SHAPE_2D)[..., :1].repeat(3, -1)
    rgb[..., 1] //= 3
    hsv = AdaptiveEqualization(channels="hsv_value", dtype="float64", jit_compile=False)(rgb).numpy()
    assert_same_pixels(hsv[0], exposure.equalize_adapthist(rgb[0]), "hsv_value:")  # skimage's RGB default


def test_layers_refuse_other_ranks():
    with pytest.raises(ValueError, match=r"`images.shape` must be 5-D \(N, D, H, W, C\) for AdaptiveEqualization3D"):
        AdaptiveEqualization3D()(keras.Input(SHAPE_3D))
    with pytest.raises(ValueError, match=r"use tf_histeq.layers.AdaptiveEqualization3D"):
        AdaptiveEqualization()(keras.Input((*SHAPE_3D, 1)))
    with pytest.raises(ValueError, match=r"`images.shape` must be 4-D \(N, H, W, C\) for AdaptiveEqualization"):
        AdaptiveEqualization()(np.zeros(SHAPE_2D, np.uint8))
    with pytest.raises(TypeError, match="`mask` must be None"):
        AdaptiveEqualization()(np.zeros((1, *SHAPE_2D, 1), np.uint8), mask=np.ones(SHAPE_2D, bool))


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(clip_limit=2.0), ValueError, "`clip_limit` must be a number in [0, 1]"),
        (dict(clip_limit=float("nan")), ValueError, "`clip_limit` must be a number in [0, 1]"),
        (dict(kernel_size=0), ValueError, "`kernel_size` must be at least 1"),
        (dict(nbins=0), ValueError, "`nbins` must be an int of at least 1"),
        (dict(channels="lab"), ValueError, "`channels` must be one of 'per_channel', 'hsv_value'"),
        (dict(spatial_dims=3), ValueError, "Unrecognized keyword arguments passed to AdaptiveEqualization"),
    ],
)
def test_bad_config_fails_when_built(kwargs, error, words):
    with pytest.raises(error) as caught:
        AdaptiveEqualization(**kwargs)
    assert words in str(caught.value)


def test_config_round_trip():
    layer = AdaptiveEqualization3D(kernel_size=[2, 3, 4], clip_limit=0.05, nbins=128, jit_compile=False)
    config = layer.get_config()
    assert config["kernel_size"] == (2, 3, 4)
    again = AdaptiveEqualization3D.from_config({**config, "kernel_size": [2, 3, 4]})  # as JSON gives it
    assert again.get_config() == config


@pytest.mark.slow
def test_export_and_default_xla(volume_model, tmp_path):
    """`model.export` keeps the plain op (no XLA call); the reloaded SavedModel gives the same values."""
    model, volumes = volume_model
    inputs = keras.Input((*SHAPE_3D, 1), dtype="uint16")
    xla = keras.Model(inputs, AdaptiveEqualization3D(kernel_size=(3, 5, 7), clip_limit=0.02, dtype="float64")(inputs))
    expected = model.predict(volumes, verbose=0)  # plain op in the traced step (jit_compile=False)
    assert_same_pixels(expected, model(volumes).numpy(), "predict vs eager:")
    assert_same_pixels(xla.predict(volumes, verbose=0), expected, "jit_compile='auto' (XLA in predict):")
    xla.export(str(tmp_path / "saved"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))
    assert_same_pixels(reloaded.serve(tf.constant(volumes)).numpy(), expected, "exported SavedModel:")
