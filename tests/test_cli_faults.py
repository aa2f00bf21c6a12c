"""The CLI under faults: inputs that vanish mid-run, a full output disk, a service that stops, SIGINT, two runs at once.

Each test checks the same contract: no partial output (no temporary file left,
every output decodes completely and equals the function's result), a report
that names the file and the reason, and a rerun of the same command that
finishes the job (exit 0). Tests run as root, so `chmod 000` would not stop a
read: unreadable inputs are a folder or a dangling symlink in the file's place.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests._files import HalfWritten, decode, write_png
from tests._references import assert_same_pixels
from tests._service import local_service
from tests._subprocess import ROOT, python_env
from tf_histeq import samples
from tf_histeq.cli import files, main, pipeline, terminal, writing

# Every test here runs the CLI in subprocesses or against a data service: slow.
pytestmark = pytest.mark.slow

ENV = python_env()


def _main(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _make_inputs(folder, count: int = 6, size=(48, 64)) -> list[str]:
    """`count` images: gray and 12-bit X-rays, an RGBA scene and a JPEG; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        if i % 4 == 1:
            name = f"img{i:03d}_16.png"
            write_png(folder / name, samples.chest_xray(size, bits=12, seed=i))
        elif i % 4 == 2:
            name = f"img{i:03d}_rgba.png"
            scene = samples.color_scene(size, seed=i)
            write_png(folder / name, np.dstack([scene, np.full(size, 180, np.uint8)]))
        elif i % 4 == 3:
            name = f"img{i:03d}.jpg"
            (folder / name).write_bytes(tf.io.encode_jpeg(samples.color_scene(size, seed=i), quality=90).numpy())
        else:
            name = f"img{i:03d}.png"
            write_png(folder / name, samples.chest_xray(size, seed=i))
        names.append(name)
    return names


def _assert_outputs_complete(src, out, names, function=tf_histeq.equalize_hist) -> None:
    """No temporary file in `out`; each output there decodes completely and is the function's result."""
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert not leftovers, leftovers
    for path in sorted(out.rglob("*")):
        if not path.is_file() or path.name.endswith(".compare.png"):
            continue
        name = path.relative_to(out).as_posix()
        assert name in names, name
        expected = function(decode(src / name)).numpy()
        if name.endswith(".jpg"):  # the same pixels, encoded as the CLI does (quality 95)
            assert path.read_bytes() == tf.io.encode_jpeg(expected, quality=95).numpy(), name
        else:
            assert_same_pixels(decode(path), expected, name)


# --------------------------------------------------------------------------- inputs that vanish mid-run


@pytest.fixture(scope="module")
def service():
    """A tf.data service (dispatcher and one worker) in this process."""
    return local_service()


@pytest.mark.parametrize("mode", ["local", "data-service"])
def test_inputs_deleted_or_replaced_after_listing(tmp_path, capsys, monkeypatch, request, mode):
    src, out = tmp_path / "in", tmp_path / "out"
    names = _make_inputs(src)
    originals = {name: (src / name).read_bytes() for name in names}
    deleted, folder, dangling = names[0], names[2], names[3]  # gray PNG, RGBA PNG, JPEG
    real_plan = files.plan

    def plan_then_break(*args, **kwargs):  # the files are listed and sniffed; then they go
        jobs = real_plan(*args, **kwargs)
        (src / deleted).unlink()
        (src / folder).unlink()
        (src / folder).mkdir()
        (src / dangling).unlink()
        (src / dangling).symlink_to(tmp_path / "nowhere.jpg")
        return jobs

    extra = ["--data-service", request.getfixturevalue("service")] if mode == "data-service" else []
    monkeypatch.setattr(files, "plan", plan_then_break)
    code, stdout, err = _main(["equalize", src, "-o", out, *extra], capsys)
    assert code == 1, err
    assert "3 processed, 0 skipped (output exists), 3 failed" in stdout
    for name, reason in [
        (deleted, "No such file or directory"),
        (folder, "Is a directory"),
        (dangling, "No such file or directory"),
    ]:
        assert f"tf-histeq: {src / name}: cannot read the file ({reason})" in err, err
        assert not (out / name).exists()
    _assert_outputs_complete(src, out, names)

    monkeypatch.undo()
    (src / folder).rmdir()
    (src / dangling).unlink()
    for name in (deleted, folder, dangling):
        (src / name).write_bytes(originals[name])
    code, stdout, err = _main(["equalize", src, "-o", out, *extra], capsys)
    assert code == 0, err
    assert "3 processed, 3 skipped (output exists), 0 failed" in stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    _assert_outputs_complete(src, out, names)


