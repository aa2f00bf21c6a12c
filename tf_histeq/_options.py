"""The options of every way in: choices, defaults and validators, without TensorFlow.

One schema serves the functions (`tf_histeq.equalize_hist`, `tf_histeq.clahe`,
`tf_histeq.match_histograms`, `tf_histeq.equalize_adapthist`),
the Keras layers, `tf_histeq.data.map_fn`, the NumPy API, the command line and
the plots, so a choice or a default is written once. The reference of
`match_histograms` (`Histogram`) is checked in `tf_histeq._reference`. This
module imports no TensorFlow, so `tf-histeq --help` and argument errors stay
instant.

Every check reads Python values only, so it runs once at trace time and costs
nothing inside `tf.function`, XLA or `tf.data`. Messages follow one grammar::

    `{param}` must {expectation}. Received: {param}={value!r}. [Hint: ...]
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

MAX_BINS = 65536

METHODS = ("opencv", "pil")
CHANNELS = ("per_channel", "luminance", "joint", "lab")
CLAHE_CHANNELS = ("per_channel", "luminance", "lab")
MATCH_CHANNELS = ("per_channel", "joint")
# `equalize_adapthist`: each channel alone, or scikit-image's RGB mode (its `adapt_rgb(hsv_value)`).
ADAPTHIST_CHANNELS = ("per_channel", "hsv_value")
ALPHA_CHOICES = ("auto", True, False)

# The value range of images read with `value_range=None`, by dtype name (`default_range`): the dtype's
# levels for uint8, uint16 and int16 (CT in Hounsfield units, as NIfTI and DICOM store it: pass e.g.
# `value_range=(-1024, 3071), bins=4096` for the usual CT window), the 8-bit range for int32 and, by the
# Keras convention, for every float.
DEFAULT_RANGES = {"uint8": (0, 255), "uint16": (0, 65535), "int16": (-32768, 32767), "int32": (0, 255)}
FLOAT_RANGE = (0, 255)

# The defaults of every op keyword. The functions' signatures read them from here.
CLIP_LIMIT = 2.0  # `clahe`: OpenCV units
# `equalize_adapthist`: scikit-image's names and defaults (`clip_limit` a fraction of a tile's voxels).
ADAPTHIST_CLIP_LIMIT = 0.01
KERNEL_SIZE = None  # 1/8 of each spatial axis
NBINS = 256
TILE_GRID_SIZE = (8, 8)
METHOD = "opencv"
CHANNEL_MODE = "per_channel"
ALPHA = "auto"
# The defaults of the random layers and `tf_histeq.data.random_map_fn`: a clip limit
# sampled from 1..4 for every image (as albumentations' CLAHE), equalization of half
# of the images (as torchvision's RandomEqualize).
RANDOM_CLIP_LIMIT = (1.0, 4.0)
RANDOM_FACTOR = {"clahe": 1.0, "equalize_hist": 0.5}
# Nyúl standardization (`tf_histeq.standardize`), TorchIO's defaults: the cutoff quantiles and the
# standard range of the landmarks. Here, TensorFlow-free, for the command line's flags too.
NYUL_CUTOFF = (0.01, 0.99)
NYUL_OUTPUT_RANGE = (0.0, 100.0)


def _received(name: str, value: Any) -> str:
    return f"Received: {name}={value!r}."


def fail(exc: type[Exception], name: str, expectation: str, value: Any, hint: str | None = None):
    """Raise `exc` with the house message grammar."""
    message = f"`{name}` must {expectation}. {_received(name, value)}"
    if hint:
        message += f" Hint: {hint}"
    raise exc(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _item(value: Any) -> Any:
    """A NumPy scalar (or 0-d array) as a Python number; anything else unchanged."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 else value


def _as_pair(value: Any) -> Any:
    """Turn a NumPy array or an eager tensor of shape (2,) into a tuple; leave anything else."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    if hasattr(value, "tolist") and getattr(value, "ndim", None) == 1:
        return tuple(value.tolist())
    return value


def check_choice(value: Any, *, name: str, choices: Sequence[str]) -> str:
    """Return `value` if it is one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        fail(ValueError, name, f"be one of {expected}", value)
    return value


