"""Running a test's script in a fresh Python process (multi-device setups, XLA dumps, op determinism)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_env(**extra: str) -> dict[str, str]:
    """This process's environment, TensorFlow quiet, with the checkout first on `PYTHONPATH`, plus `extra`."""
    path = os.pathsep.join([ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path, **extra}


def tail(text: str, lines: int = 40) -> str:
    """The last `lines` of a child's stderr, without TensorFlow's start-up log lines."""
    kept = [line for line in text.splitlines() if not line.startswith(("I0000", "WARNING: All log messages"))]
    return "\n".join(kept[-lines:])


def run_npz_script(script: str, tmp_path, *, env: dict | None = None, timeout: int = 300, **arrays):
    """Run `python -c script IN.npz OUT.npz` with `arrays` in IN.npz; return OUT.npz, loaded.

    The script must exit 0 (its stderr's tail is the failure message) and write
    OUT.npz (`np.savez(sys.argv[2], ...)`).
    """
    np.savez(tmp_path / "in.npz", **arrays)
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
        capture_output=True,
        text=True,
        env=python_env() if env is None else env,
        cwd=ROOT,
        timeout=timeout,
    )
    assert result.returncode == 0, tail(result.stderr)
    return np.load(tmp_path / "out.npz")
