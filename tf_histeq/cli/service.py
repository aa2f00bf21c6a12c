"""`--data-service grpc://HOST:PORT`: run the pipeline's map on the workers of a `tf.data` service.

The workers (TensorFlow's own `tf.data.experimental.service` servers; they need
TensorFlow only, not tf_histeq) read, decode and equalize; everything else stays
here. Files the service does not return are redone by the local pipeline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import re
import socket
import sys
import threading
import time

from tf_histeq.cli import pipeline
from tf_histeq.cli.files import Job, UsageError
from tf_histeq.cli.runtime import tf
from tf_histeq.cli.terminal import PROG, Interrupt

SERVICE_WAIT_NOTE_S = 30.0  # say so when the tf.data service has given nothing for this long


def address(url: str | None) -> tuple[str, int] | None:
    """Check `--data-service grpc://HOST:PORT`; return `(host, port)`, or None without the option.

    Raises:
        UsageError: If `url` is not of that form.
    """
    if url is None:
        return None
    match = re.fullmatch(r"grpc://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})", url)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise UsageError(f"--data-service must be grpc://HOST:PORT, the address of a tf.data dispatcher; got {url!r}")
    return match.group(1).strip("[]"), int(match.group(2))


def check_reachable(url: str, host_port: tuple[str, int]) -> None:
    """Refuse a dispatcher address that nothing listens on (tf.data would retry for ever).

    Raises:
        UsageError: If no connection can be opened to `host_port`.
    """
    try:
        socket.create_connection(host_port, timeout=5).close()
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise UsageError(
            f"cannot reach the tf.data service dispatcher at {url} ({reason}); start one, or leave out --data-service"
        ) from None


@dataclasses.dataclass
class Stats:
    """What the service did in a run, for the summary."""

    done_there: int = 0  # results that came from the service's workers
    redone_here: int = 0  # files that did not come back and succeeded here
    failure: str | None = None  # why the service stopped answering, if it did


def _service_errors() -> tuple[type[Exception], ...]:
    """The errors of a service that stopped or cannot be reached, as its client raises them.

    TensorFlow's client retries the transient ones (unavailable, cancelled,
    aborted) by itself, and gives up with them, or with a deadline, once the
    dispatcher or a worker is gone for good; a dispatcher or worker that
    restarted without its state no longer knows the job or task (not found).
    Anything else is a bug, and propagates.
    """
    errors = tf.errors
    return (
        errors.UnavailableError,
        errors.DeadlineExceededError,
        errors.CancelledError,
        errors.AbortedError,
        errors.NotFoundError,
    )


_END = object()


@dataclasses.dataclass
class _Raised:
    error: BaseException  # raised by the reader thread; raised again by the consumer


def results(jobs: list[Job], op, kwargs: dict, jpeg_quality: int, url: str, stats: Stats, interrupt: Interrupt):
    """Yield `(index, payload, error, pixels)` for every job: first from the tf.data service, in any order.

    A thread reads the service's results (its `GetNext` may block for as long
    as the dispatcher has no worker, and would not let Ctrl-C through); this
    generator waits for them in short steps, so SIGINT stops it at once.
    Files that the service did not return (a file that failed to decode, or one
    its workers could not read, or work lost with a worker) are then run through
    the local pipeline, which gives their outputs or the local run's error message.

    Raises:
        Exception: Whatever the reader raised other than the errors of a
            stopped or unreachable service (which are recorded in `stats`).
    """
    dataset = pipeline.build(jobs, op, kwargs, jpeg_quality, service=url)
    stopped_errors = _service_errors()
    items: queue.Queue = queue.Queue(maxsize=16)
    stop = threading.Event()

    def put(item) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                items.put(item, timeout=0.1)
                return

    def read() -> None:
        try:
            for index, payload, error, pixels in dataset:
                put((int(index), payload.numpy(), error.numpy().decode("utf-8", "replace") or None, int(pixels)))
                if stop.is_set():
                    return
        except stopped_errors as err:
            stats.failure = pipeline.reason(err)
        except BaseException as err:  # a bug: raised again in the consumer's thread
            put(_Raised(err))
            return
        put(_END)

    reader = threading.Thread(target=read, name="tf-histeq-data-service", daemon=True)
    reader.start()
    done: set[int] = set()
    started, noted = time.monotonic(), False
    try:
        while True:
            interrupt.check()
            try:
                item = items.get(timeout=0.1)
            except queue.Empty:
                if not done and not noted and time.monotonic() - started >= SERVICE_WAIT_NOTE_S:
                    noted = True
                    print(
                        f"{PROG}: note: nothing from the tf.data service at {url} after "
                        f"{SERVICE_WAIT_NOTE_S:g} s; waiting for a worker to register with its dispatcher "
                        "(Ctrl-C stops)",
                        file=sys.stderr,
                        flush=True,
                    )
                continue
            if item is _END:
                break
            if isinstance(item, _Raised):
                raise item.error
            index = item[0]
            if index in done or not 0 <= index < len(jobs):  # at most once, but do not trust it blindly
                continue
            done.add(index)
            stats.done_there += 1
            yield item
    finally:
        stop.set()
    missing = [i for i in range(len(jobs)) if i not in done]
    if missing:
        here = [jobs[i] for i in missing]
        local = pipeline.build(here, op, kwargs, jpeg_quality)
        for k, payload, error, pixels in pipeline.results(local, len(here), [job.source for job in here]):
            if error is None:
                stats.redone_here += 1
            yield missing[k], payload, error, pixels
