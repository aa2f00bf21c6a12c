"""The wrapper around every kernel: layout, gradients, alpha, mask, NaN, colour modes, identity planes.

A kernel sees one layout: int32 levels `(N, H, W, P)` in `[0, bins)` and an
optional bool validity mask broadcastable to them (`(N or 1, H, W, 1 or P)`:
the pixels that may build histograms). It returns one type, a `Mapping`: how
the levels it was given map to output levels or values. `run` does the rest,
for every op alike:

1. layout: rank 2 `(H, W)`, 3 `(H, W, C)` and 4 `(N, H, W, C)` to `(N, H, W, C)`
   and back (`_convert.to_nhwc`);
2. the gradient guard: float inputs pass through `tf.raw_ops.PreventGradient`
   (`_compat.prevent_gradient`), so that asking for a gradient raises a `LookupError` naming the op;
3. alpha: the last channel is split off (`_options.has_alpha`) and joined back unchanged;
4. the mask (`_convert.prepare_mask`) and NaN pixels (left out of the
   histograms, returned as they came) make the validity mask;
5. the colour mode (`channels`): an entry of `MODES` turns the colour levels
   into the planes the kernel sees and its `Mapping` into output values;
6. identity planes: where a global kernel leaves a plane unchanged (`keep`)
   and the levels are not the values themselves (`LevelSpec.exact` false),
   the plane gets its clipped input back rather than its quantized levels.

A new op is a public function that validates its arguments, builds a kernel
and calls `run`; a new colour mode is an entry of `MODES` (with its name in
`_options.CHANNELS`, and, for a colour space, a `_colour.ColourSpace`). Neither
edits `run` or a kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from tf_histeq import _colour, _compat, _convert, _histogram, _options
from tf_histeq._options import fail


class Mapping:
    """What a kernel returns: how the levels it was given map to output levels or values.

    Global kernels (`equalize_hist`, `match_histograms`) give small per-plane
    tables (`from_tables`): they are turned into output values first and every
    pixel is looked up once, in the output dtype. Local kernels (CLAHE) give
    the output levels of every pixel (`from_levels`).
    """

    __slots__ = ("_joint", "_levels", "_tables", "_values", "keep")

    def __init__(self, *, tables=None, keep=None, joint=False, values=False, levels=None):
        """Use `from_tables` or `from_levels`."""
        self._tables, self._joint, self._values, self._levels = tables, joint, values, levels
        self.keep = keep  # bool (N, Q) or None: planes to return unchanged

    @classmethod
    def from_tables(cls, tables: tf.Tensor, keep: tf.Tensor, *, joint: bool = False, values: bool = False) -> Mapping:
        """Per-plane tables.

        Args:
            tables: `(N, Q, bins)`: int32 output levels, or output values in the
                input dtype if `values`; `Q` is 1 if `joint` else `P`.
            keep: bool `(N, Q)`, True where the plane is to be returned
                unchanged (its table is the identity).
            joint: One table for all planes of an image.
            values: The tables hold output values, not levels.
        """
        return cls(tables=tables, keep=keep, joint=joint, values=values)

    @classmethod
    def from_levels(cls, levels: tf.Tensor) -> Mapping:
        """The output levels of every pixel, int32 `(N, H, W, P)`, no identity planes."""
        return cls(levels=levels)

    def levels(self, levels: tf.Tensor) -> tf.Tensor:
        """int32 output levels of `levels`, the `(N, H, W, P)` levels that the kernel was given."""
        if self._levels is not None:
            return self._levels
        if self._values:
            raise ValueError("A mapping to output values has no output levels (a colour mode needs levels).")
        return _histogram.apply_luts(self._tables, levels, joint=self._joint)

    def values(self, levels: tf.Tensor, spec: _convert.LevelSpec, dtype: tf.DType) -> tf.Tensor:
        """Output values of `levels` (the levels the kernel was given) in `dtype` (`_convert.work_dtype`)."""
        if self._levels is not None:
            return _convert.to_values(self._levels, spec, dtype)
        # Map the small tables to output values first: one gather, in the output dtype.
        tables = tf.cast(self._tables, dtype) if self._values else _convert.to_values(self._tables, spec, dtype)
        return _histogram.apply_luts(tables, levels, joint=self._joint)


# A kernel maps int32 levels (N, H, W, P) and an optional validity mask to a Mapping.
Kernel = Callable[[tf.Tensor, "tf.Tensor | None"], Mapping]


class Planes(NamedTuple):
    """The colour channels of a batch, as a colour mode receives them."""

    levels: tf.Tensor  # int32 (N, H, W, C) in [0, spec.bins)
    valid: tf.Tensor | None  # bool, broadcastable to `levels`: pixels that may build histograms
    values: tf.Tensor  # the colour channels as given, (N, H, W, C) in the input dtype
    spec: _convert.LevelSpec
    dtype: tf.DType  # what output values are selected and joined in (`_convert.work_dtype`)


class ColourMode(NamedTuple):
    """A `channels` mode: what the kernel runs on, and how its mapping becomes output values.

    `run(planes, kernel)` returns the output values of the colour channels,
    `(N, H, W, C)` in `planes.dtype`, and the `keep` flags of the mapping
    (bool `(N, Q)`, broadcast over the channels) or None where the mode
    returns every plane as it should be.
    """

    run: Callable[[Planes, Kernel], tuple[tf.Tensor, tf.Tensor | None]]
    rgb: bool = False  # needs 3 colour channels
    bins: int | None = None  # needs the images read as this many levels
    why: str = ""  # why `bins` is needed (for the error)


def _each_plane(planes: Planes, kernel: Kernel) -> tuple[tf.Tensor, tf.Tensor | None]:
    """The kernel on the colour channels as they are (it may pool them: `channels="joint"`)."""
    mapping = kernel(planes.levels, planes.valid)
    return mapping.values(planes.levels, planes.spec, planes.dtype), mapping.keep


def _all_valid(valid: tf.Tensor | None) -> tf.Tensor | None:
    """A pixel of a plane computed from all colour channels is valid where all of them are."""
    return None if valid is None else tf.reduce_all(valid, axis=-1, keepdims=True)


def _luma_shift(planes: Planes, kernel: Kernel) -> tuple[tf.Tensor, tf.Tensor | None]:
    """The kernel on OpenCV's Y, its change added to R, G and B (kept chroma differences), at any bins."""
    levels, spec = planes.levels, planes.spec
    luma = _colour.luma(levels)
    mapping = kernel(luma, _all_valid(planes.valid))
    shifted = tf.clip_by_value(levels + (mapping.levels(luma) - luma), 0, spec.bins - 1)
    return _convert.to_values(shifted, spec, planes.dtype), mapping.keep


