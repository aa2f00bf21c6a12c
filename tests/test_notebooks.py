"""The committed notebooks carry the outputs of one clean run, small enough for the repository.

The notebooks are committed executed (by `notebooks/execute.py`) so that they render, figures
included, on the repository page; CI executes them again under nbmake, which does not write them
back. These tests read the JSON only (nothing is executed): they catch an edit that strips the
outputs, a save of a failed or partial run, TensorFlow's log noise or a path of someone's machine in
an output, and figures or text that would bloat the repository.
"""

import base64
import importlib.util
import io
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

MAX_FIGURE_BYTES = 100_000  # one PNG, decoded
MAX_TEXT_CHARS = 4_000  # the text outputs of one cell
MAX_NOTEBOOK_BYTES = 300_000  # one .ipynb file
MAX_TOTAL_BYTES = 1_000_000  # all of them
# A cell whose source draws a figure must show one.
PLOTS = re.compile(r"\bplot\.(compare|slices)\(|\bplt\.")


def _execute_module():
    """notebooks/execute.py, the script that saves the notebooks: its `NOISE` is what an output must not hold."""
    spec = importlib.util.spec_from_file_location("notebooks_execute", ROOT / "notebooks" / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NOISE = _execute_module().NOISE


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _code_cells(nb):
    return [(index, cell) for index, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"]


def _text(value):
    return "".join(value) if isinstance(value, list) else value


def _texts(output):
    if output["output_type"] == "stream":
        yield _text(output["text"])
    elif output["output_type"] == "error":
        yield _text(output["evalue"])
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/"):
            yield _text(value)


def _pngs(cell):
    for output in cell.get("outputs", []):
        if "image/png" in output.get("data", {}):
            yield base64.b64decode(_text(output["data"]["image/png"]))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 8, [p.name for p in NOTEBOOKS]


@pytest.fixture(params=NOTEBOOKS, ids=lambda path: path.stem)
def notebook(request):
    return request.param.name, _load(request.param)


def test_every_code_cell_ran_once_top_to_bottom(notebook):
    name, nb = notebook
    counts = [cell["execution_count"] for _, cell in _code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{name}: execution counts {counts}: not one run from the top (run `python notebooks/execute.py`)"
    )


def test_every_code_cell_shows_an_output(notebook):
    name, nb = notebook
    silent = [index for index, cell in _code_cells(nb) if not cell["outputs"]]
    assert not silent, f"{name}: code cells {silent} have no output (stripped, or end them with a value to show)"


def test_no_errors_and_nothing_on_stderr(notebook):
    name, nb = notebook
    bad = [
        (index, output.get("ename") or _text(output.get("text", ""))[:200])
        for index, cell in _code_cells(nb)
        for output in cell["outputs"]
        if output["output_type"] == "error" or (output["output_type"] == "stream" and output["name"] == "stderr")
    ]
    assert not bad, f"{name}: errors or stderr in cells {bad}"


def test_outputs_hold_no_machine_noise(notebook):
    name, nb = notebook
    found = [
        (index, what, match.group(0))
        for index, cell in _code_cells(nb)
        for output in cell["outputs"]
        for text in _texts(output)
        for what, pattern in NOISE.items()
        for match in [pattern.search(text)]
        if match
    ]
    assert not found, f"{name}: {found}"
    timed = [index for index, cell in enumerate(nb["cells"]) if "execution" in cell.get("metadata", {})]
    assert not timed, f"{name}: cells {timed} record execution timestamps"


def test_cells_that_plot_show_a_small_png(notebook):
    from PIL import Image

    name, nb = notebook
    plotting = [index for index, cell in _code_cells(nb) if PLOTS.search(_text(cell["source"]))]
    for index, cell in _code_cells(nb):
        pngs = list(_pngs(cell))
        if index in plotting:
            assert pngs, f"{name}: cell {index} draws a figure but shows none"
        for png in pngs:
            image = Image.open(io.BytesIO(png))
            assert image.format == "PNG"
            assert len(png) <= MAX_FIGURE_BYTES, f"{name}: cell {index}: a {len(png):,}-byte figure {image.size}"
            # execute.py re-encodes opaque figures without alpha (gray ones as 8-bit gray).
            assert image.mode in ("L", "P", "RGB"), f"{name}: cell {index}: a {image.mode} figure, not re-encoded"


def test_text_outputs_are_short(notebook):
    name, nb = notebook
    for index, cell in _code_cells(nb):
        size = sum(len(text) for output in cell["outputs"] for text in _texts(output))
        assert size <= MAX_TEXT_CHARS, f"{name}: cell {index} shows {size:,} characters of text"


def test_notebook_sizes():
    sizes = {path.name: path.stat().st_size for path in NOTEBOOKS}
    assert max(sizes.values()) <= MAX_NOTEBOOK_BYTES, sizes
    assert sum(sizes.values()) <= MAX_TOTAL_BYTES, sizes
