"""Deployment: models holding the layers run bit-exact in TensorFlow Lite (builtin ops only) and ONNX Runtime.

Converting is slow, so a Keras model holds many supported configurations
side by side (one output each) and is converted once per target by a
module-scoped fixture; each configuration is then a cheap comparison of its
output with `model.predict`, counted in differing pixels. The model has five
inputs: a uint8 RGB batch, a histogram mask, uint16 and float32 gray batches,
and a uint8 RGB batch of dynamic height and width.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import onnxruntime
import pytest
import tensorflow as tf

from tests import _images
from tests._references import assert_same_pixels
from tf_histeq import deploy
from tf_histeq.layers import (
    CLAHE,
    AdaptiveEqualization,
    HistogramEqualization,
    HistogramMatching,
    RandomCLAHE,
    RandomEqualization,
)

try:  # the LiteRT interpreter; TensorFlow's own copy is deprecated but equivalent
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # pragma: no cover
    Interpreter = tf.lite.Interpreter

H, W = 37, 53  # not divisible by the grids below: reflect-101 padding on both axes
DYNAMIC_SIZES = [(29, 41), (64, 48)]


# The layers' own XLA compilation is off: exports never hold it (the layers keep the
# plain op outside Keras's loops), and it would only add compile time to `predict`.
def he(**options):
    return lambda: HistogramEqualization(jit_compile=False, **options)


def cl(**options):
    return lambda: CLAHE(jit_compile=False, **options)


# name -> (input, layer, with mask): every configuration the deployment path must keep exact.
CONFIGS = {
    "he-rgb": ("rgb", he(), False),
    "he-gray": ("gray", he(), False),
    "he-luminance": ("rgb", he(channels="luminance"), False),
    "he-pil": ("rgb", he(method="pil"), False),
    "he-pil-luminance": ("rgb", he(method="pil", channels="luminance"), False),
    "he-joint": ("rgb", he(channels="joint"), False),
    "he-mask": ("rgb", he(), True),
    "clahe-gray-8x8-clip2": ("gray", cl(), False),
    "clahe-rgb-2x3-clip4.1": ("rgb", cl(clip_limit=4.1, tile_grid_size=(2, 3)), False),
    "clahe-gray-5x7-clip40": ("gray", cl(clip_limit=40.0, tile_grid_size=(5, 7)), False),
    "clahe-gray-1x1-noclip": ("gray", cl(clip_limit=0.0, tile_grid_size=(1, 1)), False),
    "clahe-luminance": ("rgb", cl(channels="luminance", tile_grid_size=(3, 3)), False),
    "clahe-mask-clip2.5": ("gray", cl(clip_limit=2.5, tile_grid_size=(4, 4)), True),
    "he-uint16": ("u16", he(), False),
    "clahe-uint16": ("u16", cl(tile_grid_size=(2, 2)), False),
    "he-float32": ("f32", he(), False),
    "clahe-float32-range01": ("f32", cl(value_range=(0, 1), tile_grid_size=(3, 4)), False),
    "clahe-dynamic-rgb-clip3.3": ("dyn", cl(clip_limit=3.3, tile_grid_size=(3, 2)), False),
    "he-dynamic-luminance": ("dyn", he(channels="luminance"), False),
}
# Converting costs seconds per layer, so every conversion test is slow. The
# layers of CORE cover between them every option, dtype, the mask input and
# dynamic shapes; REST, the other combinations, is converted as a second model.
CORE = [
    "he-rgb",
    "he-pil-luminance",
    "clahe-gray-8x8-clip2",
    "clahe-rgb-2x3-clip4.1",
    "clahe-mask-clip2.5",
    "clahe-uint16",
    "he-float32",
    "clahe-dynamic-rgb-clip3.3",
]
REST = [name for name in CONFIGS if name not in CORE]


def build_model(names) -> keras.Model:
    inputs = {
        "rgb": keras.Input((H, W, 3), dtype="uint8", name="rgb"),
        "mask": keras.Input((H, W), dtype="bool", name="mask"),
        "u16": keras.Input((H, W, 1), dtype="uint16", name="u16"),
        "f32": keras.Input((H, W, 1), dtype="float32", name="f32"),
        "dyn": keras.Input((None, None, 3), dtype="uint8", name="dyn"),
    }
    sources = {**inputs, "gray": inputs["rgb"][..., :1]}
    outputs = {}
    for name in names:
        source, make, with_mask = CONFIGS[name]
        layer = make()
        outputs[name] = layer(sources[source], mask=inputs["mask"]) if with_mask else layer(sources[source])
    return keras.Model(inputs, outputs)


def make_inputs(dynamic_size) -> dict[str, np.ndarray]:
    designed = list(_images.DESIGNED.values())
    rgb = np.stack([designed[i]((H, W, 3), np.uint8) for i in range(3)])
    mask = np.zeros((3, H, W), bool)
    mask[:, 4:-6, 3:-9] = True
    mask[1] = _images.xray_mask((H, W))
    u16 = np.stack([designed[i]((H, W), np.uint16) for i in (3, 4, 5)])[..., None]
    f32 = np.stack([designed[i]((H, W), np.uint8) for i in (6, 0, 1)])[..., None].astype(np.float32) / 255
    dyn = np.stack([designed[i]((*dynamic_size, 3), np.uint8) for i in (2, 5, 6)])
    return {"rgb": rgb, "mask": mask, "u16": u16, "f32": f32, "dyn": dyn}


def run_tflite(model, directory) -> list[dict]:
    """What a user does: `model.export`, then the stock converter with builtin ops only."""
    path = os.fspath(directory / "saved_model")
    model.export(path, verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(path)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    runner = Interpreter(model_content=converter.convert()).get_signature_runner()
    return [runner(**make_inputs(size)) for size in DYNAMIC_SIZES]


def run_onnx(model) -> list[dict]:
    session = onnxruntime.InferenceSession(deploy.to_onnx(model).SerializeToString())
    names = [o.name for o in session.get_outputs()]
    results = []
    for size in DYNAMIC_SIZES:
        feed = make_inputs(size)
        values = session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})
        results.append(dict(zip(names, values, strict=True)))
    return results


def predict_at_every_size(model: keras.Model, names) -> list[dict]:
    """`model.predict` at each of `DYNAMIC_SIZES`: the whole model at the first, its dynamic outputs at the others.

    Only the `dyn` input changes with the size (the others are the same arrays),
    so the other outputs are the same too; tracing the whole model again for a
    new size costs seconds per layer, so the later sizes are predicted by the
    model of the outputs that read `dyn` (the same layers).
    """
    first, *others = (make_inputs(size) for size in DYNAMIC_SIZES)
    for feed in others:
        assert all(np.array_equal(feed[k], first[k]) for k in first if k != "dyn")
    expected = [model.predict(first, verbose=0)]
    dynamic = [name for name in names if CONFIGS[name][0] == "dyn"]
    sub = keras.Model(model.input["dyn"], {name: model.output[name] for name in dynamic}) if dynamic else None
    for feed in others:
        expected.append({**expected[0], **(sub.predict(feed["dyn"], verbose=0) if sub else {})})
    return expected


class Converted:
    """One model, its `predict` outputs and, converted lazily and once, its TensorFlow Lite and ONNX outputs."""

    def __init__(self, names, directory):
        self.model = build_model(names)
        self.directory = directory
        self.expected = predict_at_every_size(self.model, names)
        self._outputs = {}

    def outputs(self, target: str) -> list[dict]:
        if target not in self._outputs:
            run = run_tflite if target == "tflite" else run_onnx
            self._outputs[target] = run(self.model, self.directory) if target == "tflite" else run(self.model)
        return self._outputs[target]

    def check(self, target: str, name: str) -> None:
        for size, got, want in zip(DYNAMIC_SIZES, self.outputs(target), self.expected, strict=True):
            assert_same_pixels(got[name], want[name], f"{target} {name} (dynamic input {size}):")


@pytest.fixture(scope="module")
def core_models(tmp_path_factory):
    return Converted(CORE, tmp_path_factory.mktemp("core"))


@pytest.fixture(scope="module")
def rest_models(tmp_path_factory):
    return Converted(REST, tmp_path_factory.mktemp("rest"))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["tflite", "onnx"])
@pytest.mark.parametrize("name", CORE)
def test_converted_model_gives_the_pixels_of_predict(name, target, core_models):
    core_models.check(target, name)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["tflite", "onnx"])
@pytest.mark.parametrize("name", REST)
def test_converted_model_gives_the_pixels_of_predict_every_option(name, target, rest_models):
    rest_models.check(target, name)


@pytest.mark.slow
def test_the_equalizers_change_the_images(core_models):
    """The comparisons above are not between two identities."""
    inputs = make_inputs(DYNAMIC_SIZES[0])
    for name in CORE:
        source = CONFIGS[name][0]
        image = inputs["rgb"][..., :1] if source == "gray" else inputs[source]
        scale = 255 if source == "f32" else 1
        assert (core_models.expected[0][name] != image * scale).mean() > 0.3, name


class TestUnsupported:
    @pytest.mark.parametrize(
        ("dtype", "layer"),
        [
            ("float16", lambda: CLAHE(dtype="mixed_float16")),
            ("float64", lambda: HistogramEqualization(dtype="float64")),
        ],
        ids=["float16", "float64"],
    )
    def test_to_tflite_refuses_float_dtypes_tflite_cannot_run(self, dtype, layer):
        inputs = keras.Input((16, 16, 1), dtype=dtype)
        model = keras.Model(inputs, layer()(inputs))
        with pytest.raises(ValueError, match=rf"`model` must run its tf_histeq ops on uint8.*in {dtype}.*Hint"):
            deploy.to_tflite(model)

    @pytest.mark.slow
    def test_the_stock_converter_fails_on_float16_rather_than_giving_wrong_pixels(self, tmp_path):
        inputs = keras.Input((16, 16, 1), dtype="float16")
        model = keras.Model(inputs, CLAHE(dtype="mixed_float16")(inputs))
        model.export(os.fspath(tmp_path), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(os.fspath(tmp_path))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        with pytest.raises(Exception, match="GatherV2"):
            converter.convert()

    @pytest.mark.parametrize("convert", [deploy.to_tflite, deploy.to_onnx], ids=["tflite", "onnx"])
    def test_histogram_matching_is_refused_by_name(self, convert):
        inputs = keras.Input((16, 16, 1), dtype="uint8")
        reference = _images.xray()((16, 16), np.uint8)
        model = keras.Model(inputs, HistogramMatching(reference=reference)(inputs))
        with pytest.raises(
            ValueError, match=r"`model` must hold no match_histograms.*Received: model=.*histogram_matching"
        ):
            convert(model)

    @pytest.mark.parametrize("convert", [deploy.to_tflite, deploy.to_onnx], ids=["tflite", "onnx"])
    def test_adaptive_equalization_is_refused_by_name(self, convert):
        inputs = keras.Input((16, 16, 1), dtype="uint8")
        model = keras.Model(inputs, AdaptiveEqualization()(inputs))
        with pytest.raises(
            ValueError, match=r"`model` must hold no equalize_adapthist.*Received: model=.*adaptive_equalization"
        ):
            convert(model)

    def test_to_onnx_needs_scatter_reductions(self):
        inputs = keras.Input((16, 16, 1), dtype="uint8")
        with pytest.raises(ValueError, match=r"`opset` must be at least 16"):
            deploy.to_onnx(keras.Model(inputs, CLAHE()(inputs)), opset=15)


@pytest.mark.slow
def test_to_tflite_converts_integer_images_under_mixed_precision():
    inputs = keras.Input((16, 20, 1), dtype="uint8")
    model = keras.Model(inputs, HistogramEqualization(dtype="mixed_float16")(inputs))
    images = np.stack([_images.xray()((16, 20), np.uint8), _images.beta(2, 5)((16, 20), np.uint8)])[..., None]
    runner = Interpreter(model_content=deploy.to_tflite(model)).get_signature_runner()
    (got,) = runner(**{next(iter(runner.get_input_details())): images}).values()
    assert_same_pixels(got, model.predict(images, verbose=0))


class _FailingOptimizer:
    """A tf2onnx graph optimizer that fails (what `tf2onnx.optimizer.optimize_graph` calls)."""

    graph_been_opt = False

    def optimize(self, graph, iteration):
        raise KeyError("an optimizer failed")


def _patch_optimize_graph(monkeypatch, fast, default) -> list[bool]:
    """tf2onnx's `optimize_graph` run by `fast` (no graph copies) or `default`; returns the `catch_errors` seen."""
    from tf2onnx import optimizer

    optimize_graph, calls = optimizer.optimize_graph, []

    def patched(graph, catch_errors=True, optimizers=None):
        calls.append(catch_errors)
        return (default if catch_errors else fast)(optimize_graph, graph, catch_errors, optimizers)

    monkeypatch.setattr(optimizer, "optimize_graph", patched)
    return calls


