"""NumPy API: `histogram_equalization` and `preprocessing_function`, alone and in `ImageDataGenerator`."""

from __future__ import annotations

import collections
import concurrent.futures

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests import _images
from tests._references import assert_same_pixels
from tf_histeq import _xla, ops
from tf_histeq.numpy_api import histogram_equalization, preprocessing_function

SHAPE = (24, 20, 3)


def image(shape=SHAPE, salt: int = 0, dtype=np.float32) -> np.ndarray:
    """What ImageDataGenerator passes: float32 (H, W, C), unscaled 0..255 (from a designed uint8 image)."""
    if np.dtype(dtype) == np.uint16:
        return _images.varied(salt, shape, np.uint16)
    return _images.varied(salt, shape).astype(dtype)


def seed_histogram_equalization(image: np.ndarray) -> np.ndarray:
    """The original NumPy function that `histogram_equalization` replaces (channels pooled, truncation)."""
    levels = image.astype(np.uint8)
    cs = np.bincount(levels.ravel(), minlength=256).cumsum()
    with np.errstate(divide="ignore", invalid="ignore"):
        lut = ((cs - cs.min()) * 255 / (cs.max() - cs.min())).astype(np.uint8)
    return lut[levels].astype(np.float64)


class TestHistogramEqualization:
    @pytest.mark.parametrize(
        ("shape", "dtype"),
        [
            (SHAPE, np.float32),
            ((24, 20, 1), np.float32),
            ((24, 20), np.float64),
            ((2, 24, 20, 3), np.float32),
            (SHAPE, np.uint8),
            (SHAPE, np.uint16),
        ],
        ids=["float32-rgb", "float32-gray", "float64-2d", "float32-batch", "uint8", "uint16"],
    )
    def test_equals_the_function(self, shape, dtype):
        x = (
            np.stack([image(shape[1:], i, dtype) for i in range(shape[0])])
            if len(shape) == 4
            else image(shape, dtype=dtype)
        )
        before = x.copy()
        out = histogram_equalization(x)
        assert isinstance(out, np.ndarray)
        reference = tf_histeq.equalize_hist(x).numpy()
        assert (reference != x).any()
        assert_same_pixels(out, reference)
        assert_same_pixels(x, before)  # the input is not modified

    @pytest.mark.parametrize(
        "kwargs",
        [{"method": "pil"}, {"channels": "joint"}, {"channels": "luminance"}, {"value_range": (0, 1), "bins": 64}],
        ids=["pil", "joint", "luminance", "range-bins"],
    )
    def test_keyword_arguments_reach_the_function(self, kwargs):
        x = image(salt=1) / (255 if "value_range" in kwargs else 1)
        x = x.astype(np.float32)
        out = histogram_equalization(x, **kwargs)
        assert_same_pixels(out, tf_histeq.equalize_hist(x, **kwargs).numpy())
        assert (out != histogram_equalization(x)).any()

    def test_mask(self):
        x = image(salt=2)
        mask = _images.xray_mask(x.shape)
        out = histogram_equalization(x, mask=mask)
        assert_same_pixels(out, tf_histeq.equalize_hist(x, mask=mask).numpy())
        assert (out != histogram_equalization(x)).any()

    def test_signature_mirrors_the_function(self):
        import inspect

        mine = inspect.signature(histogram_equalization).parameters
        theirs = inspect.signature(tf_histeq.equalize_hist).parameters
        assert [(n, p.default) for n, p in mine.items()][1:] == [(n, p.default) for n, p in theirs.items()][1:]

    def test_output_is_writable(self):
        out = histogram_equalization(image())
        out *= 1 / 255  # ImageDataGenerator rescales in place
        assert out.max() <= 1


