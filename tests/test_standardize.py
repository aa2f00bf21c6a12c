"""tf_histeq.standardize without the reference libraries: NumPy's percentiles, the maps' properties, layouts, bad input.

The comparisons with MONAI and TorchIO (which import PyTorch, 15 s) are in
tests/test_standardize_references.py, in the slow tier.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tf_histeq import samples

DTYPES = ("uint8", "uint16", "int16", "float32", "float64")
Q = np.array([0, 1, 2.5, 10, 25, 33.3, 50, 75, 90, 97.5, 99, 100])


def scanner(dtype: str, *, scale: float, offset: float, gamma: float, seed: int, shape=(8, 16, 16)) -> np.ndarray:
    """The CT phantom's anatomy as another scanner would give it: its own gain, offset and gamma."""
    ct = samples.ct_phantom(shape, seed=seed).astype(np.float64)
    unit = (ct - ct.min()) / (ct.max() - ct.min())
    values = offset + scale * unit**gamma
    if dtype == "int16":
        values = values - 1024  # HU-like, negative values
    return values.astype(dtype) if dtype.startswith("float") else np.rint(values).astype(dtype)


def two_scanners(dtype: str) -> np.ndarray:
    """(2, 8, 16, 16, 1): one volume of each scanner, a batch of volumes."""
    top = {"uint8": 250, "uint16": 4000, "int16": 3000}.get(dtype, 1.0)
    a = scanner(dtype, scale=0.8 * top, offset=0.05 * top, gamma=1.0, seed=0)
    b = scanner(dtype, scale=0.6 * top, offset=0.2 * top, gamma=0.6, seed=1)
    return np.stack([a, b])[..., None]


def body_mask(volumes: np.ndarray) -> np.ndarray:
    """The voxels above each volume's 40th percentile (the body, not the air around it)."""
    return np.stack([v[..., 0] > np.percentile(v, 40) for v in volumes])


def numpy_percentiles(volumes, q, mask=None):
    """np.percentile of each volume's voxels (inside the mask), with an array q: (N, 1, len(q))."""
    if mask is None:
        return np.stack([np.percentile(v.ravel(), np.asarray(q))[None] for v in volumes])
    rows = [v[..., 0][m] for v, m in zip(volumes, mask, strict=True)]
    return np.stack([np.percentile(r, np.asarray(q))[None] for r in rows])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masked", [False, True], ids=["all", "mask"])
def test_percentiles_equal_numpy(dtype, masked):
    volumes = two_scanners(dtype)
    mask = body_mask(volumes) if masked else None
    ours = tf_histeq.percentiles(volumes, Q, mask=mask, spatial_dims=3).numpy()
    expected = numpy_percentiles(volumes, Q, mask)
    assert ours.dtype == np.float64 and ours.shape == (2, 1, len(Q))
    assert np.count_nonzero(ours != expected) == 0


def test_percentiles_per_channel_in_2d():
    images = np.concatenate([two_scanners("uint16")[:, 3], two_scanners("uint16")[:, 5]], axis=-1)  # (2, 16, 16, 2)
    ours = tf_histeq.percentiles(images, Q).numpy()
    expected = np.stack([[np.percentile(images[n, ..., c], Q) for c in range(2)] for n in range(2)])
    assert ours.shape == (2, 2, len(Q)) and np.count_nonzero(ours != expected) == 0


def _four_ops(x, m, landmarks):
    return (
        tf_histeq.percentiles(x, Q, mask=m, spatial_dims=3),
        tf_histeq.scale_intensity_percentiles(
            x, lower=1, upper=99, b_min=0.0, b_max=1.0, clip=True, mask=m, spatial_dims=3
        ),
        tf_histeq.window(x, ["lung", (40.0, 400.0)], spatial_dims=3),
        tf_histeq.nyul_standardize(x, landmarks, mask=m, spatial_dims=3),
    )


