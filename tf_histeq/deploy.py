"""Export models that hold the tf_histeq layers to TensorFlow Lite and ONNX, bit-exact.

The ops are written with operations that TensorFlow Lite runs as builtin
kernels (no Flex delegate) and that tf2onnx maps to ONNX operators, so a Keras
model holding `HistogramEqualization` or `CLAHE` converts and gives, in the
TensorFlow Lite interpreter and in ONNX Runtime, the same pixels as
`model.predict`. The two helpers add what the stock converters cannot know:

- `to_tflite` refuses, before converting, a model whose tf_histeq ops compute
  in float16, bfloat16 or float64 (TensorFlow Lite has no builtin kernels for
  those), with a message that names the op and the fix;
- `to_onnx` maps TensorFlow's `UnsortedSegmentSum` (the histograms) to ONNX's
  `ScatterElements` with `reduction="add"`: tf2onnx's own mapping builds a
  `segments x largest count` grid, which runs out of memory on real images.

What converts, bit-exact (tested on uint8, uint16 and int16 images, and float32
images in a float32 layer; int32 images use the same ops): every `value_range` and
`bins` the layers accept, every `channels`, `method`, `alpha`, mask, clip limit
and grid. The ops clip, compare, select and gather integers in int32, which
both runtimes have kernels for (TensorFlow Lite has no builtin uint8/uint16
minimum, comparison or select, nor a uint16 gather; ONNX Runtime no uint16
`Min`). Image size and batch may be dynamic (`None`) in both. `match_histograms`
(float64 tables) and `equalize_adapthist` (scikit-image's float64 arithmetic)
are refused by name. So are, for TensorFlow Lite only, the
layers `NyulStandardization` and `PercentileScaling` (and their 3-D twins):
their percentiles and landmarks are float64; ONNX Runtime runs them with 0
differing values (float32 images are traced with `tf.sort` for it, since ONNX
has no bitcast for their radix selection: the same order statistics);
`CTWindows` converts to both. The random augmentation layers pass images
through in a model called without `training`, so an exported model holds them
as identities.

Example:
    >>> import keras, numpy as np
    >>> from tf_histeq.layers import CLAHE
    >>> inputs = keras.Input((64, 64, 1), dtype="uint8")
    >>> model = keras.Model(inputs, CLAHE(tile_grid_size=(4, 4))(inputs))
    >>> flatbuffer = to_tflite(model)  # bytes, for tf.lite.Interpreter / ai_edge_litert
    >>> flatbuffer[4:8]
    b'TFL3'
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import tensorflow as tf

from tf_histeq import _compat, _options, _quantiles
from tf_histeq._options import fail

# The name scopes of the public ops (`tf.name_scope` in `tf_histeq.ops`).
# The standardization layers' ops, whose percentiles and landmarks are float64 (see `_refuse_float64_standardization`).
_FLOAT64_SCOPES = ("nyul_standardize", "scale_intensity_percentiles")
_OP_SCOPES = _options.OP_NAMES
# Dtypes that TensorFlow Lite has no builtin gather, select or scatter kernels for.
_TFLITE_UNSUPPORTED = {tf.float16.as_datatype_enum, tf.bfloat16.as_datatype_enum, tf.float64.as_datatype_enum}


def to_tflite(model, *, optimizations=()) -> bytes:
    """Convert a Keras model (or a SavedModel directory) to TensorFlow Lite with builtin ops only.

    The model is exported with `model.export` (a SavedModel directory is used
    as it is), checked, and converted by `tf.lite.TFLiteConverter.from_saved_model`
    with `supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS]`: the result runs in the
    stock interpreter, without the Flex delegate.

    Args:
        model: A Keras model, or the path of a SavedModel directory.
        optimizations: Passed to the converter's `optimizations` (e.g.
            `[tf.lite.Optimize.DEFAULT]` to quantize the model's weights; the
            tf_histeq ops hold no weights and stay exact).

    Returns:
        The TensorFlow Lite flatbuffer, as bytes.

    Raises:
        ValueError: If a tf_histeq op in the model computes in float16, bfloat16
            or float64, which TensorFlow Lite has no builtin kernels for, or if
            the model holds `match_histograms` (float64 tables) or
            `equalize_adapthist` (float64 arithmetic).
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = model if isinstance(model, (str, os.PathLike)) else _export(model, tmp)
        _check_tflite_dtypes(path)
        converter = tf.lite.TFLiteConverter.from_saved_model(os.fspath(path))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.optimizations = list(optimizations)
        return converter.convert()


