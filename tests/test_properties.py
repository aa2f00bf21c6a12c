"""Properties that hold for every input, checked with hypothesis."""

from __future__ import annotations

import numpy as np
import pytest

import tf_histeq

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)

shapes = st.tuples(st.integers(1, 24), st.integers(1, 24))


@st.composite
def low_contrast_images(draw, dtype=np.uint8, channels=None):
    """Images whose levels sit in a random narrow band, the case equalization is for."""
    top = 255 if dtype == np.uint8 else 65535
    h, w = draw(shapes)
    low = draw(st.integers(0, top - 1))
    high = draw(st.integers(low, min(top, low + draw(st.sampled_from([1, 5, 40, top])))))
    shape = (h, w) if channels is None else (h, w, channels)
    return draw(hnp.arrays(dtype, shape, elements=st.integers(low, high)))


def assert_monotone(source: np.ndarray, result: np.ndarray) -> None:
    """Equal inputs stay equal and order never reverses (per plane)."""
    order = np.argsort(source, kind="stable")
    s, r = source[order], result[order].astype(np.int64)
    assert (np.diff(r) >= 0).all(), "the mapping reverses the order of two levels"
    same = np.diff(s) == 0
    assert (np.diff(r)[same] == 0).all(), "two equal inputs got different outputs"


@pytest.mark.parametrize("method", ["opencv", "pil"])
@SETTINGS
@given(image=low_contrast_images())
def test_output_in_range_of_input_dtype_and_monotone(method, image):
    out = tf_histeq.equalize_hist(image, method=method).numpy()
    assert out.dtype == image.dtype and out.shape == image.shape
    assert_monotone(image.ravel(), out.ravel())


@SETTINGS
@given(image=low_contrast_images(np.uint16))
def test_uint16_output_is_monotone_and_spans_the_range(image):
    out = tf_histeq.equalize_hist(image).numpy()
    assert out.dtype == np.uint16
    assert_monotone(image.ravel(), out.ravel())
    if len(np.unique(image)) > 1:
        assert out.min() == 0 and out.max() == 65535


@SETTINGS
@given(
    image=hnp.arrays(np.float32, (6, 7), elements=st.floats(-10, 300, width=32) | st.just(np.nan)),
    value_range=st.sampled_from([(0, 255), (0, 1), (-1, 1), (20, 40)]),
)
def test_float_output_stays_in_value_range_and_nan_stays_nan(image, value_range):
    out = tf_histeq.equalize_hist(image, value_range=value_range).numpy()
    nan = np.isnan(image)
    assert (np.isnan(out) == nan).all()
    assert (out[~nan] >= value_range[0]).all() and (out[~nan] <= value_range[1]).all()


@SETTINGS
@given(image=low_contrast_images(), data=st.data())
def test_opencv_method_is_invariant_under_increasing_relabelling(image, data):
    levels = np.unique(image)
    assume(len(levels) >= 2)  # a constant image is returned unchanged, so relabelling would show through
    # A random strictly increasing relabelling of the occupied levels.
    targets = sorted(data.draw(st.lists(st.integers(0, 255), min_size=len(levels), max_size=len(levels), unique=True)))
    relabel = np.zeros(256, np.uint8)
    relabel[levels] = targets
    out = tf_histeq.equalize_hist(image).numpy()
    assert (tf_histeq.equalize_hist(relabel[image]).numpy() == out).all()


@SETTINGS
@given(first=low_contrast_images(channels=3), other=low_contrast_images(channels=3))
def test_an_image_result_does_not_depend_on_its_batch_mates(first, other):
    h, w = min(first.shape[0], other.shape[0]), min(first.shape[1], other.shape[1])
    first, other = first[:h, :w], other[:h, :w]
    alone = tf_histeq.equalize_hist(first).numpy()
    together = tf_histeq.equalize_hist(np.stack([first, other])).numpy()
    assert (together[0] == alone).all()
