"""The terminal side of a run: the program name in messages, the progress bar, Ctrl-C and other stop signals."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

PROG = "tf-histeq"


class Progress:
    """Progress of a run on stderr: a live `rich` bar on a terminal, nothing elsewhere.

    On a terminal that redraws in place (as `rich` decides: stderr is a TTY, not
    a dumb terminal) the bar shows the images done of the total, the percentage,
    the rate in images and megapixels per second, and the time left; per-file
    messages print above it. Anywhere else (a log file, a pipe, CI) nothing is
    drawn, so only the per-file messages and the final summary appear.

    Args:
        total: The number of images of the run.
        console: A `rich.console.Console`; default: one on `sys.stderr`.
    """

    def __init__(self, total: int, console=None):
        from rich import progress
        from rich.console import Console

        self.console = console if console is not None else Console(stderr=True)
        self.done = self.pixels = 0
        self._start = time.perf_counter()
        self._bar = None
        if total > 0 and self.console.is_interactive:
            self._bar = progress.Progress(
                progress.TextColumn(f"{PROG}:"),
                progress.BarColumn(),
                progress.MofNCompleteColumn(),
                progress.TextColumn("images"),
                progress.TaskProgressColumn(),
                progress.TextColumn("{task.fields[rate]}"),
                progress.TimeRemainingColumn(),
                progress.TextColumn("left"),
                console=self.console,
            )
            self._task = self._bar.add_task("", total=total, rate="")
            self._bar.start()

    def advance(self, pixels: int = 0) -> None:
        """Count one image of `pixels` pixels (height × width) done."""
        self.done += 1
        self.pixels += pixels
        if self._bar is not None:
            elapsed = max(time.perf_counter() - self._start, 1e-9)
            rate = f"{self.done / elapsed:.1f} img/s, {self.pixels / 1e6 / elapsed:.1f} MP/s"
            self._bar.update(self._task, advance=1, rate=rate)

    def message(self, text: str) -> None:
        """Print a line (a file's error) on stderr, above the bar if there is one."""
        if self._bar is not None:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        """Stop redrawing; the bar's last state stays on screen."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


# The signals that stop a run after the file in hand: Ctrl-C, and what `timeout`, `kill`, container
# runtimes, schedulers and CI send (SIGTERM), or a closed terminal (SIGHUP). Exit status: 128 + number.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupt:
    """SIGINT (Ctrl-C), SIGTERM or SIGHUP while files are processed: the first stops the run after the file in hand.

    The handler only records the request (the loop stops at the next file
    boundary, so no write is cut short, and no exception is raised inside
    TensorFlow's code, where one can get lost); a second signal raises
    `KeyboardInterrupt` at once (the write in hand removes its temporary file).
    Installed only in the main thread and over the default handlers (Python's
    for SIGINT, the system's for the others), so an embedding program's own
    handler is kept, and so is an ignored signal (SIGINT and SIGHUP under
    `nohup`, a background job of a script). `signum` is the first signal
    received, or None.
    """

    def __init__(self):
        self.signum = None
        self._previous = {}

    @property
    def requested(self) -> bool:
        """True once a stop signal has come."""
        return self.signum is not None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
                if signal.getsignal(signum) is default:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.signum = signum
        if signum == signal.SIGINT:
            text = "stopping after the file in hand (Ctrl-C again stops at once)"
        else:
            text = (
                f"{signal.Signals(signum).name} received: stopping after the file in hand (a second one stops at once)"
            )
        with contextlib.suppress(OSError):  # not print(): the handler may run in the middle of another write
            os.write(2, f"\n{PROG}: {text}\n".encode())

    def check(self) -> None:
        """Raise `KeyboardInterrupt` if a stop signal came since the run started."""
        if self.requested:
            raise KeyboardInterrupt