def to_onnx(model, *, opset: int = 18):
    """Convert a Keras model to ONNX with tf2onnx, histograms as `ScatterElements(reduction="add")`.

    Calls from several threads convert one at a time. tf2onnx's graph
    optimizers run first without its safety copies of the graph (faster); if
    one of them fails, the model is converted again the default way, which
    skips that optimizer, and an error of that second conversion is raised
    from the first one.

    Args:
        model: A Keras model (Functional or Sequential, with known inputs).
        opset: The ONNX opset, at least 16 (`ScatterElements` reductions).

    Returns:
        The `onnx.ModelProto`, e.g. for `onnxruntime.InferenceSession(proto.SerializeToString())`.

    Raises:
        ValueError: If `opset` is below 16, or if the model holds
            `match_histograms`: ONNX Runtime's float64 arithmetic is not
            bit-exact with TensorFlow's there (a few pixels one level off),
            or `equalize_adapthist` (float64 throughout, not verified there).
    """
    import tf2onnx

    if opset < 16:
        fail(ValueError, "opset", "be at least 16 (ScatterElements with reduction='add')", opset)
    structure = model.input  # one input, or a list or dict of them
    signature = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in tf.nest.flatten(structure)]

    def serve(*inputs):
        return model(tf.nest.pack_sequence_as(structure, list(inputs)))

    serve = tf.function(serve)
    # Traced (once, here; tf2onnx reuses the trace) with float32 percentiles sorted: ONNX has no bitcast.
    with _quantiles.float32_sorted():
        graph = serve.get_concrete_function(*signature).graph.as_graph_def()
    _refuse_float64_ops(graph, "ONNX")

    def convert():
        proto, _ = tf2onnx.convert.from_function(
            serve,
            input_signature=signature,
            opset=opset,
            custom_op_handlers={
                "UnsortedSegmentSum": (_segment_sum_as_scatter_add, []),
                "PreventGradient": (_identity, []),
            },
        )
        return proto

    # Converted first without tf2onnx's copy of the whole graph before each of its optimizers (two thirds
    # of the conversion time of a model with a few layers; see `_compat.tf2onnx_optimizer_errors_raised`).
    # If an optimizer fails that way, converted again the default way, which skips the failing optimizer.
    with _compat.TF2ONNX_LOCK:
        try:
            with _compat.tf2onnx_optimizer_errors_raised():
                return convert()
        except Exception as error:
            if _compat.TF2ONNX_CATCH_ERRORS in os.environ or not _compat.tf2onnx_optimizer_failed(error):
                raise  # the user's own setting, or not an optimizer's failure: converting again would not help
            first = error
        try:
            return convert()
        except Exception as second:
            raise second from first


def _export(model, directory: str) -> str:
    path = os.path.join(directory, "saved_model")
    model.export(path, verbose=False)
    return path


def _op_nodes(graph):
    """`(scope, node)` for every node of a `GraphDef` (its functions included) inside a tf_histeq op."""
    for node in list(graph.node) + [n for function in graph.library.function for n in function.node_def]:
        parts = node.name.split("/")
        scope = next((i for i, part in enumerate(parts[:-1]) if part in _OP_SCOPES or part in _FLOAT64_SCOPES), None)
        if scope is not None:
            yield "/".join(parts[: scope + 1]), node


# The ops whose arithmetic is float64 by definition, so no input dtype avoids it, and why each is refused.
_FLOAT64_OPS = {
    "match_histograms": "match_histograms / HistogramMatching op for {target}: its float64 tables are not "
    "reproduced bit-exactly there",
    "equalize_adapthist": "equalize_adapthist / AdaptiveEqualization op for {target}: scikit-image's float64 "
    "arithmetic is not verified bit-exact there",
}


