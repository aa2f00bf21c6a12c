"""Image files for the command-line tests: write a PNG, decode any output completely."""

from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf

from tf_histeq import samples
from tf_histeq.cli import files, main


def write_png(path, array: np.ndarray) -> None:
    """Write `(H, W)` or `(H, W, C)` uint8/uint16 `array` as a PNG of its bit depth."""
    array = array if array.ndim == 3 else array[..., None]
    path.write_bytes(tf.io.encode_png(array).numpy())


def decode(path) -> np.ndarray:
    """Decode an image file completely, keeping 16-bit PNGs 16-bit (a truncated file raises)."""
    data = path.read_bytes()
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[24] == 16:
        return tf.io.decode_png(data, channels=0, dtype=tf.uint16).numpy()
    if data[:3] == b"\xff\xd8\xff":  # libjpeg's default IDCT, as OpenCV and Pillow decode
        return tf.io.decode_jpeg(data, channels=0, dct_method="INTEGER_ACCURATE").numpy()
    return tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False).numpy()


class HalfWritten:
    """Wraps an open file: `write` stores the first half of the data, then raises `error`.

    Stands for a write cut short: Ctrl-C (`KeyboardInterrupt`) or a full disk
    (`OSError(ENOSPC)`) in the middle of an output file.
    """

    def __init__(self, file, error: BaseException):
        self.file = file
        self.error = error

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
        raise self.error


GOOD_FILES = ["rgb16.png", "rgba.png", "scene.jpg", "sub/gray.bmp", "sub/scene.bmp", "xray.png", "xray16.png"]


def write_good_inputs(root) -> None:
    """Valid inputs (`GOOD_FILES`): 8- and 16-bit PNG (gray, RGBA, RGB), JPEG, and BMPs in a subfolder."""
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


def hide_matplotlib(monkeypatch) -> None:
    """Make `import matplotlib` (and so `tf_histeq.plot`) fail for the rest of the test."""
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib.") or name == "tf_histeq.plot":
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """`tf_histeq.cli.main(argv)` in this process: its exit status, stdout and stderr."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
