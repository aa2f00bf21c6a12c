"""The `tf.data` pipeline of `tf-histeq equalize|clahe`: read → decode → equalize, in parallel.

TensorFlow is `runtime.tf`, imported on first use: never for `--help` or a usage error.
"""

from __future__ import annotations

import collections
import functools
import importlib
import os
import re

from tf_histeq import _options
from tf_histeq.cli import decoding, files, runtime
from tf_histeq.cli.files import Job
from tf_histeq.cli.runtime import tf

_FORMAT_CODE = {"png": 0, "jpeg": 1, "bmp": 2}
# The IDCT of JPEG inputs: libjpeg's default (JDCT_ISLOW), which `cv2.imread` and Pillow use. TensorFlow's
# own default (INTEGER_FAST, JDCT_IFAST) puts pixels up to a few levels off theirs.
JPEG_DCT_METHOD = "INTEGER_ACCURATE"


def reason(err: Exception, path: str | None = None) -> str:
    """The useful part of a TensorFlow error raised for one element of the pipeline.

    `tf.io.read_file` reports `PATH; REASON` (a file deleted or replaced by a
    folder after it was listed); with the element's `path` that reads
    `cannot read the file (REASON)`, as for files that fail before the pipeline.
    """
    text = getattr(err, "message", None) or str(err)
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    match = re.search(r"Iterator::[\w:]+: (.*)", text)
    if match:
        text = match.group(1)
    text = text.split("\n")[0].strip()
    text = re.sub(r"\s*\[Op:\w+\].*$", "", text)
    if path is not None and text.startswith(f"{path}; "):
        text = f"cannot read the file ({text[len(path) + 2 :]})"
    return text or type(err).__name__


def _shapes(jobs: list[Job]) -> dict[tuple, tuple[str, tuple[int, ...], int]]:
    """What the headers say ahead: `(is16, size)` -> `(dtype, (height, width, channels), files of that size)`."""
    counts = collections.Counter((job.is16, job.size) for job in jobs if job.size)
    channels = {}
    for job in jobs:
        if job.size:
            channels[job.is16, job.size] = min(channels.get((job.is16, job.size), 4), *job.channels)
    return {
        (is16, size): ("uint16" if is16 else "uint8", (*size, channels[is16, size]), count)
        for (is16, size), count in counts.items()
    }


def runs_compiled(jobs: list[Job], runner=None, jit_compile=_options.JIT_COMPILE) -> list[bool]:
    """Whether each job runs the XLA-compiled op, as tf_histeq's runner decides from the file headers.

    The headers give each image's size before decoding, so the runner
    (`tf_histeq._xla.JitRunner.plan`) learns how many images of each size and
    bit depth will come: a size that its counting would compile before the
    last of them runs compiled from the first, within its bound on compiled
    shapes; the others run the op as a graph. A job whose header does not give
    a size is not compiled. With `runner` the decision is its (`jit_compile`
    is then ignored) and is recorded there (it shows in
    `tf_histeq.compiled_shapes`); without, the decision for `jit_compile`.
    """
    shapes = _shapes(jobs)
    chosen = runner.plan(shapes) if runner is not None else _xla().plan(shapes, jit_compile)
    return [job.size is not None and (job.is16, job.size) in chosen for job in jobs]


def _xla():
    """`tf_histeq._xla`, imported when a run needs it (after TensorFlow, quietly: `runtime.import_tensorflow`)."""
    runtime.import_tensorflow()
    return importlib.import_module("tf_histeq._xla")


def _static_key(job: Job, compiled: bool) -> tuple | None:
    """`(is16, size, channels, out_fmt)` of a job whose image is known before decoding and runs compiled."""
    if compiled and len(job.channels) == 1:
        return job.is16, job.size, job.channels[0], job.out_fmt
    return None


def order(jobs: list[Job], jit_compile=_options.JIT_COMPILE) -> list[Job]:
    """`jobs` with those that `build` runs through one static pipeline side by side (a stable sort).

    Jobs of one size, bit depth, channel count and output format that run
    compiled (`runs_compiled`) come first, group by group in order of first
    appearance; the others keep their order, after them.
    """
    keys = [_static_key(job, xla) for job, xla in zip(jobs, runs_compiled(jobs, jit_compile=jit_compile), strict=True)]
    first = {}
    for key in keys:
        if key is not None:
            first.setdefault(key, len(first))
    rank = [first[key] if key is not None else len(first) for key in keys]
    return [job for _, job in sorted(zip(rank, jobs, strict=True), key=lambda pair: pair[0])]


