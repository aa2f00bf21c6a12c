"""Comparison figures: images side by side with their histograms and CDFs.

Needs matplotlib, an optional extra: `pip install "tf_histeq[plot]"`. The
figures are built on matplotlib's object API (`Figure` with an Agg canvas), so
nothing here touches pyplot's global state or needs a display; in Jupyter, a
returned figure shows itself as a PNG.
"""

from __future__ import annotations

import io

import numpy as np

from tf_histeq import _options
from tf_histeq._options import check_bins, check_value_range, fail

try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
except ImportError as err:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        'tf_histeq.plot needs matplotlib, an optional extra: pip install "tf_histeq[plot]"', name="matplotlib"
    ) from err

__all__ = ["compare", "slices", "to_array"]

_CHANNEL_COLORS = ("tab:red", "tab:green", "tab:blue")


class ComparisonFigure(Figure):
    """A `Figure` that shows itself in Jupyter without pyplot or `%matplotlib inline`."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


_GRAY = "0.35"


def _as_array(image, index: int) -> np.ndarray:
    name = f"images[{index}]"
    array = image.numpy() if hasattr(image, "numpy") else np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype.kind not in "uif":
        fail(TypeError, f"{name}.dtype", "be a number type (uint8, uint16, float, ...)", str(array.dtype))
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (2, 3, 4)):
        fail(ValueError, f"{name}.shape", "be (H, W) or (H, W, C) with C in 1..4", array.shape)
    if array.shape[0] < 1 or array.shape[1] < 1:
        fail(ValueError, f"{name}.shape", "have a height and width of at least 1", array.shape)
    return array


def _is_gray(array: np.ndarray) -> bool:
    """One colour channel: `(H, W)`, or gray + alpha by the ops' alpha rule (`alpha="auto"`)."""
    if array.ndim == 2:
        return True
    channels = array.shape[-1]
    return channels - _options.has_alpha(_options.ALPHA, channels) == 1


def _planes(array: np.ndarray) -> list[tuple[np.ndarray, str, str]]:
    """The planes to plot a histogram of, with colour and label: gray, or R, G, B (alpha is left out)."""
    if _is_gray(array):
        return [(array if array.ndim == 2 else array[..., 0], _GRAY, "gray")]
    return [(array[..., c], _CHANNEL_COLORS[c], "RGB"[c]) for c in range(3)]


def _display(array: np.ndarray, low: float, high: float) -> np.ndarray:
    """Colour images as float RGB(A) in [0, 1]; gray images unchanged (imshow scales them)."""
    if _is_gray(array):
        return array if array.ndim == 2 else array[..., 0]
    scaled = (array.astype(np.float64) - low) / (high - low)
    return np.clip(np.nan_to_num(scaled), 0.0, 1.0)


