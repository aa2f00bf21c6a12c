"""The `tf-histeq` command line (also `python -m tf_histeq`).

Commands:

* `tf-histeq demo [-o DIR]`: equalize the built-in samples (`tf_histeq.samples`)
  and write the images, comparison figures and a table of statistics.
* `tf-histeq equalize|clahe INPUT... -o OUTDIR [options]`: equalize image files
  and folders in a `tf.data` pipeline (parallel read, decode, equalize, encode).
  The options are the keyword names of `tf_histeq.equalize_hist` and
  `tf_histeq.clahe` with dashes.
* `tf-histeq bench ...`: the benchmark, `tf_histeq.bench.main`.

Nothing is lost or overwritten: inputs are never written to, existing outputs
are kept unless `--overwrite` (so a rerun skips finished files and an
interrupted run resumes), every file is written under a temporary name in its
folder and renamed when complete, and a file that cannot be read or decoded is
reported with its path and the reason while the others go on. The same holds
for a file deleted or replaced mid-run, and for an output that cannot be
written (a full disk): the temporary file is removed and the input is reported.
A first Ctrl-C (SIGINT) stops the run after the file in hand, a second one at
once; either way no partial file is left, and the same command again does the
rest. Exit status: 0 when every input succeeded, 1 when any failed, 2 for a
usage error (`tf-histeq: error: ...`), 130 when interrupted.

`--data-service grpc://HOST:PORT` hands the read → decode → equalize → encode
map to the workers of a running `tf.data` service (TensorFlow's own
`tf.data.experimental.service.DispatchServer` and `WorkerServer`; the workers
need TensorFlow only, not tf_histeq). Each file goes to one worker
(`processing_mode="distributed_epoch"`), results come back in any order with
their index, and everything else stays here: planning, the no-clobber rules,
writing, figures and the report. The workers read the inputs by absolute path,
so they must see the same files at the same paths (a shared file system). A file
that fails or goes missing on the service is redone here, which gives the same
outputs, and the same error message for a bad file, as a local run.

The demo records what it wrote (names and SHA-256) in `DIR/.tf_histeq_demo.json`;
a rerun into the same folder replaces only those files, and only if they are
unchanged since. Any other existing file of the same name stops it (exit 2)
before anything is written.

TensorFlow is imported only once a command needs it, so `tf-histeq --help`
returns at once.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import hashlib
import importlib
import io
import json
import math
import os
import queue
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time

from tf_histeq import __version__, _options

PROG = "tf-histeq"
PLOT_HINT = 'pip install "tf_histeq[plot]"'
DEMO_DIR = "tf_histeq_demo"
DEMO_MANIFEST = ".tf_histeq_demo.json"
DEFAULT_JPEG_QUALITY = 95

# Mirrors of the choices in tf_histeq.ops (kept here so that --help needs no TensorFlow;
# tests/test_cli.py checks that they agree).
METHODS = ("opencv", "pil")
CHANNELS = ("per_channel", "luminance", "joint")
CLAHE_CHANNELS = ("per_channel", "luminance")

# Input formats by signature, the extensions searched in folders, and output encodings.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)
_EXTENSIONS = {"png": (".png",), "jpeg": (".jpg", ".jpeg", ".jpe"), "bmp": (".bmp",), "gif": (".gif",)}
IMAGE_EXTENSIONS = tuple(ext for exts in _EXTENSIONS.values() for ext in exts)
OUTPUT_FORMATS = ("png", "jpeg", "bmp")
_FORMAT_CODE = {"png": 0, "jpeg": 1, "bmp": 2}
_CANONICAL_EXT = {"png": ".png", "jpeg": ".jpg", "bmp": ".bmp"}


# --------------------------------------------------------------------------- parsing


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors, in subcommands too, read `tf-histeq: error: ...`."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{PROG}: error: {message}\n")


def _add_io_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and folders (PNG, JPEG, BMP, GIF)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if missing)")
    parser.add_argument("-r", "--recursive", action="store_true", help="also search the subfolders of INPUT folders")
    parser.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        help="write every image in this format (default: the input's; GIF is written as PNG)",
    )
    parser.add_argument(
        "--jpeg-quality",
        type=int,
        default=DEFAULT_JPEG_QUALITY,
        metavar="Q",
        help=f"quality of JPEG outputs, 0..100 (default {DEFAULT_JPEG_QUALITY})",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    parser.add_argument(
        "--compare", action="store_true", help="also write OUTPUT.compare.png: before/after with histograms"
    )
    parser.add_argument(
        "--data-service",
        metavar="grpc://HOST:PORT",
        help="run read/decode/equalize/encode on the workers of the tf.data service with this dispatcher; "
        "they read the inputs by absolute path (a shared file system), and outputs are written here",
    )


def _add_range_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--value-range",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        help="pixel value range (default: the dtype's, 0 255 for 8-bit and 0 65535 for 16-bit images)",
    )
    parser.add_argument("--bins", type=int, metavar="N", help="histogram bins (default: one per level, 256 or 65536)")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Histogram equalization and CLAHE in TensorFlow ops, bit-exact with OpenCV and Pillow.",
        epilog="Start with `tf-histeq demo`. Exit status: 0 all inputs done, 1 some failed, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="equalize the built-in sample images; write images, figures and a table",
        description="Equalize the built-in samples (a chest-X-ray-like phantom in 8 and 12 bits, a hazy colour "
        "scene) and write the original, equalize_hist, clahe and masked variants, comparison figures and a "
        "table of statistics. A rerun into the same folder replaces only the files a previous demo wrote "
        "there and that are unchanged since; any other existing file is left alone.",
    )
    demo.add_argument("-o", "--output", default=DEMO_DIR, metavar="DIR", help=f"output folder (default ./{DEMO_DIR})")
    demo.set_defaults(parser=demo)

    equalize = sub.add_parser(
        "equalize",
        aliases=["equalize_hist"],
        help="global histogram equalization (tf_histeq.equalize_hist) of image files",
        description="Equalize the histogram of each image (per image and channel), as tf_histeq.equalize_hist.",
    )
    _add_io_arguments(equalize)
    _add_range_arguments(equalize)
    equalize.add_argument("--method", default="opencv", choices=METHODS, help="LUT formula (default opencv)")
    equalize.add_argument("--channels", default="per_channel", choices=CHANNELS, help="default per_channel")
    equalize.set_defaults(op="equalize_hist", parser=equalize)

    clahe = sub.add_parser(
        "clahe",
        help="contrast limited adaptive histogram equalization (tf_histeq.clahe) of image files",
        description="CLAHE of each image (per image and channel), as tf_histeq.clahe.",
    )
    _add_io_arguments(clahe)
    clahe.add_argument(
        "--clip-limit", type=float, default=2.0, metavar="C", help="OpenCV units; <= 0 disables clipping (default 2)"
    )
    clahe.add_argument(
        "--tile-grid-size",
        nargs=2,
        type=int,
        default=(8, 8),
        metavar=("ROWS", "COLS"),
        help="tiles as rows cols (default 8 8; OpenCV's tileGridSize is cols, rows)",
    )
    _add_range_arguments(clahe)
    clahe.add_argument("--channels", default="per_channel", choices=CLAHE_CHANNELS, help="default per_channel")
    clahe.set_defaults(op="clahe", parser=clahe)

    bench = sub.add_parser(
        "bench",
        help="throughput against OpenCV, Pillow, scikit-image and Keras (tf_histeq.bench)",
        description="Run the benchmark; every argument is passed on to tf_histeq.bench.",
    )
    bench.add_argument("--quick", action="store_true", help="tiny workloads, one timed run")
    bench.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="default cpu")
    bench.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    return parser


def main(argv=None) -> int:
    """Run the `tf-histeq` command line.

    Args:
        argv: The arguments without the program name; `None` reads `sys.argv[1:]`.

    Returns:
        The exit status: 0 when every input succeeded, 1 when any input failed,
        2 for a usage error (reported as `tf-histeq: error: ...` on stderr),
        130 when interrupted.

    Example:
        >>> from tf_histeq.cli import main
        >>> main(["--version"])
        tf-histeq 0.1.0
        0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        return _bench(argv[1:])
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "demo":
            return _demo(args.parser, args)
        return _equalize_files(args.parser, args)
    except SystemExit as exit_:  # argparse and _usage_error; --help and --version exit 0
        return _exit_code(exit_)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; finished files are kept, and a rerun skips them", file=sys.stderr)
        return 130