def _refuse_float64_ops(graph, target: str) -> None:
    """Raise if the graph holds an op of `_FLOAT64_OPS`.

    TensorFlow Lite has no kernels for float64, and ONNX Runtime's float64
    arithmetic moved a few pixels of `match_histograms` by one level in our tests.
    """
    for op, why in _FLOAT64_OPS.items():
        scopes = sorted({scope for scope, _ in _op_nodes(graph) if scope.endswith(op)})
        if scopes:
            fail(
                ValueError,
                "model",
                "hold no " + why.format(target=target),
                ", ".join(scopes),
                hint="run it in the input pipeline (tf_histeq.data.map_fn) and export the rest of the model.",
            )


def _refuse_float64_standardization(graph) -> None:
    """Raise if the graph holds Nyúl standardization or percentile scaling: their percentiles are float64.

    Exact percentiles of 16-bit and float images, and the landmarks, need
    float64, which TensorFlow Lite has no builtin kernels for (ONNX Runtime
    runs them exactly).
    """
    scopes = sorted({scope for scope, _ in _op_nodes(graph) if scope.split("/")[-1] in _FLOAT64_SCOPES})
    if scopes:
        fail(
            ValueError,
            "model",
            "hold no NyulStandardization / PercentileScaling op for TensorFlow Lite: their percentiles and "
            "landmarks are float64, which TensorFlow Lite has no builtin kernels for",
            ", ".join(scopes),
            hint="standardize in the input pipeline (tf_histeq.data) or export to ONNX (tf_histeq.deploy.to_onnx), "
            "which runs them exactly; CTWindows converts to TensorFlow Lite.",
        )


def _check_tflite_dtypes(saved_model_dir) -> None:
    """Raise if a tf_histeq op cannot run in TensorFlow Lite: matching, or a dtype it has no kernels for."""
    proto = _compat.read_saved_model(saved_model_dir)
    offenders = set()
    for meta_graph in proto.meta_graphs:
        _refuse_float64_ops(meta_graph.graph_def, "TensorFlow Lite")
        _refuse_float64_standardization(meta_graph.graph_def)
        for scope, node in _op_nodes(meta_graph.graph_def):
            for value in node.attr.values():
                for dtype in [value.type, *value.list.type]:
                    if dtype in _TFLITE_UNSUPPORTED:
                        offenders.add((scope, tf.as_dtype(dtype).name))
    if offenders:
        found = ", ".join(f"{path} in {dtype}" for path, dtype in sorted(offenders))
        fail(
            ValueError,
            "model",
            "run its tf_histeq ops on uint8, uint16, int16, int32 or float32 images for TensorFlow Lite, which has no "
            "builtin float16, bfloat16 or float64 kernels for them",
            found,
            hint="feed integer images, or give the layer a float32 dtype of its own, e.g. CLAHE(dtype='float32').",
        )


def _segment_sum_as_scatter_add(ctx, node, name, args):
    """tf2onnx handler: `UnsortedSegmentSum(data, ids, n)` -> `ScatterElements(zeros(n), ids, data, add)`.

    The ids are 1-D (as `tf_histeq` builds them), so this is an element-wise
    scatter-add into `n` zeros; duplicates add up, as in TensorFlow.
    """
    from onnx import TensorProto, helper

    data, ids, count = node.input
    ids = ctx.make_node("Cast", [ids], attr={"to": TensorProto.INT64}).output[0]
    count = ctx.make_node("Cast", [count], attr={"to": TensorProto.INT64}).output[0]
    one = ctx.make_const(f"{name}_shape_of_count", np.array([1], np.int64)).output[0]
    shape = ctx.make_node("Reshape", [count, one]).output[0]
    zero = helper.make_tensor("value", ctx.get_dtype(data), [1], [0])
    zeros = ctx.make_node("ConstantOfShape", [shape], attr={"value": zero}).output[0]
    node.type = "ScatterElements"
    ctx.replace_inputs(node, [zeros, ids, data])
    node.set_attr("axis", 0)
    node.set_attr("reduction", "add")


def _identity(ctx, node, name, args):
    """tf2onnx handler: `PreventGradient` (inference needs no gradient guard) -> `Identity`."""
    node.type = "Identity"
    node.attr.pop("message", None)
