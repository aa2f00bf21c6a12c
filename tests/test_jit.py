"""XLA where it pays: the `jit_compile` option of the layers and of `tf_histeq.data.map_fn`.

What is checked, and how:

- XLA is really used: the traced graphs call a function marked
  `_XlaMustCompile` (read from the graph, not guessed from timings), the
  counting tables record the compiled shapes, and a subprocess run with XLA's
  own dump (`--xla_dump_to`) shows one compiled module per compiled shape.
- The policy: small and one-off calls stay uncompiled, a shape compiles once
  enough of its values ran uncompiled, at most `MAX_COMPILED_SHAPES` shapes
  compile, a graph that XLA compiles anyway gets the plain op, and graphs traced
  outside Keras's loops (`model.export`) hold neither an XLA call nor a table.
- Results are bit-identical (0 differing pixels) compiled and uncompiled.

Compiling takes about a second per shape, so the tests lower the threshold
(`COMPILE_AFTER_VALUES = 1`) and use small images and few shapes.
"""

from __future__ import annotations

import copy
import os
import pickle
import re
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests import _images
from tests._references import assert_same_pixels
from tests._subprocess import python_env, run_npz_script
from tf_histeq import _options, _xla
from tf_histeq.data import map_fn
from tf_histeq.layers import CLAHE, HistogramEqualization, HistogramMatching

TABLE_OPS = {"LookupTableFindV2", "LookupTableInsertV2", "LookupTableSizeV2", "MutableHashTableV2"}


def images(n: int = 2, shape=(24, 20, 1), dtype=np.uint8) -> np.ndarray:
    makers = [_images.xray(), _images.beta(2, 5), _images.band(0.4, 0.55)]
    if np.dtype(dtype).kind == "f":  # values in [0, 1], a NaN in the first image
        x = images(n, shape) / np.float32(255)
        x[0, 0, :3, 0] = np.nan
        return x.astype(dtype)
    return np.stack([makers[i % len(makers)](shape, dtype) for i in range(n)])


@pytest.fixture
def eager_compiles(monkeypatch):
    """Compile from the second call of any shape, with fresh shared state (no counts from other tests)."""
    monkeypatch.setattr(_xla, "COMPILE_AFTER_VALUES", 1)
    tf_histeq.clear_compiled()
    yield
    tf_histeq.clear_compiled()


def compiled_keys(runner: _xla.JitRunner) -> list[str]:
    keys, _ = runner._compiled.tables()[1].export()
    return sorted(k.decode() for k in keys.numpy())


def graph_facts(concrete) -> dict:
    """What a traced graph holds: XLA-marked functions, op types, and the ops placed explicitly."""
    graph_def = concrete.graph.as_graph_def()
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    return {
        "xla": sorted(f.signature.name for f in graph_def.library.function if f.attr["_XlaMustCompile"].b),
        "ops": {n.op for n in nodes},
        "pinned": {(n.op, n.device) for n in nodes if n.device},
    }


