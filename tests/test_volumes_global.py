"""The global ops on volumes (`spatial_dims=3`): one histogram per volume and channel, exact with the references.

A volume's histogram is the histogram of all its voxels. OpenCV, Pillow and
scikit-image see exactly those voxels when the volume's slices are stacked
into one 2-D image `(D * H, W)` (OpenCV, Pillow) or given as the 3-D array
(scikit-image, which treats an array without `channel_axis` as one N-D
image): those are the references here. The data is the CT phantom of
`tf_histeq.samples` (small, 12 x 24 x 20 voxels) as low-contrast uint8, as
12-bit uint16 and as int16 Hounsfield units, with its body mask
(`ct_labels`: every voxel but air and the padding outside the field of view).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests._references import assert_same_pixels, cv2_lightness, pil_equalize
from tests.test_equalize_hist import numpy_opencv
from tf_histeq import samples
from tf_histeq.data import map_fn

SHAPE = (12, 24, 20)  # (D, H, W): not cubic, so a swapped axis shows
CT_WINDOW = (-1024, 3071)


def hounsfield(seed: int) -> np.ndarray:
    return samples.ct_phantom(SHAPE, seed=seed)


def low_contrast_uint8(seed: int, offset: int = 0) -> np.ndarray:
    """The phantom at 8 HU per level around soft tissue (about level 105): most voxels in a few dozen levels."""
    return np.clip(np.rint(hounsfield(seed) / 8 + 100 + offset), 0, 255).astype(np.uint8)


def skimage_matched(volume: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """skimage's N-D matching (no `channel_axis`: one histogram over all voxels), rounded half to even."""
    exposure = pytest.importorskip("skimage.exposure")
    return np.rint(exposure.match_histograms(volume, reference, channel_axis=None)).astype(volume.dtype)


def body_mask() -> np.ndarray:
    labels = samples.ct_labels(SHAPE)
    return ~np.isin(labels, [samples.CT_LABELS["outside"], samples.CT_LABELS["air"]])


def stacked(volume: np.ndarray) -> np.ndarray:
    """A volume `(D, H, W, ...)` as the 2-D image of its slices stacked: `(D * H, W, ...)`."""
    return volume.reshape(volume.shape[0] * volume.shape[1], *volume.shape[2:])


def per_volume(fn, volumes: np.ndarray) -> np.ndarray:
    """`fn` on the stacked slices of each single-channel volume of `(N, D, H, W, 1)`, reshaped back."""
    return np.stack([fn(stacked(v[..., 0])).reshape(v.shape[:-1]) for v in volumes])[..., None]


VOLUMES = np.stack([low_contrast_uint8(0), low_contrast_uint8(1, offset=6)])[..., None]  # (2, D, H, W, 1)
BODY = body_mask()


