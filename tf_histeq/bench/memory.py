"""Peak memory of one CLAHE or `equalize_adapthist` call, each measured in a fresh subprocess (`probe`)."""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
from typing import Any

import numpy as np
import tensorflow as tf

from tf_histeq import ops
from tf_histeq.bench import files, peers
from tf_histeq.bench.timing import materialise
from tf_histeq.bench.workloads import Skip, Workload, make_input

MEMORY_METHOD = (
    "fresh subprocess per mode; after importing TensorFlow and tf_histeq, allocating the input and "
    "building the callable, the peak-RSS mark is reset (/proc/self/clear_refs), then one call; "
    "figure = peak RSS during the call (VmHWM) - RSS just before it (VmRSS). The first call includes "
    "tracing/compilation; 'steady' is a second call measured the same way. On a GPU the device's "
    "peak (tf.config.experimental.get_memory_info) above its usage before the call is reported too. "
    "The call's result is held with .numpy() (a copy of it is counted), except equalize_adapthist's "
    "on the host, held with np.asarray (no copy)."
)


def memory_jobs(workloads: tuple[Workload, ...], quick: bool) -> list[tuple[Workload, str, str]]:
    """`(workload, implementation, mode)` of each probe: `clahe` in each mode, Keras's CLAHE for context.

    And, in a full run, the adaptive equalization of the volume (`adapthist_3d`), XLA-compiled.
    """
    by_key = {w.key: w for w in workloads}
    jobs = [(by_key["clahe_rgb"], "clahe", mode) for mode in (("eager",) if quick else ("eager", "function", "xla"))]
    if not quick:
        jobs.append((by_key["clahe_gray"], "keras_clahe", "xla"))  # for context: its one-hot histogram
    if not quick and "adapthist_3d" in by_key:
        jobs.append((by_key["adapthist_3d"], "adapthist", "xla"))
    return jobs


def measure_memory(w: Workload, impl: str, mode: str, device: str, *, timeout: float = 300) -> dict[str, Any]:
    """Peak memory of one CLAHE call above the memory held before it, in a fresh subprocess."""
    label = {"keras_clahe": "keras CLAHE layer", "adapthist": "equalize_adapthist"}.get(impl, "clahe")
    entry: dict[str, Any] = {
        "workload": w.name,
        "workload_key": w.key,
        "implementation": label,
        "group": "peer" if impl == "keras_clahe" else "ours",
        "mode": mode,
        "status": "ok",
        "input_bytes": int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize,
        "float32_bytes": int(np.prod(w.shape)) * 4,  # the input's size in float32: the unit of the volume's goal
    }
    if impl == "keras_clahe":
        try:
            peers.check_keras_clahe_memory(w, device)
        except Skip as err:
            entry.update(status="skipped", note=str(err))
            return entry
    spec = {"shape": list(w.shape), "dtype": w.dtype, "impl": impl, "mode": mode, "device": device}
    spec["value_range"] = w.value_range
    code = "import sys; from tf_histeq.bench.memory import probe; probe(sys.argv[1])"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, json.dumps(spec)],
            capture_output=True,
            text=True,
            env=files.subprocess_env(),
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        entry.update(status="error", note=f"the probe took over {timeout:.0f} s")
        return entry
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        if proc.returncode == 0 and proc.stdout.startswith("skipped: "):
            entry.update(status="skipped", note=proc.stdout.strip()[len("skipped: ") :])
        else:
            entry.update(status="error", note=f"probe exited {proc.returncode}: {tail[:200]}")
        return entry
    entry.update(json.loads(lines[-1]))
    return entry


def _proc_status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def probe(spec_json: str) -> None:
    """Subprocess side of `measure_memory`: prints one JSON line (or `skipped: WHY`)."""
    spec = json.loads(spec_json)
    device = spec["device"]
    kind = "adapthist" if spec["impl"] == "adapthist" else "clahe"
    value_range = tuple(spec["value_range"]) if spec.get("value_range") else None
    w = Workload("probe", kind, tuple(spec["shape"]), spec["dtype"], value_range)
    if spec["impl"] == "adapthist":
        from tf_histeq import _adapthist

        def op(images):
            return _adapthist.equalize_adapthist_planes(images, spatial_dims=w.spatial_dims, **w.op_kwargs)
    elif spec["impl"] == "keras_clahe":
        try:
            layer = peers.keras_clahe(peers.optional_module("keras"), w)
        except Skip as err:
            print(f"skipped: {err}")
            return

        def op(images):
            return layer(images, training=True)
    else:

        def op(images):
            return ops.clahe(images, **w.op_kwargs)

    fn = op if spec["mode"] == "eager" else tf.function(op, jit_compile=spec["mode"] == "xla")
    with tf.device(device):
        images = tf.identity(tf.constant(make_input(w.shape, w.dtype, w.value_range)))
    gpu = device.startswith("/GPU")

    def one_call() -> dict[str, Any]:
        gc.collect()
        if gpu:
            tf.config.experimental.reset_memory_stats("GPU:0")
            gpu_before = tf.config.experimental.get_memory_info("GPU:0")["current"]
        exact = _reset_peak_rss()
        before = _proc_status_bytes("VmRSS")
        with tf.device(device):
            out = fn(images)
            # The volume's result is held without a copy (`np.asarray` shares the host buffer; `.numpy()`
            # returns a copy, which would add the output's size again to what the op needs).
            out = np.asarray(out) if spec["impl"] == "adapthist" and not gpu else materialise(out)
        peak = _proc_status_bytes("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        result = {"host_peak_above_bytes": peak - before, "host_rss_before_bytes": before, "exact": exact}
        if gpu:
            result["gpu_peak_above_bytes"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] - gpu_before
        del out
        return result

    first = one_call()
    steady = one_call()
    print(json.dumps({"first_call": first, "steady": steady}))