def _check_xla(dtypes):
    """The four ops compiled together on each dtype's scanners (one compilation) equal them eagerly."""
    inputs = [two_scanners(dtype) for dtype in dtypes]
    masks = [body_mask(v) for v in inputs]
    landmarks = np.linspace(0.0, 100.0, 13)

    @tf.function(jit_compile=True)
    def run(xs, ms):
        return [_four_ops(x, m, landmarks) for x, m in zip(xs, ms, strict=True)]

    for volumes, mask, compiled in zip(inputs, masks, run(inputs, masks), strict=True):
        eager = _four_ops(volumes, mask, landmarks)
        for c, e in zip(compiled, eager, strict=True):
            assert np.count_nonzero(c.numpy() != e.numpy()) == 0
        assert np.count_nonzero(compiled[0].numpy() != numpy_percentiles(volumes, Q, mask)) == 0


def test_xla_equals_eager():
    """The two kernels compiled: Nyúl on uint8 (histogram percentiles), percentiles of float32 (a sort)."""
    landmarks = np.linspace(0.0, 100.0, 13)
    images, floats = two_scanners("uint8"), two_scanners("float32")
    mask = body_mask(images)

    @tf.function(jit_compile=True)
    def run(x, xf, m):
        return (
            tf_histeq.nyul_standardize(x, landmarks, mask=m, spatial_dims=3),
            tf_histeq.percentiles(xf, Q, mask=m, spatial_dims=3),
        )

    nyul, quantiles = run(images, floats, mask)
    eager = tf_histeq.nyul_standardize(images, landmarks, mask=mask, spatial_dims=3)
    assert np.count_nonzero(nyul.numpy() != eager.numpy()) == 0
    assert np.count_nonzero(quantiles.numpy() != numpy_percentiles(floats, Q, mask)) == 0


@pytest.mark.slow
def test_xla_equals_eager_every_dtype():
    _check_xla(DTYPES)


def test_float32_selection_with_ties_signed_zeros_and_infinities():
    rng = np.random.default_rng(5)
    x = two_scanners("float32")[:, 2:4].reshape(2, 32, 16, 1).repeat(2, axis=-1) - 0.5
    x[0, :4] = 0.0
    x[0, 4:6] = -0.0
    x[1, ..., 1] = np.round(x[1, ..., 1] * 4)  # many ties
    x[1, 0, 0, 0], x[1, 0, 1, 0] = np.inf, -np.inf
    mask = rng.random((2, 32, 16)) < 0.6
    ours = tf_histeq.percentiles(x, Q, mask=mask).numpy()
    with np.errstate(invalid="ignore"):  # NumPy's inf - inf
        expected = np.stack([[np.percentile(x[n, ..., c][mask[n]], Q) for c in range(2)] for n in range(2)])
    assert np.count_nonzero((ours != expected) & ~(np.isnan(ours) & np.isnan(expected))) == 0


def test_nan_and_empty_planes_give_nan():
    volume = two_scanners("float32")[0, ..., 0].copy()
    volume[0, 0, 0] = np.nan
    assert np.isnan(tf_histeq.percentiles(volume, [50], spatial_dims=3).numpy()).all()

    @tf.function
    def traced(x, m):
        return tf_histeq.percentiles(x, [50], mask=m, spatial_dims=3)

    empty = tf.zeros(volume.shape, tf.bool)
    assert np.isnan(traced(np.nan_to_num(volume), empty).numpy()).all()


def test_window_stacks_channels_and_follows_the_formula():
    ct = samples.ct_phantom((8, 16, 16))
    stacked = tf_histeq.window(ct, ["lung", "mediastinum", "bone"], spatial_dims=3).numpy()
    assert stacked.shape == (8, 16, 16, 3) and stacked.dtype == np.float32
    for k, name in enumerate(["lung", "mediastinum", "bone"]):
        level, width = tf_histeq.WINDOWS[name]
        single = tf_histeq.window(ct, name, spatial_dims=3).numpy()
        assert np.count_nonzero(single != stacked[..., k]) == 0
        a_min = level - width / 2
        expected = (ct.astype(np.float32) - np.float32(a_min)) / np.float32(width)
        expected = np.clip(expected * np.float32(1.0) + np.float32(0.0), 0, 1)
        assert np.count_nonzero(single != expected) == 0
    batch = tf_histeq.window(ct[None, ..., None], ["brain", "subdural"], spatial_dims=3)
    assert batch.shape == (1, 8, 16, 16, 2)


