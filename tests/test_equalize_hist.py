"""equalize_hist: parity with OpenCV and Pillow, the contract, and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests import _images
from tests._references import assert_same_pixels, cv2_equalize, cv2_lightness, pil_equalize

DESIGNED = [pytest.param(make, id=name) for name, make in _images.DESIGNED.items()]
SHAPES = [(37, 53), (64, 64), (3, 200), (240, 320)]


def numpy_opencv(image: np.ndarray, mask: np.ndarray | None = None, bins: int = 256) -> np.ndarray:
    """`cv2.equalizeHist` in NumPy, with an optional histogram mask and any bin count (checked against cv2 below).

    OpenCV's formula: with `f` the lowest occupied level, `C` the inclusive cumulative histogram and
    `scale = f32(bins - 1) / f32(N - h[f])` computed once in float32, `lut[v] = rne(f32(C(v) - h[f]) * scale)`:
    multiplied by the scale, not divided per level, and rounded half to even. A constant image is returned unchanged.
    """
    source = image if mask is None else image[mask]
    hist = np.bincount(source.ravel(), minlength=bins)
    total = source.size
    first = int(np.flatnonzero(hist)[0]) if total else 0
    if hist[first] == total:
        return image.copy()
    scale = np.float32(bins - 1) / np.float32(total - hist[first])
    lut = np.rint((np.cumsum(hist) - hist[first]).astype(np.float32) * scale)
    return np.clip(lut, 0, bins - 1).astype(image.dtype)[image]


GRAY = ["camera", "moon", "coins", "page", "retina-gray"]
COLOR = ["astronaut", "retina", "coffee"]


@pytest.fixture(scope="module")
def photos(skdata):
    """scikit-image's sample photographs, loaded once: gray (uint8 2-D) and colour (uint8 RGB)."""
    from skimage.color import rgb2gray

    retina = skdata.retina()[::4, ::4]
    return {
        "camera": skdata.camera(),
        "moon": skdata.moon(),
        "coins": skdata.coins(),
        "page": skdata.page(),
        "retina-gray": (rgb2gray(retina) * 255).round().astype(np.uint8),
        "astronaut": skdata.astronaut()[::2, ::2],
        "retina": retina,
        "coffee": skdata.coffee()[::2, ::2],
    }


