"""One runner decides XLA compilation for every way into tf_histeq.

The ops called eagerly (`tf_histeq.clahe(image)`), the layers, the map
functions of `tf_histeq.data` (`map_fn`, `random_map_fn`), the NumPy functions
(`histogram_equalization`, `preprocessing_function`) and the command line all
take `jit_compile="auto"|True|False` (checked by `check_jit_compile`) and run
their op through `JitRunner`, so the same input gets the same decision
whichever way it came in. The compiled functions and their call counts live in
one registry, per configuration (the function, its options and the output
dtype), shared by every caller with that configuration; `compiled_shapes`
reports what it holds and `clear_compiled` empties it (both exported at the
top level, as `tf_histeq.compiled_shapes` and `tf_histeq.clear_compiled`).
The registry keeps the `_REGISTRY_SIZE` most recently used configurations.

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
  `COMPILE_AFTER_VALUES` values (pixels x channels) of it have run uncompiled,
  an eager call counting as at least `EAGER_CALL_VALUES` values (its fixed
  cost, dispatching the op's many small TensorFlow ops one by one, is that of
  a large image in a graph): a large image compiles from its second call, a
  small one after `COMPILE_AFTER_VALUES // EAGER_CALL_VALUES` eager calls; a
  one-off call never waits for the compiler;
- at most `MAX_COMPILED_SHAPES` shapes are compiled per configuration; later
  shapes, as in data of many sizes, run the uncompiled op. Calls that meet new
  shapes at the same moment (a parallel `tf.data` map) can each pass the check
  before any records its shape, so the bound can be exceeded by the number of
  such concurrent calls;
- a caller that knows ahead how often each shape will come (the command line,
  from the file headers) asks `JitRunner.plan`: a shape that the counting would
  compile before its last call is compiled from its first;
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
- the ops called inside a caller's own `tf.function` or graph stay the plain
  ops (only their eager calls are routed here, by `eager_door`), and callers
  that pass `graphs=False` keep the plain op in traced graphs. The layers do
  so outside the steps of Keras's `fit`, `evaluate` and `predict`
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

import collections
import functools
import inspect
import threading
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from tf_histeq import _compat, _options
from tf_histeq._options import fail

JIT_COMPILE = _options.JIT_COMPILE
MAX_COMPILED_SHAPES = 8
# A shape is compiled once this many values (pixels x channels) of it have run uncompiled.
COMPILE_AFTER_VALUES = 2**20
# An eager call counts as at least this many values (its fixed cost): a small image compiles after
# COMPILE_AFTER_VALUES // EAGER_CALL_VALUES eager calls.
EAGER_CALL_VALUES = 2**14
# Values are counted for this many distinct shapes; shapes seen after that are never compiled.
_MAX_COUNTED_SHAPES = 1024
# The registry keeps this many configurations (the most recently used).
_REGISTRY_SIZE = 64


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
        self.function, self.options, self.output_dtype = function, options, output_dtype
        self.traced: set[str] = set()  # the image sizes the compiled function was traced for
        self.planned: set[str] = set()  # the shapes `JitRunner.plan` chose to compile

        def compiled(images, mask, **tensors):
            if _sizes_known(images, mask):  # else the counting table records the shapes that run compiled
                self.traced.add(_static_key(images, mask))
            return _cast(function(images, mask=mask, **options, **tensors), output_dtype)

        def uncompiled(images, mask, **tensors):
            return _cast(function(images, mask=mask, **options, **tensors), output_dtype)

        name = getattr(function, "__name__", type(function).__name__)
        compiled.__name__, uncompiled.__name__ = f"{name}_xla", name
        self._xla = tf.function(compiled, jit_compile=True, autograph=False)
        # The uncompiled op as a function call that is not inlined: each new
        # `tf.data` iterator instantiates its map function again, and the
        # fallback branch of `JitRunner`'s `tf.cond` costs less to instantiate
        # as a call than as the op's whole graph next to its compiled twin.
        self._uncompiled = tf.function(
            uncompiled, jit_compile=False, autograph=False, experimental_attributes={"_noinline": True}
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

    def report(self) -> CompiledShapes:
        """What this configuration has compiled and counted so far."""
        compiled, counted = set(self.traced | self.planned), {}
        if self._tables is not None:
            with tf.init_scope():
                keys, values = self._tables[0].export()
                counted = {k.decode(): int(v) for k, v in zip(keys.numpy(), values.numpy(), strict=True)}
                compiled |= {k.decode() for k in self._tables[1].export()[0].numpy()}
        return CompiledShapes(
            getattr(self.function, "__name__", type(self.function).__name__),
            dict(self.options),
            self.output_dtype,
            tuple(sorted(compiled)),
            counted,
        )


class CompiledShapes(NamedTuple):
    """What the runner holds for one configuration: see `tf_histeq.compiled_shapes`."""

    function: str  # the op's name (or the function's, e.g. `transform` for the random augmentations)
    options: dict  # its keyword arguments
    output_dtype: str | None  # the dtype the result is cast to (the layers' compute dtype), or None
    compiled: tuple[str, ...]  # the shapes compiled: "dtype d0,d1,...;" of the images (and mask)
    counted: dict[str, int]  # values run uncompiled so far, per shape (`jit_compile="auto"`)


_registry: collections.OrderedDict[tuple, _Compiled] = collections.OrderedDict()
_registry_lock = threading.Lock()


def _freeze(value):
    """`value` with lists and arrays as tuples, so that equal options make equal keys."""
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    return value


def _key(function: Callable, options: Mapping[str, Any], output_dtype: str | None) -> tuple | None:
    """The registry key of a configuration, or None if an option is not hashable."""
    key = (function, _freeze(options), output_dtype)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _registered(key: tuple, function: Callable, options: Mapping[str, Any], output_dtype: str | None) -> _Compiled:
    """The registry's `_Compiled` for `key`, created on first use."""
    with _registry_lock:
        compiled = _registry.get(key)
        if compiled is None:
            compiled = _registry[key] = _Compiled(function, options, output_dtype)
            while len(_registry) > _REGISTRY_SIZE:
                _registry.popitem(last=False)
        else:
            _registry.move_to_end(key)
        return compiled