def test_scale_intensity_range_constant_span_is_monai_shift():
    images = two_scanners("uint8")[0, 3]
    with pytest.warns(UserWarning, match="a_min == a_max"):
        out = tf_histeq.scale_intensity_range(images, a_min=50, a_max=50, b_min=2.0, b_max=3.0, clip=True)
    assert np.count_nonzero(out.numpy() != images.astype(np.float32) - 50 + 2) == 0


def test_percentile_scaling_of_a_constant_image_gives_b_min():
    out = tf_histeq.scale_intensity_percentiles(
        np.full((2, 8, 8, 1), 7, np.uint16), lower=5, upper=95, b_min=-1.0, b_max=1.0, clip=True
    ).numpy()
    assert np.all(out == -1.0)


def test_scale_intensity_percentiles_maps_percentiles_onto_the_range():
    volumes = two_scanners("uint16")
    out = tf_histeq.scale_intensity_percentiles(
        volumes, lower=10, upper=90, b_min=0.0, b_max=1.0, relative=True, spatial_dims=3
    ).numpy()
    # relative=True: the 10th and 90th percentiles land on 0.1 and 0.9.
    got = numpy_percentiles(out, [10, 90])
    assert np.allclose(got[:, 0], [0.1, 0.9], atol=1e-6)


def test_nyul_maps_each_scanner_onto_the_standard_landmarks():
    for batch in (two_scanners("uint16"), two_scanners("float32")):
        landmarks = tf_histeq.nyul_fit([batch[:1], batch[1:]], spatial_dims=3)
        assert landmarks.shape == (1, 13) and landmarks[0, 0] == pytest.approx(0, abs=1e-9)
        assert landmarks[0, -1] == pytest.approx(100, abs=1e-9)
        out = tf_histeq.nyul_standardize(batch, landmarks, spatial_dims=3)
        assert out.dtype == tf.float32 and out.shape == batch.shape
        # Each volume's own landmarks (but the quartiles) land on the standard ones.
        own = tf_histeq.nyul_landmarks(out, spatial_dims=3).numpy()[:, 0]
        keep = [0, 1, 2, 4, 5, 6, 7, 8, 10, 11, 12]
        assert np.abs(own[:, keep] - landmarks[0, keep]).max() < 1e-3


def test_nyul_fit_streams_a_dataset_of_batches_with_masks():
    volumes = np.concatenate([two_scanners("int16"), two_scanners("int16")[:, ::-1]])  # (4, 8, 16, 16, 1)
    masks = np.concatenate([body_mask(volumes[:2]), body_mask(volumes[2:])])
    dataset = tf.data.Dataset.from_tensor_slices((volumes, masks)).batch(3)  # batches of 3 and 1
    streamed = tf_histeq.nyul_fit(dataset, spatial_dims=3)
    one_list = tf_histeq.nyul_fit([(v, m) for v, m in zip(volumes, masks, strict=True)], spatial_dims=3)
    assert np.abs(streamed - one_list).max() <= 1e-12
    own = tf_histeq.nyul_landmarks(volumes, mask=masks[..., None], spatial_dims=3).numpy()[:, 0]
    slopes = 100 / (own[:, -1] - own[:, 0])
    expected = (slopes[:, None] * own).mean(0) + (-slopes * own[:, 0]).mean()
    assert np.abs(streamed[0] - expected).max() <= 1e-12


def test_nyul_landmarks_from_a_variable_in_a_traced_function():
    volumes = two_scanners("uint8")
    landmarks = tf_histeq.nyul_fit([volumes], spatial_dims=3)
    weight = tf.Variable(landmarks, trainable=False)
    compiled = tf.function(lambda x: tf_histeq.nyul_standardize(x, weight, spatial_dims=3))
    expected = tf_histeq.nyul_standardize(volumes, landmarks, spatial_dims=3).numpy()
    assert np.count_nonzero(compiled(volumes).numpy() != expected) == 0


