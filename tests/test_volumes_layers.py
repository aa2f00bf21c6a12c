"""`HistogramEqualization3D` and `HistogramMatching3D`: the global ops on `(N, D, H, W, C)` in Keras models.

Each layer's output is its op's (`spatial_dims=3`) in the layer's compute
dtype, in a Functional model, after `.keras` save and load, after
`model.export` and reload, and under `MirroredStrategy` (the last two in
the slow tier: an export, and a fresh process with two logical CPUs).
"""

from __future__ import annotations

import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests._references import assert_same_pixels
from tests._subprocess import run_npz_script
from tests.test_volumes_global import BODY, SHAPE, VOLUMES, low_contrast_uint8, skimage_matched
from tf_histeq.layers import HistogramEqualization, HistogramEqualization3D, HistogramMatching, HistogramMatching3D

REFERENCE = low_contrast_uint8(8, offset=-15)  # (D, H, W)


@pytest.fixture(scope="module")
def model():
    """A Functional model of both layers on uint8 volumes with a histogram mask input, adapted.

    Uncompiled (`jit_compile=False`: two XLA compilations less in the default tier); the layers' default,
    compiled in `predict`, runs under MirroredStrategy below.
    """
    matching = HistogramMatching3D(jit_compile=False, name="matching")
    matching.adapt(tf.data.Dataset.from_tensor_slices(REFERENCE[None, ..., None]).batch(1))
    volumes = keras.Input(shape=(*SHAPE, 1), dtype="uint8")
    mask = keras.Input(shape=SHAPE, dtype="bool")
    equalized = HistogramEqualization3D(method="pil", jit_compile=False, name="equalize")(volumes, mask=mask)
    return keras.Model([volumes, mask], [equalized, matching(volumes)])


def expected_outputs():
    masks = np.stack([BODY] * len(VOLUMES))
    equalized = tf_histeq.equalize_hist(VOLUMES, method="pil", mask=masks, spatial_dims=3).numpy()
    matched = tf_histeq.match_histograms(VOLUMES, REFERENCE, spatial_dims=3).numpy()
    return masks, equalized.astype(np.float32), matched.astype(np.float32)


def test_functional_model_is_the_op_and_skimage(model):
    masks, equalized, matched = expected_outputs()
    outputs = model.predict([VOLUMES, masks], batch_size=2, verbose=0)
    assert_same_pixels(outputs[0], equalized, "HistogramEqualization3D in a model")
    assert_same_pixels(outputs[1], matched, "HistogramMatching3D in a model")
    skimage = np.stack([skimage_matched(v[..., 0], REFERENCE) for v in VOLUMES])[..., None]
    assert_same_pixels(outputs[1], skimage.astype(np.float32), "HistogramMatching3D vs skimage")


def test_keras_save_and_load(model, tmp_path):
    path = tmp_path / "volumes.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    masks, equalized, matched = expected_outputs()
    outputs = loaded([VOLUMES, masks])
    assert_same_pixels(keras.ops.convert_to_numpy(outputs[0]), equalized, "loaded HistogramEqualization3D")
    assert_same_pixels(keras.ops.convert_to_numpy(outputs[1]), matched, "loaded HistogramMatching3D")
    layers = {layer.name: layer for layer in loaded.layers}
    assert type(layers["equalize"]) is HistogramEqualization3D and layers["equalize"].spatial_dims == 3
    assert type(layers["matching"]) is HistogramMatching3D and layers["matching"].spatial_dims == 3
    assert "spatial_dims" not in layers["equalize"].get_config(), "the layout is the class's"


def test_a_fixed_volume_size_with_any_batch_runs_compiled_in_keras_steps():
    # As for images: a traced step of one volume size calls the compiled op directly (no counting, no tf.cond).
    from tf_histeq import _xla

    seen = []
    trace = tf.function(lambda v: seen.append(_xla._sizes_known(v, None)) or v, autograph=False)
    trace.get_concrete_function(tf.TensorSpec([None, *SHAPE, 1], tf.uint8))
    trace.get_concrete_function(tf.TensorSpec([None, None, *SHAPE[1:], 1], tf.uint8))
    assert seen == [True, False]


