"""`tf-histeq bench`: its command line, its machinery, a small run, and (slow) a whole `--quick` run.

The bench is a tool, not a test: nothing here asserts a speed or a ratio.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tf_histeq import bench
from tf_histeq.bench import command, files, report, rows, run, targets, timing, workloads
from tf_histeq.bench.rows import Impl
from tf_histeq.bench.workloads import Workload

TOP_KEYS = {
    "schema",
    "tool",
    "created",
    "quick",
    "machine",
    "method",
    "workloads",
    "rows",
    "per_image",
    "memory",
    "judged",
    "targets",
    "elapsed_s",
}
MACHINE_KEYS = {"cpu_model", "logical_cores", "usable_cores", "python", "tensorflow", "keras", "opencv", "numpy"}
ROW_KEYS = {
    "workload",
    "workload_key",
    "implementation",
    "group",
    "status",
    "mp_per_s",
    "note",
    "ratio_vs_cv2",
    "ratio_vs_keras",
    "ratio_vs_op",
    "spread_s",
    "ratio_vs_cv2_noise",
    "ratio_vs_cv2_unmeasurable",
}
# A line of a judged target in the text report (a --quick run prints none).
JUDGED_LINE = re.compile(r"^  (PASS|MISS|REACHED|NOT REACHED|NOISY|SKIP) ", re.MULTILINE)
# Peers installed with the test extra: their rows must run wherever they apply.
INSTALLED_PEERS = {
    "cv2.equalizeHist loop",
    "PIL ImageOps.equalize loop",
    "skimage equalize_hist loop",
    "cv2 CLAHE loop",
    "read, decode_png, numpy_function(cv2 CLAHE), batch(8)",
    "cv2 loop script",
}


def run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = bench.main(argv)
    return status, out.getvalue(), err.getvalue()


def _impl(label: str) -> Impl:
    return next(i for table in (rows.HIST_IMPLS, rows.CLAHE_IMPLS) for i in table if i.label == label)


def _broken(w, ctx):
    raise RuntimeError("broken on purpose")


def _wrong_pixels(w, ctx):
    x = ctx["numpy"]
    return lambda: x  # the input unchanged: not equalized


def _per_image_not_measured(settings):
    # The ImageDataGenerator function's first call traces and compiles for seconds; the quick run measures it.
    entry = {"image": "256x256x3 float32", "status": "skipped", "ms_per_image": None, "note": "not in this test"}
    return [
        {**entry, "implementation": "histogram_equalization (numpy_api)", "group": "ours", "speedup_vs_original": None},
        {**entry, "implementation": "original numpy function", "group": "peer"},
    ]


@contextlib.contextmanager
def small_bench(hist_impls, clahe_impls=()):
    """Make `--quick` run one or two tiny workloads with the given rows only (a run of a few seconds)."""
    small = [Workload("hist_gray", "hist", (2, 16, 16, 1))]
    if clahe_impls:
        small.append(Workload("clahe_gray", "clahe", (1, 32, 32, 1)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(workloads, "QUICK_WORKLOADS", tuple(small))
        mp.setattr(rows, "HIST_IMPLS", tuple(hist_impls))
        mp.setattr(rows, "CLAHE_IMPLS", tuple(clahe_impls))
        mp.setattr(run, "run_per_image", _per_image_not_measured)
        yield


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A real run of two tiny workloads, with a peer that fails: what the command line tests render."""
    path = tmp_path_factory.mktemp("bench") / "small.json"
    hist = [
        _impl("cv2.equalizeHist loop"),
        Impl("broken peer", "peer", _broken),
        _impl("equalize_hist eager"),
        _impl("equalize_hist XLA"),
    ]
    with small_bench(hist, [_impl("cv2 CLAHE loop"), _impl("clahe eager")]):
        status, stdout, stderr = run_main(["--quick", "--no-memory", "--json", str(path)])
    return {"status": status, "stdout": stdout, "stderr": stderr, "path": path, "json": json.loads(path.read_text())}


@pytest.fixture
def canned(monkeypatch, small):
    """Replace the measurement by the small run's results, for tests of the command line."""
    monkeypatch.setattr(command, "_measure", lambda args: small["json"])


@pytest.fixture
def no_measurement(monkeypatch):
    def fail(args):
        raise AssertionError("nothing should be measured")

    monkeypatch.setattr(command, "_measure", fail)