def _failing_optimizer(optimize_graph, graph, catch_errors, optimizers):
    return optimize_graph(graph, catch_errors, optimizers={"failing": _FailingOptimizer})


def _stock(optimize_graph, graph, catch_errors, optimizers):
    return optimize_graph(graph, catch_errors, optimizers=optimizers)


def _small_model() -> keras.Model:
    inputs = keras.Input((16, 20, 1), dtype="uint8")
    return keras.Model(inputs, he()()(inputs))


@pytest.mark.slow
def test_to_onnx_falls_back_to_tf2onnx_default_when_an_optimizer_fails_without_graph_copies(monkeypatch):
    """An optimizer error without tf2onnx's per-optimizer graph copies: converted again, the default way."""
    calls = _patch_optimize_graph(monkeypatch, fast=_failing_optimizer, default=_stock)
    model = _small_model()
    session = onnxruntime.InferenceSession(deploy.to_onnx(model).SerializeToString())
    images = np.stack([_images.xray()((16, 20), np.uint8), _images.beta(2, 5)((16, 20), np.uint8)])[..., None]
    assert_same_pixels(session.run(None, {session.get_inputs()[0].name: images})[0], model.predict(images, verbose=0))
    assert calls == [False, True]
    assert "TF2ONNX_CATCH_ERRORS" not in os.environ


