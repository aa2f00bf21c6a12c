"""Random augmentation: per-image clip limits in `clahe`, the random layers, `random_map_fn`.

Every transformed image is compared exactly with OpenCV at the image's own
drawn limit (or with the function), every passed-through image with its input.
"""

from __future__ import annotations

import json
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests import _images
from tests._references import assert_same_pixels, cv2_clahe
from tests._subprocess import run_npz_script
from tf_histeq.data import random_map_fn
from tf_histeq.layers import RandomCLAHE, RandomEqualization

MAKERS = [_images.xray(), _images.band(0.4, 0.55), _images.beta(2, 5), _images.no_zeros(), _images.full_range()]
GRID = (2, 2)  # tiles of 24 x 20 pixels in the default images: clip count int(c * 480 / 256)


def batch(n: int, shape=(48, 40, 1), dtype=np.uint8) -> np.ndarray:
    """`n` different low-contrast images."""
    return np.stack([MAKERS[i % len(MAKERS)](shape, dtype) for i in range(n)])


def cv2_each(images: np.ndarray, limits, grid=GRID) -> np.ndarray:
    """OpenCV's CLAHE of every image at its own limit, given as OpenCV gets it (a double)."""
    return np.stack([cv2_clahe(image, float(limit), grid) for image, limit in zip(images, limits, strict=True)])


def assert_limits_matter(images: np.ndarray, limits, grid=GRID) -> None:
    """Each image's result at another image's limit differs: a batch-wide limit would be caught."""
    at_first = cv2_each(images, [limits[0]] * len(images), grid)
    mine = cv2_each(images, limits, grid)
    assert all((mine[i] != at_first[i]).any() for i in range(1, len(images)))


# --------------------------------------------------------------------------- clahe with per-image limits