class TestSmallRun:
    def test_a_failing_peer_does_not_fail_the_run(self, small):
        assert small["status"] == 0, small["stderr"]
        by_label = {r["implementation"]: r for r in small["json"]["rows"]}
        assert by_label["broken peer"]["status"] == "error"
        assert by_label["broken peer"]["note"] == "RuntimeError: broken on purpose"

    def test_our_rows_are_checked_against_cv2(self, small):
        for row in small["json"]["rows"]:
            if row["group"] == "ours":
                assert row["status"] == "ok", row
                assert row["compared_with"] in ("cv2.equalizeHist loop", "cv2 CLAHE loop")
                assert row["differing_pixels"] == 0

    def test_ratios_are_taken_in_the_same_run(self, small):
        by_label = {r["implementation"]: r for r in small["json"]["rows"]}
        eager, xla, cv2_loop = (
            by_label[k] for k in ("equalize_hist eager", "equalize_hist XLA", "cv2.equalizeHist loop")
        )
        assert eager["ratio_vs_cv2"] == pytest.approx(eager["mp_per_s"] / cv2_loop["mp_per_s"])
        assert eager["ratio_vs_op"] == pytest.approx(eager["mp_per_s"] / xla["mp_per_s"])
        assert xla["ratio_vs_op"] == pytest.approx(1.0)

    def test_quick_judges_no_target(self, small):
        results = small["json"]
        assert results["judged"] is False and results["targets"] == []
        assert report.QUICK_TARGETS in small["stdout"] and "`tf-histeq bench`" in report.QUICK_TARGETS
        assert not JUDGED_LINE.search(small["stdout"]), small["stdout"]

    def test_quick_figures_judged_anyway_are_never_pass_or_miss(self, small):
        # One timed round per row: no spread, so every figure the run has is "not measurable".
        judged = targets.evaluate_targets(small["json"])
        assert len(judged) == len(targets.TARGETS) + 6
        by_status = {}
        for target in judged:
            by_status.setdefault(target["status"], []).append(target)
            assert (target["value"] is None) == (target["status"] == "SKIP"), target
        assert set(by_status) == {"NOISY", "SKIP"}, by_status.keys()
        for target in by_status["NOISY"]:
            assert target["note"].startswith("not measurable at this size: "), target
        assert "not run: add --many-files" in [t.get("note") for t in judged]

    def test_exit_1_when_one_of_our_rows_fails(self, tmp_path):
        path = tmp_path / "failed.json"
        hist = [
            _impl("cv2.equalizeHist loop"),
            Impl("equalize_hist eager", "ours", _broken),
            Impl("equalize_hist unequalized", "ours", _wrong_pixels),
        ]
        with small_bench(hist):
            status, stdout, stderr = run_main(["--quick", "--no-memory", "--json", str(path)])
        assert status == command.EXIT_OURS_FAILED == 1
        assert report.QUICK_TARGETS in stdout and f"wrote {path}" in stdout  # the report is still written
        assert "tf-histeq bench: 2 tf_histeq row(s) failed:" in stderr
        assert "2x16x16x1 uint8: equalize_hist eager: RuntimeError: broken on purpose" in stderr
        by_label = {r["implementation"]: r for r in json.loads(path.read_text())["rows"]}
        wrong = by_label["equalize_hist unequalized"]
        assert wrong["status"] == "error" and wrong["differing_pixels"] > 0
        assert wrong["note"].endswith("of 512 samples differ from cv2.equalizeHist loop")


