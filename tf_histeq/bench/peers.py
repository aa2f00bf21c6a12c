"""The peers' rows: what a user would run instead of tf_histeq.

Each builder takes the workload and its context (`run.run_workload`: the
input as `numpy` and `tensor`, the `settings`, and for file workloads `paths`,
`folder` and `scratch`) and returns the timed callable, which returns its
output; it raises `Skip` where the peer is not installed or does not apply.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from tf_histeq.bench import files, machine
from tf_histeq.bench.timing import materialise
from tf_histeq.bench.workloads import (
    CLIP_LIMIT,
    GIB,
    SEED_FUNCTION_SAMPLES,
    TILE_GRID,
    Skip,
    Workload,
    original_equalize,
)


def optional_module(name: str):
    """Import the peer `name`, or raise `Skip` if it (not one of its own imports) is missing."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and (name == err.name or name.startswith(err.name + ".")):
            raise Skip(f"{name} is not installed") from None
        raise


def plane_loop(images: np.ndarray, fn, dtype=None):
    """A runner calling `fn` on every (image, channel) plane in turn, as a user's loop would."""

    def run():
        out = np.empty(images.shape, dtype or images.dtype)
        for i in range(images.shape[0]):
            for c in range(images.shape[-1]):
                out[i, :, :, c] = fn(np.ascontiguousarray(images[i, :, :, c]))
        return out

    return run


def cv2_equalize(w: Workload, ctx: dict):
    """`cv2.equalizeHist` on every plane (8-bit only)."""
    if w.dtype != "uint8":
        raise Skip("cv2.equalizeHist takes 8-bit images only")
    cv2 = optional_module("cv2")
    return plane_loop(ctx["numpy"], cv2.equalizeHist)


def cv2_clahe(w: Workload, ctx: dict):
    """`cv2.createCLAHE(...).apply` on every plane: the reference of the CLAHE rows."""
    cv2 = optional_module("cv2")
    clahe = cv2.createCLAHE(clipLimit=CLIP_LIMIT, tileGridSize=TILE_GRID[::-1])  # OpenCV: (cols, rows)
    return plane_loop(ctx["numpy"], clahe.apply)


def pil_equalize(w: Workload, ctx: dict):
    """`PIL.ImageOps.equalize` on every image (8-bit only; one histogram per channel)."""
    if w.dtype != "uint8":
        raise Skip("ImageOps.equalize takes 8-bit images only")
    optional_module("PIL")
    from PIL import Image, ImageOps

    x = ctx["numpy"]
    squeeze = x.shape[-1] == 1

    def run():
        return np.stack([np.asarray(ImageOps.equalize(Image.fromarray(im[..., 0] if squeeze else im))) for im in x])

    return run


def skimage_equalize(w: Workload, ctx: dict):
    """`skimage.exposure.equalize_hist` on every plane (float64 output)."""
    exposure = optional_module("skimage.exposure")
    return plane_loop(ctx["numpy"], exposure.equalize_hist, np.float64)


