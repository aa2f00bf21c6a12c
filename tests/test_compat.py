"""The private TensorFlow and Keras state that `tf_histeq._compat` reads is still there.

Each function there falls back to a safe answer when a later version removes
what it reads; these tests fail instead, naming it, so an upgrade is noticed.
"""

from __future__ import annotations

import keras
import numpy as np
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