class TestCommandLine:
    def test_help_documents_the_exit_status(self, no_measurement):
        status, stdout, _ = run_main(["--help"])
        assert status == 0
        assert stdout.startswith("usage: tf-histeq bench")
        assert "1  a tf_histeq row failed" in stdout and "2  usage error" in stdout

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--overwrite"], "tf-histeq: error: --overwrite only applies with --json"),
            (["--repeats", "0"], "tf-histeq: error: --repeats must be at least 1"),
            (["--json", "/nonexistent-dir/x.json"], "tf-histeq: error: cannot write /nonexistent-dir/x.json"),
            (["--device", "tpu"], "tf-histeq bench: error: argument --device: invalid choice"),
            (["--frobnicate"], "tf-histeq bench: error: unrecognized arguments"),
            (["--quick", "--many-files"], "tf-histeq: error: --many-files adds a long workload"),
            (["--from-json", "r.json", "--quick"], "tf-histeq: error: --from-json renders saved results and"),
            (["--from-json", "/nonexistent-dir/r.json"], "tf-histeq: error: cannot read /nonexistent-dir/r.json"),
        ],
        ids=[
            "overwrite-alone",
            "zero-repeats",
            "missing-dir",
            "bad-device",
            "unknown-flag",
            "many-quick",
            "from-json-quick",
            "from-missing",
        ],
    )
    def test_usage_errors_exit_2(self, argv, message, no_measurement):
        status, stdout, stderr = run_main(argv)
        assert status == 2
        assert message in stderr
        assert stdout == ""

    def test_from_json_refuses_other_files(self, tmp_path, no_measurement):
        not_json, old = tmp_path / "a.json", tmp_path / "b.json"
        not_json.write_text("{")
        old.write_text(json.dumps({"schema": "tf_histeq.bench/1"}))
        status, _, stderr = run_main(["--from-json", str(not_json)])
        assert status == 2 and f"{not_json} is not a JSON file" in stderr
        status, _, stderr = run_main(["--from-json", str(old)])
        assert status == 2 and f"holds tf_histeq.bench/1 results; this version reads {report.SCHEMA}" in stderr

    def test_refuses_to_overwrite_an_existing_json_file(self, tmp_path, no_measurement):
        path = tmp_path / "old.json"
        path.write_text("keep me")
        status, stdout, stderr = run_main(["--quick", "--json", str(path)])
        assert status == 2
        assert stderr.startswith("tf-histeq: error: ") and "already exists" in stderr and "--overwrite" in stderr
        assert stdout == ""
        assert path.read_text() == "keep me"

    def test_overwrite_replaces_the_file(self, tmp_path, canned):
        path = tmp_path / "old.json"
        path.write_text("replace me")
        status, stdout, _ = run_main(["--quick", "--json", str(path), "--overwrite"])
        assert status == 0
        assert json.loads(path.read_text())["schema"] == report.SCHEMA
        assert f"wrote {path}" in stdout

    @pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="a GPU is visible")
    def test_gpu_without_a_gpu_is_an_error(self):
        status, stdout, stderr = run_main(["--quick", "--device", "gpu"])
        assert status == 2
        assert stderr.startswith("tf-histeq: error: --device gpu") and "no GPU" in stderr
        assert stdout == ""

    def test_from_json_renders_the_saved_run_without_measuring(self, small, no_measurement):
        status, stdout, _ = run_main(["--from-json", str(small["path"])])
        assert status == 0
        assert stdout == small["stdout"].replace(f"wrote {small['path']}\n", "")
        status, markdown, _ = run_main(["--from-json", str(small["path"]), "--markdown"])
        assert status == 0
        assert markdown == report.format_markdown(small["json"]) + "\n"

    def test_markdown_has_every_row_and_no_targets_with_quick(self, small):
        text = report.format_markdown(small["json"])
        assert report.QUICK_TARGETS.replace("|", "\\|") in text
        assert "| guard |" not in text and "| goal |" not in text
        assert "| workload | implementation | MP/s | × ref | × Keras | × op XLA | note |" in text
        for row in small["json"]["rows"]:
            assert f"| {row['workload']} | {row['implementation']} |" in text
        assert "| 2x16x16x1 uint8 | broken peer | - |  |  |  | error: RuntimeError: broken on purpose |" in text


class TestMeasure:
    def settings(self, repeats=5, min_repeats=3, budget_s=60.0):
        return timing.Settings(
            quick=False, device="/CPU:0", repeats=repeats, min_repeats=min_repeats, budget_s=budget_s, per_image_calls=5
        )

    def test_median_after_warm_up(self):
        calls = []
        timed = timing.measure(lambda: calls.append(1), self.settings())
        assert len(calls) == 2 + 5  # two warm-up calls (the first was fast), five timed
        assert timed["runs"] == 5 and timed["median_s"] == sorted(timed["times_s"])[2]

    def test_slow_rows_stop_after_the_budget(self):
        timed = timing.measure(lambda: None, self.settings(budget_s=0.0))
        assert timed["runs"] == 3

    def test_rows_are_timed_in_rounds_and_a_failure_stays_in_its_row(self):
        order = []

        def failing():
            order.append("c")
            raise MemoryError("out of memory")

        def second():
            order.append("b")
            return len(order)

        second.reset = lambda: order.append("reset")
        a, b, c = timing.measure_interleaved(
            [lambda: order.append("a"), second, failing], self.settings(repeats=3, min_repeats=3)
        )
        assert order == ["a", "reset", "b", "c", "a", "reset", "b", "a", "reset", "b"]
        assert a["runs"] == b["runs"] == 3 and a["error"] is None
        assert b["output"] == 10  # what the last timed call returned
        assert c["runs"] == 0 and c["median_s"] is None and isinstance(c["error"], MemoryError)


