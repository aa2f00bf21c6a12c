"""Which rows each kind of workload has: the registry of implementations.

To add a row, write a builder in `ours` (or `peers`) and add an `Impl` to the
table of its workload kind below; to give it a target, add a `Target` to
`targets.TARGETS` naming its label. A new kind of input gets a `Workload` in
`workloads` and a table here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from tf_histeq.bench import ours, peers, standardize
from tf_histeq.bench.workloads import Workload

TFDATA_NOTE = "slices -> map_fn -> batch(N), end to end"


@dataclasses.dataclass(frozen=True)
class Impl:
    """One row of a workload: a label and a factory returning the timed callable.

    `group` is `"ours"` (a tf_histeq row: its failure fails the run), `"peer"`,
    or `"baseline"` (a helper figure, such as a pipeline without its map).
    `ref` makes the row the reference of a ratio column: `"cv2"` (the output of
    the ours rows is also compared with it pixel for pixel), `"keras"`, `"op"`
    (the XLA-compiled op) or `"pipeline"`. `minus` names a reference whose time
    is subtracted from this row's to give its `cost_s` (what a map adds to its
    pipeline).
    """

    label: str
    group: str
    build: Callable[[Workload, dict], Callable[[], object]]
    ref: str | None = None
    note: str = ""
    minus: str | None = None


def _ways_in(op: str, layer: str) -> tuple[Impl, ...]:
    return (
        Impl(f"{op} eager", "ours", ours.eager),
        Impl(f"{op} tf.function", "ours", ours.function),
        Impl(f"{op} XLA", "ours", ours.xla, ref="op"),
        Impl("tf.data without the map", "baseline", ours.tfdata_without_map, ref="pipeline", note="slices -> batch"),
        Impl(f"{op} in tf.data", "ours", ours.tfdata_map, note=TFDATA_NOTE, minus="pipeline"),
        Impl(f"{layer} predict_on_batch", "ours", ours.predict_on_batch, note="a model holding only the layer"),
        Impl(
            f"{layer}(dtype=input's) predict_on_batch",
            "ours",
            functools.partial(ours.predict_on_batch, same_dtype=True),
            note="the same, with integer output instead of Keras's default float32",
        ),
    )


HIST_IMPLS = (
    Impl("cv2.equalizeHist loop", "peer", peers.cv2_equalize, ref="cv2"),
    Impl("PIL ImageOps.equalize loop", "peer", peers.pil_equalize),
    Impl("skimage equalize_hist loop", "peer", peers.skimage_equalize),
    Impl("numpy bincount+LUT loop", "peer", peers.numpy_loop, note="baseline where cv2 has no 16-bit equalizeHist"),
    Impl(
        "keras Equalization, tf.function",
        "peer",
        peers.keras_layer(peers.keras_equalization, jit=False),
        ref="keras",
        note="pools the histogram over the batch",
    ),
    Impl("keras Equalization, XLA", "peer", peers.keras_layer(peers.keras_equalization, jit=True)),
    Impl("original numpy function", "peer", peers.original_function),
    *_ways_in("equalize_hist", "HistogramEqualization"),
)
CLAHE_IMPLS = (
    Impl("cv2 CLAHE loop", "peer", peers.cv2_clahe, ref="cv2"),
    Impl("skimage equalize_adapthist loop", "peer", peers.skimage_clahe),
    *_ways_in("clahe", "CLAHE"),
    # Last: the most memory-hungry rows.
    Impl(
        "keras CLAHE layer, tf.function",
        "peer",
        peers.keras_layer(peers.keras_clahe, jit=False, memory_guard=True),
        ref="keras",
    ),
    Impl("keras CLAHE layer, XLA", "peer", peers.keras_layer(peers.keras_clahe, jit=True, memory_guard=True), "keras"),
)
FILES_IMPLS = (
    Impl(
        "read, decode_png, numpy_function(cv2 CLAHE), batch(8)",
        "peer",
        peers.cv2_file_pipeline,
        ref="cv2",
        note="tf.numpy_function around cv2.createCLAHE(2, (8, 8)).apply",
    ),
    Impl("read, decode_png, map_fn('clahe'), batch(8)", "ours", ours.png_pipeline),
)
MATCH_IMPLS = (
    Impl(
        "skimage match_histograms loop",
        "peer",
        peers.skimage_match,
        ref="cv2",
        note="per plane, rounded to uint8: the reference of this workload",
    ),
    Impl("match_histograms eager", "ours", ours.eager),
    Impl("match_histograms tf.function", "ours", ours.function),
    Impl("match_histograms XLA", "ours", ours.xla, ref="op"),
    Impl("HistogramMatching predict_on_batch", "ours", ours.predict_on_batch, note="a model holding only the layer"),
)
AUGMENT_IMPLS = (
    Impl("CLAHE layer, fit step", "ours", ours.fit_clahe, ref="op", note="clip_limit 2: the reference of this row"),
    Impl(
        "RandomCLAHE layer, fit step",
        "ours",
        ours.fit_random_clahe,
        note="clip_limit drawn from (1, 4) per image, factor 1",
    ),
)
ADAPTHIST_IMPLS = (
    Impl(
        "skimage equalize_adapthist",
        "peer",
        peers.skimage_adapthist,
        ref="cv2",
        note="per image or volume: the reference of this workload (float64, compared value for value)",
    ),
    Impl("equalize_adapthist XLA", "ours", ours.adapthist_xla, note="the public op, spatial_dims stated"),
)
NYUL_IMPLS = (
    Impl(
        "TorchIO HistogramStandardization",
        "peer",
        standardize.torchio_apply,
        ref="cv2",
        note="apply, landmarks given: the reference of this workload (float32, compared value for value)",
    ),
    Impl("nyul_standardize XLA", "ours", standardize.nyul),
    Impl("nyul_standardize tf.function", "ours", functools.partial(standardize.nyul, jit_compile=False)),
)
PERCENTILE_IMPLS = (
    Impl(
        "MONAI ScaleIntensityRangePercentiles",
        "peer",
        standardize.monai_percentiles,
        ref="cv2",
        note="1-99 to 0-1: the reference of this workload (float32, compared value for value)",
    ),
    Impl("scale_intensity_percentiles XLA", "ours", standardize.percentiles),
    Impl(
        "scale_intensity_percentiles tf.function",
        "ours",
        functools.partial(standardize.percentiles, jit_compile=False),
    ),
)
CLI_IMPLS = (
    Impl("cv2 loop script", "peer", peers.cv2_script, ref="cv2", note="imread, apply, imwrite per file"),
    Impl("tf-histeq clahe DIR -o OUT", "ours", ours.cli),
)


def impls_for(w: Workload) -> tuple[Impl, ...]:
    """The rows of workload `w`."""
    if w.kind == "files":
        return FILES_IMPLS
    if w.kind == "cli":
        return CLI_IMPLS
    if w.kind == "match":
        return MATCH_IMPLS
    if w.kind == "augment":
        return AUGMENT_IMPLS
    if w.kind == "adapthist":
        return ADAPTHIST_IMPLS
    if w.kind == "nyul":
        return NYUL_IMPLS
    if w.kind == "percentiles":
        return PERCENTILE_IMPLS
    if w.kind == "clahe":
        return CLAHE_IMPLS
    if w.dtype == "uint8":  # the numpy loop is only the baseline of the 16-bit workload
        return tuple(i for i in HIST_IMPLS if i.build is not peers.numpy_loop)
    return HIST_IMPLS