class TestReference:
    @pytest.mark.parametrize("make", DESIGNED)
    @pytest.mark.parametrize("shape", SHAPES, ids=str)
    def test_matches_cv2_on_designed_images(self, make, shape):
        image = make(shape, np.uint8)
        expected = cv2_equalize(image)
        assert (expected != image).any(), "the designed image must make the LUT work"
        assert_same_pixels(tf_histeq.equalize_hist(image).numpy(), expected)

    @pytest.mark.parametrize("make", DESIGNED)
    @pytest.mark.parametrize("shape", SHAPES, ids=str)
    def test_matches_pillow_on_designed_images(self, make, shape):
        image = make(shape, np.uint8)
        assert_same_pixels(tf_histeq.equalize_hist(image, method="pil").numpy(), pil_equalize(image))

    @pytest.mark.parametrize("shape", [(1, 1), (1, 7), (10, 10), (5, 3)], ids=str)
    @pytest.mark.parametrize("level", [0, 50, 255])
    @pytest.mark.parametrize("method", ["opencv", "pil"])
    def test_constant_and_tiny_images_match(self, shape, level, method):
        image = np.full(shape, level, np.uint8)
        reference = cv2_equalize if method == "opencv" else pil_equalize
        actual = tf_histeq.equalize_hist(image, method=method).numpy()
        assert_same_pixels(actual, reference(image))
        assert_same_pixels(actual, image)

    @pytest.mark.parametrize("method", ["opencv", "pil"])
    def test_tiny_two_level_images_follow_each_reference(self, method):
        # Pillow returns a 10x10 image with values {50, 60} unchanged (N - h[max] < 255);
        # OpenCV stretches it to {0, 255}.
        image = np.full((10, 10), 50, np.uint8)
        image[::3] = 60
        reference = cv2_equalize if method == "opencv" else pil_equalize
        actual = tf_histeq.equalize_hist(image, method=method).numpy()
        assert_same_pixels(actual, reference(image))
        assert set(np.unique(actual)) == ({0, 255} if method == "opencv" else {50, 60})

    def test_ties_round_half_to_even_after_a_float32_reciprocal(self, cv2):
        # N = 7, h[f] = 1: level 1 -> 1 * f32(255 / 6) = 42.5 -> 42 (half to even).
        image = np.array([[0, 1, 2, 2, 2, 2, 2]], np.uint8)
        assert_same_pixels(
            tf_histeq.equalize_hist(image).numpy(), np.array([[0, 42, 255, 255, 255, 255, 255]], np.uint8)
        )
        # N = 15, h[f] = 1: 7 * f32(255 / 14) = 127.49999 -> 127; an exact division would give 128.
        image = np.array([[0] + list(range(1, 8)) + [8] * 7], np.uint8)
        actual = tf_histeq.equalize_hist(image).numpy()
        assert actual[0, 7] == 127
        assert_same_pixels(actual, cv2.equalizeHist(image))

    @pytest.mark.parametrize("name", GRAY)
    def test_matches_cv2_and_pillow_on_real_gray_images(self, name, photos, cv2):
        image = photos[name]
        assert_same_pixels(tf_histeq.equalize_hist(image).numpy(), cv2.equalizeHist(image), name)
        assert_same_pixels(tf_histeq.equalize_hist(image, method="pil").numpy(), pil_equalize(image), name)

    @pytest.mark.parametrize("name", COLOR)
    def test_matches_cv2_per_plane_and_pillow_rgb_on_real_color_images(self, name, photos):
        image = photos[name]
        assert_same_pixels(tf_histeq.equalize_hist(image).numpy(), cv2_equalize(image), name)
        assert_same_pixels(tf_histeq.equalize_hist(image, method="pil").numpy(), pil_equalize(image), name)

    @pytest.mark.parametrize("space", ["luminance", "lab"])
    @pytest.mark.parametrize("name", COLOR)
    def test_lightness_modes_equal_the_opencv_round_trip(self, name, space, photos, cv2):
        """`cvtColor(RGB2YCrCb` / `RGB2Lab)`, equalizeHist or ImageOps.equalize on Y / L, back: 0 px differ."""
        image = photos[name]
        for method, plane_fn in [("opencv", cv2.equalizeHist), ("pil", pil_equalize)]:
            expected = cv2_lightness(image, space, plane_fn)
            actual = tf_histeq.equalize_hist(image, channels=space, method=method).numpy()
            assert_same_pixels(actual, expected, f"{name} {space} {method}")
        rgba = np.dstack([image, _images.xray()(image.shape[:2], np.uint8)])
        actual = tf_histeq.equalize_hist(rgba, channels=space).numpy()
        assert_same_pixels(actual, cv2_lightness(rgba, space, cv2.equalizeHist), f"{name} {space} RGBA")

    def test_joint_equals_cv2_on_the_channels_laid_side_by_side(self, cv2):
        image = _images.beta(2, 5)((48, 40, 3), np.uint8)
        image[..., 2] //= 2  # make the channels differ
        pooled = cv2.equalizeHist(np.ascontiguousarray(image.reshape(48, 120))).reshape(48, 40, 3)
        assert_same_pixels(tf_histeq.equalize_hist(image, channels="joint").numpy(), pooled)

    @pytest.mark.parametrize("shape", [(64, 80), (64, 80, 3)], ids=str)
    def test_pil_mask_matches_pillow(self, shape):
        image = _images.xray()(shape, np.uint8)
        mask = _images.xray_mask(shape)
        assert_same_pixels(tf_histeq.equalize_hist(image, method="pil", mask=mask).numpy(), pil_equalize(image, mask))

    def test_numpy_transliteration_matches_cv2(self, cv2):
        # Guards the reference used for the masked OpenCV test below.
        for name, make in _images.DESIGNED.items():
            image = make((61, 47), np.uint8)
            assert_same_pixels(numpy_opencv(image), cv2.equalizeHist(image), name)

    def test_opencv_mask_builds_the_histogram_from_the_field_only(self):
        image = _images.xray()((96, 96), np.uint8)
        mask = _images.xray_mask(image.shape)
        actual = tf_histeq.equalize_hist(image, mask=mask).numpy()
        assert_same_pixels(actual, numpy_opencv(image, mask))
        # The black border is mapped too, and the field gets more contrast than without the mask.
        unmasked = tf_histeq.equalize_hist(image).numpy()
        assert actual[mask].std() > unmasked[mask].std()


