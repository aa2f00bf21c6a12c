"""`tf-histeq equalize|clahe|match INPUT... -o OUTDIR`: process image files, losing and overwriting nothing.

Images go through the `tf.data` pipeline (`tf_histeq.cli.pipeline`); volume
files (NIfTI, TIFF) are read, processed and written one at a time by
`tf_histeq.cli.volfiles`, after the images, under the same rules.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import errno
import importlib
import io
import os
import signal
import sys
import time

from tf_histeq import _options
from tf_histeq.cli import files, listing, match, pipeline, runtime, service, volfiles, writing
from tf_histeq.cli.app import op_arguments
from tf_histeq.cli.files import Job, UsageError
from tf_histeq.cli.listing import shown
from tf_histeq.cli.runtime import tf
from tf_histeq.cli.terminal import PROG, Interrupt, Progress

PLOT_HINT = 'pip install "tf_histeq[plot]"'
_FULL_DISK = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class _SourceError(Exception):
    """The input could not be read again (for its --compare figure); the message is the reason."""


def op_kwargs(args) -> dict:
    """The op's keyword arguments from the command line, validated by `_options.resolve`, and `jit_compile`.

    `match_histograms`'s `reference` is read later (`match.read_reference`).

    Raises:
        UsageError: With the op's own message, if an option has a bad value.
    """
    options = op_arguments(args)
    way_in = {name: options.pop(name) for name in _options.WAY_IN_KEYWORDS}  # checked by their flags' choices
    try:
        kwargs = _options.resolve(args.op, options, exclude=tuple(set(_options.OP_KEYWORDS[args.op]) - set(options)))
        kwargs.update(way_in)
        if not 0 <= args.jpeg_quality <= 100:
            _options.fail(ValueError, "jpeg_quality", "be an int in [0, 100]", args.jpeg_quality)
        if not 0 <= args.png_compression <= 9:
            _options.fail(ValueError, "png_compression", "be an int in [0, 9]", args.png_compression)
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None
    return kwargs


def plot_available() -> bool:
    """True if `tf_histeq.plot` (matplotlib) can be imported."""
    try:
        importlib.import_module("tf_histeq.plot")
    except ImportError:
        return False
    return True


def figure_png(images, titles, value_range) -> bytes:
    """A `tf_histeq.plot.compare` figure of `images` as PNG bytes."""
    from tf_histeq import plot

    fig = plot.compare(images, titles, value_range=value_range)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


@dataclasses.dataclass
class _Tally:
    """What a run did, for its summary."""

    jobs: int = 0  # to process (planned, not failed, not skipped)
    processed: int = 0  # outputs written by this run
    skipped: int = 0  # outputs that existed, before the run or written meanwhile by another
    failed: list[Job] = dataclasses.field(default_factory=list)
    handled: int = 0  # of `jobs`, done one way or another
    pixels: int = 0  # height × width of the processed images
    full_disk: int = 0  # outputs not written for want of space
    interrupted: bool = False
    signum: int = signal.SIGINT  # what interrupted it
    left_out: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (path, reason) not listed
    seconds: float = 0.0


def run(args) -> int:
    """Run the command; return the exit status (0 all done, 1 some failed, 128 + signal number interrupted).

    Raises:
        UsageError: For options or inputs that do not fit, before any output is written.
    """
    kwargs = op_kwargs(args)
    host_port = service.address(args.data_service)
    if host_port:
        service.check_reachable(args.data_service, host_port)
    inputs = listing.collect(args.inputs, args.recursive, args.output)
    reference = match.collect_reference(args) if args.op == "match_histograms" else None
    compare = args.compare
    if compare and not plot_available():
        print(f"{PROG}: note: --compare needs matplotlib ({PLOT_HINT}); writing images only", file=sys.stderr)
        compare = False
    jobs = files.plan(inputs.pairs, args.output, fmt=args.format, overwrite=args.overwrite, compare=compare)
    listing.guard(jobs, inputs, reference.listing if reference is not None else None)
    jobs = [Job(source=path, error=why) for path, why in inputs.failed] + jobs
    _remove_stale(jobs)
    todo = [job for job in jobs if job.error is None and not job.skip and not job.volume]
    volume_todo = [job for job in jobs if job.error is None and not job.skip and job.volume]
    if todo or volume_todo:
        runtime.import_tensorflow()  # quietly, before the package's modules import it
        _check_bit_depths(kwargs, todo)
        if reference is not None:  # read only when there is something to match
            kwargs["reference"] = match.read_reference(reference, kwargs)
            match.fail_misfits(reference, kwargs, todo, stop=not volume_todo)
            todo = [job for job in todo if job.error is None]
    tally = _Tally(jobs=len(todo) + len(volume_todo), skipped=sum(job.skip for job in jobs))
    tally.failed = [job for job in jobs if job.error is not None]
    tally.left_out = inputs.skipped + (reference.listing.skipped if reference is not None else [])
    for job in tally.failed:
        print(f"{PROG}: {shown(job.source)}: {job.error}", file=sys.stderr)
    stats = service.Stats()
    if todo:
        _process(args, kwargs, pipeline.order(todo, kwargs["jit_compile"]), tally, stats)
    if volume_todo and not tally.interrupted:
        volfiles.note_data_service(args, len(volume_todo))
        volfiles.process(args, kwargs, volume_todo, tally)
    return _report(args, tally, stats)


def _remove_stale(jobs: list[Job]) -> None:
    """Remove the temporary files that killed runs left in the output folders of `jobs`, and say so."""
    folders = {os.path.dirname(t) or "." for job in jobs for t in (job.output, job.figure) if t}
    removed, unsure = writing.remove_stale(sorted(folder for folder in folders if os.path.isdir(folder)))
    if removed:
        print(
            f"{PROG}: note: removed {len(removed)} temporary file(s) left by an earlier run that was killed, "
            f"e.g. {shown(removed[0])!r}",
            file=sys.stderr,
        )
    for path in unsure:
        print(
            f"{PROG}: note: {shown(path)!r} is a temporary file of a run that was killed or is still running "
            "(this file system cannot tell which); delete it once no other tf-histeq run writes here",
            file=sys.stderr,
        )


def _check_bit_depths(kwargs: dict, todo: list[Job]) -> None:
    """Refuse options that do not fit the inputs' bit depth, e.g. --value-range 0 4095 for 8-bit images.

    Raises:
        UsageError: Naming the dtype of the inputs it concerns.
    """
    from tf_histeq import _convert

    for dtype in sorted({tf.uint16 if job.is16 else tf.uint8 for job in todo}, key=str):
        try:
            _convert.level_spec(dtype, kwargs["value_range"], kwargs["bins"])
        except (TypeError, ValueError) as err:
            raise UsageError(f"{err} (for the {dtype.name} inputs)") from None


def _process(args, kwargs: dict, todo: list[Job], tally: _Tally, stats: service.Stats) -> None:
    """Equalize, encode and write the jobs to do, counting in `tally`; a Ctrl-C ends it between two files.

    The pipeline's threads decode and equalize; a pool of threads encodes
    (`_encode`: NumPy and zlib, which release the GIL) and writes each file
    under its temporary name, synced to the disk (`writing.stage`), a few files
    ahead; this thread names the files in order (`writing.commit`), so an
    interrupted run stops at a file boundary, and removes the staged files it
    did not name.
    """
    runtime.import_tensorflow()  # quietly, before the package's modules import it
    from tf_histeq import ops

    try:
        os.makedirs(args.output, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the output folder {shown(args.output)!r} ({err.strerror or err})") from None
    op = ops.OPS[args.op]
    start = time.perf_counter()
    progress = Progress(len(todo))
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    encoders = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="tf-histeq-encode")
    pending: collections.deque = collections.deque()  # (job, encoding future or None, error, pixels), in order
    results = None

    def finish() -> None:
        job, encoding, error, pixels = pending[0]  # left in `pending` until named: a stop discards it
        if error is None:
            try:
                if _write_outputs(job, *encoding.result(), args, kwargs):
                    tally.processed += 1
                    tally.pixels += pixels
                else:  # another run wrote it since this one looked
                    tally.skipped += 1
            except _SourceError as err:
                error = str(err)
            except OSError as err:
                error = f"cannot write the output ({err.strerror or err})"
                tally.full_disk += err.errno in _FULL_DISK
        pending.popleft()
        if error is not None:
            job.error = error
            tally.failed.append(job)
            progress.message(f"{PROG}: {shown(job.source)}: {error}")
        progress.advance(pixels)
        tally.handled += 1

    with Interrupt() as interrupt:
        try:
            if args.data_service:
                results = service.results(todo, op, kwargs, args.jpeg_quality, args.data_service, stats, interrupt)
            else:
                dataset = pipeline.build(todo, op, kwargs, args.jpeg_quality)
                results = pipeline.results(dataset, len(todo), [job.source for job in todo])
            for index, payload, error, pixels in results:
                job = todo[index]
                encoding = None if error is not None else encoders.submit(_encode, job, payload, args)
                pending.append((job, encoding, error, pixels))
                while pending and (len(pending) > 2 * workers or pending[0][1] is None or pending[0][1].done()):
                    finish()
                    interrupt.check()  # after a first Ctrl-C: stop here, between two files
            while pending:
                finish()
                interrupt.check()
        except KeyboardInterrupt:
            tally.interrupted = True
            tally.signum = interrupt.signum or signal.SIGINT
        finally:
            encoders.shutdown(wait=True, cancel_futures=True)
            for _, encoding, _, _ in pending:  # staged and never named: their temporary files go
                if encoding is not None and not encoding.cancelled() and encoding.exception() is None:
                    writing.discard(encoding.result()[0])
            if results is not None:
                results.close()  # ends the service reader too
            progress.close()
            # The written names survive a power loss from here on (their data was synced before naming).
            writing.sync_folders(
                sorted({os.path.dirname(t) or "." for job in todo for t in (job.output, job.figure) if t})
            )
            tally.seconds = time.perf_counter() - start


def _report(args, tally: _Tally, stats: service.Stats) -> int:
    """Print the summary (stdout) and notes (stderr); return the exit status."""
    elapsed = tally.seconds
    _report_left_out(tally.left_out)
    if tally.interrupted:
        by = "" if tally.signum == signal.SIGINT else f" by {signal.Signals(tally.signum).name}"
        print(
            f"\n{PROG} {args.op}: interrupted{by}: {tally.processed} processed, {len(tally.failed)} failed, "
            f"{tally.jobs - tally.handled} not done in {elapsed:.1f} s; finished files are complete and kept, "
            "no partial file is left, and the same command again does the rest",
            file=sys.stderr,
        )
        return 128 + tally.signum
    rate = tally.pixels / 1e6 / elapsed if elapsed > 0 and tally.pixels else 0.0
    summary = (
        f"{PROG} {args.op}: {tally.processed} processed, {tally.skipped} skipped (output exists), "
        f"{len(tally.failed)} failed in {elapsed:.1f} s ({rate:.3g} MP/s); outputs in {shown(args.output)}"
    )
    if tally.left_out:
        summary += f"; {len(tally.left_out)} path(s) left out of the listing (see above)"
    if args.data_service and tally.jobs:
        summary += f"; {stats.done_there} done on the tf.data service at {args.data_service}"
    print(summary)
    if stats.failure:
        print(f"{PROG}: note: the tf.data service stopped answering ({stats.failure})", file=sys.stderr)
    if stats.redone_here:
        print(
            f"{PROG}: note: {stats.redone_here} file(s) did not come back from the tf.data service and were done "
            "here; can its workers read the inputs at the same absolute paths?",
            file=sys.stderr,
        )
    if tally.full_disk:
        print(
            f"{PROG}: the output disk is full: {tally.full_disk} output(s) not written (no partial file is left); "
            "free some space and run the same command again, which skips the finished files",
            file=sys.stderr,
        )
    if tally.skipped and not args.overwrite:
        print(f"{PROG}: existing outputs were kept; pass --overwrite to replace them", file=sys.stderr)
    return 0 if not tally.failed else 1


def _report_left_out(left_out: list[tuple[str, str]]) -> None:
    """List the paths that the listing left out (hidden, not image names, links to folders, ...) on stderr."""
    for path, why in left_out:
        print(f"{PROG}: left out: {shown(path)}: {why}", file=sys.stderr)


def _encode(job: Job, payload: bytes, args) -> tuple[writing.Staged, object, bytes | None]:
    """Encode the output and stage it (`writing.stage`): the staged file, its pixels and its bytes.

    The pixels are None for JPEG (which the pipeline encoded), the bytes None
    unless a `--compare` figure needs them.
    """
    if job.out_fmt == "jpeg":
        encoded, pixels = payload, None
    else:
        pixels = tf.io.parse_tensor(payload, tf.uint16 if job.is16 else tf.uint8).numpy()
        encoded = files.encode_png(pixels, args.png_compression) if job.out_fmt == "png" else files.encode_bmp(pixels)
    return writing.stage(job.output, encoded), pixels, encoded if job.figure else None


def _write_outputs(job: Job, staged: writing.Staged, pixels, encoded, args, kwargs: dict) -> bool:
    """Name the job's staged image (and draw and write its figure); True if this run wrote the image."""
    written = writing.commit(staged, overwrite=args.overwrite)
    if job.figure:
        try:
            with open(job.source, "rb") as f:
                data = f.read()
        except OSError as err:
            raise _SourceError(f"cannot read the file again for its --compare figure ({err.strerror or err})") from None
        try:
            before = pipeline.decode(data, job.is16)
        except tf.errors.OpError as err:  # replaced by something else since the pipeline read it
            raise _SourceError(f"the file changed during the run ({pipeline.reason(err)})") from None
        after = pixels if pixels is not None else pipeline.decode(encoded, job.is16)
        figure = figure_png([before, after], [shown(os.path.basename(job.source)), args.op], kwargs["value_range"])
        written |= writing.write_atomic(job.figure, figure, overwrite=args.overwrite)
    return written
