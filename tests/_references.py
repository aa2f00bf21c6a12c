"""Reference implementations, in tf_histeq's layout, and exact comparison helpers.

The references import their library when called, with `pytest.importorskip`:
outside CI a test that needs a missing library is skipped, in CI the conftest
refuses to start without it.
"""

from __future__ import annotations

import numpy as np
import pytest


def assert_same_pixels(actual, expected, what: str = "") -> None:
    """Assert exact equality; the failure message counts the differing pixels."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what} shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what} dtype {actual.dtype} != {expected.dtype}"
    differ = actual != expected
    if np.issubdtype(actual.dtype, np.floating):
        differ &= ~(np.isnan(actual) & np.isnan(expected))
    count = int(differ.sum())
    if count:
        diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))[differ]
        raise AssertionError(f"{what} {count} of {actual.size} pixels differ (max |diff| {diff.max():g})")


def per_plane(fn, image: np.ndarray) -> np.ndarray:
    """Apply a single-plane function to every channel of `(H, W)`, `(H, W, C)` or `(N, H, W, C)`."""
    if image.ndim == 2:
        return fn(image)
    if image.ndim == 4:
        return np.stack([per_plane(fn, im) for im in image])
    return np.stack([fn(np.ascontiguousarray(image[..., c])) for c in range(image.shape[-1])], axis=-1)


def cv2_equalize(image: np.ndarray) -> np.ndarray:
    cv2 = pytest.importorskip("cv2")
    return per_plane(cv2.equalizeHist, image)


def pil_equalize(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    pytest.importorskip("PIL")
    from PIL import Image, ImageOps

    pil_mask = None if mask is None else Image.fromarray(mask.astype(np.uint8) * 255)
    if image.ndim == 3 and image.shape[-1] == 3:
        return np.asarray(ImageOps.equalize(Image.fromarray(image), mask=pil_mask))
    return per_plane(lambda plane: np.asarray(ImageOps.equalize(Image.fromarray(plane), mask=pil_mask)), image)


def cv2_clahe(image: np.ndarray, clip_limit: float, grid: tuple[int, int]) -> np.ndarray:
    """`cv2.createCLAHE` with our (rows, cols) grid convention."""
    cv2 = pytest.importorskip("cv2")
    engine = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(grid[1], grid[0]))
    return per_plane(engine.apply, image)


def cv2_lightness(image: np.ndarray, space: str, plane_fn) -> np.ndarray:
    """OpenCV users' colour recipe: `cvtColor(RGB2YCrCb` or `RGB2Lab)`, `plane_fn` on the first plane, back.

    `image` is uint8 RGB `(H, W, 3)`, RGBA (alpha passes through) or a batch of either.
    """
    cv2 = pytest.importorskip("cv2")
    if image.ndim == 4:
        return np.stack([cv2_lightness(im, space, plane_fn) for im in image])
    forward, inverse = {
        "luminance": (cv2.COLOR_RGB2YCrCb, cv2.COLOR_YCrCb2RGB),
        "lab": (cv2.COLOR_RGB2Lab, cv2.COLOR_Lab2RGB),
    }[space]
    converted = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), forward)
    converted[..., 0] = plane_fn(np.ascontiguousarray(converted[..., 0]))
    return np.concatenate([cv2.cvtColor(converted, inverse), image[..., 3:]], axis=-1)