def test_adapt_on_arrays_and_a_reference_given_to_the_constructor():
    expected = tf_histeq.match_histograms(VOLUMES, REFERENCE, mask=BODY, spatial_dims=3).numpy().astype(np.float32)
    adapted = HistogramMatching3D()
    adapted.adapt(np.stack([REFERENCE, REFERENCE[:, ::-1]])[..., None])  # two volumes, pooled: the same quantiles
    assert_same_pixels(adapted(VOLUMES, mask=BODY).numpy(), expected, "adapted on a batch of volumes")
    given = HistogramMatching3D(REFERENCE)
    assert_same_pixels(given(VOLUMES, mask=BODY).numpy(), expected, "reference given as a (D, H, W) volume")


def test_the_2d_layers_stay_2d():
    assert HistogramEqualization().spatial_dims == 2 and HistogramMatching(REFERENCE[0]).spatial_dims == 2
    with pytest.raises(ValueError, match=r"pass spatial_dims=3"):
        HistogramEqualization()(VOLUMES)


@pytest.mark.parametrize("layer", [HistogramEqualization3D, lambda: HistogramMatching3D(REFERENCE)])
def test_the_3d_layers_take_batches_of_volumes_only(layer):
    name = "HistogramEqualization3D" if layer is HistogramEqualization3D else "HistogramMatching3D"
    message = rf"`images.shape` must be a batch of volumes \(N, D, H, W, C\), rank 5, for {name}"
    with pytest.raises(ValueError, match=message + r".*Received: images.shape=\(None, 24, 20, 1\)"):
        layer()(keras.Input(shape=(24, 20, 1), dtype="uint8"))
    with pytest.raises(ValueError, match=message + r".*Received: images.shape=\(12, 24, 20, 1\)"):
        layer()(VOLUMES[0])
    with pytest.raises(ValueError, match=r"Unrecognized keyword arguments.*'spatial_dims': 3"):  # Keras's words
        HistogramEqualization3D(spatial_dims=3)


@pytest.mark.slow  # an export and a reload: several seconds
def test_export_and_reload(model, tmp_path):
    model.export(tmp_path / "exported", verbose=False)
    served = tf.saved_model.load(str(tmp_path / "exported"))
    masks, equalized, matched = expected_outputs()
    outputs = served.serve([tf.constant(VOLUMES), tf.constant(masks)])
    assert_same_pixels(outputs[0].numpy(), equalized, "exported HistogramEqualization3D")
    assert_same_pixels(outputs[1].numpy(), matched, "exported HistogramMatching3D")


MIRRORED = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    from tf_histeq.layers import HistogramEqualization3D, HistogramMatching3D

    data = np.load(sys.argv[1])
    x, reference = data["volumes"], data["reference"]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        matching = HistogramMatching3D(reference)
        inputs = keras.Input(shape=x.shape[1:], dtype="uint8")
        model = keras.Model(inputs, [HistogramEqualization3D()(inputs), matching(inputs)])
    equalized, matched = model.predict(x, batch_size=2, verbose=0)  # 3 volumes: batches of 1 + 1 and 1 + 0
    np.savez(sys.argv[2], equalized=equalized, matched=matched)
    """
)


@pytest.mark.slow  # a fresh process with two logical CPUs
def test_mirrored_strategy(tmp_path):
    volumes = np.concatenate([VOLUMES, VOLUMES[:1, ::-1]])  # 3 volumes: the last batch is split unevenly
    out = run_npz_script(MIRRORED, tmp_path, volumes=volumes, reference=REFERENCE)
    equalized = tf_histeq.equalize_hist(volumes, spatial_dims=3).numpy().astype(np.float32)
    matched = tf_histeq.match_histograms(volumes, REFERENCE, spatial_dims=3).numpy().astype(np.float32)
    assert_same_pixels(out["equalized"], equalized, "HistogramEqualization3D under MirroredStrategy")
    assert_same_pixels(out["matched"], matched, "HistogramMatching3D under MirroredStrategy")