def test_input_deleted_before_its_compare_figure_is_drawn(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    src, out = tmp_path / "in", tmp_path / "out"
    names = _make_inputs(src, count=2)
    gone = names[1]
    data = (src / gone).read_bytes()
    real_commit = writing.commit

    def write_then_delete(staged, **kwargs):  # the image is written; its source goes before the figure
        written = real_commit(staged, **kwargs)
        if os.path.basename(staged.path) == gone:
            (src / gone).unlink()
        return written

    monkeypatch.setattr(writing, "commit", write_then_delete)
    code, stdout, err = _main(["equalize", src, "-o", out, "--compare"], capsys)
    assert code == 1
    assert "1 processed, 0 skipped (output exists), 1 failed" in stdout
    message = (
        f"tf-histeq: {src / gone}: cannot read the file again for its --compare figure (No such file or directory)"
    )
    assert message in err, err
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, f"{names[0]}.compare.png"])

    monkeypatch.undo()
    (src / gone).write_bytes(data)
    _assert_outputs_complete(src, out, names)
    code, stdout, err = _main(["equalize", src, "-o", out, "--compare"], capsys)
    assert code == 0, err
    assert "1 processed, 1 skipped (output exists), 0 failed" in stdout  # the image kept, the figure drawn
    assert (out / f"{gone}.compare.png").stat().st_size > 10_000
    _assert_outputs_complete(src, out, names)


# --------------------------------------------------------------------------- a full output disk


def test_full_output_disk_leaves_no_partial_file_and_a_rerun_finishes(tmp_path, capsys, monkeypatch):
    src, out = tmp_path / "in", tmp_path / "out"
    names = _make_inputs(src)
    real_open, opened = open, []

    def fake_open(path, mode="r", *args, **kwargs):
        file = real_open(path, mode, *args, **kwargs)
        if "x" in mode:
            opened.append(path)
            if len(opened) > 2:  # the first two outputs fit
                return HalfWritten(file, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))  # a full disk
        return file

    monkeypatch.setattr(writing, "open", fake_open, raising=False)
    code, stdout, err = _main(["equalize", src, "-o", out], capsys)
    assert code == 1
    assert "2 processed, 0 skipped (output exists), 4 failed" in stdout
    assert err.count(": cannot write the output (No space left on device)") == 4, err
    assert "the output disk is full: 4 output(s) not written (no partial file is left); free some space" in err
    assert len(opened) == 6 and len(list(out.iterdir())) == 2
    _assert_outputs_complete(src, out, names)

    monkeypatch.undo()
    code, stdout, err = _main(["equalize", src, "-o", out], capsys)
    assert code == 0, err
    assert "4 processed, 2 skipped (output exists), 0 failed" in stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    _assert_outputs_complete(src, out, names)


# --------------------------------------------------------------------------- a tf.data service that stops, a bug


def _service_reader_raising(monkeypatch, error: Exception) -> None:
    """The service's results end with `error` before any element; the local pipeline stays as it is."""
    real_build = pipeline.build

    def build(jobs, op, kwargs, jpeg_quality, service=None):
        if service is None:
            return real_build(jobs, op, kwargs, jpeg_quality)

        def elements():
            raise error
            yield

        return elements()

    monkeypatch.setattr(pipeline, "build", build)


