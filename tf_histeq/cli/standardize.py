"""`tf-histeq nyul-fit` and `tf-histeq nyul-apply`: Nyúl standardization of image and volume files.

`nyul-fit FOLDER... --landmarks FILE.json` reads every file once, one at a
time, adds its landmarks to running sums (`tf_histeq._nyul.FitSums`, as
`tf_histeq.nyul_fit`), and writes the standard landmarks with the cutoff,
the output range and what was fitted to a small JSON file (`LANDMARKS_FORMAT`),
never over an existing file. `nyul-apply INPUT... -o OUTDIR --landmarks
FILE.json` maps every file with `tf_histeq.nyul_standardize`.

Files: PNG (8/16-bit), JPEG and BMP images (2-D), and with the `volumes`
extra NIfTI (`.nii`, `.nii.gz`) and TIFF stacks (`.tif`, `.tiff`) as volumes.
The output is float32 (TorchIO's), which 8/16-bit image formats cannot hold
without a conversion: a NIfTI or TIFF volume is written in its own format,
float32, with its header/metadata kept (`tf_histeq.volumes.write_volume`); a
2-D image is written as a float32 NumPy file `NAME.npy` (exact values, no
rounding or rescaling). An existing output is kept, never replaced.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys

import numpy as np

from tf_histeq import _options
from tf_histeq.cli.files import UsageError

# The `format` entry of a landmarks file, and its version.
LANDMARKS_FORMAT = "tf_histeq.nyul_landmarks"
LANDMARKS_VERSION = 1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".tif", ".tiff")


def add_commands(sub) -> None:
    """Add `nyul-fit` and `nyul-apply` to the `tf-histeq` subparsers."""
    fit = sub.add_parser(
        "nyul-fit",
        help="learn Nyúl standard landmarks from image/volume files; write them to a JSON file",
        description="Learn the standard landmarks of Nyúl-Udupa histogram standardization (TorchIO's "
        "HistogramStandardization.train, per channel) from every image and volume file given, reading one "
        "file at a time, and write them to a new JSON file (an existing file is never replaced).",
    )
    fit.add_argument("inputs", nargs="+", metavar="INPUT", help="image/volume files and folders of them")
    fit.add_argument("--landmarks", required=True, metavar="FILE.json", help="the JSON file to write (must not exist)")
    fit.add_argument("-r", "--recursive", action="store_true", help="also search the subfolders of INPUT folders")
    fit.add_argument("--cutoff", nargs=2, type=float, default=_options.NYUL_CUTOFF, metavar=("LOW", "HIGH"))
    fit.add_argument("--output-range", nargs=2, type=float, default=_options.NYUL_OUTPUT_RANGE, metavar=("S1", "S2"))
    fit.set_defaults(module=__name__, action="fit", parser=fit)

    apply = sub.add_parser(
        "nyul-apply",
        help="standardize image/volume files with landmarks from nyul-fit (float32 outputs)",
        description="Map each file piecewise-linearly from its own landmarks to the standard ones of "
        "--landmarks (tf_histeq.nyul_standardize, TorchIO's apply). Volumes are written float32 in their own "
        "format (NIfTI/TIFF, header kept); 2-D images as float32 NAME.npy files. Existing outputs are kept.",
    )
    apply.add_argument("inputs", nargs="+", metavar="INPUT", help="image/volume files and folders of them")
    apply.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if missing)")
    apply.add_argument("--landmarks", required=True, metavar="FILE.json", help="a file written by nyul-fit")
    apply.add_argument("-r", "--recursive", action="store_true", help="also search the subfolders of INPUT folders")
    apply.set_defaults(module=__name__, action="apply", parser=apply)


def _kind(path: str) -> str | None:
    name = path.lower()
    if name.endswith(VOLUME_SUFFIXES):
        return "volume"
    return "image" if name.endswith(IMAGE_SUFFIXES) else None


def list_inputs(inputs: list[str], recursive: bool) -> list[tuple[str, str]]:
    """`(path, relative name)` of every image/volume file given or inside a given folder, sorted per folder."""
    found = []
    for given in inputs:
        if os.path.isdir(given):
            for root, dirs, files in os.walk(given):
                dirs.sort()
                if not recursive:
                    dirs.clear()
                for name in sorted(files):
                    path = os.path.join(root, name)
                    if _kind(path) is not None:
                        found.append((path, os.path.relpath(path, given)))
        elif os.path.isfile(given):
            if _kind(given) is None:
                raise UsageError(
                    f"{given!r}: not an image or volume file (expected {IMAGE_SUFFIXES + VOLUME_SUFFIXES})"
                )
            found.append((given, os.path.basename(given)))
        else:
            raise UsageError(f"{given!r}: no such file or folder")
    if not found:
        raise UsageError("no image or volume file found in " + ", ".join(repr(i) for i in inputs))
    return found


def read(path: str):
    """`(array, spatial_dims, meta)`: a volume (`read_volume`, meta for `write_volume`) or a 2-D image (meta None)."""
    if _kind(path) == "volume":
        from tf_histeq import volumes

        array, meta = volumes.read_volume(path)
        return array, 3, meta
    import tensorflow as tf

    with open(path, "rb") as f:
        data = f.read()
    sixteen = data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 24 and data[24] == 16
    if sixteen:
        image = tf.io.decode_png(data, dtype=tf.uint16)
    else:
        image = tf.io.decode_image(data, expand_animations=False)
    return image.numpy(), 2, None


def load_landmarks(path: str) -> tuple[np.ndarray, tuple[float, float]]:
    """The landmarks `(C, 13)` and the cutoff of a `nyul-fit` file; a `UsageError` naming the file if bad."""
    from tf_histeq import standardize

    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except OSError as err:
        raise UsageError(f"--landmarks {path!r}: cannot be read ({err.strerror or err})") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise UsageError(f"--landmarks {path!r}: not a JSON file ({err})") from None
    if not isinstance(document, dict) or document.get("format") != LANDMARKS_FORMAT:
        raise UsageError(f'--landmarks {path!r}: not a landmarks file of nyul-fit (no "format": {LANDMARKS_FORMAT!r})')
    try:
        landmarks = standardize.check_landmarks(document.get("landmarks"))
        cutoff = standardize.check_cutoff(document.get("cutoff"))
    except (TypeError, ValueError) as err:
        raise UsageError(f"--landmarks {path!r}: {err}") from None
    return landmarks, cutoff


def run(args: argparse.Namespace) -> int:
    """Run `nyul-fit` or `nyul-apply`; return the exit status (1 if a file failed)."""
    return _fit(args) if args.action == "fit" else _apply(args)


def _fit(args) -> int:
    from tf_histeq import __version__, _nyul, standardize
    from tf_histeq.cli import writing

    try:
        cutoff = standardize.check_cutoff(tuple(args.cutoff))
        output_range = standardize.check_output_range(tuple(args.output_range))
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None
    if os.path.lexists(args.landmarks):
        raise UsageError(f"--landmarks {args.landmarks!r} exists; it is kept (name a new file)")
    files = list_inputs(args.inputs, args.recursive)
    sums = _nyul.FitSums(output_range)
    kinds = set()
    for item, (path, _) in enumerate(files):
        try:
            array, spatial_dims, _meta = read(path)
            landmarks = standardize.nyul_landmarks(array, cutoff=cutoff, spatial_dims=spatial_dims)
            sums.add(np.asarray(landmarks), name=path, item=item)
        except (OSError, ValueError, TypeError, ImportError) as err:
            print(f"tf-histeq: {path}: {err}", file=sys.stderr)
            return 1
        kinds.add("volumes" if spatial_dims == 3 else "images")
    result = sums.result()
    document = {
        "format": LANDMARKS_FORMAT,
        "version": LANDMARKS_VERSION,
        "landmarks": result.tolist(),
        "percentiles": _nyul.percentiles(cutoff).tolist(),
        "cutoff": list(cutoff),
        "output_range": list(output_range),
        "fitted_on": {"files": len(files), "kinds": sorted(kinds)},
        "tf_histeq": __version__,
    }
    data = (json.dumps(document, indent=1) + "\n").encode()
    folder = os.path.dirname(os.path.abspath(args.landmarks))
    os.makedirs(folder, exist_ok=True)
    if not writing.write_atomic(args.landmarks, data, overwrite=False):
        raise UsageError(f"--landmarks {args.landmarks!r} exists; it is kept (name a new file)")
    print(f"{args.landmarks}: landmarks of {len(files)} files, {result.shape[0]} channel(s)")
    return 0


def _output_name(relative: str, kind: str | None) -> str:
    return relative if kind == "volume" else os.path.splitext(relative)[0] + ".npy"


def _apply(args) -> int:
    from tf_histeq import standardize, volumes
    from tf_histeq.cli import writing

    landmarks, cutoff = load_landmarks(args.landmarks)
    files = list_inputs(args.inputs, args.recursive)
    failed = written = kept = 0
    for path, relative in files:
        target = os.path.join(args.output, _output_name(relative, _kind(path)))
        if os.path.lexists(target):
            print(f"tf-histeq: {target} exists; it is kept", file=sys.stderr)
            kept += 1
            continue
        try:
            array, spatial_dims, meta = read(path)
            channels = 1 if array.ndim == spatial_dims else array.shape[-1]
            if landmarks.shape[0] not in (1, channels):
                raise ValueError(f"{channels} channel(s), but the landmarks have {landmarks.shape[0]}")
            out = standardize.nyul_standardize(array, landmarks, cutoff=cutoff, spatial_dims=spatial_dims).numpy()
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            if meta is not None:
                volumes.write_volume(target, out, meta)
            else:
                buffer = io.BytesIO()
                np.save(buffer, out, allow_pickle=False)
                if not writing.write_atomic(target, buffer.getvalue(), overwrite=False):
                    raise FileExistsError(f"{target} exists; it is kept")
            written += 1
        except (OSError, ValueError, TypeError, ImportError) as err:
            print(f"tf-histeq: {path}: {err}", file=sys.stderr)
            failed += 1
    print(f"{written} written, {kept} kept, {failed} failed")
    return 1 if failed else 0