class TestPerImageClipLimits:
    def test_each_image_is_cv2_at_its_own_limit(self, run):
        images = batch(5)
        limits = np.array([0.0, 0.7, 1.9, 3.3, 12.0], np.float32)  # float32: OpenCV gets float(c_i)
        assert_limits_matter(images, limits)
        out = run(tf_histeq.clahe, images, clip_limit=tf.constant(limits), tile_grid_size=GRID)
        assert_same_pixels(out, cv2_each(images, limits))

    def test_uint16_and_float64_limits(self):
        images = batch(3, dtype=np.uint16)
        limits = np.array([0.0, 300.0, 1.0])  # float64; counts int(c * 480 / 65536): none, 2, 1
        assert_limits_matter(images, limits)
        assert_same_pixels(
            tf_histeq.clahe(images, clip_limit=limits, tile_grid_size=GRID).numpy(), cv2_each(images, limits)
        )

    @pytest.mark.parametrize(
        "kwargs",
        [{"channels": "luminance"}, {"mask": _images.xray_mask((48, 40))}, {"alpha": True}],
        ids=["luminance", "mask", "alpha"],
    )
    def test_equals_one_call_per_image_with_every_option(self, kwargs):
        images = batch(3, shape=(48, 40, 3))
        limits = np.array([0.6, 2.2, 5.0], np.float32)
        out = tf_histeq.clahe(images, clip_limit=limits, tile_grid_size=GRID, **kwargs).numpy()
        for image, limit, result in zip(images, limits, out, strict=True):
            assert_same_pixels(
                result, tf_histeq.clahe(image, clip_limit=float(limit), tile_grid_size=GRID, **kwargs).numpy()
            )

    @pytest.mark.parametrize("limit", [np.array([2.5]), tf.constant(2.5), tf.constant([2.5], tf.float16)])
    def test_one_image_takes_shape_1_or_a_scalar_tensor(self, limit):
        image = batch(1)[0]
        assert_same_pixels(
            tf_histeq.clahe(image, clip_limit=limit, tile_grid_size=GRID).numpy(), cv2_clahe(image, 2.5, GRID)
        )

    def test_scalar_tensor_applies_to_the_whole_batch(self):
        images = batch(3)
        out = tf_histeq.clahe(images, clip_limit=tf.constant(1.5), tile_grid_size=GRID).numpy()
        assert_same_pixels(out, cv2_each(images, [1.5] * 3))

    def test_non_finite_limits_do_what_opencv_does(self):
        images = batch(4)
        limits = np.array([np.nan, -np.inf, np.inf, 0.0], np.float32)
        out = tf_histeq.clahe(images, clip_limit=limits, tile_grid_size=GRID).numpy()
        assert_same_pixels(out, cv2_each(images, limits))
        assert_same_pixels(out[:2], cv2_each(images[:2], [0.0, 0.0]))  # NaN and -inf: no clipping
        assert_same_pixels(out[2], cv2_clahe(images[2], 1e-9, GRID))  # +inf: a count of 1 per bin

    @pytest.mark.parametrize(
        ("limit", "error", "match"),
        [
            (
                np.array([1.0, 2.0]),
                ValueError,
                r"`clip_limit.shape` must be \(3,\): one limit per image of images.shape=\(3, 48, 40, 1\). Received: clip_limit.shape=\(2,\).",
            ),
            (
                np.ones((3, 1)),
                ValueError,
                r"`clip_limit.shape` must be \(\) or \(N,\): one limit per image. Received: clip_limit.shape=\(3, 1\).",
            ),
            (
                np.array([1, 2, 3]),
                TypeError,
                r"`clip_limit.dtype` must be a float dtype for per-image limits. Received: clip_limit.dtype='int64'.",
            ),
            (
                (1.0, 4.0),
                TypeError,
                r"`clip_limit` must be a number, or a float tensor .*Received: clip_limit=\(1.0, 4.0\). Hint: to sample limits from a \(min, max\) range",
            ),
            ([1.0, 2.0, 3.0], TypeError, r"Received: clip_limit=\[1.0, 2.0, 3.0\]. Hint: .*np.asarray"),
        ],
        ids=["length", "rank", "dtype", "tuple", "list"],
    )
    def test_bad_per_image_limits_raise_at_trace_time(self, limit, error, match):
        with pytest.raises(error, match=match):
            tf_histeq.clahe(batch(3), clip_limit=limit)

    def test_length_against_an_unknown_batch_is_checked_when_it_runs(self):
        traced = tf.function(
            lambda x: tf_histeq.clahe(x, clip_limit=tf.constant([1.0, 2.0])),
            input_signature=[tf.TensorSpec((None, 48, 40, 1), tf.uint8)],
        )
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"`clip_limit` must have one limit per image"):
            traced(batch(3))


# --------------------------------------------------------------------------- argument checks

BAD_ARGUMENTS = [
    (
        {"clip_limit": (4.0, 1.0)},
        ValueError,
        r"`clip_limit` must be a number >= 0 or a \(min, max\) range with 0 <= min <= max \(OpenCV units\). Received: clip_limit=\(4.0, 1.0\).",
    ),
    ({"clip_limit": -1.0}, ValueError, r"`clip_limit` must be a number >= 0 .*Received: clip_limit=-1.0."),
    ({"clip_limit": (-1, 2)}, ValueError, r"Received: clip_limit=\(-1, 2\)."),
    ({"clip_limit": (1.0, float("inf"))}, ValueError, r"Received: clip_limit=\(1.0, inf\)."),
    ({"clip_limit": "2"}, TypeError, r"`clip_limit` must be a number >= 0 .*Received: clip_limit='2'."),
    (
        {"factor": 1.5},
        ValueError,
        r"`factor` must be a number in \[0, 1\] \(the probability that an image is transformed\). Received: factor=1.5.",
    ),
    ({"factor": -0.1}, ValueError, r"Received: factor=-0.1."),
    ({"factor": "half"}, TypeError, r"`factor` must be a number in \[0, 1\].*Received: factor='half'."),
    (
        {"tile_grid_size": (0, 8)},
        ValueError,
        r"`tile_grid_size` must be two positive ints \(rows, cols\). Received: tile_grid_size=\(0, 8\).",
    ),
    (
        {"channels": "joint"},
        ValueError,
        r"`channels` must be one of 'per_channel', 'luminance', 'lab'. Received: channels='joint'.",
    ),
]


