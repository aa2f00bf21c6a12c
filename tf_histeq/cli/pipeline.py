"""The `tf.data` pipeline of `tf-histeq equalize|clahe`: read → decode → equalize, in parallel.

TensorFlow is imported here, when a run needs it (`import_tensorflow`), never
for `--help` or a usage error.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys

from tf_histeq.cli.files import Job

_FORMAT_CODE = {"png": 0, "jpeg": 1, "bmp": 2}


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence file descriptor 2 (TensorFlow's C++ start-up log lines) for the duration.

    Only when the user has not asked for C++ logs by setting TF_CPP_MIN_LOG_LEVEL
    below 3 themselves. Python exceptions are unaffected: they print later.
    """
    level = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = None
    try:
        if level == "3":
            sys.stderr.flush()
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
    except (OSError, ValueError):
        saved = None
    try:
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow():
    """Import TensorFlow without its C++ start-up log lines; return the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with _quiet_native_stderr():
        return importlib.import_module("tensorflow")


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


def build(tf, jobs: list[Job], op, kwargs: dict, jpeg_quality: int, service: str | None = None):
    """`tf.data` pipeline: read → decode → equalize (→ JPEG), in parallel and in order.

    Each element is `(index, payload, error, pixels)`: for JPEG outputs the
    encoded file, for PNG and BMP outputs the equalized pixels as a serialized
    tensor (`tf.io.parse_tensor`), which the caller encodes (`files.encode_png`,
    `files.encode_bmp`); `pixels` is height × width. Errors known while tracing
    (an option that does not fit the image, e.g. `channels="luminance"` on a gray
    image, or JPEG output of an image with alpha) come back as the `error` string
    of that element; a file that fails to decode raises for its element only, and
    the iterator goes on with the next one (see `results`).

    With `service` (a dispatcher address), the map runs on the tf.data service's
    workers: each file on one of them (`"distributed_epoch"`, dynamic sharding of
    the file list), read by its absolute path. Elements come back in any order,
    and one that fails on a worker is dropped there (`ignore_errors`), so that
    one bad file does not end the job; `service.results` redoes the missing ones
    here.
    """
    # Trace the op only for the (bit depth, channels) pairs the headers allow: each costs a trace.
    expected = {(job.is16, c) for job in jobs for c in job.channels}

    def failure(message: str):
        return tf.constant(b""), tf.constant(message)

    def encoders(out, channels: int, dtype):
        def pixels():
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
            return pixels()

        return [pixels, jpeg, bmp]

    def per_channels(image, fmt, dtype):
        def branch(channels: int):
            def run():
                if (dtype == tf.uint16, channels) not in expected:
                    return failure(f"decoded to {channels} channels, which its file header did not announce")
                fixed = tf.ensure_shape(image, [None, None, channels])
                try:
                    out = op(fixed, **kwargs)
                except (TypeError, ValueError) as err:  # raised while tracing: this kind of image cannot be done
                    return failure(str(err))
                return tf.switch_case(fmt, encoders(out, channels, dtype))

            return run

        channels = tf.shape(image)[-1]
        return tf.switch_case(channels - 1, [branch(c) for c in (1, 2, 3, 4)])

    def process(index, path, is16, fmt):
        data = tf.io.read_file(path)

        def decode8():
            image = tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)
            return per_channels(image, fmt, tf.uint8), tf.cast(tf.reduce_prod(tf.shape(image)[:2]), tf.int64)

        def decode16():
            image = tf.io.decode_png(data, channels=0, dtype=tf.uint16)
            return per_channels(image, fmt, tf.uint16), tf.cast(tf.reduce_prod(tf.shape(image)[:2]), tf.int64)

        (payload, error), pixels = tf.cond(is16, decode16, decode8)
        return index, payload, error, pixels

    dataset = tf.data.Dataset.from_tensor_slices(
        (
            tf.range(len(jobs), dtype=tf.int32),
            tf.constant([os.path.abspath(job.source) if service else job.source for job in jobs]),
            tf.constant([job.is16 for job in jobs]),
            tf.constant([_FORMAT_CODE[job.out_fmt] for job in jobs], tf.int32),
        )
    )
    # Plain Python control flow only: AutoGraph has nothing to convert, and skipping it saves seconds.
    process = tf.autograph.experimental.do_not_convert(process)
    dataset = dataset.map(process, num_parallel_calls=tf.data.AUTOTUNE, deterministic=service is None)
    if service:
        dataset = dataset.ignore_errors()
        dataset = dataset.apply(tf.data.experimental.service.distribute("distributed_epoch", service))
    return dataset.prefetch(tf.data.AUTOTUNE)


def results(tf, dataset, count: int, paths: list[str] | None = None):
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


def decode(tf, data: bytes, is16: bool):
    """Decode an image file's bytes completely (16-bit PNGs as uint16) into a `(H, W, C)` array."""
    if is16:
        return tf.io.decode_png(data, channels=0, dtype=tf.uint16).numpy()
    return tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False).numpy()
