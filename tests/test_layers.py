"""Keras layers: the contract of `HistogramEqualization` and `CLAHE` over a CASES registry.

Every check compares the layer exactly with the function it wraps, and, where
one exists, with the reference library (OpenCV, Pillow) itself. Mixed precision
is in test_mixed_precision.py, gradients in test_gradients.py.
"""

from __future__ import annotations

import inspect
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests import _images
from tests._references import assert_same_pixels, cv2_clahe, cv2_equalize, pil_equalize
from tf_histeq.layers import CLAHE, HistogramEqualization

# (layer class, function, kwargs): each case is checked against the function with the same kwargs.
CASES = [
    pytest.param(HistogramEqualization, tf_histeq.equalize_hist, {}, id="he"),
    pytest.param(
        HistogramEqualization, tf_histeq.equalize_hist, {"method": "pil", "channels": "joint"}, id="he-pil-joint"
    ),
    pytest.param(CLAHE, tf_histeq.clahe, {}, id="clahe"),
    pytest.param(
        CLAHE,
        tf_histeq.clahe,
        {"clip_limit": 3.0, "tile_grid_size": (2, 3), "channels": "luminance"},
        id="clahe-3-2x3-luma",
    ),
]
# One case per layer with options other than the defaults, for the costlier checks (a compiled
# model each): passing the options on is checked for every case by the cheap tests.
CONFIGURED = [CASES[1], CASES[3]]
LAYERS = [
    pytest.param(HistogramEqualization, tf_histeq.equalize_hist, id="HistogramEqualization"),
    pytest.param(CLAHE, tf_histeq.clahe, id="CLAHE"),
]

SHAPE = (24, 20, 3)


def batch(n: int = 2, shape=SHAPE, dtype=np.uint8) -> np.ndarray:
    """`n` different low-contrast images, so that per-image histograms matter."""
    return _images.batch(n, shape, dtype)


def expected(function, images, kwargs, dtype=np.float32) -> np.ndarray:
    return function(images, **kwargs).numpy().astype(dtype)


def functional(layer, shape=(None, None, 3), dtype="uint8") -> keras.Model:
    inputs = keras.Input(shape=shape, dtype=dtype)
    return keras.Model(inputs, layer(inputs))


class TestSignature:
    @pytest.mark.parametrize(("layer_cls", "function"), LAYERS)
    def test_layer_mirrors_function_options(self, layer_cls, function):
        def options(obj, skip):
            return {
                name: (p.default, p.kind) for name, p in inspect.signature(obj).parameters.items() if name not in skip
            }

        # jit_compile included: the layer and the op called eagerly take it alike (one runner decides).
        # The layout (`spatial_dims`) is the class's: HistogramEqualization is 2-D, HistogramEqualization3D 3-D.
        assert options(layer_cls, {"kwargs"}) == options(function, {"images", "mask", "spatial_dims"})

    @pytest.mark.parametrize(("layer_cls", "function"), LAYERS)
    def test_registered_under_the_package_name(self, layer_cls, function):
        assert keras.saving.get_registered_name(layer_cls) == f"tf_histeq>{layer_cls.__name__}"
        assert keras.saving.get_registered_object(f"tf_histeq>{layer_cls.__name__}") is layer_cls

    @pytest.mark.parametrize(("layer_cls", "function"), LAYERS)
    def test_supports_jit(self, layer_cls, function):
        assert layer_cls().supports_jit is True


