"""clahe through the public function: parity with cv2.createCLAHE and the contract.

The exhaustive parity matrix of the kernel (clip limits x grids x sizes) is in
test_clahe_kernel.py; this file checks what the public function adds: dtypes,
value ranges, channels, masks, layout and run modes.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests import _images
from tests._references import assert_same_pixels, cv2_clahe, cv2_lightness


class TestReference:
    @pytest.mark.parametrize("name", ["camera", "moon", "microaneurysms"])
    @pytest.mark.parametrize(("clip_limit", "grid"), [(2.0, (8, 8)), (40.0, (2, 3)), (0.0, (16, 16))], ids=str)
    def test_matches_cv2_on_real_images(self, name, clip_limit, grid, skdata):
        image = getattr(skdata, name)()
        actual = tf_histeq.clahe(image, clip_limit=clip_limit, tile_grid_size=grid).numpy()
        assert_same_pixels(actual, cv2_clahe(image, clip_limit, grid), name)

    def test_matches_cv2_per_plane_on_a_color_batch(self, skdata):
        batch = np.stack([skdata.astronaut()[:200, :240], skdata.coffee()[:200, :240]])
        actual = tf_histeq.clahe(batch, clip_limit=3.0, tile_grid_size=(4, 6)).numpy()
        assert_same_pixels(actual, cv2_clahe(batch, 3.0, (4, 6)))

    @pytest.mark.parametrize("make", [pytest.param(m, id=n) for n, m in _images.DESIGNED.items()])
    def test_matches_cv2_on_designed_uint16_images(self, make):
        image = make((53, 37), np.uint16)
        actual = tf_histeq.clahe(image, clip_limit=4.0, tile_grid_size=(3, 2)).numpy()
        assert actual.dtype == np.uint16
        assert_same_pixels(actual, cv2_clahe(image, 4.0, (3, 2)))

    @pytest.mark.parametrize("space", ["luminance", "lab"])
    def test_lightness_modes_equal_the_opencv_round_trip(self, skdata, space):
        """`cvtColor(RGB2YCrCb` / `RGB2Lab)`, createCLAHE on Y / L, back: 0 px differ (RGBA: alpha passes)."""
        image = skdata.astronaut()[::2, ::2]
        rgba = np.dstack([skdata.coffee()[:256, :256], _images.xray()((256, 256), np.uint8)])
        for name, pixels, grid in [("astronaut", image, (8, 8)), ("coffee RGBA", rgba, (3, 5))]:
            actual = tf_histeq.clahe(pixels, channels=space, clip_limit=3.0, tile_grid_size=grid).numpy()
            expected = cv2_lightness(pixels, space, lambda plane, g=grid: cv2_clahe(plane, 3.0, g))
            assert_same_pixels(actual, expected, f"{name} {space}")


class TestContract:
    def test_batch_equals_stack_of_single_images(self, run):
        batch = np.stack(
            [
                _images.xray()((45, 70), np.uint8),
                np.full((45, 70), 250, np.uint8),
                _images.beta(0.5, 0.5)((45, 70), np.uint8),
            ]
        )[..., None]
        actual = run(tf_histeq.clahe, batch, clip_limit=2.5, tile_grid_size=(3, 5))
        for i, image in enumerate(batch):
            assert_same_pixels(actual[i], cv2_clahe(image, 2.5, (3, 5)), f"image {i}")

    @pytest.mark.parametrize("channels", ["per_channel", "luminance", "lab"])
    def test_function_and_xla_equal_eager_with_a_mask(self, traced, channels):
        batch = np.stack([_images.xray()((40, 52, 3), np.uint8), _images.band(0.2, 0.3)((40, 52, 3), np.uint8)])
        mask = _images.xray_mask((40, 52))
        kwargs = {"channels": channels, "tile_grid_size": (4, 4)}
        expected = tf_histeq.clahe(batch, mask=mask, **kwargs).numpy()
        assert (expected != tf_histeq.clahe(batch, **kwargs).numpy()).any(), "the mask must change the result"
        assert_same_pixels(traced(lambda x, **kw: tf_histeq.clahe(x, mask=mask, **kw), batch, **kwargs), expected)

    @pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int32])
    def test_other_dtypes_with_integer_values_equal_uint8(self, dtype):
        image = _images.xray()((50, 60), np.uint8)
        actual = tf_histeq.clahe(tf.cast(image, dtype)).numpy()
        assert actual.dtype == dtype.as_numpy_dtype
        assert_same_pixels(actual.astype(np.float64).astype(np.uint8), cv2_clahe(image, 2.0, (8, 8)))

    def test_float_unit_range(self):
        image = _images.beta(2, 5)((64, 64), np.uint8)
        scaled = (image.astype(np.float64) / 255).astype(np.float32)
        expected = (cv2_clahe(image, 2.0, (8, 8)).astype(np.float64) / 255).astype(np.float32)
        assert_same_pixels(tf_histeq.clahe(scaled, value_range=(0, 1)).numpy(), expected)

    def test_12_bit_data_stays_12_bit_or_is_stretched_like_opencv(self):
        image = (_images.xray()((64, 64), np.uint16) >> 4).astype(np.uint16)  # 0..4095
        kept = tf_histeq.clahe(image, value_range=(0, 4095), bins=4096).numpy()
        assert kept.max() <= 4095 and kept.max() > 3000
        stretched = tf_histeq.clahe(image).numpy()
        assert_same_pixels(stretched, cv2_clahe(image, 2.0, (8, 8)))
        assert stretched.max() > 4095

    def test_a_tile_without_masked_pixels_uses_the_identity(self):
        # A 2x2 grid on a 40x40 image; the mask covers only the top-left tile, so the
        # bottom-right tile's table is the identity and its far corner keeps its values.
        image = _images.beta(2, 5)((40, 40), np.uint8)
        mask = np.zeros((40, 40), bool)
        mask[:20, :20] = True
        actual = tf_histeq.clahe(image, tile_grid_size=(2, 2), mask=mask).numpy()
        assert_same_pixels(actual[30:, 30:], image[30:, 30:])
        top_left = tf_histeq.clahe(image, tile_grid_size=(2, 2)).numpy()[:10, :10]
        assert (actual[:10, :10] != image[:10, :10]).any() and (top_left != image[:10, :10]).any()

    def test_all_true_mask_equals_no_mask(self):
        image = _images.xray()((33, 47, 3), np.uint8)
        assert_same_pixels(
            tf_histeq.clahe(image, mask=np.ones((33, 47), np.uint8)).numpy(), tf_histeq.clahe(image).numpy()
        )

    def test_alpha_passes_through(self):
        image = np.concatenate([_images.xray()((30, 30, 3), np.uint8), np.full((30, 30, 1), 128, np.uint8)], -1)
        actual = tf_histeq.clahe(image, tile_grid_size=(2, 2)).numpy()
        assert_same_pixels(actual[..., 3], image[..., 3])
        assert_same_pixels(actual[..., :3], cv2_clahe(image[..., :3], 2.0, (2, 2)))

    def test_input_is_not_modified(self):
        image = _images.xray()((30, 40, 3), np.uint8)
        before = image.copy()
        tf_histeq.clahe(image, channels="luminance")
        assert_same_pixels(image, before)
