"""XLA where it pays: the `jit_compile` option of the layers and of `tf_histeq.data.map_fn`.

Compiled with XLA, an op fuses its passes over the pixels (casts, table
lookups, interpolation) and runs several times faster on CPU, with identical
results: the kernels block the compiler rewrites that would change a value.
A `tf.function(jit_compile=True)` called inside another graph (a Keras
`predict` step, a `tf.data` map function) is compiled by XLA on its own while
the graph around it stays as it is, so a layer or a map function can compile
its op whatever its caller does.

XLA compiles one executable per input shape, which takes about a second, the
time of tens of uncompiled calls. So `jit_compile="auto"` compiles where calls
repeat:

- a shape (with the dtype, and the mask's shape) is compiled once
  `COMPILE_AFTER_VALUES` values (pixels x channels) of it have run uncompiled:
  from the second call of a large batch or image on; one-off and small calls
  never wait for the compiler;
- at most `MAX_COMPILED_SHAPES` shapes are compiled per configuration (the op,
  its options and the output dtype, shared by every layer or map function that
  has them); later shapes, as in data of many sizes, run the uncompiled op.
  Calls that meet new shapes at the same moment (a parallel `tf.data` map) can
  each pass the check before any records its shape, so the bound can be
  exceeded by the number of such concurrent calls;
- a traced graph whose image size (height, width, channels; the batch may
  vary) is static, as in a Keras `fit`/`predict` step of a model with a fixed
  input size or a `tf.data` map over fixed-size images, runs one size many
  times: it calls the compiled op directly, with no counting (a data-dependent
  `tf.cond` in the graph would cost about half the speed of the compiled op);
- sizes known only at run time (`tf.io.decode_png`) and eager calls are
  counted in two small host-side lookup tables, updated at run time; a traced
  graph then gets a `tf.cond` between the compiled and the uncompiled op,
  which reads the shape, host metadata, and never copies pixels to the host;
- inside a graph that XLA compiles anyway (`model.compile(jit_compile=True)`,
  Keras's choice on GPU, or `tf.function(jit_compile=True)`), the op is left to
  that compilation, which fuses it with its neighbours;
- callers that pass `graphs=False` keep the plain op in traced graphs. The
  layers do so outside the steps of Keras's `fit`, `evaluate` and `predict`
  (`in_keras_step`), so that `model.export(...)`, the TensorFlow Lite
  converter's `from_keras_model` (which traces the model with
  `training=False`), tf2onnx and any graph of the user's own hold neither an
  XLA call (which TF Serving and TensorFlow Java cannot run on GPU) nor the
  counting tables (resources an export does not track, with ops that TFLite's
  builtins lack).

`jit_compile=True` compiles every call (one executable per shape, without
bound); `False` never compiles.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from tf_histeq import _compat
from tf_histeq._options import fail

JIT_COMPILE = "auto"
MAX_COMPILED_SHAPES = 8
# A shape is compiled once this many values (pixels x channels) of it have run uncompiled.
COMPILE_AFTER_VALUES = 2**20
# Values are counted for this many distinct shapes; shapes seen after that are never compiled.
_MAX_COUNTED_SHAPES = 1024


def check_jit_compile(value: Any, *, name: str = "jit_compile") -> str | bool:
    """Return `value` if it is `"auto"`, True or False (NumPy bools included)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value == "auto":
        return value
    fail(
        ValueError if isinstance(value, str) else TypeError,
        name,
        "be 'auto' (compile with XLA the shapes that repeat), True (compile every call) or False (never compile)",
        value,
    )