def _usage_error(parser: argparse.ArgumentParser, message: str):
    parser.error(message)  # prints `tf-histeq: error: ...` and raises SystemExit(2)


def _bench(argv: list[str]) -> int:
    """Forward `tf-histeq bench ARGS` to `tf_histeq.bench.main(ARGS)`, imported only now."""
    try:
        bench = importlib.import_module("tf_histeq.bench")
    except ModuleNotFoundError as err:
        if err.name != "tf_histeq.bench":
            raise
        parser = _build_parser()
        try:
            parser.parse_args(["bench", *argv])  # --help and bad arguments are answered as usual
            _usage_error(parser, "bench: the benchmark module tf_histeq.bench is not installed")
        except SystemExit as exit_:
            return _exit_code(exit_)
    return bench.main(argv)


def _exit_code(exit_: SystemExit) -> int:
    if exit_.code is None:
        return 0
    return exit_.code if isinstance(exit_.code, int) else 2


# --------------------------------------------------------------------------- shared helpers


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


def _import_tensorflow():
    if "tensorflow" not in sys.modules:
        with _quiet_native_stderr():
            import tensorflow  # noqa: F401, PLC0415
    return sys.modules["tensorflow"]


def _write_atomic(path: str, data: bytes, *, overwrite: bool) -> bool:
    """Write `data` to `path` via a temporary file in the same folder and `os.replace`.

    Returns False (and writes nothing) if `path` exists and `overwrite` is False.
    The temporary file is removed if anything, Ctrl-C included, interrupts the write.
    """
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        if not overwrite and os.path.lexists(path):
            os.unlink(tmp)
            return False
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


def _encode_bmp(pixels) -> bytes:
    """Uncompressed BMP of a uint8 `(H, W, C)` array, C in 1 (8-bit gray palette), 3 (24-bit) or 4 (32-bit BGRA)."""
    import numpy as np  # noqa: PLC0415

    h, w, c = pixels.shape
    if c == 1:
        rows = pixels[..., 0]
        palette = bytes(b for i in range(256) for b in (i, i, i, 0))
    elif c == 3:
        rows = pixels[..., ::-1].reshape(h, w * 3)
        palette = b""
    else:
        rows = pixels[..., [2, 1, 0, 3]].reshape(h, w * 4)
        palette = b""
    rows = np.ascontiguousarray(rows[::-1])  # bottom-up
    pad = (-rows.shape[1]) % 4
    if pad:
        rows = np.pad(rows, ((0, 0), (0, pad)))
    data = rows.tobytes()
    if c == 4:  # BITMAPV4HEADER with an alpha mask, so readers keep the alpha channel
        info = struct.pack("<IiiHHIIiiII", 108, w, h, 1, 32, 3, len(data), 2835, 2835, 0, 0)
        info += struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000) + b"BGRs" + bytes(48)
    else:
        info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 8 * c, 0, len(data), 2835, 2835, 256 if c == 1 else 0, 0)
    offset = 14 + len(info) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + palette + data


