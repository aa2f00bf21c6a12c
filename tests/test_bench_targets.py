"""The bench's guards and goals, and when a figure is measurable (`noise`): made-up rows, nothing timed.

Every figure here is made up, so that the rules are checked on known values: a
negative or within-noise cost is never a PASS, a ratio of small times or of
too few rounds is not judged, a guard MISS is told apart from a goal NOT
REACHED, and the reports print them apart.
"""

from __future__ import annotations

import re
import statistics

import pytest

from tf_histeq.bench import noise, report, rows, run, targets, workloads

MACHINE = {
    "tf_histeq": "0",
    "cpu_model": "test CPU",
    "logical_cores": 2,
    "usable_cores": 2,
    "device": "/CPU:0",
    "python": "3",
    "tensorflow": "2",
    "keras": "3",
    "opencv": "5",
    "numpy": "2",
    "pillow": "1",
    "scikit_image": "0",
}
OP_TIMES = (0.0100, 0.0101, 0.0102)
BARE_TIMES = (0.030, 0.031, 0.032)


def timed_row(label, times, *, ref=None, minus=None, group="ours", key="hist_gray"):
    """A row as `run.run_workload` leaves it, timed in the given rounds (seconds), on 1 megapixel."""
    median = statistics.median(times)
    return {
        "workload_key": key,
        "workload": key,
        "implementation": label,
        "group": group,
        "reference": ref,
        "minus": minus,
        "status": "ok",
        "times_s": list(times),
        "runs": len(times),
        "median_s": median,
        "spread_s": noise.spread(times),
        "megapixels": 1.0,
        "measured_megapixels": 1.0,
        "mp_per_s": 1.0 / median,
        "note": "",
    }


def map_cost_rows(mapped_times, bare_times=BARE_TIMES):
    """The op, the pipeline without the map and with it, on the `hist_gray` workload; ratios and costs added."""
    data = [
        timed_row("equalize_hist XLA", OP_TIMES, ref="op"),
        timed_row("tf.data without the map", bare_times, ref="pipeline", group="baseline"),
        timed_row("equalize_hist in tf.data", mapped_times, minus="pipeline"),
    ]
    run.add_ratios(data)
    return data


def judged_results(data):
    """A full run's results on the rows `data`, with a measurable per-image function, judged."""
    ours = timed_row("histogram_equalization (numpy_api)", (0.0011, 0.00112, 0.00115))
    seed = timed_row("original numpy function", (0.050, 0.051, 0.052), group="peer")
    ours.update(image="256x256x3 float32", ms_per_image=ours["median_s"] * 1e3, speedup_vs_original=0.051 / 0.00112)
    ours["speedup_vs_original_noise"] = noise.ratio_noise(ours["speedup_vs_original"], ours, seed)
    ours["speedup_vs_original_unmeasurable"] = None
    seed.update(image="256x256x3 float32", ms_per_image=seed["median_s"] * 1e3)
    results = {"schema": report.SCHEMA, "created": "2026-01-01T00:00:00+00:00", "elapsed_s": 1.0, "quick": False}
    results.update(machine=MACHINE, method={"timing": "made up"}, rows=data, per_image=[ours, seed], memory=[])
    results["workloads"] = [{"key": "hist_gray", "name": "32x256x256x1 uint8"}]
    results["judged"] = True
    results["targets"] = targets.evaluate_targets(results)
    return results


def map_targets(results) -> dict[str, dict]:
    """The guard and the goal on the equalize_hist map's cost, by kind."""
    prefix = "32x256x256x1 uint8: the tf.data map"
    found = {t["kind"]: t for t in results["targets"] if t["target"].startswith(prefix)}
    assert set(found) == {"guard", "goal"}
    return found