def build(jobs: list[Job], op, kwargs: dict, jpeg_quality: int, service: str | None = None):
    """`tf.data` pipeline: read → decode → equalize (→ JPEG), in parallel and in order.

    Each element is `(index, payload, error, pixels)`: for JPEG outputs the
    encoded file, for PNG and BMP outputs the equalized pixels as a serialized
    tensor (`tf.io.parse_tensor`), which the caller encodes (`files.encode_png`,
    `files.encode_bmp`); `pixels` is height × width. Errors known while tracing
    (an option that does not fit the image, e.g. `channels="luminance"` on a gray
    image, or JPEG output of an image with alpha) come back as the `error` string
    of that element; a file that fails to decode raises for its element only, and
    the iterator goes on with the next one (see `results`). The op runs
    XLA-compiled for the image sizes that repeat enough (`runs_compiled`), as a
    graph for the others; both give the same pixels. Locally, each run of
    consecutive jobs whose size, bit depth, channels and output format are
    known from their headers and that run compiled (`order` puts them side by
    side) gets a pipeline of its own with static shapes and no branches: the
    compiled op runs at its full speed there, where a `tf.cond` or
    `tf.switch_case` around it in a `tf.data` function halves it.

    With `service` (a dispatcher address), the map runs on the tf.data service's
    workers: each file on one of them (`"distributed_epoch"`, dynamic sharding of
    the file list), read by its absolute path. Elements come back in any order,
    and one that fails on a worker is dropped there (`ignore_errors`), so that
    one bad file does not end the job; `service.results` redoes the missing ones
    here.

    Files are decoded as `decode_op` does, with what their headers say beyond
    the decoders (`files.inspect`: a second read of each file's headers, about
    0.1 ms): transparency, BMP bit masks, EXIF orientation. That travels as an
    int32 vector in the elements of a part only where some file of the part
    needs it, so a folder of plain files runs the graph it ran before.
    """
    # Trace the op only for the (bit depth, channels) pairs the headers allow, and under XLA only
    # where a job needs it: each costs a trace.
    kwargs = dict(kwargs)
    jit_compile = kwargs.pop("jit_compile", _options.JIT_COMPILE)
    runner = _xla().JitRunner(op, kwargs, jit_compile)
    compiled = runs_compiled(jobs, runner)
    fixes = [_inspect(job) for job in jobs]
    expected = {(job.is16, c) for job in jobs for c in job.channels}
    expected_xla = {(job.is16, c) for job, xla in zip(jobs, compiled, strict=True) if xla for c in job.channels}

    def op_xla(image):
        return runner.run(image, xla=True)

    def failure(message: str):
        return tf.constant(b""), tf.constant(message)

    def encoders(out, channels: int, dtype):
        def raw():
            return tf.io.serialize_tensor(out), tf.constant("")

        def jpeg():
            if dtype != tf.uint8:
                return failure("JPEG holds 8-bit images only; use --format png")
            if channels not in (1, 3):
                return failure("JPEG has no alpha channel; use --format png")
            return tf.io.encode_jpeg(out, quality=jpeg_quality), tf.constant("")

        def bmp():
            if dtype != tf.uint8:
                return failure("BMP holds 8-bit images only; use --format png")
            if channels == 2:
                return failure("BMP cannot store gray + alpha; use --format png")
            return raw()

        return [raw, jpeg, bmp]

    def per_channels(image, fmt, xla, dtype):
        def branch(channels: int):
            def run():
                key = (dtype == tf.uint16, channels)
                if key not in expected:
                    return failure(f"decoded to {channels} channels, which its file header did not announce")
                fixed = tf.ensure_shape(image, [None, None, channels])
                try:
                    if key in expected_xla:
                        out = tf.cond(xla, lambda: op_xla(fixed), lambda: op(fixed, **kwargs))
                    else:
                        out = op(fixed, **kwargs)
                except (TypeError, ValueError) as err:  # raised while tracing: this kind of image cannot be done
                    return failure(str(err))
                return tf.switch_case(fmt, encoders(out, channels, dtype))

            return run

        channels = tf.shape(image)[-1]
        return tf.switch_case(channels - 1, [branch(c) for c in (1, 2, 3, 4)])

    def process(index, path, is16, fmt, xla, vector=None, *, jpeg=None):
        data = tf.io.read_file(path)

        def decode8():
            image = decode_op(data, False, vector, jpeg=jpeg)
            return per_channels(image, fmt, xla, tf.uint8), tf.cast(tf.reduce_prod(tf.shape(image)[:2]), tf.int64)

        def decode16():
            image = decode_op(data, True, vector)
            return per_channels(image, fmt, xla, tf.uint16), tf.cast(tf.reduce_prod(tf.shape(image)[:2]), tf.int64)

        (payload, error), pixels = tf.cond(is16, decode16, decode8)
        return index, payload, error, pixels

    def static(key):
        is16, (height, width), channels, out_fmt = key
        dtype = tf.uint16 if is16 else tf.uint8

        def process_static(index, path, vector=None, *, jpeg=None):
            image = decode_op(tf.io.read_file(path), is16, vector, jpeg=jpeg)
            image = tf.ensure_shape(image, [height, width, channels])  # a header that lied fails here
            try:
                out = op_xla(image)
            except (TypeError, ValueError) as err:
                payload, error = failure(str(err))
            else:
                payload, error = encoders(out, channels, dtype)[_FORMAT_CODE[out_fmt]]()
            return index, payload, error, tf.constant(height * width, tf.int64)

        return process_static

    def pipeline(first: int, last: int, key):
        part = jobs[first:last]
        # As bytes: a name that is not UTF-8 (Latin-1 `caf\xe9.png`) reaches the file system unchanged.
        sources = tf.constant([os.fsencode(os.path.abspath(job.source) if service else job.source) for job in part])
        indices = tf.range(first, last, dtype=tf.int32)
        # What the headers say beyond the decoders, as a tensor only where some file of the part needs it.
        vectors = (
            ()
            if all(d.identity for d in fixes[first:last])
            else (tf.constant([d.vector() for d in fixes[first:last]], tf.int32),)
        )
        if key is not None:
            dataset, function = tf.data.Dataset.from_tensor_slices((indices, sources, *vectors)), static(key)
        else:
            flags = (
                tf.constant([job.is16 for job in part]),
                tf.constant([_FORMAT_CODE[job.out_fmt] for job in part], tf.int32),
                tf.constant(compiled[first:last], tf.bool),
            )
            dataset, function = tf.data.Dataset.from_tensor_slices((indices, sources, *flags, *vectors)), process
        kinds = {job.fmt == "jpeg" for job in part}  # a part of JPEGs only, or of none, needs no test of each file
        jpeg = kinds.pop() if len(kinds) == 1 else None
        # Plain Python control flow only: AutoGraph has nothing to convert, and skipping it saves seconds.
        function = tf.autograph.experimental.do_not_convert(functools.partial(function, jpeg=jpeg))
        return dataset.map(function, num_parallel_calls=tf.data.AUTOTUNE, deterministic=service is None)

    # Runs of consecutive jobs with one static key (None: the general pipeline); one run for the service.
    keys = [None if service else _static_key(job, xla) for job, xla in zip(jobs, compiled, strict=True)]
    starts = [i for i in range(len(jobs)) if i == 0 or keys[i] != keys[i - 1]]
    parts = [pipeline(a, b, keys[a]) for a, b in zip(starts, [*starts[1:], len(jobs)], strict=True)]
    dataset = parts[0]
    for part in parts[1:]:
        dataset = dataset.concatenate(part)
    if service:
        dataset = dataset.ignore_errors()
        dataset = dataset.apply(tf.data.experimental.service.distribute("distributed_epoch", service))
    return dataset.prefetch(tf.data.AUTOTUNE)


