"""int16 images (CT in Hounsfield units, as NIfTI and DICOM store it) in every op, 2-D included.

int16 defaults to its whole range `(-32768, 32767)` with 65536 bins, one per
level: the levels are the uint16 levels shifted by 32768, so the references
are OpenCV and the NumPy formulas on `x + 32768` as uint16, shifted back
(`cv2.equalizeHist` takes uint8 only: for 65536 bins `numpy_opencv`, checked
against cv2 in tests/test_equalize_hist.py, is the reference; `cv2.createCLAHE`
takes uint16 directly). The usual CT window, `value_range=(-1024, 3071),
bins=4096`, is compared with the same formulas on the rebased levels
`clip(x, -1024, 3071) + 1024` (`numpy_clahe`, OpenCV's CLAHE for any bin count,
checked against cv2 in tests/test_clahe_kernel.py). `match_histograms` is
compared with scikit-image's `exposure.match_histograms` on the int16 values.
"""

from __future__ import annotations

import numpy as np
import pytest

import tf_histeq
from tests import _images
from tests._references import assert_same_pixels, cv2_clahe, per_plane
from tests.test_clahe_kernel import numpy_clahe
from tests.test_equalize_hist import numpy_opencv
from tests.test_matching import skimage_rounded
from tf_histeq import numpy_api, samples

SHIFT = 32768
CT_WINDOW = (-1024, 3071)  # the 12-bit window CT scanners store: air -1000 HU to dense bone


def to_int16(unsigned: np.ndarray) -> np.ndarray:
    """uint16 levels as int16 values: `u - 32768` (the level mapping the ops use, inverted)."""
    return (unsigned.astype(np.int32) - SHIFT).astype(np.int16)


def to_uint16(signed: np.ndarray) -> np.ndarray:
    return (signed.astype(np.int32) + SHIFT).astype(np.uint16)


