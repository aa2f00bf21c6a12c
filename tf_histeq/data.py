"""`tf.data` adapters: equalize or randomly augment the image of every dataset element.

`map_fn` and `random_map_fn` validate their arguments when they are called,
and return a function for `dataset.map(...)` that transforms the image and
passes everything else through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from tf_histeq import _augment, _options, _standardize_ways, _xla, ops
from tf_histeq._options import fail

__all__ = ["map_fn", "random_map_fn", "standardize_fn"]


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
    With `spatial_dims=3` (`"equalize_hist"`, `"match_histograms"`), the
    images are volumes `(D, H, W)`, `(D, H, W, C)` or batches `(N, D, H, W,
    C)`, one histogram per volume and channel.

    The op name and the keyword arguments are checked now, with the functions'
    messages; checks that need the image (dtype, rank, the `value_range`/`bins`
    combination) run when `dataset.map` traces the function. Per-element masks
    are not supported here: map the function yourself, e.g.
    `dataset.map(lambda d: {**d, "image": tf_histeq.clahe(d["image"], mask=d["mask"])})`.

    The function calls TensorFlow ops directly, so it works in `tf.data`
    whatever Keras backend is configured.

    XLA (`jit_compile="auto"`, the default): the op runs XLA-compiled inside
    the pipeline, several times faster on CPU than uncompiled, with identical
    results, wherever that pays, decided by tf_histeq's one runner (as for
    the layers, the NumPy functions and the ops called eagerly; see
    `tf_histeq.compiled_shapes`). XLA compiles one executable per image shape
    (about a second each). Where the element's image size is static
    (fixed-size arrays, `tf.image.resize`, `decode_png` followed by
    `ensure_shape`), every element has that size and the compiled op runs
    from the first element. Where the size is known only at run time
    (`tf.io.decode_png`), a shape is compiled once
    `tf_histeq._xla.COMPILE_AFTER_VALUES` values of it have run uncompiled,
    for at most `tf_histeq._xla.MAX_COMPILED_SHAPES` shapes per configuration
    (a few more if new sizes arrive in parallel); images of further sizes run
    the uncompiled op: the function counts the values it has run per shape in
    a small host-side table, and picks the compiled or the uncompiled op with
    a `tf.cond`. So a dataset of one or a few image sizes runs compiled, and
    one of many sizes pays no more than a few compilations. `jit_compile=True`
    compiles every shape, without bound; `jit_compile=False` never compiles.

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

    def mapper(*element):
        return _on_image(element, image_key, equalize, f"map_fn({op!r}")

    # No tensor-dependent Python control flow: skipping AutoGraph makes tracing
    # faster and lets errors surface with their own message.
    mapper = tf.autograph.experimental.do_not_convert(mapper)
    mapper.__name__ = f"{op}_map_fn"
    mapper.__qualname__ = mapper.__name__
    return mapper


def random_map_fn(
    op: str = "clahe",
    image_key: str | None = None,
    *,
    seed: int,
    factor: float | None = None,
    jit_compile: str | bool = _xla.JIT_COMPILE,
    **kwargs: Any,
) -> Callable:
    """Return a `dataset.map` function that augments each element's image from a seed of its own.

    The stateless counterpart of the random layers (`tf_histeq.layers.RandomCLAHE`,
    `RandomEqualization`) for `tf.data`. The returned function takes
    `(key, element)`, where `key` is an int32 or int64 scalar that identifies
    the element, and returns `element` with its image transformed:

    - with probability `factor`, by `tf_histeq.clahe` at a clip limit drawn
      uniformly from the `clip_limit` range (`op="clahe"`), or by
      `tf_histeq.equalize_hist` (`op="equalize_hist"`); otherwise unchanged;
    - in the image's own dtype (uint8 stays uint8), as `map_fn` does.

    The draws depend on `seed` and `key` only (stateless random ops seeded by
    `stateless_fold_in(seed, key)`), never on the order or the thread in which
    elements are mapped: `num_parallel_calls`, `deterministic=False`, a
    shuffle after the key is attached, or another run give every element the
    same transformation. A batched element (`(N, H, W, C)`) gets one draw per
    image from its key. Where the key comes from decides what repeats:

    - `dataset.enumerate().map(fn)`: the key is the element's position, so
      each epoch replays the same augmentation (e.g. a fixed augmented
      validation set). Enumerate after `repeat()` (before `shuffle` and
      `batch`) for new draws in every epoch of a repeated dataset.
    - `tf.data.Dataset.zip((tf.data.Dataset.random(seed=s,
      rerandomize_each_iteration=True), dataset)).map(fn)`: a new key
      sequence in every epoch (every new iterator, as `fit` makes one per
      epoch), reproducible for `s`.

    Element structures are those of `map_fn`: a bare image, a tuple whose
    first item is the image, a dict (`image_key` names the image), or a tuple
    whose first item is such a dict. Argument checks run now, with the
    functions' messages.

    Args:
        op: `"clahe"` or `"equalize_hist"`.
        image_key: Key of the image in dict elements, as in `map_fn`.
        seed: An int: the pipeline's seed.
        factor: Probability that an image is transformed; defaults as in the
            layers: 1.0 for `"clahe"`, 0.5 for `"equalize_hist"`.
        jit_compile: `"auto"` (the default), True or False, as in `map_fn`:
            the draws stay outside the compiled function (stateless integer
            draws, the same compiled or not), the transformation runs
            XLA-compiled where `map_fn`'s would.
        **kwargs: Keyword arguments of the function, but `mask`. For
            `"clahe"`, `clip_limit` is a limit >= 0 or a `(min, max)` range
            (default `(1.0, 4.0)`).

    Returns:
        A function `(key, element) -> element` for `tf.data.Dataset.map`.

    Raises:
        TypeError: If an argument has the wrong type; when the dataset is
            mapped, if its elements are not `(key, element)` pairs with an
            integer scalar key.
        ValueError: If an argument has a bad value (a range with min > max, a
            negative limit, `factor` outside [0, 1], non-positive tiles).

    Example:
        >>> import numpy as np
        >>> import tensorflow as tf
        >>> from tf_histeq.data import random_map_fn
        >>> ramps = np.tile(np.arange(100, 116, dtype=np.uint8), (4, 16, 1))  # 4 images (16, 16)
        >>> fn = random_map_fn("clahe", seed=4, clip_limit=(1.0, 4.0), tile_grid_size=(1, 1))
        >>> ds = tf.data.Dataset.from_tensor_slices(ramps).enumerate()  # (position, image)
        >>> [image[0, :3].tolist() for image in ds.map(fn).as_numpy_iterator()]  # clipped at 1, 2, 2, 3 per bin
        [[102, 104, 106], [103, 106, 109], [103, 106, 109], [104, 108, 112]]

        In parallel and in any order, each element still gets its own draw:

        >>> keyed = ds.map(lambda key, image: (key, fn(key, image)), num_parallel_calls=4, deterministic=False)
        >>> [image[0, :3].tolist() for _, image in sorted(keyed.as_numpy_iterator(), key=lambda e: e[0])]
        [[102, 104, 106], [103, 106, 109], [103, 106, 109], [104, 108, 112]]
    """
    op = _options.check_choice(op, name="op", choices=_options.RANDOM_OPS)
    seed = _options.check_seed(seed, optional=False)
    factor = _options.check_probability(_options.RANDOM_FACTOR[op] if factor is None else factor)
    clip_limit = None
    if op == "clahe":
        clip_limit = _options.check_clip_range(kwargs.pop("clip_limit", _options.RANDOM_CLIP_LIMIT))
    # The random ways in take images only (their draws are per image): no `spatial_dims`.
    checked = _options.resolve(op, kwargs, exclude=("mask", "clip_limit", "spatial_dims"))
    function = ops.OPS[op]
    if image_key is not None and not isinstance(image_key, str):
        fail(TypeError, "image_key", "be a string (the key of the image in dict elements) or None", image_key)
    runner = _xla.JitRunner(_augment.transform, {"op": function, **checked}, jit_compile)

    def augment(image, element_seed):
        image = tf.convert_to_tensor(image)
        count = tf.shape(image)[0] if image.shape.rank == 4 else 1
        transformation = _augment.draw(element_seed, count, factor=factor, clip_limit=clip_limit)
        return runner(image, **_augment.tensors(transformation))

    def mapper(*pair):
        key = pair[0] if len(pair) == 2 else None
        if not (tf.is_tensor(key) and key.dtype in (tf.int32, tf.int64) and key.shape.rank == 0):
            fail(
                TypeError,
                "element",
                "be a (key, element) pair with an int32 or int64 scalar key",
                f"{len(pair)} component(s), the first {pair[0]!r}" if pair else "no component",
                hint="map `dataset.enumerate()` (the position as the key) or zip the dataset with "
                "`tf.data.Dataset.random(seed=...)`.",
            )
        element_seed = tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int64), key, alg=_augment.ALG)
        element = pair[1] if isinstance(pair[1], tuple) else (pair[1],)
        return _on_image(element, image_key, lambda image: augment(image, element_seed), f"random_map_fn({op!r}")

    mapper = tf.autograph.experimental.do_not_convert(mapper)
    mapper.__name__ = mapper.__qualname__ = f"random_{op}_map_fn"
    return mapper


def standardize_fn(
    op: str,
    image_key: str | None = None,
    *,
    spatial_dims: int = 2,
    jit_compile: str | bool = _xla.JIT_COMPILE,
    **kwargs: Any,
) -> Callable:
    """Return a `dataset.map` function that standardizes the image of each element (float output).

    The ops of `tf_histeq.standardize`, with the element structures of
    `map_fn`: `"nyul_standardize"` (pass `landmarks`, e.g. from
    `tf_histeq.nyul_fit` or a fitted `NyulStandardization` layer's
    `standard_landmarks`), `"scale_intensity_percentiles"`, `"window"` (pass
    `windows`) and `"scale_intensity_range"`. Each image (or volume, with
    `spatial_dims=3`) is mapped on its own, batched or not; the XLA policy is
    `map_fn`'s. The arguments are checked now, by the op itself.

    Args:
        op: One of the four op names above.
        image_key: Key of the image in dict elements, as in `map_fn`.
        spatial_dims: 2 (images) or 3 (volumes).
        jit_compile: `"auto"`, True or False, as in `map_fn`.
        **kwargs: The op's keyword arguments (not `mask`).

    Returns:
        A function `element -> element` for `tf.data.Dataset.map`.

    Example:
        >>> import numpy as np, tensorflow as tf
        >>> from tf_histeq.data import standardize_fn
        >>> ct = np.array([[[-1350], [-600], [150]]], np.int16)  # lung window: level -600, width 1500
        >>> ds = tf.data.Dataset.from_tensors(ct).map(standardize_fn("window", windows=["lung", "brain"]))
        >>> next(iter(ds)).numpy()[0].tolist()
        [[0.0, 0.0], [0.5, 0.0], [1.0, 1.0]]
    """
    runner, tensors = _standardize_ways.configure(op, kwargs, spatial_dims, jit_compile)
    if image_key is not None and not isinstance(image_key, str):
        fail(TypeError, "image_key", "be a string (the key of the image in dict elements) or None", image_key)

    def standardize(image):
        return runner(image, None, **tensors)

    def mapper(*element):
        return _on_image(element, image_key, standardize, f"standardize_fn({op!r}")

    mapper = tf.autograph.experimental.do_not_convert(mapper)
    mapper.__name__ = mapper.__qualname__ = f"{op}_standardize_fn"
    return mapper


def _on_image(element: tuple, image_key: str | None, transform: Callable, call: str):
    """Apply `transform` to the image of an element (its items as a tuple); see `map_fn` for the structures."""
    first, *rest = element
    if isinstance(first, Mapping):
        if image_key is None or image_key not in first:
            keys = ", ".join(repr(k) for k in sorted(first, key=str))
            fail(
                ValueError,
                "image_key",
                f"name the image entry of the dict elements (one of {keys})",
                image_key,
                hint=f"{call}, image_key=...).",
            )
        out = {**first, image_key: transform(first[image_key])}
    else:
        if image_key is not None:
            fail(
                ValueError,
                "image_key",
                "be None for dataset elements without a dict (the image is the first item)",
                image_key,
            )
        out = transform(first)
    return (out, *rest) if rest else out