class TestEqualizeHist:
    def test_uint8_is_cv2_on_the_stacked_slices(self, cv2):
        actual = tf_histeq.equalize_hist(VOLUMES, spatial_dims=3).numpy()
        assert_same_pixels(actual, per_volume(cv2.equalizeHist, VOLUMES), "uint8 volumes vs cv2")
        by_slice = tf_histeq.equalize_hist(VOLUMES.reshape(-1, *SHAPE[1:], 1)).numpy().reshape(VOLUMES.shape)
        assert (actual != by_slice).sum() > VOLUMES.size // 10, "one histogram per volume, not per slice"

    def test_pil_with_a_body_mask_is_pillow_on_the_stacked_slices(self):
        actual = tf_histeq.equalize_hist(VOLUMES, method="pil", mask=BODY, spatial_dims=3).numpy()
        expected = per_volume(lambda plane: pil_equalize(plane, mask=stacked(BODY)), VOLUMES)
        assert_same_pixels(actual, expected, "pil with a body mask vs Pillow")
        unmasked = tf_histeq.equalize_hist(VOLUMES, method="pil", spatial_dims=3).numpy()
        assert (actual != unmasked).any(), "the mask changes the histogram"

    def test_opencv_with_a_body_mask_is_the_formula_on_the_body_voxels(self):
        actual = tf_histeq.equalize_hist(VOLUMES, mask=BODY, spatial_dims=3).numpy()
        assert_same_pixels(actual, per_volume(lambda p: numpy_opencv(p, stacked(BODY)), VOLUMES), "masked")

    @pytest.mark.parametrize("shape", ["(D,H,W,1)", "(N,D,H,W)", "(N,D,H,W,1)"])
    def test_every_mask_shape_selects_the_same_voxels(self, shape):
        masks = {
            "(D,H,W,1)": BODY[..., None],
            "(N,D,H,W)": np.stack([BODY, BODY]),
            "(N,D,H,W,1)": np.stack([BODY, BODY])[..., None],
        }
        expected = tf_histeq.equalize_hist(VOLUMES, mask=BODY, spatial_dims=3).numpy()
        actual = tf_histeq.equalize_hist(VOLUMES, mask=masks[shape], spatial_dims=3).numpy()
        assert_same_pixels(actual, expected, shape)

    def test_int16_ct_window_with_a_mask_is_the_formula_on_rebased_levels(self):
        ct = np.stack([hounsfield(2), hounsfield(3)])[..., None]
        actual = tf_histeq.equalize_hist(ct, value_range=CT_WINDOW, bins=4096, mask=BODY, spatial_dims=3).numpy()
        assert actual.dtype == np.int16

        def formula(plane):  # one bin per HU of the window: levels clip(x) + 1024
            levels = (np.clip(plane.astype(np.int32), *CT_WINDOW) + 1024).astype(np.uint16)
            return (numpy_opencv(levels, stacked(BODY), bins=4096).astype(np.int32) - 1024).astype(np.int16)

        assert_same_pixels(actual, per_volume(formula, ct), "int16 CT window vs NumPy")
        as_image = tf_histeq.equalize_hist(stacked(ct[0]), value_range=CT_WINDOW, bins=4096, mask=stacked(BODY)).numpy()
        assert_same_pixels(actual[0], as_image.reshape(ct[0].shape), "int16 vs the op on the stacked slices")

    def test_int16_full_range_is_the_uint16_formula_on_shifted_levels(self):
        ct = hounsfield(4)
        actual = tf_histeq.equalize_hist(ct, spatial_dims=3).numpy()
        shifted = (stacked(ct).astype(np.int32) + 32768).astype(np.uint16)
        expected = (numpy_opencv(shifted, bins=65536).astype(np.int32) - 32768).astype(np.int16)
        assert_same_pixels(actual, expected.reshape(ct.shape), "int16 65536 bins")

    def test_uint16_12_bit_and_quantized(self):
        volume = np.clip(hounsfield(5).astype(np.int32) + 1024, 0, 4095).astype(np.uint16)[..., None]  # (D, H, W, 1)
        actual = tf_histeq.equalize_hist(volume, value_range=(0, 4095), bins=4096, spatial_dims=3).numpy()
        expected = numpy_opencv(stacked(volume[..., 0]), bins=4096).reshape(volume.shape)
        assert_same_pixels(actual, expected, "12-bit uint16 vs NumPy")
        assert actual.max() <= 4095
        for kwargs in ({"bins": 256}, {"value_range": (0, 4095), "bins": 1000}):  # quantized levels
            actual = tf_histeq.equalize_hist(volume, spatial_dims=3, **kwargs).numpy()
            expected = tf_histeq.equalize_hist(stacked(volume), **kwargs).numpy().reshape(volume.shape)
            assert_same_pixels(actual, expected, f"uint16 {kwargs} vs the op on the stacked slices")

    def test_a_volume_never_depends_on_its_batch_mates(self):
        alone = tf_histeq.equalize_hist(VOLUMES[:1], spatial_dims=3).numpy()
        brighter = np.clip(VOLUMES[1:].astype(np.int32) + 60, 0, 255).astype(np.uint8)
        for mates in (VOLUMES[1:], brighter):
            together = tf_histeq.equalize_hist(np.concatenate([VOLUMES[:1], mates]), spatial_dims=3).numpy()
            assert_same_pixels(together[:1], alone, "volume 0 next to another")

    def test_unbatched_volumes_with_and_without_channels(self, cv2):
        batch = tf_histeq.equalize_hist(VOLUMES, spatial_dims=3).numpy()
        assert_same_pixels(tf_histeq.equalize_hist(VOLUMES[0, ..., 0], spatial_dims=3).numpy(), batch[0, ..., 0])
        assert_same_pixels(tf_histeq.equalize_hist(VOLUMES[0], spatial_dims=3).numpy(), batch[0])
        three = np.concatenate([VOLUMES[0], VOLUMES[1], 255 - VOLUMES[0]], axis=-1)  # (D, H, W, 3), no alpha
        actual = tf_histeq.equalize_hist(three, spatial_dims=3).numpy()
        for c in range(3):
            expected = cv2.equalizeHist(np.ascontiguousarray(stacked(three[..., c]))).reshape(SHAPE)
            assert_same_pixels(actual[..., c], expected, f"channel {c}")

    def test_three_slices_are_one_volume_not_an_rgb_image(self, cv2):
        # (3, 64, 64): skimage would read it as an image of 3 rows... or RGB; here the caller says.
        slices = np.stack([low_contrast_uint8(6)[d, :, :16] for d in (2, 6, 9)])  # (3, 24, 16)
        volume = np.repeat(np.repeat(slices, 3, axis=1)[:, :64], 4, axis=2)[:, :64, :64]  # (3, 64, 64)
        volume = np.ascontiguousarray(volume + np.arange(3, dtype=np.uint8)[:, None, None] * 4)
        assert volume.shape == (3, 64, 64)
        actual = tf_histeq.equalize_hist(volume, spatial_dims=3).numpy()
        assert_same_pixels(actual, cv2.equalizeHist(stacked(volume)).reshape(volume.shape), "(3, 64, 64) volume")
        as_image = tf_histeq.equalize_hist(volume).numpy()  # the default reads (H=3, W=64, C=64)
        assert (actual != as_image).sum() > volume.size // 2, "the 2-D reading is another result"

    def test_two_channel_volumes_have_no_alpha(self, cv2):
        """Two MR contrasts, not gray + alpha: `alpha="auto"` equalizes both channels of a volume."""
        two = np.concatenate([VOLUMES, VOLUMES[:, ::-1]], axis=-1)  # (2, D, H, W, 2)
        actual = tf_histeq.equalize_hist(two, spatial_dims=3).numpy()
        for c in range(2):
            expected = per_volume(cv2.equalizeHist, two[..., c : c + 1])
            assert_same_pixels(actual[..., c : c + 1], expected, f"channel {c} of a 2-channel volume vs cv2")
        kept = tf_histeq.equalize_hist(two, spatial_dims=3, alpha=True).numpy()
        np.testing.assert_array_equal(kept[..., 1], two[..., 1])  # alpha=True still passes the last one through

    @pytest.mark.parametrize("space", ["luminance", "lab"])
    def test_colour_modes_convert_voxel_by_voxel(self, space, cv2):
        rgb = np.stack([VOLUMES[0, ..., 0], VOLUMES[1, ..., 0], np.roll(VOLUMES[0, ..., 0], 3, axis=2)], axis=-1)
        rgb = rgb[:4]  # (4, H, W, 3)
        actual = tf_histeq.equalize_hist(rgb[None], channels=space, spatial_dims=3).numpy()[0]
        expected = cv2_lightness(stacked(rgb), space, cv2.equalizeHist).reshape(rgb.shape)
        assert_same_pixels(actual, expected, f"{space} round trip on a volume")

    def test_empty_volumes_come_back_empty(self):
        for shape in [(0, 24, 20), (2, 0, 24, 20, 1), (0, 3, 4, 5, 1)]:
            volumes = np.zeros(shape, np.uint8)
            assert tf_histeq.equalize_hist(volumes, spatial_dims=3).shape == shape
            assert tf_histeq.match_histograms(volumes, VOLUMES[0], spatial_dims=3).shape == shape

    def test_an_all_false_mask_leaves_the_volume_unchanged(self):
        mask = np.stack([BODY, np.zeros_like(BODY)])  # volume 1: no voxel inside
        actual = tf_histeq.equalize_hist(VOLUMES, mask=mask, spatial_dims=3).numpy()
        assert_same_pixels(actual[1], VOLUMES[1], "empty mask")
        assert_same_pixels(actual[:1], tf_histeq.equalize_hist(VOLUMES[:1], mask=BODY, spatial_dims=3).numpy())


