"""Built-in sample images: low-contrast pictures generated on the fly, no download.

Every sample is computed with NumPy from a seed, so it is the same on every
machine and needs no shipped binary file:

* `chest_xray`: a chest-X-ray-like phantom (lungs, heart, spine, ribs,
  clavicles) squeezed into a narrow band of grey levels, inside black
  collimation borders, 8-bit or 12-bit (stored in uint16);
* `lung_mask`: the lung fields of that phantom, for masked equalization;
* `field_mask`: its exposed (collimated) field, i.e. everything but the border;
* `color_scene`: a hazy RGB landscape whose colours sit close together;
* `ct_phantom`: a CT-like volume `(D, H, W)` in Hounsfield units (int16, as
  NIfTI and DICOM store CT), with its label volume `ct_labels` (body, lungs,
  bone, a low-contrast lesion: `CT_LABELS`, `CT_HU`).

`load(name)` returns any of the 2-D ones by name (`NAMES`). TensorFlow is not needed.
"""

from __future__ import annotations

import numpy as np

from tf_histeq._options import fail

NAMES = ("chest_xray", "chest_xray_12bit", "lung_mask", "field_mask", "color_scene")

_XRAY_SIZE = (512, 512)
_COLOR_SIZE = (384, 512)
_CT_SHAPE = (64, 128, 128)  # (D, H, W): slices, rows, columns

# The labels of `ct_labels` and the mean Hounsfield value of each in `ct_phantom`.
CT_LABELS = {
    "outside": 0,  # outside the scanner's circular field of view: the padding value, no noise
    "air": 1,
    "fat": 2,  # the subcutaneous layer under the skin
    "soft_tissue": 3,
    "lung": 4,
    "bone": 5,  # the spine's cancellous core
    "cortical_bone": 6,  # the spine's outer shell
    "lesion": 7,  # a low-contrast sphere in the soft tissue below the lungs
}
CT_HU = {"outside": -2048, "air": -1000, "fat": -100, "soft_tissue": 40, "lung": -800, "bone": 700}
CT_HU.update({"cortical_bone": 1200, "lesion": 60})
CT_NOISE_HU = 10.0  # standard deviation of the Gaussian noise added inside the field of view


def _check_size(size, name: str = "size") -> tuple[int, int]:
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        fail(TypeError, name, "be a pair of two ints (height, width)", size)
    items = [v.item() if hasattr(v, "item") else v for v in size]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        fail(TypeError, name, "be a pair of two ints (height, width)", size)
    if min(items) < 16:
        fail(ValueError, name, "be two ints >= 16 (height, width)", size)
    return int(items[0]), int(items[1])


