"""The tf_keras (Keras 2) layers: a thin base, and `twin`, which builds each layer from its Keras 3 class.

A layer's logic is written once, in its Keras 3 class (a subclass of
`tf_histeq.layers._base.Equalizer`), and reaches Keras only through the hooks
of `EqualizerLogic` (seed generators, weights, the call context). `twin`
builds the tf_keras class from it: the same class body (every method,
property and class attribute, the same code objects) on the twins of its
bases, down to `Equalizer` here instead of Keras 3's. Methods that use the
zero-argument `super()` get a copy whose `__class__` cell names the twin, as
Python's class creation would have given them. A method that reads the
`keras` module itself (Keras 3's) cannot serve tf_keras: `twin` refuses it,
naming it (except in `KERAS3_ONLY` methods, which tf_keras never calls).

tf_keras is imported here only: it stays an optional dependency.
"""

from __future__ import annotations

import random
import threading
import types

import tensorflow as tf
import tf_keras

from tf_histeq import _compat
from tf_histeq.layers import _base, _kerases

# The Keras 3 classes' twins, by Keras 3 class.
_TWINS: dict[type, type] = {}
_LOCK = threading.RLock()
# The module the public twins are exported from (their `__module__`, which tf_keras's `.keras` files record).
MODULE = "tf_histeq.keras2"

# Methods that only Keras 3 calls: they may use the `keras` module (tf_keras never calls them).
KERAS3_ONLY = frozenset({"compute_output_spec"})

# Per thread: the tf_histeq layer whose tf_keras call is the outermost one (or `_NESTED`), innermost last.
_CALLS = threading.local()
_NESTED = object()


class SeedGenerator(tf.Module):
    """The tf_keras counterpart of `keras.random.SeedGenerator`: the same states, so the same draws.

    A `(seed, 0)` int64 state that `next()` returns and then advances by
    `(0, 1)`, as Keras 3's does (`ordered=True`). Without a seed, a random
    one from Python's `random`, as Keras 3 picks it.
    """

    def __init__(self, seed=None):
        super().__init__(name="seed_generator")
        if seed is None:
            seed = random.randint(1, int(1e9))
        self.state = tf.Variable(
            tf.constant([seed, 0], tf.int64),
            trainable=False,
            # Under a tf.distribute strategy every replica holds the same state and adds the same step.
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            name="seed_generator_state",
        )

    def next(self):
        """Return the current state, and advance it."""
        value = tf.identity(self.state.read_value())
        self.state.assign_add(tf.constant([0, 1], tf.int64))
        return value


class Equalizer(_base.EqualizerLogic, tf_keras.layers.Layer):
    """The thin tf_keras (Keras 2) base: the hooks of `EqualizerLogic` for tf_keras."""

    KERAS = "tf_keras (Keras 2)"

    @tf.autograph.experimental.do_not_convert
    def __call__(self, *args, **kwargs):
        _kerases.refuse_other_keras(self, *args, *kwargs.values())
        stack = _CALLS.__dict__.setdefault("stack", [])
        # Unknown (another tf_keras layout): nested, so that a model never augments unasked.
        stack.append(self if _compat.tf_keras_in_call() is False else _NESTED)
        try:
            return super().__call__(*args, **kwargs)
        finally:
            stack.pop()

    def __str__(self):
        # tf_keras's message for a layer added to a model of the other Keras quotes it.
        return _kerases.describe(self, super().__str__())

    def _backend(self) -> str:
        return "tensorflow"

    def _seed_generator(self, seed):
        return SeedGenerator(seed)

    def _is_seed_generator(self, value) -> bool:
        return isinstance(value, SeedGenerator)

    def _outermost_call(self):
        stack = getattr(_CALLS, "stack", None)
        if not stack:
            return None  # `call` itself was called
        return stack[-1] if stack[-1] is self else _compat.UNKNOWN

    def _add_exact_weight(self, name, shape, dtype):
        return self.add_weight(
            name=name,
            shape=tuple(shape),
            dtype=dtype,
            initializer="zeros",
            trainable=False,
            experimental_autocast=False,
        )

    def get_config(self):
        """Return the layer configuration, with the state that its weights need (tf_keras's formats ask no more)."""
        config = super().get_config()
        # tf_keras's SavedModel and .h5 loaders build a model from its config and then load
        # the weights, without the build config that .keras files keep: a layer whose
        # weights come from `adapt` (HistogramMatching) carries what creates them here.
        state = {key: value for key, value in (self.get_build_config() or {}).items() if key != "input_shape"}
        if state:
            config["state"] = state
        return config

    @classmethod
    def from_config(cls, config):
        """Create a layer from its config, with the weights `get_config`'s state describes."""
        config = dict(config)
        state = config.pop("state", None)
        layer = cls(**config)
        if state:
            layer.build_from_config({"input_shape": None, **state})
        return layer


_TWINS[_base.Equalizer] = Equalizer


