"""The one place that reads private TensorFlow or Keras state, each use guarded and explained."""

from __future__ import annotations

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
