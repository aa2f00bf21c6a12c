"""One signature per op: every way in takes the keywords of the schema in `tf_histeq._options`.

The schema (`_options.KEYWORDS`, `OP_KEYWORDS`, `WAY_IN_KEYWORDS`, the random
layers' `RANDOM_KEYWORDS`) is the one source of each op's keyword names, order
and defaults. Where Python needs them written out (the ops, the layers'
`__init__`, `histogram_equalization`, the stub of the lazy package), or a way
in takes them as `**kwargs` (the map functions, `preprocessing_function`), or
builds them (the command line's flags, the layers' configs), one test here
reads the way in (`inspect.signature`, the stub's syntax tree, the parser's
actions, a probe call) and fails naming the way in and the keyword on any
disagreement of names, order, kinds or defaults.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import pathlib
import re
from collections.abc import Callable

import pytest

import tf_histeq
from tf_histeq import _options

EMPTY = inspect.Parameter.empty
KO = "KEYWORD_ONLY"
POK = "POSITIONAL_OR_KEYWORD"
STUB = pathlib.Path(tf_histeq.__file__).with_name("__init__.pyi")
WAY_IN = tuple(_options.WAY_IN_KEYWORDS)

Row = tuple[str, str, object]  # (name, kind, default) of one parameter


class WayInDisagreement(AssertionError):
    """The op's keywords agree; only a way-in keyword (`jit_compile`) is missing, misplaced or off its default."""


def _way_in_rows() -> list[Row]:
    return [(name, KO, keyword.default) for name, keyword in _options.WAY_IN_KEYWORDS.items()]


def _op_rows(op: str, *, exclude=(), layer=False, random=False) -> list[Row]:
    """The schema's rows of `op` after the images: positional `reference` (None in a layer), then keywords."""
    rows = []
    for name in _options.OP_KEYWORDS[op]:
        if name in exclude:
            continue
        keyword = _options.KEYWORDS[name]
        if keyword.positional:
            rows.append((name, POK, None if layer else EMPTY))
        elif random and name == "clip_limit":
            rows.append((name, KO, _options.RANDOM_CLIP_LIMIT))
        else:
            rows.append((name, KO, keyword.default))
    return rows


def _parameters(function: Callable, *, skip_self=False) -> list[Row]:
    rows = [(p.name, p.kind.name, p.default) for p in inspect.signature(function).parameters.values()]
    return rows[1:] if skip_self else rows


def _problems(actual: list[Row], expected: list[Row], ignore=()) -> list[str]:
    """What disagrees between two parameter lists, keyword by keyword (names in `ignore` left out)."""
    actual = [row for row in actual if row[0] not in ignore]
    expected = [row for row in expected if row[0] not in ignore]
    have, want = dict((r[0], r) for r in actual), dict((r[0], r) for r in expected)
    problems = [f"lacks `{name}` (the schema: {want[name]})" for name in want if name not in have]
    problems += [f"has `{name}`, which the schema does not list here" for name in have if name not in want]
    order, schema_order = [n for n in have if n in want], [n for n in want if n in have]
    if order != schema_order:
        at = next(i for i, (a, b) in enumerate(zip(order, schema_order, strict=True)) if a != b)
        problems.append(f"takes `{order[at]}` where the schema puts `{schema_order[at]}` (order {schema_order})")
    for name in order:
        if have[name] != want[name]:
            problems.append(f"`{name}` is {have[name][1:]} (kind, default), the schema says {want[name][1:]}")
    return problems


def _check(door: str, actual: list[Row], expected: list[Row]) -> None:
    problems = _problems(actual, expected, ignore=WAY_IN)
    assert not problems, f"{door}: " + "; ".join(problems)
    problems = _problems(actual, expected)
    if problems:
        raise WayInDisagreement(f"{door}: " + "; ".join(problems))


# --------------------------------------------------------------------------- doors with written-out signatures