class TestArguments:
    @pytest.mark.parametrize(("kwargs", "error", "match"), BAD_ARGUMENTS, ids=lambda v: None)
    def test_layer_and_map_function_refuse_bad_clahe_arguments(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            RandomCLAHE(**kwargs)
        with pytest.raises(error, match=match):
            random_map_fn("clahe", seed=0, **kwargs)

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"factor": 2}, ValueError, r"`factor` must be a number in \[0, 1\].*Received: factor=2."),
            ({"method": "cv2"}, ValueError, r"`method` must be one of 'opencv', 'pil'. Received: method='cv2'."),
            ({"clip_limit": 2.0}, TypeError, r"`kwargs` must be keyword arguments of tf_histeq.equalize_hist"),
        ],
        ids=["factor", "method", "clip_limit"],
    )
    def test_equalization_arguments(self, kwargs, error, match):
        if "clip_limit" not in kwargs:
            with pytest.raises(error, match=match):
                RandomEqualization(**kwargs)
        with pytest.raises(error, match=match):
            random_map_fn("equalize_hist", seed=0, **kwargs)

    @pytest.mark.parametrize(
        ("seed", "error", "match"),
        [
            (1.5, TypeError, r"`seed` must be an int or None \(a random seed\). Received: seed=1.5."),
            (
                2**64,
                ValueError,
                r"`seed` must be an int in \[-2\*\*63, 2\*\*63\). Received: seed=18446744073709551616.",
            ),
        ],
    )
    def test_layer_seed(self, seed, error, match):
        with pytest.raises(error, match=match):
            RandomCLAHE(seed=seed)

    def test_map_function_needs_a_seed(self):
        with pytest.raises(TypeError, match=r"`seed` must be an int. Received: seed=None."):
            random_map_fn("clahe", seed=None)
        with pytest.raises(ValueError, match=r"`op` must be one of 'equalize_hist', 'clahe'. Received: op='he'."):
            random_map_fn("he", seed=0)

    def test_map_function_without_a_key_says_how_to_add_one(self):
        ds = tf.data.Dataset.from_tensor_slices((batch(2), [0, 1]))  # (image, label): no key
        with pytest.raises(
            TypeError,
            match=r"`element` must be a \(key, element\) pair with an int32 or int64 scalar key.*Hint: map `dataset.enumerate\(\)`",
        ):
            ds.map(random_map_fn("clahe", seed=0))


# --------------------------------------------------------------------------- the layers' contract