@pytest.mark.slow
def test_to_onnx_raises_other_errors_at_once_and_a_second_failure_from_the_first(monkeypatch):
    def broken(optimize_graph, graph, catch_errors, optimizers):
        raise RuntimeError("not an optimizer's error")

    calls = _patch_optimize_graph(monkeypatch, fast=broken, default=_stock)
    with pytest.raises(RuntimeError, match="not an optimizer's error"):
        deploy.to_onnx(_small_model())
    assert calls == [False]  # not converted again: that would fail the same way

    monkeypatch.undo()
    calls = _patch_optimize_graph(monkeypatch, fast=_failing_optimizer, default=broken)
    with pytest.raises(RuntimeError, match="not an optimizer's error") as raised:
        deploy.to_onnx(_small_model())
    assert calls == [False, True]
    assert isinstance(raised.value.__cause__, KeyError)  # the first error, with its traceback
    assert "TF2ONNX_CATCH_ERRORS" not in os.environ


# --------------------------------------------------------------------------- the stock paths, as users call them


class Stock:
    """A dynamic-size model at the layers' default `jit_compile="auto"`, and its `predict` outputs at two sizes."""

    def __init__(self):
        inputs = keras.Input((None, None, 1), dtype="uint8")
        self.model = keras.Model(
            inputs, {"clahe": CLAHE(tile_grid_size=(3, 2))(inputs), "he": HistogramEqualization()(inputs)}
        )
        self.feeds = [make_inputs(size)["dyn"][..., :1] for size in DYNAMIC_SIZES]
        self.expected = [self.model.predict(x, verbose=0) for x in self.feeds]

    def check(self, flatbuffer: bytes, what: str) -> None:
        runner = Interpreter(model_content=flatbuffer).get_signature_runner()
        (name,) = runner.get_input_details()
        for x, want in zip(self.feeds, self.expected, strict=True):
            got = runner(**{name: x})
            assert set(got) == set(want), what
            for key in want:
                assert_same_pixels(got[key], want[key], f"{what} {key} {x.shape}:")


