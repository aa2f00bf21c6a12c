"""Volumes from files: NIfTI (`.nii`, `.nii.gz`) and multi-page TIFF stacks, read and written without loss.

The optional extra `pip install "tf_histeq[volumes]"` brings the two readers,
nibabel (NIfTI) and tifffile (TIFF). This module imports no TensorFlow.

`read_volume(path)` returns `(array, meta)`: the voxels as a NumPy array of
shape `(D, H, W)` (or `(D, H, W, C)` for a TIFF stack of RGB pages), in the
file's own dtype, and a `VolumeMeta` holding everything needed to write a
processed array back as the same kind of file: `write_volume(path, array,
meta)`.

Axis order, `(D, H, W)`:

- NIfTI stores voxels `(i, j, k)`, which nibabel returns as an array of shape
  `(X, Y, Z)` with the affine mapping `(i, j, k)` to world coordinates. Here
  `D` is `k` (the slices, usually axial), `H` is `j` and `W` is `i`: the array
  is `data.transpose(2, 1, 0)`, no axis flipped, so slice `array[d]` is the
  plane `k = d` with `j` down and `i` across, and `write_volume` transposes
  back; the affine is untouched. `meta.spacing` is `(pixdim[3], pixdim[2],
  pixdim[1])`.
- TIFF stacks are pages of `(H, W)` (or `(H, W, S)` samples): `D` is the page
  index. `meta.spacing` is ImageJ's `spacing` (between slices, when the file is
  an ImageJ stack, else None) and `1 / YResolution`, `1 / XResolution`.

NIfTI scaling (`scl_slope`, `scl_inter`): the *stored* values are returned,
unscaled, in the stored dtype (an int16 CT stays int16, bit for bit), and
`meta.scaling` gives `(slope, inter)` (None when the header says no scaling:
slope 0 or NaN, or slope 1 and intercept 0) so that physical values are `array * slope + inter`.
`write_volume` writes the array as the stored values and keeps the header's
slope and intercept, so the values written mean what the values read meant.
This is the no-loss choice: reading scaled floats would turn integer CT data
into float64 and change which levels a histogram sees.

What is kept on writing: the dtype of the array given (the header's data type
is set to it; the byte order stays the file's), for NIfTI the whole header as
read, extensions included (qform and sform with their codes, pixdim, xyzt
units, intent, description, slope and intercept; the shape is set from the
array), for TIFF the ImageJ metadata (spacing, unit, min/max, labels, ranges,
...), the X/Y resolution and its unit, the first page's description when the
file is not an ImageJ one (an OME-XML is kept verbatim), the photometric
interpretation and deflate compression (other compressions are written
uncompressed: they need imagecodecs).

No loss: `write_volume` never replaces an existing file (unless `overwrite`),
and the file appears complete or not at all, synced to the disk, through the
command line's writer (`tf_histeq.cli.writing.write_atomic`).

Refused, with a `ValueError` naming the file: a NIfTI time series or any
NIfTI with more than three dimensions of size above 1 (split it first, e.g.
with `nibabel.four_to_three`), a truncated file (a `.nii.gz` cut short, a
header promising more voxels than the file holds), a TIFF that is not a stack
of 2-D pages (one 2-D image, a hyperstack with channels or time points, a file
of several image series), and NIfTI header/image pairs (`.hdr`/`.img`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import importlib
import io
import logging
import os
import zlib
from typing import Any

import numpy as np

__all__ = ["VolumeMeta", "read_volume", "write_volume"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
TIFF_SUFFIXES = (".tif", ".tiff")
# ImageJ metadata keys tifffile computes from the array's shape: not carried over, written afresh.
_IMAGEJ_SHAPE_KEYS = frozenset({"ImageJ", "images", "channels", "slices", "frames", "hyperstack"})
# Leading TIFF series axes that index the slices of a volume (Z; I and Q: pages of unknown meaning).
_SLICE_AXES = "ZIQ"
_EXTRA = 'pip install "tf_histeq[volumes]"'
# zlib level of `.nii.gz` outputs, nibabel's default: a 128x256x256 int16 CT compresses in 0.8 s to 40.3 %
# of its size, where level 9 (gzip's default) takes 8.1 s for 39.1 %.
GZIP_LEVEL = 1


@dataclasses.dataclass(frozen=True)
class VolumeMeta:
    """What `read_volume` found besides the voxels, for `write_volume` to write back.

    Attributes:
        kind: `"nifti"` or `"tiff"`.
        spacing: The voxel size along `(D, H, W)`, in `unit`; an entry is None
            where the file does not say (a plain TIFF's slice distance).
        unit: The unit of `spacing` (`"mm"`, `"um"`, `"inch"`, ...), or None.
        stored_shape: The array's shape as the file stores it: NIfTI's
            `(X, Y, Z)` (or `(X, Y, Z, 1, ...)`), the TIFF series' shape.
        header: NIfTI only: the nibabel `Nifti1Header` or `Nifti2Header` as read
            (a copy), with the affine, qform/sform, pixdim, units and scaling.
        tiff: TIFF only: `imagej` (dict or None), `resolution` (the X and Y
            rationals or None), `resolutionunit`, `description`, `photometric`,
            `compression`, `single_page` (one 2-D page, see `is_image`).
    """

    kind: str
    spacing: tuple
    unit: str | None
    stored_shape: tuple
    header: Any = None
    tiff: dict | None = None

    @property
    def affine(self) -> np.ndarray | None:
        """NIfTI: the 4x4 voxel-to-world affine nibabel chooses (sform, else qform, else pixdim); else None."""
        return None if self.header is None else self.header.get_best_affine()

    @property
    def is_image(self) -> bool:
        """True for a TIFF of one 2-D page read with `read_volume(..., single_page=True)`."""
        return bool(self.tiff and self.tiff.get("single_page"))

    @property
    def scaling(self) -> tuple[float, float] | None:
        """NIfTI: `(scl_slope, scl_inter)` when the header scales the stored values, else None.

        None also for the identity, `(1, 0)`; a NaN intercept counts as 0.
        """
        if self.header is None:
            return None
        slope, inter = (float(self.header[name]) for name in ("scl_slope", "scl_inter"))
        inter = inter if np.isfinite(inter) else 0.0
        if not np.isfinite(slope) or slope == 0 or (slope, inter) == (1.0, 0.0):
            return None
        return slope, inter


def kind_of(path) -> str:
    """`"nifti"` or `"tiff"` from the file name's suffix; a ValueError naming the path for any other."""
    name = os.fspath(path).lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(TIFF_SUFFIXES):
        return "tiff"
    suffixes = ", ".join(NIFTI_SUFFIXES + TIFF_SUFFIXES)
    raise ValueError(f"{os.fspath(path)!r}: not a volume file name; expected one ending in {suffixes}.")


def read_volume(path, *, single_page: bool = False) -> tuple[np.ndarray, VolumeMeta]:
    """Read a NIfTI file or a multi-page TIFF stack as a `(D, H, W)` or `(D, H, W, C)` array.

    Args:
        path: A `.nii`, `.nii.gz`, `.tif` or `.tiff` file.
        single_page: Also take a TIFF of one 2-D page (axes YX, or YXS with 3
            or 4 samples), returned as a stack of one page, `(1, H, W)` or
            `(1, H, W, C)`, with `meta.is_image` True (the command line
            processes it as a 2-D image). Without it such a file is refused.

    Returns:
        `(array, meta)`: the stored voxels in the file's dtype (native byte
        order, C-contiguous), and a `VolumeMeta` for `write_volume`. See the
        module docstring for the axis order and NIfTI scaling.

    Raises:
        ValueError: If the file is truncated or damaged, or is not a 3-D volume
            (a NIfTI time series, a 2-D TIFF, a hyperstack): the message names
            the file and the shape found.
        OSError: If the file cannot be read.
        ImportError: If nibabel or tifffile (the `volumes` extra) is missing.
    """
    kind = kind_of(path)
    with open(path, "rb") as f:
        data = f.read()
    if kind == "nifti":
        return _read_nifti(os.fspath(path), data)
    return _read_tiff(os.fspath(path), data, single_page=single_page)


def write_volume(path, array, meta: VolumeMeta | None = None, *, overwrite: bool = False) -> None:
    """Write a `(D, H, W)` or `(D, H, W, C)` array as a NIfTI file or TIFF stack, with `meta` from `read_volume`.

    The file's kind comes from `path`'s suffix and must be `meta.kind`'s
    (without `meta`: a new file with unit spacing and no metadata). The array's
    dtype is written as it is. The file is complete or absent, never half
    written, and an existing file is kept unless `overwrite`.

    Args:
        path: A `.nii`, `.nii.gz`, `.tif` or `.tiff` file name.
        array: The voxels, axis order as `read_volume` returns them.
        meta: The `VolumeMeta` of the volume the array came from, or None.
        overwrite: Replace an existing file at `path`.

    Raises:
        FileExistsError: If `path` exists and `overwrite` is False (nothing is
            written).
        ValueError: If the array's shape does not fit the format, or `meta` is
            of the other kind of file.
        OSError: If the file cannot be written (nothing is left behind).
    """
    from tf_histeq.cli import writing

    kind = kind_of(path)
    array = np.asarray(array)
    if meta is not None and meta.kind != kind:
        raise ValueError(
            f"{os.fspath(path)!r}: `meta` is of a {meta.kind} file, the name is a {kind} file's; "
            "write to a name of the same kind, or pass meta=None for a file without the source's metadata."
        )
    if array.ndim not in (3, 4) or array.dtype.kind not in "uif" or array.size == 0:
        raise ValueError(
            f"{os.fspath(path)!r}: `array` must be a non-empty (D, H, W) or (D, H, W, C) array of numbers. "
            f"Received: shape {array.shape}, dtype {array.dtype}."
        )
    data = _nifti_bytes(path, array, meta) if kind == "nifti" else _tiff_bytes(array, meta)
    if not writing.write_atomic(os.fspath(path), data, overwrite=overwrite):
        raise FileExistsError(f"{os.fspath(path)!r} exists; it is kept (pass overwrite=True to replace it).")


# --------------------------------------------------------------------------- NIfTI


def _nibabel():
    return _optional("nibabel", "NIfTI files")


def _read_nifti(path: str, data: bytes) -> tuple[np.ndarray, VolumeMeta]:
    nibabel = _nibabel()
    if path.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as err:
            raise ValueError(f"{path!r}: not a complete gzip stream (truncated or damaged): {err}") from None
    header = _nifti_header(nibabel, path, data)
    shape = tuple(int(n) for n in header.get_data_shape())
    dtype = header.get_data_dtype()
    offset = int(header.get_data_offset())
    needed = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) < needed:
        raise ValueError(
            f"{path!r}: truncated: its header describes {dtype.name} voxels of shape {shape} "
            f"({needed} bytes with the header), the file holds {len(data)} bytes."
        )
    spatial = shape[:3] + (1,) * (3 - len(shape[:3]))
    if len(shape) < 3 or any(n != 1 for n in shape[3:]):
        raise ValueError(
            f"{path!r}: a NIfTI of shape {shape} (x, y, z, t, ...) is not one 3-D volume; tf_histeq reads 3-D "
            "NIfTI files. Split a time series into volumes first (e.g. nibabel.four_to_three) and equalize each."
        )
    raw = np.frombuffer(data, dtype, count=int(np.prod(spatial)), offset=offset).reshape(spatial, order="F")
    array = np.ascontiguousarray(raw.transpose(2, 1, 0), dtype=dtype.newbyteorder("="))
    zooms = header.get_zooms()
    units = header.get_xyzt_units()[0]
    meta = VolumeMeta(
        kind="nifti",
        spacing=(float(zooms[2]), float(zooms[1]), float(zooms[0])),
        unit=None if units == "unknown" else units,
        stored_shape=shape,
        header=header.copy(),
    )
    return array, meta


