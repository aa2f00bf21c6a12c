"""The adaptive-equalization kernel `tf_histeq._adapthist`: exact parity with skimage's `equalize_adapthist`.

Every plane of a batch is compared with `skimage.exposure.equalize_adapthist`
on that plane alone (2-D images and 3-D volumes, never read as RGB), at three
stages: skimage's 14-bit image, its integer image before the final rescale
(`_clahe`'s result) and the float output. Every comparison counts differing
values and must find none. Inputs are designed low-contrast images
(`tests/_images.py`) and a smooth CT-like phantom with noise in a narrow
range, in every input dtype the kernel takes.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import tensorflow as tf

from tests import _images
from tests._references import assert_same_pixels
from tf_histeq import _adapthist, _adapthist_hsv

exposure = pytest.importorskip("skimage.exposure")
sk_adapthist = pytest.importorskip("skimage.exposure._adapthist")
sk_dtype = pytest.importorskip("skimage.util.dtype")


# --- inputs ---------------------------------------------------------------------------------------------------------


def _unit_image(shape, index: int) -> np.ndarray:
    """A designed low-contrast 2-D image with values in [0, 1] (float64)."""
    return _images.varied(index, shape, np.uint16).astype(np.float64) / 65535


def _phantom(shape, seed: int) -> np.ndarray:
    """A smooth CT-like volume in [0, 1]: a bright ellipsoid and soft structures, noise in a narrow range."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, s) for s in shape), indexing="ij")
    body = np.exp(-((x / 0.8) ** 2 + (y / 0.7) ** 2 + (z / 0.9) ** 2) * 2)
    organs = 0.05 * np.sin(4 * x + 3 * y) * np.cos(2 * z)
    return np.clip(0.45 + 0.1 * body + organs + rng.normal(0, 0.01, shape), 0, 1)


def _as_dtype(unit: np.ndarray, dtype: str) -> np.ndarray:
    """Values in [0, 1] stored the way each kind of data comes."""
    if dtype == "uint8":
        return np.rint(unit * 255).astype(np.uint8)
    if dtype == "uint12":  # 12-bit data in uint16
        return np.rint(unit * 4095).astype(np.uint16)
    if dtype == "uint16":
        return np.rint(unit * 65535).astype(np.uint16)
    if dtype == "int16":  # CT in Hounsfield units, negatives included
        return np.rint(unit * 2000 - 1000).astype(np.int16)
    if dtype == "int32":
        return np.rint(unit * 100000 - 20000).astype(np.int32)
    return unit.astype(dtype)  # float32, float64


def images_2d(dtype: str, shape=(37, 45)) -> np.ndarray:
    """`(2, H, W, 2)`: four different designed planes."""
    planes = [_as_dtype(_unit_image(shape, i), dtype) for i in range(4)]
    return np.stack(planes).reshape(2, 2, *shape).transpose(0, 2, 3, 1)


def volumes_3d(dtype: str, shape=(12, 20, 24)) -> np.ndarray:
    """`(2, D, H, W, 1)`: two different phantoms."""
    return np.stack([_as_dtype(_phantom(shape, seed), dtype)[..., None] for seed in (0, 1)])


def planes_of(images: np.ndarray):
    """The `(n, c)` planes of `(N, *spatial, C)`."""
    return [(n, c, images[n, ..., c]) for n in range(images.shape[0]) for c in range(images.shape[-1])]


# --- references: skimage, plane by plane ----------------------------------------------------------------------------


def sk_quantized(plane: np.ndarray) -> np.ndarray:
    """skimage's 14-bit image: the first two lines of `equalize_adapthist`."""
    image = sk_dtype.img_as_uint(plane)
    return np.round(exposure.rescale_intensity(image, out_range=(0, sk_adapthist.NR_OF_GRAY - 1))).astype(np.uint16)


def sk_integer(plane: np.ndarray, kernel_size, clip_limit, nbins) -> np.ndarray:
    """skimage's `_clahe` result: the integer image before the final rescale."""
    kernel = _adapthist.kernel_shape(kernel_size, plane.shape)
    return sk_adapthist._clahe(sk_quantized(plane), list(kernel), clip_limit, nbins)


