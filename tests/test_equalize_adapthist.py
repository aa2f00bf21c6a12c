"""The public op `tf_histeq.equalize_adapthist`: scikit-image's `exposure.equalize_adapthist`, exactly.

Every plane the op returns is compared with scikit-image's public function on
that plane alone (0 differing values), through the op's own layouts
(`spatial_dims`), alpha, the `"hsv_value"` mode, the eager, `tf.function` and
XLA paths, and its refusals. The kernel's three internal stages are compared
in tests/test_adapthist.py, whose designed inputs and references are reused.
Small sizes here (24x32 images, 8x16x16 volumes); real sizes are slow.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests._references import assert_same_pixels
from tests.test_adapthist import _as_dtype, _phantom, _unit_image, images_2d, planes_of, sk_output, volumes_3d
from tf_histeq import _options

exposure = pytest.importorskip("skimage.exposure")
sk_dtype = pytest.importorskip("skimage.util.dtype")

SHAPE_2D = (24, 32)
SHAPE_3D = (8, 16, 16)


def op(images, **kwargs):
    """The op, eager and uncompiled (XLA compiles about 5 s per shape here; its parity is tested apart)."""
    return tf_histeq.equalize_adapthist(images, jit_compile=False, **kwargs).numpy()


def assert_planes(out: np.ndarray, images: np.ndarray, what: str, **options) -> None:
    """Every `(n, c)` plane of `out` equals scikit-image's result on that plane of `images` alone."""
    assert out.shape == images.shape, what
    for n, c, plane in planes_of(images):
        expected = sk_output(plane, **options)
        assert_same_pixels(out[n, ..., c], expected, f"{what} plane ({n}, {c}) {images.dtype} {options}:")


# --- exactness: dtypes, geometry, clip limits -------------------------------------------------------------------------