def _figure_png(images, titles, value_range) -> bytes:
    from tf_histeq import plot  # noqa: PLC0415

    fig = plot.compare(images, titles, value_range=value_range)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _plot_available() -> bool:
    try:
        import tf_histeq.plot  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _inside(path: str, folder: str) -> bool:
    """True if `path` is `folder` or lies inside it (both already resolved)."""
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives
        return False


# --------------------------------------------------------------------------- equalize / clahe


@dataclasses.dataclass
class _Job:
    """One input file and what becomes of it."""

    source: str
    output: str = ""
    figure: str | None = None
    fmt: str = ""  # input format
    out_fmt: str = ""
    is16: bool = False
    channels: tuple[int, ...] = (1, 2, 3, 4)  # what the decoder may return
    error: str | None = None
    skip: bool = False


def _op_kwargs(parser, args) -> dict:
    """Validate the op's options with the library validators, before any work starts."""
    try:
        kwargs = {
            "value_range": _options.check_value_range(None if args.value_range is None else tuple(args.value_range)),
            "bins": _options.check_bins(args.bins),
        }
        if args.op == "clahe":
            kwargs["clip_limit"] = _options.check_clip_limit(args.clip_limit)
            kwargs["tile_grid_size"] = _options.check_grid(tuple(args.tile_grid_size))
            kwargs["channels"] = _options.check_choice(args.channels, name="channels", choices=CLAHE_CHANNELS)
        else:
            kwargs["method"] = _options.check_choice(args.method, name="method", choices=METHODS)
            kwargs["channels"] = _options.check_choice(args.channels, name="channels", choices=CHANNELS)
        if not 0 <= args.jpeg_quality <= 100:
            _options.fail(ValueError, "jpeg_quality", "be an int in [0, 100]", args.jpeg_quality)
    except (TypeError, ValueError) as err:
        _usage_error(parser, str(err))
    return kwargs


def _collect(parser, inputs: list[str], recursive: bool, output: str) -> list[tuple[str, str]]:
    """Return `(source, relative output path)` pairs; refuse outputs that could touch an input."""
    out_real = os.path.realpath(output)
    if os.path.exists(output) and not os.path.isdir(output):
        _usage_error(parser, f"the output {output!r} exists and is not a folder")
    pairs, seen = [], set()
    for item in inputs:
        if not os.path.exists(item):
            _usage_error(parser, f"input {item!r} does not exist")
        real = os.path.realpath(item)
        if os.path.isdir(item) and _inside(out_real, real):
            _usage_error(
                parser,
                f"the output folder {output!r} is the input folder {item!r} or inside it; "
                "choose an output folder outside every input",
            )
        if _inside(real, out_real):
            _usage_error(parser, f"input {item!r} is inside the output folder {output!r}; choose another -o")
        if os.path.isdir(item):
            found = []
            for root, dirs, files in os.walk(item):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
                for name in files:
                    if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                        path = os.path.join(root, name)
                        found.append((path, os.path.relpath(path, item)))
            if not found:
                more = "" if recursive else " (add --recursive to search its subfolders)"
                _usage_error(parser, f"no PNG, JPEG, BMP or GIF files in {item!r}{more}")
            candidates = sorted(found, key=lambda pair: pair[1])
        else:
            candidates = [(item, os.path.basename(item))]
        for path, rel in candidates:
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                pairs.append((path, rel))
    return pairs


# Channel counts a decoder may return, by format; PNG and BMP headers narrow them down.
_PNG_CHANNELS = {0: (1,), 2: (3,), 3: (3, 4), 4: (2,), 6: (4,)}  # by colour type
_BMP_CHANNELS = {8: (1,), 24: (3,), 32: (4,)}  # by bits per pixel
_OTHER_CHANNELS = {"jpeg": (1, 3), "gif": (3,)}


