"""The public operations: `equalize_hist`, `clahe` and `match_histograms`.

Each function validates its Python arguments and static shapes at trace time
(`_options`, `_convert`), builds its kernel (`_histogram`, `_clahe`, `_matching`:
int32 levels `(N, H, W, P)` in, a `_planes.Mapping` out) and hands it to
`_planes.run`, which does the rest for every op alike: layout, alpha, mask, NaN,
the colour modes (`channels`), levels to values of the input dtype, and the
gradient guard below. The defaults live in `_options`, which the layers,
`tf_histeq.data`, the NumPy API and the command line share.

Gradients: there are none. Every op maps quantized levels through tables
built from counts, a piecewise-constant function of the pixels, so its true
derivative is zero almost everywhere and undefined at the steps. Rather than let
`tf.GradientTape` return a silent `None` (or a misleading partial gradient
through the clipped and NaN pixels), float inputs pass through
`tf.raw_ops.PreventGradient` (`_compat.prevent_gradient`): asking for a
gradient through an op raises a `LookupError` that names it. Put the ops before
any trainable layer (where no gradient is asked of them), or wrap their output
in `tf.stop_gradient`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import tensorflow as tf

from tf_histeq import _clahe, _convert, _histogram, _matching, _options, _planes, _reference_counts, _xla
from tf_histeq._planes import Mapping
from tf_histeq._reference import Histogram, unfreeze
from tf_histeq.adaptive import equalize_adapthist

# What `clahe` says to a batch of volumes: it is OpenCV's 2-D algorithm.
CLAHE_VOLUMES = (
    "a batch of volumes (N, D, H, W, C): clahe is OpenCV's 2-D algorithm and takes no spatial_dims; "
    "for 3-D CLAHE call tf_histeq.equalize_adapthist(..., spatial_dims=3), or run clahe slice by slice "
    "on the slices reshaped to (N*D, H, W, C)."
)


@_xla.eager_door
def equalize_hist(
    images,
    *,
    value_range=None,
    bins=None,
    method=_options.METHOD,
    channels=_options.CHANNEL_MODE,
    alpha=_options.ALPHA,
    mask=None,
    spatial_dims=2,
    jit_compile=_xla.JIT_COMPILE,
):
    """Equalize the histogram of every channel of every image or volume.

    Each (image, channel) plane gets its own histogram and lookup table; nothing
    is pooled across the batch, so an image's result never depends on its
    batch-mates (unlike `keras.layers.Equalization`). With `spatial_dims=3`
    the same holds per (volume, channel): one histogram over all voxels of a
    volume, as `cv2.equalizeHist` and `PIL.ImageOps.equalize` give on the
    volume's slices stacked into one 2-D image.

    Parity: for uint8 input with the default `value_range` and `bins`,
    `method="opencv"` is bit-identical to `cv2.equalizeHist` applied plane by
    plane, and `method="pil"` to `PIL.ImageOps.equalize` (mask included) band by
    band, which torchvision's `equalize` also reproduces. Both formulas are
    generalised to other dtypes through `value_range` and `bins`.

    Args:
        images: Array or tensor of shape `(H, W)`, `(H, W, C)` or `(N, H, W, C)`,
            channels last (with `spatial_dims=3`: `(D, H, W)`, `(D, H, W, C)` or
            `(N, D, H, W, C)`), dtype uint8, uint16, int16, int32, float16,
            bfloat16, float32 or float64. The input is never modified.
        value_range: `(low, high)` of the pixel values. Defaults: uint8 `(0, 255)`,
            uint16 `(0, 65535)`, int32 `(0, 255)`, float `(0, 255)` (the Keras
            convention). Values outside it are clipped; float NaN pixels are left
            out of the histogram and stay NaN.
        bins: Number of histogram bins (levels). Defaults: 256 for uint8 and
            float, one per integer of `value_range` for uint16 and int32 (65536 for
            uint16). The output keeps as many distinct levels as the binning gives.
        method: Lookup-table formula: `"opencv"` (`cv2.equalizeHist`: the lowest
            occupied level maps to 0, the highest to the top) or `"pil"`
            (`PIL.ImageOps.equalize`).
        channels: `"per_channel"` (each channel alone), `"joint"` (one
            histogram over all channels of an image), or a lightness mode for
            RGB (3 colour channels besides alpha): `"luminance"` (the Y of
            YCrCb) or `"lab"` (the L of CIE Lab). With 256 bins (the default
            for uint8 and float) a lightness mode is OpenCV's round trip on
            the levels, bit for bit: `cv2.cvtColor(COLOR_RGB2YCrCb` or
            `COLOR_RGB2Lab)`, the op on the first plane, `cv2.cvtColor` back
            (`"lab"` is albumentations' `CLAHE` recipe; float images are read
            as 8-bit levels first, as albumentations does). With other bins,
            `"luminance"` equalizes Y and adds its change to R, G and B (so
            the chroma differences are kept) and `"lab"` is refused.
        alpha: Whether the last channel is alpha, which passes through
            unchanged: `"auto"` (the last of 2 or 4 channels: gray + alpha,
            RGBA; volumes have none, so for `spatial_dims=3` it means False),
            True (the last channel, whatever the count) or False (no alpha:
            every channel is equalized, e.g. dual-energy or RGB + NIR).
        mask: Optional bool (or 0/1) array of shape `(H, W)`, `(N, H, W)`, or
            either with a trailing 1. Only pixels inside the mask build the
            histogram (in a lightness mode, pixels whose 3 channels are all
            inside); every pixel is mapped. An all-false mask leaves the image
            unchanged. For volumes: `(D, H, W)`, `(N, D, H, W)`, or either
            with a trailing 1.
        spatial_dims: The layout, stated, never guessed from the shape: 2
            (images, the shapes above) or 3 (volumes: `(D, H, W)`, `(D, H, W,
            C)`, or a batch `(N, D, H, W, C)`; a `(3, 64, 64)` array is then
            one volume of 3 slices, not an RGB image). The colour modes work
            voxel by voxel on volumes too. A rank-5 input with
            `spatial_dims=2` is refused.
        jit_compile: XLA for eager calls (in a `tf.function` or graph of
            yours the op is the plain op, whatever this says): `"auto"` runs
            a one-off call uncompiled and compiles an image shape that
            repeats (`tf_histeq._xla.COMPILE_AFTER_VALUES`), as the layers,
            map functions, NumPy functions and command line do; True compiles
            every shape; False never compiles. `tf_histeq.compiled_shapes`
            reports what was compiled, `tf_histeq.clear_compiled` forgets it.

    Returns:
        A tensor with the same shape and dtype as `images`.

    Raises:
        TypeError: If `images` or `mask` has an unsupported dtype, or an argument
            has the wrong type.
        ValueError: If `images` does not have a rank of its layout (2, 3 or 4;
            3, 4 or 5 with `spatial_dims=3`), or an argument has a bad value.
        LookupError: When a gradient through the result is computed (there is none).

    Example:
        >>> import numpy as np
        >>> import tf_histeq
        >>> img = np.array([[0, 1, 2, 2, 2, 2, 2]], dtype=np.uint8)
        >>> tf_histeq.equalize_hist(img).numpy()  # level 1 -> 42.5 -> 42: ties round to even
        array([[  0,  42, 255, 255, 255, 255, 255]], dtype=uint8)
    """
    with tf.name_scope("equalize_hist"):
        images, mask, restore = _convert.as_layout(images, mask, spatial_dims)
        method = _options.check_option("equalize_hist", "method", method)
        channels = _options.check_option("equalize_hist", "channels", channels)
        alpha = _options.check_alpha(alpha, spatial_dims=spatial_dims)
        spec = _convert.level_spec(images.dtype, value_range, bins)
        build = _histogram.LUT_BUILDERS[method]
        joint = channels == "joint"

        def kernel(levels, valid):
            luts, keep = build(_histogram.histograms(levels, spec.bins, valid, joint=joint))
            return Mapping.from_tables(luts, keep, joint=joint)

        return restore(_planes.run("equalize_hist", images, spec, channels, alpha, mask, kernel))


@_xla.eager_door
def clahe(
    images,
    *,
    clip_limit=_options.CLIP_LIMIT,
    tile_grid_size=_options.TILE_GRID_SIZE,
    value_range=None,
    bins=None,
    channels=_options.CHANNEL_MODE,
    alpha=_options.ALPHA,
    mask=None,
    jit_compile=_xla.JIT_COMPILE,
):
    """Contrast Limited Adaptive Histogram Equalization of every channel of every image.

    The image is cut into a grid of tiles; each tile's histogram is clipped at
    `clip_limit` times its mean bin count, the excess is spread over all bins, and
    each pixel is mapped by bilinear interpolation between the four nearest tile
    lookup tables. Tile histograms are per image and per channel, never pooled
    over the batch.

    Parity: for uint8 (256 bins) and uint16 (65536 bins) input with the default
    `value_range` and `bins`, the result is bit-identical to
    `cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(cols, rows)).apply`
    plane by plane, for any clip limit and tile grid, including sizes not
    divisible by the grid (reflect-101 padding of both axes, as OpenCV does).
    Note that OpenCV's `tileGridSize` is `(cols, rows)`; ours is `(rows, cols)`.

    scikit-image's `equalize_adapthist(clip_limit=c)` counts the clip limit as a
    fraction of the tile's pixels: `clip_limit = c * bins` here clips at the same
    count (`c * 256` for 8-bit images), though skimage's algorithm differs in its
    redistribution and interpolation.

    For 12-bit data stored in uint16, `value_range=(0, 4095), bins=4096` keeps
    the result in 0..4095; the default (65536 bins) reproduces OpenCV, which
    stretches it to 16 bits.

    Args:
        images: Array or tensor of shape `(H, W)`, `(H, W, C)` or `(N, H, W, C)`,
            channels last, dtype uint8, uint16, int32, float16, bfloat16, float32
            or float64. The input is never modified.
        clip_limit: Contrast limit in OpenCV units (a multiple of the mean bin
            count of a tile); `<= 0` disables clipping. Either a number for
            every image, or a float tensor or NumPy array of shape `(N,)` with
            one limit per image of an `(N, H, W, C)` batch (shape `(1,)` or
            `()` for a single image): image `i` then equals
            `cv2.createCLAHE(float(clip_limit[i]), ...)`, e.g. for limits
            sampled per image (`tf_histeq.layers.RandomCLAHE`). A number must be
            finite; the values of a tensor are only known when it runs, so
            there a NaN or `-inf` disables clipping like `<= 0`, and `+inf` clips
            every bin at a count of 1, as OpenCV does with these values. A list
            or tuple is refused, so that `(1.0, 4.0)` is never mistaken for a
            range to sample from.
        tile_grid_size: Number of tiles as `(rows, cols)`; may exceed the image size.
        value_range: `(low, high)` of the pixel values; defaults as in
            `equalize_hist` (uint8 `(0, 255)`, uint16 `(0, 65535)`, float `(0, 255)`).
            Values outside it are clipped; float NaN pixels are left out of the
            histograms and stay NaN.
        bins: Number of histogram bins; defaults as in `equalize_hist` (256 for
            uint8 and float, 65536 for uint16).
        channels: `"per_channel"`, `"luminance"` or `"lab"`, as in
            `equalize_hist`: with 256 bins, OpenCV's YCrCb or Lab round trip
            around the op on Y or L, bit for bit (with `"lab"`, albumentations'
            `CLAHE` on RGB images); with other bins `"luminance"` adds the
            change of Y to R, G and B and `"lab"` is refused.
        alpha: `"auto"`, True or False, as in `equalize_hist`: with `"auto"`
            the last of 2 or 4 channels is alpha and passes through unchanged.
        mask: Optional bool (or 0/1) array of shape `(H, W)`, `(N, H, W)`, or
            either with a trailing 1. Only pixels inside the mask build the tile
            histograms; every pixel is mapped. A tile with no pixel inside the
            mask uses the identity table.
        jit_compile: `"auto"`, True or False: XLA for eager calls, as in
            `equalize_hist`.

    Returns:
        A tensor with the same shape and dtype as `images`.

    Raises:
        TypeError: If `images` or `mask` has an unsupported dtype, or an argument
            has the wrong type.
        ValueError: If `images` is not rank 2, 3 or 4 (a rank-5 batch of
            volumes is refused with the alternatives: 3-D CLAHE is
            `tf_histeq.equalize_adapthist(..., spatial_dims=3)`; `clahe` slice
            by slice takes the slices as a batch `(N*D, H, W, C)`), or an
            argument has a bad value (per-image `clip_limit` of rank above 1, or whose static
            length is not the number of images).
        InvalidArgumentError: When the graph runs, if per-image `clip_limit`
            and a batch of unknown size at trace time differ in length.
        LookupError: When a gradient through the result is computed (there is none).

    Example:
        >>> import numpy as np
        >>> import tf_histeq
        >>> img = np.tile(np.arange(100, 116, dtype=np.uint8), (16, 1))  # a 16-level ramp
        >>> tf_histeq.clahe(img, clip_limit=0, tile_grid_size=(1, 1)).numpy()[0]
        array([ 16,  32,  48,  64,  80,  96, 112, 128, 143, 159, 175, 191, 207,
               223, 239, 255], dtype=uint8)

        One limit per image: the first image is not clipped (a full stretch),
        the second is clipped at 2 (a gentle one).

        >>> pair = np.stack([img, img])[..., None]  # (2, 16, 16, 1)
        >>> out = tf_histeq.clahe(pair, clip_limit=np.array([0.0, 2.0]), tile_grid_size=(1, 1))
        >>> out.numpy()[:, 0, :4, 0]
        array([[ 16,  32,  48,  64],
               [103, 106, 109, 112]], dtype=uint8)
    """
    with tf.name_scope("clahe"):
        images = _convert.as_images(images, volumes=CLAHE_VOLUMES)
        clip_limit = _clahe.check_clip_limits(clip_limit, images)
        grid = _options.check_grid(tile_grid_size)
        channels = _options.check_option("clahe", "channels", channels)
        alpha = _options.check_alpha(alpha)
        spec = _convert.level_spec(images.dtype, value_range, bins)

        def kernel(levels, valid):
            return Mapping.from_levels(
                _clahe.clahe_levels(levels, bins=spec.bins, clip_limit=clip_limit, grid=grid, valid=valid)
            )

        return _planes.run("clahe", images, spec, channels, alpha, mask, kernel)


# No tensor-dependent Python control flow: AutoGraph, which `tf.function` applies to
# what it calls, would only spend seconds converting the helpers (10x the trace).
@_xla.eager_door
@tf.autograph.experimental.do_not_convert
def match_histograms(
    images,
    reference,
    *,
    value_range=None,
    bins=None,
    channels=_options.CHANNEL_MODE,
    alpha=_options.ALPHA,
    mask=None,
    reference_mask=None,
    spatial_dims=2,
    jit_compile=_xla.JIT_COMPILE,
):
    """Map every channel of every image so that its histogram matches a reference's.

    Each (image, channel) plane gets its own mapping, from its own histogram:
    batch-mates never influence each other. With `spatial_dims=3`, each
    (volume, channel) gets one mapping from the histogram of all its voxels. A source level whose quantile (the
    fraction of the plane's pixels at or below it) is `q` maps to the value at
    quantile `q` of the reference, linearly interpolated between the reference's
    occupied levels: scikit-image's `exposure.match_histograms`, computed on
    float64 tables.

    Parity: for integer images, the result is the round-half-even of
    `skimage.exposure.match_histograms(plane, reference_plane)` (float64)
    plane by plane, bit for bit, for uint8, and for uint16 with any
    `value_range` and one bin per level (12-bit data: `value_range=(0, 4095),
    bins=4096`). `channels="joint"` equals skimage on whole multichannel
    arrays (no `channel_axis`). skimage's own `channel_axis=-1` result differs:
    it writes its float64 values into the input dtype, which truncates
    (`np.uint8(127.9) == 127`). Float images whose values lie on the level grid
    (e.g. integer-valued float32 with the default `value_range` and `bins`) get
    skimage's float result exactly; other float values are quantized to `bins`
    levels to build the histograms and mappings, as in the other ops, and the
    output is the interpolated value, not snapped to a level.

    Args:
        images: Array or tensor of shape `(H, W)`, `(H, W, C)` or `(N, H, W, C)`,
            channels last (with `spatial_dims=3`: `(D, H, W)`, `(D, H, W, C)` or
            `(N, D, H, W, C)`), dtype uint8, uint16, int16, int32, float16,
            bfloat16, float32 or float64. The input is never modified.
        reference: What to match, one of:
            - an image `(H', W')` or `(H', W', C')` of any size, or a batch
              `(N', H', W', C')` (pooled), read like `images` (same `value_range`
              and `bins`; the same dtype for integer images, any dtype for float
              ones). `C'` is 1 (used for every channel), the number of colour
              channels, or the number of channels (its alpha is dropped);
            - a 1-D array of `bins` counts, used for every channel;
            - a `tf_histeq.Histogram` of `(1 or C, bins)` counts, e.g. from
              `tf_histeq.reference_histogram` (pooled over a dataset).

            With `spatial_dims=3` an image reference is a volume `(D', H',
            W')`, `(D', H', W', C')` or a batch `(N', D', H', W', C')`
            (pooled); a 2-D image is a volume of one slice (`image[None]`)
            or its `tf_histeq.reference_histogram`.
        value_range: `(low, high)` of the pixel values; defaults as in
            `equalize_hist` (uint8 `(0, 255)`, uint16 `(0, 65535)`, float `(0, 255)`).
            Values outside it are clipped; float NaN pixels are left out of the
            histograms and stay NaN.
        bins: Number of histogram bins; defaults as in `equalize_hist` (256 for
            uint8 and float, 65536 for uint16).
        channels: `"per_channel"` (each channel matched to the same channel of
            the reference) or `"joint"` (one histogram over all channels of an
            image, one over all channels of the reference, one mapping).
        alpha: `"auto"`, True or False, as in `equalize_hist`: with `"auto"`
            the last of 2 or 4 channels is alpha and passes through unchanged.
        mask: Optional bool (or 0/1) array of shape `(H, W)`, `(N, H, W)`, or
            either with a trailing 1 (for volumes: `(D, H, W)`, `(N, D, H,
            W)`, or either with a trailing 1). Only pixels inside it build the images'
            histograms; every pixel is mapped (a level absent from the mask maps
            like the nearest level below it that is present).
        reference_mask: Optional mask of the reference image, `(H', W')` or
            `(H', W', 1)` (of a reference volume, `(D', H', W')` or `(D', H',
            W', 1)`): only its pixels build the reference histogram.
        spatial_dims: 2 (images) or 3 (volumes), as in `equalize_hist`: the
            layout of `images`, `mask`, and an image `reference` with its
            `reference_mask`.
        jit_compile: `"auto"`, True or False: XLA for eager calls, as in
            `equalize_hist` (the reference is read and checked when the
            compiled function is traced, as in an uncompiled call).

    Empty masks and references: a `mask`, `reference_mask` or `reference`
    known when the function is called or traced (NumPy, eager tensor, constant)
    must leave a pixel in every image and channel, or a `ValueError` says so; its
    values are checked then too. One computed in the graph is not checked: if it
    turns out empty, the images come back unchanged.

    Returns:
        A tensor with the same shape and dtype as `images`.

    Raises:
        TypeError: If `images`, `reference` or a mask has an unsupported dtype, an
            integer `reference` image has another dtype than `images`, or an
            argument has the wrong type.
        ValueError: If `images` does not have a rank of its layout (2, 3 or 4;
            3, 4 or 5 with `spatial_dims=3`), `reference` does not fit
            the images (bins, channels, value range), a histogram has negative
            or non-finite counts, a known mask or reference is empty, or an
            argument has a bad value.
        LookupError: When a gradient through the result is computed (there is none).

    Example:
        >>> import numpy as np
        >>> import tf_histeq
        >>> image = np.array([[10, 10, 20, 30]], np.uint8)  # quantiles 0.5, 0.75, 1
        >>> reference = np.array([[0, 100, 201, 201]], np.uint8)  # quantiles 0.25, 0.5, 1
        >>> tf_histeq.match_histograms(image, reference).numpy()  # 0.75 -> (100 + 201) / 2 = 150.5 -> 150
        array([[100, 100, 150, 201]], dtype=uint8)
    """
    spatial_dims = _options.check_spatial_dims(spatial_dims)
    if spatial_dims == 3:  # the images' layout first, then the reference's
        _convert.as_images(images, spatial_dims=spatial_dims)
        reference, reference_mask = _convert.volume_reference(unfreeze(reference), unfreeze(reference_mask))
    ingest = functools.partial(_reference_counts.reference_counts, reference, reference_mask)
    return match_counts(
        images,
        ingest,
        value_range=value_range,
        bins=bins,
        channels=channels,
        alpha=alpha,
        mask=mask,
        spatial_dims=spatial_dims,
    )


def match_counts(images, ingest, *, value_range, bins, channels, alpha, mask, spatial_dims=2):
    """`match_histograms` to the `_reference_counts.Counts` that `ingest(images, spec, has_alpha)` returns.

    `match_histograms` ingests its `reference` argument; the `HistogramMatching`
    layer, counts held in its weights (`_reference_counts.layer_counts`).
    """
    with tf.name_scope("match_histograms"):
        images, mask, restore = _convert.as_layout(images, unfreeze(mask), spatial_dims)
        channels = _options.check_option("match_histograms", "channels", channels)
        alpha = _options.check_alpha(alpha, spatial_dims=spatial_dims)
        spec = _convert.level_spec(images.dtype, value_range, bins)
        has_alpha = _options.has_alpha(alpha, images.shape[-1] if images.shape.rank > 2 else 1)
        counts = ingest(images, spec, has_alpha).counts
        _reference_counts.check_selects_pixels(mask, images)
        joint = channels == "joint"
        if joint:
            counts = tf.reduce_sum(counts, axis=0, keepdims=True)
        values = _matching.level_values(spec)

        def kernel(levels, valid):
            tables, keep = _matching.match_tables(
                _histogram.histograms(levels, spec.bins, valid, joint=joint), counts, values
            )
            return Mapping.from_tables(_matching.to_dtype(tables, spec), keep, joint=joint, values=True)

        return restore(_planes.run("match_histograms", images, spec, channels, alpha, mask, kernel))


def reference_histogram(
    data, *, value_range=None, bins=None, alpha=_options.ALPHA, mask=None, spatial_dims=2
) -> Histogram:
    """Count the levels of images, pooled per channel: a reference for `match_histograms`.

    The counts of every image are added, channel by channel, so matching to the
    result is exactly matching to all the images side by side in one reference
    image. The images are read as `match_histograms` reads its images (the same
    `value_range`, `bins` and alpha rule), so pass the options you will match
    with; the result records its `value_range`, which `match_histograms` checks.

    Args:
        data: An array or tensor `(H, W)`, `(H, W, C)` or `(N, H, W, C)`; or a
            `tf.data.Dataset` (of such images or batches; of `(images, ...)`
            tuples, whose first item is taken, as Keras `adapt` does); or any
            iterable of arrays (e.g. decoded files of different sizes). All of
            one dtype and channel count.
        value_range: `(low, high)` of the pixel values; defaults as in `match_histograms`.
        bins: Number of levels; defaults as in `match_histograms`.
        alpha: `"auto"`, True or False: the alpha channel is not counted.
        mask: Optional mask `(H, W)` (or `(N, H, W)` for one batch) applied to
            every element: only pixels inside it are counted. For volumes,
            `(D, H, W)` (or `(N, D, H, W)`).
        spatial_dims: 2 (images) or 3 (volumes `(D, H, W)`, `(D, H, W, C)`
            or batches `(N, D, H, W, C)`, counted voxel by voxel): the layout
            of the elements, as in `match_histograms`.

    Returns:
        A `tf_histeq.Histogram` of shape `(C, bins)` (C colour channels).

    Raises:
        TypeError: If an element has an unsupported dtype or an argument has the wrong type.
        ValueError: If the elements disagree in dtype or channels, no pixel is
            counted in some channel, or an argument has a bad value.

    Example:
        >>> import numpy as np
        >>> import tf_histeq
        >>> day1 = np.full((2, 2), 50, np.uint8)
        >>> day2 = np.array([[50, 60, 70, 80, 90, 100]], np.uint8)
        >>> reference = tf_histeq.reference_histogram([day1, day2])  # two sizes, pooled
        >>> reference.counts[0, [50, 60, 100]]
        array([5., 1., 1.])
        >>> image = np.array([[0, 1, 2, 3]], np.uint8)  # quantiles 0.25, 0.5, 0.75, 1
        >>> tf_histeq.match_histograms(image, reference).numpy()  # 0.75: halfway from 70 (0.7) to 80 (0.8)
        array([[ 50,  50,  75, 100]], dtype=uint8)
    """
    alpha = _options.check_alpha(alpha, spatial_dims=spatial_dims)
    return _reference_counts.pooled_histogram(
        data,
        value_range=value_range,
        bins=bins,
        mask=mask,
        has_alpha=lambda n: _options.has_alpha(alpha, n),
        spatial_dims=_options.check_spatial_dims(spatial_dims),
    )


OPS: dict[str, Callable] = {
    "equalize_hist": equalize_hist,
    "clahe": clahe,
    "match_histograms": match_histograms,
    "equalize_adapthist": equalize_adapthist,  # tf_histeq.adaptive
}
