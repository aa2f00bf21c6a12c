"""Running the rows: inputs per workload, warm-up, interleaved timing, pixel checks, ratios."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import tensorflow as tf

from tf_histeq import numpy_api
from tf_histeq.bench import files, memory, noise, ours, rows, targets, workloads
from tf_histeq.bench.machine import machine_info
from tf_histeq.bench.report import PROG, SCHEMA
from tf_histeq.bench.timing import Settings, first_line, measure, measure_interleaved, recorded_warnings, warm_up
from tf_histeq.bench.workloads import CLIP_LIMIT, MEAN, SEED, STD, TILE_GRID, Skip, Workload

WARM_FILES = 2  # files in the folder a command warms up on

METHOD = {
    "megapixel": "10**6 samples (N*H*W*C; for files, all the files)",
    "inputs": (
        f"batches: normal({MEAN:g}, {STD:g}) rounded and clipped, seed {SEED}, uint16 scaled to its range; "
        f"files: 8-bit gray PNGs, Gaussian-blurred noise (sigma {workloads.FILE_SIGMA:g} px) rescaled to mean "
        f"{workloads.FILE_MEAN:g} and std {workloads.FILE_STD:g}, plus normal(0, {workloads.FILE_GRAIN:g}) grain"
    ),
    "clahe": f"clip_limit {CLIP_LIMIT:g}, {TILE_GRID[0]}x{TILE_GRID[1]} tiles",
    "pixels": (
        "the output of every tf_histeq row is compared sample for sample with the reference row of its "
        "workload (OpenCV; scikit-image rounded half to even for match_histograms; scikit-image's float64 output "
        "for equalize_adapthist), where there is one; any "
        "difference makes the row an error"
    ),
    "match_histograms": "every image matched to one reference image, normal(150, 40), as large as the images",
    "fit step": (
        "one train_on_batch of Input -> layer -> Rescaling -> Conv2D(8, 3) -> GlobalAveragePooling2D -> "
        "Dense(1), compiled with Keras's defaults"
    ),
    "tf.data map cost": (
        f"t(from_tensor_slices(images).repeat({ours.EPOCH_BATCHES}).map(map_fn(op), num_parallel_calls=AUTOTUNE)"
        f".batch(N)) minus t(from_tensor_slices(images).repeat({ours.EPOCH_BATCHES}).batch(N)), each one new "
        f"iterator run to the end (an epoch of {ours.EPOCH_BATCHES} batches, its start-up included; 1 with "
        "--quick), per batch, against t(the XLA-compiled op on the same N images as one batch); all three in "
        "the same rounds"
    ),
    "files": (
        "a fresh folder of PNGs; tf.data: from_tensor_slices(paths) -> map(read_file + decode_png(channels=1)) "
        "-> map(equalize) -> batch(8), both maps AUTOTUNE; CLI and script: subprocesses (start-up included) "
        "writing into a new output folder each run, after a warm-up run on "
        f"{WARM_FILES} files"
    ),
    "memory": memory.MEMORY_METHOD,
}


def _array_context(w: Workload, settings: Settings) -> dict[str, Any]:
    x = workloads.make_input(w.shape, w.dtype, w.value_range, seed=SEED)
    ctx = {"numpy": x, "tensor": tf.identity(tf.constant(x)), "settings": settings, "op_kwargs": w.op_kwargs}
    if w.kind == "match":
        ctx["reference"] = workloads.make_reference(*w.shape[1:3])
        ctx["op_kwargs"] = {**w.op_kwargs, "reference": ctx["reference"]}
    return ctx


def _files_context(w: Workload, settings: Settings, scratch: str, folders: dict, say) -> dict[str, Any]:
    """The PNG folder of `w` (written once per size and count, shared by the workloads that use it)."""
    count, height, width, _ = w.shape
    folder = os.path.join(scratch, f"png-{count}x{height}x{width}")
    if folder not in folders:
        start = time.perf_counter()
        paths = workloads.write_png_folder(folder, count, height, width)
        warm_folder = folder + "-warm"
        os.makedirs(warm_folder)
        for path in paths[:WARM_FILES]:
            shutil.copy(path, warm_folder)
        folders[folder] = (paths, warm_folder)
        say(f"wrote {count} PNG files of {height}x{width} in {time.perf_counter() - start:.1f} s")
    paths, warm_folder = folders[folder]
    return {"folder": folder, "paths": paths, "warm_folder": warm_folder, "scratch": scratch, "settings": settings}


def _as_arrays(output) -> np.ndarray | dict[str, np.ndarray]:
    if isinstance(output, str):  # an output folder
        return files.read_folder(output)
    if isinstance(output, list):  # the batches of a pipeline
        return np.concatenate([np.asarray(batch) for batch in output])
    return np.asarray(output)


def compare_outputs(output, reference) -> tuple[int, int]:
    """`(differing samples, samples)` between two rows' outputs (arrays, batches or output folders).

    An output of several passes over the workload's images (the tf.data rows')
    is compared pass by pass with the reference.

    Raises:
        ValueError: If the outputs do not have the same shapes, or the same file names.
    """
    ours, ref = _as_arrays(output), _as_arrays(reference)
    if isinstance(ref, dict) or isinstance(ours, dict):
        if not (isinstance(ref, dict) and isinstance(ours, dict)) or sorted(ours) != sorted(ref):
            n_ours = len(ours) if isinstance(ours, dict) else "no"
            raise ValueError(f"wrote {n_ours} files where the reference wrote {len(ref)}, or other names")
        pairs = [(ours[name], ref[name]) for name in sorted(ref)]
    else:
        pairs = [(ours, ref)]
    differing = total = 0
    for a, b in pairs:
        if a.ndim == b.ndim >= 1 and a.shape[1:] == b.shape[1:] and b.shape[0] and a.shape[0] % b.shape[0] == 0:
            b = np.concatenate([b] * (a.shape[0] // b.shape[0]))
        if a.shape != b.shape:
            raise ValueError(f"output shape {a.shape}, the reference's {b.shape}")
        differing += int(np.count_nonzero(a != b))
        total += a.size
    return differing, total


def _check_pixels(ready: list[tuple[dict, Any]]) -> None:
    """Compare every ours row's last output with the cv2 row's; a difference makes the row an error."""
    reference = next(((r, out) for r, out in ready if r["reference"] == "cv2" and r["status"] == "ok"), None)
    if reference is None:
        return
    ref_row, ref_out = reference
    for row, out in ready:
        if row["group"] != "ours" or row["status"] != "ok":
            continue
        row["compared_with"] = ref_row["implementation"]
        try:
            differing, total = compare_outputs(out, ref_out)
        except ValueError as err:
            row.update(status="error", note=f"output differs from {ref_row['implementation']}: {err}")
            continue
        row["differing_pixels"] = differing
        if differing:
            note = f"{differing} of {total} samples differ from {ref_row['implementation']}"
            row.update(status="error", note=note)


def _new_row(w: Workload, impl: rows.Impl) -> dict[str, Any]:
    return {
        "workload": w.name,
        "workload_key": w.key,
        "kind": w.kind,
        "shape": list(w.shape),
        "dtype": w.dtype,
        "megapixels": w.megapixels,
        "implementation": impl.label,
        "group": impl.group,
        "reference": impl.ref,
        "minus": impl.minus,
        "status": "ok",
        "mp_per_s": None,
        "spread_s": None,
        "note": impl.note,
    }


def run_workload(w: Workload, ctx: dict, settings: Settings) -> list[dict[str, Any]]:
    """Build and warm up every row of `w`, time them in interleaved rounds, check their pixels.

    `ctx` holds the inputs (see `peers`), or `skip`: why none could be made.
    """
    out_rows, ready = [], []
    for impl in rows.impls_for(w):
        row = _new_row(w, impl)
        out_rows.append(row)
        if "skip" in ctx:
            row.update(status="skipped", note=ctx["skip"])
            continue
        row_ctx = dict(ctx)
        start = time.perf_counter()
        try:
            with recorded_warnings(row):
                fn = impl.build(w, row_ctx)
                if "warm_up" in row_ctx:
                    row_ctx["warm_up"]()
                else:
                    warm_up(fn, settings)
        except Skip as err:
            row.update(status="skipped", note=str(err))
            continue
        except Exception as err:  # a failing row must not stop the bench (ours fail the run at the end)
            row.update(status="error", note=first_line(err))
            continue
        finally:
            row["warmup_s"] = time.perf_counter() - start  # building, tracing and compiling included
        row["measured_megapixels"] = row_ctx.get("measured_megapixels", w.megapixels)
        if "note" in row_ctx:
            row["note"] = "; ".join(filter(None, [row["note"], row_ctx["note"]]))
        ready.append((row, fn))

    with warnings.catch_warnings():  # what the calls warn about was recorded during the warm-up
        warnings.simplefilter("ignore")
        timings = measure_interleaved([fn for _, fn in ready], settings)
    outputs = []
    for (row, _), timing in zip(ready, timings, strict=True):
        error, output = timing.pop("error"), timing.pop("output")
        outputs.append((row, output))
        if error is not None:
            row.update(status="error", note=first_line(error))
            continue
        row.update(timing, mp_per_s=row["measured_megapixels"] / timing["median_s"])
        row["spread_s"] = noise.spread(timing["times_s"])
    _check_pixels(outputs)
    return out_rows


def add_ratios(all_rows: list[dict]) -> None:
    """Ratios to the references of the same workload (same run), and the cost of rows with a `minus`.

    Each figure `F` (`ratio_vs_cv2`, `ratio_vs_keras`, `ratio_vs_op`, `cost_s`,
    `cost_vs_op`) comes with `F_noise` (from the spreads of the rows it is made
    of, in its unit) and `F_unmeasurable` (None, or why it is not measurable at
    this size), by the rules of `noise`.
    """
    for key in {r["workload_key"] for r in all_rows}:
        group = [r for r in all_rows if r["workload_key"] == key]
        best = {}
        for ref in ("cv2", "keras", "op", "pipeline"):
            ok = [r for r in group if r["reference"] == ref and r["status"] == "ok"]
            best[ref] = max(ok, key=lambda r: r["mp_per_s"]) if ok else None
        for r in group:
            for ref in ("cv2", "keras", "op"):
                value = noisy = why = None
                if best[ref] is not None and r["status"] == "ok":
                    value = r["mp_per_s"] / best[ref]["mp_per_s"]
                    pair = [r] if r is best[ref] else [r, best[ref]]
                    noisy = noise.ratio_noise(value, *pair)
                    why = noise.judge(value, noisy, pair)
                r[f"ratio_vs_{ref}"], r[f"ratio_vs_{ref}_noise"], r[f"ratio_vs_{ref}_unmeasurable"] = value, noisy, why
            if r["status"] == "ok" and best.get(r["minus"]) is not None:
                _add_cost(r, best[r["minus"]], best["op"])


def _add_cost(r: dict, base: dict, op: dict | None) -> None:
    """`cost_s`: what row `r` adds to row `base` per batch of the workload; `cost_vs_op`: over the op's time."""
    # Per batch of the workload (the pipelines time several batches, the op one).
    mp, mp_r, mp_base = r["megapixels"], r["measured_megapixels"], base["measured_megapixels"]
    r["cost_s"] = (r["median_s"] / mp_r - base["median_s"] / mp_base) * mp
    spreads = (r["spread_s"], base["spread_s"])
    r["cost_s_noise"] = None if None in spreads else (spreads[0] / mp_r + spreads[1] / mp_base) * mp
    r["cost_s_unmeasurable"] = noise.judge(r["cost_s"], r["cost_s_noise"], [r, base])
    r["cost_vs_op"] = r["cost_vs_op_noise"] = r["cost_vs_op_unmeasurable"] = None
    if op is not None:
        r["cost_vs_op"] = r["cost_s"] / op["median_s"]
        rel_op = noise.relative_noise(op)
        if r["cost_s_noise"] is not None and rel_op is not None and r["cost_s"]:
            r["cost_vs_op_noise"] = abs(r["cost_vs_op"]) * (r["cost_s_noise"] / abs(r["cost_s"]) + rel_op)
        r["cost_vs_op_unmeasurable"] = r["cost_s_unmeasurable"] or noise.judge(
            r["cost_vs_op"], r["cost_vs_op_noise"], [r, base, op]
        )
    if r["cost_s_unmeasurable"]:
        shown = f"{r['cost_s'] * 1e3:.3g}"
        if r["cost_s_noise"] is not None:
            shown += f" ± {r['cost_s_noise'] * 1e3:.2g}"
        extra = f"the map's cost per batch, {shown} ms, is {r['cost_s_unmeasurable']}"
    else:
        extra = f"adds {r['cost_s'] * 1e3:.3g} ± {r['cost_s_noise'] * 1e3:.2g} ms per batch to the pipeline"
        if r["cost_vs_op"] is not None:
            extra += f", {r['cost_vs_op']:.2f}x the XLA op's time"
            if r["cost_vs_op_unmeasurable"]:
                extra += f" ({r['cost_vs_op_unmeasurable']})"
    r["note"] = "; ".join(filter(None, [r["note"], extra]))


