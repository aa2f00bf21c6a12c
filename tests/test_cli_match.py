"""`tf-histeq match INPUT... -o OUT --reference FILE_OR_DIR`: outputs, the reference, its errors, reruns.

The rest of the command's machinery (atomic no-clobber writes, Ctrl-C, faults,
formats) is `equalize`'s and is tested there; these tests cover what matching
adds. Outputs are compared with `tf_histeq.match_histograms` applied to the
decoded input and `tf_histeq.reference_histogram` of the decoded reference
(0 differing pixels), and once with scikit-image.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import tf_histeq
from tests import _images
from tests._files import decode, write_png
from tests._files import run_cli as _run
from tests._references import assert_same_pixels
from tests._service import local_service
from tf_histeq import _options, _xla, samples
from tf_histeq.cli import app, files, listing, pipeline

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
INPUTS_16 = ["rgb16.png", "xray16.png"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Inputs (8- and 16-bit, gray, RGB, RGBA) and references (files, folders, broken ones)."""
    root = tmp_path_factory.mktemp("match")
    in8, in16 = root / "in8", root / "in16"
    in8.mkdir(), in16.mkdir()
    scene = samples.color_scene((36, 44), seed=2)
    write_png(in8 / "xray.png", samples.chest_xray((40, 48), seed=1))
    write_png(in8 / "scene.png", scene)
    write_png(in8 / "rgba.png", np.dstack([scene, _images.band(0.1, 0.9)((36, 44))]))
    write_png(in16 / "xray16.png", samples.chest_xray((40, 48), bits=12, seed=3))
    write_png(in16 / "rgb16.png", scene.astype(np.uint16) * 16 + 5)

    write_png(root / "gray.png", _images.beta(2, 5)((24, 32)))
    write_png(root / "rgb.png", _images.band(0.2, 0.6)((20, 28, 3)))
    write_png(root / "gray16.png", _images.beta(2, 5)((24, 32), np.uint16) // 16)  # 12-bit data
    folder = root / "folder"
    (folder / "sub").mkdir(parents=True)
    write_png(folder / "a.png", _images.band(0.4, 0.55)((20, 30)))
    write_png(folder / "b.png", _images.xray()((26, 18)))
    write_png(folder / "sub" / "c.png", _images.full_range()((16, 16)))

    (root / "empty").mkdir()
    (root / "text.png").write_text("not a PNG\n")
    data = bytearray((root / "gray.png").read_bytes())
    data[60:70] = b"\x00" * 10  # inside IDAT: the CRC no longer matches
    (root / "corrupt.png").write_bytes(bytes(data))
    folders = {"depths": ["gray.png", "gray16.png"], "channels": ["gray.png", "rgb.png"], "alpha": ["rgb.png"]}
    for name, names in folders.items():
        (root / name).mkdir()
        for file in names:
            (root / name / file).write_bytes((root / file).read_bytes())
    (root / "alpha" / "rgba.png").write_bytes((in8 / "rgba.png").read_bytes())  # 3 colour channels too
    return root


def _expected(source, reference_files, channels="per_channel", **options) -> np.ndarray:
    """`match_histograms` of the decoded input to the pooled histogram of the decoded reference files."""
    reference = tf_histeq.reference_histogram([decode(path) for path in reference_files], **options)
    return tf_histeq.match_histograms(decode(source), reference, channels=channels, **options).numpy()


def _outputs(folder) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- outputs


@pytest.mark.parametrize(
    ("inputs", "reference", "argv", "options"),
    [
        ("in8", "gray.png", [], {}),  # one reference channel for every channel; alpha passes through
        ("in8", "gray.png", ["--bins", "64", "--channels", "joint", "--alpha", "false"], {"bins": 64, "alpha": False}),
        ("in8/scene.png", "rgb.png", [], {}),  # channel by channel
        ("in16", "gray16.png", [], {}),
        ("in16/xray16.png", "gray16.png", ["--value-range", "0", "4095", "--bins", "4096"], {}),
    ],
    ids=["8-bit", "8-bit-options", "8-bit-rgb-reference", "16-bit", "12-bit-levels"],
)
def test_outputs_are_the_function_applied_to_the_decoded_files(
    data, tmp_path, capsys, inputs, reference, argv, options
):
    out = tmp_path / "out"
    code, stdout, err = _run(["match", data / inputs, "-o", out, "--reference", data / reference, *argv], capsys)
    assert code == 0, err
    names = _outputs(out)
    assert names == ([os.path.basename(inputs)] if inputs.endswith(".png") else sorted(os.listdir(data / inputs)))
    assert f"{len(names)} processed, 0 skipped (output exists), 0 failed" in stdout
    if "--value-range" in argv:
        options = {"value_range": (0, 4095), "bins": 4096}
    channels = "joint" if "joint" in argv else "per_channel"
    for name in names:
        source = data / inputs / name if not inputs.endswith(".png") else data / inputs
        actual, expected = decode(out / name), _expected(source, [data / reference], channels, **options)
        assert_same_pixels(actual, expected, name)
        assert np.count_nonzero(actual != decode(source)) > actual.size // 4, name  # really remapped
    if inputs == "in8" and "--alpha" not in argv:
        assert (out / "rgba.png").read_bytes()[25] == 6  # still RGBA, its alpha unchanged
        assert_same_pixels(decode(out / "rgba.png")[..., 3], decode(data / "in8" / "rgba.png")[..., 3])
    if inputs.startswith("in16"):
        assert all((out / name).read_bytes()[24] == 16 for name in names)  # still 16-bit PNGs


def test_repeated_sizes_run_xla_compiled_with_the_same_pixels(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_xla, "COMPILE_AFTER_VALUES", 1)  # two images of a size are enough here
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    (source / "a.png").write_bytes((data / "in8" / "xray.png").read_bytes())
    write_png(source / "b.png", samples.chest_xray((40, 48), seed=4))
    jobs = files.plan(
        listing.collect([str(source)], False, str(out)).pairs, str(out), fmt=None, overwrite=False, compare=False
    )
    assert pipeline.runs_compiled(jobs) == [True, True]
    code, _, err = _run(["match", source, "-o", out, "--reference", data / "gray.png"], capsys)
    assert code == 0, err
    for name in ("a.png", "b.png"):
        assert_same_pixels(decode(out / name), _expected(source / name, [data / "gray.png"]), name)


def test_a_folder_reference_is_the_pooled_histogram_of_its_images(data, tmp_path, capsys):
    source, folder = data / "in8" / "xray.png", data / "folder"
    top, every = [folder / "a.png", folder / "b.png"], [folder / "a.png", folder / "b.png", folder / "sub" / "c.png"]
    for recursive, pooled in [([], top), (["-r"], every)]:
        out = tmp_path / f"out{len(recursive)}"
        code, _, err = _run(["match", source, "-o", out, "--reference", folder, *recursive], capsys)
        assert code == 0, err
        assert_same_pixels(decode(out / "xray.png"), _expected(source, pooled), f"-r: {bool(recursive)}")
    # The subfolder matters, so -r was honoured (and ignored without it).
    assert np.count_nonzero(decode(tmp_path / "out0" / "xray.png") != decode(tmp_path / "out1" / "xray.png")) > 0
    # Pooling is matching to all the pixels side by side: scikit-image on the concatenation, rounded half to even.
    exposure = pytest.importorskip("skimage.exposure")
    pixels = np.concatenate([decode(path)[..., 0].ravel() for path in every])[None]
    reference = np.round(exposure.match_histograms(decode(source)[..., 0], pixels)).astype(np.uint8)
    assert_same_pixels(decode(tmp_path / "out1" / "xray.png")[..., 0], reference, "vs skimage")


def test_a_folder_reference_pools_rgb_and_rgba_images_alike(data, tmp_path, capsys):
    source, out = data / "in8" / "scene.png", tmp_path / "out"
    code, _, err = _run(["match", source, "-o", out, "--reference", data / "alpha"], capsys)
    assert code == 0, err
    pooled = [data / "alpha" / "rgb.png", data / "alpha" / "rgba.png"]
    assert_same_pixels(decode(out / "scene.png"), _expected(source, pooled))


def test_inputs_that_do_not_fit_the_reference_fail_alone(data, tmp_path, capsys):
    out = tmp_path / "out"
    inputs = [data / "in8" / "xray.png", data / "in16" / "xray16.png", data / "in8" / "scene.png"]
    code, stdout, err = _run(["match", *inputs, "-o", out, "--reference", data / "rgb.png"], capsys)
    assert code == 1
    assert "1 processed, 0 skipped (output exists), 2 failed" in stdout
    about = re.escape(f"does not fit --reference '{data / 'rgb.png'}' (8-bit, 3 colour channel(s)): ")
    assert re.search(
        rf"tf-histeq: {re.escape(str(inputs[0]))}: this image \(8-bit, 1 channel\(s\)\) {about}"
        r"`reference\.channels` must be 1, the colour channels of the images\. Received: reference\.channels=3\.",
        err,
    ), err
    assert re.search(
        rf"tf-histeq: {re.escape(str(inputs[1]))}: this image \(16-bit, 1 channel\(s\)\) {about}"
        r"`reference\.bins` must be 65536, the number of levels \(bins\) of the images\.",
        err,
    ), err
    assert _outputs(out) == ["scene.png"]
    assert_same_pixels(decode(out / "scene.png"), _expected(inputs[2], [data / "rgb.png"]))


def test_a_rerun_skips_finished_files_and_finishes_the_others(data, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["match", data / "in8", "-o", out, "--reference", data / "folder"]
    assert _run(argv, capsys)[0] == 0
    (out / "scene.png").unlink()  # as if the first run had been interrupted before it
    kept = {name: (out / name).stat().st_mtime_ns for name in ("rgba.png", "xray.png")}
    code, stdout, err = _run(argv, capsys)
    assert code == 0, err
    assert "1 processed, 2 skipped (output exists), 0 failed" in stdout
    assert "existing outputs were kept; pass --overwrite to replace them" in err
    assert {name: (out / name).stat().st_mtime_ns for name in kept} == kept
    pooled = [data / "folder" / "a.png", data / "folder" / "b.png"]
    assert_same_pixels(decode(out / "scene.png"), _expected(data / "in8" / "scene.png", pooled))


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("inputs", "argv", "match"),
    [
        ("in8", ["--reference", "{root}/missing.png"], r"--reference '.*missing\.png' does not exist"),
        (
            "in8",
            ["--reference", "{root}/empty"],
            r"no PNG, JPEG, BMP, GIF, NIfTI or TIFF files in the --reference folder '.*empty' \(add --recursive",
        ),
        ("in8", ["--reference", "{root}/text.png"], r"--reference '.*text\.png': not a PNG, JPEG, BMP or GIF image"),
        ("in8", ["--reference", "{root}/corrupt.png"], r"--reference '.*corrupt\.png': Invalid PNG data"),
        (
            "in8",
            ["--reference", "{root}/depths"],
            r"--reference '.*depths' mixes 8-bit images \('.*gray\.png'\) and 16-bit ones \('.*gray16\.png'\); "
            "a reference has one bit depth",
        ),
        (
            "in8",
            ["--reference", "{root}/channels"],
            r"--reference '.*rgb\.png' has 3 colour channel\(s\), '.*gray\.png' 1; "
            "the images of a reference folder must agree",
        ),
        (
            "in8",
            ["--reference", "{root}/gray16.png"],
            r"--reference '.*gray16\.png' \(16-bit, 1 colour channel\(s\)\) fits none of the inputs to process, "
            r"e\.g\. '.*' \(8-bit, 4 channel\(s\)\): `reference\.bins` must be 256",
        ),
        (
            "in8/xray.png",
            ["--reference", "{root}/rgb.png"],
            r"fits none of the inputs to process, e\.g\. '.*xray\.png' \(8-bit, 1 channel\(s\)\): "
            r"`reference\.channels` must be 1, the colour channels of the images",
        ),
        (
            "in16",
            ["--reference", "{root}/gray.png", "--value-range", "0", "4095"],
            r"--reference '.*gray\.png': `value_range` must be two integers within the range of uint8",
        ),
        ("in8", ["--reference", "{root}/gray.png", "--channels", "luminance"], r"argument --channels: invalid choice"),
        ("in8", [], r"the following arguments are required: --reference"),
    ],
    ids=[
        "missing",
        "empty-folder",
        "not-an-image",
        "corrupt",
        "mixed-bit-depths",
        "mixed-channels",
        "fits-no-bit-depth",
        "fits-no-channel-count",
        "options-vs-reference",
        "luminance",
        "no-reference",
    ],
)
def test_reference_errors_exit_2_before_anything_is_written(data, tmp_path, capsys, inputs, argv, match):
    out = tmp_path / "out"
    argv = [a.format(root=data) for a in argv]
    code, stdout, err = _run(["match", data / inputs, "-o", out, *argv], capsys)
    assert code == 2, err
    assert "tf-histeq: error: " in err and stdout == ""
    assert re.search(match, err), err
    assert not out.exists()


def test_the_reference_and_the_output_folder_are_kept_apart(data, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "ref.png").write_bytes((data / "gray.png").read_bytes())
    code, _, err = _run(["match", data / "in8", "-o", out, "--reference", out / "ref.png"], capsys)
    assert code == 2 and re.search(r"error: --reference '.*ref\.png' is inside the output folder '.*out'", err), err
    code, _, err = _run(["match", data / "in8", "-o", data / "folder" / "out", "--reference", data / "folder"], capsys)
    assert code == 2
    assert re.search(r"the output folder '.*out' is the --reference folder '.*folder' or inside it", err), err
    assert _outputs(out) == ["ref.png"] and not (data / "folder" / "out").exists()


def test_jpeg_references_and_inputs_are_gray_or_colour_by_their_frame_headers(tmp_path, capsys):
    import cv2

    gray, colour = tmp_path / "gray", tmp_path / "colour"
    gray.mkdir(), colour.mkdir()
    cv2.imwrite(str(gray / "xray.jpg"), samples.chest_xray((40, 48), seed=4))
    cv2.imwrite(str(colour / "scene.jpg"), samples.color_scene((36, 44), seed=5))
    assert [files.sniff(str(p))[2] for p in (gray / "xray.jpg", colour / "scene.jpg")] == [(1,), (3,)]

    # A gray reference for colour inputs: its one histogram for every channel.
    out = tmp_path / "out"
    code, _, err = _run(["match", colour, "-o", out, "--format", "png", "--reference", gray / "xray.jpg"], capsys)
    assert code == 0, err
    assert_same_pixels(decode(out / "scene.png"), _expected(colour / "scene.jpg", [gray / "xray.jpg"]))

    # A colour reference for gray inputs: refused before anything is written, naming the one channel.
    out = tmp_path / "refused"
    code, _, err = _run(["match", gray, "-o", out, "--reference", colour / "scene.jpg"], capsys)
    assert code == 2
    assert re.search(
        r"--reference '.*scene\.jpg' \(8-bit, 3 colour channel\(s\)\) fits none of the inputs to process, e\.g\. "
        r"'.*xray\.jpg' \(8-bit, 1 channel\(s\)\): `reference.channels` must be 1, the colour channels of the "
        r"images\. Received: reference.channels=3\.",
        err,
    ), err
    assert not out.exists()


# --------------------------------------------------------------------------- the parser, without TensorFlow


def test_help_and_reference_errors_need_no_tensorflow(data, tmp_path):
    calls = [
        ["--help"],
        ["match", "--help"],
        ["match", data / "in8", "-o", tmp_path / "o", "--reference", data / "text.png"],
    ]
    code = "import sys; from tf_histeq.cli import main\n"
    code += "".join(f"print('@exit', main({[str(a) for a in argv]!r}), flush=True)\n" for argv in calls)
    code += "print('@tensorflow', 'tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert re.findall(r"^@exit (\d+)$", result.stdout, re.M) == ["0", "0", "2"], result.stderr
    assert result.stdout.endswith("@tensorflow False\n")
    top, match = re.split(r"^@exit .*$", result.stdout, flags=re.M)[:2]
    assert re.search(r"^\s+match \(match_histograms\)\s+histogram matching", top, re.M), top
    for option in ("--reference FILE_OR_DIR", "--channels {per_channel,joint}", "--value-range", "--bins", "--alpha"):
        assert option in match
    assert re.search(r"tf-histeq: error: --reference '.*text\.png': not a PNG, JPEG, BMP or GIF image", result.stderr)
    assert not (tmp_path / "o").exists()


def test_defaults_and_choices_are_the_functions(tmp_path):
    args = app.build_parser().parse_args(["match", "in", "-o", "out", "--reference", "ref"])
    assert (args.value_range, args.bins, args.channels) == (None, None, _options.CHANNEL_MODE)
    assert app.ALPHA_WORDS[args.alpha] == _options.ALPHA
    channels = next(a for a in args.parser._actions if a.dest == "channels")
    assert tuple(channels.choices) == _options.MATCH_CHANNELS


# --------------------------------------------------------------------------- on the tf.data service


@pytest.mark.slow  # starts data-service servers
def test_data_service_gives_the_local_outputs(data, tmp_path, capsys):
    target = local_service()
    out = tmp_path / "out"
    argv = ["match", data / "in16", "-o", out, "--reference", data / "gray16.png", "--data-service", target]
    code, stdout, err = _run(argv, capsys)
    assert code == 0, err
    assert "2 processed, 0 skipped (output exists), 0 failed" in stdout
    assert f"; 2 done on the tf.data service at {target}" in stdout  # the histogram went with the graph
    for name in INPUTS_16:
        assert_same_pixels(decode(out / name), _expected(data / "in16" / name, [data / "gray16.png"]), name)
