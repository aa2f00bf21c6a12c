"""The private TensorFlow, Keras and tf2onnx behaviour that `tf_histeq._compat` relies on is still there.

Each function there falls back to a safe answer when a later version removes
what it reads; these tests fail instead, naming it, so an upgrade is noticed.
"""

from __future__ import annotations

import collections
import inspect
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_histeq import _compat


def test_graph_in_xla_context_tells_compiled_graphs_from_plain_ones():
    seen = {}

    def probe(x):
        seen[tf.inside_function()] = _compat.graph_in_xla_context(tf.compat.v1.get_default_graph())
        return x

    tf.function(probe, jit_compile=True)(tf.constant(1))
    assert seen == {True: True}, "control_flow_util.GraphOrParentsInXlaContext no longer sees jit_compile graphs"
    seen.clear()
    tf.function(probe)(tf.constant(1))
    assert seen == {True: False}


def test_keras_outermost_call_names_the_model_around_a_layer():
    seen = []

    class Probe(keras.layers.Layer):
        def call(self, x):
            seen.append(_compat.keras_outermost_call())
            return x

    probe = Probe()
    inputs = keras.Input((2,))
    model = keras.Model(inputs, probe(inputs))
    seen.clear()
    model(np.zeros((1, 2), np.float32))
    probe(np.zeros((1, 2), np.float32))
    assert seen[0] is not _compat.UNKNOWN, "keras' call context (current_call_ctx.entry_layer) is gone"
    assert seen == [model, probe]


def test_tf_keras_in_call_tells_a_layer_inside_a_model_from_a_direct_call():
    tf_keras = pytest.importorskip("tf_keras")
    seen = []

    class Probe(tf_keras.layers.Layer):
        def call(self, x):
            seen.append(_compat.tf_keras_in_call())
            return x

    probe = Probe()
    model = tf_keras.Sequential([probe])
    assert _compat.tf_keras_in_call() is False, "tf_keras's call context (call_context().in_call) is gone"
    model(np.zeros((1, 2), np.float32))  # builds, then calls: the probe runs inside the model's call each time
    assert seen and set(seen) == {True}


def test_read_saved_model_reads_the_graphs(tmp_path):
    module = tf.Module()
    module.f = tf.function(lambda x: x + 1, input_signature=[tf.TensorSpec([], tf.float32)])
    tf.saved_model.save(module, str(tmp_path))
    proto = _compat.read_saved_model(tmp_path)
    assert any(
        node.op == "AddV2"
        for graph in proto.meta_graphs
        for f in graph.graph_def.library.function
        for node in f.node_def
    )


class _FailingOptimizer:
    """A tf2onnx graph optimizer (the interface `tf2onnx.optimizer.optimize_graph` calls) that fails."""

    graph_been_opt = False

    def optimize(self, graph, iteration):
        raise KeyError("an optimizer's own error")


class _EmptyGraph:
    """As much of a tf2onnx graph as `optimize_graph` reads around its optimizers."""

    def dump_node_statistics(self):
        return collections.Counter()

    def get_nodes(self):
        return []

    def topological_sort(self, nodes):
        pass


def test_tf2onnx_lets_an_optimizer_error_through_when_asked_and_it_is_told_by_its_traceback():
    import tf2onnx.constants
    from tf2onnx import optimizer

    assert tf2onnx.constants.ENV_TF2ONNX_CATCH_ERRORS == _compat.TF2ONNX_CATCH_ERRORS, "tf2onnx renamed its switch"
    assert "catch_errors" in inspect.signature(optimizer.optimize_graph).parameters, "optimize_graph(catch_errors)"
    with pytest.raises(KeyError) as raised:
        optimizer.optimize_graph(_EmptyGraph(), catch_errors=False, optimizers={"failing": _FailingOptimizer})
    assert _compat.tf2onnx_optimizer_failed(raised.value), "tf2onnx.optimizer.optimize_graph is not on the traceback"
    assert not _compat.tf2onnx_optimizer_failed(KeyError("raised elsewhere"))
    # The default: the failing optimizer is skipped.
    optimizer.optimize_graph(_EmptyGraph(), catch_errors=True, optimizers={"failing": _FailingOptimizer})


def test_the_tf2onnx_switch_is_set_only_inside_and_a_users_value_is_kept(monkeypatch):
    monkeypatch.delenv(_compat.TF2ONNX_CATCH_ERRORS, raising=False)
    with _compat.tf2onnx_optimizer_errors_raised():
        assert os.environ[_compat.TF2ONNX_CATCH_ERRORS] == "false"
    assert _compat.TF2ONNX_CATCH_ERRORS not in os.environ
    monkeypatch.setenv(_compat.TF2ONNX_CATCH_ERRORS, "true")
    with _compat.tf2onnx_optimizer_errors_raised():
        assert os.environ[_compat.TF2ONNX_CATCH_ERRORS] == "true"
    assert os.environ[_compat.TF2ONNX_CATCH_ERRORS] == "true"


def _gradient_error(function, x) -> str | None:
    try:  # a tf.function called under a tape builds its gradient then
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(function(x))
        tape.gradient(y, x)
    except LookupError as err:
        return str(err)
    return None


def test_prevent_gradient_refuses_with_its_own_message_on_tapes_and_in_function_gradients():
    x = tf.constant([1.0, 2.0])

    def refused(x):
        return _compat.prevent_gradient(x, "probe message") * 2.0

    assert _gradient_error(refused, x) == "probe message", "record.record_operation no longer reaches the tapes"
    outer = _gradient_error(tf.function(refused, autograph=False), x)
    assert outer == "probe message", f"function gradients no longer read Operation._gradient_function: {outer!r}"