class _Compiled:
    """The XLA-compiled function of one configuration and its call counts, shared by all its callers."""

    def __init__(self, function: Callable, options: Mapping[str, Any], output_dtype: str | None):
        options = dict(options)

        def compiled(images, mask, **tensors):
            return _cast(function(images, mask=mask, **options, **tensors), output_dtype)

        compiled.__name__ = f"{function.__name__}_xla"
        self._xla = tf.function(compiled, jit_compile=True, autograph=False)
        # The uncompiled op as a function call that is not inlined: each new
        # `tf.data` iterator instantiates its map function again, and the
        # fallback branch of `JitRunner`'s `tf.cond` costs less to instantiate
        # as a call than as the op's whole graph next to its compiled twin.
        self._uncompiled = tf.function(
            compiled, jit_compile=False, autograph=False, experimental_attributes={"_noinline": True}
        )
        self._lock = threading.Lock()
        self._tables = None

    def __call__(self, images: tf.Tensor, mask: tf.Tensor | None, *, xla: bool = True, **tensors) -> tf.Tensor:
        """Call the compiled (or, with `xla=False`, the uncompiled) function.

        The functions are traced for the shapes as the caller knows them: a
        graph's symbolic shape (e.g. `(None, 512, 512, 1)` in a Keras step),
        an eager tensor's exact shape. The kernels take faster paths for sizes
        known when tracing, and XLA compiles one executable per shape anyway.
        """
        return (self._xla if xla else self._uncompiled)(images, mask, **tensors)

    def tables(self) -> tuple[tf.lookup.experimental.MutableHashTable, tf.lookup.experimental.MutableHashTable]:
        """`(counted, compiled)`: shape key -> values run uncompiled so far, and the keys that are compiled."""
        with self._lock:
            if self._tables is None:
                # Created once, eagerly, on the host, even when first needed while tracing.
                with tf.init_scope(), tf.device("/cpu:0"):
                    self._tables = tuple(
                        tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=0) for _ in range(2)
                    )
            return self._tables


@functools.lru_cache(maxsize=64)
def _shared(function: Callable, frozen_options: tuple, output_dtype: str | None) -> _Compiled:
    return _Compiled(function, dict(frozen_options), output_dtype)


def _compiled_for(function: Callable, options: Mapping[str, Any], output_dtype: str | None) -> _Compiled:
    try:
        return _shared(function, tuple(sorted(options.items())), output_dtype)
    except TypeError:  # an unhashable option value: a configuration of its own
        return _Compiled(function, options, output_dtype)


def _cast(outputs: tf.Tensor, dtype: str | None) -> tf.Tensor:
    return outputs if dtype is None else tf.cast(outputs, dtype)


# The `tf.function`s in which Keras 3's TensorFlow trainer traces the steps of
# `fit`, `evaluate` and `predict` (and their `*_on_batch`), nested as it runs them.
_KERAS_STEP_FUNCTIONS = frozenset(
    {"one_step_on_data", "one_step_on_data_distributed", "multi_step_on_data", "multi_step_on_iterator"}
)


def in_keras_step() -> bool:
    """Whether the graph being traced (if any) is a step of Keras's `fit`, `evaluate` or `predict`.

    Those graphs run, and are never exported; any other graph may be (by
    `model.export`, the TensorFlow Lite converter, tf2onnx). A graph is a
    step when it, or a graph it is nested in, is one of the `tf.function`s
    Keras's trainer traces its steps in. Should a later Keras rename them,
    the layers keep the plain op there: slower, never wrong.
    """
    if tf.executing_eagerly():
        return False
    graph = tf.compat.v1.get_default_graph()
    while graph is not None:
        if getattr(graph, "name", None) in _KERAS_STEP_FUNCTIONS:
            return True
        graph = getattr(graph, "outer_graph", None)
    return False


def in_xla_context() -> bool:
    """Whether the graph being traced (if any) is compiled by XLA as a whole."""
    return not tf.executing_eagerly() and _compat.graph_in_xla_context(tf.compat.v1.get_default_graph())


