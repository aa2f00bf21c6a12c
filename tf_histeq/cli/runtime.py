"""TensorFlow for the command line: imported once, on first use, quietly and without Keras.

The modules of the command line that build or run graphs use `tf` from here,
a stand-in for the `tensorflow` module that imports it (`import_tensorflow`)
when one of its attributes is first read: `tf-histeq --help` and usage errors
never import TensorFlow, and no function passes it around.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Any


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence file descriptor 2 (TensorFlow's C++ start-up log lines) for the duration.

    Only when the user has not asked for C++ logs by setting TF_CPP_MIN_LOG_LEVEL
    below 3 themselves. Python exceptions are unaffected: they print later.
    """
    level = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = None
    try:
        if level == "3":
            sys.stderr.flush()
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
    except (OSError, ValueError):
        saved = None
    try:
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow():
    """Import TensorFlow for the command line's own process; return the module.

    Quietly (`_quiet_native_stderr`), and without Keras: `import tensorflow`
    ends by importing Keras's optimizers for SavedModel registrations (and Keras
    imports matplotlib), a quarter of TensorFlow's import time that the command
    line never uses. While TensorFlow imports, `keras` and `tf_keras` are marked
    unimportable (`sys.modules[name] = None`), which TensorFlow tolerates (it
    catches the ImportError); the marks are removed afterwards, so `tf.keras`
    still loads Keras on first use. Nothing changes in a process where
    TensorFlow or Keras is already imported.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    blocked = [name for name in ("keras", "tf_keras") if name not in sys.modules]
    try:
        for name in blocked:
            sys.modules[name] = None
        with _quiet_native_stderr():
            return importlib.import_module("tensorflow")
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


class _TensorFlow:
    """The `tensorflow` module, imported by `import_tensorflow` when an attribute is first read."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(import_tensorflow(), name)

    def __repr__(self) -> str:
        return (
            "<tensorflow, imported on first use>"
            if "tensorflow" not in sys.modules
            else repr(sys.modules["tensorflow"])
        )


tf: Any = _TensorFlow()
