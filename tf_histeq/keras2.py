"""The tf_histeq layers for tf_keras (Keras 2), the Keras that `tf.keras` is under `TF_USE_LEGACY_KERAS=1`.

The same names, arguments, pixels and documentation as the Keras 3 layers of
`tf_histeq.keras3`, built from the same code (`tf_histeq.layers._keras2.twin`):
for Sequential and Functional models, `fit`/`predict`, `model.save` in
SavedModel, `.h5` and `.keras`. `tf_histeq.layers` holds these when
`tf.keras` is tf_keras. Needs the `tf_keras` package (`pip install tf_keras`).
"""

from __future__ import annotations

from tf_histeq.layers import _kerases

try:
    import tf_keras  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "tf_histeq.keras2 holds layers for tf_keras (Keras 2), which is not installed: `pip install tf_keras`, "
        "or use tf_histeq.keras3 for Keras 3 models."
    ) from error

from tf_histeq.layers._keras2 import twins as _twins  # noqa: E402

__all__ = list(_kerases.LAYERS)

# Built (and registered with tf_keras's serialization) now; served by `__getattr__`, so that the
# Keras 3 docstrings they share are not collected as doctests of this module a second time.
_LAYERS = _twins()


def __getattr__(name: str):
    if name in _LAYERS:
        return _LAYERS[name]
    raise AttributeError(f"module 'tf_histeq.keras2' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
