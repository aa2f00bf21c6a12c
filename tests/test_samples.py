"""`tf_histeq.samples`: deterministic, low-contrast, the masks fit the images, no TensorFlow needed."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import tf_histeq
from tf_histeq import samples

SIZE = (128, 160)


@pytest.fixture(scope="module")
def full_size_xray():
    """The default 512x512 phantom, generated once for the tests that read it."""
    return samples.chest_xray()


@pytest.fixture(scope="module")
def full_size_scene():
    """The default 384x512 colour scene, generated once for the tests that read it."""
    return samples.color_scene()


class TestChestXray:
    def test_same_seed_same_image_other_seed_other_noise(self):
        a, b = samples.chest_xray(SIZE, seed=7), samples.chest_xray(SIZE, seed=7)
        assert np.array_equal(a, b)
        c = samples.chest_xray(SIZE, seed=8)
        field = samples.field_mask(SIZE)
        assert np.count_nonzero(a[field] != c[field]) > 0.5 * field.sum()
        assert np.abs(a.astype(int) - c.astype(int)).mean() < 5  # the same anatomy

    def test_low_contrast_inside_black_borders(self, full_size_xray):
        img = full_size_xray
        assert img.shape == (512, 512) and img.dtype == np.uint8
        field = samples.field_mask()
        assert np.all(img[~field] == 0)  # collimation: exactly black
        inside = img[field]
        assert inside.min() > 50  # nothing black inside the field
        p1, p99 = np.percentile(inside, [1, 99])
        assert p99 - p1 < 90  # a narrow band of the 256 levels
        assert 10 < inside.std() < 25

    def test_lungs_are_darker_than_the_rest_of_the_body(self, full_size_xray):
        img = full_size_xray
        lungs, field = samples.lung_mask(), samples.field_mask()
        assert img[lungs].mean() + 8 < img[field & ~lungs].mean()

    @pytest.mark.parametrize("bits", [10, 12, 16])
    def test_more_bits_give_uint16_within_range(self, bits):
        img = samples.chest_xray(SIZE, bits=bits)
        assert img.dtype == np.uint16
        assert img.max() < 2**bits and img.max() > 2 ** (bits - 2)
        eight = samples.chest_xray(SIZE)
        # The same picture: scaled down to 8 bits it is within rounding of the 8-bit image.
        scaled = np.rint(img.astype(np.float64) * 255 / (2**bits - 1))
        assert np.abs(scaled - eight).max() <= 1

    def test_equalization_increases_contrast(self):
        img = samples.chest_xray(SIZE)
        field = samples.field_mask(SIZE)
        out = tf_histeq.equalize_hist(img).numpy()
        assert out[field].std() > 3 * img[field].std()


class TestMasks:
    def test_lung_mask_lies_inside_the_field_and_covers_a_quarter(self):
        lungs, field = samples.lung_mask(SIZE), samples.field_mask(SIZE)
        assert lungs.dtype == bool and lungs.shape == SIZE
        assert not np.any(lungs & ~field)
        assert 0.15 < lungs.mean() < 0.35
        assert lungs[:, : SIZE[1] // 2].any() and lungs[:, SIZE[1] // 2 :].any()  # two lungs
        assert not lungs[:, SIZE[1] // 2].any()  # the mediastinum between them

    def test_field_matches_the_nonzero_pixels_of_the_image(self):
        img = samples.chest_xray(SIZE)
        assert np.array_equal(samples.field_mask(SIZE), img > 0)


class TestColorScene:
    def test_hazy_rgb(self, full_size_scene):
        img = full_size_scene
        assert img.shape == (384, 512, 3) and img.dtype == np.uint8
        p1, p99 = np.percentile(img, [1, 99])
        assert p99 - p1 < 110
        small = samples.color_scene(SIZE)
        assert np.array_equal(small, samples.color_scene(SIZE))
        assert not np.array_equal(small, samples.color_scene(SIZE, seed=1))
        means = img.reshape(-1, 3).mean(axis=0)
        assert means[2] > means[0]  # a bluish haze

    def test_luminance_equalization_keeps_more_of_the_hue_than_per_channel(self):
        img = samples.color_scene((96, 128))
        lum = tf_histeq.equalize_hist(img, channels="luminance").numpy().astype(float)
        per = tf_histeq.equalize_hist(img).numpy().astype(float)

        def chroma(x):
            return x - x.mean(axis=-1, keepdims=True)

        base = chroma(img.astype(float))
        assert np.abs(chroma(lum) - base).mean() < np.abs(chroma(per) - base).mean()


class TestLoadAndValidation:
    @pytest.mark.parametrize(
        ("name", "dtype", "shape"),
        [
            ("chest_xray", np.uint8, (512, 512)),
            ("chest_xray_12bit", np.uint16, (512, 512)),
            ("lung_mask", bool, (512, 512)),
            ("field_mask", bool, (512, 512)),
            ("color_scene", np.uint8, (384, 512, 3)),
        ],
    )
    def test_load_every_name(self, name, dtype, shape, full_size_xray, full_size_scene):
        img = samples.load(name)
        assert img.dtype == dtype and img.shape == shape
        assert name in samples.NAMES
        default = {"chest_xray": full_size_xray, "color_scene": full_size_scene}.get(name)
        if default is not None:
            assert np.array_equal(img, default)

    @pytest.mark.parametrize(
        ("call", "error", "match"),
        [
            (
                lambda: samples.load("lena"),
                ValueError,
                r"`name` must be one of 'chest_xray', .*Received: name='lena'\.",
            ),
            (
                lambda: samples.chest_xray((8, 64)),
                ValueError,
                r"`size` must be two ints >= 16 .*Received: size=\(8, 64\)",
            ),
            (lambda: samples.chest_xray(64), TypeError, r"`size` must be a pair of two ints"),
            (lambda: samples.chest_xray((64.0, 64)), TypeError, r"Received: size=\(64\.0, 64\)"),
            (
                lambda: samples.chest_xray(bits=7),
                ValueError,
                r"`bits` must be an int in \[8, 16\]\. Received: bits=7\.",
            ),
            (lambda: samples.chest_xray(bits=True), TypeError, r"Received: bits=True"),
            (lambda: samples.color_scene((16, 15)), ValueError, r"`size` must be two ints >= 16"),
            (lambda: samples.lung_mask([16]), TypeError, r"`size` must be a pair"),
        ],
        ids=["name", "small", "int-size", "float-size", "bits", "bool-bits", "scene-small", "mask-size"],
    )
    def test_bad_arguments(self, call, error, match):
        with pytest.raises(error, match=match):
            call()

    def test_samples_do_not_import_tensorflow(self):
        code = "import sys; from tf_histeq import samples; samples.chest_xray((32, 32)); print('tensorflow' in sys.modules)"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
        assert result.stdout.strip() == "False", result.stderr
