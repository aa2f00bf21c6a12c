"""The layers in tf_keras (Keras 2): the twins of the Keras 3 layers, and a layer of one Keras in the other's model.

In this process `tf.keras` is Keras 3: the twins (`tf_histeq.keras2`) are
called eagerly and checked pixel by pixel against the ops, and the
cross-Keras errors are raised in both directions. The models (Sequential and
Functional, `fit`, `predict`, the three save formats, the SavedModel's serving
signature) run in one fresh process with `TF_USE_LEGACY_KERAS=1`, where
`tf.keras` and `tf_histeq.layers` are tf_keras's (slow tier); its outputs are
compared here with the ops.
"""

from __future__ import annotations

import inspect
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

tf_keras = pytest.importorskip("tf_keras")

import tf_histeq  # noqa: E402
from tests import _images  # noqa: E402
from tests._references import assert_same_pixels  # noqa: E402
from tests._subprocess import python_env, run_npz_script  # noqa: E402
from tf_histeq import keras2, keras3, layers  # noqa: E402
from tf_histeq.layers import _keras2, _kerases  # noqa: E402

CLAHE_KWARGS = {"clip_limit": 3.0, "tile_grid_size": (2, 3)}


@pytest.fixture(scope="module")
def images():
    return _images.batch(3, (24, 30, 1))


def test_every_layer_has_a_registered_twin_with_the_same_arguments():
    assert layers.__all__ == keras2.__all__ == keras3.__all__ == list(_kerases.LAYERS)
    for name in _kerases.LAYERS:
        ours, theirs = getattr(keras2, name), getattr(keras3, name)
        assert getattr(layers, name) is theirs  # tf.keras is Keras 3 here
        assert issubclass(ours, tf_keras.layers.Layer) and not issubclass(ours, keras.layers.Layer)
        assert (ours.__name__, ours.__module__) == (name, "tf_histeq.keras2")
        assert inspect.signature(ours.__init__) == inspect.signature(theirs.__init__)
        assert ours.__doc__ == theirs.__doc__
        assert tf_keras.saving.get_registered_object(f"tf_histeq>{name}") is ours


# Constructor arguments for listed layers that have no usable defaults (none so far).
LAYER_KWARGS: dict[str, dict] = {}


@pytest.mark.parametrize("name", list(_kerases.LAYERS))
def test_every_listed_layer_gives_the_keras3_pixels(images, name):
    """Each twin, made with its defaults (adapted if it adapts, seeded if random), as its Keras 3 class.

    The Keras 3 layers are held to the ops and the reference libraries by their own tests; here
    every layer listed, those added later included, is held to its Keras 3 class.
    """
    theirs_class, ours_class = getattr(keras3, name), getattr(keras2, name)
    if name.endswith("3D"):  # a batch of two volumes (N, D, H, W, C)
        data = np.stack([_images.batch(4, (24, 30, 1)), _images.batch(4, (24, 30, 1))[::-1]])
    else:
        data = images
    kwargs = dict(LAYER_KWARGS.get(name, {}))
    if "seed" in inspect.signature(theirs_class.__init__).parameters:
        kwargs["seed"] = 7
    theirs, ours = theirs_class(**kwargs), ours_class(**kwargs)
    if hasattr(theirs, "adapt"):
        theirs.adapt(data[::-1])
        ours.adapt(data[::-1])
    assert_same_pixels(ours(data).numpy(), theirs(data).numpy(), f"{name} twin vs Keras 3")
    assert_same_pixels(
        ours(data, training=False).numpy(), theirs(data, training=False).numpy(), f"{name} training=False"
    )
    assert ours_class.from_config(ours.get_config()).get_config() == ours.get_config()


@pytest.mark.parametrize(
    ("name", "kwargs", "op"),
    [
        ("HistogramEqualization", {"method": "pil"}, lambda x: tf_histeq.equalize_hist(x, method="pil")),
        ("CLAHE", CLAHE_KWARGS, lambda x: tf_histeq.clahe(x, **CLAHE_KWARGS)),
    ],
)
def test_twins_give_the_ops_pixels(images, name, kwargs, op):
    expected = tf.cast(op(images), tf.float32).numpy()
    layer = getattr(keras2, name)(**kwargs)
    assert_same_pixels(layer(images).numpy(), expected, name)
    assert_same_pixels(
        layer(images, mask=_images.xray_mask((24, 30))).numpy(),
        tf.cast(getattr(tf_histeq, layer._OP)(images, mask=_images.xray_mask((24, 30)), **kwargs), tf.float32).numpy(),
        f"{name} masked",
    )