class JitRunner:
    """Call `function(images, mask=mask, **options)`, XLA-compiled as `jit_compile` says.

    One object per layer or map function; those with the same function,
    options and output dtype share the compiled function and its call counts.

    Args:
        function: The op, e.g. `tf_histeq.clahe`.
        options: Its keyword arguments (validated), the same for every call.
        jit_compile: `"auto"`, True or False (see the module docstring).
        output_dtype: Cast the result to this dtype (inside the compiled
            function, where the cast fuses with the op's last pass).
    """

    def __init__(
        self,
        function: Callable,
        options: Mapping[str, Any],
        jit_compile: str | bool = JIT_COMPILE,
        output_dtype: str | None = None,
    ):
        self.function = function
        self.options = dict(options)
        self.jit_compile = check_jit_compile(jit_compile)
        self.output_dtype = output_dtype
        self._compiled = None
        if self.jit_compile is not False:
            self._compiled = _compiled_for(function, self.options, output_dtype)

    def __reduce__(self):
        # Copies and pickles rebuild the object, and find the shared state again.
        return type(self), (self.function, self.options, self.jit_compile, self.output_dtype)

    def __call__(self, images, mask=None, *, graphs: bool = True, **tensors):
        """Return `function(images, mask=mask, **options, **tensors)`.

        Args:
            images: The images.
            mask: The optional mask.
            graphs: Whether `"auto"` may compile in a traced graph; with False
                only eager calls are compiled.
            **tensors: Further per-call tensor arguments of `function` (their
                shapes must not change from call to call: they are not counted).
        """
        if self._compiled is None or in_xla_context():
            return self._plain(images, mask, tensors)
        converted = _as_tensors(images, mask)
        if converted is None:  # not an array: the op converts it, or says what is wrong
            return self._plain(images, mask, tensors)
        images, mask = converted
        if self.jit_compile is True:
            return self._compiled(images, mask, **tensors)
        if tf.executing_eagerly():
            return self._counted(images, mask, tensors)
        if not graphs:
            return self._plain(images, mask, tensors)
        if _sizes_known(images, mask):  # the graph runs one image size, repeatedly: compiled from the start
            return self._compiled(images, mask, **tensors)
        return self._counted(images, mask, tensors)

    def _plain(self, images, mask, tensors):
        return _cast(self.function(images, mask=mask, **self.options, **tensors), self.output_dtype)

    def _counted(self, images: tf.Tensor, mask: tf.Tensor | None, tensors: dict):
        """Run the compiled op if this shape has earned it; otherwise run the uncompiled op and count its values."""
        counted, compiled = self._compiled.tables()
        key = _shape_key(images, mask)
        done = counted.lookup(key)  # values of this shape run uncompiled so far
        use_xla = tf.logical_or(
            compiled.lookup(key) > 0,
            tf.logical_and(done >= COMPILE_AFTER_VALUES, compiled.size() < MAX_COMPILED_SHAPES),
        )

        def run_compiled():
            with tf.control_dependencies([compiled.insert(key, tf.constant(1, tf.int64))]):
                return self._compiled(images, mask, **tensors)

        def run_uncompiled():
            # Count a batch of one key, or of none once the table is full of other shapes.
            room = tf.cast(tf.logical_or(done > 0, counted.size() < _MAX_COUNTED_SHAPES), tf.int32)
            total = done + tf.size(images, out_type=tf.int64)
            with tf.control_dependencies([counted.insert(tf.reshape(key, [1])[:room], tf.reshape(total, [1])[:room])]):
                if tf.executing_eagerly():
                    return self._plain(images, mask, tensors)
                return self._compiled(images, mask, xla=False, **tensors)

        if tf.executing_eagerly():
            return run_compiled() if bool(use_xla) else run_uncompiled()
        return tf.cond(use_xla, run_compiled, run_uncompiled)


def _as_tensors(images, mask) -> tuple[tf.Tensor, tf.Tensor | None] | None:
    """`images` and `mask` as tensors, or None if either is neither a tensor nor a numeric array."""
    out = []
    for value in (images, mask):
        if value is None or tf.is_tensor(value):
            out.append(value)
        elif isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            out.append(tf.convert_to_tensor(value))
        else:
            return None
    return out[0], out[1]


def _sizes_known(images: tf.Tensor, mask: tf.Tensor | None) -> bool:
    """Whether every size but a batch's is static: a traced graph then runs one image size."""
    parts = [images] if mask is None else [images, mask]
    return all(t.shape.rank is not None and t.shape[1 if t.shape.rank == 4 else 0 :].is_fully_defined() for t in parts)


def _shape_key(images: tf.Tensor, mask: tf.Tensor | None) -> tf.Tensor:
    """A string naming the dtypes and shapes of `images` and `mask`: what XLA compiles one executable for."""
    parts = [t for t in (images, mask) if t is not None]
    if all(t.shape.is_fully_defined() for t in parts):
        return tf.constant("".join(f"{t.dtype.name} {','.join(map(str, t.shape.as_list()))};" for t in parts))
    pieces = []
    for t in parts:
        pieces += [f"{t.dtype.name} ", tf.strings.reduce_join(tf.strings.as_string(tf.shape(t)), separator=","), ";"]
    return tf.strings.join(pieces)