def _round_trip(space: str) -> Callable[[Planes, Kernel], tuple[tf.Tensor, None]]:
    """The mode of OpenCV's 8-bit round trip through `space` (`_colour.SPACES`) around the kernel.

    `cv2.cvtColor(RGB2<space>)`, the kernel on the lightness plane,
    `cv2.cvtColor(<space>2RGB)`. The plane's pixels are valid where all
    three channels are. The round trip applies to every image, also where the
    plane's table is the identity, except images with no valid pixel (an
    all-false mask, all NaN), which come back unchanged like their planes in
    the other modes.
    """

    def run(planes: Planes, kernel: Kernel) -> tuple[tf.Tensor, None]:
        levels, spec = planes.levels, planes.spec
        plane_valid = _all_valid(planes.valid)

        def on_plane(plane: tf.Tensor) -> tf.Tensor:
            return kernel(plane, plane_valid).levels(plane)

        out = _convert.to_values(_colour.on_lightness(space, levels, on_plane), spec, planes.dtype)
        if plane_valid is None:
            return out, None
        empty = tf.logical_not(tf.reduce_any(plane_valid, axis=[1, 2, 3], keepdims=True))
        if spec.exact:
            return tf.where(empty, _convert.to_values(levels, spec, planes.dtype), out), None
        clipped = _convert.clip_values(planes.values, spec)  # int32 for integer images (TensorFlow Lite's select)
        return tf.cast(tf.where(empty, clipped, tf.cast(out, clipped.dtype)), out.dtype), None

    return run


def _luminance(planes: Planes, kernel: Kernel) -> tuple[tf.Tensor, tf.Tensor | None]:
    """OpenCV's YCrCb round trip on 8-bit levels; the change of Y added to R, G and B at other bins."""
    if planes.spec.bins == _colour.LEVELS:
        return _round_trip("luminance")(planes, kernel)
    return _luma_shift(planes, kernel)


