"""How a row is timed: warm-up, then interleaved rounds, the median of each row's calls."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Settings:
    """How hard to measure."""

    quick: bool
    device: str  # "/CPU:0" or "/GPU:0"
    repeats: int  # timed runs per row (median taken)
    min_repeats: int  # fewer than `repeats` when a row's timed runs exceed `budget_s`
    budget_s: float
    per_image_calls: int


def materialise(out) -> Any:
    """Wait until `out` is computed, and return it.

    `.numpy()` on the host; on a GPU a one-element fetch, which is queued on the
    stream after the op and so returns when the op is done, while the output
    itself stays on the device.
    """
    if isinstance(out, (list, tuple)):
        for item in out:
            materialise(item)
    elif hasattr(out, "numpy"):
        if "GPU" in (getattr(out, "device", "") or ""):
            tf.reshape(out, [-1])[:1].numpy()
        else:
            out.numpy()
    return out


def warm_up(fn: Callable[[], object], settings: Settings) -> None:
    """One call (tracing and compilation happen there), and a second when it took under a second."""
    start = time.perf_counter()
    fn()
    if not settings.quick and time.perf_counter() - start < 1.0:
        fn()


def measure_interleaved(fns: list[Callable[[], object]], settings: Settings) -> list[dict[str, Any]]:
    """Median wall time of each `fn()` (which materialises its result), timed in rounds.

    Every round times each callable once, in turn, so that load from other processes
    or thermal drift weighs on all of them alike and their ratios stay honest on a
    shared machine. The garbage collector is paused inside the rounds (as `timeit`
    does). A callable leaves the rounds after `settings.repeats` calls, or after
    `settings.min_repeats` once its timed calls exceed `settings.budget_s`. Warm-up
    is the caller's business (`warm_up`). A callable with a `reset` attribute has
    it called, untimed, before each timed call (e.g. to clear an output folder).

    Returns:
        One dict per callable: `median_s`, `times_s`, `runs`, `output` (what the
        last timed call returned) and `error` (an exception, or None) if a timed
        call raised.
    """
    results: list[dict[str, Any]] = [{"times_s": [], "error": None, "output": None} for _ in fns]

    def active(r: dict) -> bool:
        times = r["times_s"]
        if r["error"] is not None or len(times) >= settings.repeats:
            return False
        return len(times) < settings.min_repeats or sum(times) <= settings.budget_s

    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while any(active(r) for r in results):
            for fn, r in zip(fns, results, strict=True):
                if not active(r):
                    continue
                r["output"] = None  # let the previous output go before the next call
                reset = getattr(fn, "reset", None)
                try:
                    if reset is not None:
                        reset()
                    start = time.perf_counter()
                    output = fn()
                    elapsed = time.perf_counter() - start
                except Exception as err:  # e.g. out of memory: the row reports it, the others go on
                    r["error"] = err
                    continue
                r["times_s"].append(elapsed)
                r["output"] = output
    finally:
        if gc_was_enabled:
            gc.enable()
    for r in results:
        r["runs"] = len(r["times_s"])
        r["median_s"] = statistics.median(r["times_s"]) if r["times_s"] else None
    return results


def measure(fn: Callable[[], object], settings: Settings) -> dict[str, Any]:
    """Warm `fn` up, then its median wall time over timed calls (see `measure_interleaved`)."""
    warm_up(fn, settings)
    (result,) = measure_interleaved([fn], settings)
    if result["error"] is not None:
        raise result["error"]
    return result


def first_line(err: BaseException) -> str:
    r"""A one-line summary of an error (TF's staging errors put the cause on their last line).

    Example:
        >>> first_line(ValueError("Traceback of the graph:\nbad shape (3, 4)"))
        'ValueError: bad shape (3, 4)'
    """
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    line = lines[-1] if lines[0].endswith(":") else lines[0]
    return f"{type(err).__name__}: {line[:200]}"


@contextlib.contextmanager
def recorded_warnings(row: dict):
    """Collect the warnings raised inside into `row["warnings"]` (peers' deprecations and the like)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    messages = {f"{c.category.__name__}: {str(c.message)[:160]}" for c in caught}
    if messages:
        row["warnings"] = sorted(messages)