def _op_door(op: str) -> tuple[list[Row], list[Row]]:
    expected = [("images", POK, EMPTY), *_op_rows(op), *_way_in_rows()]
    return _parameters(getattr(tf_histeq, op)), expected


def _numpy_door() -> tuple[list[Row], list[Row]]:
    expected = [("image", POK, EMPTY), *_op_rows("equalize_hist"), *_way_in_rows()]
    return _parameters(tf_histeq.histogram_equalization), expected


# The layers' layout is their class's (`HistogramEqualization` 2-D, `HistogramEqualization3D` 3-D): no
# `spatial_dims` argument or config; nor in the random ways in, whose draws are per image.
LAYOUT = ("spatial_dims",)


def _layer_door(name: str, op: str) -> tuple[list[Row], list[Row]]:
    from tf_histeq import layers

    rows = _op_rows(op, exclude=("mask", *LAYOUT), layer=True)
    expected = [*rows, *_way_in_rows(), ("kwargs", "VAR_KEYWORD", EMPTY)]
    return _parameters(getattr(layers, name).__init__, skip_self=True), expected


def _random_layer_door(name: str, op: str) -> tuple[list[Row], list[Row]]:
    from tf_histeq import layers

    own = [("factor", KO, _options.RANDOM_FACTOR[op]), ("seed", KO, None)]
    assert [row[0] for row in own] == list(_options.RANDOM_KEYWORDS)
    expected = [*_op_rows(op, exclude=("mask", *LAYOUT), random=True), *own, *_way_in_rows()]
    return _parameters(getattr(layers, name).__init__, skip_self=True), [*expected, ("kwargs", "VAR_KEYWORD", EMPTY)]


