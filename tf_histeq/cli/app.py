"""The parser and `main`: commands, options, exit statuses.

TensorFlow-free: the choices and defaults come from `tf_histeq._options`, and the
command modules are imported once a command runs, so `--help` and usage errors
return at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tf_histeq import __version__, _options
from tf_histeq.cli.files import OUTPUT_FORMATS, PNG_COMPRESSION, UsageError
from tf_histeq.cli.terminal import PROG

DEMO_DIR = "tf_histeq_demo"
DEFAULT_JPEG_QUALITY = 95
# The words of --alpha, and the values of the ops' `alpha` argument they stand for.
ALPHA_WORDS = {str(choice).lower(): choice for choice in _options.ALPHA_CHOICES}


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
    parser.add_argument(
        "--png-compression",
        type=int,
        default=PNG_COMPRESSION,
        metavar="N",
        help=f"zlib level of PNG outputs, 0..9 (default {PNG_COMPRESSION}: fast, as OpenCV's imwrite; 2..9 filter "
        "as libpng does: smaller files for large smooth images, much more slowly; 0 stores the pixels "
        "uncompressed)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    parser.add_argument(
        "--compare", action="store_true", help="also write OUTPUT.compare.png: before/after with histograms"
    )
    parser.add_argument(
        "--data-service",
        metavar="grpc://HOST:PORT",
        help="run read/decode/process on the workers of the tf.data service with this dispatcher; "
        "they read the inputs by absolute path (a shared file system), and outputs are written here",
    )


def _add_image_arguments(parser: argparse.ArgumentParser, op: str) -> None:
    done = "matched" if op == "match_histograms" else "equalized"
    parser.add_argument(
        "--value-range",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        help="pixel value range (default: the dtype's, 0 255 for 8-bit and 0 65535 for 16-bit images)",
    )
    parser.add_argument("--bins", type=int, metavar="N", help="histogram bins (default: one per level, 256 or 65536)")
    parser.add_argument(
        "--channels",
        default=_options.CHANNEL_MODE,
        choices=_options.CHANNEL_CHOICES[op],
        help=f"default {_options.CHANNEL_MODE}",
    )
    parser.add_argument(
        "--alpha",
        default=str(_options.ALPHA).lower(),
        choices=tuple(ALPHA_WORDS),
        help="is the last channel alpha, passed through unchanged? auto: the last of 2 or 4 channels (gray + "
        f"alpha, RGBA); true: the last channel whatever the count; false: no alpha, every channel is {done} "
        f"(e.g. RGB + near infrared) (default {_options.ALPHA})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The `tf-histeq` parser: `demo`, `equalize` (alias `equalize_hist`), `clahe`, `match` and `bench`."""
    parser = _Parser(
        prog=PROG,
        description="Histogram equalization and CLAHE in TensorFlow ops, bit-exact with OpenCV and Pillow, and "
        "histogram matching, bit-exact with scikit-image.",
        epilog="Start with `tf-histeq demo`. Exit status: 0 all inputs done, 1 some failed, 2 usage error, "
        "130/143/129 interrupted by SIGINT (Ctrl-C)/SIGTERM/SIGHUP.",
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
    _add_image_arguments(equalize, "equalize_hist")
    equalize.add_argument(
        "--method",
        default=_options.METHOD,
        choices=_options.METHODS,
        help=f"LUT formula: opencv (cv2.equalizeHist) or pil (PIL.ImageOps.equalize) (default {_options.METHOD})",
    )
    equalize.set_defaults(op="equalize_hist", parser=equalize)

    clahe = sub.add_parser(
        "clahe",
        help="contrast limited adaptive histogram equalization (tf_histeq.clahe) of image files",
        description="CLAHE of each image (per image and channel), as tf_histeq.clahe.",
    )
    _add_io_arguments(clahe)
    clahe.add_argument(
        "--clip-limit",
        type=float,
        default=_options.CLIP_LIMIT,
        metavar="C",
        help=f"OpenCV units; <= 0 disables clipping (default {_options.CLIP_LIMIT:g})",
    )
    rows, cols = _options.TILE_GRID_SIZE
    clahe.add_argument(
        "--tile-grid-size",
        nargs=2,
        type=int,
        default=_options.TILE_GRID_SIZE,
        metavar=("ROWS", "COLS"),
        help=f"tiles as rows cols (default {rows} {cols}; OpenCV's tileGridSize is cols, rows)",
    )
    _add_image_arguments(clahe, "clahe")
    clahe.set_defaults(op="clahe", parser=clahe)

    match = sub.add_parser(
        "match",
        aliases=["match_histograms"],
        help="histogram matching (tf_histeq.match_histograms) of image files to a reference image or folder",
        description="Map each image (per image and channel) so that its histogram matches the reference's, as "
        "tf_histeq.match_histograms (scikit-image's algorithm, bit-exact). The reference is read as the inputs "
        "are: the same decoders, bit depth, --value-range, --bins and --alpha. A reference that cannot be read, "
        "or that fits none of the inputs, stops the run before anything is written (exit 2); an input whose bit "
        "depth or channels do not fit it fails alone (exit 1).",
    )
    _add_io_arguments(match)
    match.add_argument(
        "--reference",
        required=True,
        metavar="FILE_OR_DIR",
        help="an image file (its histogram), or a folder: the histogram of all its images pooled per channel "
        "(tf_histeq.reference_histogram; with --recursive, its subfolders' too). One bit depth; 1 channel (used "
        "for every channel) or the inputs' number of colour channels. Never inside the output folder",
    )
    _add_image_arguments(match, "match_histograms")
    match.set_defaults(op="match_histograms", parser=match)

    # Listed for --help only: `main` hands `bench ARGS` to tf_histeq.bench, whose parser owns its options.
    sub.add_parser(
        "bench",
        help="throughput against OpenCV, Pillow, scikit-image and Keras (tf_histeq.bench; see bench --help)",
        add_help=False,
    )
    return parser


def main(argv=None) -> int:
    """Run the `tf-histeq` command line.

    Args:
        argv: The arguments without the program name; `None` reads `sys.argv[1:]`.

    Returns:
        The exit status: 0 when every input succeeded, 1 when any input failed,
        2 for a usage error (reported as `tf-histeq: error: ...` on stderr),
        128 + the signal's number when interrupted (130 for Ctrl-C, 143 for
        SIGTERM, 129 for SIGHUP). `tf-histeq bench ARGS` returns
        `tf_histeq.bench.main(ARGS)`.

    Example:
        >>> from tf_histeq.cli import main
        >>> main(["--version"])
        tf-histeq 0.2.0
        0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["bench"]:
            return importlib.import_module("tf_histeq.bench").main(argv[1:])
        args = build_parser().parse_args(argv)
        command = importlib.import_module("tf_histeq.cli.demo" if args.command == "demo" else "tf_histeq.cli.equalize")
        try:
            return command.run(args)
        except UsageError as err:
            args.parser.error(str(err))  # prints `tf-histeq: error: ...` and raises SystemExit(2)
    except SystemExit as exit_:  # argparse and usage errors; --help and --version exit 0
        return _exit_code(exit_)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; finished files are kept, and a rerun skips them", file=sys.stderr)
        return 130


def _exit_code(exit_: SystemExit) -> int:
    if exit_.code is None:
        return 0
    return exit_.code if isinstance(exit_.code, int) else 2
