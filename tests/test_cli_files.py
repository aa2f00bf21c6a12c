"""`tf_histeq.cli.files` on its own: encoders read back by OpenCV, Pillow and TensorFlow, headers, atomic writes.

No command runs here, and the module under test needs no TensorFlow.
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests import _images
from tests._references import assert_same_pixels
from tests._subprocess import python_env
from tf_histeq import samples
from tf_histeq.cli import files, listing, writing

cv2 = pytest.importorskip("cv2")
Image = pytest.importorskip("PIL.Image")


def _image(shape, dtype) -> np.ndarray:
    return _images.band(0.3, 0.6)(shape, dtype)


def _cv2_read(data: bytes) -> np.ndarray:
    """Decode with OpenCV, back to RGB(A) order and `(H, W, C)`."""
    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if out.ndim == 2:
        return out[..., None]
    return cv2.cvtColor(out, cv2.COLOR_BGRA2RGBA if out.shape[-1] == 4 else cv2.COLOR_BGR2RGB)


def test_importing_files_needs_no_tensorflow_or_numpy():
    code = "import sys; import tf_histeq.cli.files; print(sorted({'tensorflow', 'numpy'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=python_env(), timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


# --------------------------------------------------------------------------- PNG


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_reads_back_exactly_in_tensorflow_opencv_and_pillow(dtype, channels):
    pixels = _image((17, 23, channels), dtype)  # odd sizes: rows of every length mod 4
    data = files.encode_png(pixels)
    assert_same_pixels(tf.io.decode_png(data, channels=0, dtype=tf.as_dtype(dtype)).numpy(), pixels, "tf:")
    if channels != 2:  # OpenCV has no gray + alpha
        assert_same_pixels(_cv2_read(data), pixels, "cv2:")
    if dtype == np.uint8 or channels == 1:  # Pillow has no 16-bit colour
        with Image.open(io.BytesIO(data)) as im:
            read = np.asarray(im)
        assert_same_pixels(read.reshape(pixels.shape).astype(dtype), pixels, "Pillow:")


@pytest.mark.parametrize("level", range(10))
def test_every_compression_level_gives_the_same_pixels(level):
    pixels = _image((40, 48, 3), np.uint8)
    data = files.encode_png(pixels, level)
    assert_same_pixels(_cv2_read(data), pixels, f"level {level}:")


def test_png_sizes_match_opencvs_default_at_level_1_and_libpngs_at_level_9():
    pixels = samples.chest_xray((128, 160))[..., None]
    fast, best, stored = (len(files.encode_png(pixels, level)) for level in (1, 9, 0))
    opencv = len(cv2.imencode(".png", pixels)[1])  # OpenCV's default: level 1, "sub" filter, run-length
    libpng = len(tf.io.encode_png(pixels, compression=9).numpy())  # libpng's adaptive filters, level 9
    assert abs(fast - opencv) <= 0.01 * opencv and abs(best - libpng) <= 0.01 * libpng, (fast, opencv, best, libpng)
    assert best < fast < stored


def test_large_png_data_is_split_into_chunks(monkeypatch):
    monkeypatch.setattr(files, "_PNG_CHUNK_MAX", 100)
    pixels = _image((30, 40, 1), np.uint8)
    data = files.encode_png(pixels, 0)  # stored: about 1230 bytes of image data
    assert data.count(b"IDAT") == 13
    assert_same_pixels(_cv2_read(data), pixels)


# --------------------------------------------------------------------------- BMP


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_bmp_reads_back_exactly_with_alpha_kept(channels):
    pixels = _image((13, 19, channels), np.uint8)  # 13 * channels bytes a row: padded rows
    data = files.encode_bmp(pixels)
    assert_same_pixels(tf.io.decode_bmp(data, channels=0).numpy()[..., :channels], pixels, "tf:")
    assert_same_pixels(_cv2_read(data), pixels, "cv2:")
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == {1: "L", 3: "RGB", 4: "RGBA"}[channels] or (channels == 1 and im.mode == "P")
        read = np.asarray(im.convert({1: "L", 3: "RGB", 4: "RGBA"}[channels]))
    assert_same_pixels(read.reshape(pixels.shape), pixels, "Pillow:")


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("gray.png", lambda path, a: path.write_bytes(files.encode_png(a[..., :1]))),
        ("rgb16.png", lambda path, a: path.write_bytes(files.encode_png(a.astype(np.uint16) * 257))),
        ("scene.bmp", lambda path, a: path.write_bytes(files.encode_bmp(a))),
        ("scene.jpg", lambda path, a: cv2.imwrite(str(path), a)),
        ("gray.jpg", lambda path, a: cv2.imwrite(str(path), a[..., 0])),
        ("scene.gif", lambda path, a: Image.fromarray(a).save(path)),
    ],
)
def test_sniff_reads_format_depth_channels_and_size(tmp_path, name, write):
    path = tmp_path / name
    write(path, _image((21, 34, 3), np.uint8))
    fmt, is16, channels, size = files.sniff(str(path))
    assert (fmt, is16, size) == (
        {"png": "png", "bmp": "bmp", "jpg": "jpeg", "gif": "gif"}[name[-3:]],
        "16" in name,
        (21, 34),
    )
    assert (
        channels
        == {
            "gray.png": (1,),
            "rgb16.png": (3,),
            "scene.bmp": (3,),
            "scene.jpg": (3,),
            "gray.jpg": (1,),
            "scene.gif": (3,),
        }[name]
    )


def test_a_jpeg_size_after_a_large_metadata_block_is_unknown(tmp_path):
    data = cv2.imencode(".jpg", _image((8, 8, 3), np.uint8))[1].tobytes()
    comment = b"\xff\xfe" + (5000).to_bytes(2, "big") + bytes(4998)  # a 5000-byte COM segment first
    (tmp_path / "x.jpg").write_bytes(data[:2] + comment + data[2:])
    assert files.sniff(str(tmp_path / "x.jpg"))[2:] == ((1, 3), None)  # neither components nor size: both counts


# --------------------------------------------------------------------------- atomic, no-clobber writes


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_atomic_creates_and_never_replaces_without_overwrite(tmp_path):
    path = tmp_path / "sub" / "a.png"
    assert writing.write_atomic(str(path), b"first", overwrite=False)
    assert not writing.write_atomic(str(path), b"second", overwrite=False)
    assert path.read_bytes() == b"first"
    assert writing.write_atomic(str(path), b"third", overwrite=True)
    assert path.read_bytes() == b"third" and not _leftovers(path.parent)
    (tmp_path / "link.png").symlink_to(tmp_path / "nowhere.png")  # a dangling link is a taken name too
    assert not writing.write_atomic(str(tmp_path / "link.png"), b"x", overwrite=False)
    assert not (tmp_path / "nowhere.png").exists()


def test_an_output_that_appears_while_writing_is_kept(tmp_path, monkeypatch):
    """Another run creates the output between this run's check and its final step: its file stays."""
    path = tmp_path / "a.png"
    real_open = open

    def open_then_race(name, mode="r", *args, **kwargs):
        file = real_open(name, mode, *args, **kwargs)
        if "x" in mode:
            path.write_bytes(b"the other run's output")
        return file

    monkeypatch.setattr(writing, "open", open_then_race, raising=False)
    assert writing.write_atomic(str(path), b"this run's output", overwrite=False) is False
    assert path.read_bytes() == b"the other run's output" and not _leftovers(tmp_path)