def _stub_rows(name: str) -> list[Row]:
    node = next(n for n in ast.parse(STUB.read_text()).body if isinstance(n, ast.FunctionDef) and n.name == name)
    args = node.args
    defaults = [EMPTY] * (len(args.args) - len(args.defaults)) + [ast.literal_eval(d) for d in args.defaults]
    rows = [(a.arg, POK, d) for a, d in zip(args.args, defaults, strict=True)]
    rows += [
        (a.arg, KO, EMPTY if d is None else ast.literal_eval(d))
        for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    return rows


def _stub_door(name: str) -> tuple[list[Row], list[Row]]:
    if name == "histogram_equalization":
        return _stub_rows(name), _numpy_door()[1]
    return _stub_rows(name), _op_door(name)[1]


LAYERS = {
    "HistogramEqualization": "equalize_hist",
    "CLAHE": "clahe",
    "HistogramMatching": "match_histograms",
    "HistogramEqualization3D": "equalize_hist",
    "HistogramMatching3D": "match_histograms",
}
RANDOM_LAYERS = {"RandomEqualization": "equalize_hist", "RandomCLAHE": "clahe"}

DOORS = [
    *[pytest.param(lambda op=op: _op_door(op), id=f"tf_histeq.{op}") for op in _options.OP_NAMES],
    *[pytest.param(lambda n=n, op=op: _layer_door(n, op), id=f"layers.{n}") for n, op in LAYERS.items()],
    *[pytest.param(lambda n=n, op=op: _random_layer_door(n, op), id=f"layers.{n}") for n, op in RANDOM_LAYERS.items()],
    pytest.param(_numpy_door, id="tf_histeq.histogram_equalization"),
    *[
        pytest.param(lambda n=n: _stub_door(n), id=f"__init__.pyi:{n}")
        for n in (*_options.OP_NAMES, "histogram_equalization")
    ],
]


@pytest.mark.parametrize("door", DOORS)
def test_signature_is_the_schemas(door, request):
    _check(request.node.callspec.id, *door())


# --------------------------------------------------------------------------- doors that take **kwargs


def _accepted(call: Callable[..., object], op: str) -> list[Row]:
    """The schema keywords of `op` that `call(op, name=default)` accepts (in schema order), as rows."""
    rows = []
    for name in _options.OP_KEYWORDS[op]:
        default = _options.KEYWORDS[name].default
        try:
            call(op, **{name: default})
        except TypeError as err:
            assert "`kwargs` must be keyword arguments" in str(err), err
            continue
        rows.append((name, "KWARG", default))
    with pytest.raises(TypeError, match=r"`kwargs` must be keyword arguments.*Received: kwargs=\['not_an_option'\]"):
        call(op, not_an_option=1)
    return rows


def _named(function: Callable) -> list[Row]:
    """The way-in keywords that `function` names in its signature."""
    return [row for row in _parameters(function) if row[0] in WAY_IN]


def _kwargs_rows(op: str, *, exclude=()) -> list[Row]:
    """The schema's keywords of `op` as **kwargs take them (no kind, no order of their own), then the way in's."""
    rows = [(n, "KWARG", _options.KEYWORDS[n].default) for n in _options.OP_KEYWORDS[op] if n not in exclude]
    return [*rows, *_way_in_rows()]


def _map_fn_door(op: str) -> tuple[list[Row], list[Row]]:
    from tf_histeq import data

    return _accepted(data.map_fn, op) + _named(data.map_fn), _kwargs_rows(op, exclude=("mask",))


def _random_map_fn_door(op: str) -> tuple[list[Row], list[Row]]:
    from tf_histeq import data

    actual = _accepted(lambda op, **kw: data.random_map_fn(op, seed=0, **kw), op) + _named(data.random_map_fn)
    return actual, _kwargs_rows(op, exclude=("mask", *LAYOUT))


def _preprocessing_door(op: str) -> tuple[list[Row], list[Row]]:
    function = tf_histeq.preprocessing_function
    return _accepted(function, op) + _named(function), _kwargs_rows(op)


KWARGS_DOORS = [
    *[pytest.param(lambda op=op: _map_fn_door(op), id=f"data.map_fn({op})") for op in _options.OP_NAMES],
    *[
        pytest.param(lambda op=op: _random_map_fn_door(op), id=f"data.random_map_fn({op})")
        for op in _options.RANDOM_OPS
    ],
    *[
        pytest.param(lambda op=op: _preprocessing_door(op), id=f"preprocessing_function({op})")
        for op in _options.OP_NAMES
    ],
]


@pytest.mark.parametrize("door", KWARGS_DOORS)
def test_accepted_keywords_are_the_schemas(door, request):
    _check(request.node.callspec.id, *door())


# --------------------------------------------------------------------------- doors built from the schema


def _subparsers(op: str | None = None) -> dict:
    """The `tf-histeq` subcommand parsers, by op (each parser once, aliases left out)."""
    from tf_histeq.cli import app

    parser = app.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    return {p.get_default("op"): p for p in commands.values() if p.get_default("op") is not None}


def _flag_row(name: str, op: str, *, required=False, default=None, choices=None) -> Row:
    kind = "FLAG" if choices is None else f"FLAG choices={tuple(choices)}"
    return (name, kind, EMPTY if required else default)


def _cli_door(op: str) -> tuple[list[Row], list[Row]]:
    keywords = {**_options.KEYWORDS, **_options.WAY_IN_KEYWORDS}
    actual = []
    for action in _subparsers()[op]._actions:
        if action.dest not in keywords:
            continue
        flag, default = keywords[action.dest].flag, action.default
        default = flag.words[default] if flag and flag.words and default is not None else default
        default = tuple(default) if isinstance(default, list) else default
        actual.append(_flag_row(action.dest, op, required=action.required, default=default, choices=action.choices))
    expected = []
    for name in (*_options.OP_KEYWORDS[op], *_options.WAY_IN_KEYWORDS):
        keyword = keywords[name]
        if keyword.flag is None and name not in WAY_IN:
            continue  # not on the command line (masks)
        words = keyword.flag.words if keyword.flag else None
        choices = tuple(words) if words else keyword.choices_for(op)
        expected.append(_flag_row(name, op, required=keyword.positional, default=keyword.default, choices=choices))
    return actual, expected


def _config_door(name: str, op: str, random: bool) -> tuple[list[Row], list[Row]]:
    from tf_histeq import layers

    if random:
        own = [("factor", KO, _options.RANDOM_FACTOR[op]), ("seed", KO, None)]
        expected = [*_op_rows(op, exclude=("mask", *LAYOUT), random=True), *own, *_way_in_rows()]
    else:  # the reference is state (weights), not config
        expected = [*_op_rows(op, exclude=("mask", "reference", "reference_mask", *LAYOUT)), *_way_in_rows()]
    expected = [(n, "CONFIG", d) for n, _, d in expected]
    order = [row[0] for row in expected]
    config = getattr(layers, name)().get_config()
    names = {*_options.KEYWORDS, *WAY_IN, *_options.RANDOM_KEYWORDS}
    actual = sorted(
        ((k, "CONFIG", v) for k, v in config.items() if k in names),
        key=lambda row: order.index(row[0]) if row[0] in order else len(order),
    )
    return actual, expected


BUILT_DOORS = [
    *[pytest.param(lambda op=op: _cli_door(op), id=f"tf-histeq {op}") for op in _options.OP_NAMES],
    *[
        pytest.param(lambda n=n, op=op: _config_door(n, op, False), id=f"layers.{n}.get_config")
        for n, op in LAYERS.items()
    ],
    *[
        pytest.param(lambda n=n, op=op: _config_door(n, op, True), id=f"layers.{n}.get_config")
        for n, op in RANDOM_LAYERS.items()
    ],
]


@pytest.mark.parametrize("door", BUILT_DOORS)
def test_built_options_are_the_schemas(door, request):
    _check(request.node.callspec.id, *door())


def test_op_name_lists_are_the_schemas():
    from tf_histeq import data, deploy, layers, ops

    assert tuple(ops.OPS) == _options.OP_NAMES, "tf_histeq.ops.OPS"
    assert deploy._OP_SCOPES == _options.OP_NAMES, "tf_histeq.deploy._OP_SCOPES"
    assert tuple(_subparsers()) == _options.OP_NAMES, "the tf-histeq subcommands"
    assert {getattr(layers, n)._OP for n in LAYERS} == set(_options.OP_NAMES), "the layers"
    assert {getattr(layers, n)._OP for n in RANDOM_LAYERS} == set(_options.RANDOM_OPS), "the random layers"
    assert set(_options.RANDOM_OPS) <= set(_options.OP_NAMES)
    choices = ", ".join(repr(op) for op in _options.RANDOM_OPS)
    for op in set(_options.OP_NAMES) - set(_options.RANDOM_OPS):
        with pytest.raises(ValueError, match=f"`op` must be one of {choices}. Received: op='{op}'"):
            data.random_map_fn(op, seed=0)
    for op in _options.RANDOM_OPS:
        data.random_map_fn(op, seed=0)


# --------------------------------------------------------------------------- prose that copies a constant

ROOT = pathlib.Path(tf_histeq.__file__).parent.parent


def _readme_heading(op: str) -> list[Row]:
    """The parameters of the README's `### \\`tf_histeq.op(...)\\`` heading, a written-out signature."""
    heading = re.search(rf"^### `tf_histeq\.{op}\((.*)\)`$", (ROOT / "README.md").read_text(), re.M)
    assert heading, f"README.md has no heading for tf_histeq.{op}"
    args = ast.parse(f"def {op}({heading.group(1)}): pass").body[0].args
    defaults = [EMPTY] * (len(args.args) - len(args.defaults)) + [ast.literal_eval(d) for d in args.defaults]
    rows = [(a.arg, POK, d) for a, d in zip(args.args, defaults, strict=True)]
    rows += [
        (a.arg, KO, EMPTY if d is None else ast.literal_eval(d))
        for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    return rows


@pytest.mark.parametrize("op", _options.OP_NAMES)
def test_readme_headings_are_the_schemas(op):
    _check(f"README.md `tf_histeq.{op}(...)`", _readme_heading(op), _op_door(op)[1])


def _xla_constant(name: str):
    from tf_histeq import _xla

    return getattr(_xla, name)


def _cli_constant(module: str, name: str):
    return getattr(importlib.import_module(f"tf_histeq.cli.{module}"), name)


# (files, a pattern whose groups state the constant, how the groups read, the constant's name, its value)
PROSE = [
    (
        ("README.md", "tf_histeq/data.py", "tf_histeq/layers/__init__.py"),
        r"at most (\d+) shapes",
        lambda n: int(n),
        "MAX_COMPILED_SHAPES",
        lambda: _xla_constant("MAX_COMPILED_SHAPES"),
    ),
    (
        ("tf_histeq/data.py", "tf_histeq/layers/__init__.py"),
        r"`2\*\*(\d+)`\s+values",
        lambda n: 2 ** int(n),
        "COMPILE_AFTER_VALUES",
        lambda: _xla_constant("COMPILE_AFTER_VALUES"),
    ),
    (
        ("tf_histeq/data.py", "tf_histeq/layers/_random.py"),
        r"\(default `\(([\d.]+), ([\d.]+)\)`\)",
        lambda low, high: (float(low), float(high)),
        "RANDOM_CLIP_LIMIT",
        lambda: _options.RANDOM_CLIP_LIMIT,
    ),
    (
        ("README.md",),
        r"(\d+)\.\.(\d+) by default",
        lambda low, high: (float(low), float(high)),
        "RANDOM_CLIP_LIMIT",
        lambda: _options.RANDOM_CLIP_LIMIT,
    ),
    (
        ("README.md",),
        r"`--jpeg-quality (\d+)`",
        lambda q: int(q),
        "DEFAULT_JPEG_QUALITY",
        lambda: _cli_constant("app", "DEFAULT_JPEG_QUALITY"),
    ),
    (
        ("README.md",),
        r"`--png-compression 0\.\.9`, default (\d+)",
        lambda n: int(n),
        "PNG_COMPRESSION",
        lambda: _cli_constant("files", "PNG_COMPRESSION"),
    ),
    (
        ("tf_histeq/layers/_random.py",),
        r"transformed \(default ([\d.]+)",
        lambda f: float(f),
        "RANDOM_FACTOR",
        lambda: _options.RANDOM_FACTOR["clahe"],
    ),
    (
        ("tf_histeq/layers/_random.py",),
        r"equalized \(default ([\d.]+)\)",
        lambda f: float(f),
        "RANDOM_FACTOR",
        lambda: _options.RANDOM_FACTOR["equalize_hist"],
    ),
    (
        ("tf_histeq/data.py",),
        r"([\d.]+) for\s+`\"clahe\"`",
        lambda f: float(f),
        "RANDOM_FACTOR",
        lambda: _options.RANDOM_FACTOR["clahe"],
    ),
    (
        ("tf_histeq/data.py",),
        r"([\d.]+) for\s+`\"equalize_hist\"`",
        lambda f: float(f),
        "RANDOM_FACTOR",
        lambda: _options.RANDOM_FACTOR["equalize_hist"],
    ),
]


@pytest.mark.parametrize(("files", "pattern", "read", "name", "value"), PROSE, ids=[p[1] for p in PROSE])
def test_prose_states_the_constant(files, pattern, read, name, value):
    """Where the prose copies a constant's number, it is the constant's; where it does not, it names the constant."""
    for file in files:
        text = (ROOT / file).read_text()
        stated = [read(*m.groups()) for m in re.finditer(pattern, text)]
        assert stated or name in text, f"{file} neither states {pattern!r} nor names {name}: drop it from PROSE"
        for number in stated:
            assert number == value(), f"{file} says {number!r} ({pattern!r}); the code has {name} = {value()!r}"
