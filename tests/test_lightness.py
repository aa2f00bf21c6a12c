"""The lightness modes (`channels="luminance"` and `"lab"`): the ways in, albumentations, refusals and export.

Parity of the ops with OpenCV's round trip (`cvtColor`, the op on Y or L,
`cvtColor` back) is in test_equalize_hist.py and test_clahe.py, and eager ==
`tf.function` == XLA there too; this file checks that every way in (layers,
`tf_histeq.data.map_fn`, the NumPy function; the CLI in test_cli.py) reaches
the same pixels, what the modes do with floats, masks and other levels, and
that a model holding them converts to TensorFlow Lite and ONNX.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests import _images
from tests._references import assert_same_pixels, cv2_clahe, cv2_lightness
from tf_histeq.data import map_fn
from tf_histeq.layers import CLAHE, HistogramEqualization
from tf_histeq.numpy_api import histogram_equalization

SPACES = ["luminance", "lab"]
CLAHE_OPTIONS = {"clip_limit": 3.0, "tile_grid_size": (3, 4)}


def rgb(shape=(40, 48, 3), salt: int = 0) -> np.ndarray:
    return _images.varied(salt, shape)


def cv2_clahe_on(space: str, image: np.ndarray) -> np.ndarray:
    return cv2_lightness(image, space, lambda plane: cv2_clahe(plane, 3.0, (3, 4)))


# "luminance" takes the same path from every way in (and has its cases in test_layers, test_data, test_numpy_api);
# equalize_hist, since the NumPy function always compiles (CLAHE's lab recipe takes twice as long, 9 s).
def test_layer_map_fn_and_numpy_function_give_the_opencv_pixels(space="lab"):
    image = rgb()
    expected = cv2_lightness(image, space, _cv2().equalizeHist)
    layer = HistogramEqualization(channels=space, jit_compile=False)
    assert_same_pixels(layer(image[None]).numpy()[0], expected.astype(np.float32), "layer (float32 outputs)")
    (mapped,) = tf.data.Dataset.from_tensors(image).map(map_fn("equalize_hist", channels=space, jit_compile=False))
    assert_same_pixels(mapped.numpy(), expected, "map_fn")
    assert_same_pixels(histogram_equalization(image, channels=space), expected, "NumPy")


def test_albumentations_clahe_gives_the_same_pixels():
    """albumentations' CLAHE on RGB (uint8, and float32 in [0, 1] read as 8-bit levels) is `channels="lab"`."""
    albumentations = pytest.importorskip("albumentations")
    transform = albumentations.CLAHE(clip_limit=(3.0, 3.0), tile_grid_size=(4, 3), p=1.0)  # (cols, rows)
    image = rgb((53, 61, 3), salt=3)
    ours = tf_histeq.clahe(image, channels="lab", **CLAHE_OPTIONS).numpy()
    assert (ours != image).any()
    assert_same_pixels(ours, transform(image=image)["image"], "uint8")
    floats = np.clip(image / np.float32(255) + np.float32(1e-3) * (np.indices(image.shape).sum(0) % 3 - 1), 0, 1)
    floats = floats.astype(np.float32)
    ours = tf_histeq.clahe(floats, channels="lab", value_range=(0, 1), **CLAHE_OPTIONS).numpy()
    assert_same_pixels(ours, transform(image=floats)["image"], "float32")


@pytest.mark.parametrize("space", SPACES)
def test_floats_with_256_bins_are_read_as_8_bit_levels(space):
    """Integer-valued floats give the uint8 pixels; a NaN channel takes its pixel out of the histogram."""
    image = rgb(salt=1)
    expected = tf_histeq.equalize_hist(image, channels=space).numpy()
    floats = tf_histeq.equalize_hist(image.astype(np.float32), channels=space).numpy()
    assert_same_pixels(floats, expected.astype(np.float32))
    floats = image.astype(np.float32)
    floats[3, 4, 1] = np.nan
    actual = tf_histeq.equalize_hist(floats, channels=space).numpy()
    mask = np.ones(image.shape[:2], bool)
    mask[3, 4] = False
    expected = tf_histeq.equalize_hist(image, channels=space, mask=mask).numpy()
    assert np.isnan(actual[3, 4, 1]) and np.isnan(actual).sum() == 1
    assert_same_pixels(actual[mask], expected[mask].astype(np.float32))


@pytest.mark.parametrize("space", SPACES)
def test_an_all_false_mask_leaves_the_image_unchanged(space):
    batch = np.stack([rgb(salt=2), rgb(salt=4)])
    mask = np.stack([np.zeros((40, 48), bool), np.ones((40, 48), bool)])
    for op in (tf_histeq.equalize_hist, tf_histeq.clahe):
        out = op(batch, channels=space, mask=mask).numpy()
        assert_same_pixels(out[0], batch[0], f"{op.__name__} empty mask")
        assert_same_pixels(out[1], op(batch[1], channels=space).numpy(), f"{op.__name__} full mask")