def skimage_clahe(w: Workload, ctx: dict):
    """`skimage.exposure.equalize_adapthist` on every plane, with the same tiles and clip count."""
    exposure = optional_module("skimage.exposure")
    x = ctx["numpy"]
    _, height, width, _ = x.shape
    kernel = (max(height // TILE_GRID[0], 1), max(width // TILE_GRID[1], 1))
    clip = CLIP_LIMIT / 256  # skimage counts the limit as a fraction of the tile: the same clip count

    return plane_loop(
        x, lambda plane: exposure.equalize_adapthist(plane, kernel_size=kernel, clip_limit=clip), np.float64
    )


def skimage_adapthist(w: Workload, ctx: dict):
    """`skimage.exposure.equalize_adapthist` on every image or volume (and channel), its default kernel size.

    The reference of the `adapthist` workloads: tf_histeq's output must equal
    its float64 output value for value.
    """
    exposure = optional_module("skimage.exposure")
    x, kwargs = ctx["numpy"], w.op_kwargs

    def run():
        out = np.empty(x.shape, np.float64)
        for i in range(x.shape[0]):
            for c in range(x.shape[-1]):
                out[i, ..., c] = exposure.equalize_adapthist(np.ascontiguousarray(x[i, ..., c]), **kwargs)
        return out

    return run


def skimage_match(w: Workload, ctx: dict):
    """`skimage.exposure.match_histograms` per plane, rounded half to even to the input dtype (as ours)."""
    exposure = optional_module("skimage.exposure")
    reference = ctx["reference"]

    def match(plane):
        return np.rint(exposure.match_histograms(plane, reference))

    return plane_loop(ctx["numpy"], match)


def numpy_loop(w: Workload, ctx: dict):
    """A plain per-plane numpy equalization (bincount, cumsum, take): the baseline where cv2 has none."""
    x = ctx["numpy"]
    low, high = w.value_range or (0, 255)
    bins = high - low + 1

    def equalize(plane):
        hist = np.bincount(plane.ravel(), minlength=bins)
        cdf = np.cumsum(hist)
        first = cdf[np.flatnonzero(hist)[0]]
        scale = np.float32(bins - 1) / np.float32(max(plane.size - first, 1))
        lut = np.rint((cdf - first).astype(np.float32) * scale).astype(x.dtype)
        return lut[plane]

    return plane_loop(x, equalize)


def original_function(w: Workload, ctx: dict):
    """The original numpy function (`workloads.original_equalize`), timed on a slice of the batch."""
    if w.dtype != "uint8":
        raise Skip("the original function is 8-bit only")
    x = ctx["numpy"]
    n, height, width, channels = x.shape
    per_image = height * width * channels
    if per_image <= SEED_FUNCTION_SAMPLES:
        part = x[: max(1, min(n, SEED_FUNCTION_SAMPLES // per_image))]
    else:  # one image, its first rows
        part = x[:1, : max(1, SEED_FUNCTION_SAMPLES // (width * channels))]
    ctx["measured_megapixels"] = part.size / 1e6
    ctx["note"] = "timed on " + "x".join(map(str, part.shape)) + " and scaled"

    def run():
        return [original_equalize(im) for im in part]

    return run


def keras_layer(make_layer: Callable[[Any, Workload], Any], *, jit: bool, memory_guard: bool = False):
    """A builder for a Keras preprocessing layer called in a `tf.function` (XLA-compiled if `jit`)."""

    def build(w: Workload, ctx: dict):
        keras = optional_module("keras")
        if memory_guard:
            check_keras_clahe_memory(w, ctx["settings"].device)
        layer = make_layer(keras, w)
        fn = tf.function(lambda images: layer(images, training=True), jit_compile=jit)
        x = ctx["tensor"]
        return lambda: materialise(fn(x))

    return build


def keras_equalization(keras, w: Workload):
    """Keras's `Equalization` layer for `w` (it pools one histogram over the batch)."""
    low, high = w.value_range or (0, 255)
    return keras.layers.Equalization(value_range=(low, high), bins=w.bins or 256)


def keras_clahe(keras, w: Workload):
    """Keras's CLAHE layer with the same clip limit and tiles, where this Keras has one."""
    layer_cls = getattr(keras.layers, "ContrastLimitedAdaptiveHistogramEqualization", None)
    if layer_cls is None:
        raise Skip(f"Keras {keras.__version__} has no ContrastLimitedAdaptiveHistogramEqualization layer")
    return layer_cls(value_range=(0, 255), clip_limit=CLIP_LIMIT, tile_grid_size=TILE_GRID)


def check_keras_clahe_memory(w: Workload, device: str) -> None:
    """Skip Keras's CLAHE where its one-hot histogram (N*H*W*C*256 float32, ~3x with temporaries) won't fit."""
    need = 3 * float(np.prod(w.shape)) * 256 * 4
    if device.startswith("/GPU"):
        budget, where = 8 * GIB, "8 GiB allowed on the GPU"
    else:
        budget, where = 0.5 * machine.mem_available(), "half the available host memory"
    if need > budget:
        raise Skip(f"needs ~{need / GIB:.0f} GiB for its one-hot histogram, more than {where} ({budget / GIB:.0f} GiB)")


def cv2_file_pipeline(w: Workload, ctx: dict):
    """The PNG pipeline with `tf.numpy_function` around `cv2.createCLAHE(...).apply` as its map.

    One CLAHE object per call: the object keeps work buffers, so one shared by
    tf.data's parallel calls would not be safe (creating it costs microseconds).
    """
    cv2 = optional_module("cv2")

    def apply(image):
        return cv2.createCLAHE(CLIP_LIMIT, TILE_GRID[::-1]).apply(image[..., 0])[..., None]

    def equalize(image):
        out = tf.numpy_function(apply, [image], tf.uint8, stateful=False)
        out.set_shape(image.shape)
        return out

    return files.pipeline_row(ctx, equalize)


def cv2_script(w: Workload, ctx: dict):
    """`python SCRIPT IN OUT`: the few-line cv2 loop (`files.CV2_SCRIPT`), start-up included."""
    optional_module("cv2")
    script = os.path.join(ctx["scratch"], "cv2_clahe_loop.py")
    return files.folder_row(ctx, files.script_command(script, CLIP_LIMIT, TILE_GRID), f"{w.key}-cv2")
