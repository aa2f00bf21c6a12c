"""`tf.data` adapter: equalize the image of every dataset element.

`map_fn` validates its arguments when it is called, and returns a function for
`dataset.map(...)` that equalizes the image and passes everything else through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from tf_histeq import _options, _xla, ops
from tf_histeq._options import fail

__all__ = ["map_fn"]


def map_fn(
    op: str = "equalize_hist",
    image_key: str | None = None,
    *,
    jit_compile: str | bool = _xla.JIT_COMPILE,
    **kwargs: Any,
) -> Callable:
    """Return a `dataset.map` function that equalizes the image of each element.

    The returned function calls `tf_histeq.equalize_hist` or `tf_histeq.clahe`
    on the image and passes everything else through unchanged. It accepts the
    usual element structures:

    - a bare image;
    - a tuple `(image, label, ...)`: the first item is the image;
    - a dict: `image_key` names the image entry;
    - a tuple whose first item is a dict (`(features, label)`, as Keras
      consumes them): `image_key` names the image entry of the dict.

    Images may be unbatched `(H, W)` / `(H, W, C)` (with H and W varying from
    element to element) or batched `(N, H, W, C)`; histograms are per image and
    per channel either way, so batching before or after the map gives the same
    result. The channel count must be static (as `tf.io.decode_png(...,
    channels=3)` gives it). Use with `num_parallel_calls=tf.data.AUTOTUNE`.

    The op name and the keyword arguments are checked now, with the functions'
    messages; checks that need the image (dtype, rank, the `value_range`/`bins`
    combination) run when `dataset.map` traces the function. Per-element masks
    are not supported here: map the function yourself, e.g.
    `dataset.map(lambda d: {**d, "image": tf_histeq.clahe(d["image"], mask=d["mask"])})`.

    The function calls TensorFlow ops directly, so it works in `tf.data`
    whatever Keras backend is configured.

    XLA (`jit_compile="auto"`, the default): the op runs XLA-compiled inside
    the pipeline, several times faster on CPU than uncompiled, with identical
    results, wherever that pays. XLA compiles one executable per image shape
    (about a second each), so a shape is compiled once about a megapixel
    (`2**20` values) of it has run uncompiled (from the third 896x896 image
    on, the fifth 512x512 one); at most 8 shapes are compiled per configuration (a
    few more if new sizes arrive in parallel), and images of further sizes run
    the uncompiled op. This works whether the size is static (fixed-size
    arrays, `tf.image.resize`) or known only at run time (`tf.io.decode_png`):
    the function counts the values it has run per shape in a small host-side
    table, and picks the compiled or the uncompiled op with a `tf.cond`. So a
    dataset of one or a few image sizes runs compiled, and one of many sizes
    pays no more than a few compilations. `jit_compile=True` compiles every
    shape, without bound; `jit_compile=False` never compiles.

    Args:
        op: `"equalize_hist"` or `"clahe"`.
        image_key: Key of the image in dict elements; required for them, and must
            be `None` for elements without a dict.
        jit_compile: `"auto"` (compile the image shapes that repeat, see
            above), True (compile every shape) or False (never compile).
        **kwargs: Keyword arguments of the function (for example `clip_limit`,
            `tile_grid_size`, `value_range`, `bins`, `method`, `channels`, `alpha`),
            with the function's defaults.

    Returns:
        A function `element -> element` for `tf.data.Dataset.map`.

    Raises:
        TypeError: If a keyword argument is not one of the function's or has the
            wrong type, or `image_key` or `jit_compile` has the wrong type.
        ValueError: If `op` is unknown or an argument has a bad value; when the
            dataset is mapped, if `image_key` does not match the elements.

    Example:
        >>> import numpy as np
        >>> import tensorflow as tf
        >>> from tf_histeq.data import map_fn
        >>> images = np.array([[[0, 1, 2, 2, 2, 2, 2]], [[5, 5, 5, 6, 6, 6, 9]]], np.uint8)
        >>> ds = tf.data.Dataset.from_tensor_slices({"image": images, "label": [3, 4]})
        >>> ds = ds.map(map_fn("equalize_hist", image_key="image"), num_parallel_calls=tf.data.AUTOTUNE)
        >>> [(e["image"].numpy().tolist(), int(e["label"])) for e in ds]
        [([[0, 42, 255, 255, 255, 255, 255]], 3), ([[0, 0, 0, 191, 191, 191, 255]], 4)]
    """
    checked = _options.resolve(op, kwargs, exclude=("mask",))
    function = ops.OPS[op]
    if image_key is not None and not isinstance(image_key, str):
        fail(TypeError, "image_key", "be a string (the key of the image in dict elements) or None", image_key)

    equalize = _xla.JitRunner(function, checked, jit_compile)

    def in_dict(features):
        if image_key is None or image_key not in features:
            keys = ", ".join(repr(k) for k in sorted(features, key=str))
            fail(
                ValueError,
                "image_key",
                f"name the image entry of the dict elements (one of {keys})",
                image_key,
                hint=f"map_fn({op!r}, image_key=...).",
            )
        features = dict(features)
        features[image_key] = equalize(features[image_key])
        return features

    def mapper(*element):
        first, *rest = element
        if isinstance(first, Mapping):
            out = in_dict(first)
        else:
            if image_key is not None:
                fail(
                    ValueError,
                    "image_key",
                    "be None for dataset elements without a dict (the image is the first item)",
                    image_key,
                )
            out = equalize(first)
        return (out, *rest) if rest else out

    # No tensor-dependent Python control flow: skipping AutoGraph makes tracing
    # faster and lets errors surface with their own message.
    mapper = tf.autograph.experimental.do_not_convert(mapper)
    mapper.__name__ = f"{op}_map_fn"
    mapper.__qualname__ = mapper.__name__
    return mapper