class TestLayerContract:
    def test_per_image_means_per_image(self):
        """Each image of a batch is CLAHE at its own drawn limit (kornia's #4572 applied the first to all)."""
        images = batch(6)
        layer = RandomCLAHE(clip_limit=(0.5, 6.0), tile_grid_size=GRID)
        transformation = layer.get_random_transformation(images, seed=12)
        limits = transformation["clip_limit"].numpy()
        assert transformation["clip_limit"].dtype == tf.float32 and limits.shape == (6,)
        assert transformation["apply"].dtype == tf.bool and transformation["apply"].numpy().all()
        assert len(set(limits.tolist())) == 6 and ((limits >= 0.5) & (limits < 6.0)).all()
        assert_limits_matter(images, limits)
        out = layer.transform_images(images, transformation)
        assert out.dtype == tf.float32
        assert_same_pixels(out.numpy(), cv2_each(images, limits).astype(np.float32))

    def test_factor_selects_images_and_the_others_pass_through(self):
        images = batch(8, shape=(48, 40, 3))
        layer = RandomEqualization(factor=0.5, method="pil")
        transformation = layer.get_random_transformation(images, seed=5)
        assert set(transformation) == {"apply"}
        apply = transformation["apply"].numpy()
        assert 0 < apply.sum() < 8
        out = layer.transform_images(images, transformation).numpy()
        equalized = tf_histeq.equalize_hist(images, method="pil").numpy()
        assert_same_pixels(out[apply], equalized[apply].astype(np.float32))
        assert_same_pixels(out[~apply], images[~apply].astype(np.float32))
        assert (equalized[~apply] != images[~apply]).any(), "passing through must be visible"

    def test_call_draws_from_the_seed_generator_and_same_seeds_give_same_outputs(self):
        images = batch(4)
        first, second, reference = (RandomCLAHE(tile_grid_size=GRID, factor=0.7, seed=3) for _ in range(3))
        calls = [first(images).numpy() for _ in range(2)]
        assert_same_pixels(calls[0], second(images).numpy())
        assert_same_pixels(calls[1], second(images).numpy())
        assert (calls[0] != calls[1]).any(), "the generator advances between calls"
        # A call is `transform_images(get_random_transformation(...))`, drawing from the layer's generator.
        assert_same_pixels(
            calls[0], reference.transform_images(images, reference.get_random_transformation(images)).numpy()
        )

    def test_training_false_passes_through_without_drawing(self):
        images = batch(3)
        layer = RandomCLAHE(seed=1)
        state = layer.generator.state.numpy().copy()
        assert_same_pixels(layer(images, training=False).numpy(), images.astype(np.float32))
        assert not layer.get_random_transformation(images, training=False)["apply"].numpy().any()
        np.testing.assert_array_equal(layer.generator.state.numpy(), state)

    def test_dict_input_keeps_every_other_entry(self):
        images = batch(3)
        data = {
            "images": images,
            "labels": np.array([1, 0, 2]),
            "bounding_boxes": {"boxes": np.array([[[1.0, 2.0, 8.0, 9.0]]] * 3), "labels": np.array([[1]] * 3)},
            "segmentation_masks": (images > 100).astype(np.uint8),
        }
        out = RandomCLAHE(tile_grid_size=GRID, seed=4)(data)
        assert set(out) == set(data)
        assert_same_pixels(out["images"].numpy(), RandomCLAHE(tile_grid_size=GRID, seed=4)(images).numpy())
        # The same values; Keras casts float inputs (here the float64 boxes) to the compute dtype.
        for key in ("labels", "segmentation_masks"):
            np.testing.assert_array_equal(out[key], data[key])
        for key in ("boxes", "labels"):
            np.testing.assert_array_equal(out["bounding_boxes"][key], data["bounding_boxes"][key])

    def test_unbatched_image(self):
        image = batch(1, shape=(48, 40, 3))[0]
        layer = RandomCLAHE(tile_grid_size=GRID)
        transformation = layer.get_random_transformation(image, seed=2)
        assert transformation["clip_limit"].shape == (1,)
        limit = float(transformation["clip_limit"].numpy()[0])
        assert_same_pixels(
            layer.transform_images(image, transformation).numpy(), cv2_clahe(image, limit, GRID).astype(np.float32)
        )
        assert layer(image).shape == image.shape

    def test_xla_equals_eager(self):
        images = batch(4)
        eager, compiled = (RandomCLAHE(tile_grid_size=GRID, factor=0.6, seed=8) for _ in range(2))
        xla = tf.function(lambda x: compiled(x, training=True), jit_compile=True)
        for _ in range(2):
            assert_same_pixels(xla(tf.constant(images)).numpy(), eager(images).numpy())

    def test_config_round_trip(self):
        layer = RandomCLAHE(clip_limit=[1.5, 3], tile_grid_size=(2, 3), factor=0.25, channels="luminance", seed=9)
        config = layer.get_config()
        assert (config["clip_limit"], config["factor"], config["seed"]) == ((1.5, 3.0), 0.25, 9)
        clone = RandomCLAHE.from_config(json.loads(json.dumps(config)))
        assert clone.get_config() == config
        images = batch(3, shape=(48, 40, 3))
        assert_same_pixels(clone(images).numpy(), layer(images).numpy())
        config = RandomEqualization(factor=0.3, method="pil", seed=1, name="eq").get_config()
        assert RandomEqualization.from_config(json.loads(json.dumps(config))).get_config() == config

    def test_mixed_float16(self):
        images = batch(3)
        layer = RandomCLAHE(tile_grid_size=GRID, dtype="mixed_float16")
        transformation = layer.get_random_transformation(images, seed=3)
        out = layer.transform_images(images.astype(np.float32), transformation)
        assert out.dtype == tf.float16
        expected = cv2_each(images, transformation["clip_limit"].numpy()).astype(np.float16)
        assert_same_pixels(out.numpy(), expected)

    def test_other_keras_backends_are_refused_with_the_way_out(self, monkeypatch):
        layer = RandomCLAHE()
        monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
        with pytest.raises(
            TypeError,
            match=r"`keras.backend.backend\(\)` must be 'tensorflow' for RandomCLAHE .*Received: keras.backend.backend\(\)='jax'. Hint: .*tf_histeq.data.random_map_fn",
        ):
            layer(batch(1))