def test_matching_twin_adapts_to_the_ops_reference(images):
    layer = keras2.HistogramMatching()
    layer.adapt(images[::-1])
    expected = tf_histeq.match_histograms(images, tf_histeq.reference_histogram(images[::-1]))
    assert_same_pixels(layer(images).numpy(), tf.cast(expected, tf.float32).numpy(), "HistogramMatching")
    assert layer.reference.counts.sum() == images.size


@pytest.mark.parametrize("name", ["RandomCLAHE", "RandomEqualization"])
def test_random_twins_draw_as_keras3_augment_in_training_only(images, name):
    ours, theirs = getattr(keras2, name)(seed=5), getattr(keras3, name)(seed=5)
    for _ in range(2):  # the same seed states, call after call
        assert_same_pixels(ours(images).numpy(), theirs(images).numpy(), f"{name} (direct call)")
    assert_same_pixels(ours(images, training=False).numpy(), images.astype(np.float32), f"{name} inference")
    transformation = ours.get_random_transformation(images, seed=1)
    applied = ours.transform_images(images, transformation).numpy()
    assert transformation["apply"].numpy().any()
    for i, (apply, image) in enumerate(zip(transformation["apply"].numpy(), images, strict=True)):
        if name == "RandomCLAHE":
            limit = float(transformation["clip_limit"].numpy()[i])
            expected = tf_histeq.clahe(image, clip_limit=limit) if apply else image
        else:
            expected = tf_histeq.equalize_hist(image) if apply else image
        assert_same_pixels(applied[i], tf.cast(expected, tf.float32).numpy(), f"{name} image {i}")


def test_twins_in_tf_data_and_with_dict_inputs(images):
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(3)
    mapped = next(iter(dataset.map(keras2.CLAHE(**CLAHE_KWARGS)))).numpy()
    assert_same_pixels(mapped, tf_histeq.clahe(images, **CLAHE_KWARGS).numpy().astype(np.float32), "dataset.map")
    labels = np.arange(len(images))
    out = keras2.RandomEqualization(factor=1.0, seed=1)({"images": images, "labels": labels})
    assert_same_pixels(out["images"].numpy(), tf_histeq.equalize_hist(images).numpy().astype(np.float32), "dict")
    assert_same_pixels(np.asarray(out["labels"]), labels, "labels")


def _message(error) -> str:
    return str(error.value)


def test_a_layer_in_the_other_keras_model_says_which_is_which():
    # Functional: caught in the layer's own call.
    with pytest.raises(TypeError) as error:
        keras3.CLAHE()(tf_keras.Input((16, 16, 1), dtype="uint8"))
    assert "a tf_keras (Keras 2) KerasTensor" in _message(error) and "use tf_histeq.keras2.CLAHE" in _message(error)
    assert "TF_USE_LEGACY_KERAS=1" in _message(error)
    with pytest.raises(TypeError) as error:
        keras2.HistogramMatching(reference=[1, 2, 3])(keras.Input((16, 16, 1), dtype="uint8"))
    assert "a Keras 3 KerasTensor" in _message(error) and "use tf_histeq.keras3.HistogramMatching" in _message(error)
    with pytest.raises(TypeError, match=r"use tf_histeq\.keras2\.RandomCLAHE"):  # a dict of images and labels
        keras3.RandomCLAHE()({"images": tf_keras.Input((16, 16, 1), dtype="uint8"), "labels": np.zeros(1)})
    # Sequential: each Keras refuses a foreign layer before any of ours runs; its message quotes the layer.
    with pytest.raises(TypeError) as error:
        tf_keras.Sequential([tf_keras.Input((16, 16, 1), dtype="uint8"), keras3.RandomCLAHE()])
    assert "(a Keras 3 layer; in a tf_keras (Keras 2) model use tf_histeq.keras2.RandomCLAHE)" in _message(error)
    with pytest.raises(ValueError) as error:
        keras.Sequential([keras.Input((16, 16, 1), dtype="uint8"), keras2.RandomEqualization()])
    assert "(a tf_keras (Keras 2) layer; in a Keras 3 model use tf_histeq.keras3.RandomEqualization)" in _message(error)