def _sniff(path: str) -> tuple[str, bool, tuple[int, ...]]:
    """Return `(format, is_16_bit, possible channel counts)` from the file's first bytes.

    Raises:
        ValueError: With the reason, if the file cannot be read or is not a
            PNG, JPEG, BMP or GIF image.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(2048)  # enough for a BMP's header and palette
    except OSError as err:
        raise ValueError(f"cannot read the file ({err.strerror or err})") from None
    if not head:
        raise ValueError("the file is empty")
    fmt = next((name for signature, name in _SIGNATURES if head.startswith(signature)), None)
    if fmt is None:
        raise ValueError("not a PNG, JPEG, BMP or GIF image (unknown file signature)")
    if fmt == "png":
        if len(head) < 26 or head[12:16] != b"IHDR":
            raise ValueError("not a valid PNG image (no IHDR header)")
        return fmt, head[24] == 16, _PNG_CHANNELS.get(head[25], (1, 2, 3, 4))
    if fmt == "bmp":
        _check_bmp(head)
        return fmt, False, _BMP_CHANNELS[struct.unpack("<H", head[28:30])[0]]
    return fmt, False, _OTHER_CHANNELS[fmt]


def _check_bmp(head: bytes) -> None:
    """Refuse the BMP variants that TensorFlow's decoder gets wrong or rejects.

    It reads 8-bit BMPs as gray levels and ignores their palette, so only an
    8-bit BMP with the identity gray palette decodes to the right pixels.
    """
    if len(head) < 54:
        raise ValueError("not a valid BMP image (header too short)")
    header_size, _, _, _, bits, compression = struct.unpack("<IiiHHI", head[14:34])
    if bits not in _BMP_CHANNELS or compression not in (0, 3):
        raise ValueError(
            f"a {bits}-bit BMP with compression {compression} is not supported "
            "(TensorFlow decodes uncompressed 8-, 24- and 32-bit BMP); convert it to PNG"
        )
    if bits == 8:
        used = struct.unpack("<I", head[46:50])[0] or 256
        palette = head[14 + header_size : 14 + header_size + 4 * used]
        gray = bytes(b for i in range(used) for b in (i, i, i))
        if len(palette) < 4 * used or bytes(b for k, b in enumerate(palette) if k % 4 != 3) != gray:
            raise ValueError(
                "an 8-bit BMP with a colour palette is not supported (TensorFlow's decoder ignores the "
                "palette); convert it to PNG"
            )


def _plan(jobs: list[_Job], rels: list[str], args, compare: bool) -> None:
    """Fill in formats and output paths; mark failures known before decoding and finished jobs."""
    claimed: dict[str, str] = {}
    for job, rel in zip(jobs, rels, strict=True):
        try:
            job.fmt, job.is16, job.channels = _sniff(job.source)
        except ValueError as err:
            job.error = str(err)
            continue
        job.out_fmt = args.format or ("png" if job.fmt == "gif" else job.fmt)
        stem, ext = os.path.splitext(rel)
        if ext.lower() not in _EXTENSIONS[job.out_fmt]:
            ext = _CANONICAL_EXT[job.out_fmt]
        job.output = os.path.join(args.output, stem + ext)
        job.figure = job.output + ".compare.png" if compare else None
        if job.is16 and job.out_fmt != "png":
            name = "JPEG" if job.out_fmt == "jpeg" else "BMP"
            job.error = f"a 16-bit image cannot be written as {name} (8-bit only); use --format png"
            continue
        targets = [job.output] + ([job.figure] if job.figure else [])
        clash = next((t for t in targets if t in claimed), None)
        if clash is not None:
            job.error = f"its output {clash!r} would also be written for {claimed[clash]!r}; process them separately"
            continue
        for target in targets:
            claimed[target] = job.source
        if not args.overwrite and all(os.path.lexists(t) for t in targets):
            job.skip = True


class _Progress:
    """A one-line progress bar on a terminal: count, rate, MP/s and time left.

    It draws only when the stream is a terminal (redrawn in place at most 10
    times a second); otherwise it prints nothing, and only the final summary
    and the per-file errors appear, so logs stay clean.
    """

    def __init__(self, total: int, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = total > 0 and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total = total
        self.done = 0
        self.pixels = 0
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._width = 0

    def advance(self, pixels: int = 0) -> None:
        self.done += 1
        self.pixels += pixels
        now = time.perf_counter()
        if self.enabled and (now - self._last_draw >= 0.1 or self.done == self.total):
            self._last_draw = now
            self._draw(self.line())

    def line(self) -> str:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = "--:--" if math.isinf(left) else _clock(left)
        percent = 100 * self.done // max(self.total, 1)
        return (
            f"{PROG}: {self.done}/{self.total} images {percent:3d}% | {rate:.1f} img/s | "
            f"{self.pixels / 1e6 / elapsed:.1f} MP/s | {eta} left"
        )

    def message(self, text: str) -> None:
        """Print a line (e.g. an error) above the bar."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
        self.stream.write(text + "\n")
        if self.enabled and self.done:
            self._draw(self.line())
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0

    def _draw(self, text: str) -> None:
        pad = " " * max(self._width - len(text), 0)
        self.stream.write("\r" + text + pad)
        self.stream.flush()
        self._width = len(text)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _reason(err: Exception, path: str | None = None) -> str:
    """The useful part of a TensorFlow error raised for one element of the pipeline.

    `tf.io.read_file` reports `PATH; REASON` (a file deleted or replaced by a
    folder after it was listed); with the element's `path` that reads
    `cannot read the file (REASON)`, as for files that fail before the pipeline.
    """
    text = getattr(err, "message", None) or str(err)
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    match = re.search(r"Iterator::[\w:]+: (.*)", text)
    if match:
        text = match.group(1)
    text = text.split("\n")[0].strip()
    text = re.sub(r"\s*\[Op:\w+\].*$", "", text)
    if path is not None and text.startswith(f"{path}; "):
        text = f"cannot read the file ({text[len(path) + 2 :]})"
    return text or type(err).__name__