class TestFiles:
    def test_png_folders_compare_pixel_for_pixel(self, tmp_path):
        a, b = str(tmp_path / "a"), str(tmp_path / "b")
        workloads.write_png_folder(a, 3, 24, 32)
        shutil.copytree(a, b)
        images = files.read_folder(a)
        assert sorted(images) == ["image_00000.png", "image_00001.png", "image_00002.png"]
        assert all(im.dtype == np.uint8 and im.shape == (24, 32) for im in images.values())
        assert run.compare_outputs(a, b) == (0, 3 * 24 * 32)
        changed = images["image_00001.png"].copy()
        changed[:2, :3] ^= 1
        cv2.imwrite(os.path.join(b, "image_00001.png"), changed)
        assert run.compare_outputs(a, b) == (6, 3 * 24 * 32)
        os.rename(os.path.join(b, "image_00001.png"), os.path.join(b, "other.png"))
        with pytest.raises(ValueError, match="wrote 3 files where the reference wrote 3, or other names"):
            run.compare_outputs(b, a)

    def test_arrays_and_batches_compare(self):
        x = np.arange(24, dtype=np.uint8).reshape(2, 3, 4, 1)
        assert run.compare_outputs([x[:1], x[1:]], x) == (0, 24)
        assert run.compare_outputs(x.astype(np.float32) + (x == 5), x) == (1, 24)
        with pytest.raises(ValueError, match=r"output shape \(2, 3, 4\), the reference's \(2, 3, 4, 1\)"):
            run.compare_outputs(x[..., 0], x)

    def test_several_passes_compare_pass_by_pass(self):
        x = np.arange(24, dtype=np.uint8).reshape(2, 3, 4, 1)
        passes = [x[:1], x[1:], x[:1], x[1:], x[:1], x[1:]]  # three passes over the two images, batch(1)
        assert run.compare_outputs(passes, x) == (0, 72)
        passes[5] = x[1:] + 1
        assert run.compare_outputs(passes, x) == (12, 72)
        with pytest.raises(ValueError, match=r"output shape \(5, 3, 4, 1\)"):
            run.compare_outputs(passes[:5], x)

    def test_a_folder_command_writes_a_fresh_folder_per_call(self, tmp_path):
        source, scratch = tmp_path / "in", tmp_path / "scratch"
        source.mkdir()
        scratch.mkdir()
        (source / "f.txt").write_text("x")

        def copy(src, dst):
            return [sys.executable, "-c", "import shutil, sys; shutil.copytree(sys.argv[1], sys.argv[2])", src, dst]

        runner = files.FolderCommand(copy, str(source), str(scratch), "copy")
        first, second = runner(), runner()
        assert first != second and sorted(os.listdir(second)) == ["f.txt"]
        runner.reset()
        assert os.listdir(scratch) == []
        failing = files.FolderCommand(
            lambda src, dst: [sys.executable, "-c", "raise SystemExit(3)"], "", str(scratch), "f"
        )
        with pytest.raises(RuntimeError, match="exited 3"):
            failing()


class TestOriginalFunction:
    def test_matches_the_seed_formula(self, rng):
        # One pooled histogram, trunc((C(v) - C(0)) * 255 / (C(255) - C(0))) in float64.
        image = rng.integers(3, 200, size=(17, 23, 3), dtype=np.uint8)
        image[0, 0, 0] = 0  # C(0) = h[0] = 1, so the darkest level maps to 0
        cdf = np.cumsum(np.bincount(image.ravel(), minlength=256)).astype(np.float64)
        lut = np.trunc((cdf - cdf[0]) * 255 / (cdf[-1] - cdf[0]))
        out = workloads.original_equalize(image)
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, lut[image])

    def test_float_input_as_image_data_generator_passes_it(self):
        image = workloads.make_input((8, 8, 3), "float32")
        np.testing.assert_array_equal(
            workloads.original_equalize(image), workloads.original_equalize(image.astype(np.uint8))
        )