def results(dataset, count: int, paths: list[str] | None = None):
    """Yield `(index, payload, error, pixels)` for every element, errors included, in order.

    A decode error surfaces as an exception from the iterator for that element
    only; deterministic order says which element it was, and iteration goes on.
    `paths` (the elements' files) turn read errors into `cannot read the file (...)`.
    """
    iterator = iter(dataset)
    expected = 0
    while expected < count:
        try:
            index, payload, error, pixels = next(iterator)
        except StopIteration:
            break
        except tf.errors.OpError as err:
            yield expected, None, reason(err, paths[expected] if paths else None), 0
            expected += 1
            continue
        index = int(index)
        while expected < index:  # never seen in practice: an element lost without an error
            yield expected, None, "no result from the pipeline", 0
            expected += 1
        message = error.numpy().decode("utf-8", "replace")
        yield index, payload.numpy(), message or None, int(pixels)
        expected = index + 1
    while expected < count:
        yield expected, None, "no result from the pipeline", 0
        expected += 1


def _inspect(job: Job) -> decoding.Decoding:
    """`files.inspect` of a job's file; nothing to apply if it cannot be read now (the pipeline reports that)."""
    try:
        return files.inspect(job.source, job.fmt)
    except (OSError, ValueError):
        return decoding.Decoding()


def decode_op(data, is16: bool, vector=None, *, jpeg: bool | None = None):
    """Decode an image file's bytes (a string tensor) completely into a `(H, W, C)` tensor.

    16-bit PNGs (`is16`, from `files.sniff`) as uint16, everything else as uint8:
    PNG, JPEG (with `JPEG_DCT_METHOD`, as OpenCV and Pillow decode it), BMP, and
    the first frame of a GIF. `vector`, the file's `decoding.Decoding.vector`
    (an int32 tensor), adds what the decoders leave out (transparency, BMP bit
    masks, EXIF orientation); None adds nothing. `jpeg` says whether the file
    is a JPEG, if known; None tests its signature in the graph.
    """

    def jpeg_image():
        return tf.io.decode_jpeg(data, channels=0, dct_method=JPEG_DCT_METHOD)

    def other_image():
        return tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)

    if is16:
        image = tf.io.decode_png(data, channels=0, dtype=tf.uint16)
    elif jpeg is None:
        image = tf.cond(tf.equal(tf.strings.substr(data, 0, 3), b"\xff\xd8\xff"), jpeg_image, other_image)
    else:
        image = jpeg_image() if jpeg else other_image()
    return image if vector is None else decoding.apply(data, image, vector)


def decode(data: bytes, is16: bool):
    """Decode an image file's bytes completely (16-bit PNGs as uint16) into a `(H, W, C)` array, as `build` does."""
    fmt = files.format_of(data)
    found = decoding.inspect(fmt, decoding.bytes_reader(data)) if fmt else decoding.Decoding()
    vector = None if found.identity else tf.constant(found.vector(), tf.int32)
    return decode_op(data, is16, vector, jpeg=fmt == "jpeg").numpy()