def test_nyul_constant_image_maps_to_the_90th_percentile_landmark():
    landmarks = np.linspace(0.0, 120.0, 13)
    out = tf_histeq.nyul_standardize(np.full((8, 8), 9, np.uint8), landmarks).numpy()
    assert np.all(out == np.float32(landmarks[11]))


def test_layouts_of_2d_and_3d():
    volume = two_scanners("int16")[0, ..., 0]
    flat = tf_histeq.percentiles(volume.reshape(8 * 16, 16), Q).numpy()
    assert np.count_nonzero(flat != tf_histeq.percentiles(volume, Q, spatial_dims=3).numpy()) == 0
    with pytest.raises(ValueError, match=r"images.shape.*spatial_dims=3"):
        tf_histeq.percentiles(volume[None, ..., None], Q)
    with pytest.raises(ValueError, match="spatial_dims"):
        tf_histeq.percentiles(volume, Q, spatial_dims=4)
    with pytest.raises(ValueError, match="mask.shape"):
        tf_histeq.percentiles(volume, Q, mask=np.ones((8, 16), bool), spatial_dims=3)


BAD = [
    (lambda x: tf_histeq.percentiles(x, [50, 101]), ValueError, "`q` must lie in"),
    (lambda x: tf_histeq.percentiles(x, [np.nan]), ValueError, "`q` must lie in"),
    (lambda x: tf_histeq.scale_intensity_percentiles(x, lower=-1, upper=99, b_min=0, b_max=1), ValueError, "lower"),
    (lambda x: tf_histeq.scale_intensity_percentiles(x, lower=60, upper=40, b_min=0, b_max=1), ValueError, "upper"),
    (lambda x: tf_histeq.scale_intensity_percentiles(x, lower=5, upper=5, b_min=0, b_max=1), ValueError, "upper"),
    (
        lambda x: tf_histeq.scale_intensity_percentiles(x, lower=5, upper=95, b_min=None, b_max=1, relative=True),
        ValueError,
        "relative",
    ),
    (lambda x: tf_histeq.window(x, (40, 0)), ValueError, "width > 0"),
    (lambda x: tf_histeq.window(x, ["lung", (40, -5)]), ValueError, r"windows\[1\]"),
    (lambda x: tf_histeq.window(x, "lungs"), ValueError, "WINDOWS"),
    (lambda x: tf_histeq.window(x, []), TypeError, "windows"),
    (lambda x: tf_histeq.scale_intensity_range(x, a_min=0, a_max=np.inf), ValueError, "a_max"),
    (lambda x: tf_histeq.nyul_standardize(x, np.r_[np.arange(12.0), np.nan]), ValueError, "finite"),
    (lambda x: tf_histeq.nyul_standardize(x, np.arange(13.0)[::-1]), ValueError, "sorted"),
    (lambda x: tf_histeq.nyul_standardize(x, np.arange(12.0)), ValueError, "landmarks.shape"),
    (lambda x: tf_histeq.nyul_standardize(x, np.zeros((2, 13)) + np.arange(13)), ValueError, "landmarks.shape"),
    (lambda x: tf_histeq.nyul_landmarks(x, cutoff=(0.1, 0.99)), ValueError, "cutoff"),
    (lambda x: tf_histeq.nyul_fit([]), ValueError, "images_iterable"),
    (lambda x: tf_histeq.nyul_fit(x), TypeError, "images_iterable"),
    (lambda x: tf_histeq.nyul_fit([x], output_range=(5, 5)), ValueError, "output_range"),
    (lambda x: tf_histeq.nyul_fit([np.full((8, 8), 3, np.uint8)]), ValueError, "images_iterable.*constant"),
    (lambda x: tf_histeq.percentiles(x, 50, mask=np.zeros((8, 8), bool)), ValueError, "`mask` must select"),
    (lambda x: tf_histeq.percentiles(x.astype(np.int32), 50), TypeError, "images.dtype"),
]


@pytest.mark.parametrize("call,exc,match", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_names_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call(np.arange(64, dtype=np.uint8).reshape(8, 8))
