"""The conversion matrix: every dtype, value range and bin count the layers accept converts, bit-exact.

Cells: input dtype (uint8, uint16, int16, float32) x value range (the dtype's
default and a narrow one: 0..200, 12-bit 0..4095, the CT window -1024..3071,
0..1) x bins (64, 201, 256, 4096,
65536, where the range holds that many levels) x layer (`HistogramEqualization`
with `method="opencv"` and `"pil"`, `CLAHE`). Each cell is one output of one
Keras model, so the matrix costs one TensorFlow Lite and one ONNX
conversion; every output is compared with `model.predict` and counted in
differing values. Inputs have a dynamic height and width and are
run at two sizes; each batch holds a constant image (the identity planes) and
values outside the narrow ranges (clipping).
"""

from __future__ import annotations

import os

import keras
import numpy as np
import onnxruntime
import pytest
import tensorflow as tf

from tests import _images
from tf_histeq import deploy
from tf_histeq.layers import CLAHE, HistogramEqualization

try:  # the LiteRT interpreter; TensorFlow's own copy is deprecated but equivalent
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # pragma: no cover
    Interpreter = tf.lite.Interpreter

SIZE = (37, 53)  # not divisible by the CLAHE grid
BINS = (64, 201, 256, 4096, 65536)
# dtype -> {range name: (value_range, number of levels it holds; None for floats)}
RANGES = {
    "uint8": {"default": (None, 256), "0-200": ((0, 200), 201)},
    "uint16": {"default": (None, 65536), "12bit": ((0, 4095), 4096)},
    "int16": {"default": (None, 65536), "ct": ((-1024, 3071), 4096)},
    "float32": {"default": (None, None), "0-1": ((0, 1), None)},
}
LAYERS = {
    "he-opencv": lambda **options: HistogramEqualization(jit_compile=False, **options),
    "he-pil": lambda **options: HistogramEqualization(method="pil", jit_compile=False, **options),
    "clahe": lambda **options: CLAHE(clip_limit=3.0, tile_grid_size=(3, 4), jit_compile=False, **options),
}
# Every cell, or (the default: a conversion costs seconds per layer) a covering subset.
FULL = os.environ.get("TF_HISTEQ_DEPLOY_MATRIX") == "full"


def all_cells() -> dict[tuple, str]:
    """`(dtype, range name, bins, layer) -> input name` for every cell the layers accept."""
    out = {}
    for dtype, ranges in RANGES.items():
        for range_name, (value_range, levels) in ranges.items():
            for bins in BINS:
                if levels is not None and bins > levels:
                    continue  # the layer refuses it when built: more bins than the range has levels
                for layer in LAYERS:
                    out[dtype, range_name, bins, layer] = "unit" if value_range == (0, 1) else dtype
    return out


# The default subset: every dtype, range, bins value and layer appears, with the configurations
# that failed to convert before (12-bit uint16 CLAHE and equalization, uint16 CLAHE with 4096 bins
# over the full range, uint8 CLAHE on 0..200, uint8 equalization with 64 bins). A conversion costs
# seconds per layer (tens for CLAHE in ONNX), so the suite converts these eleven; the full matrix is
# `TF_HISTEQ_DEPLOY_MATRIX=full`. int16 is uint16's levels shifted by 32768 and runs the same
# kernels: one int16 cell here (its own 65536 levels through CLAHE), its CT window in the full matrix.
COVERING = [
    ("uint8", "default", 64, "he-opencv"),
    ("uint8", "default", 256, "he-pil"),
    ("uint8", "0-200", 201, "clahe"),
    ("uint16", "default", 4096, "clahe"),
    ("uint16", "default", 65536, "he-pil"),
    ("uint16", "12bit", 4096, "clahe"),
    ("uint16", "12bit", 4096, "he-opencv"),
    ("int16", "default", 65536, "clahe"),  # int16 shares uint16's kernels: one cell, its 2**16 levels
    ("float32", "default", 201, "clahe"),
    ("float32", "0-1", 64, "he-opencv"),
    ("float32", "0-1", 65536, "he-pil"),
]


def covering_cells() -> dict[tuple, str]:
    """The `COVERING` cells, with their input names."""
    cells = all_cells()
    return {cell: cells[cell] for cell in COVERING}


CELLS = all_cells() if FULL else covering_cells()


def output_name(cell: tuple) -> str:
    return "-".join(map(str, cell))


def build_model() -> keras.Model:
    inputs = {
        name: keras.Input((*SIZE, 1), dtype="float32" if name == "unit" else name, name=name)
        for name in ("uint8", "uint16", "int16", "float32", "unit")
        if any(source == name for source in CELLS.values())
    }
    outputs = {}
    for cell, source in CELLS.items():
        dtype, range_name, bins, layer = cell
        value_range = RANGES[dtype][range_name][0]
        outputs[output_name(cell)] = LAYERS[layer](value_range=value_range, bins=bins)(inputs[source])
    return keras.Model(inputs, outputs)


