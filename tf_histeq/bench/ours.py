"""tf_histeq's rows: the op called each way, and the ways in a user takes.

Builders as in `peers`: `build(workload, ctx) -> callable`, the callable
returning its output, which `run` compares pixel for pixel with the cv2 row of
the workload where there is one.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tf_histeq import adaptive, data, layers, ops
from tf_histeq.bench import files
from tf_histeq.bench.timing import materialise
from tf_histeq.bench.workloads import SEED, Workload


def eager(w: Workload, ctx: dict):
    """The op called eagerly."""
    op, kwargs, x = ops.OPS[w.op], ctx["op_kwargs"], ctx["tensor"]
    return lambda: materialise(op(x, **kwargs))


def _compiled(w: Workload, ctx: dict, jit_compile: bool):
    op, kwargs, x = ops.OPS[w.op], ctx["op_kwargs"], ctx["tensor"]
    # The op has no tensor-dependent Python control flow: AutoGraph would only slow down the (untimed) tracing.
    fn = tf.function(lambda images: op(images, **kwargs), jit_compile=jit_compile, autograph=False)
    return lambda: materialise(fn(x))


def function(w: Workload, ctx: dict):
    """The op in a `tf.function`, without XLA."""
    return _compiled(w, ctx, jit_compile=False)


def xla(w: Workload, ctx: dict):
    """The op in a `tf.function(jit_compile=True)`: the reference of the ways in (`x op`)."""
    return _compiled(w, ctx, jit_compile=True)


# The slices pipelines run this many batches per iterator, as an epoch does: a
# new iterator instantiates its map function and ramps its parallelism up, a
# start-up that an epoch of one batch would time as if it were the map's cost.
EPOCH_BATCHES = 8


def _slices_pipeline(w: Workload, ctx: dict, mapper):
    batches = 1 if ctx["settings"].quick else EPOCH_BATCHES
    dataset = tf.data.Dataset.from_tensor_slices(ctx["numpy"]).repeat(batches)
    ctx["measured_megapixels"] = w.megapixels * batches
    ctx["note"] = f"an epoch of {batches} batch{'es' * (batches > 1)} in one iterator"
    if mapper is not None:
        dataset = dataset.map(mapper, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(w.shape[0])
    if ctx["settings"].device.startswith("/GPU"):
        ctx["note"] = "tf.data runs on the host CPU"

    def run():
        return [batch.numpy() for batch in dataset]

    return run


def tfdata_map(w: Workload, ctx: dict):
    """`from_tensor_slices(images)` repeated, `.map(map_fn(op), AUTOTUNE).batch(N)`: one epoch, end to end."""
    return _slices_pipeline(w, ctx, data.map_fn(w.op, **w.op_kwargs))


def tfdata_without_map(w: Workload, ctx: dict):
    """The same pipeline without the map: subtracted from `tfdata_map` to give the map's cost."""
    return _slices_pipeline(w, ctx, None)


_LAYERS = {"equalize_hist": "HistogramEqualization", "clahe": "CLAHE", "match_histograms": "HistogramMatching"}


def predict_on_batch(w: Workload, ctx: dict, *, same_dtype: bool = False):
    """`model.predict_on_batch(images)` of a model holding only the layer, with its default arguments.

    With `same_dtype`, the layer's `dtype` is the input's, so it outputs
    integers instead of the float32 of Keras's default policy (4x the bytes).
    """
    options = {**ctx["op_kwargs"], **({"dtype": w.dtype} if same_dtype else {})}
    layer = getattr(layers, _LAYERS[w.op])(**options)
    model = keras.Sequential([keras.Input(shape=w.shape[1:], dtype=w.dtype), layer])
    x = ctx["numpy"]
    return lambda: model.predict_on_batch(x)


def _fit_step(w: Workload, ctx: dict, layer):
    """One `train_on_batch` of a small convolutional model that starts with `layer` (Keras's default compile)."""
    model = keras.Sequential(
        [
            keras.Input(shape=w.shape[1:], dtype=w.dtype),
            layer,
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    x, y = ctx["numpy"], ctx["numpy"].mean(axis=(1, 2, 3))[:, None] / 255
    return lambda: model.train_on_batch(x, y)


def fit_clahe(w: Workload, ctx: dict):
    """A fit step with the fixed `CLAHE(clip_limit=2)` layer: the reference of `fit_random_clahe`."""
    return _fit_step(w, ctx, layers.CLAHE(**w.op_kwargs))


def fit_random_clahe(w: Workload, ctx: dict):
    """A fit step with `RandomCLAHE(clip_limit=(1, 4), factor=1)`: a limit drawn and applied for every image."""
    return _fit_step(w, ctx, layers.RandomCLAHE(clip_limit=(1.0, 4.0), factor=1.0, seed=SEED))


def adapthist_xla(w: Workload, ctx: dict):
    """scikit-image's `equalize_adapthist` as tf_histeq computes it, in a `tf.function(jit_compile=True)`.

    The public op, with the workload's layout stated (`spatial_dims`),
    scikit-image's default kernel size and its clip limit.
    """
    kwargs, x = ctx["op_kwargs"], ctx["tensor"]
    fn = tf.function(
        lambda images: adaptive.equalize_adapthist(images, spatial_dims=w.spatial_dims, **kwargs),
        jit_compile=True,
        autograph=False,
    )
    if ctx["settings"].device.startswith("/GPU"):
        return lambda: materialise(fn(x))
    # On the host, the float64 result is taken as NumPy's without a copy (`.numpy()` copies it, 8 bytes a
    # voxel, which scikit-image's row does not pay), as the memory probe holds it.
    return lambda: np.asarray(fn(x))


def png_pipeline(w: Workload, ctx: dict):
    """The PNG pipeline (`files.pipeline_row`) with `map_fn(op)` as its map."""
    return files.pipeline_row(ctx, data.map_fn(w.op, **w.op_kwargs))


def cli(w: Workload, ctx: dict):
    """`tf-histeq OP IN -o OUT` in a subprocess, start-up included."""
    return files.folder_row(ctx, files.cli_command(w.op), f"{w.key}-tf-histeq")
