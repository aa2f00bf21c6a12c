"""Bad input, extreme sizes and determinism, for both operations."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests import _images
from tests._references import assert_same_pixels

OPS = [pytest.param(tf_histeq.equalize_hist, id="equalize_hist"), pytest.param(tf_histeq.clahe, id="clahe")]
IMAGE = np.zeros((8, 8), np.uint8)


class TestBadInput:
    @pytest.mark.parametrize("op", OPS)
    @pytest.mark.parametrize(
        ("images", "error", "match"),
        [
            (np.uint8(7), ValueError, r"`images.shape` must have rank 2 .*Received: images.shape=\(\)"),
            (np.zeros(9, np.uint8), ValueError, r"Received: images.shape=\(9,\)"),
            (np.zeros((1, 2, 3, 4, 1), np.uint8), ValueError, r"Received: images.shape=\(1, 2, 3, 4, 1\)"),
            (np.zeros((4, 4), bool), TypeError, r"`images.dtype` must be one of .*Received: images.dtype='bool'"),
            (tf.constant([["a"]]), TypeError, r"Received: images.dtype='string'"),
            (np.zeros((4, 4), np.complex128), TypeError, r"Received: images.dtype='complex128'"),
            (np.zeros((4, 4), np.int8), TypeError, r"Received: images.dtype='int8'"),
            (np.zeros((4, 4), np.int64), TypeError, r"Received: images.dtype='int64'"),
            ([[1, 2], [3, "x"]], TypeError, r"`images"),
        ],
        ids=["rank0", "rank1", "rank5", "bool", "string", "complex", "int8", "int64", "ragged-list"],
    )
    def test_bad_images(self, op, images, error, match):
        with pytest.raises(error, match=match):
            op(images)

    @pytest.mark.parametrize("op", OPS)
    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            (
                {"value_range": (255, 0)},
                ValueError,
                r"`value_range` must satisfy low < high. Received: value_range=\(255, 0\)",
            ),
            ({"value_range": (3, 3)}, ValueError, r"low < high"),
            ({"value_range": (0, float("inf"))}, ValueError, r"`value_range` must be two finite numbers"),
            ({"value_range": (float("nan"), 1)}, ValueError, r"`value_range` must be two finite numbers"),
            ({"bins": 0}, ValueError, r"`bins` must be an int in \[2, 65536\]. Received: bins=0"),
            ({"bins": 1}, ValueError, r"Received: bins=1"),
            ({"bins": 2**20}, ValueError, r"Received: bins=1048576"),
            ({"bins": "256"}, TypeError, r"`bins` must be an int"),
            ({"mask": np.ones((8, 9), bool)}, ValueError, r"`mask.shape` must be .*Received: mask.shape=\(8, 9\)"),
            ({"mask": np.ones((2, 8, 8), bool)}, ValueError, r"`mask.shape` must be \(H, W\) or \(H, W, 1\)"),
            ({"mask": np.full((8, 8), "yes")}, TypeError, r"`mask.dtype` must be bool or a number type"),
            (
                {"mask": tf.complex(tf.ones((8, 8)), tf.ones((8, 8)))},
                TypeError,
                r"`mask.dtype` must be bool or a number type",
            ),
            ({"channels": "all"}, ValueError, r"`channels` must be one of"),
        ],
        ids=lambda v: v if isinstance(v, str) else None,
    )
    def test_bad_arguments(self, op, kwargs, error, match):
        with pytest.raises(error, match=match):
            op(IMAGE, **kwargs)

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            (
                {"tile_grid_size": (0, 8)},
                ValueError,
                r"`tile_grid_size` must be two positive ints \(rows, cols\). Received: tile_grid_size=\(0, 8\)",
            ),
            ({"tile_grid_size": (8, -2)}, ValueError, r"Received: tile_grid_size=\(8, -2\)"),
            (
                {"tile_grid_size": (2.5, 8)},
                TypeError,
                r"`tile_grid_size` must be a pair of two ints \(rows, cols\). Received: tile_grid_size=\(2.5, 8\)",
            ),
            ({"tile_grid_size": 8}, TypeError, r"Received: tile_grid_size=8"),
            ({"tile_grid_size": (8, 8, 8)}, TypeError, r"Received: tile_grid_size=\(8, 8, 8\)"),
            ({"clip_limit": float("nan")}, ValueError, r"`clip_limit` must be a finite number"),
            ({"clip_limit": "2"}, TypeError, r"`clip_limit` must be a number"),
            ({"channels": "joint"}, ValueError, r"`channels` must be one of 'per_channel', 'luminance'"),
        ],
        ids=lambda v: v if isinstance(v, str) else None,
    )
    def test_bad_clahe_arguments(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            tf_histeq.clahe(IMAGE, **kwargs)

    @pytest.mark.parametrize("op", OPS)
    def test_nan_and_infinities_in_floats(self, op):
        image = _images.beta(2, 5)((24, 24), np.uint8).astype(np.float32)
        image[0, 0], image[1, 1], image[2, 2] = np.nan, np.inf, -np.inf
        out = op(image).numpy()
        assert np.isnan(out[0, 0]) and np.isfinite(np.delete(out.ravel(), 0)).all()
        # Infinities are clipped to the value range like any other outlier; NaN is left out.
        clipped = np.clip(image, 0, 255)
        mask = ~np.isnan(image)
        assert_same_pixels(out[mask], op(np.where(mask, clipped, 0).astype(np.float32), mask=mask).numpy()[mask])

    @pytest.mark.parametrize("op", OPS)
    @pytest.mark.parametrize("shape", [(0, 0), (0, 7), (3, 0, 2), (0, 4, 4, 3)], ids=str)
    def test_empty_images(self, op, shape):
        out = op(np.zeros(shape, np.uint8)).numpy()
        assert out.shape == shape

    @pytest.mark.parametrize("op", OPS)
    def test_a_1x1_image_is_returned_as_opencv_does(self, op, cv2):
        image = np.array([[77]], np.uint8)
        expected = (
            cv2.equalizeHist(image) if op is tf_histeq.equalize_hist else cv2.createCLAHE(2.0, (8, 8)).apply(image)
        )
        assert_same_pixels(op(image).numpy(), expected)

    @pytest.mark.slow
    def test_an_image_of_2_to_the_25_pixels(self, cv2):
        # 4096 x 8192 = 2**25 pixels: above 2**24, where float32 counts stop being exact.
        image = _images.xray(border=64)((4096, 8192), np.uint8)
        assert_same_pixels(tf_histeq.equalize_hist(image).numpy(), cv2.equalizeHist(image))


# Run in a subprocess: `tf.config.experimental.enable_op_determinism()` cannot be undone in a process.
_DETERMINISTIC_HASHES = textwrap.dedent(
    """
    import hashlib, json, sys
    import numpy as np, tensorflow as tf
    tf.config.experimental.enable_op_determinism()
    import tf_histeq
    batch, ops = tf.constant(np.load(sys.argv[1])), json.loads(sys.argv[2])
    out = {}
    for name, kw in ops.items():
        op = getattr(tf_histeq, name)
        for mode in ["eager", "function", "xla"]:
            fn = (lambda x: op(x, **kw)) if mode == "eager" else tf.function(lambda x: op(x, **kw), jit_compile=mode == "xla")
            out[f"{name}-{mode}"] = hashlib.sha256(fn(batch).numpy().tobytes()).hexdigest()
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_results_are_bit_identical_with_op_determinism_and_across_modes(tmp_path):
    batch = np.clip(np.random.default_rng(3).normal(110, 25, (3, 61, 47, 3)), 0, 255).astype(np.uint8)
    ops = {"equalize_hist": {}, "clahe": {"clip_limit": 3.0}}
    np.save(tmp_path / "batch.npy", batch)
    command = [sys.executable, "-c", _DETERMINISTIC_HASHES, str(tmp_path / "batch.npy"), json.dumps(ops)]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    deterministic = json.loads(result.stdout.strip().splitlines()[-1])
    for name, kwargs in ops.items():
        # Here op determinism is off; eager results are the reference for every mode there.
        plain = hashlib.sha256(getattr(tf_histeq, name)(batch, **kwargs).numpy().tobytes()).hexdigest()
        for mode in ("eager", "function", "xla"):
            assert deterministic[f"{name}-{mode}"] == plain, f"{name}, {mode} with op determinism"


def test_pairs_may_be_arrays_tensors_or_lists():
    image = _images.xray()((32, 32), np.uint8)
    expected = tf_histeq.clahe(image, tile_grid_size=(2, 4), value_range=(0, 255)).numpy()
    for pair in (np.array, tf.constant, list):
        actual = tf_histeq.clahe(image, tile_grid_size=pair([2, 4]), value_range=pair([0, 255])).numpy()
        assert_same_pixels(actual, expected, pair.__name__)
