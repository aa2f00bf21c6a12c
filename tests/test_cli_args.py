"""`tf-histeq` arguments: help, choices and defaults, usage errors (exit 2), `bench` forwarding.

None of these runs the pipeline: a usage error is reported before any work.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys

import pytest

import tf_histeq
from tests._files import run_cli as _run
from tests._files import write_good_inputs
from tf_histeq import ops
from tf_histeq.cli import app, main

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _main_in_a_fresh_process(argv) -> tuple[str, str]:
    """Run `main(argv)` in a new interpreter; return its stdout, ending with `CODE TF_IMPORTED`, and its stderr."""
    code = f"import sys; from tf_histeq.cli import main; c = main({[str(a) for a in argv]!r}); "
    code += "print(c, 'tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A folder of valid inputs: 8- and 16-bit PNG (gray, RGBA, RGB), JPEG, and BMPs in a subfolder."""
    root = tmp_path_factory.mktemp("good")
    write_good_inputs(root)
    return root


# --------------------------------------------------------------------------- parsing, help, usage errors


class TestParsing:
    def test_help_does_not_import_tensorflow(self):
        stdout, _ = _main_in_a_fresh_process(["--help"])
        assert stdout.strip().splitlines()[-1] == "0 False"
        for command in ("demo", "equalize", "clahe", "bench"):
            assert command in stdout

    def test_the_command_line_modules_import_no_tensorflow_and_pass_none_around(self):
        code = (
            "import importlib, inspect, pkgutil, sys, tf_histeq.cli as cli\n"
            "names = [m.name for m in pkgutil.iter_modules(cli.__path__)]\n"
            "modules = [importlib.import_module(f'tf_histeq.cli.{name}') for name in names]\n"
            "print('tensorflow' in sys.modules, len(modules))\n"
            "print(sorted(f'{m.__name__}.{f.__name__}' for m in modules for f in vars(m).values()\n"
            "             if inspect.isfunction(f) and 'tf' in inspect.signature(f).parameters))\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
        assert result.returncode == 0, result.stderr
        imported, count = result.stdout.split("\n")[0].split()
        assert (imported, int(count) >= 12) == ("False", True)
        assert result.stdout.split("\n")[1] == "[]"  # TensorFlow is `runtime.tf`, not a parameter

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
            "--alpha",
            "--png-compression",
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
                # spatial_dims has no flag: the command line states it from each file's format (cli/volfiles.py).
                if name in ("images", "mask", "spatial_dims") or name in skip:
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
            (
                ["--png-compression", "10"],
                r"`png_compression` must be an int in \[0, 9\]\. Received: png_compression=10\.",
            ),
            (["--alpha", "yes"], r"argument --alpha: invalid choice: 'yes' \(choose from 'auto', 'true', 'false'\)"),
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
            (
                ["equalize", "{tmp}", "-o", "{out}"],
                r"no PNG, JPEG, BMP, GIF, NIfTI or TIFF files in .* \(add --recursive",
            ),
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


class TestBench:
    def test_bench_forwards_its_arguments(self, monkeypatch):
        seen = []
        fake = type(sys)("tf_histeq.bench")
        fake.main = lambda argv: seen.append(argv) or 0
        monkeypatch.setitem(sys.modules, "tf_histeq.bench", fake)
        assert main(["bench", "--quick", "--device", "cpu", "--json", "r.json"]) == 0
        assert seen == [["--quick", "--device", "cpu", "--json", "r.json"]]


# --------------------------------------------------------------------------- as a subprocess


def test_python_dash_m_usage_error_exits_2_without_importing_tensorflow(good, tmp_path):
    stdout, stderr = _main_in_a_fresh_process(["clahe", good, "-o", tmp_path / "o", "--clip-limit", "nan"])
    assert stdout.split() == ["2", "False"]
    assert "tf-histeq: error: `clip_limit` must be a finite number" in stderr
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
    stdout, stderr = _main_in_a_fresh_process(
        ["clahe", good, "-o", tmp_path / "o", "--data-service", "dispatcher:5050"]
    )
    assert stdout.split() == ["2", "False"]
    assert "tf-histeq: error: --data-service must be grpc://HOST:PORT" in stderr
    assert not (tmp_path / "o").exists()
