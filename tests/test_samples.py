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


@pytest.fixture(scope="module")
def ct():
    """The default 64x128x128 CT phantom and its labels, generated once."""
    return samples.ct_phantom(), samples.ct_labels()


def voxel(shape, z, y, x) -> tuple[int, int, int]:
    """The voxel whose centre is nearest to the normalised coordinates `(z, y, x)` in [-1, 1]."""
    return tuple(int(np.floor((c + 1) / 2 * n)) for c, n in zip((z, y, x), shape, strict=True))


class TestCTPhantom:
    def test_int16_hounsfield_values_of_the_default_shape(self, ct):
        volume, labels = ct
        assert volume.dtype == np.int16 and volume.shape == (64, 128, 128)
        assert labels.dtype == np.uint8 and labels.shape == volume.shape
        assert volume.min() == -2048 and volume.max() <= 3071
        assert set(np.unique(labels)) == set(samples.CT_LABELS.values())

    def test_each_structure_has_its_documented_value_and_noise(self, ct):
        volume, labels = ct
        for name, code in samples.CT_LABELS.items():
            values = volume[labels == code].astype(np.float64)
            assert abs(values.mean() - samples.CT_HU[name]) < 1.5, name  # 956+ voxels: standard error < 0.35 HU
            if name == "outside":
                assert values.std() == 0
            else:
                assert 9 < values.std() < 11, name

    def test_structures_are_where_documented(self, ct):
        volume, labels = ct
        shape = labels.shape
        codes = samples.CT_LABELS
        for side in (-1, 1):
            assert labels[voxel(shape, 0.15, -0.05, side * 0.4)] == codes["lung"]
        assert labels[voxel(shape, 0.0, 0.42, 0.0)] == codes["bone"]
        assert labels[voxel(shape, 0.0, 0.42, 0.085)] == codes["cortical_bone"]
        assert labels[voxel(shape, -0.78, 0.0, 0.3)] == codes["lesion"]
        for dx in (-0.2, 0.2):  # the lesion lies in soft tissue
            assert labels[voxel(shape, -0.78, 0.0, 0.3 + dx)] == codes["soft_tissue"]
        assert labels[voxel(shape, 0.0, -0.6, 0.0)] == codes["fat"]
        assert labels[voxel(shape, 0.0, -0.8, 0.0)] == codes["air"]
        assert labels[0, 0, 0] == codes["outside"] and volume[0, 0, 0] == -2048
        below = voxel(shape, -0.65, 0, 0)[0]  # the lungs end above z = -0.6
        assert not (labels[:below] == codes["lung"]).any() and (labels[below:] == codes["lung"]).any()
        # The lesion is low contrast: 20 HU over its surroundings, twice the noise.
        lesion = volume[labels == codes["lesion"]].mean()
        tissue = volume[labels == codes["soft_tissue"]].mean()
        assert 18 < lesion - tissue < 22

    def test_deterministic_noise_from_the_seed(self, ct):
        volume, labels = ct
        shape = (8, 16, 24)
        assert np.array_equal(samples.ct_phantom(), volume)
        assert np.array_equal(samples.ct_phantom(shape, seed=3), samples.ct_phantom(shape, seed=3))
        other = samples.ct_phantom(shape, seed=4)
        assert (other != samples.ct_phantom(shape, seed=3)).mean() > 0.5
        assert samples.ct_phantom(shape).shape == shape and np.array_equal(samples.ct_labels(shape).shape, shape)

    @pytest.mark.parametrize(
        ("shape", "error", "match"),
        [
            ((4, 64, 64), ValueError, r"`shape` must be three ints >= 8 .*Received: shape=\(4, 64, 64\)"),
            ((64, 64), TypeError, r"`shape` must be three ints \(depth, height, width\)"),
            ((8.0, 16, 16), TypeError, r"Received: shape=\(8\.0, 16, 16\)"),
        ],
    )
    def test_bad_shapes(self, shape, error, match):
        with pytest.raises(error, match=match):
            samples.ct_phantom(shape)