class TestOption:
    @pytest.mark.parametrize(
        ("value", "error"),
        [("yes", ValueError), (1, TypeError), (None, TypeError)],
        ids=["string", "int", "none"],
    )
    def test_bad_values_raise_with_one_message(self, value, error):
        match = (
            r"`jit_compile` must be 'auto' \(compile with XLA the shapes that repeat\), True \(compile every call\) "
            rf"or False \(never compile\). Received: jit_compile={re.escape(repr(value))}."
        )
        for make in (HistogramEqualization, CLAHE, lambda **kw: map_fn("clahe", **kw)):
            with pytest.raises(error, match=match):
                make(jit_compile=value)

    @pytest.mark.parametrize("value", ["auto", True, False, np.bool_(False)])
    def test_config_round_trip(self, value):
        layer = CLAHE(tile_grid_size=(2, 3), jit_compile=value)
        config = layer.get_config()
        assert config["jit_compile"] == value and type(config["jit_compile"]) in (str, bool)
        clone = CLAHE.from_config(config)
        assert clone.jit_compile == value and clone.get_config() == config

    def test_keras_file_keeps_the_option(self, tmp_path):
        x = images(2)
        inputs = keras.Input((None, None, 1), dtype="uint8")
        model = keras.Model(inputs, HistogramEqualization(jit_compile=False)(inputs))
        model.save(tmp_path / "m.keras")
        loaded = keras.models.load_model(tmp_path / "m.keras")
        assert loaded.layers[-1].jit_compile is False
        assert_same_pixels(loaded.predict(x, verbose=0), tf_histeq.equalize_hist(x).numpy().astype(np.float32))

    def test_copies_and_pickles_share_the_compiled_function(self):
        runner = _xla.JitRunner(tf_histeq.clahe, {"clip_limit": 3.0}, "auto", "float32")
        for clone in (copy.deepcopy(runner), pickle.loads(pickle.dumps(runner))):
            assert clone._compiled is runner._compiled
        assert copy.deepcopy(CLAHE(jit_compile=True)).jit_compile is True


class TestPolicy:
    def test_small_calls_never_compile(self):
        layer = HistogramEqualization(method="pil")  # a configuration no other test uses
        x = images(2)
        for _ in range(3):
            assert_same_pixels(layer(x).numpy(), tf_histeq.equalize_hist(x, method="pil").numpy().astype(np.float32))
        counted, compiled = layer._runner._compiled.tables()
        assert compiled.size().numpy() == 0
        # An eager call counts as at least EAGER_CALL_VALUES values (its fixed cost).
        assert counted.lookup(tf.constant("uint8 2,24,20,1;")).numpy() == 3 * max(x.size, _xla.EAGER_CALL_VALUES)

    def test_eager_calls_compile_from_the_second_and_stay_exact(self, eager_compiles):
        layer = CLAHE(tile_grid_size=(2, 3))
        x = images(2)
        expected = tf_histeq.clahe(x, tile_grid_size=(2, 3)).numpy().astype(np.float32)
        assert_same_pixels(layer(x).numpy(), expected, "first call (uncompiled):")
        assert compiled_keys(layer._runner) == []
        assert_same_pixels(layer(x).numpy(), expected, "second call (compiled):")
        assert compiled_keys(layer._runner) == ["uint8 2,24,20,1;"]

    def test_at_most_max_shapes_compile_and_the_rest_run_uncompiled(self, eager_compiles, monkeypatch):
        monkeypatch.setattr(_xla, "MAX_COMPILED_SHAPES", 2)
        layer = HistogramEqualization()
        for width in (20, 21, 22):
            x = images(1, shape=(16, width, 1))
            for _ in range(2):
                assert_same_pixels(layer(x).numpy(), tf_histeq.equalize_hist(x).numpy().astype(np.float32))
        assert compiled_keys(layer._runner) == ["uint8 1,16,20,1;", "uint8 1,16,21,1;"]

    def test_layers_and_map_functions_with_one_configuration_share_the_compiled_function(self):
        assert CLAHE()._runner._compiled is CLAHE()._runner._compiled
        assert CLAHE()._runner._compiled is not CLAHE(dtype="float16")._runner._compiled  # another output dtype
        assert CLAHE()._runner._compiled is not CLAHE(clip_limit=3.0)._runner._compiled

    def test_per_call_tensor_arguments_reach_both_paths(self, eager_compiles):
        """Layers with per-call parameters (random augmentation) pass them as tensors, compiled or not."""

        def scale(images, mask=None, *, offset, factor):
            return tf.cast(images, tf.float32) * factor + offset

        runner = _xla.JitRunner(scale, {"offset": 1.0})
        x = images(2)
        for factor in (2.0, 3.0):  # the second call runs compiled, with the new factor
            out = runner(tf.constant(x), factor=tf.constant(factor))
            assert_same_pixels(out.numpy(), x.astype(np.float32) * factor + 1)
        assert compiled_keys(runner) == ["uint8 2,24,20,1;"]

    @pytest.mark.parametrize(
        ("layer", "function", "kwargs", "dtype", "shape"),
        [
            (HistogramEqualization, tf_histeq.equalize_hist, {"channels": "luminance"}, np.uint8, (24, 20, 3)),
            (CLAHE, tf_histeq.clahe, {"tile_grid_size": (3, 2)}, np.uint16, (24, 20, 1)),
            (CLAHE, tf_histeq.clahe, {"value_range": (0, 1), "bins": 64}, np.float32, (24, 20, 2)),
        ],
        ids=["he-uint8-luma", "clahe-uint16", "clahe-float-alpha"],
    )
    def test_compiled_layer_is_exact(self, layer, function, kwargs, dtype, shape):
        x = images(2, shape, dtype)
        out = layer(jit_compile=True, **kwargs)(x).numpy()
        assert_same_pixels(out, function(x, **kwargs).numpy().astype(np.float32))

    @pytest.mark.parametrize(
        ("layer", "function"), [(HistogramEqualization, tf_histeq.equalize_hist), (CLAHE, tf_histeq.clahe)]
    )
    def test_compiled_layer_with_a_mask_is_exact(self, layer, function):
        x = images(2)
        mask = _images.xray_mask(x.shape[1:3])
        out = layer(jit_compile=True)(x, mask=tf.constant(mask)).numpy()
        assert_same_pixels(out, function(x, mask=mask).numpy().astype(np.float32))