class TestLayerInModels:
    def test_sequential_fit_under_xla_and_predict_passes_through(self):
        images = batch(4, shape=(16, 16, 1))
        model = keras.Sequential(
            [
                keras.Input((16, 16, 1), dtype="uint8"),
                RandomCLAHE(tile_grid_size=(2, 2), factor=0.5, seed=1),
                RandomEqualization(seed=2),
                keras.layers.Rescaling(1 / 255),
                keras.layers.Flatten(),
                keras.layers.Dense(1),
            ]
        )
        model.compile(optimizer="sgd", loss="mse", jit_compile=True)
        history = model.fit(images, np.zeros((4, 1), np.float32), epochs=2, batch_size=2, verbose=0)
        assert model.jit_compile is True and np.isfinite(history.history["loss"]).all()
        assert model.layers[0].generator.state.numpy()[1] == 4  # one draw per step
        probe = keras.Sequential(model.layers[:2])
        assert_same_pixels(probe.predict(images, verbose=0), images.astype(np.float32))

    def test_functional_fit_then_save_and_reload(self, tmp_path):
        images = batch(4)
        inputs = keras.Input((None, None, 1), dtype="uint8")
        augmented = RandomCLAHE(clip_limit=(2.0, 5.0), tile_grid_size=GRID, factor=0.5, seed=6, name="augment")(inputs)
        outputs = keras.layers.Dense(1)(
            keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(augmented))
        )
        model = keras.Model(inputs, outputs)
        augment = keras.Model(inputs, augmented)
        fresh = keras.models.clone_model(augment)  # the same config, its generator at the seed
        model.compile(optimizer="sgd", loss="mse")
        model.fit(images, np.zeros(4, np.float32), batch_size=2, epochs=1, verbose=0)  # advances the generator
        augment.save(tmp_path / "m.keras")
        loaded = keras.models.load_model(tmp_path / "m.keras")
        layer = loaded.get_layer("augment")
        assert type(layer) is RandomCLAHE and layer.get_config() == model.get_layer("augment").get_config()
        # Like Keras's random layers, a reloaded model starts again from the seed.
        assert_same_pixels(loaded(images, training=True).numpy(), fresh(images, training=True).numpy())
        assert_same_pixels(loaded.predict(images, verbose=0), images.astype(np.float32))

    def test_dataset_map_with_training_true(self):
        images = batch(6)
        layer = RandomCLAHE(clip_limit=2.5, tile_grid_size=GRID, factor=0.5, seed=0)
        expected = tf_histeq.clahe(images, clip_limit=2.5, tile_grid_size=GRID).numpy().astype(np.float32)
        for ds in (tf.data.Dataset.from_tensor_slices(images), tf.data.Dataset.from_tensor_slices(images).batch(4)):
            out = ds.map(lambda x: layer(x, training=True), num_parallel_calls=2)
            out = np.concatenate([o.reshape((-1, *images.shape[1:])) for o in out.as_numpy_iterator()])
            transformed = np.array([(o == e).all() for o, e in zip(out, expected, strict=True)])
            passed = np.array([(o == i).all() for o, i in zip(out, images.astype(np.float32), strict=True)])
            assert (transformed | passed).all() and transformed.any() and passed.any()

    def test_direct_calls_augment_and_models_augment_only_with_training_true(self):
        """Keras's contract for direct calls (`layer(x)`, `dataset.map(layer)`); a model serves the identity."""
        images = batch(4)
        layer = RandomCLAHE(clip_limit=3.0, tile_grid_size=GRID, seed=0)
        expected = tf_histeq.clahe(images, clip_limit=3.0, tile_grid_size=GRID).numpy().astype(np.float32)
        inputs = keras.Input((None, None, 1), dtype="uint8")
        model = keras.Model(inputs, layer(inputs))
        unchanged = images.astype(np.float32)
        mapped = tf.data.Dataset.from_tensor_slices(images).batch(4)
        assert_same_pixels(layer(images).numpy(), expected)
        assert_same_pixels(next(iter(mapped.map(layer))).numpy(), expected)
        assert_same_pixels(model(images, training=True).numpy(), expected)
        assert_same_pixels(model(images).numpy(), unchanged)
        assert_same_pixels(model(images, training=False).numpy(), unchanged)
        assert_same_pixels(next(iter(mapped.map(model))).numpy(), unchanged)
        assert_same_pixels(next(iter(mapped.map(lambda x: model(x, training=True)))).numpy(), expected)