def sk_output(plane: np.ndarray, kernel_size=None, clip_limit=0.01, nbins=256) -> np.ndarray:
    return exposure.equalize_adapthist(plane, kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins)


# --- the kernel, eager or shared XLA traces -------------------------------------------------------------------------


@functools.cache
def _traced(stage: str, spatial_dims: int, kernel_size, clip_limit: float, nbins: int, jit_compile: bool = True):
    fn = {"output": _adapthist.equalize_adapthist_planes, "integer": _adapthist.clahe_integer}[stage]
    return tf.function(
        lambda x: fn(x, spatial_dims=spatial_dims, kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins),
        jit_compile=jit_compile,
    )


def options_of(options: dict) -> dict:
    """`options` without `spatial_dims`."""
    return {k: v for k, v in options.items() if k != "spatial_dims"}


def run(stage: str, images, spatial_dims, kernel_size=None, clip_limit=0.01, nbins=256, mode="eager"):
    if isinstance(kernel_size, list):
        kernel_size = tuple(kernel_size)
    if mode in ("xla", "function"):
        fn = _traced(stage, spatial_dims, kernel_size, clip_limit, nbins, jit_compile=mode == "xla")
        return fn(tf.constant(images)).numpy()
    fn = {"output": _adapthist.equalize_adapthist_planes, "integer": _adapthist.clahe_integer}[stage]
    return fn(images, spatial_dims=spatial_dims, kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins).numpy()


def assert_stages(images, spatial_dims, kernel_size=None, clip_limit=0.01, nbins=256):
    """All three stages of every plane equal skimage's (0 differing values)."""
    options = dict(kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins)
    quantized = _adapthist.quantized(images, spatial_dims=spatial_dims).numpy()
    integer = run("integer", images, spatial_dims, **options)
    output = run("output", images, spatial_dims, **options)
    for n, c, plane in planes_of(images):
        what = f"plane ({n}, {c}) {images.dtype} {plane.shape} {options}:"
        assert_same_pixels(quantized[n, ..., c].astype(np.uint16), sk_quantized(plane), f"{what} 14-bit image")
        assert_same_pixels(integer[n, ..., c].astype(np.uint16), sk_integer(plane, **options), f"{what} integer image")
        assert_same_pixels(output[n, ..., c], sk_output(plane, **options), f"{what} output")


# --- exactness ------------------------------------------------------------------------------------------------------