# The `channels` modes; `_options.CHANNELS` names them (and `_options.CHANNEL_CHOICES` per op).
MODES: dict[str, ColourMode] = {
    "per_channel": ColourMode(_each_plane),
    "joint": ColourMode(_each_plane),  # the op's kernel pools the channels of an image
    "luminance": ColourMode(_luminance, rgb=True),
    "lab": ColourMode(_round_trip("lab"), rgb=True, bins=_colour.LEVELS, why="OpenCV's Lab works on 8-bit levels"),
}


def _check_mode(op: str, channels: str, n_channels: int, alpha: bool, spec: _convert.LevelSpec, dtype) -> ColourMode:
    """The colour mode `channels` of `op`, refused by name where the images cannot have it."""
    mode = MODES[channels]
    choices = _options.CHANNEL_CHOICES[op]
    if mode.rgb and n_channels - alpha != 3:
        others = " or ".join(repr(c) for c in choices if not MODES[c].rgb)
        fail(
            ValueError,
            "channels",
            f"be {others} unless images have 3 colour channels (RGB, or RGBA with alpha)",
            channels,
            hint=f"images have {n_channels} channel(s), {'the last as alpha' if alpha else 'no alpha'}.",
        )
    if mode.bins is not None and spec.bins != mode.bins:
        others = " or ".join(repr(c) for c in choices if MODES[c].bins in (None, spec.bins))
        fail(
            ValueError,
            "channels",
            f"be {others} for images read as other than {mode.bins} levels ({mode.why})",
            channels,
            hint=f"the {dtype.name} images are read as bins={spec.bins} levels; pass "
            f"bins={mode.bins} to run on {mode.bins} levels of value_range=({spec.low}, {spec.high}).",
        )
    return mode


def run(
    op: str,
    images: tf.Tensor,
    spec: _convert.LevelSpec,
    channels: str,
    alpha: str | bool,
    mask,
    kernel: Kernel,
) -> tf.Tensor:
    """Run `kernel` on the colour levels of `images` in mode `channels`: values of `images`' shape and dtype.

    Args:
        op: The public op's name (for errors and the gradient message).
        images: A checked tensor of rank 2, 3 or 4 (`_convert.as_images`).
        spec: How its values are read as levels (`_convert.level_spec`).
        channels: A key of `MODES`, checked against `op`'s choices.
        alpha: `"auto"`, True or False (checked).
        mask: The op's `mask` argument (None, or bool or 0/1 `(H, W)`, `(N, H, W)`,
            with or without a trailing 1).
        kernel: Maps int32 levels `(N, H, W, P)` and an optional validity mask to a `Mapping`.
    """
    rank = images.shape.rank
    x = _convert.to_nhwc(images)
    if x.dtype.is_floating:
        x = _compat.prevent_gradient(
            x,
            f"tf_histeq.{op} has no gradient (it maps quantized levels through count-based tables); "
            "apply it before any trainable layer, or wrap its output in tf.stop_gradient",
        )
    n_channels = x.shape[-1]
    alpha_last = _options.has_alpha(alpha, n_channels)
    mode = _check_mode(op, channels, n_channels, alpha_last, spec, images.dtype)
    valid = _convert.prepare_mask(mask, images)
    if alpha_last:  # gray + alpha, RGBA: alpha passes through
        color, alpha_channel = x[..., :-1], x[..., -1:]
    else:
        color, alpha_channel = x, None
    levels, nan = _convert.to_levels(color, spec)
    if nan is not None:
        not_nan = tf.logical_not(nan)
        valid = not_nan if valid is None else tf.logical_and(valid, not_nan)

    # uint16 values are selected and concatenated as int32 and cast at the end (TensorFlow Lite).
    work = _convert.work_dtype(spec.dtype)
    out, keep = mode.run(Planes(levels, valid, color, spec, work), kernel)
    if not spec.exact and keep is not None:
        # Identity planes return the (clipped) input, not its quantized levels.
        clipped = _convert.clip_values(color, spec)  # int32 for integer images (TensorFlow Lite's select)
        out = tf.cast(tf.where(keep[:, None, None, :], clipped, tf.cast(out, clipped.dtype)), out.dtype)
    if nan is not None:
        out = tf.where(nan, color, out)
    if alpha_channel is not None:
        out = tf.concat([out, tf.cast(alpha_channel, work)], axis=-1)
    return _convert.from_nhwc(tf.cast(out, spec.dtype), rank)