class TestOriginalFunction:
    """What `channels="joint"` reproduces of the original NumPy function, and where it differs (as documented)."""

    def test_joint_reproduces_the_original_when_its_table_is_exact(self):
        x = np.zeros((16, 16, 3), np.float32)
        x[8:, :, 0] = 1  # channel 0: levels 0 and 1, channel 1: 2 and 3 (128 px each), channel 2: 3
        x[:, :, 1] = 2
        x[8:, :, 1:] = 3
        x[:, :, 2] = 3
        seed = seed_histogram_equalization(x)
        assert sorted(np.unique(seed)) == [0, 51, 102, 255]  # (C(v) - C(0)) * 255 / 640, no fraction
        assert_same_pixels(histogram_equalization(x, channels="joint"), seed.astype(np.float32))
        per_channel = histogram_equalization(x)  # the default: channels 0 and 1 spread to 0..255, 2 is constant
        assert sorted(np.unique(per_channel[..., :2])) == [0, 255]
        assert (per_channel[..., 2] == 3).all()

    def test_lowest_occupied_level_maps_to_zero(self):
        x = np.repeat(np.arange(100, 110, dtype=np.float32), 10).reshape(10, 10, 1)
        assert seed_histogram_equalization(x)[0, 0, 0] == 25  # the original subtracts the count of zeros
        assert histogram_equalization(x, channels="joint")[0, 0, 0] == 0

    def test_rounds_half_to_even_instead_of_truncating(self):
        x = np.array([[0, 1, 2, 2, 2, 2, 2], [0, 0, 1, 1, 1, 1, 2]], np.float32)[..., None]
        # first row: level 1 -> (2 - 1) * 255 / 6 = 42.5; second: level 1 -> (6 - 2) * 255 / 12 = 85.0
        assert seed_histogram_equalization(x[:1])[0, 1, 0] == 42
        assert histogram_equalization(x[:1], channels="joint")[0, 1, 0] == 42  # a tie: rounds to even
        y = np.array([[0, 1, 1, 2, 2, 2, 2]], np.float32)[..., None]  # level 1 -> 2 * 255 / 6 = 85 exactly
        z = np.array([[0, 0, 1, 2, 2, 2, 2]], np.float32)[..., None]  # level 1 -> 1 * 255 / 5 = 51 exactly
        w = np.array([[0, 1, 2, 2, 2, 2, 2, 2]], np.float32)[..., None]  # level 1 -> 255 / 7 = 36.43 -> 36
        v = np.array([[0, 1, 1, 1, 1, 1, 2, 2]], np.float32)[..., None]  # level 1 -> 5 * 255 / 7 = 182.14 -> 182
        u = np.array([[0, 1, 1, 2, 2, 2, 2, 2]], np.float32)[..., None]  # level 1 -> 2 * 255 / 7 = 72.86: 72 vs 73
        for exact in (y, z, w, v):
            assert_same_pixels(
                histogram_equalization(exact, channels="joint"), seed_histogram_equalization(exact).astype(np.float32)
            )
        assert seed_histogram_equalization(u)[0, 1, 0] == 72
        assert histogram_equalization(u, channels="joint")[0, 1, 0] == 73

    def test_constant_image_is_unchanged(self):
        x = np.full((8, 8, 3), 77.0, np.float32)
        assert (seed_histogram_equalization(x) == 255).all()
        assert_same_pixels(histogram_equalization(x, channels="joint"), x)

    def test_output_keeps_the_input_dtype(self):
        x = image()
        assert seed_histogram_equalization(x).dtype == np.float64
        assert histogram_equalization(x).dtype == np.float32