def run_per_image(settings: Settings) -> list[dict[str, Any]]:
    """`histogram_equalization` (the ImageDataGenerator function) and the original one, on one image."""
    image = workloads.make_input(workloads.PER_IMAGE_SHAPE, "float32")
    shape = "x".join(map(str, workloads.PER_IMAGE_SHAPE)) + " float32"
    entries = []
    for label, group, fn, calls in (
        (
            "histogram_equalization (numpy_api)",
            "ours",
            partial(numpy_api.histogram_equalization, image),
            settings.per_image_calls,
        ),
        ("original numpy function", "peer", partial(workloads.original_equalize, image), settings.repeats),
    ):
        entry: dict[str, Any] = {"image": shape, "implementation": label, "group": group, "status": "ok"}
        entry["ms_per_image"] = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                timing = measure(fn, dataclasses.replace(settings, repeats=calls))
        except Exception as err:
            entry.update(status="error", note=first_line(err))
        else:
            timing.pop("output")
            entry.update(timing, ms_per_image=timing["median_s"] * 1e3, spread_s=noise.spread(timing["times_s"]))
        entries.append(entry)
    ours, seed = entries
    speedup = seed["ms_per_image"] / ours["ms_per_image"] if ours["ms_per_image"] and seed["ms_per_image"] else None
    ours["speedup_vs_original"] = speedup
    ours["speedup_vs_original_noise"] = noise.ratio_noise(speedup, ours, seed) if speedup else None
    ours["speedup_vs_original_unmeasurable"] = (
        noise.judge(speedup, ours["speedup_vs_original_noise"], entries) if speedup else None
    )
    return entries


