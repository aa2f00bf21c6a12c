"""The speed and memory targets, each PASS, MISS or SKIP, evaluated on the figures of one run.

A `Target` reads one field of the rows it names (the best of them) in one
workload: a ratio column (`ratio_vs_cv2`, `ratio_vs_keras`, `ratio_vs_op`) or
`cost_vs_op` (what a tf.data map adds to its pipeline, over the op's time).
With `as_time`, a speed ratio is turned into a time ratio (1 / ratio), for
targets stated as "at most N times the time of".
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tf_histeq.bench.workloads import GIB, MANY_FILES_WORKLOADS


@dataclasses.dataclass(frozen=True)
class Target:
    """A threshold on the best value of `field` among `rows` of workload `workload`."""

    workload: str
    rows: tuple[str, ...]
    field: str
    threshold: float
    text: str
    higher: bool = True
    as_time: bool = False

    def value(self, rows: list[dict[str, Any]]) -> float | None:
        """The best value among the rows that ran, or None."""
        values = [
            r[self.field]
            for r in rows
            if r["workload_key"] == self.workload
            and r["implementation"] in self.rows
            and r["status"] == "ok"
            and r.get(self.field) is not None
        ]
        if self.as_time:
            values = [1.0 / v for v in values if v > 0]
        if not values:
            return None
        return max(values) if self.higher else min(values)


_EQ_OPS = ("equalize_hist tf.function", "equalize_hist XLA")
_CLAHE_OPS = ("clahe tf.function", "clahe XLA")
TARGETS = (
    Target("hist_gray", _EQ_OPS, "ratio_vs_cv2", 0.5, "best of equalize_hist tf.function / XLA >= 0.5x the cv2 loop"),
    Target("hist_rgb", _EQ_OPS, "ratio_vs_cv2", 0.5, "best of equalize_hist tf.function / XLA >= 0.5x the cv2 loop"),
    Target("clahe_gray", _CLAHE_OPS, "ratio_vs_cv2", 0.5, "best of clahe tf.function / XLA >= 0.5x the cv2 loop"),
    Target(
        "hist_gray",
        _EQ_OPS,
        "ratio_vs_keras",
        3.0,
        "best of equalize_hist tf.function / XLA >= 3x keras Equalization tf.function",
    ),
    Target(
        "hist_rgb",
        _EQ_OPS,
        "ratio_vs_keras",
        3.0,
        "best of equalize_hist tf.function / XLA >= 3x keras Equalization tf.function",
    ),
    Target("clahe_gray", _CLAHE_OPS, "ratio_vs_keras", 20.0, "best of clahe tf.function / XLA >= 20x keras CLAHE"),
    Target(
        "hist_gray",
        ("HistogramEqualization predict_on_batch",),
        "ratio_vs_op",
        0.8,
        "HistogramEqualization predict_on_batch >= 0.8x equalize_hist XLA",
    ),
    Target("clahe_gray", ("CLAHE predict_on_batch",), "ratio_vs_op", 0.8, "CLAHE predict_on_batch >= 0.8x clahe XLA"),
    Target(
        "hist_gray",
        ("equalize_hist in tf.data",),
        "cost_vs_op",
        1.25,
        "the tf.data map costs <= 1.25x equalize_hist XLA",
        higher=False,
    ),
    Target(
        "clahe_gray",
        ("clahe in tf.data",),
        "cost_vs_op",
        1.25,
        "the tf.data map costs <= 1.25x clahe XLA",
        higher=False,
    ),
    Target(
        "match_gray",
        ("match_histograms tf.function", "match_histograms XLA"),
        "ratio_vs_cv2",
        10.0,
        "best of match_histograms tf.function / XLA >= 10x the skimage match_histograms loop",
    ),
    Target(
        "augment",
        ("RandomCLAHE layer, fit step",),
        "ratio_vs_op",
        1.3,
        "a fit step with RandomCLAHE takes <= 1.3x the time of one with the fixed CLAHE layer",
        higher=False,
        as_time=True,
    ),
    Target(
        "files",
        ("read, decode_png, map_fn('clahe'), batch(8)",),
        "ratio_vs_cv2",
        1.0,
        "map_fn('clahe') pipeline >= 1.0x the numpy_function(cv2) pipeline",
    ),
    Target(
        "cli",
        ("tf-histeq clahe DIR -o OUT",),
        "ratio_vs_cv2",
        1.25,
        "tf-histeq clahe takes <= 1.25x the time of the cv2 loop script",
        higher=False,
        as_time=True,
    ),
    Target(
        "cli_many",
        ("tf-histeq clahe DIR -o OUT",),
        "ratio_vs_cv2",
        1.0,
        "tf-histeq clahe takes <= 1.0x the time of the cv2 loop script (--many-files)",
        higher=False,
        as_time=True,
    ),
)
MEMORY_TARGET_GIB = 1.0
PER_IMAGE_TARGET_MS = 2.0
PER_IMAGE_TARGET_SPEEDUP = 100.0


def _target(name: str, value, threshold: float, *, higher: bool, unit: str, why: str = "") -> dict[str, Any]:
    target = {"target": name, "value": value, "threshold": threshold, "unit": unit}
    if value is None:
        return {**target, "status": "SKIP", "note": why or "a figure it needs did not run"}
    return {**target, "status": "PASS" if (value >= threshold if higher else value <= threshold) else "MISS"}


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of `TARGETS`, then memory and the ImageDataGenerator function: PASS, MISS or SKIP."""
    names = {w.key: w.name for w in MANY_FILES_WORKLOADS}
    names.update({w["key"]: w["name"] for w in results["workloads"]})
    out = []
    for t in TARGETS:
        why = ""
        if t.workload not in {w["key"] for w in results["workloads"]}:
            many = t.workload in {w.key for w in MANY_FILES_WORKLOADS}
            why = "not run: add --many-files" if many else "not in this run"
        name = f"{names.get(t.workload, t.workload)}: {t.text}"
        out.append(_target(name, t.value(results["rows"]), t.threshold, higher=t.higher, unit="x", why=why))
    peaks = [
        max(m["first_call"]["host_peak_above_bytes"], m["steady"]["host_peak_above_bytes"]) / GIB
        for m in results["memory"]
        if m["workload_key"] == "clahe_rgb" and m["implementation"] == "clahe" and m["status"] == "ok"
    ]
    name = f"{names.get('clahe_rgb', 'clahe_rgb')}: clahe peak memory < {MEMORY_TARGET_GIB:g} GiB above the input"
    name += " (worst mode)"
    out.append(_target(name, max(peaks) if peaks else None, MEMORY_TARGET_GIB, higher=False, unit="GiB"))
    ours = results["per_image"][0]
    name = f"{ours['image']}: histogram_equalization"
    out.append(
        _target(
            f"{name} <= {PER_IMAGE_TARGET_MS:g} ms", ours["ms_per_image"], PER_IMAGE_TARGET_MS, higher=False, unit="ms"
        )
    )
    out.append(
        _target(
            f"{name} >= {PER_IMAGE_TARGET_SPEEDUP:g}x the original numpy function",
            ours.get("speedup_vs_original"),
            PER_IMAGE_TARGET_SPEEDUP,
            higher=True,
            unit="x",
        )
    )
    return out