class TestTargets:
    def test_every_target_names_rows_that_exist(self):
        every = workloads.FULL_WORKLOADS + workloads.MANY_FILES_WORKLOADS
        for target in targets.TARGETS:
            (w,) = [w for w in every if w.key == target.workload]
            labels = {impl.label for impl in rows.impls_for(w)}
            assert set(target.rows) <= labels, target

    def test_best_value_and_time_ratios(self):
        def row(label, ratio, status="ok"):
            return {"workload_key": "cli", "implementation": label, "status": status, "ratio_vs_cv2": ratio}

        data = [row("a", 0.5), row("b", 0.8), row("c", 4.0, status="error")]
        speed = targets.Target("cli", ("a", "b", "c"), "ratio_vs_cv2", 1.0, "", "")
        time = targets.Target("cli", ("a", "b"), "ratio_vs_cv2", 1.25, "", "", higher=False, as_time=True)
        assert speed.value(data) == 0.8  # the best row that ran
        assert time.value(data) == 1.25  # 1 / 0.8: the faster row's time ratio
        assert targets.Target("cli", ("z",), "ratio_vs_cv2", 1.0, "", "").value(data) is None
        data[1]["ratio_vs_cv2_unmeasurable"] = "not measurable at this size: negative"
        assert speed.value(data) == 0.5  # the best measurable row

    def test_a_time_target_keeps_the_relative_noise(self):
        row = {"workload_key": "cli", "implementation": "a", "status": "ok", "ratio_vs_cv2": 0.5}
        row.update(ratio_vs_cv2_noise=0.05, ratio_vs_cv2_unmeasurable=None)
        target = targets.Target("cli", ("a",), "ratio_vs_cv2", 3.0, "a takes", "b's time", higher=False, as_time=True)
        value, noisy, why = target.figure([row])
        assert value == pytest.approx(2.0) and noisy == pytest.approx(0.2) and why is None


class TestNoise:
    def test_a_negative_map_cost_is_never_a_pass(self):
        data = map_cost_rows((0.020, 0.021, 0.022))  # the pipeline with the map ran faster than without
        mapped = data[2]
        assert mapped["cost_s"] < 0 and mapped["cost_vs_op"] < 0
        assert mapped["cost_s_unmeasurable"] == "not measurable at this size: negative"
        assert "the map's cost per batch, -10 ± 2 ms, is not measurable at this size: negative" in mapped["note"]
        for target in map_targets(judged_results(data)).values():
            assert target["status"] == "NOISY", target
            assert target["note"] == "not measurable at this size: negative"

    def test_a_cost_within_its_noise_is_not_measurable(self):
        data = map_cost_rows((0.030, 0.036, 0.042))  # +5 ms, but the rounds scatter by +-6 and +-1 ms
        mapped = data[2]
        assert mapped["cost_s"] == pytest.approx(0.005)
        assert mapped["cost_s_noise"] == pytest.approx(0.007)
        assert mapped["cost_s_unmeasurable"] == "not measurable at this size: within 2x its noise"
        for target in map_targets(judged_results(data)).values():
            assert target["status"] == "NOISY" and target["value"] == pytest.approx(mapped["cost_vs_op"]), target

    def test_a_clear_cost_is_judged_with_its_noise(self):
        mapped = map_cost_rows((0.040, 0.041, 0.042))[2]
        assert mapped["cost_s"] == pytest.approx(0.010) and mapped["cost_s_noise"] == pytest.approx(0.002)
        assert mapped["cost_s_unmeasurable"] is None and mapped["cost_vs_op_unmeasurable"] is None
        # Relative noises add: 2/10 for the cost, 0.1/10.1 for the op.
        assert mapped["cost_vs_op_noise"] == pytest.approx(mapped["cost_vs_op"] * (0.2 + 0.0001 / 0.0101))
        assert "adds 10 ± 2 ms per batch to the pipeline, 0.99x the XLA op's time" in mapped["note"]

    def test_ratios_of_few_rounds_or_small_times_are_not_measurable(self):
        slow = timed_row("cv2.equalizeHist loop", (0.010, 0.010, 0.010), ref="cv2", group="peer")
        fast = timed_row("equalize_hist XLA", (0.0002, 0.0002, 0.0002))
        run.add_ratios([slow, fast])
        assert fast["ratio_vs_cv2"] == pytest.approx(50.0)
        assert fast["ratio_vs_cv2_unmeasurable"] == (
            "not measurable at this size: equalize_hist XLA takes 0.2 ms, under 0.5 ms"
        )
        once = timed_row("equalize_hist XLA", (0.005,))
        run.add_ratios([slow, once])
        assert once["ratio_vs_cv2_unmeasurable"].endswith("was timed in 1 round(s), fewer than 3")
        scattered = timed_row("equalize_hist XLA", (0.002, 0.005, 0.008))  # +-60%
        run.add_ratios([slow, scattered])
        assert scattered["ratio_vs_cv2_unmeasurable"] == "not measurable at this size: within 2x its noise"
        steady = timed_row("equalize_hist XLA", (0.0049, 0.005, 0.0051))
        run.add_ratios([slow, steady])
        assert steady["ratio_vs_cv2"] == pytest.approx(2.0) and steady["ratio_vs_cv2_unmeasurable"] is None
        assert steady["ratio_vs_cv2_noise"] == pytest.approx(2.0 * 0.0001 / 0.005)


