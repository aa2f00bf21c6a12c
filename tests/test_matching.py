"""`match_histograms`, `reference_histogram`, `Histogram` and the `HistogramMatching` layer.

Parity is with `skimage.exposure.match_histograms` plane by plane (its float64
result, rounded half to even for integer images), counted in differing pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests import _images
from tests._references import assert_same_pixels
from tf_histeq import _histogram, _matching, samples
from tf_histeq.layers import HistogramMatching

exposure = pytest.importorskip("skimage.exposure")
skdata = pytest.importorskip("skimage.data")

DESIGNED = list(_images.DESIGNED)


def skimage_float(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """skimage's float64 result, channel by channel (each plane matched to the same plane of the reference)."""
    if image.ndim == 2:
        return exposure.match_histograms(image, reference)
    if image.ndim == 4:
        return np.stack([skimage_float(im, reference) for im in image])
    return np.stack([skimage_float(image[..., c], reference[..., c]) for c in range(image.shape[-1])], axis=-1)


def skimage_rounded(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """What `match_histograms` promises for integer images: skimage's float64 values rounded half to even."""
    return np.rint(skimage_float(image, reference)).astype(image.dtype)


def make(name: str, shape, dtype=np.uint8) -> np.ndarray:
    return _images.DESIGNED[name](shape, dtype)


class TestReference:
    @pytest.mark.parametrize("source", DESIGNED)
    def test_uint8_gray_matches_skimage_for_every_designed_reference(self, source):
        image = make(source, (37, 41))
        for reference_name in DESIGNED:
            reference = make(reference_name, (29, 33))
            expected = skimage_rounded(image, reference)
            assert (expected != image).any()
            assert_same_pixels(tf_histeq.match_histograms(image, reference).numpy(), expected, reference_name)

    @pytest.mark.parametrize(
        ("image", "reference", "kwargs"),
        [
            pytest.param(make("beta-2-5", (40, 30, 3)), make("xray", (25, 35, 3)), {}, id="uint8-rgb"),
            pytest.param(
                make("band-40-55", (50, 40), np.uint16) >> 4,
                make("beta-0.5-0.5", (30, 30), np.uint16) >> 4,
                {"value_range": (0, 4095), "bins": 4096},
                id="12-bit-in-uint16",
            ),
        ],
    )
    def test_matches_skimage_in_every_run_mode(self, image, reference, kwargs, run):
        expected = skimage_rounded(image, reference)
        assert (expected != image).any()
        assert_same_pixels(run(tf_histeq.match_histograms, image, reference=reference, **kwargs), expected)

    @pytest.mark.parametrize(
        ("image", "reference", "kwargs"),
        [
            pytest.param(skdata.camera(), skdata.moon(), {}, id="camera-to-moon"),
            pytest.param(skdata.coffee(), skdata.astronaut(), {}, id="coffee-to-astronaut"),
            pytest.param(
                samples.chest_xray((256, 256), bits=12, seed=1),
                samples.chest_xray((200, 240), bits=12, seed=2) // 2 + 700,
                {"value_range": (0, 4095), "bins": 4096},
                id="xray-12-bit",
            ),
            pytest.param(
                samples.chest_xray((256, 256), bits=16, seed=3),
                (samples.chest_xray((256, 256), bits=16, seed=4) ** 0.9).astype(np.uint16),
                {},
                id="xray-16-bit",
            ),
        ],
    )
    def test_matches_skimage_on_sample_images(self, image, reference, kwargs):
        assert_same_pixels(
            tf_histeq.match_histograms(image, reference, **kwargs).numpy(), skimage_rounded(image, reference)
        )

    @pytest.mark.slow
    @pytest.mark.parametrize(
        ("images", "reference"),
        [
            pytest.param(
                np.stack([skdata.astronaut(), skdata.coffee()[:, :512].repeat(2, axis=0)[:512]]),
                skdata.chelsea(),
                id="uint8-rgb",
            ),
            pytest.param(
                np.stack([make("band-40-55", (128, 96, 3), np.uint16), make("xray", (128, 96, 3), np.uint16)]),
                make("full-range", (100, 100, 3), np.uint16),
                id="uint16-rgb",
            ),
        ],
    )
    def test_matches_skimage_under_xla_on_real_size_batches(self, images, reference):
        matched = tf.function(lambda x: tf_histeq.match_histograms(x, reference), jit_compile=True)(images)
        assert_same_pixels(matched.numpy(), skimage_rounded(images, reference))

    def test_skimage_channel_axis_truncates_where_this_rounds(self):
        image, reference = make("beta-2-5", (40, 30, 3)), make("xray", (25, 35, 3))
        values = skimage_float(image, reference)
        theirs = exposure.match_histograms(image, reference, channel_axis=-1)
        assert_same_pixels(theirs, values.astype(np.uint8), "skimage channel_axis vs truncation")
        ours = tf_histeq.match_histograms(image, reference).numpy()
        assert_same_pixels(ours, np.rint(values).astype(np.uint8))
        differ = int((ours != theirs).sum())
        assert differ > 0.1 * ours.size  # the documented difference: one level lower about half the time
        assert np.array_equal(np.unique(ours.astype(int) - theirs), [0, 1])

    def test_joint_matches_skimage_without_channel_axis(self):
        image, reference = make("beta-2-5", (40, 30, 3)), make("xray", (25, 35, 3))
        expected = np.rint(exposure.match_histograms(image, reference)).astype(np.uint8)  # one flat histogram
        assert_same_pixels(tf_histeq.match_histograms(image, reference, channels="joint").numpy(), expected)
        assert (expected != tf_histeq.match_histograms(image, reference).numpy()).any()

    @pytest.mark.parametrize(
        ("dtype", "scale", "kwargs"),
        [(np.float32, 1, {}), (np.float32, 255, {"value_range": (0, 1)}), (np.float64, 255, {"value_range": (0, 1)})],
        ids=["float32-0-255", "float32-0-1", "float64-0-1"],
    )
    def test_floats_on_the_level_grid_match_skimage_exactly(self, dtype, scale, kwargs):
        image = (make("beta-2-5", (40, 30, 3)) / dtype(scale)).astype(dtype)
        reference = (make("xray", (25, 35, 3)) / dtype(scale)).astype(dtype)
        expected = exposure.match_histograms(image, reference, channel_axis=-1)  # float32/64, no rounding
        assert expected.dtype == dtype
        assert_same_pixels(tf_histeq.match_histograms(image, reference, **kwargs).numpy(), expected)

    def test_floats_off_the_grid_are_quantized_to_bins_levels(self, rng):
        reference = make("xray", (25, 35)).astype(np.float32) / 255
        on_grid = make("band-40-55", (30, 30)).astype(np.float32) / 255
        jittered = on_grid + rng.uniform(-0.4, 0.4, on_grid.shape).astype(np.float32) / 255
        match = tf_histeq.match_histograms
        assert_same_pixels(
            match(jittered, reference, value_range=(0, 1)), match(on_grid, reference, value_range=(0, 1))
        )
        coarse = match(jittered, reference, value_range=(0, 1), bins=16).numpy()
        assert len(np.unique(coarse)) <= 16

    @pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
    def test_half_floats_are_the_float64_result_rounded_to_their_dtype(self, dtype):
        image, reference = make("no-zeros", (30, 30)), make("full-range", (30, 30))
        expected = tf.cast(tf_histeq.match_histograms(image.astype(np.float64), reference), dtype)
        actual = tf_histeq.match_histograms(tf.constant(image, dtype), reference)
        assert actual.dtype == dtype
        assert_same_pixels(actual.numpy().astype(np.float32), expected.numpy().astype(np.float32))

    def test_nan_pixels_stay_nan_and_are_not_counted(self):
        image = make("beta-2-5", (30, 30)).astype(np.float32)
        reference = make("xray", (25, 35)).astype(np.float32)
        holed = image.copy()
        holed[::3, ::2] = np.nan
        expected = exposure.match_histograms(image[~np.isnan(holed)], reference.ravel())
        out = tf_histeq.match_histograms(holed, reference).numpy()
        assert np.isnan(out[::3, ::2]).all()
        assert_same_pixels(out[~np.isnan(holed)], expected)


class TestFloat64Tables:
    def test_tables_equal_numpy_interp_bit_for_bit_and_xla_needs_the_materialized_product(self, monkeypatch, rng):
        # Sparse counts of 4096 levels in 2 x 3 planes against per-plane references (sizes and ties vary).
        bins = 4096
        source = (rng.random((2, 3, bins)) < 0.3) * rng.integers(1, 50, (2, 3, bins))
        reference = (rng.random((3, bins)) < 0.2) * rng.integers(1, 500, (3, bins))
        values = np.arange(bins) * 7.0 + 3
        expected = np.empty(source.shape)
        for n, q in np.ndindex(source.shape[:2]):
            occupied = np.flatnonzero(reference[q])
            quantiles = np.cumsum(source[n, q]) / source[n, q].sum()
            expected[n, q] = np.interp(
                quantiles, np.cumsum(reference[q, occupied]) / reference[q].sum(), values[occupied]
            )
        args = (tf.constant(source, tf.int32), tf.constant(reference, tf.float64), tf.constant(values))

        def tables(*args):
            return _matching.match_tables(*args)[0]

        for jit in (False, True):
            actual = tf.function(tables, jit_compile=jit, autograph=False)(*args).numpy()
            assert_same_pixels(actual, expected, f"jit_compile={jit}")
        # XLA fuses `slope * d + y0` into one fused multiply-add (one rounding where NumPy has two) unless the
        # product is materialized first: this guards the guard.
        monkeypatch.setattr(_histogram, "materialize", lambda t: t)
        fused = tf.function(tables, jit_compile=True, autograph=False)(*args).numpy()
        assert (fused != expected).any()


class TestContract:
    def test_batch_equals_single_images_and_ranks_agree(self):
        reference = make("xray", (25, 35, 3))
        batch = np.stack([make(name, (20, 22, 3)) for name in ("beta-2-5", "band-40-55", "no-zeros")])
        out = tf_histeq.match_histograms(batch, reference).numpy()
        for i, image in enumerate(batch):
            assert_same_pixels(out[i], tf_histeq.match_histograms(image, reference).numpy(), f"image {i}")
        gray = batch[..., :1]
        as_2d = tf_histeq.match_histograms(gray[0, ..., 0], reference[..., 0]).numpy()
        assert_same_pixels(tf_histeq.match_histograms(gray, reference[..., :1]).numpy()[0, ..., 0], as_2d)

    def test_input_is_not_modified_and_dtype_and_shape_are_kept(self):
        image, reference = make("beta-2-5", (20, 22, 3), np.uint16), make("xray", (9, 7, 3), np.uint16)
        before = image.copy()
        out = tf_histeq.match_histograms(image, reference)
        assert out.dtype == tf.uint16 and out.shape == image.shape
        assert_same_pixels(image, before)

    def test_alpha_passes_through_and_the_references_alpha_is_dropped(self):
        rgb, reference = make("beta-2-5", (20, 22, 3)), make("xray", (25, 35, 3))
        alpha = np.full((20, 22, 1), 200, np.uint8)
        rgba = np.concatenate([rgb, alpha], axis=-1)
        reference_rgba = np.concatenate([reference, np.zeros((25, 35, 1), np.uint8)], axis=-1)
        out = tf_histeq.match_histograms(rgba, reference_rgba).numpy()
        assert_same_pixels(out[..., :3], tf_histeq.match_histograms(rgb, reference).numpy())
        assert_same_pixels(out[..., 3:], alpha)

    def test_a_single_channel_reference_serves_every_channel(self):
        image, gray = make("beta-2-5", (20, 22, 3)), make("xray", (25, 35))
        expected = tf_histeq.match_histograms(image, np.repeat(gray[..., None], 3, axis=-1)).numpy()
        assert_same_pixels(tf_histeq.match_histograms(image, gray).numpy(), expected)
        assert_same_pixels(
            tf_histeq.match_histograms(image, np.bincount(gray.ravel(), minlength=256)).numpy(), expected
        )

    def test_reference_forms_agree(self):
        image, reference = make("beta-2-5", (20, 22, 3)), make("xray", (25, 35, 3))
        expected = tf_histeq.match_histograms(image, reference).numpy()
        histogram = tf_histeq.reference_histogram(reference)
        assert histogram.counts.shape == (3, 256) and histogram.value_range == (0, 255)
        assert_same_pixels(tf_histeq.match_histograms(image, histogram).numpy(), expected)
        plain = tf_histeq.Histogram([np.bincount(reference[..., c].ravel(), minlength=256) for c in range(3)])
        assert_same_pixels(tf_histeq.match_histograms(image, plain).numpy(), expected)
        traced = tf.function(tf_histeq.match_histograms)  # symbolic references: counted in the graph
        assert_same_pixels(traced(image, tf.constant(reference)).numpy(), expected)
        gray = reference[..., 1]
        counts = tf.constant(np.bincount(gray.ravel(), minlength=256), tf.float32)
        assert_same_pixels(traced(image, counts).numpy(), tf_histeq.match_histograms(image, gray).numpy())

    def test_a_batch_reference_is_pooled(self):
        image = make("beta-2-5", (20, 22))
        halves = np.stack([make("xray", (24, 30)), make("full-range", (24, 30))])
        side_by_side = np.concatenate(list(halves), axis=1)
        expected = tf_histeq.match_histograms(image, side_by_side).numpy()
        assert_same_pixels(tf_histeq.match_histograms(image, halves[..., None]).numpy(), expected)

    def test_symbolic_empty_mask_or_reference_leaves_the_image_unchanged(self):
        image, reference = make("beta-2-5", (20, 22)), make("xray", (25, 35))

        @tf.function
        def match(image, mask, reference_mask):
            return tf_histeq.match_histograms(image, reference, mask=mask, reference_mask=reference_mask)

        empty, full = np.zeros((20, 22), bool), np.ones((25, 35), bool)
        assert_same_pixels(match(image, empty, full).numpy(), image)
        assert_same_pixels(match(image, ~empty, ~full).numpy(), image)
        assert (match(image, ~empty, full).numpy() != image).any()


class TestMasks:
    def test_only_masked_pixels_build_the_histograms_and_every_pixel_is_mapped(self):
        image, reference = make("xray", (48, 40)), make("beta-2-5", (30, 36))
        mask, reference_mask = _images.xray_mask(image.shape), _images.xray_mask(reference.shape)
        reference[~reference_mask] = 255  # a bright border the reference mask leaves out
        out = tf_histeq.match_histograms(image, reference, mask=mask, reference_mask=reference_mask).numpy()
        inside = np.rint(exposure.match_histograms(image[mask], reference[reference_mask])).astype(np.uint8)
        assert_same_pixels(out[mask], inside)
        # A level absent from the mask maps like the closest present level below it (the lowest reference level
        # if there is none): the CDF of the masked pixels is flat there.
        present = np.unique(image[mask])
        mapping = dict(zip(image[mask].tolist(), inside.tolist(), strict=True))
        below = np.searchsorted(present, image[~mask], side="right") - 1
        lowest = reference[reference_mask].min()
        expected = np.array([mapping[present[i]] if i >= 0 else lowest for i in below], np.uint8)
        assert (below < 0).any()  # the black border lies below every masked level
        assert_same_pixels(out[~mask], expected)

    def test_masks_accept_batches(self):
        batch = np.stack([make("xray", (24, 20, 1)), make("beta-2-5", (24, 20, 1))])
        masks = np.stack([_images.xray_mask((24, 20)), np.ones((24, 20), bool)])
        reference = make("band-40-55", (16, 16))
        out = tf_histeq.match_histograms(batch, reference, mask=masks).numpy()
        for i in range(2):
            single = tf_histeq.match_histograms(batch[i], reference, mask=masks[i]).numpy()
            assert_same_pixels(out[i], single, f"image {i}")


class TestReferenceHistogram:
    def test_images_of_different_sizes_pool_like_one_image(self):
        parts = [make("xray", (24, 30)), make("full-range", (10, 7)), make("two-levels", (5, 30))]
        pooled = tf_histeq.reference_histogram(parts)
        flat = np.concatenate([p.ravel() for p in parts])
        np.testing.assert_array_equal(pooled.counts[0], np.bincount(flat, minlength=256))
        image = make("beta-2-5", (20, 22))
        expected = np.rint(exposure.match_histograms(image.ravel(), flat)).astype(np.uint8).reshape(image.shape)
        assert_same_pixels(tf_histeq.match_histograms(image, pooled).numpy(), expected)

    def test_datasets_batches_and_sums_agree(self):
        images = np.stack([make(name, (16, 18, 3)) for name in ("xray", "beta-2-5", "band-40-55")])
        from_array = tf_histeq.reference_histogram(images)
        labelled = tf.data.Dataset.from_tensor_slices((images, np.arange(3))).batch(2)
        np.testing.assert_array_equal(tf_histeq.reference_histogram(labelled).counts, from_array.counts)
        summed = sum(tf_histeq.reference_histogram(image) for image in images)
        np.testing.assert_array_equal(summed.counts, from_array.counts)

    def test_mask_and_alpha(self):
        image = make("xray", (24, 20, 2))  # gray + alpha
        mask = _images.xray_mask((24, 20))
        counts = tf_histeq.reference_histogram(image, mask=mask).counts
        np.testing.assert_array_equal(counts, [np.bincount(image[..., 0][mask], minlength=256)])
        assert tf_histeq.reference_histogram(image, alpha=False).counts.shape == (2, 256)


class TestLayer:
    def images(self):
        return np.stack([make("no-zeros", (20, 22, 1)), make("full-range", (20, 22, 1))])

    def dataset_images(self):
        return np.stack([make(name, (16, 18, 1)) for name in ("xray", "beta-2-5", "band-40-55")])

    @pytest.mark.parametrize("as_dataset", [False, True], ids=["array", "dataset"])
    def test_adapt_equals_matching_to_the_concatenated_dataset(self, as_dataset):
        data = self.dataset_images()
        layer = HistogramMatching()
        layer.adapt(tf.data.Dataset.from_tensor_slices(data).batch(2) if as_dataset else data)
        images = self.images()
        side_by_side = np.concatenate(list(data[..., 0]), axis=1)
        expected = np.stack([skimage_rounded(image[..., 0], side_by_side) for image in images])[..., None]
        assert_same_pixels(layer(images).numpy(), expected.astype(np.float32))

    def model(self):
        import keras

        layer = HistogramMatching(self.dataset_images()[0], name="match")
        assert layer.reference.counts.sum() == 16 * 18
        inputs = keras.Input((None, None, 1), dtype="uint8")
        return keras.Model(inputs, layer(inputs))

    def test_saved_models_keep_the_reference(self, tmp_path):
        import keras

        model, images = self.model(), self.images()
        model.save(tmp_path / "m.keras")
        loaded = keras.models.load_model(tmp_path / "m.keras")
        assert_same_pixels(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
        reference = model.get_layer("match").reference
        np.testing.assert_array_equal(loaded.get_layer("match").reference.counts, reference.counts)
        assert loaded.get_layer("match").reference.value_range == reference.value_range == (0, 255)

    @pytest.mark.slow
    def test_exported_models_keep_the_reference(self, tmp_path):
        model, images = self.model(), self.images()
        model.export(tmp_path / "saved", verbose=False)
        served = tf.saved_model.load(str(tmp_path / "saved"))  # keep it: its variables live as long as it
        assert_same_pixels(served.serve(tf.constant(images)).numpy(), model.predict(images, verbose=0))

    def test_config_round_trip_and_options(self):
        layer = HistogramMatching(np.arange(256) % 7 + 1, channels="joint", name="m")
        config = layer.get_config()
        assert config["channels"] == "joint" and "reference" not in config
        clone = HistogramMatching.from_config(config)
        assert clone.reference is None  # the counts are weights; .keras files restore them
        rgb = make("beta-2-5", (20, 22, 3))
        expected = tf_histeq.match_histograms(rgb, np.arange(256) % 7 + 1, channels="joint").numpy()
        assert_same_pixels(layer(rgb).numpy(), expected.astype(np.float32))
        half = HistogramMatching(np.arange(256) % 7 + 1, channels="joint", dtype="mixed_float16")
        assert_same_pixels(half(rgb).numpy(), expected.astype(np.float16))

    def test_map_fn_and_numpy_api_equal_the_function(self):
        from tf_histeq.data import map_fn
        from tf_histeq.numpy_api import preprocessing_function

        reference = make("xray", (25, 35, 3))
        images = np.stack([make("beta-2-5", (20, 22, 3)), make("band-40-55", (20, 22, 3))])
        expected = tf_histeq.match_histograms(images, reference).numpy()
        dataset = tf.data.Dataset.from_tensor_slices(images).map(map_fn("match_histograms", reference=reference))
        assert_same_pixels(np.stack(list(dataset.as_numpy_iterator())), expected)
        kwargs = {"reference": reference, "channels": "joint", "reference_mask": _images.xray_mask(reference.shape)}
        preprocess = preprocessing_function("match_histograms", **kwargs)
        floats = images[0].astype(np.float32)
        assert_same_pixels(preprocess(floats), tf_histeq.match_histograms(floats, **kwargs).numpy())


class TestValidation:
    @pytest.mark.parametrize(
        ("reference", "kwargs", "error", "match"),
        [
            (None, {}, TypeError, r"`reference` must be an image, a \(bins,\) array .*Received: reference=None\."),
            (
                np.zeros((5, 5), np.uint16),
                {},
                TypeError,
                r"`reference.dtype` must be uint8, the dtype of the images .*Received: reference.dtype='uint16'\.",
            ),
            (
                np.zeros((5, 5, 2), np.uint8),
                {},
                ValueError,
                r"`reference.shape` must have 1 or 3 channels, like the images\. Received: reference.shape=\(5, 5, 2\)\.",
            ),
            (np.ones(255), {}, ValueError, r"`reference.bins` must be 256, .*Received: reference.bins=255\."),
            (
                tf_histeq.Histogram(np.ones((2, 256))),
                {},
                ValueError,
                r"`reference.channels` must be 1 or 3, .*Received: reference.channels=2\.",
            ),
            (
                tf_histeq.Histogram(np.ones(256), value_range=(0, 1)),
                {},
                ValueError,
                r"`reference.value_range` must be \(0, 255\), .*Received: reference.value_range=\(0, 1\)\.",
            ),
            (
                -np.ones(256),
                {},
                ValueError,
                r"`reference.min\(\)` must be a number >= 0.*Received: reference.min\(\)=-1",
            ),
            (np.full(256, np.inf), {}, ValueError, r"`reference.max\(\)` must be finite\. Received: .*=inf\."),
            (np.zeros(256), {}, ValueError, r"`reference.sum\(axis=-1\)` must be positive in every row"),
            (np.array(["a", "b"]), {}, TypeError, r"`reference.dtype` must be a number type"),
            (np.zeros((0, 5), np.uint8), {}, ValueError, r"`reference.shape` must have at least one pixel"),
            (
                np.ones(256),
                {"reference_mask": np.ones((4, 4), bool)},
                ValueError,
                r"`reference_mask` must be None when `reference` is a histogram",
            ),
            (
                np.ones((6, 6), np.uint8),
                {"reference_mask": np.zeros((6, 6), bool)},
                ValueError,
                r"`reference_mask` must leave at least one pixel .*Received: reference_mask='no pixel'\.",
            ),
            (np.ones((6, 6), np.uint8), {"mask": np.zeros((8, 8, 3), bool)}, ValueError, r"`mask.shape` must be"),
            (np.ones((6, 6), np.uint8), {"channels": "luminance"}, ValueError, r"`channels` must be one of 'per_cha"),
        ],
        ids=[
            "none",
            "dtype",
            "channels",
            "bins",
            "histogram-channels",
            "histogram-range",
            "negative",
            "inf",
            "empty-histogram",
            "string-counts",
            "no-pixel",
            "mask-with-histogram",
            "empty-reference-mask",
            "mask-shape",
            "luminance",
        ],
    )
    def test_bad_references_name_the_argument(self, reference, kwargs, error, match):
        images = np.zeros((8, 8, 3), np.uint8)
        with pytest.raises(error, match=match):
            tf_histeq.match_histograms(images, reference, **kwargs)

    @pytest.mark.parametrize(
        ("shape", "alpha", "match"),
        [
            ((8, 8), "auto", r"must have 1 channel, like the gray images\. Received: reference.shape=\(5, 5, 3\)\."),
            ((8, 8, 2), "auto", r"must have 1 channel \(or 2 with alpha\), like the gray images\. Received: "),
        ],
        ids=["gray", "gray-alpha"],
    )
    def test_a_gray_image_refuses_an_rgb_reference_naming_one_channel(self, shape, alpha, match):
        with pytest.raises(ValueError, match=r"`reference.shape` " + match + r".* Hint: convert the reference to gray"):
            tf_histeq.match_histograms(np.zeros(shape, np.uint8), np.zeros((5, 5, 3), np.uint8), alpha=alpha)

    def test_value_range_and_empty_mask_checks(self):
        image = np.full((8, 8), 100, np.uint16)
        with pytest.raises(ValueError, match=r"`\(reference.min\(\), reference.max\(\)\)` must lie within the "):
            tf_histeq.match_histograms(image, np.full((4, 4), 5000, np.uint16), value_range=(0, 4095), bins=4096)
        with pytest.raises(ValueError, match=r"`reference` must leave at least one pixel \(not NaN\)"):
            tf_histeq.match_histograms(image.astype(np.float32), np.full((4, 4), np.nan, np.float32))
        masks = np.stack([np.ones((8, 8), bool), np.zeros((8, 8), bool)])
        with pytest.raises(ValueError, match=r"`mask` must select at least one pixel of every image\. .*\[1\]"):
            tf_histeq.match_histograms(np.stack([image, image])[..., None], image, mask=masks)
        traced = tf.function(lambda x: tf_histeq.match_histograms(x, image, mask=np.zeros((8, 8), bool)))
        with pytest.raises(ValueError, match=r"`mask` must select at least one pixel"):  # known when traced
            traced(image)

    def test_histogram_and_reference_histogram_errors(self):
        with pytest.raises(TypeError, match=r"`counts.dtype` must be a number type"):
            tf_histeq.Histogram([True, False])
        with pytest.raises(ValueError, match=r"`counts.shape` must be \(bins,\) or \(C, bins\)"):
            tf_histeq.Histogram(np.ones((2, 2, 2)))
        with pytest.raises(ValueError, match=r"`other` must have the shape \(1, 256\) and value_range None"):
            tf_histeq.Histogram(np.ones(256)) + tf_histeq.Histogram(np.ones(16))
        with pytest.raises(TypeError, match=r"`data\[1\].dtype` must be uint8, like data\[0\]"):
            tf_histeq.reference_histogram([np.ones((4, 4), np.uint8), np.ones((4, 4), np.uint16)])
        with pytest.raises(ValueError, match=r"`data\[1\].shape` must have 1 colour channel\(s\), like data\[0\]"):
            tf_histeq.reference_histogram([np.ones((4, 4), np.uint8), np.ones((4, 4, 3), np.uint8)])
        with pytest.raises(ValueError, match=r"`data` must hold at least one image"):
            tf_histeq.reference_histogram([])
        with pytest.raises(ValueError, match=r"`data` must have at least one pixel"):
            tf_histeq.reference_histogram(np.ones((4, 4), np.uint8), mask=np.zeros((4, 4), bool))

    def test_map_fn_and_preprocessing_function_check_the_reference_kind(self):
        from tf_histeq.data import map_fn

        with pytest.raises(TypeError, match=r"`reference` must be an image, .*Received: reference='str'\."):
            map_fn("match_histograms", reference="ref.png")

    def test_layer_errors(self):
        with pytest.raises(ValueError, match=r"`reference` must be given \(HistogramMatching\(reference=\.\.\.\)\)"):
            HistogramMatching()(np.zeros((1, 4, 4, 1), np.uint8))
        with pytest.raises(ValueError, match=r"`reference_mask` must be None when no reference image is given"):
            HistogramMatching(reference_mask=np.ones((4, 4), bool))
        with pytest.raises(ValueError, match=r"`reference.bins` must be 16, the layer's bins"):
            HistogramMatching(np.ones(256), bins=16)
        with pytest.raises(ValueError, match=r"`channels` must be one of 'per_channel', 'joint'"):
            HistogramMatching(channels="luminance")
        layer = HistogramMatching(np.ones(256))
        with pytest.raises(ValueError, match=r"`reference.counts.shape` must be \(1, 256\), .*Hint: create a new"):
            layer.adapt(np.zeros((2, 4, 4, 3), np.uint8))
        with pytest.raises(ValueError, match=r"`reference.bins` must be 65536, the number of levels"):
            layer(np.zeros((1, 4, 4, 1), np.uint16))