def clear_compiled() -> None:
    """Forget every compiled function and call count of tf_histeq's runner (see `tf_histeq.compiled_shapes`).

    Later calls start again: compiled anew where `jit_compile` says so, counted
    from zero under `"auto"`. Graphs traced before (a `tf.data` pipeline, a
    Keras step) keep the functions they hold. Use it to free the memory of the
    compiled executables, or to measure a first call again.

    Example:
        >>> import numpy as np
        >>> import tf_histeq
        >>> tf_histeq.clear_compiled()  # what other calls in this process compiled
        >>> _ = tf_histeq.clahe(np.zeros((16, 16), np.uint8), jit_compile=True)
        >>> [entry.compiled for entry in tf_histeq.compiled_shapes()]
        [('uint8 16,16;',)]
        >>> tf_histeq.clear_compiled()
        >>> tf_histeq.compiled_shapes()
        []
    """
    with _registry_lock:
        _registry.clear()


def compiled_shapes() -> list[CompiledShapes]:
    """Report, per configuration, the shapes tf_histeq's runner has compiled with XLA and those it counts.

    Every way in (the ops called eagerly, the layers, `tf_histeq.data`'s map
    functions, the NumPy functions, the command line) runs its op through one
    runner, whose decisions this reports (`jit_compile` in
    `tf_histeq.clahe` says how it decides). A configuration is the op with
    its options and output dtype; its entry lists the shapes compiled (a
    shape traced in a graph with an unknown size, such as a batch of any
    length, shows `None` there) and, under `jit_compile="auto"`, the values
    run uncompiled per shape so far. `tf_histeq.clear_compiled` empties it.

    Returns:
        A list of `CompiledShapes(function, options, output_dtype, compiled,
        counted)` named tuples, least recently used first.
    """
    with _registry_lock:
        entries = list(_registry.values())
    return [entry.report() for entry in entries]


def _cast(outputs: tf.Tensor, dtype: str | None) -> tf.Tensor:
    return outputs if dtype is None else tf.cast(outputs, dtype)