class TestMatchHistograms:
    REFERENCE = low_contrast_uint8(7, offset=-20)  # (D, H, W), darker

    def test_uint8_is_skimage_on_the_3d_arrays(self):
        actual = tf_histeq.match_histograms(VOLUMES, self.REFERENCE, spatial_dims=3).numpy()
        expected = np.stack([skimage_matched(v[..., 0], self.REFERENCE) for v in VOLUMES])[..., None]
        assert_same_pixels(actual, expected, "volumes vs skimage (channel_axis=None, 3-D)")

    def test_references_a_2d_image_and_a_pooled_histogram(self):
        image = self.REFERENCE[5]  # (H, W): a one-slice volume, or its histogram
        actual = tf_histeq.match_histograms(VOLUMES, image[None], spatial_dims=3).numpy()
        expected = np.stack([skimage_matched(v[..., 0], image[None]) for v in VOLUMES])[..., None]
        assert_same_pixels(actual, expected, "2-D reference vs skimage")
        histogram = tf_histeq.reference_histogram(image)
        assert_same_pixels(tf_histeq.match_histograms(VOLUMES, histogram, spatial_dims=3).numpy(), expected)
        pooled = tf_histeq.reference_histogram(self.REFERENCE[None, ..., None], spatial_dims=3)
        direct = tf_histeq.match_histograms(VOLUMES, self.REFERENCE, spatial_dims=3).numpy()
        assert_same_pixels(tf_histeq.match_histograms(VOLUMES, pooled, spatial_dims=3).numpy(), direct)

    def test_masks_are_those_of_the_stacked_slices(self):
        reference_mask = body_mask()
        actual = tf_histeq.match_histograms(
            VOLUMES, self.REFERENCE, mask=BODY, reference_mask=reference_mask, spatial_dims=3
        ).numpy()
        expected = [
            tf_histeq.match_histograms(
                stacked(v), stacked(self.REFERENCE), mask=stacked(BODY), reference_mask=stacked(reference_mask)
            ).numpy()
            for v in VOLUMES
        ]
        assert_same_pixels(actual, np.stack(expected).reshape(VOLUMES.shape), "masked matching")
        assert (actual != tf_histeq.match_histograms(VOLUMES, self.REFERENCE, spatial_dims=3).numpy()).any()

    def test_an_empty_known_mask_is_refused(self):
        with pytest.raises(ValueError, match=r"`mask` must select at least one pixel.*image\(s\) \[1\]"):
            tf_histeq.match_histograms(
                VOLUMES, self.REFERENCE, mask=np.stack([BODY, np.zeros_like(BODY)]), spatial_dims=3
            )