def predict_step(model: keras.Model, spec: tf.TensorSpec):
    """The graph of Keras's own predict step for a batch of `spec`, as `predict_on_batch` traces it."""
    model.make_predict_function()
    return model.predict_function.get_concrete_function([(spec,)])


class TestGraphs:
    def test_keras_loops_trace_the_counted_xla_call_without_device_pins_or_host_calls(self):
        spec = tf.TensorSpec((None, None, None, 1), tf.uint8)
        inputs = keras.Input(spec.shape[1:], dtype="uint8")
        facts = graph_facts(predict_step(keras.Model(inputs, CLAHE()(inputs)), spec))
        assert len(facts["xla"]) == 1 and "clahe_xla" in facts["xla"][0]
        assert {"If", "LookupTableFindV2"} <= facts["ops"]
        assert not facts["ops"] & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}  # no host round trip
        # Only the counting tables (and their handles) live on the host; the op and the XLA call are not
        # pinned, so the placer puts them on the GPU when there is one.
        assert {op for op, _ in facts["pinned"]} <= TABLE_OPS | {"Placeholder", "Const"}
        assert {device.rsplit(":", 2)[-2:] == ["CPU", "0"] for _, device in facts["pinned"]} == {True}

    @pytest.mark.parametrize("training", [None, False, True], ids=lambda t: f"training={t}")
    def test_graphs_traced_outside_keras_loops_hold_the_plain_op(self, training):
        """`model.export` passes no `training`, TFLiteConverter.from_keras_model `False`: neither is a Keras step."""
        spec = tf.TensorSpec((None, None, None, 1), tf.uint8)
        layer = CLAHE()
        facts = graph_facts(tf.function(lambda x: layer(x, training=training)).get_concrete_function(spec))
        assert facts["xla"] == [] and not facts["ops"] & TABLE_OPS

    def test_inside_an_xla_graph_the_op_is_left_to_the_outer_compilation(self):
        layer = HistogramEqualization(jit_compile=True)
        x = images(2)
        compiled = tf.function(lambda t: layer(t, training=False), jit_compile=True)
        facts = graph_facts(compiled.get_concrete_function(tf.TensorSpec(x.shape, tf.uint8)))
        assert facts["xla"] == [] and not facts["ops"] & TABLE_OPS
        assert_same_pixels(compiled(x).numpy(), tf_histeq.equalize_hist(x).numpy().astype(np.float32))

    def test_jit_compile_false_never_compiles(self):
        spec = tf.TensorSpec((None, None, None, 1), tf.uint8)
        layer = CLAHE(jit_compile=False)
        facts = graph_facts(tf.function(lambda x: layer(x, training=True)).get_concrete_function(spec))
        assert facts["xla"] == [] and not facts["ops"] & TABLE_OPS
        assert layer._runner._compiled is None