class TestValidation:
    @pytest.mark.parametrize(
        ("layer_cls", "function", "kwargs", "error"),
        [
            (HistogramEqualization, tf_histeq.equalize_hist, {"method": "cv2"}, ValueError),
            (HistogramEqualization, tf_histeq.equalize_hist, {"channels": "rgb"}, ValueError),
            (HistogramEqualization, tf_histeq.equalize_hist, {"bins": 1}, ValueError),
            (HistogramEqualization, tf_histeq.equalize_hist, {"bins": 256.0}, TypeError),
            (HistogramEqualization, tf_histeq.equalize_hist, {"value_range": (255, 0)}, ValueError),
            (HistogramEqualization, tf_histeq.equalize_hist, {"value_range": "0-255"}, TypeError),
            (HistogramEqualization, tf_histeq.equalize_hist, {"value_range": (0, float("nan"))}, ValueError),
            (CLAHE, tf_histeq.clahe, {"clip_limit": "2"}, TypeError),
            (CLAHE, tf_histeq.clahe, {"clip_limit": float("inf")}, ValueError),
            (CLAHE, tf_histeq.clahe, {"tile_grid_size": (0, 8)}, ValueError),
            (CLAHE, tf_histeq.clahe, {"tile_grid_size": (8.0, 8)}, TypeError),
            (CLAHE, tf_histeq.clahe, {"tile_grid_size": 8}, TypeError),
            (CLAHE, tf_histeq.clahe, {"channels": "joint"}, ValueError),
        ],
        ids=lambda v: v.__name__ if isinstance(v, type) else None,
    )
    def test_bad_config_raises_in_init_with_the_function_message(self, layer_cls, function, kwargs, error):
        with pytest.raises(error) as from_function:
            function(np.zeros((8, 8, 3), np.uint8), **kwargs)
        with pytest.raises(error) as from_layer:
            layer_cls(**kwargs)
        assert str(from_layer.value) == str(from_function.value)
        name = next(iter(kwargs))
        assert str(from_layer.value).startswith(f"`{name}` must ")
        assert f"Received: {name}=" in str(from_layer.value)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"bins": 4096}, r"`bins` must be at most 2048, the levels float16 holds distinctly. Received: bins=4096."),
            (
                {"value_range": (0, 65535)},
                r"`value_range` must lie within the float16 range .*Received: value_range=\(0, 65535\)",
            ),
        ],
        ids=["bins", "value_range"],
    )
    def test_levels_that_the_compute_dtype_cannot_hold_raise_in_init(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            tf_histeq.equalize_hist(np.zeros((4, 4), np.float16), **kwargs)
        with pytest.raises(ValueError, match=match):
            HistogramEqualization(dtype="mixed_float16", **kwargs)
        HistogramEqualization(**kwargs)  # float32 holds them

    def test_symbolic_input_of_unsupported_dtype_raises_when_the_model_is_built(self):
        with pytest.raises(TypeError, match=r"Received: images.dtype='int64'"):
            HistogramEqualization()(keras.Input((None, None, 3), dtype="int64"))

    def test_symbolic_input_with_wrong_channels_raises_when_the_model_is_built(self):
        with pytest.raises(ValueError, match=r"`channels` must be .*Received: channels='luminance'"):
            HistogramEqualization(channels="luminance")(keras.Input((None, None, 1), dtype="uint8"))


class TestConfig:
    @pytest.mark.parametrize(("layer_cls", "function", "kwargs"), CASES)
    def test_get_config_from_config_round_trip(self, layer_cls, function, kwargs):
        layer = layer_cls(name="eq", **kwargs)
        config = layer.get_config()
        clone = layer_cls.from_config(json.loads(json.dumps(config)))  # lists, as from a .keras file
        assert clone.get_config() == config
        for key, value in kwargs.items():
            assert config[key] == value
        images = batch()
        assert_same_pixels(clone(images).numpy(), layer(images).numpy())

    def test_config_normalizes_json_values(self):
        layer = HistogramEqualization(value_range=[0.0, 1.0], bins=np.int64(64))
        assert layer.get_config()["value_range"] == (0, 1)
        assert layer.get_config()["bins"] == 64
        assert type(layer.get_config()["bins"]) is int


def pil_joint(images: np.ndarray) -> np.ndarray:
    """Pillow with one histogram over all channels of each image: its channels laid side by side as one plane."""
    return np.stack([pil_equalize(image.reshape(image.shape[0], -1)).reshape(image.shape) for image in images])


class TestContract:
    @pytest.mark.parametrize(
        ("layer_cls", "kwargs", "reference"),
        [
            pytest.param(HistogramEqualization, {}, cv2_equalize, id="he-opencv"),
            pytest.param(HistogramEqualization, {"method": "pil", "channels": "joint"}, pil_joint, id="he-pil-joint"),
            pytest.param(CLAHE, {}, lambda images: cv2_clahe(images, 2.0, (8, 8)), id="clahe-opencv"),
        ],
    )
    def test_eager_call_matches_the_reference_library(self, layer_cls, kwargs, reference):
        images = batch(3)
        out = layer_cls(**kwargs)(images)
        assert out.dtype == tf.float32
        assert_same_pixels(out.numpy(), reference(images).astype(np.float32))

    @pytest.mark.parametrize(("layer_cls", "function", "kwargs"), CASES)
    def test_eager_call_equals_function(self, layer_cls, function, kwargs):
        images = batch(3)
        out = layer_cls(**kwargs)(images)
        assert out.dtype == tf.float32
        reference = expected(function, images, kwargs)
        assert (reference != images).any(), "the designed images must make the LUTs work"
        assert_same_pixels(out.numpy(), reference)

    @pytest.mark.parametrize(("layer_cls", "function", "kwargs"), CASES)
    def test_float_input_0_255_equals_uint8_input(self, layer_cls, function, kwargs):
        images = batch()
        as_float = images.astype(np.float32)
        assert_same_pixels(function(as_float, **kwargs).numpy(), function(images, **kwargs).numpy().astype(np.float32))
        layer = layer_cls(**kwargs)
        assert_same_pixels(layer(as_float).numpy(), layer(images).numpy())

    @pytest.mark.parametrize(("layer_cls", "function", "kwargs"), CASES)
    def test_histograms_are_per_image(self, layer_cls, function, kwargs):
        first, mate, other_mate = batch(3)
        layer = layer_cls(**kwargs)
        together = layer(np.stack([first, mate])).numpy()[0]
        assert_same_pixels(together, layer(np.stack([first, other_mate])).numpy()[0])
        assert_same_pixels(together, layer(first).numpy())  # rank 3 works too

    def test_uint16_input_keeps_65536_levels(self):
        images = batch(2, dtype=np.uint16)
        reference = expected(tf_histeq.equalize_hist, images, {})
        assert len(np.unique(reference)) > 256
        model = functional(HistogramEqualization(), dtype="uint16")
        assert_same_pixels(model.predict(images, verbose=0), reference)
        # A float32 input (the default keras.Input) needs the range spelled out.
        as_float = functional(HistogramEqualization(value_range=(0, 65535), bins=65536), dtype="float32")
        assert_same_pixels(as_float.predict(images.astype(np.float32), verbose=0), reference)

    @pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
    @pytest.mark.parametrize(("layer_cls", "function", "kwargs"), [CASES[0], CASES[3]])
    def test_integer_dtype_outputs_the_ops_integers(self, layer_cls, function, kwargs, dtype):
        """`dtype` set to the input's: the op's integers come out, in `predict` and in a call."""
        images = batch(3, dtype=dtype)
        reference = expected(function, images, kwargs, dtype=dtype)
        layer = layer_cls(dtype=np.dtype(dtype).name, **kwargs)
        model = functional(layer, dtype=np.dtype(dtype).name)
        assert_same_pixels(model.predict(images, verbose=0), reference)
        assert_same_pixels(layer(images).numpy(), reference)

    @pytest.mark.parametrize(("layer_cls", "function", "kwargs"), CONFIGURED)
    def test_xla_equals_function(self, layer_cls, function, kwargs):
        layer = layer_cls(**kwargs)
        images = batch()
        compiled = tf.function(layer, jit_compile=True)
        assert_same_pixels(compiled(tf.constant(images)).numpy(), expected(function, images, kwargs))


class TestModels:
    @pytest.mark.parametrize(("layer_cls", "function", "kwargs"), CASES)
    def test_functional_predict_equals_function(self, layer_cls, function, kwargs):
        images = batch(3)
        model = functional(layer_cls(**kwargs), dtype="uint8")
        assert_same_pixels(model.predict(images, verbose=0, batch_size=2), expected(function, images, kwargs))

    @pytest.mark.parametrize(("layer_cls", "function", "kwargs"), [CASES[0], CASES[2]])
    def test_functional_float_input_predict_equals_function(self, layer_cls, function, kwargs):
        images = batch(3)
        model = functional(layer_cls(**kwargs), dtype="float32")  # keras.Input's default dtype
        assert_same_pixels(model.predict(images.astype(np.float32), verbose=0), expected(function, images, kwargs))

    @pytest.mark.parametrize(("layer_cls", "function", "kwargs"), CONFIGURED)
    def test_sequential_predict_equals_function(self, layer_cls, function, kwargs):
        images = batch(3)
        model = keras.Sequential([keras.Input(SHAPE, dtype="uint8"), layer_cls(**kwargs)])
        assert_same_pixels(model.predict(images, verbose=0), expected(function, images, kwargs))

    def test_sequential_without_input_is_built_on_first_call(self):
        images = batch(3)
        model = keras.Sequential([HistogramEqualization()])
        assert_same_pixels(model.predict(images, verbose=0), expected(tf_histeq.equalize_hist, images, {}))

    def test_subclassed_model_equalizes_in_training_and_inference(self):
        class Model(keras.Model):
            def __init__(self):
                super().__init__()
                self.equalize = HistogramEqualization()

            def call(self, images, training=None):
                return self.equalize(images, training=training)

        images = batch(3)
        reference = expected(tf_histeq.equalize_hist, images, {})
        model = Model()
        assert_same_pixels(model(images, training=True).numpy(), reference)
        assert_same_pixels(model(images, training=False).numpy(), reference)
        assert_same_pixels(model.predict(images, verbose=0), reference)

    @pytest.mark.parametrize(
        ("layer", "function", "kwargs"),
        [
            pytest.param(HistogramEqualization, tf_histeq.equalize_hist, {}, id="HistogramEqualization"),
            pytest.param(CLAHE, tf_histeq.clahe, {"tile_grid_size": (2, 2)}, id="CLAHE"),
        ],
    )
    def test_xla_training_step_computes_the_function_pixels(self, layer, function, kwargs):
        """The layer's output inside the XLA-compiled train step, counted against the function by a metric."""
        images = batch(4, shape=(16, 16, 1))
        expected = function(images, **kwargs).numpy().astype(np.float32)
        targets = {"prediction": np.arange(4, dtype=np.float32)[:, None], "equalized": expected}
        inputs = keras.Input((16, 16, 1), dtype="uint8")
        equalized = layer(name="equalized", **kwargs)(inputs)
        x = keras.layers.Rescaling(1 / 255)(equalized)
        prediction = keras.layers.Dense(1, name="prediction")(keras.layers.Flatten()(x))
        model = keras.Model(inputs, {"prediction": prediction, "equalized": equalized})

        def differing_pixels(y_true, y_pred):  # per image; the metric is their mean over the images seen
            return tf.reduce_sum(tf.cast(tf.not_equal(y_true, y_pred), tf.float32), axis=[1, 2, 3])

        model.compile(
            optimizer="sgd", loss={"prediction": "mse"}, metrics={"equalized": [differing_pixels]}, jit_compile=True
        )
        history = model.fit(images, targets, epochs=2, batch_size=2, shuffle=False, verbose=0).history
        assert history["equalized_differing_pixels"] == [0.0, 0.0]  # every batch of both epochs
        assert np.isfinite(history["loss"]).all()
        # The metric counts: the unequalized images differ from the expected ones.
        assert differing_pixels(expected, images.astype(np.float32)).numpy().min() > 100


class TestMask:
    def masked(self):
        images = batch(2, shape=(24, 20, 1))
        mask = np.ones((2, 24, 20), bool)
        mask[0, :, :6] = False
        mask[1, :10] = False
        return images, mask

    @pytest.mark.parametrize(("layer_cls", "function", "kwargs"), [CASES[0], CASES[2]])
    def test_mask_call_argument_equals_function_mask(self, layer_cls, function, kwargs):
        images, mask = self.masked()
        reference = expected(function, images, {**kwargs, "mask": mask})
        assert_same_pixels(layer_cls(**kwargs)(images, mask=mask).numpy(), reference)
        assert (reference != expected(function, images, kwargs)).any(), "the mask must change the result"

    def test_mask_input_in_a_functional_model(self):
        images, mask = self.masked()
        inputs = keras.Input((None, None, 1), dtype="uint8")
        mask_input = keras.Input((None, None), dtype="bool")
        model = keras.Model([inputs, mask_input], HistogramEqualization()(inputs, mask=mask_input))
        reference = expected(tf_histeq.equalize_hist, images, {"mask": mask})
        assert_same_pixels(model.predict([images, mask], verbose=0), reference)

    def test_keras_mask_from_masking_layer_is_the_histogram_mask_and_is_consumed(self):
        images = batch(2).astype(np.float32)
        images[:, :5] = 0.0  # a black border

        class Probe(keras.layers.Layer):
            def __init__(self):
                super().__init__()
                self.supports_masking = True

            def call(self, inputs, mask=None):
                self.seen = mask
                return inputs

        masked = keras.layers.Masking(0.0)(images)
        before, after = Probe(), Probe()
        out = after(HistogramEqualization()(before(masked)))
        reference = expected(tf_histeq.equalize_hist, images, {"mask": np.any(images != 0, axis=-1)})
        assert (reference != expected(tf_histeq.equalize_hist, images, {})).any()
        assert_same_pixels(out.numpy(), reference)
        assert before.seen is not None
        assert after.seen is None


class TestSerialization:
    @pytest.mark.parametrize(("layer_cls", "function", "kwargs"), CONFIGURED)
    def test_keras_file_round_trip(self, layer_cls, function, kwargs, tmp_path):
        images = batch()
        model = functional(layer_cls(**kwargs))
        model.save(tmp_path / "m.keras")
        loaded = keras.models.load_model(tmp_path / "m.keras")
        assert type(loaded.layers[-1]) is layer_cls
        assert loaded.layers[-1].get_config() == model.layers[-1].get_config()
        assert_same_pixels(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
        assert_same_pixels(loaded.predict(images, verbose=0), expected(function, images, kwargs))

    @pytest.mark.parametrize(("layer_cls", "function", "kwargs"), [CASES[0], CASES[3]])
    def test_saved_model_export_serves_the_same_output(self, layer_cls, function, kwargs, tmp_path):
        images = batch()
        model = functional(layer_cls(**kwargs))
        model.export(str(tmp_path / "served"), verbose=False)
        served = tf.saved_model.load(str(tmp_path / "served"))
        out = served.serve(tf.constant(images)).numpy()
        assert_same_pixels(out, model.predict(images, verbose=0))
        assert_same_pixels(out, expected(function, images, kwargs))
        other_size = batch(1, shape=(13, 31, 3))  # H and W stay dynamic in the signature
        assert_same_pixels(served.serve(tf.constant(other_size)).numpy(), expected(function, other_size, kwargs))


class TestDataset:
    @pytest.mark.parametrize(("layer_cls", "function", "kwargs"), CONFIGURED)
    def test_dataset_map_with_varying_sizes(self, layer_cls, function, kwargs):
        images = [batch(1, shape=shape)[0] for shape in [(24, 20, 3), (17, 33, 3), (40, 9, 3)]]
        ds = tf.data.Dataset.from_generator(
            lambda: iter(images), output_signature=tf.TensorSpec((None, None, 3), tf.uint8)
        )
        ds = ds.map(layer_cls(**kwargs), num_parallel_calls=tf.data.AUTOTUNE)
        outputs = list(ds.as_numpy_iterator())
        assert len(outputs) == len(images)
        for image, out in zip(images, outputs, strict=True):
            assert_same_pixels(out, expected(function, image, kwargs))

    def test_dataset_map_outside_the_tensorflow_backend(self, monkeypatch):
        """With another Keras backend the layer skips Keras's call machinery and runs on TF tensors."""
        layer = HistogramEqualization()
        monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
        images = batch(2)
        ds = tf.data.Dataset.from_tensor_slices(images.astype(np.float64)).map(layer)
        out = np.stack(list(ds.as_numpy_iterator()))
        assert out.dtype == np.float32  # float input cast to the compute dtype, as Keras does
        assert_same_pixels(out, expected(tf_histeq.equalize_hist, images, {}))
        assert_same_pixels(layer(images).numpy(), expected(tf_histeq.equalize_hist, images, {}))
        with pytest.raises(
            TypeError, match=r"`images` must be a TensorFlow tensor or NumPy array when the Keras backend is 'jax'"
        ):
            layer(keras.KerasTensor((None, 8, 8, 1), dtype="uint8"))
