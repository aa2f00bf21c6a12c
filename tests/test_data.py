"""tf.data: `tf_histeq.data.map_fn` on every element structure, sizes, batching and a real PNG pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests import _images
from tests._references import assert_same_pixels
from tf_histeq.data import map_fn

# (op name, kwargs, function)
OPS = [
    pytest.param("equalize_hist", {}, tf_histeq.equalize_hist, id="equalize_hist"),
    pytest.param(
        "equalize_hist",
        {"method": "pil", "channels": "luminance"},
        tf_histeq.equalize_hist,
        id="equalize_hist-pil-luma",
    ),
    pytest.param("clahe", {"clip_limit": 3.0, "tile_grid_size": (2, 3)}, tf_histeq.clahe, id="clahe"),
]
SIZES = [(24, 20), (17, 33), (40, 9)]


def image(shape, salt: int = 0) -> np.ndarray:
    return _images.varied(salt, shape)


def varying(channels: int = 3) -> list[np.ndarray]:
    return [image((*size, channels), i) for i, size in enumerate(SIZES)]


def dataset(images, **extra) -> tf.data.Dataset:
    """Unbatched dataset of images of varying size (plus constant extra components)."""

    def gen():
        for i, im in enumerate(images):
            yield (im, *(np.int64(i) for _ in extra)) if extra else im

    spec = tf.TensorSpec((None, None, images[0].shape[-1]), tf.uint8)
    signature = (spec, *(tf.TensorSpec((), tf.int64) for _ in extra)) if extra else spec
    return tf.data.Dataset.from_generator(gen, output_signature=signature)


class TestValidation:
    @pytest.mark.parametrize(
        ("args", "kwargs", "error", "match"),
        [
            (("histeq",), {}, ValueError, r"`op` must be one of .*'match_histograms'.*Received: op='histeq'."),
            ((None,), {}, ValueError, r"Received: op=None"),
            (
                ("clahe",),
                {"method": "pil"},
                TypeError,
                r"`kwargs` must be keyword arguments of tf_histeq.clahe \(clip_limit, .*\). Received: kwargs=\['method'\]",
            ),
            (("equalize_hist",), {"images": 1}, TypeError, r"Received: kwargs=\['images'\]"),
            (("equalize_hist",), {"mask": np.ones((4, 4), bool)}, TypeError, r"Received: kwargs=\['mask'\]"),
            (
                ("equalize_hist",),
                {"method": "cv2"},
                ValueError,
                r"`method` must be one of 'opencv', 'pil'. Received: method='cv2'.",
            ),
            (
                ("clahe",),
                {"channels": "joint"},
                ValueError,
                r"`channels` must be one of 'per_channel', 'luminance', 'lab'. Received: channels='joint'.",
            ),
            (
                ("clahe",),
                {"tile_grid_size": (0, 8)},
                ValueError,
                r"`tile_grid_size` must be two positive ints \(rows, cols\). Received: tile_grid_size=\(0, 8\).",
            ),
            (("clahe",), {"clip_limit": "high"}, TypeError, r"Received: clip_limit='high'"),
            (("equalize_hist",), {"bins": 1}, ValueError, r"`bins` must be an int in \[2, 65536\]. Received: bins=1."),
            (
                ("equalize_hist",),
                {"value_range": (1, 0)},
                ValueError,
                r"`value_range` must satisfy low < high. Received: value_range=\(1, 0\).",
            ),
            (("equalize_hist",), {"image_key": 3}, TypeError, r"`image_key` must be a string .*Received: image_key=3."),
        ],
        ids=[
            "op",
            "op-none",
            "unknown-kwarg",
            "images-kwarg",
            "mask-kwarg",
            "method",
            "channels",
            "grid",
            "clip",
            "bins",
            "range",
            "image-key-type",
        ],
    )
    def test_bad_arguments_raise_when_map_fn_is_called(self, args, kwargs, error, match):
        with pytest.raises(error, match=match):
            map_fn(*args, **kwargs)

    @pytest.mark.parametrize(
        ("kwargs", "op"),
        [
            ({"tile_grid_size": (0, 8)}, tf_histeq.clahe),
            ({"bins": 1}, tf_histeq.equalize_hist),
            ({"method": "cv2"}, tf_histeq.equalize_hist),
        ],
        ids=["grid", "bins", "method"],
    )
    def test_messages_are_the_functions(self, kwargs, op):
        with pytest.raises(ValueError) as from_function:
            op(np.zeros((4, 4), np.uint8), **kwargs)
        with pytest.raises(ValueError) as from_map_fn:
            map_fn(op.__name__, **kwargs)
        assert str(from_map_fn.value) == str(from_function.value)

    def test_missing_image_key_is_a_clear_error(self):
        ds = tf.data.Dataset.from_tensor_slices({"pixels": np.zeros((2, 4, 4, 1), np.uint8), "label": [0, 1]})
        with pytest.raises(
            ValueError,
            match=r"`image_key` must name the image entry of the dict elements \(one of 'label', 'pixels'\). Received: image_key='image'.",
        ):
            ds.map(map_fn(image_key="image"))
        with pytest.raises(
            ValueError, match=r"Received: image_key=None. Hint: map_fn\('equalize_hist', image_key=...\)."
        ):
            ds.map(map_fn())

    def test_image_key_without_dict_elements_is_an_error(self):
        ds = tf.data.Dataset.from_tensor_slices((np.zeros((2, 4, 4, 1), np.uint8), [0, 1]))
        with pytest.raises(ValueError, match=r"`image_key` must be None for dataset elements without a dict"):
            ds.map(map_fn(image_key="image"))

    def test_unsupported_dtype_raises_when_mapped(self):
        ds = tf.data.Dataset.from_tensor_slices(np.zeros((2, 4, 4, 1), np.int64))
        with pytest.raises(TypeError, match=r"Received: images.dtype='int64'"):
            ds.map(map_fn())


class TestStructures:
    @pytest.mark.parametrize(("op", "kwargs", "function"), OPS)
    def test_bare_images_of_varying_size(self, op, kwargs, function):
        images = varying()
        outputs = list(
            dataset(images).map(map_fn(op, **kwargs), num_parallel_calls=tf.data.AUTOTUNE).as_numpy_iterator()
        )
        assert [o.shape for o in outputs] == [im.shape for im in images]
        for im, out in zip(images, outputs, strict=True):
            reference = function(im, **kwargs).numpy()
            assert (reference != im).any()
            assert_same_pixels(out, reference)

    def test_tuple_passes_the_rest_through(self):
        images = varying()
        ds = dataset(images, label=True, weight=True).map(map_fn(), num_parallel_calls=tf.data.AUTOTUNE)
        for i, (out, label, weight) in enumerate(ds.as_numpy_iterator()):
            assert_same_pixels(out, tf_histeq.equalize_hist(images[i]).numpy())
            assert (label, weight) == (i, i)

    def test_dict_with_image_key(self):
        images = np.stack([image((16, 18, 1), i) for i in range(3)])
        ds = tf.data.Dataset.from_tensor_slices({"x": images, "label": [7, 8, 9], "name": ["a", "b", "c"]})
        out = list(ds.map(map_fn("equalize_hist", image_key="x", method="pil")).as_numpy_iterator())
        for i, element in enumerate(out):
            assert set(element) == {"x", "label", "name"}
            assert_same_pixels(element["x"], tf_histeq.equalize_hist(images[i], method="pil").numpy())
            assert (element["label"], element["name"]) == (7 + i, b"abc"[i : i + 1])

    def test_features_dict_and_label(self):
        images = np.stack([image((16, 18, 1), i) for i in range(2)])
        ds = tf.data.Dataset.from_tensor_slices(({"image": images, "age": [50, 60]}, [0, 1]))
        (features, label), _ = list(ds.map(map_fn(image_key="image")).as_numpy_iterator())
        assert_same_pixels(features["image"], tf_histeq.equalize_hist(images[0]).numpy())
        assert (features["age"], label) == (50, 0)

    def test_rank_2_images(self):
        images = np.stack([image((16, 18), i) for i in range(2)])
        out = np.stack(list(tf.data.Dataset.from_tensor_slices(images).map(map_fn()).as_numpy_iterator()))
        assert_same_pixels(out, np.stack([tf_histeq.equalize_hist(im).numpy() for im in images]))

    def test_float_images_with_value_range(self):
        images = np.stack([image((16, 18, 3), i) for i in range(2)]).astype(np.float32) / 255
        out = np.stack(
            list(tf.data.Dataset.from_tensor_slices(images).map(map_fn(value_range=(0, 1))).as_numpy_iterator())
        )
        assert out.dtype == np.float32
        assert_same_pixels(out, tf_histeq.equalize_hist(images, value_range=(0, 1)).numpy())


class TestBatching:
    @pytest.mark.parametrize(("op", "kwargs", "function"), OPS)
    def test_batch_then_map_equals_map_then_batch(self, op, kwargs, function):
        images = np.stack([image((20, 22, 3), i) for i in range(4)])
        labels = np.arange(4)
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        fn = map_fn(op, **kwargs)
        after = list(ds.batch(3).map(fn, num_parallel_calls=tf.data.AUTOTUNE).as_numpy_iterator())
        before = list(ds.map(fn).batch(3).as_numpy_iterator())
        assert [b[0].shape for b in after] == [(3, 20, 22, 3), (1, 20, 22, 3)]
        for (x_after, y_after), (x_before, y_before) in zip(after, before, strict=True):
            assert_same_pixels(x_after, x_before)
            assert (y_after == y_before).all()
        assert_same_pixels(np.concatenate([b[0] for b in after]), function(images, **kwargs).numpy())

    @pytest.mark.parametrize(("op", "kwargs", "function"), OPS)
    def test_jit_compile_gives_identical_results(self, op, kwargs, function):
        images = np.stack([image((20, 22, 3), i) for i in range(4)])
        ds = tf.data.Dataset.from_tensor_slices(images)
        compiled = np.stack(list(ds.map(map_fn(op, jit_compile=True, **kwargs)).as_numpy_iterator()))
        assert_same_pixels(compiled, function(images, **kwargs).numpy())
        with pytest.raises(ValueError, match=r"`jit_compile` must be 'auto' .*Received: jit_compile='yes'"):
            map_fn(op, jit_compile="yes")

    def test_batches_with_unknown_size(self):
        images = np.stack([image((20, 22, 1), i) for i in range(4)])
        ds = tf.data.Dataset.from_generator(
            lambda: iter([images[:3], images[3:]]), output_signature=tf.TensorSpec((None, None, None, 1), tf.uint8)
        )
        out = np.concatenate(list(ds.map(map_fn()).as_numpy_iterator()))
        assert_same_pixels(out, tf_histeq.equalize_hist(images).numpy())


class TestPngPipeline:
    @pytest.fixture
    def png_dir(self, tmp_path):
        """Six RGB PNG files of one size, plus the arrays they hold."""
        arrays = {}
        for i in range(6):
            array = image((32, 28, 3), i)
            path = tmp_path / f"img_{i}.png"
            path.write_bytes(tf.io.encode_png(array).numpy())
            arrays[str(path)] = array
        return tmp_path, arrays

    @pytest.mark.parametrize(("op", "kwargs", "function"), OPS)
    def test_list_files_decode_map_batch(self, png_dir, op, kwargs, function):
        folder, arrays = png_dir

        def load(path):
            return tf.io.decode_png(tf.io.read_file(path), channels=3), path

        ds = tf.data.Dataset.list_files(str(folder / "*.png"), shuffle=False)
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.map(map_fn(op, **kwargs), num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.batch(4)
        seen = 0
        for batch, paths in ds.as_numpy_iterator():
            assert batch.dtype == np.uint8
            decoded = np.stack([arrays[p.decode()] for p in paths])
            assert_same_pixels(batch, function(decoded, **kwargs).numpy())
            seen += len(paths)
        assert seen == len(arrays)

    def test_pngs_of_varying_size_unbatched(self, tmp_path):
        from PIL import Image

        arrays = {}
        for i, (h, w) in enumerate(SIZES):
            array = image((h, w), i)
            path = tmp_path / f"gray_{i}.png"
            Image.fromarray(array).save(path)
            arrays[str(path)] = array
        ds = tf.data.Dataset.list_files(str(tmp_path / "*.png"), shuffle=False)
        ds = ds.map(lambda p: (tf.io.decode_png(tf.io.read_file(p), channels=1), p))
        for out, path in ds.map(map_fn()).as_numpy_iterator():
            expected = tf_histeq.equalize_hist(arrays[path.decode()][..., None]).numpy()
            assert_same_pixels(out, expected)