# The `tf.function`s in which Keras 3's TensorFlow trainer traces the steps of
# `fit`, `evaluate` and `predict` (and their `*_on_batch`), nested as it runs them,
# and those of tf_keras (Keras 2), for the layers of `tf_histeq.keras2`.
_KERAS_STEP_FUNCTIONS = frozenset(
    {"one_step_on_data", "one_step_on_data_distributed", "multi_step_on_data", "multi_step_on_iterator"}
    | {"train_function", "test_function", "predict_function"}
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

    One object per layer, map function or call; those with the same function,
    options and output dtype share the compiled function and its call counts
    (the registry of `compiled_shapes`).

    Args:
        function: The op, e.g. `tf_histeq.clahe` (its eager door is skipped:
            the runner calls the op itself), or another function of
            `(images, mask=None, **options)`.
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
        self._given = function  # for copies and pickles: the op's public name (its door) pickles by reference
        self.function = getattr(function, "_xla_plain_op", function)
        self.options = dict(options)
        self.jit_compile = check_jit_compile(jit_compile)
        self.output_dtype = output_dtype
        self._key = _key(self.function, self.options, output_dtype)
        self._own = None  # a configuration with unhashable options: not shared, not registered
        if self._key is None and self.jit_compile is not False:
            self._own = _Compiled(self.function, self.options, output_dtype)

    def __reduce__(self):
        # Copies and pickles rebuild the object, and find the shared state again.
        return type(self), (self._given, self.options, self.jit_compile, self.output_dtype)

    @property
    def _compiled(self) -> _Compiled | None:
        """The configuration's compiled function and counts (looked up at each call: `clear_compiled` resets it)."""
        if self.jit_compile is False:
            return None
        if self._key is None:
            return self._own
        return _registered(self._key, self.function, self.options, self.output_dtype)

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
        if self.jit_compile is False or in_xla_context():
            return self._plain(images, mask, tensors)
        converted = _as_tensors(images, mask)
        if converted is None:  # not an array: the op converts it, or says what is wrong
            return self._plain(images, mask, tensors)
        images, mask = converted
        compiled = self._compiled
        if self.jit_compile is True:
            return compiled(images, mask, **tensors)
        if tf.executing_eagerly():
            return self._counted(compiled, images, mask, tensors)
        if not graphs:
            return self._plain(images, mask, tensors)
        if _sizes_known(images, mask):  # the graph runs one image size, repeatedly: compiled from the start
            return compiled(images, mask, **tensors)
        return self._counted(compiled, images, mask, tensors)

    def run(self, images, mask=None, *, xla: bool, **tensors):
        """Call the compiled function (`xla=True`) or the plain op, as a caller decided with `plan`."""
        if xla and self.jit_compile is not False and not in_xla_context():
            return self._compiled(images, mask, **tensors)
        return self._plain(images, mask, tensors)

    def plan(self, shapes: Mapping[Hashable, tuple[str, tuple[int, ...], int]]) -> set:
        """Decide ahead which shapes run compiled, for a caller that knows how often each will come.

        `"auto"` compiles a shape that its counting would compile before its
        last call (its values times its calls but one reach
        `COMPILE_AFTER_VALUES`), from its first call on, for at most
        `MAX_COMPILED_SHAPES` shapes (those of the most values); True compiles
        them all, False none. The chosen shapes show in `compiled_shapes`.

        Args:
            shapes: For each of the caller's keys, `(dtype, shape, calls)`:
                the images' dtype name and shape, and how many calls will
                have them.

        Returns:
            The keys of the shapes to run compiled (with `run(..., xla=True)`).
        """
        chosen = plan(shapes, self.jit_compile)
        if chosen:
            self._compiled.planned.update(f"{shapes[key][0]} {','.join(map(str, shapes[key][1]))};" for key in chosen)
        return chosen

    def _plain(self, images, mask, tensors):
        return _cast(self.function(images, mask=mask, **self.options, **tensors), self.output_dtype)

    def _counted(self, state: _Compiled, images: tf.Tensor, mask: tf.Tensor | None, tensors: dict):
        """Run the compiled op if this shape has earned it; otherwise run the uncompiled op and count its values."""
        counted, compiled = state.tables()
        key = _shape_key(images, mask)
        done = counted.lookup(key)  # values of this shape run uncompiled so far
        use_xla = tf.logical_or(
            compiled.lookup(key) > 0,
            tf.logical_and(done >= COMPILE_AFTER_VALUES, compiled.size() < MAX_COMPILED_SHAPES),
        )
        eager = tf.executing_eagerly()

        def run_compiled():
            with tf.control_dependencies([compiled.insert(key, tf.constant(1, tf.int64))]):
                return state(images, mask, **tensors)

        def run_uncompiled():
            # Count a batch of one key, or of none once the table is full of other shapes.
            room = tf.cast(tf.logical_or(done > 0, counted.size() < _MAX_COUNTED_SHAPES), tf.int32)
            values = tf.size(images, out_type=tf.int64)
            total = done + (tf.maximum(values, EAGER_CALL_VALUES) if eager else values)
            with tf.control_dependencies([counted.insert(tf.reshape(key, [1])[:room], tf.reshape(total, [1])[:room])]):
                if eager:
                    return self._plain(images, mask, tensors)
                return state(images, mask, xla=False, **tensors)

        if eager:
            return run_compiled() if bool(use_xla) else run_uncompiled()
        return tf.cond(use_xla, run_compiled, run_uncompiled)


def plan(shapes: Mapping[Hashable, tuple[str, tuple[int, ...], int]], jit_compile: str | bool) -> set:
    """The decision of `JitRunner.plan`, without recording it (for a caller that only orders its work)."""
    jit_compile = check_jit_compile(jit_compile)
    if jit_compile is False:
        return set()
    if jit_compile is True:
        return set(shapes)
    totals = {key: int(np.prod(shape)) * (calls - 1) for key, (_, shape, calls) in shapes.items()}
    ranked = sorted((key for key in shapes if totals[key] >= COMPILE_AFTER_VALUES), key=lambda k: -totals[k])
    return set(ranked[:MAX_COMPILED_SHAPES])


# Arguments that the ops read when traced (to count and check them), so they configure the compiled
# function, keyed by their values, instead of reaching it as tensors.
_READ_WHEN_TRACED = ("reference", "reference_mask")


def eager_door(op: Callable) -> Callable:
    """Route the eager calls of a public op through `JitRunner`, as its `jit_compile` keyword says.

    The decorated op keeps its signature (`jit_compile` is its last keyword);
    traced calls (in a caller's `tf.function` or graph) and calls with
    `jit_compile=False` run the op itself. Tensor and array arguments other
    than the images and mask (a per-image `clip_limit`) are passed to the
    compiled function per call; the others configure it, `match_histograms`'s
    reference included (read and checked when the function is traced, as in
    an eager call; a reference of the same values reuses the function).
    """
    signature = inspect.signature(op)

    @functools.wraps(op)
    def door(images, *args, jit_compile=JIT_COMPILE, **kwargs):
        jit_compile = check_jit_compile(jit_compile)
        if jit_compile is False or not tf.executing_eagerly():
            return op(images, *args, **kwargs)
        try:
            arguments = signature.bind(images, *args, **kwargs).arguments
        except TypeError:  # Python says what is wrong with the call
            return op(images, *args, **kwargs)
        arguments.pop("images")
        mask = arguments.pop("mask", None)
        read = {k: _host(arguments.pop(k)) for k in _READ_WHEN_TRACED if k in arguments}
        tensors = {k: v for k, v in arguments.items() if tf.is_tensor(v) or isinstance(v, np.ndarray)}
        options = {k: v for k, v in arguments.items() if k not in tensors}
        try:  # the defaults filled in and equal values spelled alike, as the other ways in spell them
            options = _options.resolve(op.__name__, options, exclude=(*tensors, *read, "jit_compile"))
        except (TypeError, ValueError):  # the op says what is wrong, in its own words
            return op(images, *args, **kwargs)
        return JitRunner(op, {**options, **read}, jit_compile)(images, mask, **tensors)

    door._xla_plain_op = op  # what `JitRunner` calls: the op without its door
    return door


def _host(value):
    """An eager tensor as a NumPy array (a value known when tracing, as in an eager call); others as they are."""
    return value.numpy() if tf.is_tensor(value) and hasattr(value, "numpy") else value


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


def _static_key(images: tf.Tensor, mask: tf.Tensor | None) -> str:
    """`_shape_key` as a Python string, with `None` for the sizes not known when tracing."""
    parts = [t for t in (images, mask) if t is not None]
    return "".join(
        f"{t.dtype.name} {'?' if t.shape.rank is None else ','.join(map(str, t.shape.as_list()))};" for t in parts
    )


def _shape_key(images: tf.Tensor, mask: tf.Tensor | None) -> tf.Tensor:
    """A string naming the dtypes and shapes of `images` and `mask`: what XLA compiles one executable for."""
    parts = [t for t in (images, mask) if t is not None]
    if all(t.shape.is_fully_defined() for t in parts):
        return tf.constant("".join(f"{t.dtype.name} {','.join(map(str, t.shape.as_list()))};" for t in parts))
    pieces = []
    for t in parts:
        pieces += [f"{t.dtype.name} ", tf.strings.reduce_join(tf.strings.as_string(tf.shape(t)), separator=","), ";"]
    return tf.strings.join(pieces)