class TestContract:
    def test_batch_equals_stack_of_single_images(self, run):
        dark = _images.beta(2, 5, 0.05, 0.2)((40, 30, 3), np.uint8)
        bright = _images.band(0.8, 0.95)((40, 30, 3), np.uint8)
        flat = np.full((40, 30, 3), 9, np.uint8)
        batch = np.stack([dark, bright, flat])
        actual = run(tf_histeq.equalize_hist, batch)
        for i, image in enumerate(batch):
            assert_same_pixels(actual[i], cv2_equalize(image), f"image {i}")

    def test_channels_are_independent_and_ranks_agree(self):
        image = np.stack([_images.beta(2, 5)((33, 20), np.uint8), _images.band(0.1, 0.2)((33, 20), np.uint8)], -1)
        image = np.concatenate([image, image[..., :1] // 3], axis=-1)  # 3 channels, no alpha
        rank3 = tf_histeq.equalize_hist(image).numpy()
        rank4 = tf_histeq.equalize_hist(image[None]).numpy()
        assert_same_pixels(rank4[0], rank3)
        for c in range(3):
            assert_same_pixels(rank3[..., c], tf_histeq.equalize_hist(image[..., c]).numpy(), f"channel {c}")

    # Every method and every channel mode, traced and compiled, with and without a mask: the table
    # formula and the channel plumbing are independent code, so not every pair is needed here (the
    # layer, tf.data and TPU-graph tests compile the pairs left out: pil-joint, pil-luminance, opencv-lab).
    @pytest.mark.parametrize(
        ("method", "channels"),
        [
            ("opencv", "per_channel"),
            ("pil", "per_channel"),
            ("opencv", "joint"),
            ("opencv", "luminance"),
            ("pil", "lab"),
        ],
    )
    def test_function_and_xla_equal_eager(self, traced, method, channels):
        batch = np.stack([_images.xray()((50, 70, 3), np.uint8), _images.beta(0.5, 0.5)((50, 70, 3), np.uint8)])
        mask = np.stack([_images.xray_mask((50, 70)), np.ones((50, 70), bool)])
        kwargs = {"method": method, "channels": channels}
        expected = tf_histeq.equalize_hist(batch, **kwargs).numpy()
        assert_same_pixels(traced(tf_histeq.equalize_hist, batch, **kwargs), expected)
        masked = tf_histeq.equalize_hist(batch, mask=mask, **kwargs).numpy()
        assert (masked != expected).any(), "the mask must change the result"
        assert_same_pixels(traced(lambda x, **kw: tf_histeq.equalize_hist(x, mask=mask, **kw), batch, **kwargs), masked)

    @pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int32])
    def test_other_dtypes_with_integer_values_equal_uint8(self, dtype, run):
        image = _images.xray()((45, 60, 3), np.uint8)
        expected = cv2_equalize(image)
        actual = run(tf_histeq.equalize_hist, tf.cast(image, dtype))
        assert actual.dtype == dtype.as_numpy_dtype
        assert_same_pixels(actual.astype(np.float64).astype(np.uint8), expected)

    @pytest.mark.parametrize("value_range", [(0, 1), (-1, 1)], ids=str)
    def test_float_value_ranges_map_levels_exactly(self, value_range, cv2):
        image = _images.beta(2, 5)((64, 64), np.uint8)
        low, high = value_range
        scaled = (low + image.astype(np.float64) * (high - low) / 255).astype(np.float32)
        expected = (low + cv2.equalizeHist(image).astype(np.float64) * (high - low) / 255).astype(np.float32)
        actual = tf_histeq.equalize_hist(scaled, value_range=value_range).numpy()
        assert_same_pixels(actual, expected)

    def test_uint16_keeps_all_levels(self):
        # 65536 bins by default: a smooth 16-bit image keeps thousands of output levels
        # (Keras's Equalization collapses any input to 256).
        image = _images.band(0.30, 0.32)((128, 128), np.uint16)
        actual = tf_histeq.equalize_hist(image).numpy()
        assert actual.dtype == np.uint16
        assert_same_pixels(actual, numpy_opencv(image, bins=65536))
        assert len(np.unique(actual)) == len(np.unique(image)) > 1000
        assert actual.min() == 0 and actual.max() == 65535

    def test_12_bit_data_stays_12_bit(self):
        image = (_images.band(0.3, 0.4)((64, 64), np.uint16) >> 4).astype(np.uint16)  # 0..4095
        actual = tf_histeq.equalize_hist(image, value_range=(0, 4095), bins=4096).numpy()
        assert actual.max() == 4095 and actual.min() == 0
        assert_same_pixels(actual, numpy_opencv(image, bins=4096))

    def test_fewer_bins_quantize_integer_input(self):
        image = _images.band(0.2, 0.7)((64, 64), np.uint8)
        actual = tf_histeq.equalize_hist(image, bins=64).numpy()
        assert len(np.unique(actual)) <= 64
        # Same result as equalizing the 6-bit image and scaling back to 8 bits.
        six_bit = numpy_opencv((image.astype(int) * 64 // 256).astype(np.uint8), bins=64)
        assert_same_pixels(actual, np.rint(six_bit.astype(np.float64) * 255 / 63).astype(np.uint8))

    def test_input_is_not_modified(self):
        image = _images.xray()((30, 40, 3), np.uint8)
        before = image.copy()
        tf_histeq.equalize_hist(image)
        tf_histeq.equalize_hist(image, channels="luminance", method="pil")
        assert_same_pixels(image, before)

    def test_nan_pixels_stay_nan_and_do_not_count(self):
        image = _images.beta(2, 5)((32, 32), np.uint8).astype(np.float32)
        holes = np.zeros(image.shape, bool)
        holes[5:9, 3:20] = True
        with_nan = np.where(holes, np.nan, image).astype(np.float32)
        actual = tf_histeq.equalize_hist(with_nan).numpy()
        assert np.isnan(actual[holes]).all()
        expected = tf_histeq.equalize_hist(image, mask=~holes).numpy()
        assert_same_pixels(actual[~holes], expected[~holes])

    def test_values_outside_the_range_are_clipped(self):
        image = _images.beta(2, 5)((32, 32), np.uint8).astype(np.float32)
        wild = image.copy()
        wild[0, :5] = [-50, -np.inf, 300, np.inf, 1e30]
        actual = tf_histeq.equalize_hist(wild).numpy()
        assert_same_pixels(actual, tf_histeq.equalize_hist(np.clip(wild, 0, 255)).numpy())
        assert actual.min() >= 0 and actual.max() <= 255

    def test_constant_float_plane_is_returned_unchanged(self):
        image = np.full((8, 8), 0.3, np.float32)
        assert_same_pixels(tf_histeq.equalize_hist(image, value_range=(0, 1)).numpy(), image)

    @pytest.mark.parametrize("channels", ["per_channel", "luminance"])
    def test_alpha_passes_through(self, channels):
        rgb = _images.beta(2, 5)((20, 30, 3), np.uint8)
        alpha = _images.band(0.0, 1.0)((20, 30), np.uint8)[..., None]
        actual = tf_histeq.equalize_hist(np.concatenate([rgb, alpha], -1), channels=channels).numpy()
        assert_same_pixels(actual[..., 3:], alpha)
        assert_same_pixels(actual[..., :3], tf_histeq.equalize_hist(rgb, channels=channels).numpy())
        gray_alpha = np.concatenate([rgb[..., :1], alpha], -1)
        actual = tf_histeq.equalize_hist(gray_alpha).numpy()
        assert_same_pixels(actual, np.concatenate([cv2_equalize(rgb[..., :1]), alpha], -1))

    def test_all_false_mask_leaves_the_image_unchanged(self):
        image = _images.xray()((20, 20, 3), np.uint8)
        assert_same_pixels(tf_histeq.equalize_hist(image, mask=np.zeros((20, 20), bool)).numpy(), image)

    @pytest.mark.parametrize(
        ("batch", "channels", "mask_shape"),
        [(None, None, "HW"), (None, 3, "HW1"), (2, 1, "HW"), (2, 1, "NHW"), (2, 1, "NHW1"), (2, 3, "HW1")],
        ids=str,
    )
    def test_every_mask_shape_selects_the_same_field(self, batch, channels, mask_shape):
        field = _images.xray_mask((20, 24))
        plane = _images.xray()((20, 24), np.uint8)
        image = plane if channels is None else np.repeat(plane[..., None], channels, -1)
        if batch:
            image = np.stack([image] * batch)
        mask = {
            "HW": field,
            "HW1": field[..., None],
            "NHW": np.stack([field] * 2),
            "NHW1": np.stack([field[..., None]] * 2),
        }[mask_shape]
        actual = tf_histeq.equalize_hist(image, mask=mask.astype(np.uint8)).numpy()
        expected = np.broadcast_to(
            numpy_opencv(plane, field)[..., None], actual.shape[-3:] if channels else plane.shape + (1,)
        )
        for got in actual.reshape(-1, 20, 24, channels or 1):
            assert_same_pixels(got, np.ascontiguousarray(expected).reshape(20, 24, channels or 1))

    @pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 4, 3), (2, 0, 5, 1), (0, 3, 3, 1)], ids=str)
    def test_empty_images_come_back_empty(self, shape, run):
        image = np.zeros(shape, np.uint8)
        actual = run(tf_histeq.equalize_hist, image)
        assert actual.shape == shape and actual.dtype == np.uint8