def test_lab_is_refused_for_levels_that_are_not_8_bit_and_luminance_keeps_its_definition():
    image16 = _images.varied(5, (24, 32, 3), np.uint16)
    with pytest.raises(
        ValueError,
        match=r"^`channels` must be 'per_channel' or 'luminance' for images read as other than 256 levels "
        r"\(OpenCV's Lab works on 8-bit levels\)\. Received: channels='lab'\. Hint: the uint16 images are read "
        r"as bins=65536 levels; pass bins=256 to run on 256 levels of value_range=\(0, 65535\)\.$",
    ):
        tf_histeq.clahe(image16, channels="lab")
    # bins=256 reads the top 8 bits: the 8-bit round trip on them, written back as multiples of 257.
    top = (image16 >> 8).astype(np.uint8)
    expected = tf_histeq.clahe(top, channels="lab").numpy().astype(np.uint16) * 257
    assert_same_pixels(tf_histeq.clahe(image16, channels="lab", bins=256).numpy(), expected)
    # uint16 luminance (65536 levels) keeps its definition: the change of Y added to R, G and B.
    levels = image16.astype(np.int64)
    luma = (levels @ np.array([4899, 9617, 1868]) + (1 << 13)) >> 14
    new_luma = tf_histeq.equalize_hist(luma.astype(np.uint16)).numpy().astype(np.int64)
    expected = np.clip(levels + (new_luma - luma)[..., None], 0, 65535).astype(np.uint16)
    assert_same_pixels(tf_histeq.equalize_hist(image16, channels="luminance").numpy(), expected)


@pytest.mark.slow
def test_wider_images_read_as_8_bit_levels_keep_alpha_and_masks():
    """uint16 RGBA with bins=256: the 8-bit round trip on the top bytes, alpha as given, an empty image unchanged."""
    image16 = _images.batch(2, (16, 20, 4), np.uint16)
    mask = np.stack([np.zeros((16, 20), bool), _images.xray_mask((16, 20))])
    top = (image16 >> 8).astype(np.uint8)
    for space in SPACES:
        out = tf_histeq.equalize_hist(image16, channels=space, bins=256, mask=mask).numpy()
        expected = tf_histeq.equalize_hist(top[1:], channels=space, mask=mask[1:]).numpy().astype(np.uint16) * 257
        expected[..., 3] = image16[1, ..., 3]
        assert_same_pixels(out[1:], expected, f"{space}: masked image")
        assert_same_pixels(out[0], image16[0], f"{space}: empty mask")


def test_every_channels_mode_has_an_entry_in_the_wrapper():
    from tf_histeq import _options, _planes

    assert set(_planes.MODES) == set(_options.CHANNELS)
    # equalize_adapthist is not run by the wrapper: scikit-image's RGB mode is its own (`_adapthist_hsv`).
    wrapped = {op: choices for op, choices in _options.CHANNEL_CHOICES.items() if op != "equalize_adapthist"}
    assert all(set(choices) <= set(_planes.MODES) for choices in wrapped.values())


def test_a_model_with_both_modes_exports_with_the_pixels_of_predict():
    """HistogramEqualization(lab) and CLAHE(luminance) on uint8 RGB, through to_tflite and to_onnx: 0 values differ."""
    onnxruntime = pytest.importorskip("onnxruntime")
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover
        Interpreter = tf.lite.Interpreter
    from tf_histeq import deploy

    inputs = keras.Input((None, None, 3), dtype="uint8", name="rgb")
    outputs = {
        "he_lab": HistogramEqualization(channels="lab", jit_compile=False)(inputs),
        "clahe_luminance": CLAHE(channels="luminance", jit_compile=False, **CLAHE_OPTIONS)(inputs),
    }
    model = keras.Model(inputs, outputs)
    batch = np.stack([rgb((37, 53, 3), salt=i) for i in range(2)])
    expected = model.predict(batch, verbose=0)
    he_lab = cv2_lightness(batch[0], "lab", _cv2().equalizeHist).astype(np.float32)  # the layers output float32
    assert_same_pixels(expected["he_lab"][0], he_lab, "predict lab")
    clahe_luminance = cv2_clahe_on("luminance", batch[1]).astype(np.float32)
    assert_same_pixels(expected["clahe_luminance"][1], clahe_luminance, "predict luminance")

    runner = Interpreter(model_content=deploy.to_tflite(model)).get_signature_runner()
    lite = runner(rgb=batch)
    session = onnxruntime.InferenceSession(deploy.to_onnx(model).SerializeToString())
    names = [o.name for o in session.get_outputs()]
    onnx = dict(zip(names, session.run(None, {session.get_inputs()[0].name: batch}), strict=True))
    for name in outputs:
        assert_same_pixels(lite[name], expected[name], f"TFLite {name}")
        assert_same_pixels(onnx[name], expected[name], f"ONNX {name}")


def _cv2():
    return pytest.importorskip("cv2")
