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
ALPHA_WORDS = _options.KEYWORDS["alpha"].flag.words


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors, in subcommands too, read `tf-histeq: error: ...`."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{PROG}: error: {message}\n")


def _add_io_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files (PNG, JPEG, BMP, GIF), volume files (NIfTI .nii/.nii.gz, TIFF .tif/.tiff) and folders "
        "of them",
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if missing)")
    parser.add_argument("-r", "--recursive", action="store_true", help="also search the subfolders of INPUT folders")
    parser.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        help="write every image in this format (default: the input's; GIF is written as PNG); NIfTI and TIFF "
        "files keep their format",
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


def _shown(value) -> str:
    """A default as it is typed on the command line: `8 8` for `(8, 8)`, `2` for 2.0, `auto` for "auto"."""
    if isinstance(value, (tuple, list)):
        return " ".join(_shown(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _add_op_arguments(parser: argparse.ArgumentParser, op: str) -> None:
    """One flag per keyword of `op` that has one, in signature order, from the schema in `tf_histeq._options`."""
    done = "matched" if op == "match_histograms" else "equalized"
    for name, keyword in _keywords(op):
        flag, default = keyword.flag_for(op), keyword.default_for(op)
        if flag is None:
            continue
        options: dict = {"help": flag.help.format(default=_shown(default), done=done)}
        if flag.required:
            options["required"] = True
        elif default is not None:
            options["default"] = _shown(default) if flag.words else default
        choices = tuple(flag.words) if flag.words else keyword.choices_for(op)
        if choices is not None:
            options["choices"] = choices
        for field in ("type", "nargs", "metavar"):
            if getattr(flag, field) is not None:
                options[field] = getattr(flag, field)
        parser.add_argument("--" + name.replace("_", "-"), **options)


def _keywords(op: str) -> list[tuple[str, _options.Keyword]]:
    """The keywords of `op`, then those of every way in (`jit_compile`), in signature order."""
    return [(name, _options.KEYWORDS[name]) for name in _options.OP_KEYWORDS[op]] + list(
        _options.WAY_IN_KEYWORDS.items()
    )


def op_arguments(args: argparse.Namespace) -> dict:
    """The op's keyword arguments from parsed command-line arguments (the positional `reference` left out).

    Words stand for their values (`--alpha true` for `alpha=True`), pairs are tuples.
    """
    kwargs = {}
    for name, keyword in _keywords(args.op):
        flag = keyword.flag_for(args.op)
        if flag is None or keyword.positional:
            continue
        value = getattr(args, name)
        if flag.words:
            value = flag.words[value]
        kwargs[name] = tuple(value) if isinstance(value, list) else value
    return kwargs


# The ops without a subcommand, and why.
NO_COMMAND = {
    "equalize_adapthist": "its output is float in [0, 1] (scikit-image's), which image files do not hold without a "
    "conversion of its own, and its main use, volumes, needs the NIfTI and TIFF readers (tf_histeq.volumes); "
    "call tf_histeq.equalize_adapthist from Python",
}
# The subcommand of each other op: its name, aliases, help line and description.
_COMMANDS = {
    "equalize_hist": (
        "equalize",
        ["equalize_hist"],
        "global histogram equalization (tf_histeq.equalize_hist) of image files",
        "Equalize the histogram of each image (per image and channel), as tf_histeq.equalize_hist.",
    ),
    "clahe": (
        "clahe",
        [],
        "contrast limited adaptive histogram equalization (tf_histeq.clahe) of image files",
        "CLAHE of each image (per image and channel), as tf_histeq.clahe.",
    ),
    "match_histograms": (
        "match",
        ["match_histograms"],
        "histogram matching (tf_histeq.match_histograms) of image files to a reference image or folder",
        "Map each image (per image and channel) so that its histogram matches the reference's, as "
        "tf_histeq.match_histograms (scikit-image's algorithm, bit-exact). The reference is read as the inputs "
        "are: the same decoders, bit depth, --value-range, --bins and --alpha. A reference that cannot be read, "
        "or that fits none of the inputs, stops the run before anything is written (exit 2); an input whose bit "
        "depth or channels do not fit it fails alone (exit 1).",
    ),
}


VOLUMES_EPILOG = (
    'Volume files (needs pip install "tf_histeq[volumes]"): a NIfTI (.nii, .nii.gz) is one volume (D, H, W), '
    "processed with one histogram per volume (spatial_dims=3); a TIFF of several pages is a stack, processed the same "
    "way (RGB pages per channel); a TIFF of one page stays a 2-D image. Each is written back in its own format with "
    "its dtype, header (affine, spacing) or TIFF metadata; --compare draws three orthogonal slices before/after. A "
    "NIfTI time series (4-D) is refused: split it into volumes first (nibabel.four_to_three). Float voxels need "
    "--value-range when they leave 0..255. Volumes are processed here, one at a time, also with --data-service."
)
_CLAHE_VOLUMES = (
    "clahe is OpenCV's 2-D algorithm: NIfTI files and TIFF stacks are refused (3-D CLAHE is "
    "tf_histeq.equalize_adapthist); one-page TIFFs are images and are processed."
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
        "scene, a CT-like phantom volume in Hounsfield units) and write the original, equalize_hist, clahe and "
        "masked variants, comparison figures (the volume's: three orthogonal slices before/after) and a "
        "table of statistics. A rerun into the same folder replaces only the files a previous demo wrote "
        "there and that are unchanged since; any other existing file is left alone.",
    )
    demo.add_argument("-o", "--output", default=DEMO_DIR, metavar="DIR", help=f"output folder (default ./{DEMO_DIR})")
    demo.set_defaults(parser=demo)

    for op in (op for op in _options.OP_NAMES if op not in NO_COMMAND):
        name, aliases, help_line, description = _COMMANDS[op]
        epilog = _CLAHE_VOLUMES if op == "clahe" else VOLUMES_EPILOG
        command = sub.add_parser(name, aliases=aliases, help=help_line, description=description, epilog=epilog)
        _add_io_arguments(command)
        _add_op_arguments(command, op)
        command.set_defaults(op=op, parser=command)

    importlib.import_module("tf_histeq.cli.standardize").add_commands(sub)

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
        module = getattr(args, "module", None)  # nyul-fit, nyul-apply: their module
        module = module or ("tf_histeq.cli.demo" if args.command == "demo" else "tf_histeq.cli.equalize")
        command = importlib.import_module(module)
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
