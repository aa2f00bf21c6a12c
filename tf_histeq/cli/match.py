"""The `--reference` of `tf-histeq match`: listed, read like the inputs, pooled, and checked against them.

The rest of the command is `equalize`'s (`tf_histeq.cli.equalize.run`) with
`tf_histeq.match_histograms` as the op and the reference histogram among its
keyword arguments: the pipeline, the no-clobber writes, the reports and
`--data-service` (the histogram is a constant of the graph that the service's
workers run) are the same.

Everything about the reference is settled before any output is written:

- `collect_reference` (no TensorFlow): the file, or the image files (or the
  volume files: NIfTI, TIFF, read by `tf_histeq.cli.volfiles`, not mixed with images) of the
  folder (`listing.collect`, with `--recursive` for subfolders), none of them
  inside the output folder, the output folder not inside the reference folder
  (a rerun would pool the outputs into the reference), every file a readable
  image, all of one bit depth;
- `read_reference`: decodes them as the inputs are decoded (`pipeline.decode_op`
  with each file's `decoding.Decoding`) and pools their
  histograms per colour channel with the inputs' `--value-range`, `--bins` and
  `--alpha` (`tf_histeq.reference_histogram`), all with one channel count;
- `fail_misfits`: an input whose bit depth or channel count cannot be matched
  to the reference fails alone; if no input fits, the run stops.

A problem with the reference is a usage error (exit 2, `tf-histeq: error:
--reference ...`).
"""

from __future__ import annotations

import dataclasses
import os

from tf_histeq.cli import decoding, files, listing, pipeline, volfiles
from tf_histeq.cli.files import Job, UsageError
from tf_histeq.cli.runtime import tf


@dataclasses.dataclass
class Reference:
    """The image files of `--reference`, all of one bit depth."""

    option: str  # as given on the command line
    paths: list[str]
    is16: bool
    formats: list[str] = dataclasses.field(default_factory=list)  # of the paths, from `files.sniff`
    listing: listing.Listing | None = None  # what was listed and left out
    volumes: bool = False  # volume files (NIfTI, TIFF: `tf_histeq.cli.volfiles`), not images


def collect_reference(args) -> Reference:
    """List and sniff the `--reference` files (no TensorFlow).

    Raises:
        UsageError: If the reference does not exist, is an empty folder, lies
            inside the output folder or contains it, holds a file that is not a
            readable image, or mixes 8- and 16-bit images.
    """
    found = listing.collect([args.reference], args.recursive, args.output, role="--reference", per_file=True)
    for path, why in found.failed:
        raise UsageError(f"--reference {listing.shown(path)!r}: {why}")
    pairs = found.pairs
    volumes = [path for path, _ in pairs if files.volume_kind(path)]
    if volumes:
        if len(volumes) < len(pairs):
            image = next(path for path, _ in pairs if not files.volume_kind(path))
            raise UsageError(
                f"--reference {args.reference!r} mixes volume files ({volumes[0]!r}) and images ({image!r}); "
                "a reference is made of one or the other"
            )
        return Reference(args.reference, volumes, is16=False, listing=found, volumes=True)
    first, formats = {}, []  # bit depth -> the first file of that depth
    for path, _ in pairs:
        try:
            fmt, is16 = files.sniff(path)[:2]
        except ValueError as err:
            raise UsageError(f"--reference {path!r}: {err}") from None
        first.setdefault(is16, path)
        formats.append(fmt)
    if len(first) > 1:
        raise UsageError(
            f"--reference {args.reference!r} mixes 8-bit images ({first[False]!r}) and 16-bit ones "
            f"({first[True]!r}); a reference has one bit depth"
        )
    return Reference(
        args.reference, [path for path, _ in pairs], is16=next(iter(first)), formats=formats, listing=found
    )


def _depth(is16: bool) -> str:
    return "16-bit" if is16 else "8-bit"


def describe(reference: Reference, histogram) -> str:
    """`8-bit, 3 colour channel(s)`: what the reference is, for messages."""
    if reference.volumes:
        return f"volume(s), {histogram.channels} colour channel(s)"
    return f"{_depth(reference.is16)}, {histogram.channels} colour channel(s)"