@pytest.fixture(scope="module")
def stock():
    return Stock()


@pytest.mark.slow
def test_stock_converter_from_keras_model_on_a_dynamic_model(stock):
    """`TFLiteConverter.from_keras_model` traces the model with `training=False`: the plain op, no counting tables."""
    stock.check(tf.lite.TFLiteConverter.from_keras_model(stock.model).convert(), "from_keras_model")


@pytest.mark.slow
def test_model_export_then_stock_converter_on_a_dynamic_model(stock, tmp_path):
    stock.model.export(os.fspath(tmp_path), verbose=False)
    stock.check(tf.lite.TFLiteConverter.from_saved_model(os.fspath(tmp_path)).convert(), "from_saved_model")


# --------------------------------------------------------------------------- the random layers serve the identity


class Served:
    """A model holding the random layers: what each way of serving it gives for `images`."""

    def __init__(self, directory):
        inputs = keras.Input((None, None, 1), dtype="uint8", name="images")
        self.model = keras.Model(
            inputs,
            {
                "random_clahe": RandomCLAHE(tile_grid_size=(2, 2), seed=1)(inputs),
                "random_equalization": RandomEqualization(factor=1.0, seed=2)(inputs),
            },
        )
        self.images = make_inputs(DYNAMIC_SIZES[0])["dyn"][..., :1]
        self.path = os.fspath(directory / "served")
        self.model.export(self.path, verbose=False)

    def tflite(self, flatbuffer: bytes) -> dict:
        return Interpreter(model_content=flatbuffer).get_signature_runner()(images=self.images)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    return Served(tmp_path_factory.mktemp("served"))


