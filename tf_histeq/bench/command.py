"""`tf-histeq bench ARGS`: the benchmark's command line (TensorFlow is imported only to measure)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from tf_histeq.bench import report
from tf_histeq.bench.report import PROG, SCHEMA

EXIT_OK, EXIT_OURS_FAILED, EXIT_USAGE = 0, 1, 2

EPILOG = f"""\
exit status:
  {EXIT_OK}  every tf_histeq row ran (guards and goals missed, and peers that are skipped or fail, do not count)
  {EXIT_OURS_FAILED}  a tf_histeq row failed: it raised, or its pixels differ from OpenCV's; the report
     (and --json FILE) is still written, and the failures are listed on stderr
  {EXIT_USAGE}  usage error
"""


def _error(message: str) -> int:
    print(f"tf-histeq: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Measure the throughput of tf_histeq against OpenCV, Pillow, scikit-image and Keras:\n"
        "the op, and the ways in (tf.data on PNG files, Keras layers, the command line), in one run.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test of the benchmark, not figures: tiny workloads, one timed run per row; checks that every "
        "row runs and every tf_histeq row's pixels, and judges no target",
    )
    parser.add_argument("--device", choices=("cpu", "gpu"), help="pin TensorFlow to /CPU:0 or /GPU:0 (default cpu)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure, machine info included, to FILE")
    parser.add_argument("--overwrite", action="store_true", help="let --json replace an existing FILE")
    parser.add_argument("--markdown", action="store_true", help="print markdown (for the README) instead of text")
    parser.add_argument("--repeats", type=int, metavar="N", help="timed runs per row (default 5, 1 with --quick)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument(
        "--many-files",
        action="store_true",
        help="also time the command line against the cv2 script on 1000 PNG files (a few minutes more)",
    )
    parser.add_argument(
        "--from-json",
        metavar="FILE",
        help="measure nothing: render the results saved by --json FILE (with --markdown for the README)",
    )
    return parser


def _load(path: str) -> dict | str:
    """The results saved in `path`, or an error message."""
    try:
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    except OSError as err:
        return f"cannot read {path}: {err.strerror or err}"
    except json.JSONDecodeError as err:
        return f"{path} is not a JSON file: {err}"
    schema = results.get("schema") if isinstance(results, dict) else None
    if schema != SCHEMA:
        return f"{path} holds {schema or 'no'} results; this version reads {SCHEMA} (rerun the bench)"
    return results


def _measure(args) -> dict | str:
    """Run the benchmark as `args` say; the results, or an error message."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    from tf_histeq.bench import run

    if args.device == "gpu" and not tf.config.list_physical_devices("GPU"):
        return "--device gpu: TensorFlow sees no GPU (tf.config.list_physical_devices('GPU') is empty)"
    return run.run_benchmarks(
        quick=args.quick,
        device=args.device or "cpu",
        repeats=args.repeats,
        memory_probe=not args.no_memory,
        many_files=args.many_files,
        progress=lambda line: print(f"bench: {line}", file=sys.stderr, flush=True),
    )


def _usage_problem(args) -> str | None:
    if args.from_json:
        given = [
            flag
            for flag, value in (
                ("--quick", args.quick),
                ("--device", args.device),
                ("--json", args.json),
                ("--overwrite", args.overwrite),
                ("--repeats", args.repeats),
                ("--no-memory", args.no_memory),
                ("--many-files", args.many_files),
            )
            if value
        ]
        if given:
            return f"--from-json renders saved results and measures nothing: drop {', '.join(given)}"
        return None
    if args.overwrite and not args.json:
        return "--overwrite only applies with --json FILE"
    if args.repeats is not None and args.repeats < 1:
        return f"--repeats must be at least 1, got {args.repeats}"
    if args.many_files and args.quick:
        return "--many-files adds a long workload; it does not go with --quick"
    if args.json:
        if os.path.exists(args.json) and not args.overwrite:
            return f"{args.json} already exists; choose another file or pass --overwrite"
        parent = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(parent):
            return f"cannot write {args.json}: directory {parent} does not exist"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run `tf-histeq bench ARGS` (`tf-histeq bench --help` lists them).

    Args:
        argv: The arguments after `bench`; `None` reads `sys.argv[1:]`.

    Returns:
        The exit status: 0 when every tf_histeq row ran, 1 when one failed (the
        report is printed and `--json` written all the same), 2 for a usage error.

    Example:
        >>> main(["--repeats", "0"])
        2
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its message
        return int(exit_.code or 0)
    problem = _usage_problem(args)
    if problem:
        return _error(problem)
    results = _load(args.from_json) if args.from_json else _measure(args)
    if isinstance(results, str):
        return _error(results)
    print(report.format_markdown(results) if args.markdown else report.format_table(results))
    if args.json:
        try:
            with open(args.json, "w" if args.overwrite else "x", encoding="utf-8") as f:
                json.dump(results, f, indent=2)
                f.write("\n")
        except FileExistsError:
            return _error(f"{args.json} already exists; choose another file or pass --overwrite")
        except OSError as err:
            return _error(f"cannot write {args.json}: {err.strerror or err}")
        print(f"wrote {args.json}")
    failed = report.failures(results)
    if failed:
        print(f"{PROG}: {len(failed)} tf_histeq row(s) failed:", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return EXIT_OURS_FAILED
    return EXIT_OK