DTYPES = ["uint8", "uint12", "uint16", "int16", "int32", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_2d_dtypes(dtype):
    assert_stages(images_2d(dtype), 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_3d_dtypes(dtype):
    assert_stages(volumes_3d(dtype), 3)


OPTIONS = [
    dict(kernel_size=1, clip_limit=0.01),  # one voxel per tile
    dict(kernel_size=None, clip_limit=0.0),  # no clipping
    dict(kernel_size=5, clip_limit=1e-4),  # clim 1: every bin at most 1
    dict(kernel_size=7, clip_limit=1.0),
    dict(kernel_size=6, clip_limit=0.05, nbins=128),
    dict(kernel_size=4, clip_limit=0.02, nbins=1000),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}{v}" for k, v in o.items()))
def test_2d_options(options):
    assert_stages(images_2d("uint16", (29, 34)), 2, **options)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}{v}" for k, v in o.items()))
def test_3d_options(options):
    assert_stages(volumes_3d("int16", (9, 13, 11)), 3, **options)


@pytest.mark.parametrize(
    "shape, kernel_size",
    [
        ((13, 17, 23), (3, 5, 7)),  # anisotropic, nothing divisible
        ((13, 17, 23), (13, 17, 23)),  # the whole axis: one tile
        ((13, 17, 23), (20, 2, 40)),  # longer than the axis: reflected several times
        ((1, 17, 23), (1, 4, 4)),  # a one-slice volume
        ((12, 20, 24), (12, 1, 24)),
    ],
)
def test_3d_geometry(shape, kernel_size):
    assert_stages(volumes_3d("uint12", shape)[:1], 3, kernel_size=kernel_size)


@pytest.mark.parametrize("kernel_size", [(37, 45), (5, 30), (60, 3)])
def test_2d_geometry(kernel_size):
    assert_stages(images_2d("uint8"), 2, kernel_size=kernel_size)


def test_slabs_match_one_step():
    """The slab size of the histogram loop (and, outside XLA, the interpolation loop) changes no value."""
    images = volumes_3d("uint16", (12, 20, 24))
    whole = run("integer", images, 3, kernel_size=(5, 6, 7))
    size, _adapthist._SLAB_VOXELS = _adapthist._SLAB_VOXELS, 2 * 20 * 24  # 1 slice of both volumes per step
    try:
        sliced = run("integer", images, 3, kernel_size=(5, 6, 7))
    finally:
        _adapthist._SLAB_VOXELS = size
    assert_same_pixels(sliced, whole, "slabs of one slice vs one slab:")


def test_constant_planes():
    """A constant plane: skimage's `np.clip` branches of both rescales."""
    images = np.stack([np.full((1, 16, 18), v, np.uint16) for v in (0, 7, 40000)], axis=-1)
    images = np.concatenate([images, images_2d("uint16", (16, 18))[:1, ..., :1].repeat(3, -1)])
    assert_stages(images, 2, kernel_size=4)


# --- eager and XLA --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spatial_dims, dtype, options",
    [
        (2, "uint16", dict(kernel_size=(6, 9), clip_limit=0.01)),
        (3, "int16", dict(kernel_size=(4, 6, 5), clip_limit=0.02, nbins=128)),
        pytest.param(3, "float32", dict(kernel_size=None, clip_limit=0.01), marks=pytest.mark.slow),
    ],
)
def test_xla_identical_to_eager(spatial_dims, dtype, options):
    """XLA and a plain `tf.function` (Grappler's rewrites) give the eager values, which are skimage's."""
    images = images_2d(dtype) if spatial_dims == 2 else volumes_3d(dtype)
    eager = run("output", images, spatial_dims, **options)
    compiled = run("output", images, spatial_dims, mode="xla", **options)
    assert_same_pixels(compiled, eager, "XLA vs eager:")
    assert_same_pixels(run("output", images, spatial_dims, mode="function", **options), eager, "tf.function vs eager:")
    for n, c, plane in planes_of(images):
        assert_same_pixels(compiled[n, ..., c], sk_output(plane, **options), f"XLA plane ({n}, {c}) vs skimage:")


def test_unknown_batch_matches_known():
    """A batch size unknown when tracing (64-bit table offsets) gives the values of a known one."""
    images = volumes_3d("uint16", (9, 13, 11))
    options = dict(spatial_dims=3, kernel_size=(3, 4, 5), clip_limit=0.02)
    spec = tf.TensorSpec([None, 9, 13, 11, 1], tf.uint16)
    unknown = tf.function(lambda x: _adapthist.equalize_adapthist_planes(x, **options), input_signature=[spec])
    assert_same_pixels(unknown(images).numpy(), run("output", images, 3, **options_of(options)), "unknown batch:")


def test_xla_has_no_host_callbacks():
    """No host callback or transfer in the HLO (the trace of `test_xla_identical_to_eager`'s 3-D case)."""
    fn = _traced("output", 3, (4, 6, 5), 0.02, 128)
    hlo = fn.experimental_get_compiler_ir(tf.constant(volumes_3d("int16")))(stage="hlo")
    for word in ("custom-call", "send(", "recv(", "infeed", "outfeed", "host"):
        assert word not in hlo.lower(), word


# --- layouts and RGB ------------------------------------------------------------------------------------------------