# --------------------------------------------------------------------------- the whole --quick run


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One `--quick --json FILE` run, every workload and row, shared by the tests of its output."""
    path = tmp_path_factory.mktemp("bench") / "figures.json"
    status, stdout, stderr = run_main(["--quick", "--json", str(path)])
    assert status == 0, stderr
    return {"stdout": stdout, "stderr": stderr, "json": json.loads(path.read_text(encoding="utf-8"))}


@pytest.mark.slow
class TestQuickRun:
    def test_prints_header_table_and_targets(self, quick):
        stdout = quick["stdout"]
        for text in ["CPU: ", "TensorFlow ", "Keras ", "OpenCV ", "workload", "implementation", "MP/s", "Targets:"]:
            assert text in stdout
        for row in quick["json"]["rows"]:
            assert row["implementation"] in stdout
        assert report.QUICK_TARGETS in stdout
        assert not JUDGED_LINE.search(stdout) and "PASS" not in stdout and "MISS" not in stdout

    def test_json_has_the_expected_keys(self, quick):
        results = quick["json"]
        assert TOP_KEYS <= results.keys() and results["schema"] == report.SCHEMA
        assert results["quick"] is True
        assert MACHINE_KEYS <= results["machine"].keys()
        assert results["machine"]["tensorflow"] == tf.__version__
        for row in results["rows"]:
            assert ROW_KEYS <= row.keys(), row["implementation"]

    def test_every_workload_has_its_rows(self, quick):
        results = quick["json"]
        keys = [w["key"] for w in results["workloads"]]
        assert keys == [
            "hist_gray",
            "hist_rgb",
            "hist_large",
            "hist_12bit",
            "clahe_gray",
            "clahe_rgb",
            "match_gray",
            "augment",
            "files",
            "cli",
            "adapthist_3d",
            "adapthist_2d",
        ]
        for w in workloads.QUICK_WORKLOADS:
            labels = [r["implementation"] for r in results["rows"] if r["workload_key"] == w.key]
            assert labels == [impl.label for impl in rows.impls_for(w)], w.key

    def test_our_rows_and_installed_peers_run(self, quick):
        for row in quick["json"]["rows"]:
            if row["group"] == "ours" or (row["implementation"] in INSTALLED_PEERS and row["dtype"] == "uint8"):
                assert row["status"] == "ok", row
                assert row["mp_per_s"] > 0 and row["median_s"] > 0 and row["runs"] == 1, row
            assert row["status"] in ("ok", "skipped", "error"), row
            if row["status"] != "ok":
                assert row["mp_per_s"] is None and row["note"], row

    def test_our_outputs_equal_the_reference_on_every_8_bit_workload(self, quick):
        compared = {}
        for row in quick["json"]["rows"]:
            if row["group"] == "ours" and row["dtype"] == "uint8" and row["workload_key"] != "augment":
                assert row["differing_pixels"] == 0, row
                compared[row["workload_key"]] = row["compared_with"]
        assert compared["files"] == "read, decode_png, numpy_function(cv2 CLAHE), batch(8)"
        assert compared["cli"] == "cv2 loop script"
        assert compared["match_gray"] == "skimage match_histograms loop"
        assert len(compared) == 8
        # The fit steps output losses: no reference to compare pixels with.
        assert not any("compared_with" in r for r in quick["json"]["rows"] if r["workload_key"] == "augment")

    def test_map_cost_is_against_the_op(self, quick):
        by = {(r["workload_key"], r["implementation"]): r for r in quick["json"]["rows"]}
        mapped, bare, op = (
            by["clahe_gray", "clahe in tf.data"],
            by["clahe_gray", "tf.data without the map"],
            by["clahe_gray", "clahe XLA"],
        )
        per_megapixel = (
            mapped["median_s"] / mapped["measured_megapixels"] - bare["median_s"] / bare["measured_megapixels"]
        )
        assert mapped["cost_s"] == pytest.approx(per_megapixel * mapped["megapixels"])
        assert mapped["cost_vs_op"] == pytest.approx(mapped["cost_s"] / op["median_s"])
        # One timed round: whatever its sign, the cost is not measurable.
        assert mapped["cost_s_unmeasurable"].startswith("not measurable at this size: ")
        assert mapped["cost_vs_op_unmeasurable"].startswith("not measurable at this size: ")

    def test_original_function_is_timed_per_image(self, quick):
        ours, original = quick["json"]["per_image"]
        assert original["implementation"] == "original numpy function"
        assert original["status"] == ours["status"] == "ok"
        assert ours["speedup_vs_original"] == pytest.approx(original["ms_per_image"] / ours["ms_per_image"])

    def test_memory_is_measured_with_a_stated_method(self, quick):
        results = quick["json"]
        assert "clear_refs" in results["method"]["memory"]
        (entry,) = results["memory"]
        assert entry["workload_key"] == "clahe_rgb" and entry["status"] == "ok", entry
        for call in ["first_call", "steady"]:
            assert entry[call]["host_peak_above_bytes"] >= 0

    def test_judges_no_target(self, quick):
        assert quick["json"]["judged"] is False and quick["json"]["targets"] == []
