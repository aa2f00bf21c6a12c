"""CLAHE's clip count `max(int(clip_limit * area / bins), 1)`: the integer kernel against OpenCV's double arithmetic.

Python floats are IEEE doubles, so `c * a / b` in Python is exactly the
expression OpenCV's `CLAHE_Impl::apply` evaluates. The cases concentrate on
where double rounding decides the result: decimal limits and areas that make
`c * a` land just below a multiple of `b` (4.1 * 2560 rounds up to 10496.0,
exactly 41 * 256), overflow past 2**31, and limits at the edges of the range
the integer path handles.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from fractions import Fraction

import numpy as np
import onnxruntime
import pytest
import tensorflow as tf
import tf2onnx

from tf_histeq._clip_count import NO_CLIP, clip_counts

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # pragma: no cover
    Interpreter = tf.lite.Interpreter

DECIMALS = [0.01, 0.3, 1.1, 2.2, 3.3, 4.1, 12.3, 39.9, 255.9]
EDGES = [2.0**-33, 2.0**-32, 2.0, 40.0, 2.0**47 * (1 - 2**-53), 2.0**47, 1e9, 1e300]
BINS = [3, 100, 256, 65536]


def opencv(c: float, a: int, b: int) -> int:
    """OpenCV's count: double product and quotient, truncated; x86-64's overflow gives INT_MIN, then 1."""
    if not c > 0:  # also NaN
        return NO_CLIP
    quotient = c * a / b
    return max(int(quotient), 1) if quotient < 2**31 else 1  # NaN (inf * 0) converts to INT_MIN too


def make_cases():
    """(c, a, b) triples: near-integer quotients, random areas up to 2**31 - 1, edges."""
    rng = np.random.default_rng(2024)
    cases = []
    for c in DECIMALS + EDGES:
        for b in BINS:
            areas = {0, 1, 2, 2**31 - 1, *map(int, rng.integers(0, 2**31, 30)), *map(int, rng.integers(0, 9000, 30))}
            for k in [*range(1, 30), *map(int, rng.integers(30, 2**22, 30))]:
                near = round(b * k / c)
                areas.update(a for a in (near - 1, near, near + 1) if 0 <= a < 2**31)
            cases += [(c, a, b) for a in sorted(areas)]
    return cases


CASES = make_cases()


def by_limit_and_bins(cases):
    groups = defaultdict(list)
    for c, a, b in cases:
        groups[(c, b)].append(a)
    return groups


def test_the_cases_hit_double_rounding():
    """Many cases round differently in double than in exact arithmetic: the test can tell the two apart."""
    differ = sum(opencv(c, a, b) != max(int(Fraction(c) * a / b), 1) for c, a, b in CASES if c * a / b < 2**31)
    assert differ >= 50, differ


# Each Python limit is a trace (an XLA compilation): CI checks these, the slow run every limit.
SOME = {"function": [0.3, 4.1, 2.0**47 * (1 - 2**-53)], "xla": [4.1]}


@pytest.mark.parametrize("mode", ["function", "xla", pytest.param("every-limit", marks=pytest.mark.slow)])
def test_python_limits_match_opencv(mode):
    groups = by_limit_and_bins(CASES)
    if mode in SOME:
        groups = {key: areas for key, areas in groups.items() if key[0] in SOME[mode] and key[1] in (100, 256)}
    mismatches = []
    for (c, b), areas in groups.items():
        fn = tf.function(
            lambda a, c=c, b=b: clip_counts(c, a, b),
            input_signature=[tf.TensorSpec([None], tf.int32)],
            jit_compile=mode == "xla",
        )
        got = fn(tf.constant(areas, tf.int32)).numpy()
        mismatches += [(c, a, b, g) for a, g in zip(areas, got, strict=True) if g != opencv(c, a, b)]
    assert not mismatches, f"{len(mismatches)} mismatches, e.g. (c, a, bins, got) = {mismatches[:5]}"


def test_known_values_use_the_same_rule():
    """Eagerly (areas known), the count comes from NumPy float64 and matches as well."""
    for (c, b), areas in list(by_limit_and_bins(CASES).items())[::7]:
        got = clip_counts(c, tf.constant(areas, tf.int32), b).numpy()
        assert got.tolist() == [opencv(c, a, b) for a in areas], (c, b)


def tensor_cases(dtype):
    """Per-image limits: the cases' limits as `dtype` (what OpenCV then gets is their double value)."""
    rng = np.random.default_rng(7)
    limits = [
        np.array([c for c, _, _ in CASES]),
        rng.uniform(0, 60, 4000),
        np.exp(rng.uniform(-25, 40, 4000)),
        [0.0, -1.0, np.nan, np.inf, -np.inf, 1e-40, 1e-320],
    ]
    with np.errstate(over="ignore"):  # 1e300 becomes inf in float32
        limits = np.concatenate(limits).astype(dtype)
    areas = [np.array([a for _, a, _ in CASES]), rng.integers(0, 2**31, 4000), rng.integers(0, 9000, 4000), [7] * 7]
    areas = np.concatenate(areas).astype(np.int32)
    # Subnormal limits count as 0 (TensorFlow flushes them on CPUs): no clipping.
    effective = np.where(limits >= np.finfo(dtype).tiny, limits, 0.0)
    expected = {b: [opencv(float(c), int(a), b) for c, a in zip(effective, areas, strict=True)] for b in (100, 256)}
    return limits, areas, expected


@pytest.mark.parametrize("mode", ["eager", "function", "xla"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tensor_limits_match_opencv(dtype, mode):
    limits, areas, expected = tensor_cases(dtype)
    for b in (100, 256):
        fn = functools.partial(clip_counts, bins=b)
        if mode != "eager":  # eagerly, the values are known: NumPy computes them
            fn = tf.function(fn, jit_compile=mode == "xla")
        got = fn(tf.constant(limits), tf.constant(areas)).numpy()
        bad = np.flatnonzero(got != np.array(expected[b]))
        assert bad.size == 0, f"{bad.size} mismatches, e.g. {[(limits[i], areas[i], got[i]) for i in bad[:5]]}"


@pytest.mark.slow
def test_tflite_and_onnx_runtime_compute_the_same_counts():
    """The integer kernel converts with TensorFlow Lite builtins and to ONNX, and runs exactly there."""
    limits, areas, expected = tensor_cases(np.float32)
    near = [(c, a) for c, a, b in CASES if b == 256 and c < 2**47]
    scalar_areas = np.array([a for _, a in near], np.int32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.int32)])
    def tensor_limits(c, a):
        return clip_counts(c, a, 256)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def decimal_limit(a):
        return clip_counts(4.1, a, 256)

    want_decimal = [opencv(4.1, int(a), 256) for a in scalar_areas]
    runs = [
        (tensor_limits, {"c": limits, "a": areas}, expected[256]),
        (decimal_limit, {"a": scalar_areas}, want_decimal),
    ]
    for fn, inputs, want in runs:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        interpreter = Interpreter(model_content=converter.convert())
        for detail in interpreter.get_input_details():
            interpreter.resize_tensor_input(detail["index"], inputs[detail["name"]].shape)
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], inputs[detail["name"]])
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        assert got.tolist() == want, "TensorFlow Lite"
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=fn.input_signature, opset=18)
        session = onnxruntime.InferenceSession(proto.SerializeToString())
        (got,) = session.run(None, {i.name: inputs[i.name.split(":")[0]] for i in session.get_inputs()})
        assert got.tolist() == want, "ONNX Runtime"
