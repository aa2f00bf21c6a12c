"""The CLAHE kernel `tf_histeq._clahe.clahe_levels`: bit-exact parity with `cv2.createCLAHE`.

The kernel works on int32 levels `(N, H, W, P)`; these tests feed it uint8 and
uint16 images (256 and 65536 bins), cast the result back and compare it with
the real OpenCV pixel for pixel. A NumPy transliteration of OpenCV's
`CLAHE_Impl::apply` (checked against cv2 here too) is the reference where
OpenCV has nothing to compare with: masks and bin counts other than 256 and
65536.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import tensorflow as tf

from tests import _images
from tests._references import assert_same_pixels
from tf_histeq._clahe import clahe_levels

cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

CLIPS = [0.0, 1.0, 2.0, 4.0, 40.0]
GRIDS = [(1, 1), (2, 3), (8, 8), (16, 16)]  # (rows, cols)
MODES = ["eager", "function", "xla"]
BINS = {np.dtype(np.uint8): 256, np.dtype(np.uint16): 65536}


def grid_id(grid) -> str:
    return f"grid{grid[0]}x{grid[1]}"


def clip_id(clip) -> str:
    return f"clip{clip:g}"


def shape_id(shape) -> str:
    return "x".join(map(str, shape))


# --- running the kernel and the references ----------------------------------------------------------------------


def run_kernel(images, *, clip_limit, grid, bins=None, valid=None, mode="eager"):
    """`clahe_levels` on uint images `(N, H, W)` or `(N, H, W, P)`; returns the input's layout and dtype.

    `mode="function"` and `"xla"` trace with unknown N, H and W.
    """
    images = np.asarray(images)
    squeeze = images.ndim == 3
    planes = images[..., None] if squeeze else images
    bins = bins or BINS[images.dtype]
    levels = tf.constant(planes.astype(np.int32))

    if mode == "eager":
        out = clahe_levels(levels, bins=bins, clip_limit=clip_limit, grid=grid, valid=valid)
    else:
        setting = (mode, planes.shape[-1], bins, clip_limit, tuple(grid))
        shared = valid is None and not tf.is_tensor(clip_limit)
        out = (shared_kernel(*setting) if shared else traced_kernel(*setting, valid))(levels)
    assert out.dtype == tf.int32
    out = out.numpy()
    assert out.shape == planes.shape
    assert out.min(initial=0) >= 0 and out.max(initial=0) < bins
    out = out.astype(images.dtype)
    return out[..., 0] if squeeze else out


def traced_kernel(mode, planes, bins, clip_limit, grid, valid):
    """`clahe_levels` in a `tf.function` of unknown N, H and W (XLA still compiles each shape)."""
    return tf.function(
        lambda x: clahe_levels(x, bins=bins, clip_limit=clip_limit, grid=grid, valid=valid),
        input_signature=[tf.TensorSpec([None, None, None, planes], tf.int32)],
        jit_compile=mode == "xla",
    )


# Without a mask or a tensor limit the setting is hashable: the tests of one setting share its trace.
shared_kernel = functools.cache(functools.partial(traced_kernel, valid=None))


def cv2_clahe(images, *, clip_limit, grid):
    """`cv2.createCLAHE(clip_limit, (cols, rows)).apply` on every plane of `(N, H, W)` or `(N, H, W, P)`."""
    engine = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(grid[1], grid[0]))
    images = np.asarray(images)
    out = np.empty_like(images)
    for n in range(images.shape[0]):
        if images.ndim == 3:
            out[n] = engine.apply(np.ascontiguousarray(images[n]))
        else:
            for p in range(images.shape[-1]):
                out[n, ..., p] = engine.apply(np.ascontiguousarray(images[n, ..., p]))
    return out


def numpy_clahe(image, *, clip_limit, grid, bins, valid=None):
    """OpenCV's CLAHE (`clahe.cpp`) for one `(H, W)` plane in NumPy, with the kernel's documented mask rule.

    Only `valid` pixels (reflected into the padding like the image) build a
    tile's histogram; `area` is the tile's number of valid pixels; a tile with
    none gets the identity table. Float32 throughout, like OpenCV.
    """
    rows, cols = grid
    h, w = image.shape
    pad_h, pad_w = (rows - h % rows, cols - w % cols) if (h % rows or w % cols) else (0, 0)
    padded = np.pad(image, ((0, pad_h), (0, pad_w)), mode="reflect")  # reflect-101, periodic if needed
    valid = np.ones(image.shape, bool) if valid is None else np.asarray(valid, bool)
    padded_valid = np.pad(valid, ((0, pad_h), (0, pad_w)), mode="reflect")
    th, tw = padded.shape[0] // rows, padded.shape[1] // cols
    luts = np.empty((rows, cols, bins), np.float32)
    for r in range(rows):
        for c in range(cols):
            window = np.s_[r * th : (r + 1) * th, c * tw : (c + 1) * tw]
            tile, inside = padded[window], padded_valid[window]
            area = int(inside.sum())
            if area == 0:
                luts[r, c] = np.arange(bins)
                continue
            hist = np.bincount(tile[inside], minlength=bins).astype(np.int64)
            if clip_limit > 0:
                clip = max(int(clip_limit * area / bins), 1)
                excess = int(np.maximum(hist - clip, 0).sum())
                hist = np.minimum(hist, clip)
                batch, residual = divmod(excess, bins)
                hist += batch
                if residual:
                    step = max(bins // residual, 1)
                    hist[np.arange(0, bins, step)[:residual]] += 1
            scale = np.float32(bins - 1) / np.float32(area)
            luts[r, c] = np.clip(np.rint(np.cumsum(hist).astype(np.float32) * scale), 0, bins - 1)

    def axis(size, tile, tiles):
        pos = np.arange(size).astype(np.float32) * (np.float32(1) / np.float32(tile)) - np.float32(0.5)
        low = np.floor(pos)
        first = low.astype(np.int64)
        return np.maximum(first, 0), np.minimum(first + 1, tiles - 1), (pos - low).astype(np.float32)

    ty1, ty2, ya = axis(h, th, rows)
    tx1, tx2, xa = axis(w, tw, cols)
    xa, ya = xa[None, :], ya[:, None]
    xa1, ya1 = np.float32(1) - xa, np.float32(1) - ya
    lut = lambda ty, tx: luts[ty[:, None], tx[None, :], image]  # noqa: E731
    res = (lut(ty1, tx1) * xa1 + lut(ty1, tx2) * xa) * ya1 + (lut(ty2, tx1) * xa1 + lut(ty2, tx2) * xa) * ya
    return np.clip(np.rint(res), 0, bins - 1).astype(image.dtype)


def assert_batch_equal(actual, expected, names, what=""):
    """Compare image by image, so that a failure names the image, counts its differing pixels and max |diff|."""
    failures = []
    for name, a, e in zip(names, actual, expected, strict=True):
        try:
            assert_same_pixels(a, e, f"{what}{name}:")
        except AssertionError as err:
            failures.append(str(err))
    assert not failures, "; ".join(failures)


# --- inputs -------------------------------------------------------------------------------------------------------

DESIGNED = dict(_images.DESIGNED, constant=_images.constant(0.45))


def designed_batch(shape, dtype=np.uint8):
    """The designed low-contrast images of `shape`, stacked: (names, (N, H, W))."""
    return list(DESIGNED), np.stack([make(shape, dtype) for make in DESIGNED.values()])


def with_low_bits(image8: np.ndarray, bits: int, salt: int) -> np.ndarray:
    """A uint16 image from a uint8 one: shifted left by `bits`, the new low bits filled with noise."""
    noise = np.random.default_rng(salt).integers(0, 2**bits, image8.shape)
    return (image8.astype(np.uint16) << bits) | noise.astype(np.uint16)


def real_images(scale: int):
    """scikit-image's 8-bit gray images, subsampled by `scale` (1 = full size).

    The 1411x1411 RGB retina is made gray at half that resolution; microaneurysms
    (102x102) is always full size.
    """
    from skimage.color import rgb2gray

    retina = (rgb2gray(skdata.retina()[:: 2 * scale, :: 2 * scale]) * 255).round().astype(np.uint8)
    images = {
        "camera": skdata.camera(),
        "moon": skdata.moon(),
        "coins": skdata.coins(),
        "page": skdata.page(),
        "text": skdata.text(),
        "cell": skdata.cell(),
        "retina-gray": retina,
        "microaneurysms": skdata.microaneurysms(),
    }
    return {
        name: np.ascontiguousarray(im if name in ("retina-gray", "microaneurysms") else im[::scale, ::scale])
        for name, im in images.items()
    }


# Edge cases: named images, each small enough for a quick eager call.
def _edge_cases():
    rng = np.random.default_rng(7)
    ramp = np.arange(256, dtype=np.uint8)
    return {
        "1x1": np.array([[77]], np.uint8),
        "1x7": rng.integers(90, 110, (1, 7)).astype(np.uint8),
        "7x1": rng.integers(90, 110, (7, 1)).astype(np.uint8),
        "2x2": np.array([[0, 255], [128, 3]], np.uint8),
        "3x5-random": rng.integers(0, 256, (3, 5)).astype(np.uint8),
        "constant-64x64": np.full((64, 64), 200, np.uint8),
        "constant-37x53": np.full((37, 53), 3, np.uint8),
        "zeros-20x20": np.zeros((20, 20), np.uint8),
        "two-levels-37x53": _images.two_levels(0.3, 0.32)((37, 53), np.uint8),
        "no-zeros-7x300": _images.no_zeros()((7, 300), np.uint8),
        "H-divisible-64x37": _images.band(0.3, 0.5)((64, 37), np.uint8),
        "W-divisible-37x64": _images.band(0.3, 0.5)((37, 64), np.uint8),
        "ramp-16x256": np.tile(ramp, (16, 1)),
        "full-range-noise-45x77": rng.integers(0, 256, (45, 77)).astype(np.uint8),
        "saturated-33x33": np.where(rng.random((33, 33)) < 0.5, 0, 255).astype(np.uint8),
    }


EDGE_CASES = _edge_cases()


# --- parity with OpenCV -------------------------------------------------------------------------------------------


class TestReference:
    @pytest.mark.parametrize("grid", GRIDS, ids=grid_id)
    @pytest.mark.parametrize("clip", CLIPS, ids=clip_id)
    @pytest.mark.parametrize("shape", [(37, 53), (7, 300), (64, 64)], ids=shape_id)
    def test_designed_uint8_images_match_cv2(self, shape, clip, grid):
        names, images = designed_batch(shape)
        expected = cv2_clahe(images, clip_limit=clip, grid=grid)
        changed = [name for name, e, i in zip(names, expected, images, strict=True) if (e != i).any()]
        assert len(changed) >= len(names) - 1, "the designed images must make the tables work"
        assert_batch_equal(run_kernel(images, clip_limit=clip, grid=grid), expected, names)

    @pytest.mark.parametrize(
        ("clip", "grid"),
        [(clip, grid) for clip in [0.0, 2.0, 40.0] for grid in [(1, 1), (2, 3)]] + [(2.0, (8, 8))],
        ids=lambda v: clip_id(v) if isinstance(v, float) else grid_id(v),
    )
    def test_designed_uint16_images_match_cv2(self, clip, grid):
        names, images = designed_batch((37, 53), np.uint16)
        expected = cv2_clahe(images, clip_limit=clip, grid=grid)
        assert_batch_equal(run_kernel(images, clip_limit=clip, grid=grid), expected, names)

    @pytest.mark.parametrize("grid", GRIDS, ids=grid_id)
    @pytest.mark.parametrize("clip", [0.0, 2.0, 40.0], ids=clip_id)
    @pytest.mark.parametrize("name", list(EDGE_CASES))
    def test_edge_cases_match_cv2(self, name, clip, grid):
        image = EDGE_CASES[name][None]
        expected = cv2_clahe(image, clip_limit=clip, grid=grid)
        assert_same_pixels(run_kernel(image, clip_limit=clip, grid=grid), expected, name)

    @pytest.mark.parametrize("name", ["1x1", "7x1", "3x5-random", "constant-37x53", "H-divisible-64x37"])
    def test_edge_cases_match_cv2_uint16(self, name):
        image = with_low_bits(EDGE_CASES[name], 8, salt=3)[None]
        for grid in [(8, 8), (2, 3)]:
            expected = cv2_clahe(image, clip_limit=2.0, grid=grid)
            assert_same_pixels(run_kernel(image, clip_limit=2.0, grid=grid), expected, f"{name} {grid}")

    @pytest.mark.parametrize("clip", [0.01, 0.5, 3.3, 1000.0, 1e9, 1e300], ids=clip_id)
    def test_unusual_clip_limits_match_cv2(self, clip):
        # 1e9 and 1e300 overflow OpenCV's int clip count, which then becomes 1 on x86-64.
        names, images = designed_batch((45, 61))
        expected = cv2_clahe(images, clip_limit=clip, grid=(4, 5))
        assert_batch_equal(run_kernel(images, clip_limit=clip, grid=(4, 5)), expected, names)

    @pytest.mark.parametrize("grid", GRIDS, ids=grid_id)
    @pytest.mark.parametrize("clip", [0.0, 2.0, 40.0], ids=clip_id)
    def test_real_images_match_cv2(self, clip, grid):
        for name, image in real_images(scale=4).items():
            expected = cv2_clahe(image[None], clip_limit=clip, grid=grid)
            assert_same_pixels(run_kernel(image[None], clip_limit=clip, grid=grid), expected, name)

    def test_real_uint16_image_matches_cv2(self):
        image = with_low_bits(real_images(scale=4)["camera"], 8, salt=1)[None]
        expected = cv2_clahe(image, clip_limit=2.0, grid=(8, 8))
        assert_same_pixels(run_kernel(image, clip_limit=2.0, grid=(8, 8)), expected)

    @pytest.mark.slow
    @pytest.mark.parametrize("grid", GRIDS + [(8, 5)], ids=grid_id)
    @pytest.mark.parametrize("clip", CLIPS, ids=clip_id)
    def test_full_size_real_images_match_cv2(self, clip, grid):
        for name, image in real_images(scale=1).items():
            expected = cv2_clahe(image[None], clip_limit=clip, grid=grid)
            assert_same_pixels(run_kernel(image[None], clip_limit=clip, grid=grid), expected, name)

    @pytest.mark.slow
    @pytest.mark.parametrize("bits", [4, 8], ids=lambda b: f"{b}-low-bits")
    @pytest.mark.parametrize("grid", [(8, 8), (3, 5)], ids=grid_id)
    def test_full_size_real_uint16_images_match_cv2(self, bits, grid):
        for salt, (name, image) in enumerate(real_images(scale=2).items()):
            image16 = with_low_bits(image, bits, salt)[None]
            expected = cv2_clahe(image16, clip_limit=2.0, grid=grid)
            assert_same_pixels(run_kernel(image16, clip_limit=2.0, grid=grid), expected, name)

    @pytest.mark.slow
    def test_random_shapes_grids_and_clips_match_cv2(self):
        rng = np.random.default_rng(2024)
        for trial in range(300):
            h, w = (int(v) for v in rng.integers(1, 90, 2))
            grid = tuple(int(v) for v in rng.integers(1, 13, 2))
            clip = float(rng.choice([0.0, 0.3, 1.0, 2.0, 4.0, 40.0]))
            low, high = sorted(int(v) for v in rng.integers(0, 256, 2))
            image = rng.integers(low, high + 1, (1, h, w)).astype(np.uint8)
            expected = cv2_clahe(image, clip_limit=clip, grid=grid)
            actual = run_kernel(image, clip_limit=clip, grid=grid)
            assert_same_pixels(actual, expected, f"trial {trial} {h}x{w} grid {grid} clip {clip}:")

    @pytest.mark.parametrize("name", ["3x5-random", "constant-37x53", "H-divisible-64x37", "full-range-noise-45x77"])
    @pytest.mark.parametrize("grid", [(1, 1), (2, 3), (16, 16)], ids=grid_id)
    def test_numpy_reference_matches_cv2(self, name, grid):
        """The NumPy reference used for masks and other bin counts is itself exact against cv2."""
        image = EDGE_CASES[name]
        for clip in [0.0, 2.0]:
            expected = cv2_clahe(image[None], clip_limit=clip, grid=grid)[0]
            assert_same_pixels(numpy_clahe(image, clip_limit=clip, grid=grid, bins=256), expected, name)


# --- run modes, shapes and the batch/plane contract ---------------------------------------------------------------

GRAPH_CASES = [
    pytest.param("designed-37x53", (8, 8), 2.0, np.uint8, id="designed-37x53-grid8x8-clip2"),
    pytest.param("designed-7x300", (2, 3), 40.0, np.uint8, id="designed-7x300-grid2x3-clip40"),
    pytest.param("designed-64x64", (16, 16), 0.0, np.uint8, id="designed-64x64-grid16x16-clip0"),
    pytest.param("noise-45x77", (5, 7), 1.0, np.uint8, id="noise-45x77-grid5x7-clip1"),
    pytest.param("1x1", (8, 8), 2.0, np.uint8, id="1x1-grid8x8-clip2"),
    pytest.param("designed-37x53", (2, 3), 2.0, np.uint16, id="designed-uint16-37x53-grid2x3-clip2"),
]


def graph_case_images(name, dtype):
    if name.startswith("designed-"):
        shape = tuple(int(v) for v in name.split("-")[1].split("x"))
        return designed_batch(shape, dtype)
    if name == "noise-45x77":
        # Uniform noise over many images: rounding ties and near-ties everywhere,
        # which is where a fused multiply-add would show.
        images = np.random.default_rng(11).integers(0, 256, (12, 45, 77)).astype(dtype)
        return [f"noise{i}" for i in range(12)], images
    return [name], EDGE_CASES[name][None].astype(dtype)


class TestGraph:
    @pytest.mark.parametrize("mode", MODES)
    def test_clip_count_is_a_float64_division_in_every_mode(self, mode):
        # 4.1 * 400 is 1639.9999999999998 in float64: divided by 40 it truncates to a
        # clip count of 40, multiplied by the reciprocal 1/40 (what tf.function and XLA
        # make of a division by a constant) to 41.
        image = np.minimum(np.random.default_rng(0).geometric(0.15, (20, 20)) - 1, 39).astype(np.uint8)
        expected = numpy_clahe(image, clip_limit=4.1, grid=(1, 1), bins=40)  # one 400-pixel tile
        assert (numpy_clahe(image, clip_limit=4.1000001, grid=(1, 1), bins=40) != expected).any()
        actual = run_kernel(image[None], clip_limit=4.1, grid=(1, 1), bins=40, mode=mode)[0]
        assert_same_pixels(actual, expected)

    @pytest.mark.slow
    def test_xla_matches_cv2_on_random_shapes_grids_and_clips(self):
        rng = np.random.default_rng(77)
        for trial in range(10):
            h, w = (int(v) for v in rng.integers(1, 120, 2))
            grid = tuple(int(v) for v in rng.integers(1, 12, 2))
            clip = float(rng.choice([0.0, 0.5, 1.0, 2.0, 40.0]))
            images = rng.integers(0, 256, (4, h, w)).astype(np.uint8)
            expected = cv2_clahe(images, clip_limit=clip, grid=grid)
            actual = run_kernel(images, clip_limit=clip, grid=grid, mode="xla")
            assert_same_pixels(actual, expected, f"trial {trial} {h}x{w} grid {grid} clip {clip}:")

    @pytest.mark.parametrize(("name", "grid", "clip", "dtype"), GRAPH_CASES)
    def test_eager_function_and_xla_are_identical_and_exact(self, name, grid, clip, dtype):
        names, images = graph_case_images(name, dtype)
        expected = cv2_clahe(images, clip_limit=clip, grid=grid)
        for mode in MODES:
            actual = run_kernel(images, clip_limit=clip, grid=grid, mode=mode)
            assert_batch_equal(actual, expected, names, f"{mode} ")

    def test_one_trace_serves_every_shape(self):
        signature = [tf.TensorSpec([None, None, None, 1], tf.int32)]
        traced = tf.function(
            lambda x: clahe_levels(x, bins=256, clip_limit=2.0, grid=(8, 8)), input_signature=signature
        )
        for shape in [(37, 53), (64, 64), (7, 300), (1, 1)]:
            names, images = designed_batch(shape)
            actual = traced(tf.constant(images[..., None].astype(np.int32))).numpy()[..., 0].astype(np.uint8)
            assert_batch_equal(actual, cv2_clahe(images, clip_limit=2.0, grid=(8, 8)), names, f"{shape} ")
        assert traced.experimental_get_tracing_count() == 1

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize(
        "shape", [(0, 5, 5, 1), (2, 0, 5, 1), (1, 0, 7, 1), (2, 5, 0, 3), (0, 0, 0, 2)], ids=shape_id
    )
    def test_empty_input_gives_empty_output(self, shape, mode):
        images = np.zeros(shape, np.uint8)
        assert run_kernel(images, clip_limit=2.0, grid=(3, 4), mode=mode).shape == shape


class TestContract:
    def test_batch_equals_stack_of_single_images(self):
        rng = np.random.default_rng(5)
        names = ["dark-band", "noise", "constant-0", "constant-255", "bright-beta", "saturated"]
        images = np.stack(
            [
                _images.band(0.05, 0.1)((40, 50), np.uint8),
                rng.integers(0, 256, (40, 50)).astype(np.uint8),
                np.zeros((40, 50), np.uint8),
                np.full((40, 50), 255, np.uint8),
                _images.beta(5, 1, 0.8, 1.0)((40, 50), np.uint8),
                np.where(rng.random((40, 50)) < 0.1, 255, 0).astype(np.uint8),
            ]
        )
        batch = run_kernel(images, clip_limit=2.0, grid=(3, 4))
        singles = np.stack([run_kernel(im[None], clip_limit=2.0, grid=(3, 4))[0] for im in images])
        assert_batch_equal(batch, singles, names)
        assert_batch_equal(batch, cv2_clahe(images, clip_limit=2.0, grid=(3, 4)), names)

    @pytest.mark.parametrize("mode", ["eager", "xla"])
    def test_planes_are_independent(self, mode):
        planes = [_images.band(0.4, 0.55), _images.beta(0.5, 0.5), _images.constant(0.1)]
        image = np.stack([make((33, 70), np.uint8) for make in planes], axis=-1)
        images = np.stack([image, image[..., ::-1]])  # the second image has its planes in the other order
        actual = run_kernel(images, clip_limit=4.0, grid=(4, 4), mode=mode)
        expected = cv2_clahe(images, clip_limit=4.0, grid=(4, 4))
        for p in range(3):
            alone = run_kernel(images[..., p], clip_limit=4.0, grid=(4, 4))
            assert_same_pixels(actual[..., p], alone, f"plane {p} vs alone:")
            assert_same_pixels(actual[..., p], expected[..., p], f"plane {p} vs cv2:")

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
    def test_per_image_clip_limits_match_cv2_at_each_limit(self, dtype, mode):
        # One limit per image, all different: no clipping (0 and below), decimals
        # whose clip count double rounding decides, and the overflow to one count.
        names, images = designed_batch((37, 53), dtype)
        # In OpenCV's units a uint16 tile's mean bin count is 256 times smaller: scale the limits.
        limits = np.array([0.0, 1.1, 40.0, 0.5, 4.1, -1.0, 2.0, 1e9], np.float32) * (BINS[images.dtype] // 256)
        levels = tf.constant(images[..., None].astype(np.int32))

        def kernel(x, c):
            return clahe_levels(x, bins=BINS[images.dtype], clip_limit=c, grid=(3, 4))

        if mode != "eager":
            signature = [tf.TensorSpec([None, None, None, 1], tf.int32), tf.TensorSpec([None], tf.float32)]
            kernel = tf.function(kernel, input_signature=signature, jit_compile=mode == "xla")
        actual = kernel(levels, tf.constant(limits)).numpy()[..., 0].astype(dtype)
        sensitive = 0
        for name, image, got, limit, other in zip(names, images, actual, limits, np.roll(limits, 1), strict=True):
            expected = cv2_clahe(image[None], clip_limit=float(limit), grid=(3, 4))[0]
            assert_same_pixels(got, expected, f"{name} at clip limit {limit}:")
            sensitive += (cv2_clahe(image[None], clip_limit=float(other), grid=(3, 4))[0] != expected).any()
        assert sensitive >= len(names) - 2, "the images must tell the limits apart"

    @pytest.mark.parametrize("bins", [2, 16, 100, 1024], ids=lambda b: f"bins{b}")
    def test_other_bin_counts_match_numpy_reference(self, bins):
        rng = np.random.default_rng(bins)
        image = np.clip(rng.normal(0.4 * bins, 0.1 * bins, (29, 41)), 0, bins - 1).astype(np.uint16)
        for clip, grid in [(0.0, (2, 3)), (2.0, (4, 4)), (40.0, (8, 8))]:
            expected = numpy_clahe(image, clip_limit=clip, grid=grid, bins=bins)
            actual = run_kernel(image[None], clip_limit=clip, grid=grid, bins=bins)[0]
            assert_same_pixels(actual, expected, f"clip {clip} grid {grid}:")


# --- masks (`valid`) ---------------------------------------------------------------------------------------------


class TestMask:
    @pytest.mark.parametrize(
        ("valid_shape", "mode"),
        [("N,H,W,1", "eager"), ("N,H,W,P", "eager"), ("H,W,1", "eager"), ("N,H,W,1", "xla")],
    )
    def test_all_true_valid_equals_no_valid(self, valid_shape, mode):
        images = np.stack([make((37, 53), np.uint8) for make in list(DESIGNED.values())[:3]], axis=-1)[None]
        images = np.concatenate([images, images[..., ::-1]])  # (2, 37, 53, 3)
        shape = {"N,H,W,1": (2, 37, 53, 1), "N,H,W,P": (2, 37, 53, 3), "H,W,1": (37, 53, 1)}[valid_shape]
        valid = tf.ones(shape, tf.bool)
        for clip, grid in [(2.0, (8, 8)), (40.0, (2, 3))]:
            with_mask = run_kernel(images, clip_limit=clip, grid=grid, valid=valid, mode=mode)
            without = run_kernel(images, clip_limit=clip, grid=grid, mode=mode)
            assert_same_pixels(with_mask, without, f"clip {clip} grid {grid}:")
            assert_same_pixels(with_mask, cv2_clahe(images, clip_limit=clip, grid=grid), "vs cv2:")

    def test_all_false_valid_leaves_levels_unchanged(self):
        _, images = designed_batch((37, 53))
        valid = tf.zeros(images.shape + (1,), tf.bool)
        assert_same_pixels(run_kernel(images, clip_limit=2.0, grid=(4, 4), valid=valid), images)

    def test_tile_without_valid_pixel_gets_identity_table(self):
        # Grid 1x2 on 40x64: tiles are 32 wide; the left tile has no valid pixel. Pixels
        # left of its centre (x < 16) use the left table only, so they keep their level;
        # pixels right of the right tile's centre (x >= 48) use the right table only.
        image = _images.band(0.3, 0.6)((40, 64), np.uint8)
        valid = np.ones((40, 64), bool)
        valid[:, :32] = False
        actual = run_kernel(image[None], clip_limit=2.0, grid=(1, 2), valid=tf.constant(valid[None, ..., None]))[0]
        assert_same_pixels(actual[:, :16], image[:, :16], "left of the invalid tile's centre:")
        right_only = cv2_clahe(image[None, :, 32:], clip_limit=2.0, grid=(1, 1))[0]
        assert_same_pixels(actual[:, 48:], right_only[:, 16:], "right of the valid tile's centre:")
        assert (actual[:, 48:] != image[:, 48:]).any()

    @pytest.mark.parametrize("mode", ["eager", "function", "xla"])
    def test_masked_kernel_matches_numpy_reference(self, mode):
        rng = np.random.default_rng(3)
        names, images = designed_batch((45, 61))
        images = np.stack([images, images[::-1]], axis=-1)  # (N, H, W, 2)
        yy, xx = np.mgrid[:45, :61]
        disc = (yy - 20) ** 2 + (xx - 35) ** 2 < 18**2
        valid = np.stack([disc, rng.random((45, 61)) < 0.3], axis=-1)  # a disc and sparse noise, per plane
        valid = np.broadcast_to(valid, images.shape).copy()
        valid[0] = False  # one image with no valid pixel at all
        combos = [(2.0, (4, 5)), (0.0, (3, 3)), (40.0, (16, 16))]
        for clip, grid in combos if mode == "eager" else combos[:1]:
            actual = run_kernel(images, clip_limit=clip, grid=grid, valid=tf.constant(valid), mode=mode)
            for n, name in enumerate(names):
                for p in range(2):
                    expected = numpy_clahe(
                        images[n, ..., p], clip_limit=clip, grid=grid, bins=256, valid=valid[n, ..., p]
                    )
                    assert_same_pixels(actual[n, ..., p], expected, f"{name} plane {p} clip {clip} grid {grid}:")