def make_inputs() -> dict[str, np.ndarray]:
    """Designed images, a constant one, and values outside the narrow ranges (clipped)."""
    makers = [_images.xray(), _images.beta(2, 5), _images.full_range(), _images.constant(0.3)]
    u8 = np.stack([m(SIZE, np.uint8) for m in makers])  # full_range reaches 255: above 200
    u16 = np.stack([m(SIZE, np.uint16) for m in makers])
    u16[[0, 1, 3]] >>= 4  # 12-bit data, and one 16-bit image: above 4095
    i16 = u16.astype(np.int32) - 1024  # Hounsfield-like: the 12-bit images in -1024..3071
    i16[2] = u16[2].astype(np.int32) - 32768  # the 16-bit image over all of int16, beyond the CT window
    i16 = i16.astype(np.int16)
    byte = u8.astype(np.float32)
    byte[:2] += 0.37  # fractional values, quantized by the layer
    unit = byte / 255
    unit[2, :3, :3] = [[-0.5, 1.5, np.nan]] * 3  # outside (0, 1), and NaN pixels (they stay NaN)
    byte[2, 0, :2] = [np.nan, 300.0]
    arrays = {"uint8": u8, "uint16": u16, "int16": i16, "float32": byte, "unit": unit}
    return {name: x[..., None] for name, x in arrays.items() if any(source == name for source in CELLS.values())}


class Converted:
    """The model, its `predict` outputs, and (converted lazily, once) its LiteRT and ONNX Runtime outputs."""

    def __init__(self):
        self.model = build_model()
        self.feed = make_inputs()
        self.expected = self.model.predict(self.feed, verbose=0)
        self._outputs = {}

    def outputs(self, target: str) -> dict:
        if target not in self._outputs:
            if target == "tflite":
                runner = Interpreter(model_content=deploy.to_tflite(self.model)).get_signature_runner()
                self._outputs[target] = runner(**self.feed)
            else:
                session = onnxruntime.InferenceSession(deploy.to_onnx(self.model).SerializeToString())
                values = session.run(None, {i.name: self.feed[i.name] for i in session.get_inputs()})
                self._outputs[target] = dict(zip([o.name for o in session.get_outputs()], values, strict=True))
        return self._outputs[target]

    def differing(self, target: str, cell: tuple) -> int:
        """How many values of the cell's output differ from `predict`'s (NaN equals NaN)."""
        got, want = self.outputs(target)[output_name(cell)], self.expected[output_name(cell)]
        assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
        return int((got != want).sum() - (np.isnan(got) & np.isnan(want)).sum())


@pytest.fixture(scope="module")
def converted():
    return Converted()


@pytest.mark.slow
@pytest.mark.parametrize("target", ["tflite", "onnx"])
@pytest.mark.parametrize("cell", list(CELLS), ids=output_name)
def test_every_cell_converts_and_gives_the_values_of_predict(cell, target, converted):
    assert converted.differing(target, cell) == 0


@pytest.mark.slow
def test_the_cells_change_the_images(converted):
    """The comparisons above are not between two identities: most values of the designed images change.

    Except where Pillow's rule returns the image unchanged: its step, `(N - h[top]) // (bins - 1)`,
    is 0 when an image has fewer pixels than bins (here 1,961 pixels, and 4096 or 65536 bins).
    """
    for cell, source in CELLS.items():
        image = converted.feed[source][:2].astype(np.float32)  # outputs are in the value range, as inputs
        changed = (converted.expected[output_name(cell)][:2] != image).mean()
        if cell[3] == "he-pil" and cell[2] - 1 > SIZE[0] * SIZE[1]:
            assert changed == 0, cell
        else:
            assert changed > 0.3, cell


def test_the_covering_subset_has_every_dtype_range_bins_and_layer():
    cells, covering = all_cells(), covering_cells()
    assert len(cells) == 99 and set(covering) <= set(cells)
    for position in (0, 2, 3):  # every dtype, every bins value, every layer
        assert {c[position] for c in covering} == {c[position] for c in cells}
    # Every (dtype, range) but int16's CT window: int16 has one cell by default (the full matrix has 27).
    assert {c[:2] for c in covering} == {c[:2] for c in cells} - {("int16", "ct")}
    assert sum(c[0] == "int16" for c in covering) == 1


if __name__ == "__main__":  # pragma: no cover - the table for the README: python -m tests.test_deploy_matrix
    import time

    made = Converted()
    for target in ("tflite", "onnx"):
        start = time.perf_counter()
        made.outputs(target)
        print(target, f"{time.perf_counter() - start:.1f} s", flush=True)
    for cell in CELLS:
        print(output_name(cell), *(made.differing(target, cell) for target in ("tflite", "onnx")), flush=True)
