"""`tf_histeq.plot`: comparison figures, checked for content, not only for existence."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tf_histeq import _convert, samples


@pytest.fixture(scope="module")
def plot():
    """`tf_histeq.plot`, which needs matplotlib (the one test that does not, below, takes no fixture)."""
    pytest.importorskip("matplotlib")
    return importlib.import_module("tf_histeq.plot")


@pytest.fixture(scope="module")
def xray():
    return samples.chest_xray((96, 128))


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def _hist_axes(fig):
    return [ax for ax in fig.axes if not ax.images and (ax.collections or ax.patches)]


class TestCompare:
    def test_returns_a_figure_of_images_histograms_and_cdfs(self, xray, plot):
        from matplotlib.figure import Figure

        fig = plot.compare([xray, tf_histeq.equalize_hist(xray)], titles=["before", "after"], width=2.5, dpi=80)
        assert isinstance(fig, Figure)
        assert [ax.get_title() for ax in _image_axes(fig)] == ["before", "after"]
        assert len(_hist_axes(fig)) == 2
        cdfs = [ax for ax in fig.axes if not ax.images and ax.lines]
        assert len(cdfs) == 2
        for ax in cdfs:
            y = ax.lines[0].get_ydata()
            assert y[-1] == pytest.approx(1.0) and np.all(np.diff(y) >= 0)  # a CDF: rises to 1
        # The equalized CDF is close to a straight line; the original's is a steep step.
        before, after = (np.asarray(ax.lines[0].get_ydata()) for ax in cdfs)
        diagonal = np.linspace(0, 1, len(after))
        assert np.abs(after - diagonal).max() < np.abs(before - diagonal).max()

    def test_renders_to_pixels_of_the_stated_size_with_content(self, xray, plot):
        fig = plot.compare([xray, xray], width=2.0, dpi=50)
        pixels = plot.to_array(fig)
        # Height: the images (width * 96 / 128 in) plus 1.9 in for the histograms.
        assert pixels.shape == (int((2.0 * 0.75 + 1.9) * 50), 2 * 2 * 50, 4) and pixels.dtype == np.uint8
        assert pixels[..., :3].std() > 20  # not blank
        # The upper part shows the X-ray: dark border and grey body, not a flat colour.
        top = pixels[: pixels.shape[0] // 2, : pixels.shape[1] // 2, :3]
        assert top.min() < 40 and top.max() > 100

    def test_colour_images_get_one_histogram_and_cdf_per_channel(self, plot):
        from matplotlib.colors import to_rgb

        scene = samples.color_scene((48, 64))
        rgba = np.dstack([scene, np.full((48, 64), 255, np.uint8)])
        fig = plot.compare([scene, rgba, tf_histeq.clahe(scene, channels="luminance")])
        for ax in _hist_axes(fig):
            assert [p.get_edgecolor()[:3] for p in ax.patches] == [
                to_rgb(c) for c in ("tab:red", "tab:green", "tab:blue")
            ]
        cdfs = [ax for ax in fig.axes if not ax.images and ax.lines]
        assert [len(ax.lines) for ax in cdfs] == [3, 3, 3]

    def test_value_range_sets_the_axes_of_12_bit_data(self, plot):
        twelve = samples.chest_xray((64, 64), bits=12)
        fig = plot.compare([twelve], value_range=(0, 4095))
        assert _hist_axes(fig)[0].get_xlim() == pytest.approx((-0.5, 4095.5))
        assert _image_axes(fig)[0].images[0].get_clim() == (0, 4095)
        fig = plot.compare([twelve])  # uint16 default: the full 16-bit range
        assert _image_axes(fig)[0].images[0].get_clim() == (0, 65535)

    @pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "float32"])
    def test_default_ranges_are_the_ops(self, dtype, plot):
        image = np.zeros((4, 4), dtype)
        spec = _convert.level_spec(tf.as_dtype(dtype), None, None)
        assert _image_axes(plot.compare([image]))[0].images[0].get_clim() == (spec.low, spec.high)

    def test_alpha_is_left_out_by_the_ops_rule(self, xray, plot):
        scene = samples.color_scene((24, 32))
        opaque = np.full((24, 32, 1), 255, np.uint8)
        fig = plot.compare([np.dstack([xray[:24, :32], opaque]), np.dstack([scene, opaque]), scene])
        cdfs = [ax for ax in fig.axes if not ax.images and ax.lines]
        assert [len(ax.lines) for ax in cdfs] == [1, 3, 3]  # gray + alpha: one histogram; RGBA, RGB: three

    def test_accepts_tensors_batches_floats_masks_and_gray_alpha(self, xray, plot):
        batch = tf.constant(np.stack([xray[..., None]] * 2))
        assert len(_image_axes(plot.compare(batch))) == 2
        floats = xray.astype(np.float32) / 255.0
        fig = plot.compare([floats, samples.lung_mask((96, 128)), np.dstack([xray, xray])], value_range=(0, 1))
        assert len(_image_axes(fig)) == 3

    def test_leaves_no_figure_in_pyplot(self, xray, plot):
        # Importing TensorFlow may import pyplot; compare() must not register figures with it.
        pyplot = pytest.importorskip("matplotlib.pyplot")
        before = pyplot.get_fignums()
        plot.to_array(plot.compare([xray]))
        assert pyplot.get_fignums() == before

    def test_spikes_do_not_flatten_the_histogram(self, xray, plot):
        fig = plot.compare([xray])  # 21 % of the pixels are the black border at 0
        ax = _hist_axes(fig)[0]
        counts = np.bincount(xray.ravel(), minlength=256)
        assert ax.get_ylim()[1] < counts[0] / 2
        assert ax.get_ylim()[1] >= counts[1:].max()


class TestValidation:
    @pytest.mark.parametrize(
        ("args", "kwargs", "error", "match"),
        [
            ([], {}, TypeError, r"`images` must be a non-empty list or tuple of arrays\. Received: images='list'"),
            (np.zeros((4, 4), np.uint8), {}, TypeError, r"`images` must be a non-empty list"),
            ([np.zeros((4, 4, 5), np.uint8)], {}, ValueError, r"`images\[0\]\.shape` must be \(H, W\) or \(H, W, C\)"),
            ([np.array([["a"]])], {}, TypeError, r"`images\[0\]\.dtype` must be a number type"),
            ([np.zeros((4, 4))], {"titles": ["a", "b"]}, ValueError, r"`titles` must have one entry per image \(1\)"),
            ([np.zeros((4, 4))], {"titles": "a"}, TypeError, r"`titles` must be a list or tuple"),
            ([np.zeros((4, 4))], {"bins": 1}, ValueError, r"`bins` must be an int in \[2, 65536\]"),
            ([np.zeros((4, 4))], {"value_range": (1, 0)}, ValueError, r"`value_range` must satisfy low < high"),
            ([np.zeros((4, 4))], {"dpi": 0}, ValueError, r"`dpi` must be a positive number\. Received: dpi=0\."),
        ],
        ids=["empty", "bare-array", "five-channels", "strings", "titles-length", "titles-str", "bins", "range", "dpi"],
    )
    def test_bad_arguments(self, args, kwargs, error, match, plot):
        with pytest.raises(error, match=match):
            plot.compare(args, **kwargs)


def test_import_without_matplotlib_says_how_to_install_it(monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib.") or name == "tf_histeq.plot":
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "tf_histeq\[plot\]"'):
        importlib.import_module("tf_histeq.plot")
