"""Bench rows of the standardization ops against TorchIO and MONAI, on the same volumes in the same run.

`nyul` workloads: TorchIO's `HistogramStandardization` apply (the reference
row: our output must equal its float32 output value for value) and
`tf_histeq.nyul_standardize` (XLA-compiled, and not: float volumes need a sort,
which XLA's CPU sort runs several times slower than TensorFlow's), with the landmarks `nyul_fit`
learns on the workload itself. `percentiles` workloads: MONAI's
`ScaleIntensityRangePercentiles(lower=1, upper=99, b_min=0, b_max=1)` (the
reference) and `tf_histeq.scale_intensity_percentiles`, the same two ways. TorchIO
and MONAI are optional: without them their rows are skipped with a message.
Both peers get the volume as a float32 torch tensor `(1, D, H, W)` (as their
image readers give it), converted before the clock starts; TorchIO and MONAI
run on the threads PyTorch chooses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from tf_histeq import standardize
from tf_histeq.bench.peers import optional_module
from tf_histeq.bench.workloads import Workload

# MONAI's ScaleIntensityRangePercentiles arguments of the `percentiles` rows.
PERCENTILES: dict[str, Any] = {"lower": 1.0, "upper": 99.0, "b_min": 0.0, "b_max": 1.0}


def _landmarks(ctx: dict) -> np.ndarray:
    if "landmarks" not in ctx:
        ctx["landmarks"] = standardize.nyul_fit([ctx["numpy"]], spatial_dims=3)
    return ctx["landmarks"]


def _torch_volume(ctx: dict):
    torch = optional_module("torch")
    x = ctx["numpy"]
    if x.shape[0] != 1 or x.shape[-1] != 1:
        raise ValueError(f"the standardization rows take one one-channel volume (1, D, H, W, 1), not {x.shape}")
    return torch.from_numpy(np.ascontiguousarray(x[0, ..., 0], np.float32))[None]


def torchio_apply(w: Workload, ctx: dict):
    """TorchIO's `HistogramStandardization` on the volume (a `Subject` with one `ScalarImage`)."""
    torchio = optional_module("torchio")
    volume = _torch_volume(ctx)
    transform = torchio.HistogramStandardization({"image": _landmarks(ctx)[0]})
    subject = torchio.Subject(image=torchio.ScalarImage(tensor=volume))

    def run():
        return transform(subject)["image"].data.numpy()[0][None, ..., None]

    return run


def nyul(w: Workload, ctx: dict, *, jit_compile: bool = True):
    """`tf_histeq.nyul_standardize` in a `tf.function` (XLA-compiled or not), the landmarks a constant."""
    landmarks = _landmarks(ctx)
    fn = tf.function(
        lambda x: standardize.nyul_standardize(x, landmarks, spatial_dims=3), jit_compile=jit_compile, autograph=False
    )
    x = ctx["tensor"]
    return lambda: fn(x).numpy()


def monai_percentiles(w: Workload, ctx: dict):
    """MONAI's `ScaleIntensityRangePercentiles` on the volume."""
    transforms = optional_module("monai.transforms")
    volume = _torch_volume(ctx)
    transform = transforms.ScaleIntensityRangePercentiles(**PERCENTILES)

    def run():
        return np.asarray(transform(volume))[0][None, ..., None]

    return run


def percentiles(w: Workload, ctx: dict, *, jit_compile: bool = True):
    """`tf_histeq.scale_intensity_percentiles` in a `tf.function` (XLA-compiled or not)."""
    fn = tf.function(
        lambda x: standardize.scale_intensity_percentiles(x, **PERCENTILES, spatial_dims=3),
        jit_compile=jit_compile,
        autograph=False,
    )
    x = ctx["tensor"]
    return lambda: fn(x).numpy()