class TestPreprocessingFunction:
    @pytest.mark.parametrize(
        ("op", "kwargs", "function", "dtype"),
        [
            pytest.param("equalize_hist", {}, tf_histeq.equalize_hist, np.float32, id="equalize_hist"),
            pytest.param("equalize_hist", {}, tf_histeq.equalize_hist, np.uint8, id="equalize_hist-uint8"),
            pytest.param(
                "equalize_hist",
                {"method": "pil", "channels": "joint"},
                tf_histeq.equalize_hist,
                np.float32,
                id="equalize_hist-pil-joint",
            ),
            pytest.param("clahe", {"clip_limit": 3.0}, tf_histeq.clahe, np.float32, id="clahe-3"),
            pytest.param(
                "clahe",
                {"tile_grid_size": [2, 3], "channels": "luminance"},
                tf_histeq.clahe,
                np.float32,
                id="clahe-2x3-luma",
            ),
        ],
    )
    def test_equals_the_function(self, op, kwargs, function, dtype):
        preprocess = preprocessing_function(op, **kwargs)
        for salt in (0, 1):  # two images of one shape: one compiled function
            x = image(salt=salt, dtype=dtype)
            out = preprocess(x)
            reference = function(x, **kwargs).numpy()
            assert (reference != x).any()
            assert_same_pixels(out, reference)

    def test_fixed_mask(self):
        mask = _images.xray_mask(SHAPE)
        preprocess = preprocessing_function("equalize_hist", mask=mask)
        x = image(salt=2)
        assert_same_pixels(preprocess(x), tf_histeq.equalize_hist(x, mask=mask).numpy())

    @pytest.mark.parametrize(
        ("args", "kwargs", "error", "match"),
        [
            (("equalise",), {}, ValueError, r"`op` must be one of .*'match_histograms'.*Received: op='equalise'."),
            (("clahe",), {"bins": 0}, ValueError, r"`bins` must be an int in \[2, 65536\]. Received: bins=0."),
            (("clahe",), {"tile_grid_size": (8, -1)}, ValueError, r"`tile_grid_size` must be two positive ints"),
            (
                ("clahe",),
                {"clip": 2},
                TypeError,
                r"`kwargs` must be keyword arguments of tf_histeq.clahe .*Received: kwargs=\['clip'\].",
            ),
            (
                ("equalize_hist",),
                {"channels": "all"},
                ValueError,
                r"`channels` must be one of 'per_channel', 'luminance', 'joint', 'lab'. Received: channels='all'.",
            ),
            (
                ("equalize_hist",),
                {"mask": np.full((4, 4), "x")},
                TypeError,
                r"`mask.dtype` must be bool or a number type",
            ),
        ],
        ids=["op", "bins", "grid", "unknown", "channels", "mask-dtype"],
    )
    def test_bad_configuration_raises_when_created(self, args, kwargs, error, match):
        with pytest.raises(error, match=match):
            preprocessing_function(*args, **kwargs)

    @pytest.mark.parametrize(
        ("value", "error", "match"),
        [
            (
                np.zeros((4, 4), np.int64),
                TypeError,
                r"`image.dtype` must be one of uint8, .*Received: image.dtype='int64'.",
            ),
            (np.zeros((4, 4), bool), TypeError, r"Received: image.dtype='bool'"),
            (np.full((4, 4), "a"), TypeError, r"Received: image.dtype='<U1'"),
            (
                np.zeros(16, np.float32),
                ValueError,
                r"`image.shape` must have rank 2 \(H, W\), .*Received: image.shape=\(16,\).",
            ),
        ],
        ids=["int64", "bool", "str", "rank1"],
    )
    def test_bad_image_names_the_argument(self, value, error, match):
        with pytest.raises(error, match=match):
            histogram_equalization(value)
        with pytest.raises(error, match=match):
            preprocessing_function()(value)

    def test_data_dependent_errors_surface_on_call(self):
        with pytest.raises(ValueError, match=r"`channels` must be 'per_channel' or 'joint' unless images have 3"):
            preprocessing_function(channels="luminance")(image((8, 8, 1)))


@pytest.fixture
def traces(monkeypatch):
    """Count the traces of the NumPy API's functions, from an empty registry (`tf_histeq.clear_compiled`).

    The ops' Python bodies run when a function is traced, never when a traced
    function runs, so wrapping them in `tf_histeq.ops.OPS` (where the NumPy API
    looks them up) counts traces once every call runs compiled
    (`jit_compile=True`, what the functions did before they had the option).
    The registry is emptied first, so what earlier tests compiled does not count.
    """
    counts = collections.Counter()

    def counting(name, function):
        def op(*args, **kwargs):
            counts[name] += 1
            return function(*args, **kwargs)

        return op

    for name, function in list(ops.OPS.items()):
        monkeypatch.setitem(ops.OPS, name, counting(name, function))
    tf_histeq.clear_compiled()
    return counts


class TestCompiledOnce:
    def test_one_trace_per_configuration_and_shape(self, traces):
        preprocess = preprocessing_function("equalize_hist", method="pil", value_range=(0, 255), jit_compile=True)
        images = [image((19, 23, 3), salt) for salt in range(4)]
        for x in images * 3:
            assert_same_pixels(preprocess(x), tf_histeq.equalize_hist(x, method="pil", jit_compile=False).numpy())
        assert traces == {"equalize_hist": 1}
        # The same configuration spelled differently, from another callable, reuses it.
        again = preprocessing_function("equalize_hist", method="pil", value_range=[0.0, 255.0], jit_compile=True)
        assert_same_pixels(again(images[0]), preprocess(images[0]))
        histogram_equalization(images[1], method="pil", value_range=(0, 255), jit_compile=True)
        assert traces == {"equalize_hist": 1}
        # A new shape, dtype or configuration is one more trace each.
        preprocess(image((23, 19, 3)))
        preprocess(images[0].astype(np.float64))
        preprocessing_function("equalize_hist", method="opencv", value_range=(0, 255), jit_compile=True)(images[0])
        assert traces == {"equalize_hist": 4}
        for x in images:
            preprocess(x)
        assert traces == {"equalize_hist": 4}

    def test_least_recently_used_configurations_are_dropped(self, monkeypatch, traces):
        monkeypatch.setattr(_xla, "_REGISTRY_SIZE", 2)  # the runner's registry, shared by every way in
        preprocess = {bins: preprocessing_function(bins=bins, jit_compile=True) for bins in (32, 64, 128)}
        x = image((5, 9, 1))
        for bins, total in [(32, 1), (64, 2), (32, 2), (128, 3), (32, 3), (64, 4), (32, 4), (128, 5)]:
            # 128 drops 64, the least recently used (32 was used since; a first-in first-out registry
            # would drop 32); then 64 drops 128, and 128 drops 64.
            preprocess[bins](x)
            assert traces["equalize_hist"] == total, f"bins={bins}"

    def test_thread_safe_first_use_traces_each_function_once(self, traces):
        configs = [preprocessing_function(jit_compile=True), preprocessing_function(method="pil", jit_compile=True)]
        jobs = [(i % 2, image((16, 18, 3), i)) for i in range(8)]
        references = [
            tf_histeq.equalize_hist(x, method=["opencv", "pil"][c], jit_compile=False).numpy() for c, x in jobs
        ]
        # Every thread starts with an empty cache: the two functions are traced while others wait for them.
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda job: configs[job[0]](job[1]), jobs * 4))
        assert traces == {"equalize_hist": 2}  # one per configuration
        for i, out in enumerate(results):
            assert_same_pixels(out, references[i % len(jobs)])