class TestTwinOfALaterLayer:
    """What a layer written later (volumes, adaptive, standardization) gets by being listed in `LAYERS`."""

    def test_subclass_with_super_properties_and_state(self, images):
        class Equalization3Levels(keras3.HistogramEqualization):
            def __init__(self, *, levels=3, **kwargs):
                super().__init__(**kwargs)
                self.levels = levels

            @property
            def step(self):
                return 255 // (self.levels - 1)

            def call(self, images, mask=None, training=None):
                equalized = super().call(images, mask=mask, training=training)
                return tf.round(equalized / self.step) * self.step

            def get_config(self):
                return {**super().get_config(), "levels": self.levels}

            def compute_output_spec(self, images, mask=None, training=None):  # Keras 3's only: may use keras
                return keras.KerasTensor(super().compute_output_spec(images, mask).shape, dtype=self.compute_dtype)

        ours = _keras2.twin(Equalization3Levels)
        assert ours.__mro__[1] is keras2.HistogramEqualization and _keras2.twin(Equalization3Levels) is ours
        layer = ours(levels=3)
        expected = np.round(tf_histeq.equalize_hist(images).numpy() / 127) * 127
        assert_same_pixels(layer(images).numpy(), expected.astype(np.float32), "twin of a subclass")
        assert ours.from_config(layer.get_config()).levels == 3
        assert_same_pixels(layer(images).numpy(), Equalization3Levels()(images).numpy(), "twin vs Keras 3")

    def test_a_method_using_keras3_itself_is_refused_by_name(self):
        class Noisy(keras3.HistogramEqualization):
            def call(self, images, mask=None, training=None):
                return super().call(images) + keras.random.normal(tf.shape(images))

        with pytest.raises(TypeError, match=r"Noisy\.call uses `keras` of Keras 3 itself"):
            _keras2.twin(Noisy)

        class _Shaped:  # a mixin shared as it is by both Kerases: checked too
            def compute_output_shape(self, input_shape, mask_shape=None):
                return keras.ops.shape(input_shape)

        class Shaped(_Shaped, keras3.HistogramEqualization):
            pass

        with pytest.raises(TypeError, match=r"_Shaped\.compute_output_shape uses `keras` of Keras 3 itself"):
            _keras2.twin(Shaped)


