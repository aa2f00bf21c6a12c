"""Execute the notebooks top to bottom and save them with their outputs, so they render on the repository page.

Usage, from the repository root (needs the `test` and `dev` extras: the reference libraries,
matplotlib, nbclient and ipykernel)::

    python notebooks/execute.py                       # every notebooks/*.ipynb, one at a time
    python notebooks/execute.py notebooks/02_*.ipynb  # some of them

Each notebook runs in a fresh kernel, in its own folder, with the checkout's `tf_histeq` first on
`PYTHONPATH`, `TF_CPP_MIN_LOG_LEVEL=3` (no TensorFlow start-up log), `PYTHONHASHSEED=0` and
matplotlib's inline backend (so that pyplot figures become PNG outputs; CI's `MPLBACKEND=Agg` would
hide them), and figures drawn at `DPI` (64) to keep the repository small. Each PNG is then
re-encoded losslessly in as few bytes per pixel as it needs (8-bit gray for the gray figures). The
notebooks seed their own random draws. What is saved is kept reproducible: no execution timestamps,
the notebook metadata reduced to the kernel's name, and a notebook is not saved when a cell fails,
writes to stderr, or an output holds what `NOISE` names (a local path, a TensorFlow log line, a
memory address, a timestamp); then the script says which cell and exits 1. TensorFlow's C++ start-up
lines (written to the process's stderr, not Python's) are shown in the terminal, not saved.
`tests/test_notebooks.py` checks the saved outputs (present, no errors, no stderr, figures, size
limits) without executing anything; CI executes the notebooks again under `nbmake`, which does not
write them back.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
import numpy as np
from nbclient import NotebookClient
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 900  # per cell
DPI = 64  # figures are drawn at this resolution (tf_histeq.plot.compare's default is 100): small files
METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
_HERE = [re.escape(str(path)) for path in (ROOT, Path.home()) if len(path.parts) > 1]
# What an output must not hold (tests/test_notebooks.py holds the committed notebooks to the same).
NOISE = {
    "a path of a machine": re.compile("|".join([*_HERE, r"/work/|/home/|/Users/|/tmp/|/var/folders/|\b[A-Za-z]:\\\w"])),
    "a TensorFlow or absl log line": re.compile(
        r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::|cudart_stub|oneDNN custom operations|WARNING:tensorflow|tensorflow/core/",
        re.M,
    ),
    "a memory address": re.compile(r"\bat 0x[0-9a-fA-F]{6,}"),
    "a timestamp": re.compile(r"\b20\d\d-\d\d-\d\d[ T]\d\d:\d\d"),
}


def _environment(rc_file: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONHASHSEED"] = "0"
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env["MATPLOTLIBRC"] = str(rc_file)
    return env


def _small_png(data: str) -> str:
    """Re-encode a base64 PNG losslessly in the fewest bytes per pixel: gray, palette or RGB, no alpha if opaque.

    The figures are gray images with gray histograms on white, so most become 8-bit gray PNGs,
    a quarter of matplotlib's RGBA. No pixel changes; the PNG holds no timestamp or version text.
    """
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGBA"))
    if (pixels[..., 3] == 255).all():
        pixels = pixels[..., :3]
    if pixels.shape[-1] == 3 and (pixels == pixels[..., :1]).all():
        image = Image.fromarray(np.ascontiguousarray(pixels[..., 0]), "L")
    else:
        image = Image.fromarray(np.ascontiguousarray(pixels))
        if len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) <= 256:
            image = image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
            if not np.array_equal(np.asarray(image.convert(image.palette.mode)), pixels):
                image = Image.fromarray(np.ascontiguousarray(pixels))  # the palette lost a colour: keep all
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _problems(nb) -> list[str]:
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            where = f"cell {index}"
            if output.output_type == "error":
                found.append(f"{where}: {output.ename}: {output.evalue}")
            elif output.output_type == "stream" and output.name == "stderr":
                found.append(f"{where} wrote to stderr: {output.text[:300]!r}")
            texts = [output.get("text", "")] + [
                value for key, value in output.get("data", {}).items() if key.startswith("text/")
            ]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                for what, pattern in NOISE.items():
                    match = pattern.search(text)
                    if match:
                        found.append(f"{where}: an output holds {what}: {match.group(0)!r}")
    return found


def _joined_streams(outputs: list) -> list:
    """Join consecutive prints to the same stream into one output, as a reader sees them."""
    joined: list = []
    for output in outputs:
        previous = joined[-1] if joined else None
        if (
            output.output_type == "stream"
            and previous is not None
            and previous.output_type == "stream"
            and previous.name == output.name
        ):
            previous.text += output.text
        else:
            joined.append(output)
    return joined


def execute(path: Path) -> list[str]:
    """Execute one notebook in place; return the problems that kept it from being saved."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        allow_errors=True,  # the error output is reported below, with its cell
        record_timing=False,
        # Output that TensorFlow's C++ runtime writes straight to the process's stderr (a missing CUDA
        # driver, absl's start-up line) goes to this terminal, not into the notebook: it says more about
        # the machine than about the notebook. Python's own stderr (warnings) still lands in the cells.
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
        resources={"metadata": {"path": str(path.parent)}},
    )
    saved_env = dict(os.environ)
    with tempfile.TemporaryDirectory() as folder:
        rc_file = Path(folder) / "matplotlibrc"
        rc_file.write_text(f"figure.dpi: {DPI}\nsavefig.dpi: {DPI}\n")
        os.environ.update(_environment(rc_file))  # the kernel inherits this process's environment
        try:
            client.execute()
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
    problems = _problems(nb)
    if problems:
        return problems
    nb.metadata = nbformat.from_dict(METADATA)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = _joined_streams(cell.outputs)
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}):
                output.data["image/png"] = _small_png(output.data["image/png"])
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return []


def main(argv: list[str] | None = None) -> int:
    """Execute the given notebooks (default: all of them), one at a time; 1 if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    failed = 0
    for path in paths:
        print(f"{path.name}: running", flush=True)
        problems = execute(path.resolve())
        if problems:
            failed += 1
            print(f"{path.name}: NOT saved", *problems, sep="\n  ", flush=True)
        else:
            print(f"{path.name}: saved, {path.stat().st_size / 1024:.0f} KiB", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