class TestGuardsAndGoals:
    def test_a_regression_misses_a_guard_and_a_gap_is_not_a_miss(self):
        regressed = map_targets(judged_results(map_cost_rows((0.070, 0.071, 0.072))))
        assert regressed["guard"]["status"] == "MISS"  # 4x the op's time: beyond the guard's margin
        assert regressed["goal"]["status"] == "NOT REACHED"
        assert regressed["goal"]["gap"] == pytest.approx(regressed["goal"]["value"] / 1.25)
        short = map_targets(judged_results(map_cost_rows((0.050, 0.051, 0.052))))
        assert short["guard"]["status"] == "PASS"  # 2x the op's time: as far as this machine gets
        assert short["goal"]["status"] == "NOT REACHED" and short["goal"]["bound"]
        reached = map_targets(judged_results(map_cost_rows((0.040, 0.041, 0.042))))
        assert (reached["guard"]["status"], reached["goal"]["status"]) == ("PASS", "REACHED")
        assert "gap" not in reached["goal"]

    def test_reports_show_guards_and_goals_apart(self):
        results = judged_results(map_cost_rows((0.050, 0.051, 0.052)))
        text = report.format_table(results)
        guards, goals = text.split(report.GUARDS_HEADING)[1].split(report.GOALS_HEADING)
        guard_line = r"^  PASS +32x256x256x1 uint8: the tf.data map costs <= 2.5x equalize_hist XLA: 1.98x ± 0.2"
        assert re.search(guard_line, guards, re.M), guards
        assert "REACHED" not in guards and not re.search(r"^  (PASS|MISS) ", goals, re.M)
        goal_line = r"^  NOT REACHED  32x256x256x1 uint8: the tf.data map costs <= 1.25x equalize_hist XLA: .*$"
        line = re.search(goal_line, goals, re.M)
        assert line and line.group().endswith(", 1.58x short of it"), goals
        assert "bounded by: the map makes one call per image" in goals
        assert report.QUICK_TARGETS not in text
        markdown = report.format_markdown(results)
        assert "| guard | measured | status |" in markdown
        assert "| goal | measured | status | what bounds it |" in markdown
        assert "| 32x256x256x1 uint8: the tf.data map costs <= 2.5x equalize_hist XLA | 1.98x ± 0.2" in markdown

    def test_every_goal_has_a_looser_guard_on_the_same_figure(self):
        guards = {(t.workload, t.field, t.rows): t for t in targets.TARGETS if t.kind == targets.GUARD}
        goals = [t for t in targets.TARGETS if t.kind == targets.GOAL]
        assert len(goals) == 13 and len(guards) == len(targets.TARGETS) - len(goals)
        for goal in goals:
            guard = guards[goal.workload, goal.field, goal.rows]
            assert goal.bound and not guard.bound
            assert guard.higher == goal.higher
            assert guard.threshold < goal.threshold if goal.higher else guard.threshold > goal.threshold
        assert targets.PER_IMAGE_GUARD_SPEEDUP < targets.PER_IMAGE_GOAL_SPEEDUP
