"""Rendering a run's results (live, or loaded from `--json`): a plain-text report, or markdown for the README."""

from __future__ import annotations

from typing import Any

PROG = "tf-histeq bench"
SCHEMA = "tf_histeq.bench/3"  # the layout of the results (`--json`); changed whenever a field changes


def failures(results: dict[str, Any]) -> list[str]:
    """The tf_histeq rows (group `ours`: rows, the ImageDataGenerator function, memory probes) that errored."""
    out = [
        f"{r['workload']}: {r['implementation']}: {r['note']}"
        for r in results["rows"]
        if r["group"] == "ours" and r["status"] == "error"
    ]
    out += [
        f"{e['image']}: {e['implementation']}: {e.get('note', '')}"
        for e in results["per_image"]
        if e["group"] == "ours" and e["status"] == "error"
    ]
    out += [
        f"memory: {e['workload']}: {e['implementation']} {e['mode']}: {e.get('note', '')}"
        for e in results["memory"]
        if e["group"] == "ours" and e["status"] == "error"
    ]
    return out


def _fmt_speed(value) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _fmt_ratio(value) -> str:
    if value is None:
        return ""
    if value < 0.1:
        return f"{value:.2g}x"
    return f"{value:.2f}x" if value < 10 else f"{value:.0f}x"


def _row_note(row: dict, width: int = 0) -> str:
    note = row.get("note") or ""
    if row["status"] != "ok":
        note = f"{row['status']}: {note}"
    if width and len(note) > width:
        note = note[: width - 3] + "..."
    return note


def _machine_lines(results: dict) -> list[str]:
    m = results["machine"]
    gpu = f" ({m['gpu']})" if m.get("gpu") else ""
    return [
        f"CPU: {m['cpu_model']}, {m['logical_cores']} logical cores ({m['usable_cores']} usable); "
        f"device {m['device']}{gpu}",
        f"Python {m['python']}, TensorFlow {m['tensorflow']}, Keras {m['keras']}, OpenCV {m['opencv']}, "
        f"NumPy {m['numpy']}, Pillow {m['pillow']}, scikit-image {m['scikit_image']}",
    ]


def _method_lines(results: dict) -> list[str]:
    return [f"{key}: {text.rstrip('.')}." for key, text in results["method"].items()]


def _memory_text(entry: dict) -> str:
    if entry["status"] != "ok":
        return f"{entry['status']}: {entry.get('note', '')}"
    first, steady = entry["first_call"], entry["steady"]
    text = (
        f"{first['host_peak_above_bytes'] / 2**20:.0f} MiB first call, "
        f"{steady['host_peak_above_bytes'] / 2**20:.0f} MiB steady"
    )
    if "float32_bytes" in entry:  # the volume's figure: in units of its size in float32
        multiples = [call["host_peak_above_bytes"] / entry["float32_bytes"] for call in (first, steady)]
        text += f" ({multiples[0]:.1f}x / {multiples[1]:.1f}x the input's size in float32)"
    if "gpu_peak_above_bytes" in first:
        text += f"; GPU {first['gpu_peak_above_bytes'] / 2**20:.0f} / {steady['gpu_peak_above_bytes'] / 2**20:.0f} MiB"
    if not first.get("exact", True):
        text += " (upper bound: peak since start)"
    return text


def _target_value(t: dict) -> str:
    """The figure with its noise, e.g. `0.54x ± 0.05`, `1.13 ms ± 0.02`; or why there is none."""
    if t["value"] is None:
        return t.get("note", "")
    value, noise = t["value"], t.get("noise")
    if t["unit"] == "x":
        text = f"{value:.2f}x" + (f" ± {noise:.2g}" if noise is not None else "")
    else:
        text = f"{value:.3g} {t['unit']}" + (f" ± {noise:.2g}" if noise is not None else "")
    if t["status"] == "NOISY":
        text += f": {t['note']}"
    if t.get("gap"):
        text += f", {t['gap']:.2f}x short of it"
    return text


QUICK_TARGETS = (
    "Targets: not judged. --quick is a smoke test (tiny workloads, each row timed once): it checks that every row "
    f"runs and that every tf_histeq row's pixels equal its reference; its speeds mean nothing. Run `{PROG}` "
    "(a few minutes) for figures judged against the guards and goals."
)
GUARDS_HEADING = (
    "Guards (levels the 2-core CI machine reaches in every run, with a margin for its noise; a MISS means "
    "something regressed):"
)
GOALS_HEADING = (
    "Goals (aspirations, some out of reach on that machine: NOT REACHED, with the gap and what bounds it, is not "
    "a regression):"
)


def _target_lines(results: dict) -> list[str]:
    if not results["judged"]:
        return [QUICK_TARGETS]
    lines = []
    for kind, heading in (("guard", GUARDS_HEADING), ("goal", GOALS_HEADING)):
        lines.append(heading)
        for t in results["targets"]:
            if t["kind"] == kind:
                lines.append(f"  {t['status']:<11}  {t['target']}: {_target_value(t)}")
                if t.get("bound"):
                    lines.append(f"  {'':<11}  bounded by: {t['bound']}")
    return lines