@pytest.fixture
def xla_calls(monkeypatch) -> list:
    """`(xla, static shape)` of every call of a compiled (or uncompiled) function that a graph traces."""
    calls = []
    original = _xla._Compiled.__call__

    def spy(self, images, mask, *, xla=True, **tensors):
        calls.append((xla, tuple(images.shape)))
        return original(self, images, mask, xla=xla, **tensors)

    monkeypatch.setattr(_xla._Compiled, "__call__", spy)
    return calls


class TestWaysIn:
    def test_predict_fit_evaluate_trace_the_compiled_op_and_stay_exact(self, xla_calls):
        x = images(4, shape=(16, 16, 1))
        expected = tf_histeq.clahe(x, tile_grid_size=(2, 2)).numpy().astype(np.float32)
        inputs = keras.Input((None, None, 1), dtype="uint8")
        equalize = CLAHE(tile_grid_size=(2, 2))
        equalized = equalize(inputs)
        outputs = keras.layers.Dense(1)(
            keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(equalized))
        )
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="sgd", loss="mse", jit_compile=False)  # the graph around the layer is not XLA
        probe = keras.Model(inputs, equalized)
        for _ in range(2):
            assert_same_pixels(probe.predict_on_batch(x), expected)
        # Keras traces its steps for the batches it gets: their sizes are static, so the step calls the
        # compiled op directly (no counting), even though the model accepts any size.
        assert xla_calls == [(True, (4, 16, 16, 1))]
        history = model.fit(x, np.arange(4, dtype=np.float32), batch_size=2, epochs=2, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
        assert np.isfinite(model.evaluate(x, np.arange(4, dtype=np.float32), batch_size=4, verbose=0))
        assert {call for call in xla_calls if call[1][0] == 2} == {(True, (2, 16, 16, 1))}
        assert all(xla for xla, _ in xla_calls)

    def test_histogram_matching_predict_runs_compiled_with_the_reference_it_holds_now(self, xla_calls, tmp_path):
        x, reference = images(3, shape=(16, 20, 1)), images(2, shape=(12, 10, 1))
        layer = HistogramMatching(reference=reference)
        inputs = keras.Input((16, 20, 1), dtype="uint8")
        probe = keras.Model(inputs, layer(inputs))
        expected = tf_histeq.match_histograms(x, reference).numpy().astype(np.float32)
        assert_same_pixels(probe.predict_on_batch(x), expected)
        assert xla_calls == [(True, (3, 16, 20, 1))]
        # The reference is a weight read at run time: a new one needs no new trace or compilation.
        layer.adapt(x)
        assert_same_pixels(probe.predict_on_batch(x), tf_histeq.match_histograms(x, x).numpy().astype(np.float32))
        assert xla_calls == [(True, (3, 16, 20, 1))]
        probe.save(tmp_path / "m.keras")
        reloaded = keras.models.load_model(tmp_path / "m.keras")
        assert reloaded.layers[-1].jit_compile == "auto"
        assert_same_pixels(reloaded.predict_on_batch(x), probe.predict_on_batch(x))

    def test_fixed_size_models_and_datasets_run_compiled_from_the_first_call(self):
        x = images(3, shape=(16, 20, 1))
        inputs = keras.Input((16, 20, 1), dtype="uint8")
        layer = HistogramEqualization(method="pil", channels="joint")  # a configuration no other test uses
        probe = keras.Model(inputs, layer(inputs))
        expected = tf_histeq.equalize_hist(x, method="pil", channels="joint").numpy().astype(np.float32)
        assert_same_pixels(probe.predict_on_batch(x), expected)
        facts = graph_facts(predict_step(probe, tf.TensorSpec((None, 16, 20, 1), tf.uint8)))
        assert len(facts["xla"]) == 1 and not facts["ops"] & (TABLE_OPS | {"If"})
        mapper = map_fn("clahe", tile_grid_size=(3, 3), clip_limit=3.5)
        ds = tf.data.Dataset.from_tensor_slices(x).map(mapper)
        facts = graph_facts(tf.function(mapper).get_concrete_function(ds.element_spec))
        assert len(facts["xla"]) == 1 and not facts["ops"] & (TABLE_OPS | {"If"})
        assert_same_pixels(
            np.stack(list(ds.as_numpy_iterator())), tf_histeq.clahe(x, tile_grid_size=(3, 3), clip_limit=3.5).numpy()
        )

    def test_map_fn_compiles_shapes_known_only_at_run_time(self, eager_compiles):
        x = images(3, shape=(20, 24, 1))
        ds = tf.data.Dataset.from_generator(lambda: iter(x), output_signature=tf.TensorSpec((None, None, 1), tf.uint8))
        out = list(ds.map(map_fn("clahe", tile_grid_size=(2, 2)), num_parallel_calls=1).as_numpy_iterator())
        assert_same_pixels(np.stack(out), tf_histeq.clahe(x, tile_grid_size=(2, 2)).numpy())
        # The state map_fn shares with every runner of its configuration (uint8 out: no cast).
        runner = _xla.JitRunner(
            tf_histeq.clahe, _options.resolve("clahe", {"tile_grid_size": (2, 2)}, exclude=("mask",))
        )
        assert compiled_keys(runner) == ["uint8 20,24,1;"]  # from the second image on

    def test_export_holds_neither_xla_nor_tables_and_serves_the_same_pixels(self, eager_compiles, tmp_path):
        x = images(2, shape=(16, 16, 1))
        inputs = keras.Input((16, 16, 1), dtype="uint8")
        layer = HistogramEqualization()
        model = keras.Model(inputs, layer(inputs))
        model.predict_on_batch(x)  # compiled for predict
        model.export(str(tmp_path / "served"), verbose=False)
        served = tf.saved_model.load(str(tmp_path / "served"))
        facts = graph_facts(served.signatures["serving_default"])
        assert facts["xla"] == [] and not facts["ops"] & TABLE_OPS
        assert_same_pixels(served.serve(tf.constant(x)).numpy(), model.predict_on_batch(x))


# --------------------------------------------------------------------------- XLA's own record, and MirroredStrategy

RUN_AND_DUMP = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    import tf_histeq
    from tf_histeq import _options, _xla
    from tf_histeq.data import map_fn
    from tf_histeq.layers import CLAHE

    _xla.COMPILE_AFTER_VALUES = 1
    _xla.MAX_COMPILED_SHAPES = 2
    x = np.load(sys.argv[1])["images"]
    out = {}

    # MirroredStrategy over two logical CPUs: predict (twice), then fit on the same batches.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        inputs = keras.Input(x.shape[1:], dtype="uint8")
        equalized = CLAHE(tile_grid_size=(2, 3))(inputs)
        probe = keras.Model(inputs, equalized)
        h = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(equalized))
        model = keras.Model(inputs, keras.layers.Dense(1)(h))
        model.compile(optimizer="sgd", loss="mse", jit_compile=False)
    out["predict"] = [probe.predict(x, batch_size=4, verbose=0) for _ in range(2)][1]
    y = np.linspace(0, 1, len(x), dtype="float32")
    out["loss"] = np.array(model.fit(x, y, batch_size=4, epochs=1, verbose=0).history["loss"])

    # tf.data, sizes known only at run time: three sizes, each twice; the third one stays uncompiled.
    sizes = [(20, 24), (20, 25), (21, 24)]
    frames = [x[0, :h, :w] for h, w in sizes for _ in range(2)]
    ds = tf.data.Dataset.from_generator(lambda: iter(frames), output_signature=tf.TensorSpec((None, None, 1), tf.uint8))
    mapped = list(ds.map(map_fn("equalize_hist"), num_parallel_calls=1).as_numpy_iterator())
    out["mapped_diff"] = np.array([int((m != tf_histeq.equalize_hist(f, jit_compile=False).numpy()).sum()) for m, f in zip(mapped, frames)])
    np.savez(sys.argv[2], **out)
    """
)


@pytest.mark.slow
def test_xla_compiles_in_mirrored_strategy_and_tf_data_as_its_dump_records(tmp_path):
    """One run of each way in, in a process of its own with XLA's dump on: which modules XLA compiled."""
    x = images(6, shape=(24, 30, 1))
    dump = tmp_path / "xla"
    out = run_npz_script(RUN_AND_DUMP, tmp_path, env=python_env(XLA_FLAGS=f"--xla_dump_to={dump}"), images=x)
    assert_same_pixels(out["predict"], tf_histeq.clahe(x, tile_grid_size=(2, 3)).numpy().astype(np.float32))
    assert out["loss"].shape == (1,) and np.isfinite(out["loss"]).all()
    assert out["mapped_diff"].tolist() == [0] * 6

    # XLA writes each module it compiles, named after the function, with its parameter shapes.
    compiled = {}
    for name in os.listdir(dump):
        found = re.match(r"module_(\d+)\.a_inference_(\w+?)_xla_\d+.*\.before_optimizations\.txt$", name)
        if found:
            layout = re.search(r"entry_computation_layout=\{\(u8\[([\d,]+)\]", (dump / name).read_text())
            compiled.setdefault(found.group(2), []).append(layout.group(1))
    # clahe: the per-replica batch shapes (2 and 1 images) of predict, compiled from its first step on each
    # of the two devices (XLA compiles per device); fit traces a step of its own and may compile them again,
    # once per device. Nothing else.
    shapes = compiled.get("clahe", [])
    assert sorted(set(shapes)) == ["1,24,30,1", "2,24,30,1"] and len(shapes) <= 8, compiled
    # equalize_hist in tf.data: the first two sizes, from their second element on; the bound (2) leaves
    # the third size uncompiled.
    assert sorted(compiled.get("equalize_hist", [])) == ["20,24,1", "20,25,1"], compiled