SERVING_PATHS = {
    "model.export serve": lambda s: {k: v.numpy() for k, v in tf.saved_model.load(s.path).serve(s.images).items()},
    "to_tflite": lambda s: s.tflite(deploy.to_tflite(s.model)),
    "stock from_keras_model": lambda s: s.tflite(tf.lite.TFLiteConverter.from_keras_model(s.model).convert()),
    "stock from_saved_model": lambda s: s.tflite(tf.lite.TFLiteConverter.from_saved_model(s.path).convert()),
    "to_onnx": lambda s: dict(
        zip(
            ["random_clahe", "random_equalization"],
            onnxruntime.InferenceSession(deploy.to_onnx(s.model).SerializeToString()).run(
                ["random_clahe", "random_equalization"], {"images": s.images}
            ),
            strict=True,
        )
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("path", SERVING_PATHS)
def test_a_model_holding_the_random_layers_serves_the_identity(path, served):
    outputs = SERVING_PATHS[path](served)
    assert set(outputs) == {"random_clahe", "random_equalization"}
    for name, got in outputs.items():
        assert_same_pixels(got, served.images.astype(np.float32), f"{path} {name}:")


@pytest.mark.slow
def test_the_served_graph_holds_no_random_op_and_training_still_augments(served):
    graph = tf.saved_model.load(served.path).signatures["serving_default"].graph.as_graph_def()
    ops = {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    assert not {op for op in ops if "Random" in op}, sorted(ops)
    augmented = served.model(served.images, training=True)
    for name, out in augmented.items():
        assert (out.numpy() != served.images).mean() > 0.3, name