def compare(images, titles=None, *, value_range=None, bins=256, cdf=True, width=3.0, dpi=100):
    """Return a figure of images side by side, each above its histogram and CDF.

    One column per image: the image on top, and below it the histogram of each
    channel (gray, or R, G and B; alpha is left out) with the cumulative
    distribution on a second axis (dashed, 0 to 1). When a few bins tower
    over the others (e.g. an X-ray's black border), the count axis is cut
    below them so that the rest stays readable.

    Args:
        images: A sequence of arrays or tensors of shape `(H, W)`, `(H, W, 1)`,
            `(H, W, 2)` (gray + alpha), `(H, W, 3)` or `(H, W, 4)` (RGBA); sizes
            and dtypes may differ. Bool arrays (masks) show as black and white.
        titles: Optional sequence of titles, one per image.
        value_range: `(low, high)` used for display and histograms. Defaults, as
            in the ops: uint8 `(0, 255)`, uint16 `(0, 65535)`, float `(0, 255)`.
            Pass `(0, 4095)` for 12-bit data stored in uint16.
        bins: Number of histogram bins over `value_range`.
        cdf: Also draw the cumulative distribution.
        width: Width of one column, in inches.
        dpi: Resolution of the figure, in dots per inch.

    Returns:
        A `matplotlib.figure.Figure` with an Agg canvas attached: call
        `fig.savefig(path)`, or `to_array(fig)` for the pixels. In Jupyter it
        shows itself (as a PNG) when it is the value of a cell.

    Raises:
        TypeError: If an image is not a number array or an argument has the wrong type.
        ValueError: If an image has a bad shape, `titles` has the wrong length, or
            an argument has a bad value.

    Example:
        >>> import numpy as np
        >>> import tf_histeq
        >>> from tf_histeq import plot, samples
        >>> img = samples.chest_xray((128, 128))
        >>> fig = plot.compare([img, tf_histeq.equalize_hist(img)], titles=["original", "equalize_hist"])
        >>> len(fig.axes)  # two images, two histograms, two CDF axes
        6
        >>> pixels = plot.to_array(fig)
        >>> pixels.shape[-1], bool(pixels[..., :3].std() > 20)  # RGBA, not blank
        (4, True)
    """
    if hasattr(images, "shape") and len(images.shape) == 4:  # a batch (N, H, W, C)
        images = list(images)
    if not isinstance(images, (list, tuple)) or not images:
        fail(TypeError, "images", "be a non-empty list or tuple of arrays", type(images).__name__)
    arrays = [_as_array(image, i) for i, image in enumerate(images)]
    if titles is None:
        titles = [f"image {i}" for i in range(len(arrays))]
    if isinstance(titles, str) or not isinstance(titles, (list, tuple)):
        fail(TypeError, "titles", "be a list or tuple of strings, one per image", titles)
    if len(titles) != len(arrays):
        fail(ValueError, "titles", f"have one entry per image ({len(arrays)})", titles)
    value_range = check_value_range(value_range)
    bins = check_bins(bins)
    for name, value in (("width", width), ("dpi", dpi)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            fail(ValueError, name, "be a positive number", value)

    n = len(arrays)
    aspect = max(a.shape[0] / a.shape[1] for a in arrays)
    image_height = width * min(aspect, 2.0)
    fig = ComparisonFigure(figsize=(width * n, image_height + 1.9), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, n, squeeze=False, height_ratios=[image_height, 1.5])
    for column, (array, title) in enumerate(zip(arrays, titles, strict=True)):
        low, high = value_range if value_range is not None else _options.default_range(array.dtype.name)
        ax_image, ax_hist = axes[0, column], axes[1, column]
        shown = _display(array, low, high)
        if shown.ndim == 2:
            ax_image.imshow(shown, cmap="gray", vmin=low, vmax=high, interpolation="antialiased")
        else:
            ax_image.imshow(shown, interpolation="antialiased")
        ax_image.set_title(str(title), fontsize=10)
        ax_image.set_axis_off()
        _histogram_axes(ax_hist, array, low, high, bins, cdf=cdf)
    return fig


SLICE_VIEWS = ("axial", "coronal", "sagittal")  # the planes `slices` shows, through axes D, H and W


def slices(
    volumes, titles=None, *, value_range=None, spacing=None, center=None, slice_origin="upper", width=2.5, dpi=100
):
    """Return a figure of three orthogonal slices of each volume: one row per volume.

    The columns are the planes through `center` across each axis of a
    `(D, H, W)` volume (`SLICE_VIEWS`): axial `volume[d]` (H down, W across),
    coronal `volume[:, h]` and sagittal `volume[:, :, w]` (D down: the first
    slice on top, unless `slice_origin="lower"`). With `spacing` the pixels are drawn to scale, so an
    anisotropic CT (2.5 mm slices, 0.8 mm pixels) keeps its proportions.
    `tf_histeq.volumes.read_volume` reads volumes in this axis order.

    Args:
        volumes: A sequence of arrays or tensors `(D, H, W)` (or `(D, H, W, 1)`)
            of one shape, e.g. a volume before and after equalization.
        titles: Optional sequence of titles, one per volume (shown left of its row;
            the plane's name tops each column).
        value_range: `(low, high)` of the gray scale, as in `compare`
            (default: the dtype's, as the ops read it).
        spacing: Optional `(D, H, W)` voxel size; default cubic voxels.
        center: Optional `(d, h, w)` voxel the planes go through; default the middle.
        slice_origin: `"upper"`: the first slice at the top of the coronal and
            sagittal planes; `"lower"`: at the bottom (a NIfTI in RAS+
            orientation, whose slices go from the feet to the head, then shows
            the head up).
        width: Width of one panel, in inches.
        dpi: Resolution of the figure, in dots per inch.

    Returns:
        A `matplotlib.figure.Figure` with an Agg canvas, as `compare` returns.

    Raises:
        TypeError: If a volume is not a number array.
        ValueError: If the volumes are not `(D, H, W)` of one shape, or an
            argument has a bad value.

    Example:
        >>> import tf_histeq
        >>> from tf_histeq import plot, samples
        >>> ct = samples.ct_phantom((16, 32, 32))
        >>> window = {"value_range": (-1024, 3071), "bins": 4096}
        >>> fig = plot.slices([ct, tf_histeq.equalize_hist(ct, spatial_dims=3, **window)],
        ...                   ["original", "equalize_hist"], value_range=(-1024, 3071))
        >>> len(fig.axes)  # two rows of three planes
        6
    """
    if hasattr(volumes, "shape") or not isinstance(volumes, (list, tuple)) or not volumes:
        fail(TypeError, "volumes", "be a non-empty list or tuple of (D, H, W) arrays", type(volumes).__name__)
    arrays = []
    for i, volume in enumerate(volumes):
        array = volume.numpy() if hasattr(volume, "numpy") else np.asarray(volume)
        if array.dtype.kind not in "uif":
            fail(TypeError, f"volumes[{i}].dtype", "be a number type", str(array.dtype))
        if array.ndim == 4 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim != 3 or min(array.shape) < 1 or array.shape != np.shape(arrays[0] if arrays else array):
            fail(ValueError, f"volumes[{i}].shape", "be (D, H, W), the same for every volume", array.shape)
        arrays.append(array)
    if titles is None:
        titles = [f"volume {i}" for i in range(len(arrays))]
    if isinstance(titles, str) or not isinstance(titles, (list, tuple)) or len(titles) != len(arrays):
        fail(ValueError, "titles", f"be a list or tuple of {len(arrays)} strings, one per volume", titles)
    value_range = check_value_range(value_range)
    shape = arrays[0].shape
    step = (1.0, 1.0, 1.0) if spacing is None else tuple(float(v) if v else 1.0 for v in spacing)
    if len(step) != 3 or not all(v > 0 and np.isfinite(v) for v in step):
        fail(ValueError, "spacing", "be three positive numbers (D, H, W)", spacing)
    at = tuple(n // 2 for n in shape) if center is None else tuple(int(v) for v in center)
    if len(at) != 3 or not all(0 <= a < n for a, n in zip(at, shape, strict=True)):
        fail(ValueError, "center", f"be a voxel (d, h, w) inside the shape {shape}", center)
    for name, value in (("width", width), ("dpi", dpi)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            fail(ValueError, name, "be a positive number", value)
    if slice_origin not in ("upper", "lower"):
        fail(ValueError, "slice_origin", 'be "upper" or "lower"', slice_origin)
    # Each plane with its (rows, columns) axes and their physical extents, for the aspect ratio.
    views = [
        (lambda a: a[at[0]], step[1] / step[2]),
        (lambda a: a[:, at[1]], step[0] / step[2]),
        (lambda a: a[:, :, at[2]], step[0] / step[1]),
    ]
    heights = [shape[1] * step[1] / (shape[2] * step[2]), shape[0] * step[0] / (shape[2] * step[2])]
    heights.append(shape[0] * step[0] / (shape[1] * step[1]))
    row_height = width * min(max(heights), 2.0)
    fig = ComparisonFigure(figsize=(3 * width, row_height * len(arrays) + 0.3), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(arrays), 3, squeeze=False)
    for row, (array, title) in enumerate(zip(arrays, titles, strict=True)):
        low, high = value_range if value_range is not None else _options.default_range(array.dtype.name)
        for column, ((plane, aspect), view) in enumerate(zip(views, SLICE_VIEWS, strict=True)):
            ax = axes[row, column]
            origin = "upper" if column == 0 else slice_origin
            ax.imshow(
                plane(array),
                cmap="gray",
                vmin=low,
                vmax=high,
                aspect=aspect,
                origin=origin,
                interpolation="antialiased",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if row == 0:
                ax.set_title(view, fontsize=10)
            if column == 0:
                ax.set_ylabel(str(title), fontsize=10)
    return fig


def _histogram_axes(ax, array: np.ndarray, low: float, high: float, bins: int, *, cdf: bool) -> None:
    if array.dtype.kind in "ui":
        # Integer levels sit in the middle of their bins, none falls on an edge.
        edges = np.linspace(low - 0.5, high + 0.5, bins + 1)
    else:
        edges = np.linspace(low, high, bins + 1)
    planes = _planes(array)
    counts = []
    for plane, color, label in planes:
        values = plane[np.isfinite(plane)] if plane.dtype.kind == "f" else plane.ravel()
        hist, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
        counts.append(hist)
        if len(planes) == 1:
            ax.fill_between(edges[:-1], hist, step="post", color=color, alpha=0.8, linewidth=0)
        else:
            ax.stairs(hist, edges, color=color, linewidth=1.0, label=label)
    ax.set_ylim(0, _count_limit(np.concatenate(counts)) * 1.08)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_yticks([])
    ax.tick_params(labelsize=8)
    if cdf:
        twin = ax.twinx()
        for hist, (_, color, _label) in zip(counts, planes, strict=True):
            total = hist.sum()
            curve = np.cumsum(hist) / total if total else np.zeros(len(hist))
            twin.plot(edges[1:], curve, color="black" if len(planes) == 1 else color, linestyle="--", linewidth=1.0)
        twin.set_ylim(0, 1.05)
        twin.set_yticks([0, 0.5, 1])
        twin.tick_params(labelsize=8)


def _count_limit(counts: np.ndarray) -> int:
    """Return the top of the count axis: the highest bin, unless a few spikes tower over the rest.

    Spikes (an X-ray's black border, pixels clipped to white) are then cut off.
    """
    nonzero = counts[counts > 0]
    if nonzero.size == 0:
        return 1
    regular = nonzero[nonzero <= 8 * np.median(nonzero)]
    return int(regular.max())


def to_array(fig) -> np.ndarray:
    """Render a figure and return its pixels.

    Args:
        fig: A `matplotlib.figure.Figure`, e.g. from `compare`.

    Returns:
        A uint8 array of shape `(height, width, 4)` (RGBA), height and width in
        pixels (`figsize * dpi`).

    Example:
        >>> from tf_histeq import plot
        >>> fig = plot.compare([[[0, 255], [255, 0]]], width=2.0, dpi=50)
        >>> plot.to_array(fig).shape  # (height, width) = (2.0 + 1.9, 2.0) inches * 50 dpi
        (195, 100, 4)
    """
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()