DTYPES = ["uint8", "uint12", "uint16", "int16", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_2d_dtypes(dtype):
    images = images_2d(dtype, SHAPE_2D)  # (2, 24, 32, 2)
    out = op(images, alpha=False)
    assert out.dtype == (np.float32 if dtype == "float32" else np.float64)  # scikit-image's dtypes
    assert_planes(out, images, "2-D")


@pytest.mark.parametrize(
    "dtype", [d if d in ("uint16", "int16", "float32") else pytest.param(d, marks=pytest.mark.slow) for d in DTYPES]
)
def test_3d_dtypes(dtype):
    volumes = volumes_3d(dtype, SHAPE_3D)  # (2, 8, 16, 16, 1)
    assert_planes(op(volumes, spatial_dims=3), volumes, "3-D")


OPTIONS = [
    dict(kernel_size=5, clip_limit=0.01),  # 24 and 32 not divisible by 5
    dict(kernel_size=1, clip_limit=0.01),  # one pixel per tile
    dict(kernel_size=None, clip_limit=0.0),  # no clipping
    dict(kernel_size=7, clip_limit=1e-4),  # tiny: clim 1
    dict(kernel_size=6, clip_limit=1.0),  # 1: no bin reaches the limit
    dict(kernel_size=4, clip_limit=0.03, nbins=64),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}{v}" for k, v in o.items()))
def test_2d_options(options):
    images = images_2d("uint16", SHAPE_2D)[:1]
    assert_planes(op(images, alpha=False, **options), images, "2-D", **options)


@pytest.mark.parametrize(
    "kernel_size",
    [(3, 5, 7), (8, 16, 16), (1, 1, 1), (8, 3, 16)],
    ids=["anisotropic", "whole-axes", "ones", "whole-and-3"],
)
def test_3d_kernels(kernel_size):
    volumes = volumes_3d("int16", SHAPE_3D)[:1]
    assert_planes(op(volumes, spatial_dims=3, kernel_size=kernel_size), volumes, "3-D", kernel_size=kernel_size)


@pytest.mark.parametrize("clip_limit", [0.0, 1e-4, 1.0])
def test_3d_clip_limits(clip_limit):
    volumes = volumes_3d("uint12", SHAPE_3D)[:1]
    out = op(volumes, spatial_dims=3, kernel_size=(3, 5, 6), clip_limit=clip_limit)
    assert_planes(out, volumes, "3-D", kernel_size=(3, 5, 6), clip_limit=clip_limit)


# --- layouts ----------------------------------------------------------------------------------------------------------


def test_three_slices_are_a_volume_with_spatial_dims_3():
    """A `(3, 64, 64)` array: a volume of 3 slices with spatial_dims=3, not skimage's RGB guess."""
    volume = _as_dtype(_phantom((3, 64, 64), 3), "uint16")
    out = op(volume, spatial_dims=3)
    assert out.shape == (3, 64, 64)
    assert_same_pixels(out, exposure.equalize_adapthist.__wrapped__(volume), "(3, 64, 64) volume:")


def test_three_slices_are_an_image_of_64_channels_with_spatial_dims_2():
    """The contract: rank 3 with spatial_dims=2 is `(H, W, C)`, here 64 channels of 3x64 images."""
    image = _as_dtype(_phantom((3, 64, 64), 3), "uint16")
    out = op(image, spatial_dims=2)
    for c in (0, 31, 63):
        assert_same_pixels(out[..., c], sk_output(image[..., c]), f"(3, 64) channel {c}:")


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_every_rank_of_a_layout_is_the_batch(spatial_dims):
    batch = images_2d("uint8", SHAPE_2D)[:1, ..., :1] if spatial_dims == 2 else volumes_3d("uint8", SHAPE_3D)[:1]
    whole = op(batch, spatial_dims=spatial_dims)
    assert_same_pixels(op(batch[0], spatial_dims=spatial_dims), whole[0], "without N:")
    assert_same_pixels(op(batch[0, ..., 0], spatial_dims=spatial_dims), whole[0, ..., 0], "without N and C:")


def test_batch_independence():
    """An image's result never depends on its batch-mates."""
    images = images_2d("uint16", SHAPE_2D)  # two different images
    together = op(images, alpha=False)
    for n in range(2):
        assert_same_pixels(together[n], op(images[n], alpha=False), f"image {n} alone vs in the batch:")
    volumes = volumes_3d("uint16", SHAPE_3D)
    mixed = op(np.stack([volumes[0], volumes[1] // 7]), spatial_dims=3)
    assert_same_pixels(mixed[0], op(volumes[:1], spatial_dims=3)[0], "volume 0 next to another:")


# --- channels and alpha -----------------------------------------------------------------------------------------------


def _rgb(dtype: str, channels: int = 3) -> np.ndarray:
    return _as_dtype(np.stack([_unit_image(SHAPE_2D, i) for i in range(channels)], axis=-1), dtype)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
def test_hsv_value_is_skimages_rgb_mode(dtype):
    """skimage's default for an RGB array: HSV's V equalized (0 differing values; float64 rounding is the bound)."""
    rgb = _rgb(dtype)
    out = op(rgb, channels="hsv_value", kernel_size=5)
    assert_same_pixels(out, exposure.equalize_adapthist(rgb, kernel_size=5), f"hsv_value {dtype}:")


def test_hsv_value_passes_alpha_on_the_output_scale():
    rgba = _rgb("uint8", 4)
    out = op(rgba[None], channels="hsv_value", kernel_size=5)[0]  # alpha="auto": the 4th of 4 channels
    assert_same_pixels(out[..., :3], exposure.equalize_adapthist(rgba[..., :3], kernel_size=5), "RGBA colour:")
    assert_same_pixels(out[..., 3], sk_dtype.img_as_float(rgba[..., 3]), "alpha, as img_as_float:")


def test_per_channel_rgb_and_alpha():
    rgba = _rgb("uint16", 4)
    out = op(rgba, kernel_size=6)
    assert_planes(out[None, ..., :3], rgba[None, ..., :3], "per channel", kernel_size=6)
    assert_same_pixels(out[..., 3], sk_dtype.img_as_float(rgba[..., 3]), "alpha passed through:")
    assert_planes(op(rgba, kernel_size=6, alpha=False)[None], rgba[None], "alpha=False", kernel_size=6)


# --- eager, tf.function, XLA ------------------------------------------------------------------------------------------


def _agree(images, options, *, xla: bool) -> None:
    eager = op(images, **options)
    traced = tf.function(lambda x: tf_histeq.equalize_adapthist(x, **options))(tf.constant(images)).numpy()
    assert_same_pixels(traced, eager, "tf.function vs eager:")  # Grappler's rewrites included
    if xla:  # about 4 s of compiling per shape on 2 cores
        compiled = tf_histeq.equalize_adapthist(images, jit_compile=True, **options).numpy()
        assert_same_pixels(compiled, eager, "jit_compile=True vs eager:")


CASES = {
    "2-D": lambda: (images_2d("uint8", SHAPE_2D), dict(kernel_size=(5, 9), alpha=False)),
    "3-D": lambda: (volumes_3d("int16", SHAPE_3D), dict(spatial_dims=3, kernel_size=(3, 5, 7))),
    "hsv": lambda: (_rgb("float64")[None], dict(channels="hsv_value", kernel_size=7)),
}


@pytest.mark.parametrize(
    "case",
    # Graphs of 2-D and 3-D planes are also compared with scikit-image by the NaN-plane and map_fn tests.
    [pytest.param(case, marks=pytest.mark.slow) if case != "hsv" else case for case in CASES],
)
def test_eager_and_function_agree(case):
    """A `tf.function` graph (Grappler optimizes it) gives the eager values, which are scikit-image's."""
    _agree(*CASES[case](), xla=False)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_eager_function_and_xla_agree(case):
    _agree(*CASES[case](), xla=True)


# --- ways in: tf.data, the NumPy function -----------------------------------------------------------------------------


def test_map_fn_on_volumes():
    from tf_histeq import data

    volumes = volumes_3d("uint16", SHAPE_3D)[..., 0]  # two (D, H, W) volumes
    ds = tf.data.Dataset.from_tensor_slices({"volume": volumes, "label": [0, 1]})
    fn = data.map_fn("equalize_adapthist", image_key="volume", spatial_dims=3, kernel_size=(4, 5, 6), jit_compile=False)
    out = [element["volume"].numpy() for element in ds.map(fn)]
    for n in range(2):
        assert_same_pixels(out[n], sk_output(volumes[n], kernel_size=(4, 5, 6)), f"map_fn volume {n}:")


def test_numpy_function():
    equalize = tf_histeq.preprocessing_function("equalize_adapthist", spatial_dims=3, clip_limit=0.02)
    volume = volumes_3d("float32", SHAPE_3D)[0, ..., 0]
    out = equalize(volume)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert_same_pixels(out, sk_output(volume, clip_limit=0.02), "preprocessing_function:")
    with pytest.raises(ValueError, match=r"`image` must hold finite values in \[-1, 1\].*'NaN': 1"):
        equalize(np.where(np.arange(volume.size).reshape(volume.shape) == 5, np.nan, volume))


# --- the schema: one keyword, two ops ---------------------------------------------------------------------------------


def test_clip_limit_has_a_default_and_a_meaning_per_op():
    assert _options.OP_DEFAULTS["clahe"]["clip_limit"] == _options.CLIP_LIMIT == 2.0
    assert _options.OP_DEFAULTS["equalize_adapthist"]["clip_limit"] == _options.ADAPTHIST_CLIP_LIMIT == 0.01
    assert _options.resolve("clahe", {"clip_limit": 3.0})["clip_limit"] == 3.0  # OpenCV units
    with pytest.raises(ValueError, match=r"`clip_limit` must be a number in \[0, 1\]. Received: clip_limit=3.0"):
        _options.resolve("equalize_adapthist", {"clip_limit": 3.0})
    with pytest.raises(ValueError, match=r"`clip_limit` must be a number in \[0, 1\]"):
        _options.resolve("equalize_adapthist", {"clip_limit": float("nan")})
    assert _options.resolve("equalize_adapthist", {"kernel_size": [3, 4]})["kernel_size"] == (3, 4)  # JSON lists


@pytest.mark.slow  # XLA: about 4 s of compiling
def test_array_options_configure_the_graph():
    """NumPy and eager-tensor options are read as Python values (the tiling depends on them), compiled or not."""
    images = images_2d("uint8", SHAPE_2D)[:1, ..., :1]
    expected = sk_output(images[0, ..., 0], kernel_size=(3, 5), clip_limit=0.02)
    for jit_compile in (True, False):
        out = tf_histeq.equalize_adapthist(
            images,
            kernel_size=np.array([3, 5]),
            clip_limit=tf.constant(0.02),
            nbins=np.int64(256),
            jit_compile=jit_compile,
        )
        assert_same_pixels(out.numpy()[0, ..., 0], expected, f"array options, jit_compile={jit_compile}:")


def test_no_command_line_subcommand_and_why():
    from tf_histeq.cli import app

    assert "equalize_adapthist" in app.NO_COMMAND
    commands = app.build_parser()._subparsers._group_actions[0].choices
    assert not {"equalize-adapthist", "equalize_adapthist", "adapthist"} & set(commands)


# --- bad input --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, kwargs, error, words",
    [
        ((1, 2, 8, 8, 1), {}, ValueError, "a batch of volumes (N, D, H, W, C): pass spatial_dims=3"),
        ((8,), {}, ValueError, "`images.shape` must have rank 2 (H, W), 3 (H, W, C) or 4 (N, H, W, C)"),
        ((8, 8), dict(spatial_dims=3), ValueError, "`images.shape` must have rank 3 (D, H, W)"),
        ((1, 1, 4, 8, 8, 1), dict(spatial_dims=3), ValueError, "Received: images.shape=(1, 1, 4, 8, 8, 1)"),
        ((8, 8), dict(spatial_dims=4), ValueError, "`spatial_dims` must be 2 (images) or 3 (volumes)"),
        ((8, 8), dict(kernel_size=0), ValueError, "`kernel_size` must be at least 1 on every axis"),
        ((8, 8), dict(kernel_size=(3, -1)), ValueError, "`kernel_size` must be at least 1 on every axis"),
        ((8, 8), dict(kernel_size=(3, 3, 3)), ValueError, "`kernel_size` must have one value per spatial axis (2)"),
        ((4, 8, 8), dict(kernel_size=(3, 3), spatial_dims=3), ValueError, "one value per spatial axis (3)"),
        ((8, 8), dict(kernel_size=(3, 3, 3, 3)), ValueError, "`kernel_size` must have one value per spatial axis"),
        ((8, 8), dict(kernel_size=2.5), TypeError, "`kernel_size` must be None, an int or a sequence of ints"),
        ((8, 8), dict(clip_limit=1.5), ValueError, "`clip_limit` must be a number in [0, 1]"),
        ((8, 8), dict(clip_limit=-0.1), ValueError, "`clip_limit` must be a number in [0, 1]"),
        ((8, 8), dict(clip_limit=float("nan")), ValueError, "`clip_limit` must be a number in [0, 1]"),
        ((8, 8), dict(clip_limit="0.1"), TypeError, "`clip_limit` must be a number in [0, 1]"),
        ((8, 8), dict(nbins=0), ValueError, "`nbins` must be an int of at least 1"),
        ((8, 8), dict(nbins=2.5), TypeError, "`nbins` must be an int of at least 1"),
        ((8, 8), dict(channels="lab"), ValueError, "`channels` must be one of 'per_channel', 'hsv_value'"),
        ((8, 8, 1), dict(channels="hsv_value"), ValueError, "these have 1 with spatial_dims=2"),
        ((4, 8, 8, 3), dict(channels="hsv_value", spatial_dims=3), ValueError, "these have 3 with spatial_dims=3"),
        ((8, 8, 4), dict(channels="hsv_value", alpha=False), ValueError, "3 colour channels besides alpha"),
        ((8, 8, 1), dict(alpha=True), ValueError, "`alpha` must be False or 'auto' for single-channel images"),
        ((8, 8), dict(alpha="yes"), ValueError, "`alpha` must be 'auto'"),
        ((8, 8), dict(mask=np.ones((8, 8))), TypeError, "mask"),
    ],
)
def test_bad_arguments(shape, kwargs, error, words):
    with pytest.raises(error) as caught:
        tf_histeq.equalize_adapthist(np.zeros(shape, np.uint8), **kwargs)
    assert words in str(caught.value)


@pytest.mark.parametrize("dtype", ["int8", "float16", "bool"])
def test_bad_dtypes(dtype):
    with pytest.raises(TypeError, match=r"`images.dtype` must be one of uint8, uint16, int16, int32, float32, float64"):
        tf_histeq.equalize_adapthist(np.zeros((8, 8), dtype))


@pytest.mark.parametrize(
    "value, counted",
    [(np.nan, "'NaN': 1"), (np.inf, "'inf': 1"), (-1.5, "'finite outside [-1, 1]': 1"), (255.0, "outside")],
)
def test_float_values_known_now_are_checked(value, counted):
    image = images_2d("float64", SHAPE_2D)[0, ..., 0]
    image[3, 4] = value
    for images in (image, tf.constant(image)):  # NumPy and eager tensors, every jit_compile
        for jit_compile in ("auto", False):
            with pytest.raises(ValueError, match=r"`images` must hold finite values in \[-1, 1\]") as caught:
                tf_histeq.equalize_adapthist(images, jit_compile=jit_compile)
            assert counted in str(caught.value)


def test_float_values_in_a_graph_give_nan_planes():
    """In a graph the values are not known: a plane holding NaN, inf or values outside [-1, 1] comes out NaN."""
    images = np.concatenate([images_2d("float32", SHAPE_2D)] * 2, axis=-1)  # (2, H, W, 4)
    images[0, 1, 2, 0], images[1, 5, 5, 1], images[0, 7, 7, 2] = np.nan, 1.5, np.inf
    images[1, 0, 0, 3] = -0.5  # in [-1, 1]: read as scikit-image reads it (negatives as 0)
    out = tf.function(lambda x: tf_histeq.equalize_adapthist(x, alpha=False))(tf.constant(images)).numpy()
    for n, c in [(0, 0), (1, 1), (0, 2)]:
        assert np.isnan(out[n, ..., c]).all(), (n, c)
    for n, c in [(0, 1), (0, 3), (1, 0), (1, 2), (1, 3)]:
        assert_same_pixels(out[n, ..., c], sk_output(images[n, ..., c]), f"valid plane ({n}, {c}):")


def test_no_gradient():
    x = tf.constant(images_2d("float32", SHAPE_2D)[:1, ..., :1])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf_histeq.equalize_adapthist(x, jit_compile=False)
    with pytest.raises(LookupError, match="tf_histeq.equalize_adapthist has no gradient"):
        tape.gradient(y, x)


# --- real sizes -------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_sizes():
    """A 512x512 12-bit image and a 48x128x128 int16 CT-like volume, through the public op (eager, auto)."""
    image = _as_dtype(_unit_image((512, 512), 1), "uint12")
    assert_same_pixels(tf_histeq.equalize_adapthist(image).numpy(), sk_output(image), "512x512 uint12:")
    volume = _as_dtype(_phantom((48, 128, 128), 5), "int16")
    out = tf_histeq.equalize_adapthist(volume, spatial_dims=3, clip_limit=0.02).numpy()
    assert_same_pixels(out, exposure.equalize_adapthist.__wrapped__(volume, clip_limit=0.02), "48x128x128 int16:")
