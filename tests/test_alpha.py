"""`alpha="auto" | True | False`: which channel, if any, passes through unchanged, in every way in.

`False` equalizes every band (dual energy, RGB + NIR), each band exactly as
OpenCV does it alone; `True` keeps the last channel whatever the count; `"auto"`
keeps the last of 2 or 4 channels (gray + alpha, RGBA), as before the option.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests import _images
from tests._references import assert_same_pixels, cv2_clahe, cv2_equalize
from tf_histeq.data import map_fn
from tf_histeq.layers import CLAHE, HistogramEqualization
from tf_histeq.numpy_api import histogram_equalization, preprocessing_function

SHAPE = (32, 40)
OPS = [
    pytest.param(tf_histeq.equalize_hist, cv2_equalize, id="equalize_hist"),
    pytest.param(tf_histeq.clahe, lambda image: cv2_clahe(image, 2.0, (8, 8)), id="clahe"),
]


def bands(count: int, batch: int | None = None) -> np.ndarray:
    """`count` different low-contrast bands, `(H, W, count)` or `(batch, H, W, count)`."""
    image = np.moveaxis(_images.batch(count, SHAPE), 0, -1)
    return image if batch is None else np.stack([np.roll(image, 3 * i, axis=1) for i in range(batch)])


def expected(reference, image: np.ndarray, alpha_kept: bool) -> np.ndarray:
    """The reference applied plane by plane, the last plane unchanged if it is alpha."""
    if not alpha_kept:
        return reference(image)
    return np.concatenate([reference(image[..., :-1]), image[..., -1:]], axis=-1)


@pytest.mark.parametrize(("op", "reference"), OPS)
class TestOps:
    @pytest.mark.parametrize("count", [2, 4])
    def test_false_equalizes_every_band_exactly_as_opencv_does_each_alone(self, op, reference, count):
        image = bands(count)
        actual = op(image, alpha=False).numpy()
        assert_same_pixels(actual, reference(image))
        assert (actual[..., -1] != image[..., -1]).any(), "the last band must be equalized too"

    @pytest.mark.parametrize("count", [2, 3, 4])
    def test_true_keeps_the_last_channel_whatever_the_count(self, op, reference, count):
        image = bands(count, batch=2)
        actual = op(image, alpha=True).numpy()
        assert_same_pixels(actual, expected(reference, image, alpha_kept=True))

    @pytest.mark.parametrize(("count", "kept"), [(1, False), (2, True), (3, False), (4, True)])
    def test_auto_keeps_the_last_of_2_or_4_channels(self, op, reference, count, kept):
        image = bands(count)
        actual = op(image).numpy()
        assert_same_pixels(actual, expected(reference, image, alpha_kept=kept))
        assert_same_pixels(op(image, alpha="auto").numpy(), actual)

    def test_false_and_true_agree_with_auto_where_auto_guesses_right(self, op, reference):
        assert_same_pixels(op(bands(3), alpha=False).numpy(), op(bands(3)).numpy())
        assert_same_pixels(op(bands(4), alpha=True).numpy(), op(bands(4)).numpy())


class TestErrors:
    @pytest.mark.parametrize("op", [tf_histeq.equalize_hist, tf_histeq.clahe])
    @pytest.mark.parametrize("shape", [SHAPE, (*SHAPE, 1), (2, *SHAPE, 1)], ids=str)
    def test_true_on_a_single_channel(self, op, shape):
        with pytest.raises(
            ValueError,
            match=r"^`alpha` must be False or 'auto' for single-channel images \(True takes the last channel as "
            r"alpha\)\. Received: alpha=True\.$",
        ):
            op(np.zeros(shape, np.uint8), alpha=True)

    @pytest.mark.parametrize(
        ("op", "others"),
        [(tf_histeq.equalize_hist, "'per_channel' or 'joint'"), (tf_histeq.clahe, "'per_channel'")],
        ids=["equalize_hist", "clahe"],
    )
    @pytest.mark.parametrize(
        ("count", "alpha", "hint"),
        [(4, False, "4 channel\\(s\\), no alpha"), (3, True, "3 channel\\(s\\), the last as alpha")],
        ids=["4-bands-no-alpha", "rgb-last-as-alpha"],
    )
    @pytest.mark.parametrize("space", ["luminance", "lab"])
    def test_lightness_modes_need_3_colour_channels_after_alpha(self, op, others, count, alpha, hint, space):
        with pytest.raises(
            ValueError,
            match=rf"^`channels` must be {others} unless images have 3 colour channels \(RGB, or RGBA with alpha\)\. "
            rf"Received: channels='{space}'\. Hint: images have {hint}\.$",
        ):
            op(bands(count), channels=space, alpha=alpha)

    @pytest.mark.parametrize(
        ("value", "error"), [("yes", ValueError), ("True", ValueError), (1, TypeError), (None, TypeError)], ids=repr
    )
    def test_bad_values_in_every_way_in(self, value, error):
        match = (
            r"^`alpha` must be 'auto' \(the last of 2 or 4 channels is alpha\), True \(the last channel is alpha\) "
            rf"or False \(no alpha\)\. Received: alpha={value!r}\.$"
        )
        image = bands(2)
        for make in (
            lambda: tf_histeq.equalize_hist(image, alpha=value),
            lambda: tf_histeq.clahe(image, alpha=value),
            lambda: HistogramEqualization(alpha=value),
            lambda: CLAHE(alpha=value),
            lambda: map_fn("clahe", alpha=value),
            lambda: histogram_equalization(image, alpha=value),
            lambda: preprocessing_function("equalize_hist", alpha=value),
        ):
            with pytest.raises(error, match=match):
                make()

    def test_numpy_bools_are_accepted(self):
        image = bands(2)
        assert_same_pixels(tf_histeq.equalize_hist(image, alpha=np.bool_(False)).numpy(), cv2_equalize(image))


class TestOtherWaysIn:
    @pytest.mark.parametrize(("layer_cls", "op"), [(HistogramEqualization, "equalize_hist"), (CLAHE, "clahe")])
    @pytest.mark.parametrize("alpha", ["auto", True, False])
    def test_layers_pass_alpha_on_and_keep_it_in_their_config(self, layer_cls, op, alpha):
        images = bands(4, batch=2)
        layer = layer_cls(alpha=alpha)
        config = layer.get_config()
        assert config["alpha"] == alpha
        clone = layer_cls.from_config(json.loads(json.dumps(config)))
        assert clone.get_config() == config
        reference = tf_histeq.ops.OPS[op](images, alpha=alpha).numpy().astype(np.float32)
        assert_same_pixels(layer(images).numpy(), reference)
        assert_same_pixels(clone(images).numpy(), reference)

    def test_map_fn(self):
        images = bands(2, batch=3)
        ds = tf.data.Dataset.from_tensor_slices(images).map(map_fn("clahe", alpha=False))
        assert_same_pixels(np.stack(list(ds.as_numpy_iterator())), cv2_clahe(images, 2.0, (8, 8)))

    def test_numpy_api(self):
        image = bands(2).astype(np.float32)  # as ImageDataGenerator passes it
        assert_same_pixels(histogram_equalization(image, alpha=False), cv2_equalize(bands(2)).astype(np.float32))
        rgb_nir_as_alpha = bands(3).astype(np.float32)
        actual = preprocessing_function("equalize_hist", alpha=True)(rgb_nir_as_alpha)  # clahe: an XLA compile more
        assert_same_pixels(actual, tf_histeq.equalize_hist(rgb_nir_as_alpha, alpha=True).numpy())
        assert_same_pixels(actual[..., -1], rgb_nir_as_alpha[..., -1])
