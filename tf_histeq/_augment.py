"""Random augmentation with the ops: per-image parameters from stateless seeds, and their use.

Shared by the random layers (`tf_histeq.layers.RandomCLAHE`,
`RandomEqualization`), whose seeds come from a `keras.random.SeedGenerator`,
and by `tf_histeq.data.random_map_fn`, whose seeds come from each dataset
element. Both draw with stateless random ops, so a seed fixes the parameters
of every image, in eager mode, in `tf.function`, under XLA and in `tf.data`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf

# The stateless algorithm, named: "auto_select" may pick another one per device and
# under XLA, and then draws differently.
ALG = "philox"
# Uniform draws are multiples of 2**-24 in [0, 1), from 24 random bits.
_UNIT_BITS = 24


def _uniform(count, seed: tf.Tensor) -> tf.Tensor:
    """`count` uniform float64 draws in [0, 1), the same eagerly, in graphs and under XLA.

    TensorFlow's stateless *float* draws come out differently under XLA; its
    integer draws (the raw Philox bits) do not. Multiples of 2**-24 are exact
    in float32 and float64.
    """
    bits = tf.random.stateless_uniform([count], seed, minval=0, maxval=2**_UNIT_BITS, dtype=tf.int32, alg=ALG)
    return tf.cast(bits, tf.float64) * 2.0**-_UNIT_BITS


def draw(
    seed: tf.Tensor, count, *, factor: float, clip_limit: float | tuple[float, float] | None = None
) -> dict[str, tf.Tensor]:
    """Draw the parameters of `count` images from a stateless seed.

    Args:
        seed: int32 or int64 tensor of shape `(2,)`, a stateless seed.
        count: Number of images (an int or a scalar int32 tensor).
        factor: Probability that an image is transformed.
        clip_limit: A clip limit or a `(min, max)` range to sample each image's
            limit from uniformly (in steps of `(max - min) / 2**24`); None for
            no clip limit (global equalization).

    Returns:
        `{"apply": bool (count,)}`, plus `"clip_limit": float32 (count,)` when
        `clip_limit` is given.
    """
    apply_seed, clip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2, alg=ALG))
    transformation = {"apply": _uniform(count, apply_seed) < factor}
    if clip_limit is not None:
        low, high = clip_limit if isinstance(clip_limit, tuple) else (clip_limit, clip_limit)
        # A float32 span times 24 bits is exact in float64, so the sum is rounded once
        # whether or not a compiler fuses it into a multiply-add (XLA does on CPU).
        span = float(np.float32(high - low))
        transformation["clip_limit"] = tf.cast(low + span * _uniform(count, clip_seed), tf.float32)
    return transformation


def transform(
    images, mask=None, *, op: Callable, selected: tf.Tensor, clip_limit: tf.Tensor | None = None, **op_kwargs
) -> tf.Tensor:
    """Run `op` on the images that `selected` selects; return the others unchanged.

    The function that `tf_histeq._xla.JitRunner` calls: `op` and `op_kwargs`
    are its configuration, `selected` and `clip_limit` (from `tensors`) its
    per-call tensors. Every image gets its own `clip_limit`, if there is one.
    The op runs on the whole batch (no dynamic shapes, so XLA compiles it once)
    and a select keeps the unselected images as they were.

    Args:
        images: `(H, W)`, `(H, W, C)` (one image) or `(N, H, W, C)`.
        mask: Always None: the random ops take no mask.
        op: `tf_histeq.clahe` or `tf_histeq.equalize_hist`.
        selected: bool `(N,)` (`()` for one image): `transformation["apply"]` from `draw`.
        clip_limit: float32 `(N,)`: `transformation["clip_limit"]`, or None.
        **op_kwargs: The op's other keyword arguments.

    Returns:
        A tensor with the shape and dtype of `images`.
    """
    if clip_limit is not None:
        op_kwargs = {**op_kwargs, "clip_limit": clip_limit}
    out = op(images, **op_kwargs, jit_compile=False)  # the caller's `_xla.JitRunner` decides compilation
    selected = tf.reshape(selected, [-1, 1, 1, 1] if out.shape.rank == 4 else [])
    return tf.where(selected, out, tf.convert_to_tensor(images, out.dtype))


def tensors(transformation: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """The per-call tensors of `transform` for a transformation from `draw`."""
    out = {"selected": transformation["apply"]}
    if "clip_limit" in transformation:
        out["clip_limit"] = transformation["clip_limit"]
    return out