def test_volume_of_three_columns_is_a_volume():
    """A `(D, H, 3)` volume is processed as a volume; skimage's public function would read it as RGB."""
    volume = _as_dtype(_phantom((20, 24, 3), 2), "uint16")
    out = run("output", volume[None, ..., None], 3, kernel_size=(5, 6, 2))[0, ..., 0]
    as_volume = exposure.equalize_adapthist.__wrapped__(volume, kernel_size=(5, 6, 2))  # without adapt_rgb
    assert_same_pixels(out, as_volume, "(20, 24, 3) volume:")
    assert exposure.equalize_adapthist(volume).shape == (20, 24, 3)  # skimage: an RGB picture (HSV's V)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
@pytest.mark.parametrize("channels", [3, 4])
def test_hsv_mode(dtype, channels):
    unit = np.stack([_unit_image((33, 41), i) for i in range(channels)], axis=-1)
    rgb = _as_dtype(unit, dtype)
    out = _adapthist_hsv.equalize_adapthist_hsv(rgb[None], kernel_size=9).numpy()[0]
    assert_same_pixels(out, exposure.equalize_adapthist(rgb, kernel_size=9), f"HSV mode {dtype} x{channels}:")


@pytest.mark.slow
def test_hsv_mode_xla():
    """XLA would contract HSV's products and adds into fused multiply-adds; they are kept apart."""
    rgb = _as_dtype(np.stack([_unit_image((33, 41), i) for i in range(3)], axis=-1), "uint8")
    fn = tf.function(lambda x: _adapthist_hsv.equalize_adapthist_hsv(x, kernel_size=9), jit_compile=True)
    assert_same_pixels(fn(tf.constant(rgb[None])).numpy()[0], exposure.equalize_adapthist(rgb, kernel_size=9), "XLA:")


# --- bad input ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(spatial_dims=3), ValueError, "`images` must have rank 5"),
        (dict(spatial_dims=4), ValueError, "`spatial_dims` must be 2 or 3"),
        (dict(spatial_dims=2, kernel_size=0), ValueError, "`kernel_size` must be at least 1"),
        (dict(spatial_dims=2, kernel_size=(3, 3, 3)), ValueError, "one value per spatial axis (2)"),
        (dict(spatial_dims=2, kernel_size=2.5), TypeError, "`kernel_size` must be None, an int"),
        (dict(spatial_dims=2, clip_limit=1.5), ValueError, "`clip_limit` must be a number in [0, 1]"),
        (dict(spatial_dims=2, clip_limit=float("nan")), ValueError, "`clip_limit` must be a number in [0, 1]"),
        (dict(spatial_dims=2, nbins=0), ValueError, "`nbins` must be an int of at least 1"),
        (dict(spatial_dims=2, nbins=2.5), TypeError, "`nbins` must be an int of at least 1"),
        (dict(spatial_dims=2, clip_limit="0.1"), TypeError, "`clip_limit` must be a number in [0, 1]"),
    ],
)
def test_bad_options(kwargs, error, words):
    with pytest.raises(error, match=None) as caught:
        _adapthist.equalize_adapthist_planes(np.zeros((1, 8, 8, 1), np.uint8), **kwargs)
    assert words in str(caught.value)


def test_bad_dtype():
    with pytest.raises(TypeError, match="`images` must have a dtype among"):
        _adapthist.equalize_adapthist_planes(np.zeros((1, 8, 8, 1), np.int8), spatial_dims=2)


# --- real sizes -----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_size_2d_xray():
    images = _images.xray()((512, 512), np.uint16)[None, ..., None]
    output = run("output", images, 2, mode="xla")
    assert_same_pixels(output[0, ..., 0], sk_output(images[0, ..., 0], None, 0.01, 256), "512x512 X-ray:")


@pytest.mark.slow
def test_real_size_ct_volume():
    volume = _as_dtype(_phantom((48, 96, 128), 3), "int16")
    output = run("output", volume[None, ..., None], 3, mode="xla")
    assert_same_pixels(output[0, ..., 0], sk_output(volume, None, 0.01, 256), "48x96x128 CT phantom:")
    assert math.isclose(float(output.max()), 1.0)
