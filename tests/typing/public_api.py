"""A user's script, checked by `mypy` in CI (.ci/run): the public API is typed through the package's stub.

`reveal_type`-free on purpose: mypy fails the run if a call below does not fit
the signatures in `tf_histeq/__init__.pyi`, or if a result is used as a type it
is not (the `int` assignments under `if TYPE_CHECKING` must be flagged, which
`--warn-unused-ignores` checks through the `type: ignore` comments).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import tf_histeq

image = np.zeros((64, 64), np.uint8)
equalized = tf_histeq.equalize_hist(image, method="pil", channels="per_channel", alpha=False)
tiles = tf_histeq.clahe(image, clip_limit=2.0, tile_grid_size=(4, 4), value_range=(0, 255), bins=256)
reference = tf_histeq.reference_histogram([image, image], alpha="auto")
matched = tf_histeq.match_histograms(image, reference, channels="joint")
out: np.ndarray = tf_histeq.histogram_equalization(image.astype(np.float32), value_range=(0, 255))
function = tf_histeq.preprocessing_function("clahe", clip_limit=3.0)
version: str = tf_histeq.__version__
compiled = tf_histeq.clahe(image, jit_compile=True)
shapes: tuple[str, ...] = tf_histeq.compiled_shapes()[0].compiled
tf_histeq.clear_compiled()

if TYPE_CHECKING:
    # Each line is wrong, and mypy must say so (else `--warn-unused-ignores` fails the run).
    tf_histeq.equalize_hist(image, method="cv2")  # type: ignore[arg-type]
    tf_histeq.clahe(image, 2.0)  # type: ignore[call-arg]
    tf_histeq.equalize_hist(image, no_such_option=1)  # type: ignore[call-arg]
    wrong: int = tf_histeq.reference_histogram(image)  # type: ignore[assignment]
    tf_histeq.clahe(image, jit_compile="always")  # type: ignore[arg-type]
