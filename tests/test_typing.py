"""The typed public surface: the stub of the lazy package matches the functions it describes."""

from __future__ import annotations

import ast
import inspect
import pathlib

import pytest

import tf_histeq

STUB = pathlib.Path(tf_histeq.__file__).with_name("__init__.pyi")


def _stub_functions() -> dict[str, ast.FunctionDef]:
    tree = ast.parse(STUB.read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _stub_parameters(node: ast.FunctionDef) -> list[tuple[str, str, object]]:
    """(name, kind, default) of each parameter, as `inspect` names them."""
    args = node.args
    positional = args.posonlyargs + args.args
    defaults = [inspect.Parameter.empty] * (len(positional) - len(args.defaults)) + [
        ast.literal_eval(d) for d in args.defaults
    ]
    rows = [
        (a.arg, "POSITIONAL_ONLY" if a in args.posonlyargs else "POSITIONAL_OR_KEYWORD", d)
        for a, d in zip(positional, defaults, strict=True)
    ]
    if args.vararg:
        rows.append((args.vararg.arg, "VAR_POSITIONAL", inspect.Parameter.empty))
    for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        rows.append((a.arg, "KEYWORD_ONLY", inspect.Parameter.empty if d is None else ast.literal_eval(d)))
    if args.kwarg:
        rows.append((args.kwarg.arg, "VAR_KEYWORD", inspect.Parameter.empty))
    return rows


def _real_parameters(function) -> list[tuple[str, str, object]]:
    return [(p.name, p.kind.name, p.default) for p in inspect.signature(function).parameters.values()]


def test_stub_declares_every_public_function():
    functions = {name for name in tf_histeq.__all__ if callable(getattr(tf_histeq, name))} - {"Histogram"}
    assert set(_stub_functions()) == functions


@pytest.mark.parametrize("name", sorted(_stub_functions()))
def test_stub_signature_matches_the_function(name):
    assert _stub_parameters(_stub_functions()[name]) == _real_parameters(getattr(tf_histeq, name))


def test_package_ships_the_marker_and_the_stub():
    assert STUB.is_file()
    assert STUB.with_name("py.typed").is_file()