def twin(cls: type) -> type:
    """The tf_keras (Keras 2) class of a Keras 3 tf_histeq layer class (built once, then cached).

    Args:
        cls: A subclass of `tf_histeq.layers._base.Equalizer`, whose methods
            reach Keras through the base's hooks only.

    Returns:
        A subclass of this module's `Equalizer` (a `tf_keras.layers.Layer`)
        with `cls`'s name, body and docstring, registered with tf_keras's
        serialization under the same name as `cls` is with Keras 3's.

    Raises:
        TypeError: If `cls` is no tf_histeq layer, or a method of it uses the
            `keras` module (Keras 3) itself.
    """
    with _LOCK:
        if cls in _TWINS:
            return _TWINS[cls]
        if not (isinstance(cls, type) and issubclass(cls, _base.Equalizer)):
            raise TypeError(f"`cls` must be a tf_histeq Keras 3 layer class (an Equalizer). Received: cls={cls!r}.")
        bases = tuple(twin(base) if issubclass(base, _base.Equalizer) else base for base in cls.__bases__)
        for base in bases:  # mixins (`_Volumes`) serve both Kerases as they are: they too must not use keras
            if not issubclass(base, tf_keras.layers.Layer):
                for klass in base.__mro__[:-1]:
                    for name, value in vars(klass).items():
                        _check_keras(value, f"{klass.__qualname__}.{name}", keras3_only=name in KERAS3_ONLY)
        cell = types.CellType()  # the `__class__` of the twin's methods, set once it exists
        namespace = {}
        for name, value in vars(cls).items():
            if name in ("__dict__", "__weakref__"):
                continue
            namespace[name] = _rebind(value, cell, f"{cls.__qualname__}.{name}", keras3_only=name in KERAS3_ONLY)
        namespace["__qualname__"] = cls.__qualname__
        namespace["__module__"] = MODULE if not cls.__name__.startswith("_") else __name__
        new = type(cls)(cls.__name__, bases, namespace)
        cell.cell_contents = new
        if cls.__name__ in _kerases.LAYERS:
            new = tf_keras.saving.register_keras_serializable(package="tf_histeq")(new)
        _TWINS[cls] = new
        return new


def _rebind(value, cell, where: str, *, keras3_only: bool = False):
    """`value` of a class body for the twin: functions copied with `__class__` naming the twin."""
    if isinstance(value, types.FunctionType):
        return _copy_function(value, cell, where, keras3_only=keras3_only)
    if isinstance(value, (staticmethod, classmethod)):
        return type(value)(_rebind(value.__func__, cell, where))
    if isinstance(value, property):
        parts = (None if f is None else _rebind(f, cell, where) for f in (value.fget, value.fset, value.fdel))
        return property(*parts, value.__doc__)
    inner = getattr(value, "__wrapped__", None)
    while inner is not None:  # a decorated method: its wrapper cannot be rebuilt here
        if isinstance(inner, types.FunctionType) and ("__class__" in inner.__code__.co_freevars or _keras_names(inner)):
            raise TypeError(
                f"{where} is a decorated method that uses `super()` or the `keras` module: its tf_keras twin cannot "
                "be built. Move that code into a plain method (called by the decorated one) that reaches Keras "
                "through the hooks of tf_histeq.layers._base.EqualizerLogic."
            )
        inner = getattr(inner, "__wrapped__", None)
    return value


def _check_keras(value, where: str, *, keras3_only: bool) -> None:
    """Refuse a function (or a static or class method, or a property) of a class body that reads Keras 3 itself."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    functions = [value.fget, value.fset, value.fdel] if isinstance(value, property) else [value]
    names = set()
    for function in functions:
        if isinstance(function, types.FunctionType) and not keras3_only:
            names |= _keras_names(function)
    if names:
        raise TypeError(
            f"{where} uses {', '.join(sorted(names))} of Keras 3 itself, so its tf_keras (Keras 2) twin cannot "
            "work: reach Keras through the hooks of tf_histeq.layers._base.EqualizerLogic (_seed_generator, "
            "_is_seed_generator, _outermost_call, _add_exact_weight, _backend), which each Keras's base defines."
        )


def _copy_function(function: types.FunctionType, cell, where: str, *, keras3_only: bool) -> types.FunctionType:
    _check_keras(function, where, keras3_only=keras3_only)
    closure = function.__closure__
    if "__class__" in function.__code__.co_freevars:
        index = function.__code__.co_freevars.index("__class__")
        closure = (*closure[:index], cell, *closure[index + 1 :])
    copy = types.FunctionType(
        function.__code__, function.__globals__, function.__name__, function.__defaults__, closure
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__dict__.update(function.__dict__)
    copy.__qualname__ = function.__qualname__
    copy.__doc__ = function.__doc__
    copy.__annotations__ = function.__annotations__
    copy.__module__ = function.__module__
    return copy


def _keras_names(function: types.FunctionType) -> set[str]:
    """The global names a function (or a lambda, comprehension or function nested in it) reads from Keras 3."""
    found = set()
    codes = [function.__code__]
    while codes:
        code = codes.pop()
        for name in code.co_names:
            value = function.__globals__.get(name)
            home = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
            if isinstance(home, str) and home.split(".")[0] == "keras":
                found.add(f"`{name}`")
        codes.extend(const for const in code.co_consts if isinstance(const, types.CodeType))
    return found


def twins() -> dict[str, type]:
    """The tf_keras twin of every layer of `tf_histeq.layers._kerases.LAYERS`, by name."""
    return {name: twin(cls) for name, cls in _kerases.keras3_layers().items()}