class TestWaysIn:
    def test_map_fn_on_a_dataset_of_volumes(self):
        expected = tf_histeq.equalize_hist(VOLUMES, spatial_dims=3).numpy()
        dataset = tf.data.Dataset.from_tensor_slices(VOLUMES)  # elements (D, H, W, C)
        mapped = np.stack(list(dataset.map(map_fn("equalize_hist", spatial_dims=3)).as_numpy_iterator()))
        assert_same_pixels(mapped, expected, "map_fn on (D, H, W, C) elements")
        batched = dataset.batch(2).map(map_fn("equalize_hist", spatial_dims=3, jit_compile=False))
        assert_same_pixels(next(iter(batched)).numpy(), expected, "map_fn on (N, D, H, W, C) batches")

    def test_numpy_functions(self):
        expected = tf_histeq.equalize_hist(VOLUMES, mask=BODY, spatial_dims=3).numpy()
        actual = tf_histeq.histogram_equalization(VOLUMES, mask=BODY, spatial_dims=3)
        assert isinstance(actual, np.ndarray)
        assert_same_pixels(actual, expected, "histogram_equalization")
        match = tf_histeq.preprocessing_function(
            "match_histograms", reference=TestMatchHistograms.REFERENCE, spatial_dims=3
        )
        expected = tf_histeq.match_histograms(VOLUMES[0], TestMatchHistograms.REFERENCE, spatial_dims=3).numpy()
        assert_same_pixels(match(VOLUMES[0]), expected, "preprocessing_function(match_histograms)")

    def test_xla_and_unknown_sizes_equal_the_op(self):
        expected = tf_histeq.equalize_hist(VOLUMES, mask=BODY, spatial_dims=3).numpy()
        actual = tf_histeq.equalize_hist(VOLUMES, mask=BODY, spatial_dims=3, jit_compile=True).numpy()
        assert_same_pixels(actual, expected, "jit_compile=True")
        spec = [tf.TensorSpec([None, None, None, None, 1], tf.uint8), tf.TensorSpec([None, None, None], tf.bool)]
        # Without AutoGraph, which would spend seconds converting the op's helpers (~12 s here) for nothing.
        traced = tf.function(
            lambda v, m: tf_histeq.equalize_hist(v, mask=m, spatial_dims=3), input_signature=spec, autograph=False
        )
        out = traced.get_concrete_function().structured_outputs
        assert out.shape.as_list() == [None, None, None, None, 1]
        assert_same_pixels(traced(VOLUMES, BODY).numpy(), expected, "N, D, H, W unknown when traced")

    @pytest.mark.slow  # two more XLA compilations, ~20 s here
    def test_xla_with_unknown_sizes_and_matching(self):
        expected = tf_histeq.equalize_hist(VOLUMES, mask=BODY, spatial_dims=3).numpy()
        spec = [tf.TensorSpec([None, None, None, None, 1], tf.uint8), tf.TensorSpec([None, None, None], tf.bool)]
        traced = tf.function(
            lambda v, m: tf_histeq.equalize_hist(v, mask=m, spatial_dims=3),
            input_signature=spec,
            jit_compile=True,
            autograph=False,
        )
        assert_same_pixels(traced(VOLUMES, BODY).numpy(), expected, "XLA, N, D, H, W unknown when traced")
        reference = TestMatchHistograms.REFERENCE
        expected = tf_histeq.match_histograms(VOLUMES, reference, spatial_dims=3).numpy()
        actual = tf_histeq.match_histograms(VOLUMES, reference, spatial_dims=3, jit_compile=True).numpy()
        assert_same_pixels(actual, expected, "match_histograms jit_compile=True")