def hounsfield(shape, salt: int) -> np.ndarray:
    """A CT-like int16 image in HU: a soft-tissue band (-100..200) with air below and metal above the window."""
    unit = _images.VARIED[salt % len(_images.VARIED)](shape, np.uint16).astype(np.float64) / 65535
    hu = np.rint(-100 + 300 * unit).astype(np.int32)
    flat = hu.reshape(-1)
    flat[: flat.size // 10] = -2048  # outside the scanner's field of view: below the window
    flat[-5:] = 3500  # a metal implant: above it
    return hu.astype(np.int16)


@pytest.mark.parametrize("name", list(_images.DESIGNED))
def test_equalize_hist_is_the_uint16_formula_on_shifted_levels(name):
    image = to_int16(_images.DESIGNED[name]((48, 40), np.uint16))
    actual = tf_histeq.equalize_hist(image).numpy()
    assert actual.dtype == np.int16
    assert_same_pixels(actual, to_int16(numpy_opencv(to_uint16(image), bins=65536)), name)
    assert_same_pixels(actual, to_int16(tf_histeq.equalize_hist(to_uint16(image)).numpy()), f"{name} via uint16")


@pytest.mark.slow  # tf.function with dynamic shapes and 65536 bins: ~25 s here; uint16 covers the same kernels fast
def test_equalize_hist_int16_batch_in_every_run_mode_with_a_mask(run):
    images = to_int16(_images.batch(3, (40, 33, 1), np.uint16))
    mask = _images.xray_mask((40, 33))
    expected = np.stack([per_plane(lambda p: numpy_opencv(p, mask, bins=65536), to_uint16(im)) for im in images])
    assert_same_pixels(run(tf_histeq.equalize_hist, images, mask=mask), to_int16(expected))


@pytest.mark.parametrize("name", list(_images.DESIGNED))
def test_clahe_is_opencv_on_shifted_levels(name):
    image = to_int16(_images.DESIGNED[name]((53, 37), np.uint16))
    actual = tf_histeq.clahe(image).numpy()
    assert actual.dtype == np.int16
    assert_same_pixels(actual, to_int16(cv2_clahe(to_uint16(image), 2.0, (8, 8))), name)


@pytest.mark.parametrize(("clip_limit", "grid"), [(0.0, (3, 4)), (4.0, (2, 5)), (40.0, (1, 1))])
def test_clahe_int16_batch_settings(clip_limit, grid):
    images = to_int16(_images.batch(2, (29, 31, 1), np.uint16))
    expected = to_int16(cv2_clahe(to_uint16(images), clip_limit, grid))
    actual = tf_histeq.clahe(images, clip_limit=clip_limit, tile_grid_size=grid).numpy()
    assert_same_pixels(actual, expected)


@pytest.mark.slow
def test_clahe_int16_in_every_run_mode(run):
    images = to_int16(_images.batch(2, (29, 31, 1), np.uint16))
    expected = to_int16(cv2_clahe(to_uint16(images), 3.0, (3, 2)))
    assert_same_pixels(run(tf_histeq.clahe, images, clip_limit=3.0, tile_grid_size=(3, 2)), expected)


class TestCTWindow:
    """`value_range=(-1024, 3071), bins=4096`: one bin per HU of the window, values outside clipped to it."""

    def rebased(self, image: np.ndarray) -> np.ndarray:
        low, high = CT_WINDOW
        return (np.clip(image.astype(np.int32), low, high) - low).astype(np.uint16)

    @pytest.mark.parametrize("salt", range(4))
    def test_equalize_hist(self, salt):
        image = hounsfield((48, 40), salt)
        actual = tf_histeq.equalize_hist(image, value_range=CT_WINDOW, bins=4096).numpy()
        expected = numpy_opencv(self.rebased(image), bins=4096).astype(np.int32) + CT_WINDOW[0]
        assert_same_pixels(actual, expected.astype(np.int16), f"image {salt}")
        assert actual.min() == CT_WINDOW[0] and actual.max() == CT_WINDOW[1]

    @pytest.mark.parametrize("salt", range(4))
    @pytest.mark.parametrize(("clip_limit", "grid"), [(2.0, (4, 4)), (0.0, (2, 3))])
    def test_clahe(self, salt, clip_limit, grid):
        image = hounsfield((41, 38), salt)
        kwargs = {"value_range": CT_WINDOW, "bins": 4096, "clip_limit": clip_limit, "tile_grid_size": grid}
        actual = tf_histeq.clahe(image, **kwargs).numpy()
        levels = numpy_clahe(self.rebased(image), clip_limit=clip_limit, grid=grid, bins=4096)
        assert_same_pixels(actual, (levels.astype(np.int32) + CT_WINDOW[0]).astype(np.int16), f"image {salt}")
        # The same levels as 12-bit data in uint16.
        twelve_bit = {**kwargs, "value_range": (0, 4095)}
        via_uint16 = tf_histeq.clahe(self.rebased(image), **twelve_bit).numpy().astype(np.int32) + CT_WINDOW[0]
        assert_same_pixels(actual, via_uint16.astype(np.int16), f"image {salt} as 12-bit uint16")

    def test_phantom_slices_with_a_body_mask(self):
        volume, labels = samples.ct_phantom((8, 64, 72))[::2], samples.ct_labels((8, 64, 72))[::2]
        images = volume[..., None]  # four slices as a batch of (H, W, 1) images
        body = labels > samples.CT_LABELS["air"]  # (N, H, W): one mask per slice
        kwargs = {"value_range": CT_WINDOW, "bins": 4096}
        equalized = tf_histeq.equalize_hist(images, mask=body, **kwargs).numpy()[..., 0]
        contrasted = tf_histeq.clahe(images, clip_limit=3.0, tile_grid_size=(4, 4), **kwargs).numpy()[..., 0]
        for n in range(len(volume)):
            levels = self.rebased(volume[n])
            expected = numpy_opencv(levels, body[n], bins=4096).astype(np.int32) + CT_WINDOW[0]
            assert_same_pixels(equalized[n], expected.astype(np.int16), f"slice {n}")
            expected = numpy_clahe(levels, clip_limit=3.0, grid=(4, 4), bins=4096).astype(np.int32) + CT_WINDOW[0]
            assert_same_pixels(contrasted[n], expected.astype(np.int16), f"slice {n}")


@pytest.mark.parametrize("salt", range(4))
def test_match_histograms_is_skimage(salt):
    image = hounsfield((40, 36), salt)
    reference = hounsfield((30, 44), salt + 1)
    actual = tf_histeq.match_histograms(image, reference).numpy()
    assert actual.dtype == np.int16
    assert_same_pixels(actual, skimage_rounded(image, reference), f"image {salt}")


def test_match_histograms_full_range_int16_is_skimage():
    image = to_int16(_images.beta(2, 5)((40, 36), np.uint16))
    reference = to_int16(_images.full_range()((30, 44), np.uint16))
    assert_same_pixels(tf_histeq.match_histograms(image, reference).numpy(), skimage_rounded(image, reference))


def test_equalize_hist_int16_batch_with_a_mask():
    images = to_int16(_images.batch(3, (40, 33, 1), np.uint16))
    mask = _images.xray_mask((40, 33))
    expected = np.stack([per_plane(lambda p: numpy_opencv(p, mask, bins=65536), to_uint16(im)) for im in images])
    assert_same_pixels(tf_histeq.equalize_hist(images, mask=mask).numpy(), to_int16(expected))


def test_the_layer_takes_int16():
    image = hounsfield((32, 30), 0)[..., None]
    expected = tf_histeq.equalize_hist(image, value_range=CT_WINDOW, bins=4096).numpy()
    from tf_histeq.layers import HistogramEqualization

    layer = HistogramEqualization(value_range=CT_WINDOW, bins=4096)
    assert_same_pixels(layer(image[None]).numpy(), expected[None].astype(np.float32))


@pytest.mark.slow  # the NumPy function compiles with XLA: ~5-25 s here
def test_the_numpy_function_takes_int16():
    image = hounsfield((32, 30), 0)[..., None]
    expected = tf_histeq.equalize_hist(image, value_range=CT_WINDOW, bins=4096).numpy()
    assert_same_pixels(numpy_api.histogram_equalization(image, value_range=CT_WINDOW, bins=4096), expected)


def test_value_range_outside_int16_is_refused():
    image = np.zeros((4, 4), np.int16)
    with pytest.raises(ValueError, match=r"`value_range` must be two integers within the range of int16"):
        tf_histeq.equalize_hist(image, value_range=(-40000, 0))
