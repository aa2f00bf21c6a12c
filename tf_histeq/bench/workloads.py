"""What the benchmark processes: batches in memory and folders of PNG files.

Every input is seeded and low-contrast, the kind of image equalization is for:
the batches are normal(110, 20) noise, rounded and clipped (a uint16 workload
uses the same distribution scaled to its range); the files are smooth fields
(Gaussian-blurred noise rescaled to mean 105 and standard deviation 20, plus a
fine grain), written as 8-bit gray PNGs. This module needs NumPy only (OpenCV to
write the files).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

SEED = 1234
MEAN, STD = 110.0, 20.0  # the batches
FILE_MEAN, FILE_STD, FILE_GRAIN, FILE_SIGMA = 105.0, 20.0, 2.0, 3.0  # the PNG files
CLIP_LIMIT, TILE_GRID = 2.0, (8, 8)
ADAPTHIST_CLIP = 0.01  # scikit-image's default clip limit (its default kernel: 1/8 of each axis)
# The original numpy function runs at a few MP/s: it is timed on a slice of at most this many samples.
SEED_FUNCTION_SAMPLES = 262_144
PER_IMAGE_SHAPE = (256, 256, 3)
GIB = 2**30


class Skip(Exception):
    """A row that cannot run here (a peer not installed, too much memory, no input files)."""


@dataclasses.dataclass(frozen=True)
class Workload:
    """One input and the rows timed on it.

    `kind` selects the rows (`rows.impls_for`): `"hist"` and `"clahe"` are
    batches in memory given to the functions; `"match"` a batch matched to
    one reference image; `"augment"` a batch in one training step of a small
    model; `"files"` is a folder of PNG files read by a `tf.data` pipeline;
    `"cli"` the same folder given to the command line; `"adapthist"`
    scikit-image's adaptive equalization (`equalize_adapthist`, its own
    kernel size and clip limit, `ADAPTHIST_CLIP`) on a batch of 2-D images or
    of 3-D volumes. `shape` is `(N, H, W, C)`: N images, or N files; or
    `(N, D, H, W, C)`: N volumes.
    """

    key: str
    kind: str
    shape: tuple[int, ...]
    dtype: str = "uint8"
    value_range: tuple[int, int] | None = None
    bins: int | None = None

    @property
    def op(self) -> str:
        """The function measured: `"equalize_hist"`, `"clahe"`, `"match_histograms"` or `"equalize_adapthist"`."""
        ops = {"hist": "equalize_hist", "match": "match_histograms", "adapthist": "equalize_adapthist"}
        ops.update(nyul="nyul_standardize", percentiles="scale_intensity_percentiles")
        return ops.get(self.kind, "clahe")

    @property
    def spatial_dims(self) -> int:
        """2 for batches of images, 3 for batches of volumes."""
        return len(self.shape) - 2

    @property
    def name(self) -> str:
        """E.g. `32x256x256x1 uint8`, `CLAHE 8x512x512x1 uint8` or `CLAHE CLI, 200 PNGs 896x896`."""
        if self.kind in ("files", "cli"):
            n, height, width, _ = self.shape
            where = "tf.data" if self.kind == "files" else "CLI"
            return f"CLAHE {where}, {n} PNGs {height}x{width}"
        text = "x".join(map(str, self.shape)) + " " + self.dtype
        if self.bins is not None:
            text += f" ({self.bins} bins)"
        prefixes = {"clahe": "CLAHE ", "match": "match_histograms ", "augment": "fit step "}
        prefixes["adapthist"] = f"equalize_adapthist {self.spatial_dims}-D "
        prefixes.update(nyul="nyul_standardize ", percentiles="scale_intensity_percentiles ")
        prefix = prefixes.get(self.kind, "")
        return prefix + text

    @property
    def megapixels(self) -> float:
        """Samples in the batch (or all the files), in millions."""
        return float(np.prod(self.shape)) / 1e6

    @property
    def op_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `equalize_hist` / `clahe` and the matching layer, or `equalize_adapthist`."""
        if self.op == "equalize_adapthist":  # skimage's parameters (the value range only shapes the input)
            return {"clip_limit": ADAPTHIST_CLIP}
        if self.kind in ("nyul", "percentiles"):  # tf_histeq.bench.standardize's rows hold their arguments
            return {}
        kwargs: dict[str, Any] = {}
        if self.value_range is not None:
            kwargs["value_range"] = self.value_range
        if self.bins is not None:
            kwargs["bins"] = self.bins
        if self.op == "clahe":
            kwargs.update(clip_limit=CLIP_LIMIT, tile_grid_size=TILE_GRID)
        return kwargs