def test_a_service_that_stops_answering_is_reported_and_the_files_are_done_here(tmp_path, capsys, monkeypatch, service):
    src, out = tmp_path / "in", tmp_path / "out"
    names = _make_inputs(src, count=2)
    _service_reader_raising(monkeypatch, tf.errors.UnavailableError(None, None, "Socket closed"))
    code, stdout, err = _main(["equalize", src, "-o", out, "--data-service", service], capsys)
    assert code == 0, err
    assert "2 processed, 0 skipped (output exists), 0 failed" in stdout and "; 0 done on the tf.data service" in stdout
    assert "tf-histeq: note: the tf.data service stopped answering (Socket closed)" in err
    _assert_outputs_complete(src, out, names)


def test_a_bug_behind_the_service_is_raised_not_reported_as_a_stopped_service(tmp_path, capsys, monkeypatch, service):
    src, out = tmp_path / "in", tmp_path / "out"
    _make_inputs(src, count=2)
    _service_reader_raising(monkeypatch, tf.errors.InvalidArgumentError(None, None, "a bug in the pipeline"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="a bug in the pipeline"):
        main(["equalize", str(src), "-o", str(out), "--data-service", service])
    assert "stopped answering" not in capsys.readouterr().err
    assert not [p for p in out.iterdir() if not p.name.startswith(".")]


# --------------------------------------------------------------------------- SIGINT


# The CLI as a user runs it, on a slow disk: every write takes a while (half the data, a pause of
# SLOW_WRITE_S, the rest), so that a SIGINT lands while the run is in full swing, mid-write if it
# stops at once.
SLOW_DISK_CLI = textwrap.dedent(
    """
    import builtins, os, signal, sys, time
    from tf_histeq.cli import main, service, writing

    PAUSE = float(os.environ["SLOW_WRITE_S"])

    class Slow:
        def __init__(self, file):
            self.file = file
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.file.close()
        def fileno(self):
            return self.file.fileno()
        def flush(self):
            self.file.flush()
        def write(self, data):
            self.file.write(data[: len(data) // 2])
            self.file.flush()
            time.sleep(PAUSE)
            self.file.write(data[len(data) // 2 :])

    def slow_open(path, mode="r", *args, **kwargs):
        file = builtins.open(path, mode, *args, **kwargs)
        return Slow(file) if "x" in mode else file

    # SIGINT as an interactive shell hands it to a command, even when this test run was started with
    # SIGINT ignored (nohup, a background job of a script), which the child would otherwise inherit.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    writing.open = slow_open
    service.SERVICE_WAIT_NOTE_S = 0.2
    sys.exit(main(sys.argv[1:]))
    """
)


def _start(argv, pause: float) -> subprocess.Popen:
    command = [sys.executable, "-c", SLOW_DISK_CLI, *map(str, argv)]
    env = {**ENV, "SLOW_WRITE_S": str(pause)}
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, process, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None and not condition():
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be interrupted"
    assert condition(), f"timed out after {timeout} s"


def _stop(process) -> None:
    if process.poll() is None:
        process.kill()
        process.communicate(timeout=30)


@pytest.mark.parametrize(
    ("signals", "pause"),
    [pytest.param(1, 0.04, id="once-stops-after-the-file-in-hand"), pytest.param(2, 0.5, id="twice-stops-mid-write")],
)
def test_sigint_mid_run_leaves_complete_files_and_a_rerun_finishes(tmp_path, capsys, signals, pause):
    src, out = tmp_path / "in", tmp_path / "out"
    names = _make_inputs(src, count=40, size=(64, 80))
    process = _start(["equalize", src, "-o", out], pause)
    try:
        _wait_for(lambda: out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()), process)
        for _ in range(signals):
            time.sleep(0.1)  # the second one lands in the pause of a write
            process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        _stop(process)

    assert process.returncode == 130, stderr
    done = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert 0 < len(done) < len(names)
    assert "tf-histeq: stopping after the file in hand (Ctrl-C again stops at once)" in stderr
    summary = [line for line in stderr.splitlines() if line.startswith("tf-histeq equalize_hist: interrupted: ")]
    assert len(summary) == 1, stderr
    assert f"interrupted: {len(done)} processed, 0 failed, {len(names) - len(done)} not done" in summary[0]
    assert "no partial file is left, and the same command again does the rest" in summary[0]
    assert stdout == ""  # no summary of a finished run
    _assert_outputs_complete(src, out, names)

    code, rerun, err = _main(["equalize", src, "-o", out], capsys)
    assert code == 0, err
    assert f"{len(names) - len(done)} processed, {len(done)} skipped (output exists), 0 failed" in rerun
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    _assert_outputs_complete(src, out, names)


