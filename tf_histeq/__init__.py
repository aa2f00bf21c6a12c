"""tf_histeq: histogram equalization, CLAHE and histogram matching in TensorFlow ops.

Bit-exact with OpenCV (`cv2.equalizeHist`, `cv2.createCLAHE`), Pillow
(`ImageOps.equalize`) and scikit-image (`exposure.match_histograms`,
`exposure.equalize_adapthist` on images and volumes), per image
and per channel, eager, in `tf.function`, under XLA and in `tf.data`: verified
on CPU, and in models exported to TensorFlow Lite (LiteRT) and ONNX Runtime. On
a GPU the same ops run, but their pixels have not been checked there yet
(`tf-histeq bench --device gpu` compares them with the reference libraries').

The public names are loaded on first use, so that `import tf_histeq` and the
`tf-histeq --help` command line do not pay for importing TensorFlow.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_EXPORTS = {
    "equalize_hist": "tf_histeq.ops",
    "clahe": "tf_histeq.ops",
    "match_histograms": "tf_histeq.ops",
    "equalize_adapthist": "tf_histeq.adaptive",
    "reference_histogram": "tf_histeq.ops",
    "Histogram": "tf_histeq._reference",
    "histogram_equalization": "tf_histeq.numpy_api",
    "preprocessing_function": "tf_histeq.numpy_api",
    "compiled_shapes": "tf_histeq._xla",
    "percentiles": "tf_histeq.standardize",
    "scale_intensity_range": "tf_histeq.standardize",
    "scale_intensity_percentiles": "tf_histeq.standardize",
    "window": "tf_histeq.standardize",
    "WINDOWS": "tf_histeq.standardize",
    "nyul_landmarks": "tf_histeq.standardize",
    "nyul_fit": "tf_histeq.standardize",
    "nyul_standardize": "tf_histeq.standardize",
    "clear_compiled": "tf_histeq._xla",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tf_histeq' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