def _build_pipeline(tf, jobs: list[_Job], op, kwargs: dict, jpeg_quality: int, service: str | None = None):
    """`tf.data` pipeline: read → decode → equalize → encode, in parallel and in order.

    Each element is `(index, encoded, error, pixels)`. Errors known while tracing
    (an option that does not fit the image, e.g. `channels="luminance"` on a gray
    image, or JPEG output of an image with alpha) come back as the `error` string
    of that element; a file that fails to decode raises for its element only, and
    the iterator goes on with the next one (see `_results`).

    With `service` (a dispatcher address), the map runs on the tf.data service's
    workers: each file on one of them (`"distributed_epoch"`, dynamic sharding of
    the file list), read by its absolute path. Elements come back in any order,
    and one that fails on a worker is dropped there (`ignore_errors`), so that
    one bad file does not end the job; `_service_results` redoes the missing ones
    here.
    """
    # Trace the op only for the (bit depth, channels) pairs the headers allow: each costs a trace.
    expected = {(job.is16, c) for job in jobs for c in job.channels}

    def failure(message: str):
        return tf.constant(b""), tf.constant(message)

    def encoders(out, channels: int, dtype):
        def png():
            return tf.io.encode_png(out), tf.constant("")

        def jpeg():
            if dtype != tf.uint8:
                return failure("JPEG holds 8-bit images only; use --format png")
            if channels not in (1, 3):
                return failure("JPEG has no alpha channel; use --format png")
            return tf.io.encode_jpeg(out, quality=jpeg_quality), tf.constant("")

        def bmp():  # raw pixels; the BMP file is assembled in Python (TensorFlow has no BMP encoder)
            if dtype != tf.uint8:
                return failure("BMP holds 8-bit images only; use --format png")
            if channels == 2:
                return failure("BMP cannot store gray + alpha; use --format png")
            return tf.io.serialize_tensor(out), tf.constant("")

        return [png, jpeg, bmp]

    def per_channels(image, fmt, dtype):
        def branch(channels: int):
            def run():
                if (dtype == tf.uint16, channels) not in expected:
                    return failure(f"decoded to {channels} channels, which its file header did not announce")
                fixed = tf.ensure_shape(image, [None, None, channels])
                try:
                    out = op(fixed, **kwargs)
                except (TypeError, ValueError) as err:  # raised while tracing: this kind of image cannot be done
                    return failure(str(err))
                return tf.switch_case(fmt, encoders(out, channels, dtype))

            return run

        channels = tf.shape(image)[-1]
        return tf.switch_case(channels - 1, [branch(c) for c in (1, 2, 3, 4)])

    def process(index, path, is16, fmt):
        data = tf.io.read_file(path)

        def decode8():
            image = tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)
            return per_channels(image, fmt, tf.uint8), tf.cast(tf.reduce_prod(tf.shape(image)[:2]), tf.int64)

        def decode16():
            image = tf.io.decode_png(data, channels=0, dtype=tf.uint16)
            return per_channels(image, fmt, tf.uint16), tf.cast(tf.reduce_prod(tf.shape(image)[:2]), tf.int64)

        (encoded, error), pixels = tf.cond(is16, decode16, decode8)
        return index, encoded, error, pixels

    dataset = tf.data.Dataset.from_tensor_slices(
        (
            tf.range(len(jobs), dtype=tf.int32),
            tf.constant([os.path.abspath(job.source) if service else job.source for job in jobs]),
            tf.constant([job.is16 for job in jobs]),
            tf.constant([_FORMAT_CODE[job.out_fmt] for job in jobs], tf.int32),
        )
    )
    # Plain Python control flow only: AutoGraph has nothing to convert, and skipping it saves seconds.
    process = tf.autograph.experimental.do_not_convert(process)
    dataset = dataset.map(process, num_parallel_calls=tf.data.AUTOTUNE, deterministic=service is None)
    if service:
        dataset = dataset.ignore_errors()
        dataset = dataset.apply(tf.data.experimental.service.distribute("distributed_epoch", service))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _results(tf, dataset, count: int, paths: list[str] | None = None):
    """Yield `(index, encoded, error, pixels)` for every element, errors included, in order.

    A decode error surfaces as an exception from the iterator for that element
    only; deterministic order says which element it was, and iteration goes on.
    `paths` (the elements' files) turn read errors into `cannot read the file (...)`.
    """
    iterator = iter(dataset)
    expected = 0
    while expected < count:
        try:
            index, encoded, error, pixels = next(iterator)
        except StopIteration:
            break
        except tf.errors.OpError as err:
            yield expected, None, _reason(err, paths[expected] if paths else None), 0
            expected += 1
            continue
        index = int(index)
        while expected < index:  # never seen in practice: an element lost without an error
            yield expected, None, "no result from the pipeline", 0
            expected += 1
        message = error.numpy().decode("utf-8", "replace")
        yield index, encoded.numpy(), message or None, int(pixels)
        expected = index + 1
    while expected < count:
        yield expected, None, "no result from the pipeline", 0
        expected += 1


SERVICE_WAIT_NOTE_S = 30.0  # say so when the tf.data service has given nothing for this long


@dataclasses.dataclass
class _ServiceStats:
    done_there: int = 0  # results that came from the service's workers
    redone_here: int = 0  # files that did not come back and succeeded here
    failure: str | None = None  # why the service stopped answering, if it did


