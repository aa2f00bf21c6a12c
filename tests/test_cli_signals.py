"""The CLI stopped by SIGTERM, SIGHUP and kill -9 mid-run: complete files only, and a rerun that cleans up.

Like SIGINT (`tests/test_cli_faults.py`): SIGTERM (sent by `timeout`, `kill`,
containers, schedulers, CI) and SIGHUP (a closed terminal) stop the run after
the file in hand with exit status 128 + the signal's number; a second one stops
it at once, mid-write, without leaving a partial file. kill -9 cannot be
handled: it leaves the temporary file of the write in hand, which the next run
removes and reports. (A second signal raises the same `KeyboardInterrupt` as a
second SIGINT, tested there mid-write.)
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.test_cli_faults import (
    ENV,
    ROOT,
    SLOW_DISK_CLI,
    _assert_outputs_complete,
    _main,
    _make_inputs,
    _stop,
    _wait_for,
)
from tf_histeq.cli import terminal, writing

pytestmark = pytest.mark.slow  # each test runs the CLI in a fresh process

# The child gets the default actions of SIGTERM and SIGHUP, as a command started from a shell does,
# even when this test run was started with them ignored (nohup), which it would otherwise inherit.
DEFAULT_SIGNALS = "import signal\nfor s in (signal.SIGTERM, signal.SIGHUP):\n    signal.signal(s, signal.SIG_DFL)\n"


def _start(argv, pause: float) -> subprocess.Popen:
    command = [sys.executable, "-c", DEFAULT_SIGNALS + SLOW_DISK_CLI, *map(str, argv)]
    env = {**ENV, "SLOW_WRITE_S": str(pause)}
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _done(out) -> list[str]:
    return sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.is_dir() else []


def _temporaries(out) -> list[str]:
    return sorted(p.name for p in out.iterdir() if writing.is_temp_name(p.name)) if out.is_dir() else []


@pytest.mark.parametrize(
    ("signum", "count", "pause"),
    [
        pytest.param(signal.SIGTERM, 1, 0.04, id="sigterm-stops-after-the-file-in-hand"),
        pytest.param(signal.SIGHUP, 1, 0.04, id="sighup-stops-after-the-file-in-hand"),
    ],
)
def test_sigterm_and_sighup_stop_cleanly_with_their_exit_status(tmp_path, capsys, signum, count, pause):
    src, out = tmp_path / "in", tmp_path / "out"
    names = _make_inputs(src, count=40, size=(64, 80))
    process = _start(["equalize", src, "-o", out], pause)
    try:
        _wait_for(lambda: bool(_done(out)), process)
        for _ in range(count):
            time.sleep(0.1)  # the second one lands in the pause of a write
            process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        _stop(process)

    name = signal.Signals(signum).name
    assert process.returncode == 128 + signum, stderr
    done = _done(out)
    assert 0 < len(done) < len(names)
    assert f"tf-histeq: {name} received: stopping after the file in hand (a second one stops at once)" in stderr
    summary = [
        line for line in stderr.splitlines() if line.startswith(f"tf-histeq equalize_hist: interrupted by {name}: ")
    ]
    assert len(summary) == 1, stderr
    assert f"{len(done)} processed, 0 failed, {len(names) - len(done)} not done" in summary[0]
    assert stdout == ""
    _assert_outputs_complete(src, out, names)  # no temporary file, every output complete

    code, rerun, err = _main(["equalize", src, "-o", out], capsys)
    assert code == 0, err
    assert f"{len(names) - len(done)} processed, {len(done)} skipped (output exists), 0 failed" in rerun
    _assert_outputs_complete(src, out, names)


def test_kill_9_mid_write_leaves_a_temporary_file_that_the_next_run_removes(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    names = _make_inputs(src, count=8, size=(64, 80))
    process = _start(["equalize", src, "-o", out], 30.0)  # the first write pauses half-written
    try:
        _wait_for(lambda: bool(_temporaries(out)), process)
        process.kill()
        process.communicate(timeout=30)
    finally:
        _stop(process)
    left = _temporaries(out)
    # What kill -9 leaves: partial, hidden files (the paused one, and any other encoder thread's), no output.
    assert left and _done(out) == [], left
    time.sleep(writing.STALE_AFTER_S)  # older than a file another run has just created

    code, stdout, err = _main(["equalize", src, "-o", out], capsys)
    assert code == 0, err
    assert f"{len(names)} processed, 0 skipped (output exists), 0 failed" in stdout
    removed = f"tf-histeq: note: removed {len(left)} temporary file(s) left by an earlier run that was killed, e.g. "
    assert removed in err
    assert any(name in err for name in left)
    _assert_outputs_complete(src, out, names)


def test_an_ignored_sighup_stays_ignored_and_sigterm_comes_back_to_its_default():
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with terminal.Interrupt():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
