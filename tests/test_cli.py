"""The `tf-histeq` command line: options, outputs (bit-exact), failures, no-clobber rules, demo.

Most tests call `main(argv)` in-process; a few run `python -m tf_histeq` as a
subprocess (each pays for importing TensorFlow, so they are kept few).
"""

from __future__ import annotations

import inspect
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests._files import HalfWritten, decode, write_png
from tf_histeq import ops, samples
from tf_histeq.cli import app, files, main, pipeline, terminal
from tf_histeq.cli import demo as cli_demo

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


# --------------------------------------------------------------------------- fixtures and helpers


def _expected(op, source, **kwargs) -> np.ndarray:
    """The function applied to the decoded input, as the CLI must reproduce it."""
    return op(decode(source), **kwargs).numpy()


def _assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    differing = int(np.count_nonzero(actual != expected))
    assert differing == 0, f"{differing} of {actual.size} samples differ"


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A folder of valid inputs: 8- and 16-bit PNG (gray, RGBA, RGB), JPEG, BMP and GIF in a subfolder."""
    root = tmp_path_factory.mktemp("good")
    xray = samples.chest_xray((48, 64), seed=1)
    scene = samples.color_scene((40, 56), seed=2)
    write_png(root / "xray.png", xray)
    write_png(root / "xray16.png", samples.chest_xray((48, 64), bits=12, seed=3))
    write_png(root / "rgba.png", np.dstack([scene, np.linspace(0, 255, 40 * 56).reshape(40, 56).astype(np.uint8)]))
    rgb16 = (scene.astype(np.uint16) * 16 + 5).astype(np.uint16)
    write_png(root / "rgb16.png", rgb16)
    (root / "scene.jpg").write_bytes(tf.io.encode_jpeg(scene, quality=90).numpy())
    (root / "notes.txt").write_text("not an image and not an image name: ignored in folders\n")
    sub = root / "sub"
    sub.mkdir()
    (sub / "scene.bmp").write_bytes(files.encode_bmp(scene))
    (sub / "gray.bmp").write_bytes(files.encode_bmp(xray[..., None]))
    return root


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, good):
    """Valid inputs plus a corrupt PNG, a truncated JPEG, a text file named .png and an empty file."""
    root = tmp_path_factory.mktemp("mixed")
    for name in ("xray.png", "xray16.png", "rgba.png", "scene.jpg"):
        (root / name).write_bytes((good / name).read_bytes())
    data = bytearray((good / "xray.png").read_bytes())
    data[60:70] = b"\x00" * 10  # inside IDAT: the CRC no longer matches
    (root / "corrupt.png").write_bytes(bytes(data))
    jpeg = (good / "scene.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (root / "text.png").write_text("this is not a PNG\n")
    (root / "empty.png").write_bytes(b"")
    return root


GOOD_FILES = ["rgb16.png", "rgba.png", "scene.jpg", "sub/gray.bmp", "sub/scene.bmp", "xray.png", "xray16.png"]


# --------------------------------------------------------------------------- parsing, help, usage errors


class TestParsing:
    def test_help_does_not_import_tensorflow(self):
        code = "import sys; from tf_histeq.cli import main; c = main(['--help']); print(c, 'tensorflow' in sys.modules)"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
        assert result.returncode == 0
        assert result.stdout.strip().splitlines()[-1] == "0 False"
        for command in ("demo", "equalize", "clahe", "bench"):
            assert command in result.stdout

    def test_version(self, capsys):
        code, out, _ = _run(["--version"], capsys)
        assert (code, out.strip()) == (0, f"tf-histeq {tf_histeq.__version__}")

    @pytest.mark.parametrize("command", ["equalize", "clahe", "demo"])
    def test_subcommand_help_names_every_option(self, command, capsys):
        code, out, _ = _run([command, "--help"], capsys)
        assert code == 0
        if command == "demo":
            assert "--output" in out and "tf_histeq_demo" in out
            return
        for option in (
            "--recursive",
            "--format",
            "--jpeg-quality",
            "--overwrite",
            "--compare",
            "--value-range",
            "--bins",
        ):
            assert option in out
        extra = (
            ("--method", "--channels") if command == "equalize" else ("--clip-limit", "--tile-grid-size", "--channels")
        )
        for option in extra:
            assert option in out

    def test_defaults_and_choices_match_the_functions(self):
        parser = app.build_parser()
        for command, op, skip in [("equalize", ops.equalize_hist, set()), ("clahe", ops.clahe, set())]:
            args = parser.parse_args([command, "in", "-o", "out"])
            for name, param in inspect.signature(op).parameters.items():
                if name in ("images", "mask") or name in skip:
                    continue
                value = getattr(args, name)
                assert (tuple(value) if isinstance(value, list) else value) == param.default, name

    @pytest.mark.parametrize(
        ("extra", "match"),
        [
            (["--clip-limit", "nan"], r"`clip_limit` must be a finite number.*Received: clip_limit=nan\."),
            (["--clip-limit", "inf"], r"Received: clip_limit=inf\."),
            (["--tile-grid-size", "0", "8"], r"`tile_grid_size` must be two positive ints.*\(0, 8\)"),
            (["--tile-grid-size", "8"], r"argument --tile-grid-size: expected 2 arguments"),
            (["--tile-grid-size", "8.5", "8"], r"invalid int value: '8\.5'"),
            (["--bins", "1"], r"`bins` must be an int in \[2, 65536\]\. Received: bins=1\."),
            (
                ["--value-range", "5", "1"],
                r"`value_range` must satisfy low < high\. Received: value_range=\(5\.0, 1\.0\)\.",
            ),
            (["--value-range", "nan", "1"], r"`value_range` must be two finite numbers"),
            (["--channels", "joint"], r"argument --channels: invalid choice: 'joint'"),
            (["--jpeg-quality", "101"], r"`jpeg_quality` must be an int in \[0, 100\]\. Received: jpeg_quality=101\."),
            (["--format", "tiff"], r"argument --format: invalid choice: 'tiff'"),
            (["--frobnicate"], r"unrecognized arguments: --frobnicate"),
        ],
        ids=lambda v: " ".join(v) if isinstance(v, list) else None,
    )
    def test_bad_clahe_options_exit_2_before_any_work(self, good, tmp_path, capsys, extra, match):
        out = tmp_path / "out"
        code, stdout, err = _run(["clahe", good, "-o", out, *extra], capsys)
        assert code == 2
        assert "tf-histeq: error: " in err
        assert re.search(match, err), err
        assert not out.exists() and stdout == ""

    @pytest.mark.parametrize(
        ("argv", "match"),
        [
            (["equalize", "{good}", "-o", "{out}", "--method", "cv2"], r"argument --method: invalid choice: 'cv2'"),
            (["equalize", "{good}"], r"the following arguments are required: -o/--output"),
            (["equalize", "{tmp}/missing.png", "-o", "{out}"], r"input '.*missing\.png' does not exist"),
            (["equalize", "{good}", "-o", "{good}"], r"is the input folder .* or inside it"),
            (["equalize", "{good}", "-o", "{good}/sub/out"], r"is the input folder .* or inside it"),
            (["equalize", "{good}/sub", "-o", "{good}"], r"input '.*sub' is inside the output folder"),
            (["equalize", "{good}/xray.png", "-o", "{good}"], r"input '.*xray\.png' is inside the output folder"),
            (["equalize", "{good}", "-o", "{good}/xray.png"], r"exists and is not a folder"),
            (["equalize", "{tmp}", "-o", "{out}"], r"no PNG, JPEG, BMP or GIF files in .* \(add --recursive"),
            (
                ["equalize", "{good}", "-o", "{out}", "--value-range", "0", "4095"],
                r"`value_range` must be two integers within the range of uint8",
            ),
            (
                ["equalize", "{good}/xray16.png", "-o", "{out}", "--bins", "70000"],
                r"`bins` must be an int in \[2, 65536\]",
            ),
            ([], r"the following arguments are required: COMMAND"),
            (["sharpen"], r"argument COMMAND: invalid choice: 'sharpen'"),
        ],
        ids=[
            "bad-method",
            "no-output",
            "missing-input",
            "output-is-input",
            "output-inside-input",
            "input-folder-inside-output",
            "input-file-inside-output",
            "output-is-a-file",
            "no-images",
            "value-range-vs-dtype",
            "too-many-bins",
            "no-command",
            "unknown-command",
        ],
    )
    def test_usage_errors_exit_2(self, good, tmp_path, capsys, argv, match):
        (tmp_path / "empty").mkdir()
        names = {"good": good, "out": tmp_path / "out", "tmp": tmp_path / "empty"}
        argv = [a.format(**names) for a in argv]
        before = sorted(p.relative_to(good).as_posix() for p in good.rglob("*"))
        code, stdout, err = _run(argv, capsys)
        assert code == 2, err
        assert "tf-histeq: error: " in err
        assert re.search(match, err), err
        assert not (tmp_path / "out").exists()
        assert sorted(p.relative_to(good).as_posix() for p in good.rglob("*")) == before


# --------------------------------------------------------------------------- outputs


class TestOutputs:
    @pytest.mark.parametrize("op_name", ["equalize", "clahe"])
    def test_folder_outputs_are_bit_exact_and_keep_structure_depth_and_format(self, good, tmp_path, capsys, op_name):
        out = tmp_path / "out"
        code, stdout, err = _run([op_name, good, "-o", out, "--recursive"], capsys)
        assert code == 0, err
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == GOOD_FILES
        assert "7 processed, 0 skipped (output exists), 0 failed" in stdout and "MP/s" in stdout
        op = ops.clahe if op_name == "clahe" else ops.equalize_hist
        for name in GOOD_FILES:
            expected = _expected(op, good / name)
            if name.endswith(".jpg"):  # the same pixels, encoded as the CLI does (quality 95)
                assert (out / name).read_bytes() == tf.io.encode_jpeg(expected, quality=95).numpy()
            else:
                _assert_same(decode(out / name), expected)
        assert (out / "xray16.png").read_bytes()[24] == 16  # still a 16-bit PNG
        assert decode(out / "rgba.png")[..., 3].tolist() == decode(good / "rgba.png")[..., 3].tolist()
        assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

    def test_without_recursive_subfolders_are_ignored(self, good, tmp_path, capsys):
        out = tmp_path / "out"
        code, _, _ = _run(["equalize", good, "-o", out], capsys)
        assert code == 0
        assert not (out / "sub").exists() and (out / "xray.png").exists()

    def test_bad_files_are_reported_with_path_and_reason_and_the_rest_is_done(self, mixed, tmp_path, capsys):
        out = tmp_path / "out"
        code, stdout, err = _run(["clahe", mixed, "-o", out, "--clip-limit", "3"], capsys)
        assert code == 1
        assert "4 processed, 0 skipped (output exists), 4 failed" in stdout
        reasons = {
            "corrupt.png": "Invalid PNG data",
            "truncated.jpg": "Invalid JPEG data",
            "text.png": "not a PNG, JPEG, BMP or GIF image (unknown file signature)",
            "empty.png": "the file is empty",
        }
        for name, reason in reasons.items():
            line = next((ln for ln in err.splitlines() if ln.startswith(f"tf-histeq: {mixed / name}: ")), None)
            assert line is not None and reason in line, err
            assert not (out / name).exists()
        for name in ("xray.png", "xray16.png", "rgba.png"):
            _assert_same(decode(out / name), _expected(ops.clahe, mixed / name, clip_limit=3.0))
        assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

    @pytest.mark.parametrize(
        ("op_name", "options", "kwargs", "names"),
        [
            ("equalize", ["--method", "pil"], {"method": "pil"}, ["xray.png", "rgba.png"]),
            ("equalize", ["--channels", "joint"], {"channels": "joint"}, ["rgba.png", "rgb16.png"]),
            ("equalize", ["--channels", "luminance"], {"channels": "luminance"}, ["rgba.png", "rgb16.png"]),
            ("equalize", ["--bins", "64"], {"bins": 64}, ["xray.png", "rgba.png"]),
            (
                "equalize",
                ["--value-range", "0", "4095", "--bins", "4096"],
                {"value_range": (0, 4095), "bins": 4096},
                ["xray16.png"],
            ),
            ("equalize", ["--value-range", "40", "200"], {"value_range": (40, 200)}, ["xray.png"]),
            ("clahe", ["--clip-limit", "0"], {"clip_limit": 0.0}, ["xray.png"]),
            (
                "clahe",
                ["--clip-limit", "5.5", "--tile-grid-size", "2", "3"],
                {"clip_limit": 5.5, "tile_grid_size": (2, 3)},
                ["xray.png", "rgba.png", "xray16.png"],
            ),
            ("clahe", ["--channels", "luminance"], {"channels": "luminance"}, ["rgba.png"]),
            (
                "clahe",
                ["--bins", "128", "--value-range", "10", "240"],
                {"bins": 128, "value_range": (10, 240)},
                ["xray.png"],
            ),
        ],
        ids=[
            "pil",
            "joint",
            "luminance",
            "bins",
            "12-bit",
            "value-range",
            "clip-0",
            "clip-grid",
            "clahe-luminance",
            "clahe-bins-range",
        ],
    )
    def test_every_option_is_passed_to_the_function(self, good, tmp_path, capsys, op_name, options, kwargs, names):
        out = tmp_path / "out"
        code, _, err = _run([op_name, *[good / n for n in names], "-o", out, *options], capsys)
        assert code == 0, err
        op = ops.clahe if op_name == "clahe" else ops.equalize_hist
        for name in names:
            _assert_same(decode(out / name), _expected(op, good / name, **kwargs))

    def test_options_that_do_not_fit_an_image_fail_that_image_only(self, good, tmp_path, capsys):
        out = tmp_path / "out"
        code, stdout, err = _run(
            ["equalize", good / "xray.png", good / "rgba.png", "-o", out, "--channels", "luminance"], capsys
        )
        assert code == 1
        assert "1 processed" in stdout and "1 failed" in stdout
        assert f"tf-histeq: {good / 'xray.png'}: `channels` must be 'per_channel' or 'joint'" in err
        assert (out / "rgba.png").exists() and not (out / "xray.png").exists()

    def test_format_conversions_and_jpeg_quality(self, good, tmp_path, capsys):
        out = tmp_path / "jpeg"
        names = [good / "xray.png", good / "sub" / "scene.bmp", good / "rgba.png", good / "xray16.png"]
        code, stdout, err = _run(["equalize", *names, "-o", out, "--format", "jpeg", "--jpeg-quality", "70"], capsys)
        assert code == 1
        for name in ("xray", "scene"):
            source = good / "xray.png" if name == "xray" else good / "sub" / "scene.bmp"
            expected = tf.io.encode_jpeg(_expected(ops.equalize_hist, source), quality=70).numpy()
            assert (out / f"{name}.jpg").read_bytes() == expected
        assert "rgba.png: JPEG has no alpha channel; use --format png" in err
        assert "xray16.png: a 16-bit image cannot be written as JPEG (8-bit only); use --format png" in err

        out = tmp_path / "bmp"
        code, _, err = _run(
            ["equalize", good / "xray.png", good / "rgba.png", good / "scene.jpg", "-o", out, "--format", "bmp"], capsys
        )
        assert code == 0, err
        for name, source in [("xray.bmp", "xray.png"), ("rgba.bmp", "rgba.png"), ("scene.bmp", "scene.jpg")]:
            _assert_same(decode(out / name), _expected(ops.equalize_hist, good / source))

        out = tmp_path / "png"
        code, _, err = _run(
            ["equalize", good / "scene.jpg", good / "sub" / "gray.bmp", "-o", out, "--format", "png"], capsys
        )
        assert code == 0, err
        _assert_same(decode(out / "scene.png"), _expected(ops.equalize_hist, good / "scene.jpg"))
        _assert_same(decode(out / "gray.png"), _expected(ops.equalize_hist, good / "sub" / "gray.bmp"))

    def test_bmp_written_by_the_cli_reads_back_in_pillow(self, good, tmp_path, capsys):
        image = pytest.importorskip("PIL.Image")
        out = tmp_path / "out"
        assert _run(["equalize", good / "rgba.png", good / "xray.png", "-o", out, "--format", "bmp"], capsys)[0] == 0
        with image.open(out / "rgba.bmp") as im:
            assert im.mode == "RGBA"
            _assert_same(np.asarray(im), decode(out / "rgba.bmp"))
        with image.open(out / "xray.bmp") as im:
            _assert_same(np.asarray(im.convert("L")), decode(out / "xray.bmp")[..., 0])

    def test_gif_takes_the_first_frame_and_is_written_as_png(self, tmp_path, capsys):
        image = pytest.importorskip("PIL.Image")
        src = tmp_path / "in"
        src.mkdir()
        frames = [samples.color_scene((32, 40), seed=s) for s in (5, 6)]
        pil_frames = [image.fromarray(f).quantize(64) for f in frames]
        pil_frames[0].save(src / "anim.gif", save_all=True, append_images=pil_frames[1:])
        out = tmp_path / "out"
        code, _, err = _run(["clahe", src, "-o", out], capsys)
        assert code == 0, err
        first = tf.io.decode_image((src / "anim.gif").read_bytes(), expand_animations=False).numpy()
        _assert_same(decode(out / "anim.png"), ops.clahe(first).numpy())

    def test_bmp_variants_that_tensorflow_misreads_are_refused_with_a_reason(self, good, tmp_path, capsys):
        image = pytest.importorskip("PIL.Image")
        src = tmp_path / "in"
        src.mkdir()
        scene = samples.color_scene((32, 40))
        image.fromarray(scene).quantize(16).save(src / "palette.bmp")  # TensorFlow would return the indices
        image.fromarray(scene[..., 0] > 128).save(src / "onebit.bmp")
        image.fromarray(scene[..., 1]).save(src / "gray.bmp")  # 8-bit with the identity gray palette: fine
        out = tmp_path / "out"
        code, stdout, err = _run(["equalize", src, "-o", out], capsys)
        assert code == 1 and "1 processed" in stdout and "2 failed" in stdout
        assert f"{src / 'palette.bmp'}: an 8-bit BMP with a colour palette is not supported" in err
        assert f"{src / 'onebit.bmp'}: a 1-bit BMP with compression 0 is not supported" in err
        _assert_same(decode(out / "gray.bmp")[..., 0], ops.equalize_hist(scene[..., 1]).numpy())

    def test_file_with_an_unusual_name_gets_the_extension_of_its_format(self, good, tmp_path, capsys):
        src = tmp_path / "scan.dat"
        src.write_bytes((good / "xray.png").read_bytes())
        code, _, err = _run(["equalize", src, "-o", tmp_path / "out"], capsys)
        assert code == 0, err
        _assert_same(decode(tmp_path / "out" / "scan.png"), _expected(ops.equalize_hist, src))

    def test_two_inputs_with_the_same_output_name_are_not_both_written(self, good, tmp_path, capsys):
        src = tmp_path / "in"
        src.mkdir()
        (src / "a.png").write_bytes((good / "xray.png").read_bytes())
        (src / "a.bmp").write_bytes((good / "sub" / "gray.bmp").read_bytes())
        code, stdout, err = _run(["equalize", src, "-o", tmp_path / "out", "--format", "png"], capsys)
        assert code == 1
        assert "1 processed" in stdout and "1 failed" in stdout
        assert "would also be written for" in err

    def test_compare_writes_a_figure_per_image(self, good, tmp_path, capsys):
        out = tmp_path / "out"
        code, _, err = _run(["clahe", good / "xray.png", good / "rgba.png", "-o", out, "--compare"], capsys)
        assert code == 0, err
        for name in ("xray.png", "rgba.png"):
            figure = tf.io.decode_png((out / f"{name}.compare.png").read_bytes()).numpy()
            assert figure.shape[0] > 300 and figure.shape[1] >= 600  # two columns of 3 in at 100 dpi
            assert figure[..., :3].std() > 20  # images and histograms, not a blank canvas


# --------------------------------------------------------------------------- nothing is lost or overwritten


class TestNoClobber:
    def test_rerun_skips_finished_files_and_overwrite_replaces_them(self, good, tmp_path, capsys):
        out = tmp_path / "out"
        assert _run(["equalize", good, "-o", out], capsys)[0] == 0
        first = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
        code, stdout, err = _run(["equalize", good, "-o", out], capsys)
        assert code == 0
        assert "0 processed, 5 skipped (output exists), 0 failed" in stdout
        assert "pass --overwrite to replace them" in err
        assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == first
        (out / "xray.png").write_bytes(b"the user's own file")
        code, stdout, _ = _run(["equalize", good, "-o", out], capsys)
        assert (out / "xray.png").read_bytes() == b"the user's own file"
        code, stdout, _ = _run(["equalize", good, "-o", out, "--overwrite"], capsys)
        assert code == 0 and "5 processed, 0 skipped" in stdout
        _assert_same(decode(out / "xray.png"), _expected(ops.equalize_hist, good / "xray.png"))

    def test_interrupt_leaves_no_partial_file_and_a_rerun_resumes(self, good, tmp_path, capsys, monkeypatch):
        out = tmp_path / "out"
        real_open, calls = open, []

        def fake_open(path, mode="r", *args, **kwargs):
            file = real_open(path, mode, *args, **kwargs)
            if "x" in mode:
                calls.append(path)
                if len(calls) == 3:
                    return HalfWritten(file, KeyboardInterrupt())
            return file

        monkeypatch.setattr(files, "open", fake_open, raising=False)
        code, _, err = _run(["equalize", good, "-o", out], capsys)
        assert code == 130 and "interrupted" in err
        done = sorted(p.name for p in out.iterdir())
        # Temporary names are ".NAME.RANDOM.tmp": two complete files, no third, no temporary file left.
        assert done == sorted(os.path.basename(c)[1:].rsplit(".", 2)[0] for c in calls[:2]), done
        for name in done:
            _assert_same(decode(out / name), _expected(ops.equalize_hist, good / name))
        monkeypatch.undo()
        code, stdout, _ = _run(["equalize", good, "-o", out], capsys)
        assert code == 0 and "3 processed, 2 skipped" in stdout
        assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]

    def test_a_failing_write_is_reported_and_leaves_no_partial_file(self, good, tmp_path, capsys, monkeypatch):
        out = tmp_path / "out"
        real_link = os.link

        def link(src, dst):  # the final step of a no-clobber write
            if str(dst).endswith("xray.png"):
                raise OSError(28, "No space left on device")
            return real_link(src, dst)

        monkeypatch.setattr(files.os, "link", link)
        code, stdout, err = _run(["equalize", good, "-o", out], capsys)
        assert code == 1
        assert "4 processed" in stdout and "1 failed" in stdout
        assert f"{good / 'xray.png'}: cannot write the output (No space left on device)" in err
        assert sorted(p.name for p in out.iterdir()) == ["rgb16.png", "rgba.png", "scene.jpg", "xray16.png"]


# --------------------------------------------------------------------------- progress, errors, bench


class TestProgress:
    def test_bar_on_a_terminal_shows_count_rate_and_time_left(self):
        from rich.console import Console

        console = Console(file=io.StringIO(), force_terminal=True, force_interactive=True, width=150)
        progress = terminal.Progress(3, console)
        progress.advance(1_000_000)
        progress.message("tf-histeq: bad.png: broken")
        progress.advance(1_000_000)
        progress.advance(1_000_000)
        progress.close()
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", console.file.getvalue())  # without colours and cursor moves
        assert re.search(r"3/3 images\s+100%", text) and "img/s" in text and "MP/s" in text, text
        assert "0:00:00 left" in text
        assert "tf-histeq: bad.png: broken\n" in text
        assert text.endswith("\n")

    def test_no_bar_when_not_a_terminal(self, capsys):
        progress = terminal.Progress(2)  # pytest's stderr is not a terminal
        progress.advance(10)
        progress.message("tf-histeq: x: y")
        progress.advance(10)
        progress.close()
        assert capsys.readouterr().err == "tf-histeq: x: y\n"

    def test_reason_keeps_the_useful_part_of_a_tensorflow_error(self):
        message = (
            "{{function_node __wrapped__IteratorGetNext_output_types_4_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
            "Error in user-defined function passed to ParallelMapDatasetV2:3 transformation with iterator: "
            "Iterator::Root::Prefetch::ParallelMapV2: Invalid PNG data, size 4228\n\t [[{{node DecodePng}}]] [Op:IteratorGetNext] name: "
        )
        assert pipeline.reason(tf.errors.InvalidArgumentError(None, None, message)) == "Invalid PNG data, size 4228"


class TestBench:
    def test_bench_forwards_its_arguments(self, monkeypatch):
        seen = []
        fake = type(sys)("tf_histeq.bench")
        fake.main = lambda argv: seen.append(argv) or 0
        monkeypatch.setitem(sys.modules, "tf_histeq.bench", fake)
        assert main(["bench", "--quick", "--device", "cpu", "--json", "r.json"]) == 0
        assert seen == [["--quick", "--device", "cpu", "--json", "r.json"]]


# --------------------------------------------------------------------------- without matplotlib


def _hide_matplotlib(monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib.") or name == "tf_histeq.plot":
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_compare_without_matplotlib_writes_images_and_says_how_to_get_figures(good, tmp_path, capsys, monkeypatch):
    _hide_matplotlib(monkeypatch)
    out = tmp_path / "out"
    code, _, err = _run(["equalize", good / "xray.png", "-o", out, "--compare"], capsys)
    assert code == 0
    assert 'pip install "tf_histeq[plot]"' in err
    assert sorted(p.name for p in out.iterdir()) == ["xray.png"]


# --------------------------------------------------------------------------- demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Run `tf-histeq demo` once, in a fresh working directory, with the default output folder."""
    cwd = tmp_path_factory.mktemp("demo")
    previous = os.getcwd()
    os.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(sys, "stdout", out)
            mp.setattr(sys, "stderr", err)
            code = main(["demo"])
    finally:
        os.chdir(previous)
    return code, cwd / app.DEMO_DIR, out.getvalue(), err.getvalue()