def check_value_range(value: Any, *, name: str = "value_range") -> tuple[float, float] | None:
    """Return `value` as a `(low, high)` tuple of finite numbers with low < high, or None."""
    if value is None:
        return None
    value = _as_pair(value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        fail(TypeError, name, "be a pair of numbers (low, high)", value)
    low, high = (_item(v) for v in value)
    if not (_is_real(low) and _is_real(high)):
        fail(TypeError, name, "be a pair of numbers (low, high)", value)
    if not (math.isfinite(low) and math.isfinite(high)):
        fail(ValueError, name, "be two finite numbers (low, high)", value)
    if not low < high:
        fail(ValueError, name, "satisfy low < high", value)
    low = int(low) if float(low).is_integer() else float(low)
    high = int(high) if float(high).is_integer() else float(high)
    return (low, high)


def check_bins(value: Any, *, name: str = "bins") -> int | None:
    """Return `value` as an int in [2, MAX_BINS], or None."""
    if value is None:
        return None
    value = _item(value)
    if not _is_int(value):
        fail(TypeError, name, f"be an int in [2, {MAX_BINS}]", value)
    if not 2 <= value <= MAX_BINS:
        fail(ValueError, name, f"be an int in [2, {MAX_BINS}]", value)
    return int(value)


def check_clip_limit(value: Any, *, name: str = "clip_limit") -> float:
    """Return `value` as a finite float (<= 0 disables clipping)."""
    value = _item(value)
    if not _is_real(value):
        fail(TypeError, name, "be a number (OpenCV units; <= 0 disables clipping)", value)
    if not math.isfinite(value):
        fail(ValueError, name, "be a finite number (OpenCV units; <= 0 disables clipping)", value)
    return float(value)


def check_grid(value: Any, *, name: str = "tile_grid_size") -> tuple[int, int]:
    """Return `value` as a `(rows, cols)` tuple of positive ints; lists from JSON configs are fine."""
    value = _as_pair(value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        fail(TypeError, name, "be a pair of two ints (rows, cols)", value)
    items = [_item(v) for v in value]
    if not all(_is_int(v) for v in items):
        fail(TypeError, name, "be a pair of two ints (rows, cols)", value)
    if min(items) < 1:
        fail(ValueError, name, "be two positive ints (rows, cols)", value)
    return int(items[0]), int(items[1])


def check_alpha(value: Any, *, name: str = "alpha", spatial_dims: int = 2) -> str | bool:
    """Return `value` if it is `"auto"`, True or False (NumPy bools included).

    Volumes (`spatial_dims=3`) have no alpha channel: for them `"auto"` is False,
    so that a 2-channel volume (two MR contrasts) has both channels processed.
    """
    value = _item(value)
    if isinstance(value, str) and value == "auto":
        return False if spatial_dims == 3 else value
    if isinstance(value, bool):
        return value
    fail(
        ValueError if isinstance(value, str) else TypeError,
        name,
        "be 'auto' (the last of 2 or 4 channels is alpha), True (the last channel is alpha) or False (no alpha)",
        value,
    )


def check_spatial_dims(value: Any, *, name: str = "spatial_dims") -> int:
    """Return `value` (2: images, 3: volumes) or raise."""
    if not _is_int(value):
        fail(TypeError, name, "be 2 (images) or 3 (volumes)", value)
    if int(value) not in (2, 3):
        fail(ValueError, name, "be 2 (images) or 3 (volumes)", value)
    return int(value)


def default_range(dtype_name: str) -> tuple[int, int]:
    """The value range of images of this dtype (a NumPy or TensorFlow name) read with `value_range=None`."""
    return DEFAULT_RANGES.get(dtype_name, FLOAT_RANGE)


def has_alpha(alpha: str | bool, n_channels: int) -> bool:
    """Whether the last of `n_channels` channels is alpha, by the `alpha` option (checked first).

    Raises:
        ValueError: If `alpha` is True for single-channel images.
    """
    alpha = check_alpha(alpha)
    if alpha == "auto":
        return n_channels in (2, 4)
    if alpha and n_channels < 2:
        fail(
            ValueError,
            "alpha",
            "be False or 'auto' for single-channel images (True takes the last channel as alpha)",
            alpha,
        )
    return bool(alpha)


def check_clip_range(value: Any, *, name: str = "clip_limit") -> float | tuple[float, float]:
    """Return `value`, a clip limit >= 0 or a `(min, max)` range of them, as floats.

    The random layers sample each image's limit uniformly from the range; a
    number is the same limit for every image. Negative limits (which would
    disable clipping in `tf_histeq.clahe`) are refused: set 0 for that.
    """
    expectation = "be a number >= 0 or a (min, max) range with 0 <= min <= max (OpenCV units)"
    pair = _as_pair(value)
    items = [_item(v) for v in pair] if isinstance(pair, (tuple, list)) and len(pair) == 2 else [_item(value)]
    if not all(_is_real(v) for v in items):
        fail(TypeError, name, expectation, value)
    if not all(math.isfinite(v) and v >= 0 for v in items) or items[0] > items[-1]:
        fail(ValueError, name, expectation, value)
    return tuple(float(v) for v in items) if len(items) == 2 else float(items[0])


def check_probability(value: Any, *, name: str = "factor") -> float:
    """Return `value`, a probability in [0, 1], as a float."""
    value = _item(value)
    if not _is_real(value):
        fail(TypeError, name, "be a number in [0, 1] (the probability that an image is transformed)", value)
    if not 0 <= value <= 1:  # NaN fails too
        fail(ValueError, name, "be a number in [0, 1] (the probability that an image is transformed)", value)
    return float(value)


def check_seed(value: Any, *, name: str = "seed", optional: bool = True) -> int | None:
    """Return `value` as an int64 seed; None (a random seed) only if `optional`."""
    value = _item(value)
    if value is None and optional:
        return None
    if not _is_int(value):
        fail(TypeError, name, "be an int" + (" or None (a random seed)" if optional else ""), value)
    if not -(2**63) <= value < 2**63:
        fail(ValueError, name, "be an int in [-2**63, 2**63)", value)
    return int(value)


# --------------------------------------------------------------------------- the ops' schema
#
# The one source of the ops' keyword arguments. A new keyword is an entry in
# `KEYWORDS` (default, check, command-line flag), its name in its op's row of
# `OP_KEYWORDS`, and the keyword in the op's signature. The rest follows: the
# validation of every way in (`resolve`), the layers' configs, the map
# functions' and the NumPy function's accepted keywords, the command-line
# flags. The signatures written out for editors (the layers' `__init__`,
# `histogram_equalization`, the stub) are held to this schema by
# tests/test_signatures.py, which names the way in and the keyword that disagree.


@dataclasses.dataclass(frozen=True)
class Flag:
    """How a keyword appears on the `tf-histeq` command line (`--value-range` for `value_range`).

    Attributes:
        help: The help text. `{default}` stands for the default as it is typed
            on the command line, `{done}` for the op's past participle
            ("equalized", "matched").
        type: Converts one word of the command line (None: a string).
        nargs: Number of words (None: one).
        metavar: The placeholder(s) shown in the usage line.
        words: The words the flag accepts and the values they stand for, where
            they differ from the values (`--alpha true` for `alpha=True`).
        required: Whether the command needs the flag.
    """

    help: str
    type: Callable[[str], Any] | None = None
    nargs: int | None = None
    metavar: str | tuple[str, ...] | None = None
    words: Mapping[str, Any] | None = None
    required: bool = False


class PerOp(dict):
    """A keyword's default, or its flag, where it differs by op: `PerOp(clahe=2.0, equalize_adapthist=0.01)`."""


@dataclasses.dataclass(frozen=True)
class Keyword:
    """One keyword argument of the ops, as every way in takes it.

    Attributes:
        default: Its default in the functions, the layers, the map functions,
            the NumPy function and on the command line: one for every op, or a
            `PerOp` of them (read with `default_for`).
        check: `check(op, value)` validates a value and returns it normalized
            (None: passed through as it is); it may check by op.
        choices: The accepted values: a tuple for every op, or a dict of them per op.
        flag: Its command-line flag, or None where the command line has none:
            one for every op, or a `PerOp` of them (read with `flag_for`).
        positional: A positional argument after the images (`reference`): required
            by the op, optional in the layer (which learns it later with `adapt`).
    """

    default: Any
    check: Callable[[str, Any], Any] | None = None
    choices: tuple | Mapping[str, tuple] | None = None
    flag: Flag | None = None
    positional: bool = False

    def choices_for(self, op: str) -> tuple | None:
        """The values `op` accepts, or None where any value may be checked by `check`."""
        return self.choices.get(op) if isinstance(self.choices, Mapping) else self.choices

    def default_for(self, op: str) -> Any:
        """The default of this keyword in `op`."""
        return self.default[op] if isinstance(self.default, PerOp) else self.default

    def flag_for(self, op: str) -> Flag | None:
        """The command-line flag of this keyword in `op`'s subcommand, or None."""
        return self.flag.get(op) if isinstance(self.flag, PerOp) else self.flag


CHANNEL_CHOICES = {
    "equalize_hist": CHANNELS,
    "clahe": CLAHE_CHANNELS,
    "match_histograms": MATCH_CHANNELS,
    "equalize_adapthist": ADAPTHIST_CHANNELS,
}

KEYWORDS: dict[str, Keyword] = {
    # `clahe`'s in OpenCV units (a multiple of a tile's mean bin count); `equalize_adapthist`'s scikit-image's
    # fraction of a tile's voxels in [0, 1].
    "clip_limit": Keyword(
        PerOp(clahe=CLIP_LIMIT, equalize_adapthist=ADAPTHIST_CLIP_LIMIT),
        lambda op, v: _adapthist_options().check_clip_limit(v) if op == "equalize_adapthist" else check_clip_limit(v),
        flag=PerOp(
            clahe=Flag("OpenCV units; <= 0 disables clipping (default {default})", type=float, metavar="C"),
            equalize_adapthist=Flag(
                "a fraction of a tile's pixels in [0, 1], as scikit-image's; 0 disables clipping (default {default})",
                type=float,
                metavar="C",
            ),
        ),
    ),
    "kernel_size": Keyword(KERNEL_SIZE, lambda op, v: _adapthist_options().check_kernel_size(v)),
    "nbins": Keyword(NBINS, lambda op, v: _adapthist_options().check_nbins(v)),
    "tile_grid_size": Keyword(
        TILE_GRID_SIZE,
        lambda op, v: check_grid(v),
        flag=Flag(
            "tiles as rows cols (default {default}; OpenCV's tileGridSize is cols, rows)",
            type=int,
            nargs=2,
            metavar=("ROWS", "COLS"),
        ),
    ),
    "reference": Keyword(
        None,
        lambda op, v: _reference().check_reference(v),
        positional=True,
        flag=Flag(
            "an image or volume file (its histogram), or a folder: the histogram of all its images (or volumes) "
            "pooled per channel "
            "(tf_histeq.reference_histogram; with --recursive, its subfolders' too). One bit depth; 1 channel "
            "(used for every channel) or the inputs' number of colour channels. Never inside the output folder",
            metavar="FILE_OR_DIR",
            required=True,
        ),
    ),
    "value_range": Keyword(
        None,
        lambda op, v: check_value_range(v),
        flag=Flag(
            "pixel value range (default: the dtype's, 0 255 for 8-bit and 0 65535 for 16-bit images)",
            type=float,
            nargs=2,
            metavar=("LOW", "HIGH"),
        ),
    ),
    "bins": Keyword(
        None,
        lambda op, v: check_bins(v),
        flag=Flag("histogram bins (default: one per level, 256 or 65536)", type=int, metavar="N"),
    ),
    "method": Keyword(
        METHOD,
        choices=METHODS,
        flag=Flag("LUT formula: opencv (cv2.equalizeHist) or pil (PIL.ImageOps.equalize) (default {default})"),
    ),
    "channels": Keyword(CHANNEL_MODE, choices=CHANNEL_CHOICES, flag=Flag("default {default}")),
    "alpha": Keyword(
        ALPHA,
        lambda op, v: check_alpha(v),
        flag=Flag(
            "is the last channel alpha, passed through unchanged? auto: the last of 2 or 4 channels (gray + "
            "alpha, RGBA); true: the last channel whatever the count; false: no alpha, every channel is {done} "
            "(e.g. RGB + near infrared) (default {default})",
            words={str(choice).lower(): choice for choice in ALPHA_CHOICES},
        ),
    ),
    "mask": Keyword(None),
    "spatial_dims": Keyword(2, lambda op, v: check_spatial_dims(v)),
    "reference_mask": Keyword(None, lambda op, v: None if v is None else _reference().FrozenArray(v)),
}

# Each op's keyword arguments, in signature order (after `images`).
OP_KEYWORDS: dict[str, tuple[str, ...]] = {
    "equalize_hist": ("value_range", "bins", "method", "channels", "alpha", "mask", "spatial_dims"),
    "clahe": ("clip_limit", "tile_grid_size", "value_range", "bins", "channels", "alpha", "mask"),
    "match_histograms": (
        "reference",
        "value_range",
        "bins",
        "channels",
        "alpha",
        "mask",
        "reference_mask",
        "spatial_dims",
    ),
    "equalize_adapthist": ("kernel_size", "clip_limit", "nbins", "spatial_dims", "channels", "alpha"),
}
OP_NAMES = tuple(OP_KEYWORDS)
# The defaults of each op's keywords. `reference` is required by the function; None
# here lets the layer take it later (`adapt`).
OP_DEFAULTS: dict[str, dict[str, Any]] = {
    op: {name: KEYWORDS[name].default_for(op) for name in names} for op, names in OP_KEYWORDS.items()
}

# What every way in takes besides the op's keywords, after them: how the op runs.
# `check_jit_compile` lives with the runner, in `tf_histeq._xla`.
JIT_COMPILE = "auto"
WAY_IN_KEYWORDS: dict[str, Keyword] = {
    "jit_compile": Keyword(
        JIT_COMPILE,
        flag=Flag(
            "XLA: auto compiles the image sizes that enough files (by their headers) share, true every size, "
            "false none (default {default})",
            words={"auto": "auto", "true": True, "false": False},
        ),
    )
}

# The random ways in (`tf_histeq.layers.RandomCLAHE` and `RandomEqualization`,
# `tf_histeq.data.random_map_fn`): the ops they draw, and their own keywords, after
# the op's (the default of `factor` is `RANDOM_FACTOR[op]`); `RANDOM_CLIP_LIMIT`
# replaces the default `clip_limit`.
RANDOM_OPS = tuple(op for op in OP_NAMES if op in RANDOM_FACTOR)
RANDOM_KEYWORDS = ("factor", "seed")


def _reference():
    """`tf_histeq._reference`, which builds on this module (so it is imported on first use)."""
    from tf_histeq import _reference

    return _reference


def _adapthist_options():
    """`tf_histeq._adapthist_options` (NumPy, no TensorFlow), which builds on this module."""
    from tf_histeq import _adapthist_options

    return _adapthist_options


def check_option(op: str, name: str, value: Any) -> Any:
    """Validate and normalize one keyword argument of `op` (`mask` passes through)."""
    keyword = KEYWORDS[name]
    choices = keyword.choices_for(op)
    if choices is not None:
        return check_choice(value, name=name, choices=choices)
    return value if keyword.check is None else keyword.check(op, value)


def arguments(op: str, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords of `op` found in `namespace`, in signature order (not those of `WAY_IN_KEYWORDS`).

    A layer's `__init__` passes its `locals()`, so its body need not spell out
    the keywords that its signature lists.
    """
    return {name: namespace[name] for name in OP_KEYWORDS[op] if name in namespace}


def resolve(op: Any, kwargs: Mapping[str, Any], *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Return every keyword argument of `op` but `mask` and `exclude`, validated, defaults filled in.

    Shared by the layers, `tf_histeq.data.map_fn`, the NumPy API and the command
    line: every check that needs no image runs here, eagerly, with the
    functions' own messages. A `mask` in `kwargs` is kept as it is.

    Args:
        op: The op's name, one of `OP_NAMES`.
        kwargs: Keyword arguments for the function.
        exclude: Keyword arguments of the function that the caller does not accept.

    Returns:
        The options with tuples for pairs and a float `clip_limit`, so equal
        configurations compare equal, and arrays (`reference`,
        `reference_mask`) as read-only copies hashed by identity, so the
        options can key a cache.

    Raises:
        TypeError: If a keyword is not one of the function's, or has the wrong type.
        ValueError: If `op` is unknown or an argument has a bad value.
    """
    op = check_choice(op, name="op", choices=OP_NAMES)
    accepted = [name for name in OP_DEFAULTS[op] if name not in exclude]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        fail(TypeError, "kwargs", f"be keyword arguments of tf_histeq.{op} ({', '.join(accepted)})", unknown)
    checked = {name: OP_DEFAULTS[op][name] for name in accepted if name != "mask"}
    checked.update(kwargs)
    return {name: check_option(op, name, value) for name, value in checked.items()}
