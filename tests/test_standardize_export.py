"""The standardization layers exported: SavedModel, `.keras`, ONNX and TensorFlow Lite give `predict`'s values.

Slow tier (conversions). One model holds the three 3-D layers on four inputs
(uint8, uint16, int16, float32 batches of volumes from two synthetic scanners),
converted once per target; `predict` runs the layers XLA-compiled (Keras's
step, fixed sizes), the exports the plain ops: 0 differing values. ONNX takes
every layer on every dtype (float32 percentiles are traced with `tf.sort` for
it: ONNX has no bitcast for their radix selection).
"""

from __future__ import annotations

import keras
import numpy as np
import onnxruntime
import pytest
import tensorflow as tf

from tests.test_standardize import two_scanners
from tf_histeq import deploy, standardize
from tf_histeq.layers import CTWindows3D, NyulStandardization3D, PercentileScaling3D

try:  # the LiteRT interpreter; TensorFlow's own copy is deprecated but equivalent
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # pragma: no cover
    Interpreter = tf.lite.Interpreter

pytestmark = pytest.mark.slow

DTYPES = ("uint8", "uint16", "int16", "float32")
WINDOWS = ["lung", "bone", (40, 80)]


def build(with_float64: bool = True) -> tuple[keras.Model, dict]:
    """The model (Nyúl adapted per dtype, windows, percentile scaling) and its inputs by name."""
    inputs, outputs, data = [], [], {}
    for dtype in DTYPES:
        volumes = two_scanners(dtype)
        x = keras.Input(volumes.shape[1:], dtype=dtype, name=dtype)
        inputs.append(x)
        data[dtype] = volumes
        outputs.append(CTWindows3D(WINDOWS, b_min=-1, b_max=1)(x))
        if with_float64:
            nyul = NyulStandardization3D()
            nyul.adapt(volumes)
            outputs += [nyul(x), PercentileScaling3D(2, 98, 0, 1, clip=True)(x)]
    return keras.Model(inputs, outputs), data


@pytest.fixture(scope="module")
def full():
    model, data = build()
    return model, data, model.predict(data, verbose=0)


def differing(outputs, expected) -> list[int]:
    return [int(np.count_nonzero(np.asarray(a) != b)) for a, b in zip(outputs, expected, strict=True)]


def test_predict_equals_the_ops(full):
    model, data, predicted = full
    for i, dtype in enumerate(DTYPES):
        volumes = data[dtype]
        window = standardize.window(volumes, WINDOWS, b_min=-1, b_max=1, spatial_dims=3).numpy()
        fitted = standardize.nyul_fit([volumes], spatial_dims=3)
        nyul_out = standardize.nyul_standardize(volumes, fitted, spatial_dims=3).numpy()
        scaled = standardize.scale_intensity_percentiles(
            volumes, lower=2, upper=98, b_min=0, b_max=1, clip=True, spatial_dims=3
        ).numpy()
        assert differing(predicted[3 * i : 3 * i + 3], [window, nyul_out, scaled]) == [0, 0, 0], dtype


def test_keras_file_and_saved_model(full, tmp_path):
    model, data, predicted = full
    model.save(tmp_path / "m.keras")
    assert differing(keras.models.load_model(tmp_path / "m.keras").predict(data, verbose=0), predicted) == [0] * 12
    model.export(tmp_path / "saved", verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "saved"))  # kept: its variables die with it
    served = loaded.serve([data[d] for d in DTYPES])
    assert differing(served, predicted) == [0] * 12


def test_onnx(full):
    """Every layer on every dtype, float32 included (its percentiles sorted rather than selected by their bits)."""
    model, data, predicted = full
    session = onnxruntime.InferenceSession(deploy.to_onnx(model).SerializeToString())
    outputs = session.run(None, {i.name: data[i.name] for i in session.get_inputs()})
    assert differing(outputs, predicted) == [0] * 12
    # Graphs traced afterwards select float32 percentiles by their bits again (sorted only while to_onnx traces).
    assert any(node.op == "Bitcast" for node in _trace_percentiles().node)


def _trace_percentiles():
    spec = tf.TensorSpec([1, 4, 4, 4, 1], tf.float32)
    fn = tf.function(lambda x: standardize.percentiles(x, [50.0], spatial_dims=3))
    return fn.get_concrete_function(spec).graph.as_graph_def()


def test_tflite_windows_and_refusal(full):
    model, data, predicted = full
    with pytest.raises(ValueError, match=r"`model` must hold no NyulStandardization / PercentileScaling op"):
        deploy.to_tflite(model)
    windows_only, _ = build(with_float64=False)
    expected = windows_only.predict(data, verbose=0)
    assert differing(expected, predicted[::3]) == [0] * 4
    runner = Interpreter(model_content=deploy.to_tflite(windows_only)).get_signature_runner()
    outputs = runner(**data)
    ordered = [outputs[key] for key in sorted(outputs, key=lambda key: int(key.rsplit("_", 1)[-1]))]
    assert differing(ordered, expected) == [0] * 4