def _row_cells(r: dict) -> list[str]:
    return [
        r["workload"],
        r["implementation"],
        _fmt_speed(r["mp_per_s"]),
        _fmt_ratio(r.get("ratio_vs_cv2")),
        _fmt_ratio(r.get("ratio_vs_keras")),
        _fmt_ratio(r.get("ratio_vs_op")),
    ]


RATIO_LEGEND = (
    "{x} ref: speed ratio to the reference row of the workload (the cv2 loop, pipeline or script; the "
    "scikit-image loop for match_histograms and scikit-image's equalize_adapthist for equalize_adapthist); "
    "{x} keras: to the fastest keras layer row; {x} op: to the "
    "XLA-compiled tf_histeq op on the same batch (for the fit steps: to the step with the fixed CLAHE layer)."
)


def format_table(results: dict) -> str:
    """A plain-text report: header, one table of rows, per-image and memory figures, guards and goals."""
    quick = "  [--quick: tiny workloads, figures not meaningful]" if results["quick"] else ""
    lines = [f"{PROG} (tf_histeq {results['machine']['tf_histeq']}){quick}", *_machine_lines(results)]
    lines += [f"  {line}" for line in _method_lines(results)]
    columns = ["workload", "implementation", "MP/s", "x ref", "x keras", "x op", "runs", "note"]
    table = [columns]
    for r in results["rows"]:
        table.append([*_row_cells(r), str(r.get("runs", "")), _row_note(r, width=110)])
    widths = [max(len(row[i]) for row in table) for i in range(len(columns) - 1)]
    right = {2, 3, 4, 5, 6}
    lines.append("")
    for k, row in enumerate(table):
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row[:-1])]
        lines.append("  ".join(cells + [row[-1]]).rstrip())
        if k == 0:
            lines.append("  ".join("-" * wd for wd in widths) + "  ----")
    lines += [RATIO_LEGEND.format(x="x"), "", "ImageDataGenerator function, one image:"]
    for e in results["per_image"]:
        figure = f"{e['ms_per_image']:.3f} ms" if e["status"] == "ok" else _row_note(e)
        extra = f"  ({e['speedup_vs_original']:.0f}x the original)" if e.get("speedup_vs_original") else ""
        lines.append(f"  {e['image']}  {e['implementation']}: {figure}{extra}")
    lines += ["", "Peak memory above the memory held before the call:"]
    if not results["memory"]:
        lines.append("  not measured")
    for e in results["memory"]:
        lines.append(f"  {e['workload']}  {e['implementation']} {e['mode']}: {_memory_text(e)}")
    lines += ["", *_target_lines(results)]
    lines += ["", f"Total time: {results['elapsed_s']:.0f} s"]
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def format_markdown(results: dict) -> str:
    """The same report as markdown, ready for the README: guards, goals, per image, memory; rows and method folded."""
    m = results["machine"]
    quick = " **(--quick: tiny workloads, figures not meaningful)**" if results["quick"] else ""
    lines = [
        f"Measured by `{PROG}` (tf_histeq {m['tf_histeq']}, {results['created'][:10]}, "
        f"{results['elapsed_s']:.0f} s){quick}:",
        *[f"- {line}" for line in _machine_lines(results)],
        "",
    ]
    if not results["judged"]:
        lines.append(_md(QUICK_TARGETS))
    else:
        lines += [_md(GUARDS_HEADING), "", "| guard | measured | status |", "|---|---:|---|"]
        for t in results["targets"]:
            if t["kind"] == "guard":
                lines.append(f"| {_md(t['target'])} | {_md(_target_value(t))} | {t['status']} |")
        lines += ["", _md(GOALS_HEADING), "", "| goal | measured | status | what bounds it |", "|---|---:|---|---|"]
        for t in results["targets"]:
            if t["kind"] == "goal":
                cells = [t["target"], _target_value(t), t["status"], t.get("bound", "")]
                lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    lines += ["", "| ImageDataGenerator function, one image | ms per image | × original |", "|---|---:|---:|"]
    for e in results["per_image"]:
        figure = f"{e['ms_per_image']:.3f}" if e["status"] == "ok" else _row_note(e)
        speedup = f"{e['speedup_vs_original']:.0f}×" if e.get("speedup_vs_original") else ""
        lines.append(f"| {e['implementation']} ({e['image']}) | {_md(figure)} | {speedup} |")
    lines += ["", "| peak memory | mode | above the memory before the call |", "|---|---|---|"]
    for e in results["memory"]:
        lines.append(f"| {e['implementation']}, {e['workload']} | {e['mode']} | {_md(_memory_text(e))} |")
    lines += [
        "",
        "<details><summary>Every row: MP/s and ratios</summary>",
        "",
        "| workload | implementation | MP/s | × ref | × Keras | × op XLA | note |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results["rows"]:
        cells = [_md(c) for c in [*_row_cells(r), _row_note(r)]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", RATIO_LEGEND.format(x="×"), "", "</details>", "", "<details><summary>Method</summary>", ""]
    lines += [f"- {_md(line)}" for line in _method_lines(results)]
    lines += ["", "</details>"]
    return "\n".join(lines)