def read_reference(reference: Reference, kwargs: dict):
    """Decode the reference files as the inputs are, and pool their histograms per colour channel.

    Each image is counted with the op's `value_range`, `bins` and `alpha`
    (`tf_histeq.reference_histogram`), and the counts are added. The files are
    read, decoded and counted in one `tf.data` pass, which needs every image to
    have the channel count of the first; if that fails, they are counted again
    one by one: that names the file at fault, or pools images whose channel
    counts differ only by an alpha channel (RGB and RGBA).

    Returns:
        The `tf_histeq.Histogram` to match to.

    Raises:
        UsageError: Naming the file, if one cannot be decoded, does not fit the
            options, or has another number of colour channels than the first.
    """
    from tf_histeq import ops

    if reference.volumes:
        return volfiles.reference_histogram(reference.paths, kwargs)
    options = {name: kwargs[name] for name in ("value_range", "bins", "alpha")}

    def read(path, vector):
        return pipeline.decode_op(tf.io.read_file(path), reference.is16, vector)

    vectors = [_vector(path, fmt) for path, fmt in zip(reference.paths, reference.formats, strict=True)]
    names = [os.fsencode(path) for path in reference.paths]  # any name's bytes
    images = tf.data.Dataset.from_tensor_slices((names, tf.constant(vectors, tf.int32)))
    images = images.map(tf.autograph.experimental.do_not_convert(read), num_parallel_calls=tf.data.AUTOTUNE)
    try:
        channels = read(names[0], tf.constant(vectors[0])).shape[-1]  # the alpha rule needs it known while tracing
        fixed = images.map(
            tf.autograph.experimental.do_not_convert(lambda image: tf.ensure_shape(image, [None, None, channels]))
        )
        return ops.reference_histogram(fixed.prefetch(tf.data.AUTOTUNE), **options)
    except (tf.errors.OpError, TypeError, ValueError):
        pass  # a file that cannot be decoded or counted, or another channel count: one by one below
    iterator = iter(images)
    total = first = None
    for path in reference.paths:
        try:
            image = next(iterator)
        except tf.errors.OpError as err:
            raise UsageError(f"--reference {path!r}: {pipeline.reason(err, path)}") from None
        try:
            counts = ops.reference_histogram(image, **options)
        except (TypeError, ValueError) as err:
            raise UsageError(f"--reference {path!r}: {err}") from None
        if total is None:
            total, first = counts, path
        elif counts.channels != total.channels:
            raise UsageError(
                f"--reference {path!r} has {counts.channels} colour channel(s), {first!r} {total.channels}; "
                "the images of a reference folder must agree"
            )
        else:
            total += counts
    return total


def _vector(path: str, fmt: str) -> list[int]:
    """The `decoding.Decoding.vector` of a reference file (identity if it cannot be read now: decoding says why)."""
    try:
        return files.inspect(path, fmt).vector()
    except (OSError, ValueError):
        return decoding.Decoding().vector()


def fail_misfits(reference: Reference, kwargs: dict, todo: list[Job], *, stop: bool = True) -> None:
    """Fail the jobs whose images cannot be matched to `kwargs["reference"]`.

    A job fails when `match_histograms`'s own check of a reference against the
    images (bins, value range, colour channels) refuses every channel count its
    header allows (a JPEG's frame header gives 1 or 3; one that comes after a
    large metadata block, both); an image that decodes to a count that does not
    fit fails in the pipeline, with `match_histograms`'s message.

    Raises:
        UsageError: If the reference fits none of `todo` (and `stop`: False
            when volume files are to be matched too, which are checked one by one).
    """
    histogram = kwargs["reference"]
    refusals: dict[tuple[bool, int], str | None] = {}
    about = f"--reference {reference.option!r} ({describe(reference, histogram)})"
    failed = []
    for job in todo:
        for channels in job.channels:
            if (job.is16, channels) not in refusals:
                refusals[job.is16, channels] = _refusal(histogram, kwargs, job.is16, channels)
        found = [refusals[job.is16, channels] for channels in job.channels]
        if all(found):
            image = f"{_depth(job.is16)}, {' or '.join(map(str, job.channels))} channel(s)"
            job.error = f"this image ({image}) does not fit {about}: {found[0]}"
            failed.append((job, image, found[0]))
    if stop and failed and len(failed) == len(todo):
        job, image, reason = failed[0]
        raise UsageError(f"{about} fits none of the inputs to process, e.g. {job.source!r} ({image}): {reason}")


def _refusal(histogram, kwargs: dict, is16: bool, channels: int) -> str | None:
    """Why `match_histograms` refuses `histogram` for images of this bit depth and channel count, or None."""
    from tf_histeq import _convert, _options, _reference_counts

    try:
        alpha = _options.has_alpha(kwargs["alpha"], channels)
    except ValueError:  # --alpha true on one channel: the pipeline reports that, whatever the reference
        return None
    spec = _convert.level_spec(tf.uint16 if is16 else tf.uint8, kwargs["value_range"], kwargs["bins"])
    try:
        _reference_counts.check_fit(histogram, spec, channels - alpha)
    except ValueError as err:
        return str(err)
    return None