def _run_rows(workload_list, settings: Settings, scratch: str, say) -> list[dict]:
    all_rows: list[dict[str, Any]] = []
    folders: dict = {}
    with tf.device(settings.device):
        for w in workload_list:
            try:
                if w.kind in ("files", "cli"):
                    ctx = _files_context(w, settings, scratch, folders, say)
                else:
                    ctx = _array_context(w, settings)
            except Skip as err:
                ctx = {"skip": str(err)}
            for row in run_workload(w, ctx, settings):
                all_rows.append(row)
                figure = f"{row['mp_per_s']:.1f} MP/s" if row["status"] == "ok" else f"{row['status']}: {row['note']}"
                say(f"{w.name}: {row['implementation']}: {figure}")
            del ctx
    return all_rows


def run_benchmarks(
    *,
    quick: bool = False,
    device: str = "cpu",
    repeats: int | None = None,
    memory_probe: bool = True,
    many_files: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every row and return all figures as data (what `--json` writes).

    Args:
        quick: Tiny workloads and one timed run per row (a smoke test, not figures).
        device: `"cpu"` or `"gpu"`; TensorFlow work is pinned to `/CPU:0` or `/GPU:0`.
        repeats: Timed runs per row (the median is reported); default 5, or 1 if `quick`.
        memory_probe: Measure CLAHE's peak memory in subprocesses.
        many_files: Also time the command line against the cv2 script on 1000 files.
        progress: Called with one line per finished row.

    Returns:
        A JSON-serialisable dict with `schema`, `machine`, `method`, `workloads`,
        `rows`, `per_image`, `memory`, `judged`, `targets` and `elapsed_s`.
        `judged` is False with `quick`, and `targets` then empty (no guard or
        goal is judged on tiny workloads). Each row has its timed rounds
        (`times_s`, `runs`, `median_s`), their `spread_s` (`noise.spread`),
        and every ratio or cost `F` its `F_noise` and `F_unmeasurable` (see
        `add_ratios`); so has the ImageDataGenerator function's
        `speedup_vs_original`. `targets` are described in `targets`.
    """
    started = time.perf_counter()
    tf_device = "/GPU:0" if device == "gpu" else "/CPU:0"
    repeats = repeats or (1 if quick else 5)
    settings = Settings(
        quick=quick,
        device=tf_device,
        repeats=repeats,
        min_repeats=min(repeats, 1 if quick else 3),
        budget_s=0.0 if quick else 4.0,
        per_image_calls=repeats if quick else 50,
    )
    say = progress or (lambda line: None)
    workload_list = workloads.QUICK_WORKLOADS if quick else workloads.FULL_WORKLOADS
    if many_files and not quick:
        workload_list = workload_list + workloads.MANY_FILES_WORKLOADS
    jobs = memory.memory_jobs(workload_list, quick) if memory_probe else []

    def measure_all_memory() -> list[dict[str, Any]]:
        entries = []
        for w, impl, mode in jobs:
            entries.append(memory.measure_memory(w, impl, mode, tf_device))
            say(f"memory: {w.name}: {impl} {mode}: {entries[-1]['status']}")
        return entries

    # With --quick the figures mean nothing, so the memory subprocess runs beside the rows;
    # otherwise after them, so that it does not slow them down.
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool,
        tempfile.TemporaryDirectory(prefix="tf_histeq_bench_") as scratch,
    ):
        early = pool.submit(measure_all_memory) if quick else None
        # Every row traces its own functions: silence TF's "retracing" advice for the run.
        logger = tf.get_logger()
        log_level = logger.level
        logger.setLevel("ERROR")
        try:
            all_rows = _run_rows(workload_list, settings, scratch, say)
            per_image = run_per_image(settings)
        finally:
            logger.setLevel(log_level)
        for entry in per_image:
            figure = f"{entry['ms_per_image']:.3f} ms" if entry["status"] == "ok" else entry["status"]
            say(f"per image: {entry['implementation']}: {figure}")
        memory_entries = early.result() if early else measure_all_memory()
    add_ratios(all_rows)
    timing = (
        f"one process; per row {'1' if quick else '1-2'} warm-up call(s) (tracing/compilation), then the median "
        f"of up to {repeats} timed calls (at least {settings.min_repeats}; a slow row stops once its timed calls "
        f"exceed {settings.budget_s:g} s), taken in rounds that time every row of a workload in turn; every call "
        "materialises its result"
    )
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "tool": PROG,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine_info(tf_device),
        "method": {"timing": timing, **METHOD},
        "workloads": [{**dataclasses.asdict(w), "name": w.name, "megapixels": w.megapixels} for w in workload_list],
        "rows": all_rows,
        "per_image": per_image,
        "memory": memory_entries,
    }
    # A --quick run is a smoke test: its sizes are not those the targets are set for.
    results["judged"] = not quick
    results["targets"] = targets.evaluate_targets(results) if results["judged"] else []
    results["elapsed_s"] = time.perf_counter() - started
    return results