def _nifti_header(nibabel, path: str, data: bytes):
    """The NIfTI-1 or NIfTI-2 header at the start of `data` (told apart by `sizeof_hdr`, either byte order)."""
    if len(data) >= 4:
        size = int.from_bytes(data[:4], "little")
        size = size if size in (348, 540) else int.from_bytes(data[:4], "big")
        header_class = {348: nibabel.Nifti1Header, 540: nibabel.Nifti2Header}.get(size)
        if header_class is not None and len(data) >= size:
            try:
                header = header_class.from_fileobj(io.BytesIO(data), check=True)
            except Exception as err:  # noqa: BLE001 - nibabel raises many kinds; all mean a bad header
                raise ValueError(f"{path!r}: not a readable NIfTI header: {err}") from None
            if header["magic"] not in (b"n+1", b"n+2"):
                raise ValueError(
                    f"{path!r}: a NIfTI header of a .hdr/.img pair (magic {header['magic']!r}); "
                    "tf_histeq reads single-file NIfTI (.nii, .nii.gz)."
                )
            return header
    raise ValueError(f"{path!r}: not a NIfTI file (no NIfTI-1 or NIfTI-2 header; {len(data)} bytes).")


def _nifti_bytes(path, array: np.ndarray, meta: VolumeMeta | None) -> bytes:
    nibabel = _nibabel()
    if array.ndim == 4:
        if array.shape[-1] != 1:
            raise ValueError(
                f"{os.fspath(path)!r}: a NIfTI volume is written from a (D, H, W) or (D, H, W, 1) array. "
                f"Received: shape {array.shape}."
            )
        array = array[..., 0]
    xyz = array.transpose(2, 1, 0)
    if meta is None:
        header = nibabel.Nifti1Header()
        header.set_xyzt_units("mm")
        shape = xyz.shape
    else:
        header = meta.header.copy()
        extra = meta.stored_shape[3:]  # trailing dimensions of size 1, as read
        shape = xyz.shape + tuple(extra)
    pixdim = header["pixdim"].copy()
    header.set_data_shape(shape)  # sets pixdim beyond the new rank to 1: restored, the rank being the file's
    if meta is not None:
        header["pixdim"] = pixdim
    header.set_data_dtype(array.dtype.newbyteorder(header.endianness))
    if meta is None:
        header.set_qform(np.eye(4), code="scanner")
        header.set_sform(np.eye(4), code="scanner")
    header["vox_offset"] = 0  # recomputed by write_to from the extensions' size
    out = io.BytesIO()
    header.write_to(out)
    out.write(b"\0" * (int(header["vox_offset"]) - out.tell()))
    out.write(np.asarray(xyz, header.get_data_dtype()).tobytes(order="F"))
    raw = out.getvalue()
    if os.fspath(path).lower().endswith(".gz"):
        raw = gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)
    return raw


