"""Rows that work on files: the `tf.data` PNG pipeline, and commands run as subprocesses.

Each command writes into a fresh output folder per run; `read_folder` reads
the outputs back for the pixel comparison.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import tensorflow as tf

# The plain OpenCV script a user would write instead of the command line (run as `python SCRIPT IN OUT`).
CV2_SCRIPT = """\
import os
import sys

import cv2

source, target = sys.argv[1], sys.argv[2]
os.makedirs(target)
clahe = cv2.createCLAHE({clip_limit!r}, {grid!r})
for name in sorted(os.listdir(source)):
    image = cv2.imread(os.path.join(source, name), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(os.path.join(target, name), clahe.apply(image))
"""


def subprocess_env() -> dict[str, str]:
    """The environment of a child Python: this tf_histeq first on the path, TensorFlow's C++ log quiet."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    return env


class FolderCommand:
    """A timed callable that runs a command from an input folder into a new output folder per call.

    `command(source, target)` returns the argument list. Each call writes to a
    folder that does not exist yet (so nothing is skipped as already done) and
    returns it; `reset` (called untimed by `timing.measure_interleaved`) removes
    the folders of earlier calls, so only the last output stays for comparison.
    """

    def __init__(self, command, source: str, scratch: str, name: str, timeout: float = 900.0):
        self.command, self.source, self.scratch, self.name, self.timeout = command, source, scratch, name, timeout
        self.calls = 0

    def __call__(self, source: str | None = None) -> str:
        """Run the command on `source` (default: the input folder); return the new output folder."""
        self.calls += 1
        target = os.path.join(self.scratch, f"{self.name}-{self.calls}")
        argv = self.command(source or self.source, target)
        proc = subprocess.run(argv, capture_output=True, text=True, env=subprocess_env(), timeout=self.timeout)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"{os.path.basename(argv[0])} ... exited {proc.returncode}: {tail[:200]}")
        return target

    def reset(self) -> None:
        """Remove the output folders of the earlier calls (called untimed before each timed call)."""
        for entry in os.listdir(self.scratch):
            if entry.startswith(f"{self.name}-"):
                shutil.rmtree(os.path.join(self.scratch, entry), ignore_errors=True)


def folder_row(ctx: dict, command, name: str) -> FolderCommand:
    """A `FolderCommand` from the workload's input folder; it warms up on `ctx["warm_folder"]` (a few files).

    The warm-up loads the interpreter, the libraries and their caches as a full
    run would; with `--quick` there is none.
    """
    runner = FolderCommand(command, ctx["folder"], ctx["scratch"], name)
    ctx["warm_up"] = (lambda: None) if ctx["settings"].quick else (lambda: runner(ctx["warm_folder"]))
    return runner


def cli_command(op: str):
    """`python -m tf_histeq OP IN -o OUT`: the `tf-histeq` command with its default options."""

    def command(source: str, target: str) -> list[str]:
        return [sys.executable, "-m", "tf_histeq", op, source, "-o", target]

    return command


def script_command(script_path: str, clip_limit: float, grid: tuple[int, int]):
    """`python SCRIPT IN OUT` for `CV2_SCRIPT`, written to `script_path`."""
    with open(script_path, "w", encoding="utf-8") as f:
        f.write(CV2_SCRIPT.format(clip_limit=clip_limit, grid=tuple(grid[::-1])))  # OpenCV: (cols, rows)

    def command(source: str, target: str) -> list[str]:
        return [sys.executable, script_path, source, target]

    return command


PIPELINE_BATCH = 8


def pipeline_row(ctx: dict, equalize):
    """`png_pipeline` over the workload's files; it warms up on the first batch of them, with the same map.

    The map is traced when the dataset is built; the warm-up runs it (and
    compiles what it compiles on first use) without a whole pass over the files.
    """
    ctx["warm_up"] = png_pipeline(ctx["paths"][:PIPELINE_BATCH], equalize)
    return png_pipeline(ctx["paths"], equalize)


def png_pipeline(paths: list[str], equalize):
    """A timed callable: read -> `tf.io.decode_png` -> `equalize` -> `batch(8)`, to the end; returns the batches.

    Both maps run with `num_parallel_calls=tf.data.AUTOTUNE`; `equalize` takes
    and returns one `(H, W, 1)` uint8 image.
    """

    def read(path):
        return tf.io.decode_png(tf.io.read_file(path), channels=1)

    dataset = (
        tf.data.Dataset.from_tensor_slices(paths)
        .map(read, num_parallel_calls=tf.data.AUTOTUNE)
        .map(equalize, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(PIPELINE_BATCH)
    )

    def run():
        return [batch.numpy() for batch in dataset]

    return run


def read_folder(folder: str) -> dict[str, np.ndarray]:
    """Every image file of `folder` by name, decoded by OpenCV as stored (for the pixel comparison)."""
    import cv2

    images = {}
    for name in sorted(os.listdir(folder)):
        image = cv2.imread(os.path.join(folder, name), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f"{name} in {folder} is not an image OpenCV can read")
        images[name] = image
    return images
