"""The colour spaces of the lightness modes against `cv2.cvtColor`, and the OpenCV recipe around an op.

The uint8 conversions must equal OpenCV on every one of the 2**24 inputs
(slow: one XLA-compiled call per direction on a 4096 x 4096 image); the fast
tests take every 7th level per channel (and 255), eagerly.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests import _images
from tests._references import assert_same_pixels
from tf_histeq import _colour, _colour_float, _softfloat

cv2 = pytest.importorskip("cv2")

# name -> (our conversion, OpenCV's code)
CONVERSIONS = {
    "RGB2YCrCb": (_colour.rgb_to_ycrcb, cv2.COLOR_RGB2YCrCb),
    "YCrCb2RGB": (_colour.ycrcb_to_rgb, cv2.COLOR_YCrCb2RGB),
    "RGB2Lab": (_colour.rgb_to_lab, cv2.COLOR_RGB2Lab),
    "Lab2RGB": (_colour.lab_to_rgb, cv2.COLOR_Lab2RGB),
}


def _all_triples(levels: np.ndarray) -> np.ndarray:
    """Every (c0, c1, c2) with c_i in `levels`, as a uint8 `(len**3, 1, 3)` image."""
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1)
    return grid.reshape(-1, 1, 3).astype(np.uint8)


@pytest.fixture(scope="module")
def subset():
    """38**3 = 54,872 triples: every 7th level and 255 in each channel."""
    return _all_triples(np.unique(np.append(np.arange(0, 256, 7), 255)))


@pytest.fixture(scope="module")
def every_triple():
    """All 2**24 byte triples as one 4096 x 4096 x 3 image."""
    levels = np.arange(256, dtype=np.uint8)
    cube = np.empty((256, 256, 256, 3), np.uint8)
    cube[..., 0], cube[..., 1], cube[..., 2] = levels[:, None, None], levels[None, :, None], levels[None, None, :]
    return cube.reshape(4096, 4096, 3)


def _xla(fn):
    return tf.function(fn, jit_compile=True)


@pytest.mark.parametrize("name", list(CONVERSIONS))
def test_subset_matches_opencv(subset, name):
    """Eagerly; the exhaustive tests below run the same functions under XLA."""
    fn, code = CONVERSIONS[name]
    assert_same_pixels(fn(subset).numpy(), cv2.cvtColor(subset, code), name)


def test_int32_levels_are_uint8_values(subset):
    for name, (fn, _) in CONVERSIONS.items():
        as_int = fn(subset.astype(np.int32)).numpy()
        assert as_int.dtype == np.int32
        assert_same_pixels(as_int.astype(np.uint8), fn(subset).numpy(), name)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONVERSIONS))
def test_every_uint8_input_matches_opencv(every_triple, name):
    fn, code = CONVERSIONS[name]
    assert_same_pixels(_xla(fn)(tf.constant(every_triple)).numpy(), cv2.cvtColor(every_triple, code), name)


def _float_rgb(rgb_uint8: np.ndarray) -> np.ndarray:
    return rgb_uint8.astype(np.float32) / 255


def test_float32_rgb_to_lab_matches_opencv(subset):
    """OpenCV's float path interpolates in a grid; ours does the same, bit for bit (off-grid values included)."""
    noise = np.random.default_rng(7).random((64, 64, 3), dtype=np.float32)
    for name, rgb in {"subset": _float_rgb(subset), "noise": noise, "out of range": 1.5 * noise - 0.25}.items():
        expected = cv2.cvtColor(np.clip(rgb, 0, 1) if name == "out of range" else rgb, cv2.COLOR_RGB2Lab)
        assert_same_pixels(_colour.rgb_to_lab(rgb).numpy(), expected, f"RGB2Lab float32 {name}")
    traced = tf.function(_colour.rgb_to_lab)(tf.constant(noise)).numpy()
    assert_same_pixels(traced, cv2.cvtColor(noise, cv2.COLOR_RGB2Lab), "RGB2Lab float32 tf.function")


@pytest.mark.slow
def test_float32_rgb_to_lab_under_xla(subset):
    rgb = _float_rgb(subset)
    compiled = _xla(_colour.rgb_to_lab)(tf.constant(rgb)).numpy()
    assert_same_pixels(compiled, cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab), "RGB2Lab float32 XLA")