FULL_WORKLOADS = (
    Workload("hist_gray", "hist", (32, 256, 256, 1)),
    Workload("hist_rgb", "hist", (32, 224, 224, 3)),
    Workload("hist_large", "hist", (1, 2048, 2048, 1)),
    Workload("hist_12bit", "hist", (8, 512, 512, 1), "uint16", (0, 4095), 4096),
    Workload("clahe_gray", "clahe", (8, 512, 512, 1)),
    Workload("clahe_rgb", "clahe", (8, 512, 512, 3)),
    Workload("match_gray", "match", (32, 256, 256, 1)),
    Workload("augment", "augment", (16, 256, 256, 1)),
    Workload("files", "files", (200, 896, 896, 1)),
    Workload("cli", "cli", (200, 896, 896, 1)),
    # A CT-sized volume (12- to 16-bit data) and a large 16-bit 2-D image, against scikit-image.
    Workload("adapthist_3d", "adapthist", (1, 128, 256, 256, 1), "uint16", (0, 65535)),
    Workload("adapthist_2d", "adapthist", (1, 1024, 1024, 1), "uint16", (0, 65535)),
    # Intensity standardization of a CT-sized volume against TorchIO and MONAI (tf_histeq.bench.standardize).
    *(
        Workload(f"{kind}_{dtype}", kind, (1, 128, 256, 256, 1), dtype, (0, 4095) if dtype != "float32" else None)
        for kind in ("nyul", "percentiles")
        for dtype in ("uint16", "int16", "float32")
    ),
)
# Added by --many-files: the command line's start-up weighs less on a longer run.
MANY_FILES_WORKLOADS = (Workload("cli_many", "cli", (1000, 896, 896, 1)),)
QUICK_WORKLOADS = (
    Workload("hist_gray", "hist", (4, 32, 32, 1)),
    Workload("hist_rgb", "hist", (4, 24, 24, 3)),
    Workload("hist_large", "hist", (1, 64, 64, 1)),
    Workload("hist_12bit", "hist", (2, 32, 32, 1), "uint16", (0, 4095), 4096),
    Workload("clahe_gray", "clahe", (2, 64, 64, 1)),
    Workload("clahe_rgb", "clahe", (2, 64, 64, 3)),
    Workload("match_gray", "match", (4, 32, 32, 1)),
    Workload("augment", "augment", (2, 64, 64, 1)),
    Workload("files", "files", (6, 96, 96, 1)),
    Workload("cli", "cli", (6, 96, 96, 1)),
    Workload("adapthist_3d", "adapthist", (1, 16, 32, 32, 1), "uint16", (0, 65535)),
    Workload("adapthist_2d", "adapthist", (1, 64, 64, 1), "uint16", (0, 65535)),
)


def make_input(shape, dtype="uint8", value_range=None, seed=SEED) -> np.ndarray:
    """Seeded low-contrast images: normal(110, 20) on the 0..255 scale, rounded and clipped.

    For a wider integer range `(0, high)` the same distribution is scaled by `(high + 1) / 256`.
    Float images get unscaled 0..255 values, as Keras's ImageDataGenerator passes them.

    Example:
        >>> x = make_input((2, 64, 64, 1))
        >>> x.dtype, x.shape, 100 < x.mean() < 120
        (dtype('uint8'), (2, 64, 64, 1), np.True_)
    """
    high = value_range[1] if value_range is not None else 255
    scale = (high + 1) / 256
    rng = np.random.default_rng(seed)
    values = np.clip(np.rint(rng.normal(MEAN * scale, STD * scale, shape)), 0, high)
    return values.astype(dtype)


def make_reference(height: int, width: int, seed: int = SEED + 1) -> np.ndarray:
    """The reference image of the `match` workload: another "scanner", brighter and wider than the inputs.

    normal(150, 40) rounded and clipped, uint8 `(height, width)`.

    Example:
        >>> ref = make_reference(64, 64)
        >>> ref.shape, 140 < ref.mean() < 160
        ((64, 64), np.True_)
    """
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(rng.normal(150.0, 40.0, (height, width))), 0, 255).astype(np.uint8)


def write_png_folder(folder: str, count: int, height: int, width: int, seed: int = SEED) -> list[str]:
    """Write `count` smooth low-contrast 8-bit gray PNGs into `folder`; return their paths.

    Each image is normal noise blurred by a Gaussian (sigma 3 px), rescaled to
    mean 105 and standard deviation 20, plus a normal(0, 2) grain (the same
    noise rotated by 180 degrees), rounded and clipped; OpenCV writes it at its
    default PNG compression.

    Raises:
        Skip: If OpenCV is not installed.
    """
    try:
        import cv2
    except ModuleNotFoundError:
        raise Skip("the PNG inputs are written with OpenCV, which is not installed") from None
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        noise = rng.standard_normal((height, width), dtype=np.float32)
        smooth = cv2.GaussianBlur(noise, (0, 0), FILE_SIGMA)
        smooth = (smooth - smooth.mean()) / max(float(smooth.std()), 1e-6)
        grain = noise[::-1, ::-1]  # the same draw turned around: nearly independent of the blurred field, and free
        image = np.clip(np.rint(FILE_MEAN + FILE_STD * smooth + FILE_GRAIN * grain), 0, 255).astype(np.uint8)
        path = os.path.join(folder, f"image_{i:05d}.png")
        if not cv2.imwrite(path, image):
            raise OSError(f"OpenCV could not write {path}")
        paths.append(path)
    return paths


def original_equalize(image: np.ndarray) -> np.ndarray:
    """The original numpy function's algorithm, as the seed of this project wrote it.

    One histogram over all channels, built in a Python loop, then the float64 table
    `trunc((C(v) - C(0)) * 255 / (C(255) - C(0)))` and a float64 result. It is the
    speed baseline of `histogram_equalization`, not a reference for its values.

    Example:
        >>> original_equalize(np.array([[100, 101, 102, 103]], np.uint8))  # OpenCV maps 100 to 0
        array([[ 63., 127., 191., 255.]])
    """
    hist = np.zeros(256)
    for pixel in image.flatten():
        hist[int(pixel)] += 1
    cs = np.cumsum(hist)
    cs = ((cs - cs.min()) * 255 / (cs.max() - cs.min())).astype(np.uint8)
    return cs[image.flatten().astype(int)].reshape(image.shape).astype(np.float64)