def _generator_classes():
    classes = [pytest.param(lambda: tf.keras.preprocessing.image.ImageDataGenerator, id="keras3")]
    classes.append(
        pytest.param(
            lambda: pytest.importorskip("tf_keras").preprocessing.image.ImageDataGenerator,
            id="tf_keras",
        )
    )
    return classes


class TestImageDataGenerator:
    def test_keras3_has_it_only_under_tf_keras_namespace(self):
        import keras

        assert not hasattr(keras.preprocessing.image, "ImageDataGenerator")
        assert tf.keras.preprocessing.image.ImageDataGenerator.__module__.startswith("keras.")

    @pytest.mark.parametrize("generator_class", _generator_classes())
    @pytest.mark.parametrize("rescale", [None, 1 / 255], ids=["no-rescale", "rescale"])
    def test_flow_on_arrays(self, generator_class, rescale):
        x = np.stack([image(salt=i, dtype=np.uint8) for i in range(4)])
        labels = np.arange(4)
        generator = generator_class()(preprocessing_function=histogram_equalization, rescale=rescale)
        batch, batch_labels = next(generator.flow(x, labels, batch_size=4, shuffle=False))
        assert batch.dtype == np.float32
        assert (batch_labels == labels).all()
        for i in range(4):
            reference = tf_histeq.equalize_hist(x[i].astype(np.float32)).numpy()
            if rescale:
                reference *= rescale  # after the preprocessing function, as ImageDataGenerator does
            assert_same_pixels(batch[i], reference, f"image {i}")

    @pytest.mark.parametrize("generator_class", _generator_classes())
    def test_flow_from_directory_with_clahe(self, generator_class, tmp_path):
        from PIL import Image

        for label in ("a", "b"):
            (tmp_path / label).mkdir()
            for i in range(3):
                Image.fromarray(image(SHAPE, salt=i + (label == "b"), dtype=np.uint8)).save(
                    tmp_path / label / f"{i}.png"
                )
        preprocess = preprocessing_function("clahe", clip_limit=3.0)
        generator = generator_class()(preprocessing_function=preprocess)
        iterator = generator.flow_from_directory(
            tmp_path, target_size=SHAPE[:2], batch_size=6, class_mode="sparse", shuffle=False
        )
        batch, labels = next(iterator)
        assert batch.shape == (6, *SHAPE)
        assert list(labels) == [0, 0, 0, 1, 1, 1]
        for i, name in enumerate(iterator.filenames):
            decoded = np.asarray(Image.open(tmp_path / name), np.float32)
            assert_same_pixels(batch[i], tf_histeq.clahe(decoded, clip_limit=3.0).numpy(), name)

    @pytest.mark.parametrize("generator_class", _generator_classes())
    def test_flow_from_directory_grayscale(self, generator_class, tmp_path):
        from PIL import Image

        (tmp_path / "only").mkdir()
        for i in range(3):
            Image.fromarray(image(SHAPE[:2], salt=i, dtype=np.uint8)).save(tmp_path / "only" / f"{i}.png")
        generator = generator_class()(preprocessing_function=histogram_equalization, rescale=1 / 255)
        iterator = generator.flow_from_directory(
            tmp_path, target_size=SHAPE[:2], color_mode="grayscale", batch_size=3, class_mode=None, shuffle=False
        )
        batch = next(iterator)
        for i, name in enumerate(iterator.filenames):
            decoded = np.asarray(Image.open(tmp_path / name), np.float32)[..., None]
            reference = tf_histeq.equalize_hist(decoded).numpy()
            reference *= 1 / 255
            assert_same_pixels(batch[i], reference, name)
