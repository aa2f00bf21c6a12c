"""`tf-histeq equalize|clahe`: outputs (bit-exact), options, failures, no-clobber rules, progress.

Most tests call `main(argv)` in-process; a few run `python -m tf_histeq` as a
subprocess (each pays for importing TensorFlow, so they are kept few).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests._files import GOOD_FILES, HalfWritten, decode, hide_matplotlib, write_good_inputs, write_png
from tests._files import run_cli as _run
from tf_histeq import _xla, ops, samples
from tf_histeq.cli import files, listing, pipeline, terminal, writing

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


# --------------------------------------------------------------------------- fixtures and helpers


def _expected(op, source, **kwargs) -> np.ndarray:
    """The function applied to the decoded input, as the CLI must reproduce it."""
    return op(decode(source), **kwargs).numpy()


def _assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    differing = int(np.count_nonzero(actual != expected))
    assert differing == 0, f"{differing} of {actual.size} samples differ"


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A folder of valid inputs: 8- and 16-bit PNG (gray, RGBA, RGB), JPEG, and BMPs in a subfolder."""
    root = tmp_path_factory.mktemp("good")
    write_good_inputs(root)
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
            ("clahe", ["--channels", "lab"], {"channels": "lab"}, ["rgba.png"]),
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
            "clahe-lab",
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

    @pytest.mark.parametrize(
        ("op_name", "alpha", "name"),
        [("equalize", "false", "rgba.png"), ("equalize", "true", "sub/scene.bmp"), ("clahe", "false", "rgba.png")],
    )
    def test_alpha_says_whether_the_last_channel_passes_through(self, good, tmp_path, capsys, op_name, alpha, name):
        out = tmp_path / "out"
        code, _, err = _run([op_name, good / name, "-o", out, "--alpha", alpha], capsys)
        assert code == 0, err
        op = ops.clahe if op_name == "clahe" else ops.equalize_hist
        value = {"auto": "auto", "true": True, "false": False}[alpha]
        result, source = decode(out / os.path.basename(name)), decode(good / name)
        _assert_same(result, _expected(op, good / name, alpha=value))
        last_kept = bool(np.array_equal(result[..., -1], source[..., -1]))
        assert last_kept == (alpha != "false"), "the last channel passes through unless --alpha false"

    def test_png_compression_changes_the_size_not_the_pixels(self, good, tmp_path, capsys):
        expected = _expected(ops.equalize_hist, good / "xray.png")
        sizes = {}
        for level in ("0", "1", "9"):
            out = tmp_path / level
            assert _run(["equalize", good / "xray.png", "-o", out, "--png-compression", level], capsys)[0] == 0
            _assert_same(decode(out / "xray.png"), expected)
            sizes[level] = (out / "xray.png").stat().st_size
        assert sizes["0"] > sizes["1"] > sizes["9"], sizes

    def test_repeated_sizes_run_xla_compiled_with_the_same_pixels(self, tmp_path, capsys, monkeypatch):
        monkeypatch.setattr(_xla, "COMPILE_AFTER_VALUES", 1)  # two images of a size are enough here
        src, out = tmp_path / "in", tmp_path / "out"
        src.mkdir()
        images = {f"x{i}.png": samples.chest_xray((40, 52), seed=i) for i in range(2)}
        images["odd.png"] = samples.chest_xray((44, 52), seed=5)
        for name, image in images.items():
            write_png(src / name, image)
        jobs = files.plan(
            listing.collect([str(src)], False, str(out)).pairs, str(out), fmt=None, overwrite=False, compare=False
        )
        assert pipeline.runs_compiled(jobs) == [False, True, True]  # odd.png, x0.png, x1.png
        code, _, err = _run(["clahe", src, "-o", out, "--clip-limit", "3"], capsys)
        assert code == 0, err
        for name, image in images.items():
            _assert_same(decode(out / name)[..., 0], ops.clahe(image, clip_limit=3.0).numpy())


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

        monkeypatch.setattr(writing, "open", fake_open, raising=False)
        code, _, err = _run(["equalize", good, "-o", out], capsys)
        assert code == 130 and "interrupted" in err
        done = sorted(p.name for p in out.iterdir())
        # Temporary names are ".tf-histeq-RANDOM-NAME.tmp". Files are staged a few ahead, in threads, and
        # named in order: the cut one and those after it are not named, and no temporary file is left.
        assert os.path.basename(calls[2])[20:-4] not in done and len(done) < 5, done
        for name in done:
            _assert_same(decode(out / name), _expected(ops.equalize_hist, good / name))
        monkeypatch.undo()
        code, stdout, _ = _run(["equalize", good, "-o", out], capsys)
        assert code == 0 and f"{5 - len(done)} processed, {len(done)} skipped" in stdout
        assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]

    def test_an_output_another_run_writes_meanwhile_is_kept_and_counted_skipped(
        self, good, tmp_path, capsys, monkeypatch
    ):
        out = tmp_path / "out"
        real_open = open

        def open_while_another_run_writes(path, mode="r", *args, **kwargs):
            file = real_open(path, mode, *args, **kwargs)
            if "x" in mode and os.path.basename(path).endswith("-xray.png.tmp"):
                (out / "xray.png").write_bytes(b"the other run's output")
            return file

        monkeypatch.setattr(writing, "open", open_while_another_run_writes, raising=False)
        code, stdout, err = _run(["equalize", good, "-o", out], capsys)
        assert code == 0, err
        assert "4 processed, 1 skipped (output exists), 0 failed" in stdout
        assert (out / "xray.png").read_bytes() == b"the other run's output"
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


# --------------------------------------------------------------------------- without matplotlib


def test_compare_without_matplotlib_writes_images_and_says_how_to_get_figures(good, tmp_path, capsys, monkeypatch):
    hide_matplotlib(monkeypatch)
    out = tmp_path / "out"
    code, _, err = _run(["equalize", good / "xray.png", "-o", out, "--compare"], capsys)
    assert code == 0
    assert 'pip install "tf_histeq[plot]"' in err
    assert sorted(p.name for p in out.iterdir()) == ["xray.png"]


# --------------------------------------------------------------------------- as a subprocess


@pytest.mark.slow  # a fresh process that imports TensorFlow
def test_python_dash_m_reports_bad_files_and_exits_1(mixed, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tf_histeq", "equalize", str(mixed), "-o", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 1, result.stderr
    assert f"tf-histeq: {mixed / 'corrupt.png'}: Invalid PNG data" in result.stderr
    assert "4 processed, 0 skipped (output exists), 4 failed" in result.stdout
    assert "oneDNN" not in result.stderr  # TensorFlow's start-up log lines are kept out
    assert sorted(p.name for p in out.iterdir()) == ["rgba.png", "scene.jpg", "xray.png", "xray16.png"]


@pytest.mark.slow  # a fresh process that imports TensorFlow, then Keras
def test_tensorflow_is_imported_without_keras_which_still_loads_when_used():
    code = (
        "import sys; from tf_histeq.cli import runtime; tf = runtime.import_tensorflow(); "
        "print('keras' in sys.modules, 'matplotlib' in sys.modules); "
        "print(tf.keras.layers.Identity()(tf.constant([3])).numpy().tolist())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300)
    assert result.stdout.split() == ["False", "False", "[3]"], result.stderr
