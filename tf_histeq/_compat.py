"""The one place that reads private TensorFlow or Keras state, each use guarded and explained.

Each function says what it reads, why there is no public way, and what it
does when a later version no longer has it (a safe answer, never a wrong
pixel). `tests/test_compat.py` checks that every one still reads what it
should on the installed versions, so an upgrade that removes one fails there,
naming it, rather than silently taking the fallback.
"""

from __future__ import annotations

import os

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
