"""Volume files on the command line: NIfTI and TIFF stacks, read, processed and written back one at a time.

`tf_histeq.cli.equalize.run` lists volume files with the images (by name:
`files.VOLUME_EXTENSIONS`) and hands the jobs of volumes here; the images go
through the `tf.data` pipeline as before. A volume is read whole
(`tf_histeq.volumes.read_volume`, which needs the `volumes` extra:
nibabel, tifffile), processed by the op in one call, and written back in its
own format with its metadata (`tf_histeq.volumes.write_volume`: dtype, NIfTI
header with affine and spacing, TIFF resolution and ImageJ metadata), under
the same no-loss rules as images: complete or absent, synced, never replacing
a file unless `--overwrite`.

What a file is, from its format, never guessed from its shape:

- a NIfTI (`.nii`, `.nii.gz`) is one volume `(D, H, W)`, run with
  `spatial_dims=3`: one histogram per volume. A NIfTI with a fourth
  dimension above 1 (a time series) is refused by name (split it first, e.g.
  with `nibabel.four_to_three`);
- a TIFF (`.tif`, `.tiff`) of several pages is a stack `(D, H, W)` (or
  `(D, H, W, C)` of RGB pages, per channel), run with `spatial_dims=3`; a
  TIFF of one page stays a 2-D image, run as the PNG files are
  (`spatial_dims=2`) and written back as a one-page TIFF.

`clahe` (OpenCV's 2-D algorithm) refuses volumes, naming the 3-D one
(`tf_histeq.equalize_adapthist`). Float and int32 voxels outside the op's
default value range (0..255) are refused unless `--value-range` says the
range: the op would clip them.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time

import numpy as np

from tf_histeq.cli import writing
from tf_histeq.cli.files import Job, UsageError
from tf_histeq.cli.listing import shown
from tf_histeq.cli.terminal import PROG, Interrupt, Progress

VOLUMES_HINT = 'pip install "tf_histeq[volumes]"'
CLAHE_REFUSAL = (
    "clahe is OpenCV's 2-D CLAHE and does not take volumes; 3-D CLAHE is tf_histeq.equalize_adapthist "
    "(scikit-image's algorithm, spatial_dims=3)"
)
_FULL_DISK = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# dtypes whose default value range (0..255) is a convention, not their range: the data must fit it.
_CONVENTION_DTYPES = ("f", "int32")


def read(path: str) -> tuple[np.ndarray, object]:
    """`tf_histeq.volumes.read_volume(path, single_page=True)`, its errors as one reason without the path.

    Raises:
        ValueError: With the reason: damaged, truncated, not one volume, the
            `volumes` extra missing, or the file unreadable.
    """
    from tf_histeq import volumes

    try:
        return volumes.read_volume(path, single_page=True)
    except ImportError as err:
        raise ValueError(str(err)) from None
    except OSError as err:
        raise ValueError(f"cannot read the file ({err.strerror or err})") from None
    except ValueError as err:
        text = str(err)
        for prefix in (f"{path!r}: ", f"{os.fspath(path)}: "):
            if text.startswith(prefix):
                text = text[len(prefix) :]
        raise ValueError(text) from None


def _check_range(array: np.ndarray, kwargs: dict) -> None:
    """Refuse float and int32 voxels outside 0..255 when no `value_range` was given (the op would clip them)."""
    if kwargs.get("value_range") is not None:
        return
    if array.dtype.kind != "f" and array.dtype.name not in _CONVENTION_DTYPES:
        return
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    if finite.size and (finite.min() < 0 or finite.max() > 255):
        raise ValueError(
            f"its {array.dtype.name} voxels span {finite.min():g}..{finite.max():g}, outside the default value "
            "range 0..255 of that dtype, which would clip them; pass --value-range LOW HIGH (and --bins N)"
        )


def transform(op_name: str, op, array: np.ndarray, meta, kwargs: dict) -> np.ndarray:
    """The op on one file's voxels: a volume with `spatial_dims=3`, a one-page TIFF as a 2-D image.

    Raises:
        ValueError: Why this file cannot be processed (the op's own message for
            a dtype or option that does not fit it).
    """
    if op_name == "clahe" and not meta.is_image:
        raise ValueError(CLAHE_REFUSAL)
    _check_range(array, kwargs)
    try:
        if meta.is_image:
            return np.asarray(op(array[0], **kwargs))[None]
        return np.asarray(op(array, spatial_dims=3, **kwargs))
    except (TypeError, ValueError) as err:
        raise ValueError(str(err)) from None


def reference_histogram(paths: list[str], kwargs: dict):
    """The histogram of the voxels of every volume file in `paths`, pooled per channel, for `match`.

    Counted as `tf_histeq.reference_histogram` counts images, with the op's
    `value_range`, `bins` and `alpha`: the counts do not depend on the layout,
    so each volume is counted as one tall image `(D * H, W[, C])`.

    Raises:
        UsageError: Naming the file, if one cannot be read or counted, or the
            files differ in dtype or channels.
    """
    from tf_histeq import ops

    options = {name: kwargs[name] for name in ("value_range", "bins", "alpha")}
    total = first = None
    for path in paths:
        try:
            array, _ = read(path)
            _check_range(array, kwargs)
            counts = ops.reference_histogram(array.reshape(-1, *array.shape[2:]), **options)
        except (TypeError, ValueError) as err:
            raise UsageError(f"--reference {shown(path)!r}: {err}") from None
        if total is None:
            total, first = counts, (path, array.dtype)
        elif array.dtype != first[1] or counts.channels != total.channels:
            raise UsageError(
                f"--reference {shown(path)!r} ({array.dtype}, {counts.channels} channel(s)) and {shown(first[0])!r} "
                f"({first[1]}, {total.channels} channel(s)) differ; the volumes of a reference must agree"
            )
        else:
            total += counts
    return total


def figure_png(before: np.ndarray, after: np.ndarray, meta, title: str, op_name: str, value_range) -> bytes:
    """The `--compare` figure of a file: three orthogonal slices before/after, or the 2-D comparison."""
    import io

    from tf_histeq import plot
    from tf_histeq.cli.equalize import figure_png as image_figure

    if meta.is_image:
        return image_figure([before[0], after[0]], [title, op_name], value_range)
    if before.ndim == 4:  # RGB pages: the slices of the first channel
        before, after = before[..., 0], after[..., 0]
    low_high = value_range
    if low_high is None and before.dtype.kind == "f":
        low_high = (float(np.nanmin(before)), float(np.nanmax(before)))
    spacing = meta.spacing if all(meta.spacing) else None
    fig = plot.slices([before, after], [title, op_name], value_range=low_high, spacing=spacing)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def process(args, kwargs: dict, todo: list[Job], tally) -> None:
    """Read, process and write each volume job in turn, counting in `tally` (`equalize._Tally`).

    A job whose file cannot be read or processed fails alone (nothing is
    written for it); an existing output is kept (counted skipped) unless
    `--overwrite`. A Ctrl-C (or SIGTERM, SIGHUP) stops the run between two
    files: every written file is complete.
    """
    from tf_histeq import ops, volumes
    from tf_histeq.cli.runtime import import_tensorflow

    import_tensorflow()
    op = ops.OPS[args.op]
    start = time.perf_counter()
    progress = Progress(len(todo))
    with Interrupt() as interrupt:
        try:
            for job in todo:
                voxels = 0
                try:
                    array, meta = read(job.source)
                    out = transform(args.op, op, array, meta, kwargs)
                    voxels = int(np.prod(array.shape[:-1] if array.ndim == 4 else array.shape))
                    try:
                        volumes.write_volume(job.output, out, meta, overwrite=args.overwrite)
                        written = True
                    except FileExistsError:
                        written = False
                    if job.figure:
                        title = shown(os.path.basename(job.source))
                        figure = figure_png(array, out, meta, title, args.op, kwargs.get("value_range"))
                        written |= writing.write_atomic(job.figure, figure, overwrite=args.overwrite)
                except ValueError as err:
                    job.error = str(err)
                except OSError as err:
                    job.error = f"cannot write the output ({err.strerror or err})"
                    tally.full_disk += err.errno in _FULL_DISK
                if job.error is not None:
                    tally.failed.append(job)
                    progress.message(f"{PROG}: {shown(job.source)}: {job.error}")
                elif written:
                    tally.processed += 1
                    tally.pixels += voxels
                else:
                    tally.skipped += 1
                tally.handled += 1
                progress.advance(voxels)
                interrupt.check()
        except KeyboardInterrupt:
            tally.interrupted = True
            tally.signum = interrupt.signum or signal.SIGINT
        finally:
            progress.close()
            tally.seconds += time.perf_counter() - start  # after the images' time, if any
            writing.sync_folders(
                sorted({os.path.dirname(t) or "." for job in todo for t in (job.output, job.figure) if t})
            )


def note_data_service(args, count: int) -> None:
    """Say that volumes are processed here when `--data-service` is given."""
    if args.data_service and count:
        print(
            f"{PROG}: note: the {count} volume file(s) are processed here, not on the tf.data service", file=sys.stderr
        )