def test_the_no_clobber_step_is_a_hard_link_which_refuses_a_name_taken_at_that_instant(tmp_path, monkeypatch):
    """Not check-then-rename: `os.replace` is never used, and `os.link` fails if the name was taken just before."""
    path, real_link = tmp_path / "a.png", os.link

    def link_just_after_another_run(src, dst):
        path.write_bytes(b"the other run's output")
        return real_link(src, dst)

    monkeypatch.setattr(writing.os, "replace", lambda *args: pytest.fail("os.replace could replace a file"))
    monkeypatch.setattr(writing.os, "link", link_just_after_another_run)
    assert writing.write_atomic(str(path), b"this run's output", overwrite=False) is False
    assert path.read_bytes() == b"the other run's output" and not _leftovers(tmp_path)


@pytest.mark.parametrize("code", [errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV])
def test_without_hard_links_the_write_falls_back_to_check_then_rename(tmp_path, monkeypatch, code):
    def no_links(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(writing.os, "link", no_links)
    path = tmp_path / "a.png"
    assert writing.write_atomic(str(path), b"first", overwrite=False)
    assert not writing.write_atomic(str(path), b"second", overwrite=False)
    assert path.read_bytes() == b"first" and not _leftovers(tmp_path)


def test_other_link_errors_are_raised_and_leave_nothing(tmp_path, monkeypatch):
    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writing.os, "link", full)
    with pytest.raises(OSError, match="No space left on device"):
        writing.write_atomic(str(tmp_path / "a.png"), b"data", overwrite=False)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- collecting and planning


def test_plan_names_outputs_and_marks_what_is_known_before_decoding(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    pixels = _image((8, 10, 1), np.uint8)
    (src / "a.png").write_bytes(files.encode_png(pixels))
    (src / "sub" / "b.PNG").write_bytes(files.encode_png(pixels.astype(np.uint16)))
    (src / "c.bmp").write_bytes(files.encode_bmp(pixels))
    (src / "c.png").write_bytes(files.encode_png(pixels))
    (src / ".hidden.png").write_bytes(b"never listed")
    (src / "notes.txt").write_text("not an image name")
    out.mkdir()
    (out / "a.png").write_bytes(b"done before")
    pairs = listing.collect([str(src)], recursive=True, output=str(out)).pairs
    assert [rel for _, rel in pairs] == ["a.png", "c.bmp", "c.png", os.path.join("sub", "b.PNG")]
    jobs = files.plan(pairs, str(out), fmt="png", overwrite=False, compare=False)
    assert [(os.path.relpath(j.output, out), j.skip, j.is16, j.size) for j in jobs] == [
        ("a.png", True, False, (8, 10)),
        ("c.png", False, False, (8, 10)),
        ("c.png", False, False, (8, 10)),
        (os.path.join("sub", "b.PNG"), False, True, (8, 10)),
    ]
    assert [j.error is None for j in jobs] == [True, True, False, True]
    assert jobs[2].error.startswith(f"its output {str(out / 'c.png')!r} would also be written for ")
    assert files.plan(pairs[3:], str(out), fmt="jpeg", overwrite=False, compare=False)[0].error == (
        "a 16-bit image cannot be written as JPEG (8-bit only); use --format png"
    )
