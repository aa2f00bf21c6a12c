"""The two Kerases: which layers exist, which Keras `tf.keras` is, and the error for a layer in the other's model.

`LAYERS` lists every public layer once, by name and module: `tf_histeq.keras3`
exports those classes (Keras 3), `tf_histeq.keras2` builds their tf_keras
(Keras 2) twins from them (`tf_histeq.layers._keras2.twin`), and
`tf_histeq.layers` exports the ones of the Keras that `tf.keras` is.

A new layer (in a module of its own) is written once, as a Keras 3 class:

1. derive it from `tf_histeq.layers._base.Equalizer` or from another layer
   (`HistogramEqualization3D(HistogramEqualization)`), registered with
   `@keras.saving.register_keras_serializable(package="tf_histeq")`;
2. in its methods, reach Keras only through the base's hooks
   (`_add_exact_weight` for weights such as `adapt`'s, `_seed_generator`,
   `_is_seed_generator`, `_outermost_call`, `_backend`), never through the
   `keras` module (`compute_output_spec`, which only Keras 3 calls, may);
   weights that `adapt` creates are described by `get_build_config` and
   created by `build_from_config`, as in `HistogramMatching`;
3. add its name and module to `LAYERS` below.

Its tf_keras twin then exists in `tf_histeq.keras2` (and in `tf_histeq.layers`
under `TF_USE_LEGACY_KERAS=1`), registered for tf_keras's formats;
`tests/test_keras2.py` checks every listed layer's twin.
"""

from __future__ import annotations

import importlib

from tf_histeq._options import fail

# Every public layer (its Keras 3 class) and the module that defines it. A layer
# listed here exists in both Kerases; one module may define several.
LAYERS = {
    "HistogramEqualization": "tf_histeq.layers._equalization",
    "CLAHE": "tf_histeq.layers._equalization",
    "HistogramMatching": "tf_histeq.layers._matching",
    "RandomCLAHE": "tf_histeq.layers._random",
    "RandomEqualization": "tf_histeq.layers._random",
    "HistogramEqualization3D": "tf_histeq.layers._volumes",
    "HistogramMatching3D": "tf_histeq.layers._volumes",
    "AdaptiveEqualization": "tf_histeq.layers._adaptive",
    "AdaptiveEqualization3D": "tf_histeq.layers._adaptive",
    "NyulStandardization": "tf_histeq.layers._standardize",
    "NyulStandardization3D": "tf_histeq.layers._standardize",
    "PercentileScaling": "tf_histeq.layers._standardize",
    "PercentileScaling3D": "tf_histeq.layers._standardize",
    "CTWindows": "tf_histeq.layers._standardize",
    "CTWindows3D": "tf_histeq.layers._standardize",
}

# The module each Keras's layers are imported from, by the Keras names of `KERAS` attributes.
MODULES = {"Keras 3": "tf_histeq.keras3", "tf_keras (Keras 2)": "tf_histeq.keras2"}


def keras3_layers() -> dict[str, type]:
    """The Keras 3 class of every name in `LAYERS`."""
    return {name: getattr(importlib.import_module(module), name) for name, module in LAYERS.items()}


def tf_keras_is_keras2() -> bool:
    """Whether `tf.keras` is tf_keras (Keras 2): TensorFlow's `TF_USE_LEGACY_KERAS`, as TensorFlow reads it.

    Asked of `tf.keras` itself, so that the layers follow whatever TensorFlow
    decided; it imports the Keras that `tf.keras` is, which the user's models
    import anyway.
    """
    import tensorflow as tf

    return _keras_of(tf.keras.layers.Layer) == "tf_keras (Keras 2)"


def _keras_of(value) -> str | None:
    """Which Keras an object (a layer, a symbolic tensor, a class) belongs to, by its class's package."""
    cls = value if isinstance(value, type) else type(value)
    for klass in cls.__mro__:
        package = klass.__module__.split(".")[0]
        if package == "tf_keras":
            return "tf_keras (Keras 2)"
        if package == "keras":
            return "Keras 3"
    return None


def describe(layer, text: str) -> str:
    """`text` (a layer's `str`), with which Keras the layer is and where the other Keras's twin is."""
    other = next(keras for keras in MODULES if keras != layer.KERAS)
    name = type(layer).__name__
    return f"{text} (a {layer.KERAS} layer; in a {other} model use {MODULES[other]}.{name})"


def refuse_other_keras(layer, *values) -> None:
    """Raise a `TypeError` if a value (a symbolic input) belongs to the other Keras than `layer`'s.

    A Keras 3 layer called on tf_keras's `tf.keras.Input` (what `tf.keras` is
    under `TF_USE_LEGACY_KERAS=1`), or the reverse, would otherwise fail deep
    inside Keras or TensorFlow with a message that names neither.
    """
    for value in (item for given in values for item in (given.values() if isinstance(given, dict) else [given])):
        keras = _keras_of(value)
        if keras is None or keras == layer.KERAS or not hasattr(value, "shape"):
            continue
        name = type(layer).__name__
        fail(
            TypeError,
            "images",
            f"be a {layer.KERAS} tensor for {MODULES[layer.KERAS]}.{name}, a {layer.KERAS} layer",
            f"a {keras} {type(value).__name__}",
            hint=f"use {MODULES[keras]}.{name} in {keras} models. tf_histeq.layers holds the layers of the Keras "
            "that `tf.keras` is: tf_keras (Keras 2) when TF_USE_LEGACY_KERAS=1 is set before TensorFlow is "
            "imported, Keras 3 otherwise.",
        )