class _Interrupt:
    """SIGINT (Ctrl-C) while files are processed: the first one stops the run after the file in hand.

    The handler only records the request (the loop stops at the next file
    boundary, so no write is cut short, and no exception is raised inside
    TensorFlow's code, where one can get lost); a second SIGINT raises
    `KeyboardInterrupt` at once. Installed only in the main thread and over
    Python's default handler, so an embedding program's own handler is kept.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        with contextlib.suppress(OSError):  # not print(): the handler may run in the middle of another write
            os.write(2, f"\n{PROG}: stopping after the file in hand (Ctrl-C again stops at once)\n".encode())

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt


_END = object()


def _service_results(
    tf, jobs: list[_Job], op, kwargs: dict, jpeg_quality: int, service: str, stats: _ServiceStats, interrupt: _Interrupt
):
    """Yield `(index, encoded, error, pixels)` for every job: first from the tf.data service, in any order.

    A thread reads the service's results (its `GetNext` may block for as long
    as the dispatcher has no worker, and would not let Ctrl-C through); this
    generator waits for them in short steps, so SIGINT stops it at once.
    Files that the service did not return (a file that failed to decode, or one
    its workers could not read, or work lost with a worker) are then run through
    the local pipeline, which gives their outputs or the local run's error message.
    """
    dataset = _build_pipeline(tf, jobs, op, kwargs, jpeg_quality, service=service)
    results: queue.Queue = queue.Queue(maxsize=16)
    stop = threading.Event()

    def put(item) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                results.put(item, timeout=0.1)
                return

    def read() -> None:
        try:
            for index, encoded, error, pixels in dataset:
                put((int(index), encoded.numpy(), error.numpy().decode("utf-8", "replace") or None, int(pixels)))
                if stop.is_set():
                    return
        except tf.errors.OpError as err:
            stats.failure = _reason(err)
        except Exception as err:  # noqa: BLE001 (reported, and the files are done here)
            stats.failure = f"{type(err).__name__}: {err}"
        put(_END)

    reader = threading.Thread(target=read, name="tf-histeq-data-service", daemon=True)
    reader.start()
    done: set[int] = set()
    started, noted = time.monotonic(), False
    try:
        while True:
            interrupt.check()
            try:
                item = results.get(timeout=0.1)
            except queue.Empty:
                if not done and not noted and time.monotonic() - started >= SERVICE_WAIT_NOTE_S:
                    noted = True
                    print(
                        f"{PROG}: note: nothing from the tf.data service at {service} after "
                        f"{SERVICE_WAIT_NOTE_S:g} s; waiting for a worker to register with its dispatcher "
                        "(Ctrl-C stops)",
                        file=sys.stderr,
                        flush=True,
                    )
                continue
            if item is _END:
                break
            index = item[0]
            if index in done or not 0 <= index < len(jobs):  # at most once, but do not trust it blindly
                continue
            done.add(index)
            stats.done_there += 1
            yield item
    finally:
        stop.set()
    missing = [i for i in range(len(jobs)) if i not in done]
    if missing:
        here = [jobs[i] for i in missing]
        local = _build_pipeline(tf, here, op, kwargs, jpeg_quality)
        for k, encoded, error, pixels in _results(tf, local, len(here), [job.source for job in here]):
            if error is None:
                stats.redone_here += 1
            yield missing[k], encoded, error, pixels


def _service_address(parser, url: str | None) -> tuple[str, int] | None:
    """Check `--data-service grpc://HOST:PORT`; return `(host, port)`, or None without the option."""
    if url is None:
        return None
    match = re.fullmatch(r"grpc://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})", url)
    if not match or not 0 < int(match.group(2)) < 65536:
        _usage_error(
            parser, f"--data-service must be grpc://HOST:PORT, the address of a tf.data dispatcher; got {url!r}"
        )
    return match.group(1).strip("[]"), int(match.group(2))


def _check_reachable(parser, url: str, address: tuple[str, int]) -> None:
    """Refuse a dispatcher address that nothing listens on (tf.data would retry for ever)."""
    try:
        socket.create_connection(address, timeout=5).close()
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        _usage_error(
            parser,
            f"cannot reach the tf.data service dispatcher at {url} ({reason}); start one, or leave out --data-service",
        )


def _decode_for_figure(tf, data: bytes, is16: bool):
    if is16:
        return tf.io.decode_png(data, channels=0, dtype=tf.uint16).numpy()
    return tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False).numpy()


def _equalize_files(parser, args) -> int:
    kwargs = _op_kwargs(parser, args)
    service = _service_address(parser, args.data_service)
    if service:
        _check_reachable(parser, args.data_service, service)
    pairs = _collect(parser, args.inputs, args.recursive, args.output)
    compare = args.compare
    if compare and not _plot_available():
        print(f"{PROG}: note: --compare needs matplotlib ({PLOT_HINT}); writing images only", file=sys.stderr)
        compare = False
    jobs = [_Job(source=path) for path, _ in pairs]
    _plan(jobs, [rel for _, rel in pairs], args, compare)
    todo = [job for job in jobs if job.error is None and not job.skip]
    failed = [job for job in jobs if job.error is not None]
    skipped = [job for job in jobs if job.skip]
    for job in failed:
        print(f"{PROG}: {job.source}: {job.error}", file=sys.stderr)

    processed, pixels, start = 0, 0, time.perf_counter()
    stats = _ServiceStats()
    full_disk = handled = 0
    interrupted = False
    if todo:
        tf = _import_tensorflow()
        from tf_histeq import _convert, ops  # noqa: PLC0415

        op = ops.clahe if args.op == "clahe" else ops.equalize_hist
        for dtype in sorted({tf.uint16 if job.is16 else tf.uint8 for job in todo}, key=str):
            try:  # options that do not fit the inputs' bit depth, e.g. --value-range 0 4095 for 8-bit images
                _convert.level_spec(dtype, kwargs["value_range"], kwargs["bins"])
            except (TypeError, ValueError) as err:
                _usage_error(parser, f"{err} (for the {dtype.name} inputs)")
        os.makedirs(args.output, exist_ok=True)
        start = time.perf_counter()
        progress = _Progress(len(todo))
        results = None
        with _Interrupt() as interrupt:
            try:
                if service:
                    results = _service_results(
                        tf, todo, op, kwargs, args.jpeg_quality, args.data_service, stats, interrupt
                    )
                else:
                    dataset = _build_pipeline(tf, todo, op, kwargs, args.jpeg_quality)
                    results = _results(tf, dataset, len(todo), [job.source for job in todo])
                for index, encoded, error, count in results:
                    job = todo[index]
                    if error is None:
                        try:
                            _write_outputs(tf, job, encoded, args, kwargs)
                        except _SourceError as err:
                            error = str(err)
                        except OSError as err:
                            error = f"cannot write the output ({err.strerror or err})"
                            full_disk += err.errno in _FULL_DISK
                    if error is None:
                        processed += 1
                        pixels += count
                    else:
                        job.error = error
                        failed.append(job)
                        progress.message(f"{PROG}: {job.source}: {error}")
                    progress.advance(count)
                    handled += 1
                    interrupt.check()  # after a first Ctrl-C: stop here, between two files
            except KeyboardInterrupt:
                interrupted = True
            finally:
                if results is not None:
                    results.close()  # ends the service reader too
                progress.close()

    elapsed = time.perf_counter() - start
    rate = pixels / 1e6 / elapsed if elapsed > 0 and pixels else 0.0
    if interrupted:
        left = len(todo) - handled
        print(
            f"\n{PROG} {args.op}: interrupted: {processed} processed, {len(failed)} failed, {left} not done "
            f"in {elapsed:.1f} s; finished files are complete and kept, no partial file is left, and the same "
            "command again does the rest",
            file=sys.stderr,
        )
        return 130
    summary = (
        f"{PROG} {args.op}: {processed} processed, {len(skipped)} skipped (output exists), "
        f"{len(failed)} failed in {elapsed:.1f} s ({rate:.3g} MP/s); outputs in {args.output}"
    )
    if service and todo:
        summary += f"; {stats.done_there} done on the tf.data service at {args.data_service}"
    print(summary)
    if stats.failure:
        print(f"{PROG}: note: the tf.data service stopped answering ({stats.failure})", file=sys.stderr)
    if stats.redone_here:
        print(
            f"{PROG}: note: {stats.redone_here} file(s) did not come back from the tf.data service and were done "
            "here; can its workers read the inputs at the same absolute paths?",
            file=sys.stderr,
        )
    if full_disk:
        print(
            f"{PROG}: the output disk is full: {full_disk} output(s) not written (no partial file is left); "
            "free some space and run the same command again, which skips the finished files",
            file=sys.stderr,
        )
    if skipped and not args.overwrite:
        print(f"{PROG}: existing outputs were kept; pass --overwrite to replace them", file=sys.stderr)
    return 0 if not failed else 1


class _SourceError(Exception):
    """The input could not be read again (for its --compare figure); the message is the reason."""


_FULL_DISK = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _write_outputs(tf, job: _Job, encoded: bytes, args, kwargs: dict) -> None:
    if job.out_fmt == "bmp":
        pixels = tf.io.parse_tensor(encoded, tf.uint8).numpy()
        encoded = _encode_bmp(pixels)
    else:
        pixels = None
    _write_atomic(job.output, encoded, overwrite=args.overwrite)
    if job.figure:
        try:
            with open(job.source, "rb") as f:
                data = f.read()
        except OSError as err:
            raise _SourceError(f"cannot read the file again for its --compare figure ({err.strerror or err})") from None
        try:
            before = _decode_for_figure(tf, data, job.is16)
        except tf.errors.OpError as err:  # replaced by something else since the pipeline read it
            raise _SourceError(f"the file changed during the run ({_reason(err)})") from None
        after = pixels if pixels is not None else _decode_for_figure(tf, encoded, job.is16)
        label = "equalize_hist" if args.op == "equalize_hist" else "clahe"
        figure = _figure_png([before, after], [os.path.basename(job.source), label], kwargs["value_range"])
        _write_atomic(job.figure, figure, overwrite=args.overwrite)


# --------------------------------------------------------------------------- demo


@dataclasses.dataclass
class _Variant:
    sample: str
    name: str
    image: object  # numpy array
    value_range: tuple[int, int]
    region: object = None  # bool (H, W) array: where the statistics are taken; None for all pixels


def _stats(image, value_range: tuple[int, int], region=None) -> dict[str, float]:
    """Mean, standard deviation, Shannon entropy (bits per pixel) and RMS contrast of integer levels.

    `region`, a bool `(H, W)` array, restricts them to its pixels (all channels).
    """
    import numpy as np  # noqa: PLC0415

    low, high = value_range
    values = image.astype(np.int64)
    values = (values[region] if region is not None else values).ravel()
    counts = np.bincount(np.clip(values, low, high) - low, minlength=high - low + 1)
    p = counts[counts > 0] / values.size
    std = float(values.std())
    return {
        "mean": float(values.mean()),
        "std": std,
        "entropy": float(-(p * np.log2(p)).sum()),
        "rms_contrast": std / (high - low),  # std of the intensities scaled to [0, 1]
    }


DEMO_CLIP_LIMIT = 4.0  # stronger than the default 2.0: the phantom's tiles have narrow histograms


def _demo_variants(tf_histeq, samples) -> list[_Variant]:
    """Every image the demo writes, in order; figures show all but the masks."""
    xray, xray12, scene = samples.chest_xray(), samples.chest_xray(bits=12), samples.color_scene()
    lungs, field = samples.lung_mask(), samples.field_mask()
    r8, r12 = (0, 255), (0, 4095)
    twelve = {"value_range": r12, "bins": 4096}
    clip = {"clip_limit": DEMO_CLIP_LIMIT}
    rows = [
        ("xray", "original", xray, r8),
        ("xray", "equalize_hist", tf_histeq.equalize_hist(xray), r8),
        ("xray", "clahe", tf_histeq.clahe(xray, **clip), r8),
        ("xray", "clahe_field_mask", tf_histeq.clahe(xray, mask=field, **clip), r8),
        ("xray", "equalize_hist_lung_mask", tf_histeq.equalize_hist(xray, mask=lungs), r8),
        ("xray", "field_mask", field.astype("uint8") * 255, r8),
        ("xray", "lung_mask", lungs.astype("uint8") * 255, r8),
        ("xray12", "original", xray12, r12),
        ("xray12", "equalize_hist", tf_histeq.equalize_hist(xray12, **twelve), r12),
        ("xray12", "clahe", tf_histeq.clahe(xray12, **clip, **twelve), r12),
        ("xray12", "clahe_field_mask", tf_histeq.clahe(xray12, mask=field, **clip, **twelve), r12),
        ("color", "original", scene, r8),
        ("color", "equalize_hist", tf_histeq.equalize_hist(scene, channels="luminance"), r8),
        ("color", "equalize_hist_per_channel", tf_histeq.equalize_hist(scene), r8),
        ("color", "clahe", tf_histeq.clahe(scene, channels="luminance", **clip), r8),
    ]
    # Statistics of the X-rays leave the black border out: it is 21 % of the pixels and says nothing.
    return [
        _Variant(sample, name, getattr(image, "numpy", lambda i=image: i)(), vr, None if sample == "color" else field)
        for sample, name, image, vr in rows
    ]


_DEMO_SAMPLES = {
    "xray": "chest X-ray phantom, 8-bit",
    "xray12": "the same, 12-bit in uint16 (value_range=(0, 4095), bins=4096)",
    "color": "hazy colour scene, RGB (channels='luminance' unless per channel)",
}
_DEMO_MASKS = ("field_mask", "lung_mask")
_VARIANT_TITLES = {
    "original": "original",
    "equalize_hist": "equalize_hist",
    "equalize_hist_per_channel": "equalize_hist, per channel",
    "clahe": f"clahe (clip {DEMO_CLIP_LIMIT:g}, 8×8)",
    "clahe_field_mask": "clahe, mask: field",
    "equalize_hist_lung_mask": "equalize_hist, mask: lungs",
}


def _sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _demo_manifest(parser, out: str) -> dict[str, str]:
    """The files a previous demo wrote into `out`, with their hashes; {} when there is none."""
    path = os.path.join(out, DEMO_MANIFEST)
    if not os.path.lexists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        files = manifest["files"]
        if manifest.get("tool") != "tf-histeq demo" or not isinstance(files, dict):
            raise ValueError
        return {str(k): str(v) for k, v in files.items()}
    except (OSError, ValueError, KeyError, TypeError):
        _usage_error(parser, f"{path!r} exists but is not a tf-histeq demo manifest; choose another folder with -o")


def _demo(parser, args) -> int:
    out = args.output
    if os.path.lexists(out) and not os.path.isdir(out):
        _usage_error(parser, f"the output {out!r} exists and is not a folder; choose another with -o")
    has_plot = _plot_available()
    names = _demo_file_names(has_plot)
    known = _demo_manifest(parser, out) if os.path.isdir(out) else {}
    foreign = [
        name
        for name in names
        if os.path.lexists(os.path.join(out, name))
        and (name not in known or _sha256(os.path.join(out, name)) != known[name])
    ]
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        _usage_error(
            parser,
            f"{out!r} already holds files that tf-histeq demo did not write (or that changed since): {shown}; "
            "choose another folder with -o",
        )

    tf = _import_tensorflow()
    import tf_histeq  # noqa: PLC0415
    from tf_histeq import samples  # noqa: PLC0415

    start = time.perf_counter()
    variants = _demo_variants(tf_histeq, samples)
    files: dict[str, bytes] = {}
    for variant in variants:
        files[f"{variant.sample}_{variant.name}.png"] = _encode_png(tf, variant.image)
    if has_plot:
        for sample in _DEMO_SAMPLES:
            shown = [v for v in variants if v.sample == sample and v.name not in _DEMO_MASKS]
            files[f"{sample}_compare.png"] = _figure_png(
                [v.image for v in shown], [_VARIANT_TITLES[v.name] for v in shown], shown[0].value_range
            )

    os.makedirs(out, exist_ok=True)
    written = dict(known)
    try:
        for name, data in files.items():
            _write_atomic(os.path.join(out, name), data, overwrite=True)
            written[name] = hashlib.sha256(data).hexdigest()
    finally:
        manifest = {"tool": "tf-histeq demo", "version": __version__, "files": dict(sorted(written.items()))}
        _write_atomic(
            os.path.join(out, DEMO_MANIFEST), (json.dumps(manifest, indent=1) + "\n").encode(), overwrite=True
        )
    elapsed = time.perf_counter() - start

    print(f"{PROG} demo: wrote {len(files)} files to {os.path.abspath(out)} in {elapsed:.1f} s")
    for sample, title in _DEMO_SAMPLES.items():
        print(f"  {title}:")
        names_here = [n for n in files if n.startswith(sample + "_")]
        print("    " + "  ".join(names_here))
    if not has_plot:
        print(f"  (no comparison figures: they need matplotlib, {PLOT_HINT})")
    print()
    print(_demo_table(variants))
    return 0


def _demo_file_names(has_plot: bool) -> list[str]:
    """The files the demo writes (known before computing anything, for the no-clobber check)."""
    names = [
        "xray_original.png",
        "xray_equalize_hist.png",
        "xray_clahe.png",
        "xray_clahe_field_mask.png",
        "xray_equalize_hist_lung_mask.png",
        "xray_field_mask.png",
        "xray_lung_mask.png",
        "xray12_original.png",
        "xray12_equalize_hist.png",
        "xray12_clahe.png",
        "xray12_clahe_field_mask.png",
        "color_original.png",
        "color_equalize_hist.png",
        "color_equalize_hist_per_channel.png",
        "color_clahe.png",
    ]
    if has_plot:
        names += [f"{sample}_compare.png" for sample in _DEMO_SAMPLES]
    return names


def _encode_png(tf, image) -> bytes:
    array = image if image.ndim == 3 else image[..., None]
    return tf.io.encode_png(array).numpy()


def _demo_table(variants: list[_Variant]) -> str:
    header = f"{'image':<8} {'variant':<26} {'mean':>8} {'std':>8} {'entropy':>8} {'RMS contrast':>13}"
    lines = [header, "-" * len(header)]
    previous = None
    for v in variants:
        if v.name in _DEMO_MASKS:
            continue
        s = _stats(v.image, v.value_range, v.region)
        sample = v.sample if v.sample != previous else ""
        previous = v.sample
        lines.append(
            f"{sample:<8} {v.name:<26} {s['mean']:8.1f} {s['std']:8.1f} {s['entropy']:8.2f} {s['rms_contrast']:13.3f}"
        )
    lines.append("X-rays: over the exposed field (the black border left out); colour: over all pixels and channels.")
    lines.append("mean and std in the image's units (0..255, xray12 0..4095); entropy in bits per pixel;")
    lines.append("RMS contrast: std of the intensities scaled to 0..1.")
    return "\n".join(lines)