class TestDemo:
    def test_writes_every_image_and_figure(self, demo):
        code, out, stdout, _ = demo
        assert code == 0
        assert sorted(p.name for p in out.iterdir()) == sorted([*cli_demo.file_names(True), cli_demo.DEMO_MANIFEST])
        assert f"wrote 18 files to {out}" in stdout

    def test_images_are_the_functions_applied_to_the_samples(self, demo):
        _, out, _, _ = demo
        xray, xray12, scene = samples.chest_xray(), samples.chest_xray(bits=12), samples.color_scene()
        clip = cli_demo.DEMO_CLIP_LIMIT
        _assert_same(decode(out / "xray_original.png")[..., 0], xray)
        _assert_same(decode(out / "xray_clahe.png")[..., 0], tf_histeq.clahe(xray, clip_limit=clip).numpy())
        masked = tf_histeq.equalize_hist(xray, mask=samples.lung_mask()).numpy()
        _assert_same(decode(out / "xray_equalize_hist_lung_mask.png")[..., 0], masked)
        twelve = decode(out / "xray12_clahe_field_mask.png")[..., 0]
        assert twelve.dtype == np.uint16 and twelve.max() <= 4095 and twelve.max() > 3500
        expected = tf_histeq.clahe(xray12, mask=samples.field_mask(), clip_limit=clip, value_range=(0, 4095), bins=4096)
        _assert_same(twelve, expected.numpy())
        _assert_same(
            decode(out / "color_equalize_hist.png"), tf_histeq.equalize_hist(scene, channels="luminance").numpy()
        )
        assert set(np.unique(decode(out / "xray_lung_mask.png")).tolist()) == {0, 255}

    def test_figures_have_content(self, demo):
        _, out, _, _ = demo
        for name, columns in [("xray_compare.png", 5), ("xray12_compare.png", 4), ("color_compare.png", 4)]:
            figure = tf.io.decode_png((out / name).read_bytes()).numpy()
            assert figure.shape[1] == columns * 300  # 3 in per column at 100 dpi
            assert figure[..., :3].std() > 20

    def test_prints_a_table_of_statistics(self, demo):
        _, _, stdout, _ = demo
        lines = stdout.splitlines()
        header = next(i for i, line in enumerate(lines) if line.startswith("image ") and "RMS contrast" in line)
        assert lines[header].split() == ["image", "variant", "mean", "std", "entropy", "RMS", "contrast"]
        rows, sample = {}, None
        for line in lines[header + 2 : header + 15]:
            parts = line.split()
            if len(parts) == 6:
                sample = parts.pop(0)
            rows[(sample, parts[0])] = [float(v) for v in parts[1:]]  # mean, std, entropy, RMS contrast
        assert len(rows) == 13 and {s for s, _ in rows} == {"xray", "xray12", "color"}
        for sample, variant in [
            ("xray", "equalize_hist"),
            ("xray", "clahe"),
            ("xray12", "clahe"),
            ("color", "equalize_hist"),
        ]:
            assert rows[(sample, variant)][1] > 1.5 * rows[(sample, "original")][1]  # std up
            assert rows[(sample, variant)][3] > rows[(sample, "original")][3]  # RMS contrast up
        assert rows[("xray", "original")][1] == pytest.approx(
            samples.chest_xray()[samples.field_mask()].std(), abs=0.05
        )

    def test_rerun_replaces_only_its_own_unchanged_files(self, demo, capsys):
        _, out, _, _ = demo
        manifest = json.loads((out / cli_demo.DEMO_MANIFEST).read_text())
        assert set(manifest["files"]) == set(cli_demo.file_names(True))
        code, _, err = _run(["demo", "-o", out], capsys)
        assert code == 0, err
        (out / "xray_clahe.png").write_bytes(b"edited by the user")
        code, _, err = _run(["demo", "-o", out], capsys)
        assert code == 2 and "tf-histeq: error: " in err and "xray_clahe.png" in err
        assert (out / "xray_clahe.png").read_bytes() == b"edited by the user"

    def test_refuses_a_folder_with_a_foreign_file_of_the_same_name(self, tmp_path, capsys):
        (tmp_path / "xray_original.png").write_bytes(b"mine")
        code, stdout, err = _run(["demo", "-o", tmp_path], capsys)
        assert code == 2 and "did not write" in err and "xray_original.png" in err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["xray_original.png"]
        code, _, err = _run(["demo", "-o", tmp_path / "xray_original.png"], capsys)
        assert code == 2 and "is not a folder" in err

    @pytest.mark.slow
    def test_without_matplotlib_writes_images_and_says_how_to_get_figures(self, tmp_path, capsys, monkeypatch):
        _hide_matplotlib(monkeypatch)
        code, stdout, _ = _run(["demo", "-o", tmp_path / "d"], capsys)
        assert code == 0
        assert 'pip install "tf_histeq[plot]"' in stdout
        assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(
            [*cli_demo.file_names(False), cli_demo.DEMO_MANIFEST]
        )