def _grid(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Normalised pixel-centre coordinates `(y, x)` in [-1, 1], shape `(H, W)` each."""
    h, w = size
    y = (np.arange(h, dtype=np.float64) + 0.5) / h * 2.0 - 1.0
    x = (np.arange(w, dtype=np.float64) + 0.5) / w * 2.0 - 1.0
    return np.meshgrid(y, x, indexing="ij")


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * t))


def _ellipse(y, x, cy, cx, ry, rx, soft=0.04) -> np.ndarray:
    """Soft indicator (0..1) of an axis-aligned ellipse; `soft` is the edge width."""
    r = np.sqrt(((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2)
    return _sigmoid((1.0 - r) / soft)


def _band(d: np.ndarray, half_width: float, soft: float = 0.004) -> np.ndarray:
    """Soft indicator of `|d| < half_width`."""
    return _sigmoid((half_width - np.abs(d)) / soft)


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> np.ndarray:
    """Zero-mean, unit-std noise smooth over `size / cells` pixels (bilinear upsampling)."""
    h, w = size
    coarse = rng.standard_normal((cells + 2, cells + 2))
    ys = np.linspace(0.5, cells + 0.5, h)
    xs = np.linspace(0.5, cells + 0.5, w)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    a = coarse[y0][:, x0]
    b = coarse[y0][:, x0 + 1]
    c = coarse[y0 + 1][:, x0]
    d = coarse[y0 + 1][:, x0 + 1]
    out = (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy
    return (out - out.mean()) / (out.std() + 1e-12)


def _lungs(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Soft lung fields (0..1): two tall ellipses cut below by the diaphragm domes."""
    lungs = np.zeros_like(y)
    for side in (-1.0, 1.0):
        # The patient's left lung (image right) is a little smaller: the heart sits there.
        rx = 0.29 if side < 0 else 0.27
        lung = _ellipse(y, x, -0.06, side * 0.35, 0.60, rx, soft=0.05)
        dome = 0.42 + 0.30 * ((x - side * 0.35) / 0.3) ** 2 + (0.05 if side > 0 else 0.0)
        lungs = np.maximum(lungs, lung * _sigmoid((dome - y) / 0.02))
    return lungs


def _field(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bool exposed field: a slightly rotated rectangle inside black collimation borders."""
    angle = np.deg2rad(1.2)
    yr = y * np.cos(angle) - x * np.sin(angle)
    xr = y * np.sin(angle) + x * np.cos(angle)
    return (yr > -0.90) & (yr < 0.92) & (xr > -0.86) & (xr < 0.88)


def lung_mask(size=_XRAY_SIZE) -> np.ndarray:
    """Return the lung-field mask of `chest_xray` for the same `size`.

    Use it as the `mask` of `tf_histeq.equalize_hist` or `tf_histeq.clahe`:
    only lung pixels then build the histograms, so the black border and the
    bright mediastinum no longer take up most of the output levels.

    Args:
        size: `(height, width)` of the phantom, at least 16 each.

    Returns:
        A bool array of shape `(height, width)`, True inside the lungs.

    Example:
        >>> from tf_histeq import samples
        >>> mask = samples.lung_mask((64, 64))
        >>> mask.dtype, mask.shape, round(float(mask.mean()), 2)  # a quarter of the picture
        (dtype('bool'), (64, 64), 0.25)
    """
    y, x = _grid(_check_size(size))
    return (_lungs(y, x) > 0.5) & _field(y, x)


def field_mask(size=_XRAY_SIZE) -> np.ndarray:
    """Return the exposed field of `chest_xray`: True everywhere but the black border.

    Args:
        size: `(height, width)` of the phantom, at least 16 each.

    Returns:
        A bool array of shape `(height, width)`.

    Example:
        >>> from tf_histeq import samples
        >>> field = samples.field_mask((64, 64))
        >>> bool(field[32, 32]), bool(field[0, 0]), round(float(field.mean()), 2)
        (True, False, 0.79)
    """
    y, x = _grid(_check_size(size))
    return _field(y, x)


def chest_xray(size=_XRAY_SIZE, *, bits=8, seed=0) -> np.ndarray:
    """Return a low-contrast chest-X-ray-like phantom.

    A posterior-anterior chest view: two lung fields, heart, spine, ribs,
    clavicles, diaphragm and soft tissue, with quantum noise and a slight
    exposure gradient (the heel effect), squeezed into a narrow band of grey
    levels (about 30 % of the range) and surrounded by black collimation
    borders. The borders are exactly 0, so a global histogram is dominated by
    them: a case for `mask=` (see `lung_mask` and `field_mask`).

    Args:
        size: `(height, width)`, at least 16 each.
        bits: Bit depth, 8 to 16. 8 gives uint8; more gives uint16 with values in
            `0 .. 2**bits - 1` (e.g. 12-bit detector data, `value_range=(0, 4095)`).
        seed: Seed of the noise and of the small anatomical jitter; the same seed
            always gives the same image.

    Returns:
        An array of shape `(height, width)`, dtype uint8 (`bits=8`) or uint16.

    Raises:
        TypeError: If `size` or `bits` has the wrong type.
        ValueError: If `size` is too small or `bits` is outside 8..16.

    Example:
        >>> from tf_histeq import samples
        >>> img = samples.chest_xray((128, 128))
        >>> img.dtype, int(img[0, 0]), int(img[64, 64]) in range(60, 170)  # black border, grey body
        (dtype('uint8'), 0, True)
        >>> samples.chest_xray((128, 128), bits=12).max() <= 4095
        np.True_
    """
    size = _check_size(size)
    if not (isinstance(bits, int) and not isinstance(bits, bool)):
        fail(TypeError, "bits", "be an int in [8, 16]", bits)
    if not 8 <= bits <= 16:
        fail(ValueError, "bits", "be an int in [8, 16]", bits)
    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    h, w = size

    # "Density" in 0..1: what absorbs more X-rays shows brighter.
    body = _ellipse(y, x, 0.05, 0.0, 1.15, 0.86, soft=0.03)
    density = 0.06 + 0.50 * body
    shoulders = _ellipse(y, x, -0.95, 0.0, 0.35, 0.95, soft=0.08)
    density += 0.08 * shoulders * body

    heart = _ellipse(y, x, 0.28, 0.12, 0.26, 0.30, soft=0.08)
    lungs = _lungs(y, x) * (1.0 - 0.75 * heart)
    texture = 0.6 * _smooth_noise(rng, size, 40) + 0.4 * _smooth_noise(rng, size, 90)
    density -= lungs * (0.26 + 0.025 * texture)
    density += 0.06 * heart
    mediastinum = _band(x - 0.02, 0.11, soft=0.03) * _sigmoid((y + 0.75) / 0.05)
    density += 0.12 * mediastinum * body
    abdomen = _sigmoid((y - 0.55 - 0.1 * np.abs(x)) / 0.04) * body
    density += 0.08 * abdomen

    # Spine: a bright column of vertebrae with darker discs.
    discs = 0.85 + 0.15 * np.cos(2 * np.pi * (y + 1.0) / 0.14)
    density += 0.10 * _band(x, 0.065, soft=0.01) * discs * body

    # Ribs, slightly jittered by seed: posterior arcs rise from the spine and fall
    # laterally; fainter anterior ones run down towards the middle.
    for k in range(10):
        top = -0.78 + 0.125 * k + rng.uniform(-0.01, 0.01)
        for side in (-1.0, 1.0):
            u = np.clip(side * x - 0.06, 0.0, None)  # distance from the spine
            curve = top - 0.25 * u + 0.75 * u**2
            rib = _band(y - curve, 0.024, soft=0.006) * _sigmoid((0.80 - u) / 0.03)
            rib *= (side * x > 0.05) * body
            cortex = _band(np.abs(y - curve) - 0.021, 0.004, soft=0.002) * rib
            density += 0.045 * rib + 0.03 * cortex
            if k < 6:
                front = top + 0.30 + 0.45 * np.clip(0.78 - u, 0.0, None) ** 1.5
                ant = _band(y - front, 0.02, soft=0.008) * _sigmoid((u - 0.25) / 0.05) * _sigmoid((0.80 - u) / 0.03)
                density += 0.025 * ant * body
    # Clavicles.
    for side in (-1.0, 1.0):
        u = side * x
        curve = -0.66 - 0.10 * np.clip(u - 0.1, 0.0, None) + 0.2 * (u - 0.35) ** 2
        clav = _band(y - curve, 0.028, soft=0.008) * _sigmoid((0.62 - u) / 0.03) * _sigmoid((u - 0.08) / 0.02)
        density += 0.09 * clav

    # Exposure: a narrow band of grey levels, a heel-effect gradient and noise.
    value = 0.33 + 0.30 * density + 0.025 * (y + 0.3 * x)
    value += 0.006 * _smooth_noise(rng, size, 12)
    value += rng.normal(0.0, 0.006, size)
    value = np.where(_field(y, x), value, 0.0)
    top = 2**bits - 1
    out = np.clip(np.rint(value * top), 0, top)
    return out.astype(np.uint8 if bits == 8 else np.uint16).reshape(h, w)


def color_scene(size=_COLOR_SIZE, *, seed=0) -> np.ndarray:
    """Return a hazy, low-contrast RGB landscape.

    Sky, sun glow, three mountain ridges fading into haze, a lake and a meadow
    with trees, all washed towards a blue-grey haze so that the colours sit
    close together. Good for comparing `channels="per_channel"` (which shifts
    hues) with `channels="luminance"` (which keeps them).

    Args:
        size: `(height, width)`, at least 16 each.
        seed: Seed of the ridges, trees and noise.

    Returns:
        A uint8 array of shape `(height, width, 3)`.

    Raises:
        TypeError: If `size` has the wrong type.
        ValueError: If `size` is too small.

    Example:
        >>> from tf_histeq import samples
        >>> img = samples.color_scene((96, 128))
        >>> img.shape, img.dtype, int(img.max()) - int(img.min()) < 200  # hazy: a narrow range
        ((96, 128, 3), dtype('uint8'), True)
    """
    size = _check_size(size)
    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    h, w = size

    sky_top = np.array([0.42, 0.55, 0.75])
    sky_low = np.array([0.80, 0.78, 0.72])
    t = np.clip((y + 1.0) / 1.1, 0.0, 1.0)[..., None]
    img = sky_top * (1 - t) + sky_low * t
    sun = np.exp(-(((y + 0.45) / 0.18) ** 2 + ((x - 0.45) / 0.18) ** 2))[..., None]
    img = img + 0.25 * sun * np.array([1.0, 0.85, 0.55])

    xs = np.linspace(-1.0, 1.0, w)
    ridges = [
        (-0.15, 0.18, np.array([0.50, 0.55, 0.65])),
        (0.0, 0.14, np.array([0.38, 0.45, 0.50])),
        (0.12, 0.10, np.array([0.25, 0.35, 0.30])),
    ]
    for level, amplitude, colour in ridges:
        line = np.zeros(w)
        for octave in range(1, 4):
            phase, freq = rng.uniform(0, 2 * np.pi), rng.uniform(1.5, 3.0) * octave
            line += amplitude / octave * np.sin(freq * np.pi * xs + phase)
        mountain = _sigmoid((y - (level + line)[None, :]) / 0.006)[..., None]
        shade = 1.0 + 0.04 * _smooth_noise(rng, size, 80)[..., None] - 0.25 * (y - level)[..., None]
        img = img * (1 - mountain) + colour * shade * mountain

    lake = _sigmoid((y - 0.30) / 0.01) * _sigmoid((0.55 - y) / 0.01) * _sigmoid((0.7 - np.abs(x + 0.2)) / 0.05)
    lake = lake[..., None]
    ripples = 1.0 + 0.05 * np.sin(90 * y + 3 * _smooth_noise(rng, size, 20))[..., None]
    img = img * (1 - lake) + np.array([0.35, 0.48, 0.62]) * ripples * lake
    meadow = _sigmoid((y - 0.55) / 0.01)[..., None]
    grass = np.array([0.35, 0.48, 0.22]) * (1.0 + 0.05 * _smooth_noise(rng, size, 120) + 0.2 * (y - 0.55))[..., None]
    img = img * (1 - meadow) + grass * meadow
    for _ in range(14):
        cx, cy = rng.uniform(-0.95, 0.95), rng.uniform(0.25, 0.7)
        scale = 0.5 + cy
        tree = _ellipse(y, x, cy - 0.10 * scale, cx, 0.14 * scale, 0.05 * scale, soft=0.06)[..., None]
        img = img * (1 - tree) + np.array([0.12, 0.24, 0.12]) * tree

    haze = np.array([0.62, 0.66, 0.70])
    img = 0.55 * haze + 0.45 * img
    img = img + rng.normal(0.0, 0.006, img.shape)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8).reshape(h, w, 3)


def _check_shape(shape) -> tuple[int, int, int]:
    if not isinstance(shape, (tuple, list)) or len(shape) != 3:
        fail(TypeError, "shape", "be three ints (depth, height, width)", shape)
    items = [v.item() if hasattr(v, "item") else v for v in shape]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        fail(TypeError, "shape", "be three ints (depth, height, width)", shape)
    if min(items) < 8:
        fail(ValueError, "shape", "be three ints >= 8 (depth, height, width)", shape)
    return int(items[0]), int(items[1]), int(items[2])


def ct_labels(shape=_CT_SHAPE) -> np.ndarray:
    """The anatomy of `ct_phantom`: a uint8 label volume `(D, H, W)` with the codes of `CT_LABELS`.

    Coordinates are normalised to [-1, 1] along each axis, at voxel centres:
    `z` over the slices (D), `y` down the rows (H, anterior at -1), `x` across
    the columns (W). The structures, later ones drawn over earlier ones:

    - field of view: the cylinder `x² + y² < 0.98²`, outside it `outside`;
    - body: the ellipsoid `(x/0.85)² + (y/0.62)² + (z/1.4)² < 1` of
      `soft_tissue`, whose outer 0.05 (in the same units) is `fat`; `air` around it;
    - lungs: two ellipsoids centred at `x = ±0.4, y = -0.05, z = 0.15` with radii
      `(0.27, 0.36, 0.75)` in `(x, y, z)`: the slices above `z ≈ -0.6`;
    - spine: the cylinder along `z` at `x = 0, y = 0.42`, radius 0.1, of `bone`
      inside a `cortical_bone` shell from radius 0.07;
    - lesion: the sphere of radius 0.12 (in each normalised axis) centred at
      `x = 0.3, y = 0, z = -0.78`, in the soft tissue below the lungs.

    Args:
        shape: `(depth, height, width)`, each at least 8.

    Returns:
        uint8 `(D, H, W)`. It does not depend on a seed.
    """
    d, h, w = _check_shape(shape)
    axis = [(np.arange(n, dtype=np.float64) + 0.5) / n * 2.0 - 1.0 for n in (d, h, w)]
    z, y, x = np.meshgrid(*axis, indexing="ij", sparse=True)
    labels = np.full((d, h, w), CT_LABELS["air"], np.uint8)
    body = (x / 0.85) ** 2 + (y / 0.62) ** 2 + (z / 1.4) ** 2
    labels[body < 1] = CT_LABELS["fat"]
    inner = (x / 0.80) ** 2 + (y / 0.57) ** 2 + (z / 1.4) ** 2
    labels[inner < 1] = CT_LABELS["soft_tissue"]
    for side in (-1, 1):
        lung = ((x - side * 0.4) / 0.27) ** 2 + ((y + 0.05) / 0.36) ** 2 + ((z - 0.15) / 0.75) ** 2
        labels[np.broadcast_to(lung < 1, labels.shape)] = CT_LABELS["lung"]
    spine = np.broadcast_to(x**2 + (y - 0.42) ** 2, labels.shape)
    labels[(spine < 0.1**2) & (inner < 1)] = CT_LABELS["cortical_bone"]
    labels[(spine < 0.07**2) & (inner < 1)] = CT_LABELS["bone"]
    lesion = (x - 0.3) ** 2 + y**2 + (z + 0.78) ** 2
    labels[np.broadcast_to(lesion < 0.12**2, labels.shape)] = CT_LABELS["lesion"]
    labels[np.broadcast_to(x**2 + y**2 >= 0.98**2, labels.shape)] = CT_LABELS["outside"]
    return labels


def ct_phantom(shape=_CT_SHAPE, *, seed: int = 0) -> np.ndarray:
    """A CT-like volume in Hounsfield units: int16 `(D, H, W)`, 64×128×128 by default.

    Each voxel of `ct_labels(shape)` gets its structure's value from `CT_HU`
    (air -1000, fat -100, soft tissue 40, lungs -800, bone 700 inside a 1200
    cortical shell, a lesion of 60 HU: 20 HU above the tissue around it, twice
    the noise) plus Gaussian noise of `CT_NOISE_HU` (10 HU), rounded; outside
    the circular field of view every voxel is -2048, the padding value scanners
    write there. All values lie in `[-2048, 3071]`, so the usual CT window is
    `value_range=(-1024, 3071), bins=4096`, which clips the padding and air
    below -1024. The same `seed` gives the same volume on every machine.

    Args:
        shape: `(depth, height, width)`, each at least 8.
        seed: Seed of the noise.

    Returns:
        int16 `(D, H, W)`.

    Example:
        >>> from tf_histeq import samples
        >>> ct = samples.ct_phantom()
        >>> ct.dtype, ct.shape, int(ct.min())
        (dtype('int16'), (64, 128, 128), -2048)
    """
    labels = ct_labels(shape)
    table = np.zeros(len(CT_LABELS), np.float64)
    for name, code in CT_LABELS.items():
        table[code] = CT_HU[name]
    noise = np.random.default_rng(seed).normal(0.0, CT_NOISE_HU, labels.shape)
    hu = table[labels] + np.where(labels == CT_LABELS["outside"], 0.0, noise)
    return np.clip(np.rint(hu), -2048, 3071).astype(np.int16)


def load(name: str, *, seed: int = 0) -> np.ndarray:
    """Return a built-in sample by name, at its default size.

    Args:
        name: One of `NAMES`: `"chest_xray"` (uint8, 512×512),
            `"chest_xray_12bit"` (uint16 holding 12-bit values, 512×512),
            `"lung_mask"` and `"field_mask"` (bool, 512×512) or `"color_scene"`
            (uint8 RGB, 384×512).
        seed: Seed of the generated images (masks do not depend on it).

    Returns:
        A NumPy array.

    Raises:
        ValueError: If `name` is not one of `NAMES`.

    Example:
        >>> from tf_histeq import samples
        >>> img = samples.load("chest_xray_12bit")
        >>> img.dtype, img.shape, int(img.max()) < 4096
        (dtype('uint16'), (512, 512), True)
    """
    if name == "chest_xray":
        return chest_xray(seed=seed)
    if name == "chest_xray_12bit":
        return chest_xray(bits=12, seed=seed)
    if name == "lung_mask":
        return lung_mask()
    if name == "field_mask":
        return field_mask()
    if name == "color_scene":
        return color_scene(seed=seed)
    fail(ValueError, "name", "be one of " + ", ".join(repr(n) for n in NAMES), name)