MIRRORED = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    import tf_histeq
    from tf_histeq.layers import RandomCLAHE, RandomEqualization

    x = np.load(sys.argv[1])["images"]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        layer = RandomCLAHE(clip_limit=(1.0, 4.0), tile_grid_size=(2, 2), seed=5)
        inputs = keras.Input(shape=x.shape[1:], dtype="uint8")
        augmented = RandomEqualization(seed=6)(layer(inputs))
        h = keras.layers.Rescaling(1 / 255)(augmented)
        h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(h))
        model = keras.Model(inputs, keras.layers.Dense(1)(h))
        model.compile(optimizer="sgd", loss="mse")
        probe = keras.Model(inputs, augmented)
    history = model.fit(x, np.linspace(0, 1, len(x), dtype="float32"), batch_size=4, epochs=2, verbose=0)
    passed = probe.predict(x, batch_size=4, verbose=0)

    # By hand: each replica draws for its half of the batch and transforms it.
    @tf.function
    def step(images):
        def replica(b):
            t = layer.get_random_transformation(b)
            return b, t["clip_limit"], layer.transform_images(b, t)
        return strategy.run(replica, args=(images,))

    dist = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(x).batch(8))
    parts = [[v.numpy() for v in strategy.experimental_local_results(t)] for t in step(next(iter(dist)))]
    np.savez(sys.argv[2], loss=np.array(history.history["loss"]), passed=passed,
             inputs=np.concatenate(parts[0]), limits=np.stack(parts[1]), outputs=np.concatenate(parts[2]))
    """
)


@pytest.mark.slow
def test_mirrored_strategy_draws_per_replica_and_trains(tmp_path):
    x = batch(8)
    out = run_npz_script(MIRRORED, tmp_path, images=x)
    assert np.isfinite(out["loss"]).all()
    assert_same_pixels(out["passed"], x.astype(np.float32))  # predict: no augmentation
    limits = out["limits"]  # (replicas, 4)
    assert limits.shape == (2, 4) and len(set(limits.ravel().tolist())) == 8, "replicas must draw differently"
    assert_same_pixels(out["outputs"], cv2_each(out["inputs"], limits.ravel()).astype(np.float32))


# --------------------------------------------------------------------------- random_map_fn


def keyed(ds: tf.data.Dataset, fn, **map_kwargs) -> dict[int, np.ndarray]:
    """Map `(key, image)` elements and return the outputs by key."""
    out = ds.map(lambda key, image: (key, fn(key, image)), **map_kwargs)
    return {int(key): image for key, image in out.as_numpy_iterator()}


class TestRandomMapFn:
    def test_each_element_is_cv2_at_a_limit_in_the_range_and_limits_vary(self):
        # One image 32x32 with a 1x1 grid: clip count int(c * 1024 / 256) = int(4c), so the
        # outputs for c in [1, 4) are exactly OpenCV's at c = k / 4, k = 4..15.
        image = _images.xray()((32, 32), np.uint8)
        candidates = {k: cv2_clahe(image, k / 4, (1, 1)) for k in range(4, 16)}
        fn = random_map_fn("clahe", seed=3, clip_limit=(1.0, 4.0), tile_grid_size=(1, 1))
        out = keyed(tf.data.Dataset.from_tensor_slices(np.stack([image] * 12)).enumerate(), fn)
        counts = [next(k for k, c in candidates.items() if (c == o).all()) for o in out.values()]
        assert len(set(counts)) > 4, counts
        assert all(o.dtype == np.uint8 for o in out.values())

    def test_the_same_for_any_parallelism_and_order(self):
        images = batch(8)
        fn = random_map_fn("clahe", seed=7, factor=0.5, tile_grid_size=GRID)
        keys = np.arange(8, dtype=np.int64)
        serial = keyed(tf.data.Dataset.from_tensor_slices((keys, images)), fn)
        reversed_parallel = tf.data.Dataset.from_tensor_slices((keys[::-1], images[::-1]))
        parallel = keyed(reversed_parallel, fn, num_parallel_calls=4, deterministic=False)
        again = keyed(
            tf.data.Dataset.from_tensor_slices((keys, images)),
            random_map_fn("clahe", seed=7, factor=0.5, tile_grid_size=GRID),
        )
        for key in range(8):
            for other in (parallel, again):
                assert_same_pixels(other[key], serial[key])
        changed = [(serial[k] != images[k]).any() for k in range(8)]
        assert 0 < sum(changed) < 8, "factor 0.5 transforms some images and passes the others"
        other_seed = keyed(
            tf.data.Dataset.from_tensor_slices((keys, images)),
            random_map_fn("clahe", seed=8, factor=0.5, tile_grid_size=GRID),
        )
        assert any((other_seed[k] != serial[k]).any() for k in range(8))

    def test_element_structures_and_batched_elements(self):
        images = batch(4)
        labels = np.arange(4)
        fn = random_map_fn("equalize_hist", "image", seed=1, factor=1.0)
        equalized = tf_histeq.equalize_hist(images).numpy()
        ds = tf.data.Dataset.from_tensor_slices(({"image": images, "id": labels}, labels)).batch(2).enumerate()
        for features, label in ds.map(fn).as_numpy_iterator():
            assert_same_pixels(features["image"], equalized[features["id"]])
            assert_same_pixels(label, features["id"])
        with pytest.raises(
            ValueError,
            match=r"`image_key` must name the image entry of the dict elements \(one of 'id', 'image'\). Received: image_key='img'. Hint: random_map_fn\('clahe', image_key=...\).",
        ):
            ds.map(random_map_fn("clahe", "img", seed=1))

    def test_clahe_limits_in_a_batched_element_are_per_image(self):
        image = _images.xray()((32, 32, 1), np.uint8)
        fn = random_map_fn("clahe", seed=2, tile_grid_size=(1, 1))
        ds = tf.data.Dataset.from_tensors(np.stack([image] * 6)).enumerate()
        (out,) = list(ds.map(fn).as_numpy_iterator())
        assert len({o.tobytes() for o in out}) > 1

    def test_jit_compile_and_dataset_random_keys(self):
        images = batch(4)
        kwargs = {"seed": 4, "factor": 0.5, "tile_grid_size": GRID}

        def run(fn, epoch_keys):
            ds = tf.data.Dataset.zip((epoch_keys, tf.data.Dataset.from_tensor_slices(images)))
            return np.stack(list(ds.map(fn, num_parallel_calls=2).as_numpy_iterator()))

        keys = tf.data.Dataset.random(seed=9, rerandomize_each_iteration=True)
        plain, compiled = random_map_fn("clahe", **kwargs), random_map_fn("clahe", jit_compile=True, **kwargs)
        first, second = run(plain, keys), run(plain, keys)  # two iterations: new keys each
        assert_same_pixels(run(compiled, tf.data.Dataset.random(seed=9, rerandomize_each_iteration=True)), first)
        assert (first != second).any()