class TestBadInput:
    def test_a_batch_of_volumes_needs_spatial_dims_3(self):
        with pytest.raises(
            ValueError,
            match=r"`images.shape` must have rank 2 \(H, W\), 3 \(H, W, C\) or 4 "
            r"\(N, H, W, C\).*images.shape=\(2, 12, 24, 20, 1\).*pass spatial_dims=3",
        ):
            tf_histeq.equalize_hist(VOLUMES)
        with pytest.raises(ValueError, match=r"pass spatial_dims=3"):
            tf_histeq.match_histograms(VOLUMES, TestMatchHistograms.REFERENCE)

    @pytest.mark.parametrize("shape", [(24, 20), (1, 2, 12, 24, 20, 1)])
    def test_ranks_outside_the_volume_layout(self, shape):
        images = np.zeros(shape, np.uint8)
        expected = r"`images.shape` must have rank 3 \(D, H, W\), 4 \(D, H, W, C\) or 5 \(N, D, H, W, C\) with "
        with pytest.raises(ValueError, match=expected + r"spatial_dims=3"):
            tf_histeq.equalize_hist(images, spatial_dims=3)
        if len(shape) == 2:
            with pytest.raises(ValueError, match=r"an image \(H, W\): pass spatial_dims=2"):
                tf_histeq.match_histograms(images, images, spatial_dims=3)

    @pytest.mark.parametrize(
        ("value", "error"),
        [("3", TypeError), (3.0, TypeError), (True, TypeError), (None, TypeError), (1, ValueError), (4, ValueError)],
    )
    def test_spatial_dims_is_2_or_3(self, value, error):
        message = r"`spatial_dims` must be 2 \(images\) or 3 \(volumes\). Received: spatial_dims="
        with pytest.raises(error, match=message):
            tf_histeq.equalize_hist(VOLUMES, spatial_dims=value)
        with pytest.raises(error, match=message):
            map_fn("equalize_hist", spatial_dims=value)
        with pytest.raises(error, match=message):
            tf_histeq.histogram_equalization(VOLUMES, spatial_dims=value)

    def test_clahe_refuses_volumes_naming_the_alternatives(self):
        with pytest.raises(ValueError, match=r"equalize_adapthist\(\.\.\., spatial_dims=3\).*\(N\*D, H, W, C\)"):
            tf_histeq.clahe(VOLUMES)
        with pytest.raises(TypeError, match="unexpected keyword argument 'spatial_dims'"):
            tf_histeq.clahe(VOLUMES, spatial_dims=3)
        with pytest.raises(TypeError, match=r"`kwargs` must be keyword arguments of tf_histeq.clahe"):
            map_fn("clahe", spatial_dims=3)
        with pytest.raises(TypeError, match=r"`kwargs` must be keyword arguments of tf_histeq.equalize_hist"):
            tf_histeq.data.random_map_fn("equalize_hist", seed=0, spatial_dims=3)

    @pytest.mark.parametrize("mask_shape", [(24, 20), (12, 24), (3, 12, 24, 20), (12, 24, 20, 2)])
    def test_masks_of_another_shape(self, mask_shape):
        with pytest.raises(
            ValueError,
            match=r"`mask.shape` must be \(D, H, W\), \(N, D, H, W\), \(N, D, H, W, 1\) "
            r"or \(D, H, W, 1\) for volumes of shape \(2, 12, 24, 20, 1\)",
        ):
            tf_histeq.equalize_hist(VOLUMES, mask=np.ones(mask_shape, bool), spatial_dims=3)

    def test_a_2d_reference_for_volumes_is_refused_by_name(self):
        with pytest.raises(ValueError, match=r"`reference.shape` must be a volume.*reference\[None\]"):
            tf_histeq.match_histograms(VOLUMES, TestMatchHistograms.REFERENCE[0], spatial_dims=3)