def _float_lab(subset: np.ndarray, width: int) -> np.ndarray:
    """OpenCV's Lab of the subset's colours / 255, in rows of `width` pixels (OpenCV's SIMD blocks are 8 wide)."""
    rgb = _float_rgb(subset).reshape(-1, 3)
    return cv2.cvtColor(rgb[: len(rgb) // width * width].reshape(-1, width, 3), cv2.COLOR_RGB2Lab)


@pytest.mark.parametrize("width", [8, 13])
def test_float32_lab_to_rgb_matches_opencv_eager_and_traced(subset, width):
    lab = _float_lab(subset, width)
    expected = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    assert_same_pixels(_colour.lab_to_rgb(lab).numpy(), expected, f"Lab2RGB float32 eager, width {width}")
    traced = tf.function(_colour.lab_to_rgb)(tf.constant(lab)).numpy()
    assert_same_pixels(traced, expected, f"Lab2RGB float32 tf.function, width {width}")


def test_float32_lab_to_rgb_off_the_uint8_colours():
    rng = np.random.default_rng(3)
    lab = np.stack(
        [rng.uniform(0, 100, (40, 77)), rng.uniform(-128, 127, (40, 77)), rng.uniform(-128, 127, (40, 77))], axis=-1
    ).astype(np.float32)
    assert_same_pixels(_colour.lab_to_rgb(lab).numpy(), cv2.cvtColor(lab, cv2.COLOR_Lab2RGB))


@pytest.mark.slow
def test_float32_lab_to_rgb_under_xla_within_the_stated_bound(every_triple):
    """XLA fuses multiply-adds: over the Lab of all 2**24 colours / 255 the bound is the measured maximum (80-100%)."""
    lab = cv2.cvtColor(_float_rgb(every_triple), cv2.COLOR_RGB2Lab)
    compiled = _xla(_colour.lab_to_rgb)(tf.constant(lab)).numpy()
    difference = float(np.abs(compiled - cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)).max())
    assert 0.8 * _colour_float.XLA_FLOAT_RGB_BOUND <= difference <= _colour_float.XLA_FLOAT_RGB_BOUND, difference


def test_opencv_cube_root_is_truncated_not_rounded():
    """OpenCV's cbrt equals the correctly rounded cube root or is 1 ulp below it, and is below on many inputs."""
    step = np.float32(1 / 2040)
    xs = step * np.arange(19, 3072, dtype=np.float32)
    ours = _softfloat.opencv_cbrt(xs)
    rounded = np.cbrt(xs.astype(np.float64)).astype(np.float32)
    ulps = ours.view(np.int32).astype(np.int64) - rounded.view(np.int32)
    assert set(np.unique(ulps)) <= {-1, 0}
    assert (ulps == -1).sum() > 1000


def test_fixed_point_tables():
    tables = _colour._tables()
    assert tables.gamma[0] == 0 and tables.gamma[255] == 2040 and np.all(np.diff(tables.gamma) >= 0)
    assert tables.f[2040] == 1 << 15 and np.all(np.diff(tables.f) > 0)
    assert tables.inv_gamma[0] == 0 and tables.inv_gamma[-1] == 255 and np.all(np.diff(tables.inv_gamma) >= 0)
    assert tables.ify[255] == 1 << 14 and tables.y[255] == 1 << 14


# ----------------------------------------------------------------------------------------- the recipe

_SPACE_CODES = {"lab": (cv2.COLOR_RGB2Lab, cv2.COLOR_Lab2RGB), "luminance": (cv2.COLOR_RGB2YCrCb, cv2.COLOR_YCrCb2RGB)}
_CLAHE = {"clip_limit": 2.0, "tile_grid_size": (8, 8)}


def _cv2_recipe(rgb: np.ndarray, space: str, op: str) -> np.ndarray:
    """What users (and albumentations' CLAHE) write: convert, the op on the first plane, convert back."""
    forward, inverse = _SPACE_CODES[space]
    converted = cv2.cvtColor(rgb, forward)
    plane = np.ascontiguousarray(converted[..., 0])
    if op == "clahe":
        engine = cv2.createCLAHE(clipLimit=_CLAHE["clip_limit"], tileGridSize=_CLAHE["tile_grid_size"][::-1])
        converted[..., 0] = engine.apply(plane)
    else:
        converted[..., 0] = cv2.equalizeHist(plane)
    return cv2.cvtColor(converted, inverse)


def _ours(rgb, space: str, op: str) -> tf.Tensor:
    def on_plane(plane):
        plane = tf.cast(plane, tf.uint8)
        out = tf_histeq.clahe(plane, **_CLAHE) if op == "clahe" else tf_histeq.equalize_hist(plane)
        return tf.cast(out, tf.int32)

    return _colour.on_lightness(space, tf.convert_to_tensor(rgb), on_plane)


def _recipe_images(skdata):
    return {
        "astronaut": skdata.astronaut(),
        "band-40-55": _images.band(0.4, 0.55)((96, 128, 3)),
        "beta-2-5": _images.beta(2, 5)((80, 112, 3)),
        "no-zeros": _images.no_zeros()((64, 64, 3)),
    }


@pytest.mark.parametrize("space", list(_SPACE_CODES))
@pytest.mark.parametrize("op", ["clahe", "equalize_hist"])
def test_recipe_matches_opencv(skdata, space, op):
    for name, rgb in _recipe_images(skdata).items():
        assert_same_pixels(_ours(rgb, space, op).numpy(), _cv2_recipe(rgb, space, op), f"{space} {op} {name}")


@pytest.mark.slow
@pytest.mark.parametrize("space", list(_SPACE_CODES))
def test_on_lightness_under_xla(space):
    """The wrapper compiled, with a cheap plane op (the negative, 255 - L) in place of a histogram op."""
    rgb = _images.beta(2, 5)((48, 64, 3))
    compiled = _xla(lambda x: _colour.on_lightness(space, x, lambda plane: 255 - plane))
    forward, inverse = _SPACE_CODES[space]
    converted = cv2.cvtColor(rgb, forward)
    converted[..., 0] = 255 - converted[..., 0]
    assert_same_pixels(compiled(tf.constant(rgb)).numpy(), cv2.cvtColor(converted, inverse), space)


def test_bad_input_is_refused_by_name():
    with pytest.raises(TypeError, match="`images` must have dtype uint8 or int32"):
        _colour.rgb_to_ycrcb(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="`images` must have 3 channels"):
        _colour.rgb_to_lab(np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(ValueError, match="`space` must be one of 'luminance', 'lab'"):
        _colour.on_lightness("hsv", tf.zeros((2, 2, 3), tf.uint8), lambda p: p)
    with pytest.raises(TypeError, match="`levels` must have dtype uint8 or int32"):
        _colour.on_lightness("lab", tf.zeros((2, 2, 3), tf.float32), lambda p: p)


@pytest.mark.slow
def test_conversions_export_to_tflite_and_onnx(subset, monkeypatch):
    """All six conversions in one function, through TensorFlow Lite (builtins only) and ONNX: 0 values differ."""
    pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    import tf2onnx

    monkeypatch.setenv("TF2ONNX_CATCH_ERRORS", "false")  # skip tf2onnx's graph copy before each optimizer

    bytes_in = subset[: 98 * 56].reshape(98, 56, 3)
    floats_in = _float_rgb(bytes_in)
    inputs = {"bytes": bytes_in, "floats": floats_in, "lab": cv2.cvtColor(floats_in, cv2.COLOR_RGB2Lab)}
    spec = [tf.TensorSpec([None, None, 3], tf.convert_to_tensor(v).dtype, name) for name, v in inputs.items()]

    @tf.function(input_signature=spec)
    def conversions(bytes_, floats, lab):
        outputs = [fn(bytes_) for fn, _ in CONVERSIONS.values()] + [_colour.rgb_to_lab(floats), _colour.lab_to_rgb(lab)]
        return tf.stack([tf.cast(out, tf.float32) for out in outputs])  # uint8 values are exact in float32

    expected = conversions(**{"bytes_": inputs["bytes"], "floats": inputs["floats"], "lab": inputs["lab"]}).numpy()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([conversions.get_concrete_function()], conversions)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = litert.Interpreter(model_content=converter.convert())
    details = interpreter.get_input_details()
    for detail in details:
        interpreter.resize_tensor_input(detail["index"], inputs[_input_name(detail["name"], inputs)].shape)
    interpreter.allocate_tensors()
    for detail in details:
        interpreter.set_tensor(detail["index"], inputs[_input_name(detail["name"], inputs)])
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    proto, _ = tf2onnx.convert.from_function(conversions, input_signature=spec, opset=18)
    session = ort.InferenceSession(proto.SerializeToString())
    feeds = {i.name: inputs[_input_name(i.name, inputs)] for i in session.get_inputs()}
    onnx = session.run(None, feeds)[0]
    for index, name in enumerate([*CONVERSIONS, "RGB2Lab float32", "Lab2RGB float32"]):
        assert_same_pixels(lite[index], expected[index], f"TFLite {name}")
        assert_same_pixels(onnx[index], expected[index], f"ONNX {name}")


def _input_name(exported: str, inputs: dict) -> str:
    """Which of `inputs` an exported input name (`serving_default_lab:0`, `lab:0`, ...) stands for."""
    (name,) = [name for name in inputs if name in exported]
    return name
