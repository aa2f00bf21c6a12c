"""The one place that reads private TensorFlow, Keras or tf2onnx state, each use guarded and explained.

Each function says what it reads, why there is no public way, and what it
does when a later version no longer has it (a safe answer, never a wrong
pixel). `tests/test_compat.py` checks that every one still reads what it
should on the installed versions, so an upgrade that removes one fails there,
naming it, rather than silently taking the fallback.
"""

from __future__ import annotations

import contextlib
import os
import threading

# Returned by `keras_outermost_call` when this Keras keeps no record it can read.
UNKNOWN = object()


def keras_outermost_call():
    """The layer (or model) whose Keras call is the outermost one in progress, None if none, or `UNKNOWN`.

    Keras 3's `Layer.__call__` records it in a thread-local call context (the
    context through which an outer model passes `training` to its layers);
    there is no public accessor. Read without side effects.
    """
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # pragma: no cover - another Keras layout
        return UNKNOWN
    context = global_state.get_global_attribute("current_call_ctx")
    if context is None:
        return None
    return getattr(context, "entry_layer", UNKNOWN)


def graph_in_xla_context(graph) -> bool:
    """Whether `graph`, or a graph it is nested in, is compiled by XLA as a whole.

    TensorFlow's `control_flow_util.GraphOrParentsInXlaContext` is what
    `tf.function` itself uses to inline a nested `jit_compile=True` function;
    there is no public accessor. Without it, False: the op then compiles on its
    own inside the outer compilation (the same pixels; XLA inlines it).
    """
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - another TensorFlow layout
        return False
    check = getattr(control_flow_util, "GraphOrParentsInXlaContext", None)
    return bool(check(graph)) if check is not None else False


def read_saved_model(saved_model_dir):
    """The `SavedModel` protocol buffer of a SavedModel directory (its graphs, to inspect before converting).

    TensorFlow exposes the proto class only under `tensorflow.core`; the file
    format itself is stable.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(os.fspath(saved_model_dir), "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    return proto


# tf2onnx's switch for its graph optimizers (`tf2onnx.constants.ENV_TF2ONNX_CATCH_ERRORS`), an environment
# variable: process-global, so it is set only while `TF2ONNX_LOCK` is held.
TF2ONNX_CATCH_ERRORS = "TF2ONNX_CATCH_ERRORS"
# Held by `tf_histeq.deploy.to_onnx` around its conversions and the switch.
TF2ONNX_LOCK = threading.RLock()


@contextlib.contextmanager
def tf2onnx_optimizer_errors_raised():
    """Convert with tf2onnx's graph optimizers letting their errors through, instead of skipping them.

    By default tf2onnx deep-copies the whole graph before each optimizer pass
    (about 24 of them), to restore it if the pass fails; with the
    `TF2ONNX_CATCH_ERRORS` environment variable set (tf2onnx's converter
    reads any value as "do not catch") it does not copy, and an optimizer's
    error propagates. There is no argument for it in `tf2onnx.convert.from_function`.
    Set for the duration, under `TF2ONNX_LOCK`; a value set by the user is left
    alone (and then decides).
    """
    with TF2ONNX_LOCK:
        if TF2ONNX_CATCH_ERRORS in os.environ:
            yield
            return
        os.environ[TF2ONNX_CATCH_ERRORS] = "false"
        try:
            yield
        finally:
            del os.environ[TF2ONNX_CATCH_ERRORS]


def tf2onnx_optimizer_failed(error: BaseException) -> bool:
    """Whether `error` came out of one of tf2onnx's graph optimizers.

    With their errors let through (`tf2onnx_optimizer_errors_raised`),
    `tf2onnx.optimizer.optimize_graph` raises what the failing optimizer raised,
    of any type and message; it is told by its traceback, which passes through
    that function.
    """
    try:
        from tf2onnx import optimizer
    except ImportError:  # pragma: no cover - no tf2onnx, no tf2onnx error
        return False
    where = os.path.normcase(os.path.abspath(optimizer.__file__))
    traceback = error.__traceback__
    while traceback is not None:
        code = traceback.tb_frame.f_code
        if code.co_name == "optimize_graph" and os.path.normcase(os.path.abspath(code.co_filename)) == where:
            return True
        traceback = traceback.tb_next
    return False


def prevent_gradient(x, message: str):
    """`x` through TensorFlow's `PreventGradient`; asking a gradient of it raises `LookupError(message)`.

    `PreventGradient` is what graphs, SavedModels and the converters keep, but
    its own error reads `Gradient explicitly disabled. Reason: b'...'` (the
    message attribute's bytes). So the refusal is also recorded on the
    gradient tapes (`record.record_operation`, what `tf.custom_gradient` does
    without the gradient override that a SavedModel export would trace and
    fail on), and in a graph set as the op's gradient function (what
    `tf.gradients` and the gradient of a `tf.function` called under a tape
    read); neither is public. A SavedModel reloaded without Python keeps only
    the op: there the error is TensorFlow's wording. Without either, TensorFlow's
    wording too.
    """
    import tensorflow as tf

    y = tf.raw_ops.PreventGradient(input=x, message=message)

    def refuse(*_):
        raise LookupError(message)

    try:
        from tensorflow.python.eager import record
    except ImportError:  # pragma: no cover - another TensorFlow layout
        return y
    record.record_operation("TfHisteqPreventGradient", [y], [x], refuse)
    if not tf.executing_eagerly() and hasattr(y.op, "_gradient_function"):
        y.op._gradient_function = refuse
    return y


def tf_keras_in_call():
    """Whether a tf_keras (Keras 2) layer's or model's call is in progress, or `UNKNOWN`.

    tf_keras keeps it in its thread-local call context (`in_call`, through
    which an outer model passes `training` to its layers); there is no
    public accessor. Read without side effects.
    """
    try:
        from tf_keras.src.engine import base_layer_utils
    except ImportError:  # pragma: no cover - another tf_keras layout
        return UNKNOWN
    in_call = getattr(base_layer_utils.call_context(), "in_call", UNKNOWN)
    return UNKNOWN if in_call is UNKNOWN else bool(in_call)
