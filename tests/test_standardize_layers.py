"""The standardization layers (NyulStandardization, PercentileScaling, CTWindows and their 3-D twins) vs the ops.

The ops themselves are compared with TorchIO and MONAI in tests/test_standardize*.py;
here every way through a layer (adapt, eager call, predict, .keras round trip,
tf_keras twin) must give the op's values: 0 differing.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.test_standardize import body_mask, two_scanners
from tf_histeq import keras2, numpy_api, standardize
from tf_histeq.data import standardize_fn
from tf_histeq.layers import (
    CTWindows,
    CTWindows3D,
    NyulStandardization,
    NyulStandardization3D,
    PercentileScaling,
    PercentileScaling3D,
)


@pytest.fixture(scope="module")
def volumes():
    """(2, 8, 16, 16, 1) int16 (HU-like): two synthetic scanners of the CT phantom."""
    return two_scanners("int16")


@pytest.fixture(scope="module")
def fitted(volumes):
    """The landmarks of `nyul_fit` on the two volumes."""
    return standardize.nyul_fit([volumes], spatial_dims=3)


@pytest.fixture(scope="module")
def model(volumes, fitted):
    """A Functional model of the three 3-D layers (Nyúl adapted on the volumes), and its predictions.

    Uncompiled (XLA's compile would take 15 s here); tests/test_standardize_export.py
    predicts with the compiled ops, in the slow tier.
    """
    nyul = NyulStandardization3D(jit_compile=False)
    nyul.adapt(volumes)
    inputs = keras.Input(volumes.shape[1:], dtype="int16")
    outputs = [
        nyul(inputs),
        CTWindows3D(["lung", "bone", (40, 80)], jit_compile=False)(inputs),
        PercentileScaling3D(1, 99, jit_compile=False)(inputs),
    ]
    built = keras.Model(inputs, outputs)
    return built, built.predict(volumes, verbose=0)


def expected(volumes, fitted):
    """The ops' outputs for the model's three layers."""
    return [
        standardize.nyul_standardize(volumes, fitted, spatial_dims=3).numpy(),
        standardize.window(volumes, ["lung", "bone", (40, 80)], spatial_dims=3).numpy(),
        standardize.scale_intensity_percentiles(volumes, lower=1, upper=99, b_min=0, b_max=1, spatial_dims=3).numpy(),
    ]


def differing(a, b) -> int:
    assert a.shape == b.shape and a.dtype == b.dtype
    return int(np.count_nonzero(a != b))


def test_adapt_equals_nyul_fit(volumes, fitted):
    mask = body_mask(volumes)
    # An array, a list of single volumes (a one-pass stream), a dataset of (images, labels).
    dataset = tf.data.Dataset.from_tensor_slices((volumes, np.arange(2))).batch(1)
    for data in (volumes, [volumes[:1], volumes[1:]], dataset):
        layer = NyulStandardization3D()
        layer.adapt(data)
        assert np.array_equal(layer.standard_landmarks.numpy(), fitted)
    layer = NyulStandardization3D()
    layer.adapt(volumes, mask=mask[0])
    assert np.array_equal(
        layer.standard_landmarks.numpy(), standardize.nyul_fit([volumes], mask=mask[0], spatial_dims=3)
    )


def test_predict_equals_ops(volumes, fitted, model):
    _, predicted = model
    assert [differing(p, e) for p, e in zip(predicted, expected(volumes, fitted), strict=True)] == [0, 0, 0]


def test_2d_layers_equal_ops(volumes, fitted):
    images = volumes[:, 3]  # (2, 16, 16, 1): one slice of each scanner
    mask = body_mask(volumes)[:, 3]
    nyul = NyulStandardization(fitted[0])
    got = nyul(images, mask=mask).numpy()
    assert differing(got, standardize.nyul_standardize(images, fitted[0], mask=mask).numpy()) == 0
    scaling = PercentileScaling(5, 95, 0, 1, clip=True, channel_wise=True)
    want = standardize.scale_intensity_percentiles(
        images, lower=5, upper=95, b_min=0, b_max=1, clip=True, channel_wise=True, mask=mask
    )
    assert differing(scaling(images, mask=mask).numpy(), want.numpy()) == 0
    windows = CTWindows(["brain", "subdural"])
    assert differing(windows(images).numpy(), standardize.window(images, ["brain", "subdural"]).numpy()) == 0
    assert CTWindows.from_config(windows.get_config()).get_config() == windows.get_config()


def test_tf_keras_twins(volumes, fitted):
    layer = keras2.NyulStandardization3D()
    layer.adapt(volumes)
    assert np.array_equal(layer.standard_landmarks.numpy(), fitted)
    out = layer(volumes).numpy()
    assert differing(out, standardize.nyul_standardize(volumes, fitted, spatial_dims=3).numpy()) == 0
    windows = keras2.CTWindows3D("lung")(volumes).numpy()
    assert differing(windows, standardize.window(volumes, "lung", spatial_dims=3).numpy()) == 0


def test_bad_input(volumes):
    with pytest.raises(ValueError, match="`landmarks` must be given"):
        NyulStandardization3D()(volumes)
    with pytest.raises(ValueError, match=r"`images.shape` must be a batch of volumes .* CTWindows3D"):
        CTWindows3D("lung")(volumes[0])
    with pytest.raises(ValueError, match=r"use PercentileScaling3D"):
        PercentileScaling()(volumes)
    with pytest.raises(ValueError, match="`data` must hold at least one image"):
        NyulStandardization().adapt([])
    with pytest.raises(ValueError, match="`data` must hold images whose counted voxels are not constant"):
        NyulStandardization().adapt(np.full((1, 4, 4, 1), 7, np.uint8))
    with pytest.raises(TypeError, match="`data` must be an array"):
        NyulStandardization().adapt(3)
    with pytest.raises(ValueError, match="`landmarks` must be sorted"):
        NyulStandardization(np.arange(13)[::-1])
    with pytest.raises(ValueError, match="`landmarks.shape` must be"):
        NyulStandardization(np.arange(12))
    with pytest.raises(ValueError, match="`cutoff` must be"):
        NyulStandardization(cutoff=(0.2, 0.99))
    with pytest.raises(ValueError, match="`upper` must be above lower"):
        PercentileScaling(50, 10)
    with pytest.raises(ValueError, match="`windows` must have a width > 0"):
        CTWindows((40, 0))
    layer = NyulStandardization(np.arange(13.0))
    with pytest.raises(ValueError, match=r"`landmarks.shape` must be \(1, 13\)"):
        layer.adapt(np.stack([volumes[:, 3, ..., 0]] * 2, axis=-1))


def test_standardize_fn_and_numpy_equal_ops(volumes, fitted):
    mask = body_mask(volumes)
    cases = [
        ("nyul_standardize", {"landmarks": fitted}),
        ("scale_intensity_percentiles", {"lower": 1, "upper": 99, "b_min": 0, "b_max": 1, "relative": True}),
        ("window", {"windows": ["lung", "bone"]}),
        ("scale_intensity_range", {"a_min": -1000, "a_max": 1000, "b_min": 0, "b_max": 1, "clip": True}),
    ]
    labels = np.arange(2)
    for op, kwargs in cases:
        function = getattr(standardize, op)
        if op == "nyul_standardize":
            want = function(volumes, fitted, spatial_dims=3).numpy()
        elif op == "window":
            want = function(volumes, kwargs["windows"], spatial_dims=3).numpy()
        else:
            want = function(volumes, spatial_dims=3, **kwargs).numpy()
        mapped = tf.data.Dataset.from_tensor_slices((volumes, labels)).batch(2)
        mapped = mapped.map(standardize_fn(op, spatial_dims=3, jit_compile=False, **kwargs))
        ((got, got_labels),) = list(mapped)
        assert differing(got.numpy(), want) == 0, op
        assert np.array_equal(got_labels, labels)
        assert differing(numpy_api.standardize(volumes, op, spatial_dims=3, jit_compile=False, **kwargs), want) == 0
    masked = numpy_api.standardize(
        volumes, "nyul_standardize", mask=mask, landmarks=fitted, spatial_dims=3, jit_compile=False
    )
    assert differing(masked, standardize.nyul_standardize(volumes, fitted, mask=mask, spatial_dims=3).numpy()) == 0
    with pytest.raises(ValueError, match="`op` must be one of"):
        standardize_fn("clahe")
    with pytest.raises(TypeError, match="needs `landmarks`"):
        standardize_fn("nyul_standardize")
    with pytest.raises(ValueError, match="`windows` must have a width > 0"):
        standardize_fn("window", windows=(40, -1))
    with pytest.raises(ValueError, match="`spatial_dims` must be 2"):
        numpy_api.standardize(volumes, "window", windows="lung", spatial_dims=4)
