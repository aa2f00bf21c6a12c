"""The CLI on real-world folders: odd names, links, pipes, unreadable folders, bad `-o`, case, stale temporaries.

Each test is a reproducer of a way a run could lose or silently change a
user's file, or stop on one odd path: it builds the folder in a temporary
directory and checks that nothing is lost, nothing is written where it must not
be, and every path left out is reported. Tests run as root, so an unreadable
folder is simulated (`os.scandir` refusing it). The signal tests are in
`tests/test_cli_signals.py`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time

import numpy as np
import pytest

import tf_histeq
from tests._files import decode, write_png
from tests._files import run_cli as _run
from tests._references import assert_same_pixels
from tf_histeq import samples
from tf_histeq.cli import files, listing, main, writing


def _xray(path, seed: int = 0) -> np.ndarray:
    image = samples.chest_xray((24, 32), seed=seed)
    write_png(path, image)
    return image


def _assert_equalized(output, image) -> None:
    assert_same_pixels(decode(output), tf_histeq.equalize_hist(image[..., None]).numpy(), str(output))


# --------------------------------------------------------------------------- names that are not UTF-8


def test_a_latin1_file_name_is_read_processed_and_written_under_the_same_bytes(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 "café.png", as on old archives and SMB shares
    image = _xray(src / name)
    _xray(src / "plain.png", seed=1)
    (src / os.fsdecode(b"bad\xff.png")).write_bytes(b"not an image")
    code, stdout, err = _run(["equalize", src, "-o", out], capsys)
    assert code == 1, err
    assert "2 processed, 0 skipped (output exists), 1 failed" in stdout
    assert "bad\\xff.png: not a PNG, JPEG, BMP or GIF image" in err  # shown with the byte escaped
    assert sorted(os.listdir(os.fsencode(out))) == [b"caf\xe9.png", b"plain.png"]
    _assert_equalized(out / name, image)


def test_a_latin1_name_gets_its_compare_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    name = os.fsdecode(b"caf\xe9.png")
    image = _xray(src / name)
    code, stdout, err = _run(["equalize", src / name, "-o", out, "--compare"], capsys)
    assert code == 0, err
    assert sorted(os.listdir(os.fsencode(out))) == [b"caf\xe9.png", b"caf\xe9.png.compare.png"]
    _assert_equalized(out / name, image)


# --------------------------------------------------------------------------- links in the output folder


def test_a_link_in_the_output_folder_into_an_input_folder_is_never_written_through(tmp_path, capsys):
    """`OUT/sub -> ../IN/sub` and --overwrite: the original in IN/sub stays as it is."""
    src, out = tmp_path / "IN", tmp_path / "OUT"
    (src / "sub").mkdir(parents=True)
    top = _xray(src / "top.png")
    _xray(src / "sub" / "a.png", seed=1)
    original = (src / "sub" / "a.png").read_bytes()
    out.mkdir()
    (out / "sub").symlink_to("../IN/sub")
    code, stdout, err = _run(["equalize", src, "-r", "-o", out, "--overwrite"], capsys)
    assert code == 1, err
    assert "1 processed, 0 skipped (output exists), 1 failed" in stdout
    assert f"its output {str(out / 'sub' / 'a.png')!r} resolves to {str(src / 'sub' / 'a.png')!r}, inside the " in err
    assert (src / "sub" / "a.png").read_bytes() == original
    assert sorted(os.listdir(src / "sub")) == ["a.png"]
    _assert_equalized(out / "top.png", top)


def test_a_link_in_the_output_folder_onto_a_named_input_file_is_never_written_through(tmp_path, capsys):
    """The input is a file named on the command line; `OUT/keep -> ../photos` holds it."""
    photos, out = tmp_path / "photos", tmp_path / "OUT"
    photos.mkdir()
    _xray(photos / "a.png")
    original = (photos / "a.png").read_bytes()
    out.mkdir()
    (out / "keep").symlink_to("../photos")
    jobs = files.plan([(str(photos / "a.png"), "keep/a.png")], str(out), fmt=None, overwrite=True, compare=False)
    found = listing.collect([str(photos / "a.png")], False, str(out))
    listing.guard(jobs, found)
    assert jobs[0].error is not None and "on an input file" in jobs[0].error
    assert (photos / "a.png").read_bytes() == original


# --------------------------------------------------------------------------- what the listing leaves out


def test_every_path_left_out_is_reported_and_an_unreadable_folder_fails_the_run(tmp_path, capsys, monkeypatch):
    src, out, elsewhere = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    for folder in (src / "sub", src / "locked", src / ".cache", elsewhere):
        folder.mkdir(parents=True)
    image = _xray(src / "a.png")
    _xray(src / "sub" / "b.png", seed=1)
    _xray(elsewhere / "c.png", seed=2)
    (src / ".hidden.png").write_bytes(b"hidden")
    (src / "notes.txt").write_text("not an image")
    (src / "linked").symlink_to(elsewhere)  # a link to a folder
    (src / "link.png").symlink_to("a.png")  # a link to a file: an output of its own, named after the link
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(src / "locked"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code, stdout, err = _run(["equalize", src, "-r", "-o", out], capsys)
    assert code == 1, err
    assert "3 processed, 0 skipped (output exists), 1 failed" in stdout
    assert "; 4 path(s) left out of the listing (see above)" in stdout
    assert f"tf-histeq: {src / 'locked'}: cannot list the folder (Permission denied)" in err
    for path, why in [
        (".cache", "a hidden name"),
        (".hidden.png", "a hidden name"),
        ("linked", "a symbolic link to a folder (not followed; name it as an input)"),
        ("notes.txt", "not a PNG, JPEG, BMP, GIF, NIfTI or TIFF name"),
    ]:
        assert f"tf-histeq: left out: {src / path}: {why}" in err, err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["a.png", "link.png", "sub/b.png"]
    _assert_equalized(out / "link.png", image)

    monkeypatch.undo()
    code, stdout, err = _run(["equalize", src, "-o", out], capsys)  # without -r: the subfolders are named
    assert code == 0, err
    assert f"tf-histeq: left out: {src / 'sub'}: a subfolder (add --recursive to search it)" in err


def test_a_file_reached_twice_for_one_output_is_read_once_and_the_reference_pools_a_file_once(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _xray(src / "a.png")
    (src / "link.png").symlink_to("a.png")
    found = listing.collect([str(src), str(src / "a.png"), os.path.join(str(src), ".", "a.png")], False, str(out))
    assert [rel for _, rel in found.pairs] == ["a.png", "link.png"]
    assert found.skipped == [
        (os.path.join(str(src), ".", "a.png"), f"the same file as {str(src / 'a.png')!r}, read once")
    ]
    pooled = listing.collect([str(src)], False, str(out), per_file=True)
    assert [rel for _, rel in pooled.pairs] == ["a.png"]
    assert pooled.skipped == [(str(src / "link.png"), f"the same file as {str(src / 'a.png')!r}, read once")]


# --------------------------------------------------------------------------- a named pipe called *.png


def test_a_named_pipe_called_png_is_reported_and_never_opened(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    image = _xray(src / "a.png")
    os.mkfifo(src / "pipe.png")
    result = {}
    run = threading.Thread(target=lambda: result.update(code=main(["equalize", str(src), "-o", str(out)])))
    run.start()
    run.join(timeout=120)
    if run.is_alive():  # blocked opening the pipe: unblock it, then fail
        os.close(os.open(src / "pipe.png", os.O_WRONLY | os.O_NONBLOCK))
        run.join(timeout=30)
        pytest.fail("the run blocked on a named pipe")
    captured = capsys.readouterr()
    assert result["code"] == 1, captured.err
    assert "1 processed, 0 skipped (output exists), 1 failed" in captured.out
    assert f"tf-histeq: {src / 'pipe.png'}: not a plain file (a named pipe); left unopened" in captured.err
    _assert_equalized(out / "a.png", image)


# --------------------------------------------------------------------------- long names


@pytest.mark.parametrize("length", [228, 255])  # --compare failed from ~228 bytes, images from 242
def test_names_up_to_the_file_system_limit_are_written_with_their_compare_figure(tmp_path, capsys, length):
    pytest.importorskip("matplotlib")
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    name = "é" * ((length - 4) // 2) + "x" * ((length - 4) % 2) + ".png"  # 2-byte characters: cut between them
    assert len(name.encode()) == length
    image = _xray(src / name)
    code, stdout, err = _run(["equalize", src, "-o", out, "--compare"], capsys)
    assert code == 0, err
    figures = [n for n in os.listdir(out) if n != name]
    assert (out / name).exists() and len(figures) == 1, figures
    assert figures[0].endswith(".compare.png") and len(figures[0].encode()) <= 255
    assert (out / figures[0]).stat().st_size > 10_000
    _assert_equalized(out / name, image)


def test_temporary_and_figure_names_fit_the_limit_and_cut_between_characters(tmp_path):
    for name in ["a.png", "é" * 125 + ".png", "x" * 251 + ".png", os.fsdecode(b"\xe9" * 251 + b".png")]:
        temp = os.path.basename(writing.temp_name(str(tmp_path / name)))
        assert writing.is_temp_name(temp) and len(os.fsencode(temp)) <= 255, temp
        assert os.fsencode(temp)[:-4].decode("utf-8", "strict" if name.isascii() or "é" in name else "ignore")
        figure = os.path.basename(writing.fit_name(str(tmp_path / name), ".compare.png"))
        assert figure.endswith(".compare.png") and len(os.fsencode(figure)) <= 255
    assert not writing.is_temp_name(".a.png.abcd1234.tmp") and not writing.is_temp_name("a.png")


# --------------------------------------------------------------------------- bad -o


@pytest.mark.parametrize("case", ["empty", "under-a-file", "dangling-link", "under-a-dangling-link", "not-writable"])
def test_a_bad_output_path_is_a_usage_error(tmp_path, capsys, monkeypatch, case):
    src = tmp_path / "in"
    src.mkdir()
    _xray(src / "a.png")
    (tmp_path / "file").write_text("a file")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    output, message = {
        "empty": ("", "the output folder (-o) is empty"),
        "under-a-file": (tmp_path / "file" / "out", "is not a folder"),
        "dangling-link": (tmp_path / "dangling", "is a symbolic link to nothing"),
        "under-a-dangling-link": (tmp_path / "dangling" / "out", "is a symbolic link to nothing"),
        "not-writable": (tmp_path / "ro" / "out", "is not writable"),
    }[case]
    if case == "not-writable":  # root writes anywhere: the check is what is tested
        (tmp_path / "ro").mkdir()
        monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: os.fspath(path) != str(tmp_path / "ro"))
    code, stdout, err = _run(["equalize", src, "-o", output], capsys)
    assert code == 2, err
    assert "tf-histeq: error: " in err and message in err and "Traceback" not in err, err
    assert stdout == "" and not (tmp_path / "nowhere").exists()


# --------------------------------------------------------------------------- letter case


def test_outputs_differing_only_in_case_fail_on_a_disk_that_ignores_case(tmp_path, monkeypatch):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _xray(src / "Case.png")
    _xray(src / "case.png", seed=1)
    pairs = listing.collect([str(src)], False, str(out)).pairs
    probed = []

    def ignores_case(folder):
        probed.append(folder)
        return True

    monkeypatch.setattr(writing, "case_insensitive", ignores_case)
    jobs = files.plan(pairs, str(out), fmt=None, overwrite=False, compare=False)
    assert [job.error is None for job in jobs] == [True, False] and probed == [str(out)]
    assert jobs[1].error == (
        f"its output {str(out / 'case.png')!r} and {str(out / 'Case.png')!r} (for {str(src / 'Case.png')!r}) differ "
        "only in letter case, and the output disk ignores case: one would be lost; process them separately"
    )
    monkeypatch.undo()
    out.mkdir()
    (out / "probe").write_bytes(b"")
    disk_ignores_case = (out / "PROBE").exists()
    (out / "probe").unlink()
    assert writing.case_insensitive(str(out)) == disk_ignores_case
    jobs = files.plan(pairs, str(out), fmt=None, overwrite=False, compare=False)
    assert [job.error is None for job in jobs] == [True, not disk_ignores_case]
    assert os.listdir(out) == []  # the probe is gone


# --------------------------------------------------------------------------- durability and stale temporaries


def test_the_data_is_synced_before_the_file_takes_its_name(tmp_path, monkeypatch):
    events = []
    real_fsync, real_link = os.fsync, os.link
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "link", lambda src, dst: events.append("link") or real_link(src, dst))
    assert writing.write_atomic(str(tmp_path / "a.png"), b"data", overwrite=False)
    assert events == ["fsync", "link"]
    writing.sync_folders([str(tmp_path)])
    assert events == ["fsync", "link", "fsync"]


def test_stale_temporary_files_are_removed_and_nothing_else(tmp_path):
    old = time.time() - 60
    stale = tmp_path / ".tf-histeq-0123abcd-a.png.tmp"
    young = tmp_path / ".tf-histeq-4567cdef-b.png.tmp"
    held = tmp_path / ".tf-histeq-89abcdef-c.png.tmp"
    users = [tmp_path / ".a.png.1234abcd.tmp", tmp_path / "notes.tmp"]  # not ours: never touched
    for path in [stale, young, held, *users]:
        path.write_bytes(b"partial")
    for path in [stale, held, *users]:
        os.utime(path, (old, old))
    with open(held, "rb") as writer:  # a run that is still writing it holds its lock
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        removed, unsure = writing.remove_stale([str(tmp_path)])
    assert removed == [str(stale)] and unsure == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [young, held, *users])