class TestOneRunner:
    """Every way in asks the one runner, so the same input gets the same decision (`tf_histeq.compiled_shapes`)."""

    SHAPE = (16, 16, 1)  # 256 values

    @staticmethod
    def _doors():
        """Each way in, as a function that runs equalize_hist(method="pil") on `n` images of SHAPE, one per call."""
        x = images(3, shape=TestOneRunner.SHAPE)

        def dataset(n):
            signature = tf.TensorSpec((None, None, 1), tf.uint8)  # sizes known only at run time: counted
            return tf.data.Dataset.from_generator(lambda: iter(x[:n]), output_signature=signature)

        def keyed(n):
            return dataset(n).enumerate()

        layer = HistogramEqualization(method="pil")
        preprocess = tf_histeq.preprocessing_function("equalize_hist", method="pil")
        mapper = map_fn("equalize_hist", method="pil")
        random_mapper = tf_histeq.data.random_map_fn("equalize_hist", seed=1, factor=1.0, method="pil")
        return {
            "op": lambda n: [tf_histeq.equalize_hist(x[i], method="pil") for i in range(n)],
            "numpy": lambda n: [preprocess(x[i]) for i in range(n)],
            "numpy-function": lambda n: [tf_histeq.histogram_equalization(x[i], method="pil") for i in range(n)],
            "layer": lambda n: [layer(x[i]) for i in range(n)],
            "map_fn": lambda n: list(dataset(n).map(mapper)),
            "random_map_fn": lambda n: list(keyed(n).map(random_mapper)),
        }

    def test_every_way_in_compiles_the_same_shape_at_the_same_call(self, monkeypatch):
        # Two calls' worth of values before a shape compiles; an eager call counts as one image here.
        monkeypatch.setattr(_xla, "COMPILE_AFTER_VALUES", 2 * int(np.prod(self.SHAPE)))
        monkeypatch.setattr(_xla, "EAGER_CALL_VALUES", 1)
        decisions = {}
        for door, run in self._doors().items():
            for n in (2, 3):
                tf_histeq.clear_compiled()
                run(n)
                (entry,) = tf_histeq.compiled_shapes()
                decisions[door, n] = (entry.compiled, entry.counted)
        for door in self._doors():
            # Two calls ran uncompiled and were counted; the third compiled the shape.
            assert decisions[door, 2] == ((), {"uint8 16,16,1;": 512}), door
            assert decisions[door, 3] == (("uint8 16,16,1;",), {"uint8 16,16,1;": 512}), door
        tf_histeq.clear_compiled()

    def test_the_command_line_plans_from_headers_what_the_counting_would_compile(self, monkeypatch):
        from tf_histeq.cli import pipeline
        from tf_histeq.cli.files import Job

        monkeypatch.setattr(_xla, "COMPILE_AFTER_VALUES", 2 * 40 * 52)
        jobs = [Job(f"x{i}.png", size=(40, 52), channels=(1,)) for i in range(3)]
        jobs += [Job(f"y{i}.png", size=(44, 52), channels=(1,)) for i in range(2)] + [Job("z.png")]
        tf_histeq.clear_compiled()
        runner = _xla.JitRunner(tf_histeq.equalize_hist, {})
        # Three images of 40x52: the counting compiles the third, so the plan compiles all three; two of
        # 44x52 never reach it; a file whose header gives no size is never planned.
        assert pipeline.runs_compiled(jobs, runner) == [True] * 3 + [False] * 3
        assert [entry.compiled for entry in tf_histeq.compiled_shapes()] == [("uint8 40,52,1;",)]
        tf_histeq.clear_compiled()

    def test_eager_op_calls_go_through_the_runner_and_graph_calls_stay_plain(self):
        x = images(1, shape=(12, 14, 1))[0]
        tf_histeq.clear_compiled()
        tf_histeq.equalize_hist(x, method="pil")
        assert [entry.counted for entry in tf_histeq.compiled_shapes()] == [{"uint8 12,14,1;": _xla.EAGER_CALL_VALUES}]
        assert_same_pixels(
            tf_histeq.equalize_hist(x, method="pil", jit_compile=True).numpy(),
            tf_histeq.equalize_hist(x, method="pil", jit_compile=False).numpy(),
        )
        assert [entry.compiled for entry in tf_histeq.compiled_shapes()] == [("uint8 12,14,1;",)]
        # In a caller's own tf.function the op is the plain op: no XLA call, no table, no new entry.
        facts = graph_facts(tf.function(lambda t: tf_histeq.equalize_hist(t, method="pil")).get_concrete_function(x))
        assert not facts["xla"] and not facts["ops"] & TABLE_OPS
        assert len(tf_histeq.compiled_shapes()) == 1
        with pytest.raises(ValueError, match=r"`jit_compile` must be 'auto' .*Received: jit_compile='yes'"):
            tf_histeq.equalize_hist(x, jit_compile="yes")
        # match_histograms: the reference configures the compiled function (read and checked when traced).
        reference = images(1, shape=(12, 14, 1))[0][::-1]
        assert_same_pixels(
            tf_histeq.match_histograms(x, reference, jit_compile=True).numpy(),
            tf_histeq.match_histograms(x, reference, jit_compile=False).numpy(),
        )
        assert [e.compiled for e in tf_histeq.compiled_shapes() if e.function == "match_histograms"] == [
            ("uint8 12,14,1;",)
        ]
        with pytest.raises(ValueError, match=r"`reference_mask` must leave at least one pixel"):
            tf_histeq.match_histograms(x, reference, reference_mask=np.zeros((12, 14), bool), jit_compile=True)
        tf_histeq.clear_compiled()
        assert tf_histeq.compiled_shapes() == []
