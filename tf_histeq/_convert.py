"""The single dtype, value-range and layout policy of tf_histeq.

Images of any supported dtype are turned into int32 *levels* in `[0, bins)`,
the kernels work on levels only, and levels are turned back into values of
the input dtype and range. Layout plumbing (rank 2/3/4 to `(N, H, W, C)` and
back, masks, alpha channels) lives here too, so that the public functions
only compose pieces.

The mapping (`LevelSpec`, `to_levels`, `to_values`):

- Integer images whose `value_range` has one level per integer (uint8 with
  256 bins, uint16 and int16 with 65536: the defaults) are their own levels,
  `level = clip(x, low, high) - low`, and come back as `level + low`. This is
  the case OpenCV's and Pillow's parity holds for: the kernels then see
  exactly the pixels `cv2.equalizeHist`, `cv2.createCLAHE` and
  `PIL.ImageOps.equalize` see.
- Other integer ranges are cut into `bins` equal bins, exactly in int64:
  `level = (clip(x) - low) * bins // (high - low + 1)`.
- Float images are read through `value_range` (default `(0, 255)`, the Keras
  convention): `level = rne(f32(clip(x) - low) * f32((bins - 1) / (high - low)))`
  (float64 for float64 images), so integer-valued floats in `(0, 255)` keep
  their values and `v / 255` in `(0, 1)` maps back to `v`; NaN pixels are left
  out of the histograms and stay NaN.
- Levels go back through `value_table`: `low + level * (high - low) / (bins - 1)`
  computed in float64 by NumPy, rounded half to even to integer dtypes or to
  the float dtype once, and stored as a constant of that dtype (no float64 in
  the graph, for TensorFlow Lite).

Masks are shaped here to `(N or 1, H, W, 1)` bool. New axes are added with
`tf.expand_dims`, not `x[None]`: TensorFlow Lite cannot slice a new axis into a
tensor with more than one dynamic dimension.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tf_histeq import _options
from tf_histeq._options import MAX_BINS, fail

INTEGER_DTYPES = (tf.uint8, tf.uint16, tf.int16, tf.int32)
FLOAT_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)
SUPPORTED_DTYPES = INTEGER_DTYPES + FLOAT_DTYPES

# The most evenly spaced levels a float dtype can hold distinctly (significand bits).
_FLOAT_MAX_BINS = {tf.float16: 2048, tf.bfloat16: 256, tf.float32: MAX_BINS, tf.float64: MAX_BINS}
_INT_LIMITS = {tf.uint8: (0, 255), tf.uint16: (0, 65535), tf.int16: (-32768, 32767), tf.int32: (-(2**31), 2**31 - 1)}
# The ranks of each layout (`spatial_dims`) and what their axes are.
IMAGE_RANKS = {2: "(H, W)", 3: "(H, W, C)", 4: "(N, H, W, C)"}
VOLUME_RANKS = {3: "(D, H, W)", 4: "(D, H, W, C)", 5: "(N, D, H, W, C)"}
# Dtypes TensorFlow Lite has no builtin select, concatenation or gather kernels for:
# their values are handled as int32 and cast at the end.
_NARROW_WORK = (tf.uint16, tf.int16)


@dataclasses.dataclass(frozen=True)
class LevelSpec:
    """How values of one dtype map to integer levels `[0, bins)` and back."""

    dtype: tf.DType
    low: float
    high: float
    bins: int

    @property
    def exact(self) -> bool:
        """True when every integer of the range is its own level (no quantization)."""
        return self.dtype.is_integer and self.bins == self.high - self.low + 1


def level_spec(dtype: tf.DType, value_range, bins) -> LevelSpec:
    """Validate `value_range` and `bins` for `dtype` and fill in the defaults.

    Defaults: uint8 -> (0, 255) and 256 bins; uint16 -> (0, 65535) and 65536 bins;
    int16 -> (-32768, 32767) and 65536 bins; int32 -> (0, 255); float -> (0, 255)
    and 256 bins. Integer dtypes default to one
    bin per integer of the range (at most 65536).
    """
    value_range = _options.check_value_range(value_range)
    bins = _options.check_bins(bins)
    if dtype.is_integer:
        low, high = value_range if value_range is not None else _options.DEFAULT_RANGES[dtype.name]
        dmin, dmax = _INT_LIMITS[dtype]
        if not (float(low).is_integer() and float(high).is_integer() and dmin <= low and high <= dmax):
            fail(
                ValueError,
                "value_range",
                f"be two integers within the range of {dtype.name} ({dmin}..{dmax}) for {dtype.name} images",
                value_range,
            )
        low, high = int(low), int(high)
        levels = min(high - low + 1, MAX_BINS)
        if bins is None:
            bins = levels
        elif bins > high - low + 1:
            fail(
                ValueError,
                "bins",
                f"be at most {high - low + 1}, the number of {dtype.name} levels in value_range=({low}, {high})",
                bins,
            )
    else:
        low, high = value_range if value_range is not None else _options.FLOAT_RANGE
        if dtype == tf.float16 and max(abs(low), abs(high)) > 65504:
            fail(ValueError, "value_range", "lie within the float16 range (+-65504) for float16 images", value_range)
        limit = _FLOAT_MAX_BINS[dtype]
        if bins is None:
            bins = 256
        elif bins > limit:
            fail(ValueError, "bins", f"be at most {limit}, the levels {dtype.name} holds distinctly", bins)
    return LevelSpec(dtype=dtype, low=low, high=high, bins=bins)


def as_images(images, *, name: str = "images", spatial_dims: int = 2, volumes: str | None = None) -> tf.Tensor:
    """Convert `images` to a tensor of a rank `spatial_dims` allows, a supported dtype and known channels.

    `spatial_dims=2` (images): rank 2 `(H, W)`, 3 `(H, W, C)` or 4 `(N, H, W, C)`;
    `spatial_dims=3` (volumes): rank 3 `(D, H, W)`, 4 `(D, H, W, C)` or 5
    `(N, D, H, W, C)`. The caller states the layout; a rank-5 input with
    `spatial_dims=2` is refused with the hint `volumes` (default: pass
    `spatial_dims=3`).
    """
    images = number_tensor(images, SUPPORTED_DTYPES, name=name)
    ranks = VOLUME_RANKS if spatial_dims == 3 else IMAGE_RANKS
    rank = images.shape.rank
    if rank is None:
        fail(
            ValueError,
            f"{name}.shape",
            f"have a statically known rank ({_listed(map(str, ranks))})",
            images.shape,
            hint="decode with `tf.io.decode_image(..., expand_animations=False)` or call `tf.ensure_shape`.",
        )
    if rank not in ranks:
        if spatial_dims == 2 and rank == 5:
            hint = volumes or "a batch of volumes (N, D, H, W, C): pass spatial_dims=3."
        elif spatial_dims == 3 and rank == 2:
            hint = "an image (H, W): pass spatial_dims=2, or make it a volume of one slice (images[None])."
        else:
            hint = None
        layouts = _listed(f"{r} {layout}" for r, layout in ranks.items())
        where = " with spatial_dims=3 (volumes)" if spatial_dims == 3 else ""
        fail(ValueError, f"{name}.shape", f"have rank {layouts}{where}", tuple(images.shape), hint=hint)
    if rank > spatial_dims and images.shape[-1] is None:
        fail(
            ValueError,
            f"{name}.shape",
            "have a statically known number of channels (the last axis)",
            tuple(images.shape),
            hint="call `tf.ensure_shape(images, [None, None, C])` or set the channels in the input signature.",
        )
    return images


def _listed(items) -> str:
    """`a, b or c`."""
    items = list(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def number_tensor(images, dtypes, *, name: str = "images", expectation: str | None = None) -> tf.Tensor:
    """`images` as a tensor of one of `dtypes`, or a TypeError naming it (strings, bools, objects refused).

    `expectation` words the dtype rule in the message (default: "be one of" the dtypes).
    """
    expectation = expectation or "be one of " + ", ".join(d.name for d in dtypes)
    if isinstance(images, np.ndarray) and images.dtype.kind in "USOb":
        fail(TypeError, f"{name}.dtype", expectation, str(images.dtype))
    try:
        images = tf.convert_to_tensor(images)
    except (TypeError, ValueError) as err:
        message = f"`{name}` must be an array or tensor of numbers. Received: {type(images).__name__} ({err})."
        raise TypeError(message) from None
    if images.dtype not in dtypes:
        fail(TypeError, f"{name}.dtype", expectation, images.dtype.name)
    return images


def to_nhwc(images: tf.Tensor) -> tf.Tensor:
    """Reshape rank 2 `(H, W)` and rank 3 `(H, W, C)` images to rank 4 `(N, H, W, C)`."""
    # tf.expand_dims, not `[None]`: TensorFlow Lite cannot slice new axes into dynamic shapes.
    rank = images.shape.rank
    if rank == 2:
        return tf.expand_dims(tf.expand_dims(images, 0), -1)
    if rank == 3:
        return tf.expand_dims(images, 0)
    return images


def from_nhwc(images: tf.Tensor, rank: int) -> tf.Tensor:
    """Undo `to_nhwc` for an input of the given rank."""
    if rank == 2:
        return images[0, :, :, 0]
    if rank == 3:
        return images[0]
    return images


# --------------------------------------------------------------------------- volumes (spatial_dims=3)
#
# A volume's histogram is the histogram of its voxels, wherever they lie: the
# global ops run a volume `(D, H, W, C)` as the 2-D image `(D * H, W, C)` (its
# slices stacked), a batch `(N, D, H, W, C)` as `(N, D * H, W, C)`, and reshape
# the result back. Masks, and `match_histograms`'s reference, take the same
# reshape. No kernel knows about volumes.


def _merge_depth(value, axis: int):
    """`value` (a NumPy array or a tensor) with axes `axis` (D) and `axis + 1` (H) merged into one."""
    if isinstance(value, np.ndarray):
        shape = value.shape
        return value.reshape(shape[:axis] + (shape[axis] * shape[axis + 1],) + shape[axis + 2 :])
    static, dynamic = value.shape.as_list(), None
    dims = []
    for i, size in enumerate(static):
        if size is None:
            dynamic = tf.shape(value) if dynamic is None else dynamic
        dims.append(size if size is not None else dynamic[i])
    merged = dims[:axis] + [dims[axis] * dims[axis + 1]] + dims[axis + 2 :]
    if all(isinstance(d, int) for d in merged):
        return tf.reshape(value, merged)
    return tf.reshape(value, tf.stack([tf.cast(d, tf.int32) for d in merged]))


def volumes_as_images(volumes: tf.Tensor) -> tf.Tensor:
    """Volumes `(D, H, W)`, `(D, H, W, C)`, `(N, D, H, W, C)` (checked by `as_images`) as images of stacked slices.

    `(D * H, W)`, `(D * H, W, C)` and `(N, D * H, W, C)`: the global ops see
    one image per volume (and channel), so one histogram per volume.
    """
    return _merge_depth(volumes, 1 if volumes.shape.rank == 5 else 0)


def images_as_volumes(images: tf.Tensor, volumes: tf.Tensor) -> tf.Tensor:
    """Undo `volumes_as_images`: `images` back to the shape of `volumes`."""
    static = volumes.shape.as_list()
    if all(size is not None for size in static):
        return tf.reshape(images, static)
    out = tf.reshape(images, tf.shape(volumes))
    out.set_shape(volumes.shape)
    return out


def volume_mask(mask, volumes, *, name: str = "mask"):
    """Check a volume mask against `volumes` (or their shape) and return it as the mask of `volumes_as_images`.

    Accepted shapes: `(D, H, W)`, `(D, H, W, 1)`, and for batches also
    `(N, D, H, W)`, `(N, D, H, W, 1)`; the dtype is checked by `prepare_mask`.
    A mask known now (NumPy, a list) stays a NumPy array, so that the checks
    that read its values still can.
    """
    if mask is None:
        return None
    if not tf.is_tensor(mask):
        try:
            mask = np.asarray(mask)
        except ValueError:
            fail(TypeError, name, "be a bool or 0/1 array or tensor", type(mask).__name__)
    vshape = tf.TensorShape(getattr(volumes, "shape", volumes))
    rank = vshape.rank
    dhw = vshape[:3] if rank == 3 else vshape[-4:-1]
    candidates = [(dhw, 0)]
    if rank == 5:
        ndhw = vshape[:1].concatenate(dhw)
        candidates += [(ndhw, 1), (ndhw.concatenate([1]), 1)]
    candidates.append((dhw.concatenate([1]), 0))
    mshape = tf.TensorShape(mask.shape)
    for shape, axis in candidates:
        if mshape.rank == shape.rank and mshape.is_compatible_with(shape):
            return _merge_depth(mask, axis)
    expected = "(D, H, W) or (D, H, W, 1)" if rank < 5 else "(D, H, W), (N, D, H, W), (N, D, H, W, 1) or (D, H, W, 1)"
    fail(ValueError, f"{name}.shape", f"be {expected} for volumes of shape {tuple(vshape)}", tuple(mshape))


def as_layout(images, mask, spatial_dims: int, *, name: str = "images"):
    """`images` and `mask` of the stated layout as the global ops run them, and how to restore a result.

    Images (`spatial_dims=2`) are checked by `as_images` and pass through;
    volumes (`spatial_dims=3`) are checked too and become the images of their
    stacked slices (`volumes_as_images`, `volume_mask`).

    Returns:
        `(images, mask, restore)`: a tensor of rank 2, 3 or 4 for
        `_planes.run`, its mask, and the function that gives a result of
        `images` the shape of the input.
    """
    spatial_dims = _options.check_spatial_dims(spatial_dims)
    checked = as_images(images, name=name, spatial_dims=spatial_dims)
    if spatial_dims == 2:
        return checked, mask, lambda out: out
    return volumes_as_images(checked), volume_mask(mask, checked), lambda out: images_as_volumes(out, checked)


def volume_reference(reference, reference_mask):
    """`match_histograms`'s reference volume and its mask, as `volumes_as_images` and `volume_mask` read them.

    A volume `(D, H, W)`, `(D, H, W, C)` or a batch `(N, D, H, W, C)` (pooled)
    becomes the image of its stacked slices; counts (1-D arrays, a
    `Histogram`) and anything without a rank pass through; an image `(H, W)`
    is refused (the layout is stated, never guessed). NumPy arrays stay NumPy
    arrays, so that their values can be checked when the op is traced.
    """
    if not tf.is_tensor(reference) and not isinstance(reference, np.ndarray):
        if reference is None or not isinstance(reference, (list, tuple)):
            return reference, reference_mask  # a Histogram, or what the reference check refuses
        try:
            reference = np.asarray(reference)
        except ValueError:  # ragged lists: the tensor conversion reports them
            return reference, reference_mask
    rank = reference.shape.rank if tf.is_tensor(reference) else reference.ndim
    if rank is None or rank == 1:
        return reference, reference_mask
    if rank not in VOLUME_RANKS:
        fail(
            ValueError,
            "reference.shape",
            "be a volume (D, H, W) or (D, H, W, C), a batch of volumes (N, D, H, W, C) (pooled), a (bins,) array "
            "of counts or a tf_histeq.Histogram, with spatial_dims=3",
            tuple(reference.shape),
            hint="a 2-D reference image is a volume of one slice (reference[None]), or pass "
            "tf_histeq.reference_histogram(reference)."
            if rank == 2
            else None,
        )
    if rank > 3 and reference.shape[-1] is None:
        return reference, reference_mask  # `as_images` reports the unknown channels
    mask = volume_mask(reference_mask, reference, name="reference_mask")
    return _merge_depth(reference, 1 if rank == 5 else 0), mask


def mask_tensor(mask, *, name: str = "mask") -> tf.Tensor:
    """`mask` as a tensor of bools or numbers (nonzero = inside), or a TypeError naming it; its shape unchecked."""
    if isinstance(mask, np.ndarray) and mask.dtype.kind in "USO":
        fail(TypeError, f"{name}.dtype", "be bool or a number type (nonzero = inside)", str(mask.dtype))
    try:
        mask = tf.convert_to_tensor(mask)
    except (TypeError, ValueError):
        fail(TypeError, name, "be a bool or 0/1 array or tensor", type(mask).__name__)
    if mask.dtype == tf.string or mask.dtype.is_complex:
        fail(TypeError, f"{name}.dtype", "be bool or a number type (nonzero = inside)", mask.dtype.name)
    return mask


def prepare_mask(mask, images: tf.Tensor, *, name: str = "mask") -> tf.Tensor | None:
    """Return `mask` as a bool tensor broadcastable to `to_nhwc(images)`, shape `(N or 1, H, W, 1)`.

    Accepted shapes: `(H, W)`, `(H, W, 1)`, and for batches also `(N, H, W)`, `(N, H, W, 1)`.
    Accepted dtypes: bool, or numbers where nonzero means "in the mask".
    """
    if mask is None:
        return None
    mask = mask_tensor(mask, name=name)
    rank = images.shape.rank
    hw = images.shape[-3:-1] if rank > 2 else images.shape
    nhw = tf.TensorShape([images.shape[0] if rank == 4 else 1]).concatenate(hw)
    mshape = mask.shape
    candidates = [(tf.TensorShape(hw), lambda m: tf.expand_dims(tf.expand_dims(m, 0), -1))]
    if rank == 4:
        candidates.append((nhw, lambda m: tf.expand_dims(m, -1)))
        candidates.append((nhw.concatenate([1]), lambda m: m))
    candidates.append((tf.TensorShape(hw).concatenate([1]), lambda m: tf.expand_dims(m, 0)))
    got = None
    for shape, expand in candidates:
        if mshape.rank == shape.rank and mshape.is_compatible_with(shape):
            got = expand(mask)
            break
    if got is None:
        expected = "(H, W) or (H, W, 1)" if rank < 4 else "(H, W), (N, H, W), (N, H, W, 1) or (H, W, 1)"
        fail(ValueError, f"{name}.shape", f"be {expected} for images of shape {tuple(images.shape)}", tuple(mshape))
    if got.dtype != tf.bool:
        got = tf.not_equal(got, tf.zeros([], got.dtype))
    return got


def to_levels(images: tf.Tensor, spec: LevelSpec) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Quantize `images` to int32 levels in `[0, spec.bins)`.

    Values outside the value range are clipped. Float values are scaled by
    `(bins - 1) / (high - low)` and rounded half to even, so `(0, 255)` with 256
    bins keeps integer values exactly and `(0, 1)` maps `v / 255` back to `v`.

    Returns:
        `(levels, nan)`: the levels and, for float input, a bool tensor marking NaN
        pixels (their level is 0; they are excluded from histograms by the caller).
    """
    dtype = spec.dtype
    if spec.exact:
        # Cast first, clip in int32: TensorFlow Lite has no builtin uint8/uint16
        # minimum or maximum, ONNX Runtime no uint16 Min or Max.
        x = tf.cast(images, tf.int32)
        if (spec.low, spec.high) != _INT_LIMITS[dtype]:
            x = tf.clip_by_value(x, spec.low, spec.high)
        if spec.low != 0:
            x = x - spec.low
        return x, None
    if dtype.is_integer:
        # Uniform bins of width (range / bins), computed exactly: in int32 where the
        # product fits (TensorFlow Lite has no int64 division), else in int64.
        work = tf.int32 if (spec.high - spec.low) * spec.bins < 2**31 else tf.int64
        x = tf.clip_by_value(tf.cast(images, work), spec.low, spec.high) - spec.low
        return tf.cast(x * spec.bins // (spec.high - spec.low + 1), tf.int32), None
    work = tf.float64 if dtype == tf.float64 else tf.float32
    x = tf.cast(images, work)
    nan = tf.math.is_nan(x)
    x = tf.where(nan, tf.constant(spec.low, work), x)
    x = tf.clip_by_value(x, spec.low, spec.high)
    scale = tf.constant((spec.bins - 1) / (spec.high - spec.low), work)
    levels = tf.round((x - spec.low) * scale)
    levels = tf.clip_by_value(levels, 0.0, spec.bins - 1)
    return tf.cast(levels, tf.int32), nan


def value_table(spec: LevelSpec) -> tf.Tensor:
    """The output value of each level, shape `(bins,)`, in the input dtype.

    Computed in float64 with NumPy and stored in the input dtype (rounded to
    nearest even), so the graph holds no float64 constant for TensorFlow Lite.
    """
    levels = np.arange(spec.bins, dtype=np.float64)
    values = spec.low + levels * (spec.high - spec.low) / (spec.bins - 1)
    if spec.dtype.is_integer:
        return tf.constant(np.rint(values).astype(spec.dtype.as_numpy_dtype))
    if spec.dtype == tf.bfloat16:  # NumPy has no bfloat16: one rounding, by TensorFlow
        return tf.cast(tf.constant(values, tf.float64), tf.bfloat16)
    return tf.constant(values.astype(spec.dtype.as_numpy_dtype))


def to_values(levels: tf.Tensor, spec: LevelSpec, dtype: tf.DType | None = None) -> tf.Tensor:
    """Map int32 levels back to values of the input dtype and range (or of `dtype`, e.g. `work_dtype`)."""
    if spec.exact:
        if spec.low != 0:
            levels = levels + spec.low
    else:
        table = value_table(spec)
        # Gathered in int32: TensorFlow Lite has no builtin uint16 gather.
        levels = tf.gather(tf.cast(table, tf.int32) if spec.dtype in _NARROW_WORK else table, levels)
    return tf.cast(levels, dtype or spec.dtype)


def work_dtype(dtype: tf.DType) -> tf.DType:
    """The dtype that values of `dtype` are selected and concatenated in before the final cast.

    int32 for uint16 and int16, which TensorFlow Lite has no builtin select,
    concatenation or gather kernels for; the dtype itself otherwise.
    """
    return tf.int32 if dtype in _NARROW_WORK else dtype


def clip_values(images: tf.Tensor, spec: LevelSpec) -> tf.Tensor:
    """`images` clipped to the value range (NaN stays NaN); integers come back as int32.

    TensorFlow Lite has no builtin uint8 or uint16 comparison or select
    kernels, ONNX Runtime no uint16 ones: integers are compared and selected
    in int32.
    """
    if images.dtype.is_integer:
        images = tf.cast(images, tf.int32)
    low = tf.cast(spec.low, images.dtype)
    high = tf.cast(spec.high, images.dtype)
    return tf.where(images < low, low, tf.where(images > high, high, images))