# --------------------------------------------------------------------------- TIFF


def _tifffile():
    return _optional("tifffile", "TIFF stacks")


def _optional(module: str, files: str):
    """Import `module` of the `volumes` extra, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"reading and writing {files} needs {module}: {_EXTRA}") from err


def _read_tiff(path: str, data: bytes, *, single_page: bool = False) -> tuple[np.ndarray, VolumeMeta]:
    tifffile = _tifffile()
    try:
        with _tifffile_warnings() as warnings, tifffile.TiffFile(io.BytesIO(data)) as tif:
            series = tif.series
            if warnings:  # tifffile reads around a damaged file, dropping or filling pages: refused
                raise _Damaged("; ".join(warnings))
            if len(series) != 1:
                shapes = ", ".join(str(tuple(s.shape)) for s in series)
                raise _Refused(f"holds {len(series)} image series ({shapes}); tf_histeq reads one stack of pages")
            shape, axes = tuple(series[0].shape), series[0].axes
            page_only = single_page and _is_page(shape, axes)
            if not (page_only or _is_stack(shape, axes)):
                raise _Refused(
                    f"holds an image of shape {shape}, axes {axes!r}, not a 3-D stack of 2-D pages "
                    "(axes Z|I|Q, Y, X and optionally S samples)"
                )
            array = series[0].asarray()
            stored = shape
            if page_only:
                array, shape = array[None], (1, *shape)
            page = tif.pages.first
            tags = page.tags
            imagej = dict(tif.imagej_metadata) if tif.is_imagej and tif.imagej_metadata else None
            description = None if imagej is not None else (page.description or None)
            resolution = None
            if "XResolution" in tags and "YResolution" in tags:
                resolution = (tuple(tags["XResolution"].value), tuple(tags["YResolution"].value))
            unit_code = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else None
            photometric, compression = int(page.photometric), int(page.compression)
        if warnings:
            raise _Damaged("; ".join(warnings))
    except _Refused as err:
        raise ValueError(f"{path!r}: {err}") from None
    except Exception as err:  # noqa: BLE001 - a damaged file makes tifffile raise many kinds
        raise ValueError(f"{path!r}: not a readable TIFF (truncated or damaged): {err}") from None
    if array.shape != shape:
        raise ValueError(f"{path!r}: not a readable TIFF: its pages hold {array.shape}, not the series' {shape}")
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    meta = VolumeMeta(
        kind="tiff",
        spacing=_tiff_spacing(imagej, resolution),
        unit=_tiff_unit(imagej, unit_code),
        stored_shape=stored,
        tiff={
            "imagej": imagej,
            "resolution": resolution,
            "resolutionunit": unit_code,
            "description": description,
            "photometric": photometric,
            "compression": compression,
            "single_page": page_only,
        },
    )
    return array, meta


class _Refused(Exception):
    """A readable TIFF that is not a volume (its message is completed with the path)."""


class _Damaged(Exception):
    """tifffile warned while reading: the file is damaged (its message is completed with the path)."""


@contextlib.contextmanager
def _tifffile_warnings():
    """Collect the warnings tifffile logs while reading, instead of printing them, into the list yielded."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger = logging.getLogger("tifffile")
    handler, propagate = Collect(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _is_page(shape: tuple, axes: str) -> bool:
    """One 2-D page: axes YX, or YXS with 3 or 4 samples (RGB, RGBA)."""
    return axes == "YX" or (axes == "YXS" and shape[-1] in (3, 4))


def _is_stack(shape: tuple, axes: str) -> bool:
    if len(axes) == 3:
        return axes[0] in _SLICE_AXES and axes[1:] == "YX"
    return len(axes) == 4 and axes[0] in _SLICE_AXES and axes[1:] == "YXS" and shape[-1] in (3, 4)


def _tiff_spacing(imagej: dict | None, resolution) -> tuple:
    depth = float(imagej["spacing"]) if imagej and "spacing" in imagej else None
    if resolution is None:
        return (depth, None, None)
    (xn, xd), (yn, yd) = resolution
    height = yd / yn if yn else None
    width = xd / xn if xn else None
    return (depth, height, width)


def _tiff_unit(imagej: dict | None, unit_code: int | None) -> str | None:
    if imagej and imagej.get("unit"):
        return str(imagej["unit"])
    return {2: "inch", 3: "cm"}.get(unit_code or 0)


def _tiff_bytes(array: np.ndarray, meta: VolumeMeta | None) -> bytes:
    tifffile = _tifffile()
    info: dict = (meta.tiff if meta is not None else None) or {}
    rgb = array.ndim == 4
    if rgb and array.shape[-1] not in (3, 4):
        raise ValueError(
            f"a TIFF stack is written from (D, H, W) or (D, H, W, 3|4) arrays. Received: shape {array.shape}."
        )
    options: dict[str, object] = {"photometric": "rgb" if rgb else "minisblack"}
    if info.get("photometric") is not None and not rgb and info["photometric"] in (0, 1):
        options["photometric"] = info["photometric"]  # MINISWHITE or MINISBLACK, as read
    if info.get("compression") in (8, 32946):  # deflate: zlib, no imagecodecs needed
        options["compression"] = "zlib"
    if info.get("resolution") is not None:
        options["resolution"] = info["resolution"]
        if info.get("resolutionunit") is not None:
            options["resolutionunit"] = info["resolutionunit"]
    if info.get("imagej") is not None:
        kept = {k: v for k, v in info["imagej"].items() if k not in _IMAGEJ_SHAPE_KEYS and k != "mode"}
        options.update(imagej=True, metadata={**kept, "axes": "ZYXS" if rgb else "ZYX"})
    else:
        options.update(metadata=None, description=info.get("description"))
    out = io.BytesIO()
    tifffile.imwrite(out, array, **options)
    return out.getvalue()
