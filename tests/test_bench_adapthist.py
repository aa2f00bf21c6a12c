"""The bench's `equalize_adapthist` rows: scikit-image's 2-D and 3-D adaptive equalization, against scikit-image.

One tiny run of both `--quick` workloads (the pixels must equal
scikit-image's float64 output), and the volume's memory guard and goal on
made-up probe entries (nothing timed there).
"""

from __future__ import annotations

import pytest

from tf_histeq.bench import memory, report, rows, run, targets, workloads
from tf_histeq.bench.timing import Settings

pytest.importorskip("skimage.exposure")

QUICK = Settings(quick=True, device="/CPU:0", repeats=1, min_repeats=1, budget_s=0.0, per_image_calls=1)
ADAPTHIST = [w for w in workloads.QUICK_WORKLOADS if w.kind == "adapthist"]


def test_workloads_and_rows():
    full = {w.key: w for w in workloads.FULL_WORKLOADS}
    assert full["adapthist_3d"].shape == (1, 128, 256, 256, 1) and full["adapthist_3d"].dtype == "uint16"
    assert full["adapthist_3d"].spatial_dims == 3 and full["adapthist_2d"].spatial_dims == 2
    assert full["adapthist_3d"].name == "equalize_adapthist 3-D 1x128x256x256x1 uint16"
    assert full["adapthist_3d"].op_kwargs == {"clip_limit": workloads.ADAPTHIST_CLIP}
    assert [w.key for w in ADAPTHIST] == ["adapthist_3d", "adapthist_2d"]
    assert max(w.megapixels for w in ADAPTHIST) < 0.02  # --quick stays quick
    labels = [impl.label for impl in rows.impls_for(full["adapthist_3d"])]
    assert labels == ["skimage equalize_adapthist", "equalize_adapthist XLA"]
    jobs = memory.memory_jobs(workloads.FULL_WORKLOADS, quick=False)
    assert (full["adapthist_3d"], "adapthist", "xla") in jobs
    assert all(w.kind != "adapthist" for w, _, _ in memory.memory_jobs(workloads.QUICK_WORKLOADS, quick=True))


@pytest.mark.parametrize(
    "w",
    [pytest.param(w, marks=[pytest.mark.slow] if w.spatial_dims == 3 else []) for w in ADAPTHIST],
    ids=lambda w: w.key,
)
def test_quick_rows_equal_skimage(w):
    """Both rows run; ours equals scikit-image's output value for value, and its ratio is against it."""
    out = run.run_workload(w, run._array_context(w, QUICK), QUICK)
    run.add_ratios(out)
    peer, ours = out
    assert peer["status"] == ours["status"] == "ok", out
    assert ours["compared_with"] == "skimage equalize_adapthist" and ours["differing_pixels"] == 0
    assert ours["ratio_vs_cv2"] == pytest.approx(ours["mp_per_s"] / peer["mp_per_s"])


def _results(steady_bytes: int | None):
    w = {w.key: w for w in workloads.FULL_WORKLOADS}["adapthist_3d"]
    entry = {"workload_key": w.key, "workload": w.name, "implementation": "equalize_adapthist", "mode": "xla"}
    entry.update(status="ok", input_bytes=128 * 256 * 256 * 2, float32_bytes=128 * 256 * 256 * 4)
    entry.update(first_call={"host_peak_above_bytes": 9 * 2**24}, steady={"host_peak_above_bytes": steady_bytes})
    return {"rows": [], "workloads": [{"key": w.key, "name": w.name}], "memory": [entry] if steady_bytes else []}, w


def test_memory_guard_and_goal():
    results, w = _results(3 * 2**25)  # 3x the volume's 32 MiB in float32
    guard, goal = targets._adapthist_memory(results, {w.key: w.name})
    assert guard["kind"] == "guard" and guard["status"] == "PASS" and guard["value"] == pytest.approx(3.0)
    assert goal["kind"] == "goal" and goal["status"] == "REACHED" and goal["threshold"] == 4.0
    assert "(4.5x / 3.0x the input's size in float32)" in report._memory_text(results["memory"][0])
    results, _ = _results(5 * 2**25)
    guard, goal = targets._adapthist_memory(results, {w.key: w.name})
    assert guard["status"] == "PASS" and goal["status"] == "NOT REACHED" and goal["gap"] == pytest.approx(1.25)
    results, _ = _results(None)
    assert [t["status"] for t in targets._adapthist_memory(results, {w.key: w.name})] == ["SKIP", "SKIP"]