# --------------------------------------------------------------------------- as a subprocess


def test_python_dash_m_reports_bad_files_and_exits_1(mixed, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tf_histeq", "equalize", str(mixed), "-o", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 1, result.stderr
    assert f"tf-histeq: {mixed / 'corrupt.png'}: Invalid PNG data" in result.stderr
    assert "4 processed, 0 skipped (output exists), 4 failed" in result.stdout
    assert "oneDNN" not in result.stderr  # TensorFlow's start-up log lines are kept out
    assert sorted(p.name for p in out.iterdir()) == ["rgba.png", "scene.jpg", "xray.png", "xray16.png"]


def test_python_dash_m_usage_error_exits_2_without_importing_tensorflow(good, tmp_path):
    code = (
        "import sys; from tf_histeq.cli import main; "
        f"c = main(['clahe', {str(good)!r}, '-o', {str(tmp_path / 'o')!r}, '--clip-limit', 'nan']); "
        "print(c, 'tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert result.stdout.split() == ["2", "False"]
    assert "tf-histeq: error: `clip_limit` must be a finite number" in result.stderr
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tf_histeq",
            "clahe",
            str(good),
            "-o",
            str(tmp_path / "o"),
            "--tile-grid-size",
            "0",
            "8",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        "tf-histeq: error: `tile_grid_size` must be two positive ints (rows, cols). Received: tile_grid_size=(0, 8)."
        in result.stderr
    )


# --------------------------------------------------------------------------- --data-service (more in test_distributed.py)


def test_data_service_option_is_documented_and_a_bad_address_is_refused_without_tensorflow(good, tmp_path, capsys):
    for command in ("equalize", "clahe"):
        code, out, _ = _run([command, "--help"], capsys)
        assert code == 0 and "--data-service grpc://HOST:PORT" in out
    code = (
        "import sys; from tf_histeq.cli import main; "
        f"c = main(['clahe', {str(good)!r}, '-o', {str(tmp_path / 'o')!r}, '--data-service', 'dispatcher:5050']); "
        "print(c, 'tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert result.stdout.split() == ["2", "False"]
    assert "tf-histeq: error: --data-service must be grpc://HOST:PORT" in result.stderr
    assert not (tmp_path / "o").exists()