def test_sigint_while_the_data_service_has_no_worker_stops_at_once(tmp_path):
    """tf.data's GetNext blocks while no worker is registered; the CLI must still answer Ctrl-C."""
    target = local_service(workers=0)
    src, out = tmp_path / "in", tmp_path / "out"
    _make_inputs(src, count=2)
    process = _start(["equalize", src, "-o", out, "--data-service", target], 0.0)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)  # never blocks the test
    try:
        reader.start()
        _wait_for(lambda: any("waiting for a worker to register" in line for line in lines), process, timeout=60)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        stopped_in = time.monotonic() - started
        stdout = process.stdout.read()
        reader.join(timeout=10)
    finally:
        _stop(process)
    stderr = "".join(lines)
    assert process.returncode == 130, stderr
    assert stopped_in < 10
    assert "interrupted: 0 processed, 0 failed, 2 not done" in stderr
    assert stdout == "" and not any(out.iterdir())


def test_an_ignored_sigint_stays_ignored_and_the_default_one_comes_back():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup
    try:
        with terminal.Interrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with terminal.Interrupt():
            assert signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.default_int_handler)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------- two runs into one folder


# The CLI, started at a signal: TensorFlow is imported first, so that two runs begin their work together.
ON_SIGNAL_CLI = textwrap.dedent(
    """
    import os, sys, time
    from tf_histeq.cli import main, runtime

    ready, go = sys.argv[1:3]
    runtime.import_tensorflow()
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.002)
    sys.exit(main(sys.argv[3:]))
    """
)


@pytest.mark.slow  # two command lines, each importing TensorFlow
def test_two_runs_at_once_into_one_folder_write_each_output_once(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    names = _make_inputs(src, count=40, size=(64, 80))
    go = tmp_path / "go"
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                ON_SIGNAL_CLI,
                str(tmp_path / f"ready{i}"),
                str(go),
                "equalize",
                str(src),
                "-o",
                str(out),
            ],
            env=ENV,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        _wait_for(lambda: all((tmp_path / f"ready{i}").exists() for i in range(2)), runs[0])
        go.touch()
        results = [run.communicate(timeout=300) for run in runs]
    finally:
        for run in runs:
            _stop(run)
    counts = []
    for run, (stdout, stderr) in zip(runs, results, strict=True):
        assert run.returncode == 0, stderr
        match = re.search(r"(\d+) processed, (\d+) skipped \(output exists\), 0 failed", stdout)
        assert match, stdout
        counts.append((int(match[1]), int(match[2])))
    # Every file written by exactly one of the runs, and found done by the other.
    assert sum(processed for processed, _ in counts) == len(names), counts
    assert all(processed + skipped == len(names) for processed, skipped in counts), counts
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    _assert_outputs_complete(src, out, names)


def test_cleanup_helper_is_not_fooled_by_a_leftover_folder(tmp_path):
    """`_assert_outputs_complete` itself: it must notice a temporary file and a truncated output."""
    src, out = tmp_path / "in", tmp_path / "out"
    names = _make_inputs(src, count=1)
    out.mkdir()
    shutil.copy(src / names[0], out / f".{names[0]}.abcd1234.tmp")
    with pytest.raises(AssertionError, match=r"\.tmp"):
        _assert_outputs_complete(src, out, names)
    (out / f".{names[0]}.abcd1234.tmp").unlink()
    expected = tf_histeq.equalize_hist(decode(src / names[0])).numpy()
    data = tf.io.encode_png(expected).numpy()
    (out / names[0]).write_bytes(data[: len(data) // 2])
    with pytest.raises(tf.errors.InvalidArgumentError):
        _assert_outputs_complete(src, out, names)
    (out / names[0]).write_bytes(data)
    _assert_outputs_complete(src, out, names)
