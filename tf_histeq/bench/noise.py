"""When a figure of the bench may be judged: the noise of its timed rounds, and the rule that uses it.

Every row is timed in rounds (`timing.measure_interleaved`). Its *spread* is
half the range of its timed rounds, `(max - min) / 2`, in seconds. A figure
made of two rows' times carries the noise of both:

* a difference `a - b` (the cost a tf.data map adds to its pipeline) has the
  noise `spread(a) + spread(b)`, in seconds (scaled like the difference);
* a ratio of `a` and `b` (a speed or time ratio) has the relative noise
  `spread(a) / a + spread(b) / b`, so the noise `ratio * (that sum)`.

A figure is *measurable*, and a target is judged on it, only when all of:

1. each time in it was taken in at least `MIN_ROUNDS` timed rounds (fewer
   give no spread to judge it by);
2. no time in it is *small*: a median under `SMALL_TIME_S`, where the
   harness's own work per call (Python dispatch, materialising the output)
   and the scheduler's time slices on a shared machine are a large part of
   what is timed, whatever the rounds say;
3. it is clearly above its noise: at least `CLEAR` times its noise, and a
   difference must be positive. For a ratio this means a relative noise of at
   most `1 / CLEAR`: rounds that scatter by more than that say too little.

Otherwise the figure is "not measurable at this size", and a target on it is
reported as such (status NOISY), never as a PASS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MIN_ROUNDS = 3
SMALL_TIME_S = 0.5e-3
CLEAR = 2.0
NOT_MEASURABLE = "not measurable at this size"


def spread(times: Sequence[float]) -> float | None:
    """Half the range of the timed rounds, or None with fewer than two.

    Example:
        >>> spread([0.010, 0.013, 0.011])
        0.0015
    """
    if len(times) < 2:
        return None
    return round((max(times) - min(times)) / 2, 15)


def timing_problem(rows: Sequence[dict[str, Any]]) -> str | None:
    """Why the rows' times cannot carry a judged figure (too few rounds, too small), or None."""
    for row in rows:
        runs = row.get("runs") or 0
        if runs < MIN_ROUNDS:
            return f"{row['implementation']} was timed in {runs} round(s), fewer than {MIN_ROUNDS}"
        if row["median_s"] < SMALL_TIME_S:
            return f"{row['implementation']} takes {row['median_s'] * 1e3:.3g} ms, under {SMALL_TIME_S * 1e3:g} ms"
    return None


def relative_noise(row: dict[str, Any]) -> float | None:
    """A row's spread over its median time (None without a spread)."""
    s = spread(row.get("times_s") or [])
    return None if s is None or not row.get("median_s") else s / row["median_s"]


def ratio_noise(value: float, *rows: dict[str, Any]) -> float | None:
    """The noise of `value`, a ratio (or product) of the rows' times: relative spreads add.

    Example:
        >>> a = {"median_s": 0.010, "times_s": [0.009, 0.010, 0.011]}
        >>> b = {"median_s": 0.020, "times_s": [0.019, 0.020, 0.021]}
        >>> round(ratio_noise(2.0, a, b), 6)
        0.3
    """
    relative = [relative_noise(row) for row in rows]
    return None if None in relative else abs(value) * sum(relative)


def judge(value: float, noise: float | None, rows: Sequence[dict[str, Any]]) -> str | None:
    """Why `value` (a difference or ratio of the rows' times, with `noise`) is not measurable; None if it is.

    Example:
        >>> rows = [{"implementation": "a", "runs": 5, "median_s": 0.01}]
        >>> judge(-0.5, 0.1, rows)
        'not measurable at this size: negative'
        >>> judge(0.15, 0.1, rows)
        'not measurable at this size: within 2x its noise'
        >>> judge(0.3, 0.1, rows) is None
        True
    """
    problem = None
    if value <= 0:
        problem = "negative" if value < 0 else "zero"
    problem = problem or timing_problem(rows)
    if problem is None and noise is None:
        problem = "no spread to judge it by"
    if problem is None and value < CLEAR * noise:
        problem = f"within {CLEAR:g}x its noise"
    return problem and f"{NOT_MEASURABLE}: {problem}"