class TestValidation:
    @pytest.mark.parametrize(
        ("images", "kwargs", "error", "match"),
        [
            (
                np.zeros(5, np.uint8),
                {},
                ValueError,
                r"`images.shape` must have rank 2 \(H, W\), 3 \(H, W, C\) or 4.*Received: images.shape=\(5,\)",
            ),
            (
                np.zeros((1, 2, 2, 2, 1), np.uint8),
                {},
                ValueError,
                r"must have rank 2 .*Received: images.shape=\(1, 2, 2, 2, 1\)",
            ),
            (
                np.zeros((4, 4), bool),
                {},
                TypeError,
                r"`images.dtype` must be one of uint8, .*Received: images.dtype='bool'",
            ),
            (np.zeros((4, 4), np.complex64), {}, TypeError, r"Received: images.dtype='complex64'"),
            (np.zeros((4, 4), np.int8), {}, TypeError, r"Received: images.dtype='int8'"),
            (np.array([["a", "b"]]), {}, TypeError, r"Received: images.dtype='<U1'"),
            ("not an image", {}, TypeError, r"`images.dtype` must be one of .*Received: images.dtype='string'"),
            (
                np.zeros((4, 4), np.uint8),
                {"method": "cv2"},
                ValueError,
                r"`method` must be one of 'opencv', 'pil'. Received: method='cv2'",
            ),
            (
                np.zeros((4, 4), np.uint8),
                {"channels": "rgb"},
                ValueError,
                r"`channels` must be one of .*Received: channels='rgb'",
            ),
            (
                np.zeros((4, 4, 1), np.uint8),
                {"channels": "luminance"},
                ValueError,
                r"`channels` must be .*3 colour channels \(RGB, or RGBA with alpha\).*Hint: images have 1 channel",
            ),
            (
                np.zeros((4, 4), np.uint8),
                {"value_range": (5, 5)},
                ValueError,
                r"`value_range` must satisfy low < high. Received: value_range=\(5, 5\)",
            ),
            (
                np.zeros((4, 4), np.uint8),
                {"value_range": (10, 0)},
                ValueError,
                r"low < high.*Received: value_range=\(10, 0\)",
            ),
            (
                np.zeros((4, 4), np.float32),
                {"value_range": (0, np.inf)},
                ValueError,
                r"`value_range` must be two finite numbers",
            ),
            (
                np.zeros((4, 4), np.float32),
                {"value_range": 255},
                TypeError,
                r"`value_range` must be a pair of numbers.*Received: value_range=255",
            ),
            (
                np.zeros((4, 4), np.float32),
                {"value_range": ("0", "1")},
                TypeError,
                r"`value_range` must be a pair of numbers",
            ),
            (
                np.zeros((4, 4), np.uint8),
                {"value_range": (0, 1000)},
                ValueError,
                r"`value_range` must be two integers within the range of uint8",
            ),
            (
                np.zeros((4, 4), np.uint8),
                {"value_range": (0.5, 200)},
                ValueError,
                r"`value_range` must be two integers",
            ),
            (
                np.zeros((4, 4), np.uint8),
                {"bins": 1},
                ValueError,
                r"`bins` must be an int in \[2, 65536\]. Received: bins=1",
            ),
            (np.zeros((4, 4), np.uint8), {"bins": 0}, ValueError, r"Received: bins=0"),
            (np.zeros((4, 4), np.float32), {"bins": 2**20}, ValueError, r"Received: bins=1048576"),
            (
                np.zeros((4, 4), np.uint8),
                {"bins": 512},
                ValueError,
                r"`bins` must be at most 256, the number of uint8 levels",
            ),
            (
                np.zeros((4, 4), np.float16),
                {"bins": 4096},
                ValueError,
                r"`bins` must be at most 2048, the levels float16 holds",
            ),
            (np.zeros((4, 4), np.uint8), {"bins": 2.5}, TypeError, r"`bins` must be an int.*Received: bins=2.5"),
            (
                np.zeros((4, 4), np.uint8),
                {"mask": np.ones((4, 5), bool)},
                ValueError,
                r"`mask.shape` must be \(H, W\) or \(H, W, 1\) for images of shape \(4, 4\). Received: mask.shape=\(4, 5\)",
            ),
            (
                np.zeros((2, 4, 4, 1), np.uint8),
                {"mask": np.ones((3, 4, 4), bool)},
                ValueError,
                r"`mask.shape` must be \(H, W\), \(N, H, W\).*Received: mask.shape=\(3, 4, 4\)",
            ),
            (
                np.zeros((4, 4), np.uint8),
                {"mask": np.array([["a"] * 4] * 4)},
                TypeError,
                r"`mask.dtype` must be bool or a number type",
            ),
        ],
        ids=lambda v: v if isinstance(v, str) else None,
    )
    def test_bad_arguments_raise_at_trace_time(self, images, kwargs, error, match):
        with pytest.raises(error, match=match):
            tf_histeq.equalize_hist(images, **kwargs)
        if isinstance(images, np.ndarray) and images.dtype.kind in "uf" and images.ndim in (2, 3, 4):
            traced = tf.function(lambda x: tf_histeq.equalize_hist(x, **kwargs))
            with pytest.raises(error, match=match):
                traced.get_concrete_function(tf.TensorSpec(images.shape, images.dtype))

    def test_unknown_rank_and_unknown_channels_are_refused(self):
        traced = tf.function(lambda x: tf_histeq.equalize_hist(x))
        with pytest.raises(ValueError, match=r"statically known rank"):
            traced.get_concrete_function(tf.TensorSpec(None, tf.uint8))
        with pytest.raises(ValueError, match=r"statically known number of channels.*Hint: call `tf.ensure_shape"):
            traced.get_concrete_function(tf.TensorSpec([None, None, None], tf.uint8))