# The models, under TF_USE_LEGACY_KERAS=1: tf.keras and tf_histeq.layers are tf_keras's.
LEGACY_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import tensorflow as tf
    import tf_keras
    import tf_histeq
    from tf_histeq import layers, keras3

    data = np.load(sys.argv[1])
    x, reference, out = data["images"], data["reference"], {}
    assert tf.keras.layers.Layer is tf_keras.layers.Layer
    out["modules"] = np.array(sorted({getattr(layers, name).__module__ for name in layers.__all__}))
    try:
        tf.keras.Sequential([tf.keras.Input((24, 30, 1), dtype="uint8"), keras3.CLAHE()])
    except TypeError as error:
        out["sequential_error"] = np.array(str(error))
    try:
        keras3.CLAHE()(tf.keras.Input((24, 30, 1), dtype="uint8"))
    except TypeError as error:
        out["functional_error"] = np.array(str(error))

    matching = layers.HistogramMatching(name="match")
    matching.adapt(reference)
    inputs = tf.keras.Input((None, None, 1), dtype="uint8")
    model = tf.keras.Model(inputs, {
        "equalize": layers.HistogramEqualization(method="pil", name="equalize")(inputs),
        "clahe": layers.CLAHE(clip_limit=3.0, tile_grid_size=(2, 3), name="clahe")(inputs),
        "match": matching(inputs),
        "random_clahe": layers.RandomCLAHE(seed=1, name="random_clahe")(inputs),
        "random_equalize": layers.RandomEqualization(factor=1.0, seed=2, name="random_equalize")(inputs),
    })
    for key, value in model.predict(x, verbose=0).items():
        out[f"predict/{key}"] = value
    for key, value in model(x, training=True).items():
        out[f"training/{key}"] = value.numpy()
    for name in ("savedmodel", "model.h5", "model.keras"):
        path = os.path.join(os.path.dirname(sys.argv[2]), name)
        model.save(path)
        loaded = tf.keras.models.load_model(path)
        out[f"{name}/classes"] = np.array(sorted(type(layer).__module__ for layer in loaded.layers[1:]))
        for key, value in loaded.predict(x, verbose=0).items():
            out[f"{name}/{key}"] = value
    serve = tf.saved_model.load(os.path.join(os.path.dirname(sys.argv[2]), "savedmodel")).signatures["serving_default"]
    for key, value in serve(tf.constant(x)).items():
        out[f"serving/{key}"] = value.numpy()

    sequential = tf.keras.Sequential([
        tf.keras.Input((24, 30, 1), dtype="uint8"),
        layers.RandomEqualization(factor=1.0, seed=3),
        layers.CLAHE(clip_limit=3.0, tile_grid_size=(2, 3)),
    ])
    sequential.compile(loss="mse", metrics=[lambda y, p: tf.reduce_mean(p)])
    tf_histeq.clear_compiled()
    target = np.zeros(x.shape, np.float32)
    history = sequential.fit(x, target, batch_size=len(x), epochs=1, verbose=0).history
    out["fit_mean"] = np.array(history["<lambda>"][0])
    out["evaluate_mean"] = np.array(sequential.evaluate(x, target, batch_size=len(x), verbose=0)[1])
    out["sequential_predict"] = sequential.predict(x, verbose=0)
    out["compiled"] = np.array(sorted(entry.function for entry in tf_histeq.compiled_shapes() if entry.compiled))
    np.savez(sys.argv[2], **out)
    """
)


@pytest.mark.slow
def test_models_under_tf_use_legacy_keras(images, tmp_path):
    reference = images[::-1].copy()
    out = run_npz_script(
        LEGACY_SCRIPT, tmp_path, env=python_env(TF_USE_LEGACY_KERAS="1"), images=images, reference=reference
    )
    assert list(out["modules"]) == ["tf_histeq.keras2"]  # every layer of tf_histeq.layers: tf_keras's
    assert "use tf_histeq.keras2.CLAHE" in str(out["sequential_error"])
    assert "use tf_histeq.keras2.CLAHE" in str(out["functional_error"])

    def as_float(result):
        return tf.cast(result, tf.float32).numpy()

    expected = {
        "equalize": as_float(tf_histeq.equalize_hist(images, method="pil")),
        "clahe": as_float(tf_histeq.clahe(images, **CLAHE_KWARGS)),
        "match": as_float(tf_histeq.match_histograms(images, tf_histeq.reference_histogram(reference))),
        "random_clahe": images.astype(np.float32),  # inference: unchanged
        "random_equalize": images.astype(np.float32),
    }
    for way in ("predict", "savedmodel", "model.h5", "model.keras", "serving"):
        for key, value in expected.items():
            assert_same_pixels(out[f"{way}/{key}"], value, f"{way} {key}")
    for name in ("savedmodel", "model.h5", "model.keras"):
        assert set(out[f"{name}/classes"]) == {"tf_histeq.keras2"}, name
    # Training: the augmentations transform, as the Keras 3 layers with the same seeds do.
    for key in ("equalize", "clahe", "match"):
        assert_same_pixels(out[f"training/{key}"], expected[key], f"training {key}")
    assert_same_pixels(out["training/random_equalize"], as_float(tf_histeq.equalize_hist(images)), "training")
    assert_same_pixels(out["training/random_clahe"], keras3.RandomCLAHE(seed=1)(images).numpy(), "training")
    # fit equalizes every image (factor 1) before CLAHE; evaluate and predict do not.
    trained = tf_histeq.clahe(tf_histeq.equalize_hist(images), **CLAHE_KWARGS).numpy().astype(np.float64)
    inferred = tf_histeq.clahe(images, **CLAHE_KWARGS).numpy().astype(np.float64)
    assert np.isclose(out["fit_mean"], trained.mean(), rtol=1e-6), (out["fit_mean"], trained.mean())
    assert np.isclose(out["evaluate_mean"], inferred.mean(), rtol=1e-6), (out["evaluate_mean"], inferred.mean())
    assert abs(trained.mean() - inferred.mean()) > 1  # the two means tell training from inference
    assert_same_pixels(out["sequential_predict"], inferred.astype(np.float32), "Sequential predict")
    # tf_keras's fit, evaluate and predict steps compile the ops with XLA, as Keras 3's do.
    assert set(out["compiled"]) == {"clahe", "transform"}, out["compiled"]
