"""Files for the command line: what each input is, where its output goes, and how it is encoded.

Pure Python and NumPy (imported when an image is encoded), no TensorFlow:
`tf-histeq --help` and usage errors stay instant, and these rules are tested
on their own. Listing the inputs is `tf_histeq.cli.listing`'s, writing the
outputs `tf_histeq.cli.writing`'s.

- `sniff` reads a file's headers: its format, bit depth, and the channel
  counts its decoder may return; it refuses the BMP variants that TensorFlow's
  decoder misreads. `inspect` reads what the decoder leaves out (transparency,
  BMP bit masks, EXIF orientation: `tf_histeq.cli.decoding`).
- `plan` turns the inputs into `Job`s: output paths, and what is known before
  decoding (a failure, or a finished output to skip).
- `encode_png` and `encode_bmp` write the equalized pixels.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import unicodedata
import zlib
from typing import TYPE_CHECKING

from tf_histeq.cli import decoding, writing

if TYPE_CHECKING:
    import numpy as np


class UsageError(Exception):
    """A problem with the command line itself (exit status 2); the message says what to change."""


# --------------------------------------------------------------------------- inputs

# Input formats by signature, the extensions searched in folders, and the output formats.
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
# Volume files (`tf_histeq.cli.volfiles`), by name: NIfTI is a volume; a TIFF is a stack of pages, or one 2-D image.
VOLUME_EXTENSIONS = {"nifti": (".nii", ".nii.gz"), "tiff": (".tif", ".tiff")}
VOLUME_NAMES = tuple(ext for exts in VOLUME_EXTENSIONS.values() for ext in exts)
_CANONICAL_EXT = {"png": ".png", "jpeg": ".jpg", "bmp": ".bmp"}

_HEAD_BYTES = 4096  # enough for a BMP's header and palette, and most JPEG frame headers
# Channel counts a decoder may return, by format; PNG and BMP headers narrow them down.
_PNG_CHANNELS = {0: (1,), 2: (3,), 3: (3, 4), 4: (2,), 6: (4,)}  # by colour type
_BMP_CHANNELS = {8: (1,), 24: (3,), 32: (4,)}  # by bits per pixel
_OTHER_CHANNELS = {"jpeg": (1, 3), "gif": (3,)}


def sniff(path: str) -> tuple[str, bool, tuple[int, ...], tuple[int, int] | None]:
    """Return `(format, is_16_bit, possible channel counts, (height, width) or None)` from the file's headers.

    Channels and size are those of the decoded image after `decoding.inspect`'s
    findings: a transparent colour adds an alpha channel, a 32-bit BMP has the
    channels its bit masks give, a JPEG turned by its EXIF orientation has
    height and width swapped. The size is None when the header does not give
    it early enough (a JPEG whose frame header comes after a large metadata
    block).

    Raises:
        ValueError: With the reason, if the file cannot be read or is not a
            PNG, JPEG, BMP or GIF image that TensorFlow decodes correctly.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
            fmt = format_of(head)
            found = _sniff_head(fmt, head)
            extra = decoding.inspect(fmt, decoding.file_reader(f))
    except OSError as err:
        raise ValueError(f"cannot read the file ({err.strerror or err})") from None
    fmt, is16, channels, size = found
    if extra.order:  # a 32-bit BMP: RGB, or RGBA with an alpha mask
        channels = (len(extra.order),)
    elif extra.key or extra.gif != (0, 0):  # a transparent colour: an alpha channel is added
        channels = tuple(c + 1 for c in channels)
    if size is not None and extra.orientation in decoding.TRANSPOSED:
        size = size[::-1]
    return fmt, is16, channels, size


def volume_kind(path: str) -> str | None:
    """`"nifti"` or `"tiff"` if `path`'s name ends like a volume file's (`VOLUME_EXTENSIONS`), else None."""
    name = os.fsdecode(path).lower()
    return next((kind for kind, exts in VOLUME_EXTENSIONS.items() if name.endswith(exts)), None)


def format_of(head: bytes) -> str | None:
    """`"png"`, `"jpeg"`, `"gif"` or `"bmp"` from a file's first bytes; None if none of them."""
    return next((name for signature, name in _SIGNATURES if head.startswith(signature)), None)


def inspect(path: str, fmt: str) -> decoding.Decoding:
    """`decoding.inspect` of the file at `path` (a few small reads; `sniff` has checked it).

    Raises:
        OSError: If the file cannot be read.
        ValueError: If the file has changed into one `sniff` refuses.
    """
    with open(path, "rb") as f:
        return decoding.inspect(fmt, decoding.file_reader(f))


def _sniff_head(fmt: str | None, head: bytes) -> tuple[str, bool, tuple[int, ...], tuple[int, int] | None]:
    """`sniff` from the first bytes only, before `decoding.inspect` adds to the channels and size."""
    if not head:
        raise ValueError("the file is empty")
    if fmt is None:
        raise ValueError("not a PNG, JPEG, BMP or GIF image (unknown file signature)")
    if fmt == "png":
        if len(head) < 26 or head[12:16] != b"IHDR":
            raise ValueError("not a valid PNG image (no IHDR header)")
        width, height = struct.unpack(">II", head[16:24])
        return fmt, head[24] == 16, _PNG_CHANNELS.get(head[25], (1, 2, 3, 4)), (height, width)
    if fmt == "bmp":
        _check_bmp(head)
        width, height = struct.unpack("<ii", head[18:26])  # a negative height: rows stored top-down
        return fmt, False, _BMP_CHANNELS[struct.unpack("<H", head[28:30])[0]], (abs(height), width)
    if fmt == "gif":
        width, height = struct.unpack("<HH", head[6:10])  # the logical screen, which frames are drawn on
        return fmt, False, _OTHER_CHANNELS[fmt], (height, width)
    size, components = _jpeg_frame(head)
    return fmt, False, (components,) if components in (1, 3) else _OTHER_CHANNELS[fmt], size


def _jpeg_frame(head: bytes) -> tuple[tuple[int, int] | None, int | None]:
    """`((height, width), components)` from the JPEG frame header (SOFn marker) if it lies within `head`.

    The decoder returns as many channels as the frame has components: 1 (gray)
    or 3 (colour); (None, None) if the frame header lies beyond `head`.
    """
    at = 2
    while at + 10 <= len(head) and head[at] == 0xFF:
        marker = head[at + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOF0..SOF15 but DHT, JPG, DAC
            height, width = struct.unpack(">HH", head[at + 5 : at + 9])
            return (height, width), head[at + 9]
        at += 2 + struct.unpack(">H", head[at + 2 : at + 4])[0]
    return None, None


def _check_bmp(head: bytes) -> None:
    """Refuse the BMP variants that TensorFlow's decoder gets wrong or rejects.

    It decodes uncompressed 8-, 24- and 32-bit BMPs only, and reads 8-bit ones
    as gray levels whatever their palette says, so only an 8-bit BMP with the
    identity gray palette decodes to the right pixels.
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


@dataclasses.dataclass
class Job:
    """One input file and what becomes of it."""

    source: str
    output: str = ""
    figure: str | None = None  # the --compare figure, if one is drawn
    fmt: str = ""  # input format
    out_fmt: str = ""
    is16: bool = False
    channels: tuple[int, ...] = (1, 2, 3, 4)  # what the decoder may return
    size: tuple[int, int] | None = None  # (height, width) from the header, if it says
    error: str | None = None
    skip: bool = False  # every output exists and is kept
    volume: str | None = None  # "nifti" or "tiff": a volume file, read and written by `tf_histeq.cli.volfiles`


def _folded(path: str) -> str:
    """`path` as a file system that ignores case and Unicode normalization sees it (macOS, Windows, FAT)."""
    return unicodedata.normalize("NFC", path).casefold()


def plan(pairs: list[tuple[str, str]], output: str, *, fmt: str | None, overwrite: bool, compare: bool) -> list[Job]:
    """Return a `Job` per `(source, relative path)` pair from `collect`, with what is known before decoding.

    The output keeps the relative path, with the extension of the output format
    (`fmt`, or the input's; GIF is written as PNG); a volume file (NIfTI, TIFF:
    `volume_kind`) keeps its name and format whatever `fmt`, and is not sniffed
    here (`tf_histeq.cli.volfiles` reads it); a `--compare` figure's name
    is shortened if it would be too long for its folder (`writing.fit_name`). A
    job fails now if its file cannot be sniffed, if a 16-bit image would go to
    an 8-bit format, or if its output would also be another input's, including
    on a disk that ignores letter case (`Case.png` and `case.png`: checked
    with `writing.case_insensitive` where such names meet); it is skipped if
    all its outputs exist and not `overwrite`.
    """
    jobs, claimed, folded, ignores_case = [], {}, {}, {}
    for source, rel in pairs:
        job = Job(source=source, volume=volume_kind(source))
        jobs.append(job)
        if job.volume:
            job.fmt = job.out_fmt = job.volume
            job.output = os.path.join(output, rel)
        else:
            try:
                job.fmt, job.is16, job.channels, job.size = sniff(source)
            except ValueError as err:
                job.error = str(err)
                continue
            job.out_fmt = fmt or ("png" if job.fmt == "gif" else job.fmt)
            stem, ext = os.path.splitext(rel)
            if ext.lower() not in _EXTENSIONS[job.out_fmt]:
                ext = _CANONICAL_EXT[job.out_fmt]
            job.output = os.path.join(output, stem + ext)
        job.figure = writing.fit_name(job.output, ".compare.png") if compare else None
        if job.is16 and job.out_fmt != "png":
            name = "JPEG" if job.out_fmt == "jpeg" else "BMP"
            job.error = f"a 16-bit image cannot be written as {name} (8-bit only); use --format png"
            continue
        targets = [job.output] + ([job.figure] if job.figure else [])
        clash = next((t for t in targets if t in claimed), None)
        if clash is not None:
            job.error = f"its output {clash!r} would also be written for {claimed[clash]!r}; process them separately"
            continue
        twin = next((t for t in targets if folded.get(_folded(t), t) != t), None)
        if twin is not None:
            other = folded[_folded(twin)]
            folder = os.path.dirname(twin) or "."
            if folder not in ignores_case:
                ignores_case[folder] = writing.case_insensitive(folder)
            if ignores_case[folder]:
                job.error = (
                    f"its output {twin!r} and {other!r} (for {claimed[other]!r}) differ only in letter case, and "
                    "the output disk ignores case: one would be lost; process them separately"
                )
                continue
        for target in targets:
            claimed[target] = job.source
            folded.setdefault(_folded(target), target)
        if not overwrite and all(os.path.lexists(t) for t in targets):
            job.skip = True
    return jobs


# --------------------------------------------------------------------------- encoders

PNG_COMPRESSION = 1  # zlib level of PNG outputs, OpenCV's default
_PNG_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # gray, gray + alpha, RGB, RGBA
_PNG_CHUNK_MAX = 1 << 30  # IDAT data per chunk (the format allows up to 2**31 - 1 bytes)


def _png_chunk(tag: bytes, data) -> bytes:
    return struct.pack(">I", len(data)) + tag + bytes(data) + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def encode_png(pixels: np.ndarray, compression: int = PNG_COMPRESSION) -> bytes:
    r"""PNG file of a uint8 or uint16 `(H, W, C)` array, C in 1..4 (gray, gray + alpha, RGB, RGBA).

    Level 1, the default, writes as `cv2.imwrite` does by default: every row
    with PNG's "sub" filter (each byte minus the same byte of the pixel on its
    left) and zlib's run-length strategy, several times faster than zlib's
    default level. Levels 2..9 write as libpng does by default, and so as
    `tf.io.encode_png` and OpenCV given a level: each row with the filter that
    minimizes the sum of its bytes' magnitudes, and zlib's strategy for
    filtered data at that level; 6..9 make large smooth images smaller than
    level 1 does, much more slowly (on small or noisy images, level 1 can give
    the smallest file). Level 0 stores the rows uncompressed. Python's zlib
    releases the GIL while it compresses.

    Args:
        pixels: The image; 16-bit samples are written big-endian, as PNG wants.
        compression: The zlib level, 0..9.

    Returns:
        The bytes of the file.

    Example:
        >>> import numpy as np, zlib
        >>> data = encode_png(np.array([[[10], [12], [11]]], np.uint8))
        >>> data[:8], data[12:16]
        (b'\x89PNG\r\n\x1a\n', b'IHDR')
        >>> zlib.decompress(data[41:-16])  # filter type 1 (sub), 10, 12 - 10, 11 - 12 modulo 256
        b'\x01\n\x02\xff'
    """
    import numpy as np

    height, width, channels = pixels.shape
    rows = pixels.astype(">u2" if pixels.dtype == np.uint16 else np.uint8, copy=False)
    rows = np.ascontiguousarray(rows).view(np.uint8).reshape(height, -1)
    step = channels * pixels.itemsize  # bytes per pixel: the distance to the byte on the left
    if compression >= 2:
        filtered, strategy = _filter_adaptive(rows, step), zlib.Z_FILTERED
    else:
        filtered, strategy = np.empty((height, rows.shape[1] + 1), np.uint8), zlib.Z_RLE
        filtered[:, 0] = 1  # filter type: sub
        filtered[:, 1 : 1 + step] = rows[:, :step]
        np.subtract(rows[:, step:], rows[:, :-step], out=filtered[:, 1 + step :])  # modulo 256
    packer = zlib.compressobj(compression, zlib.DEFLATED, 15, 8, strategy)
    data = memoryview(packer.compress(filtered) + packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 8 * pixels.itemsize, _PNG_COLOR_TYPES[channels], 0, 0, 0)
    idat = [_png_chunk(b"IDAT", data[i : i + _PNG_CHUNK_MAX]) for i in range(0, len(data), _PNG_CHUNK_MAX)]
    return b"".join([b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", header), *idat, _png_chunk(b"IEND", b"")])


def _filter_adaptive(rows: np.ndarray, step: int) -> np.ndarray:
    """Rows of bytes `(H, B)` → `(H, 1 + B)`: each row's best PNG filter type, then the filtered bytes.

    The five filters predict a byte from the bytes of the pixel on its left,
    above, and above-left (0 outside the image); the row keeps the filter whose
    residues, read as signed bytes, have the least sum of magnitudes (the
    heuristic of the PNG specification, which libpng uses).
    """
    import numpy as np

    value = rows.astype(np.int16)
    left, up, up_left = (np.zeros_like(value) for _ in range(3))
    left[:, step:] = value[:, :-step]
    up[1:] = value[:-1]
    up_left[1:, step:] = value[:-1, :-step]
    to_left, to_up, to_up_left = np.abs(up - up_left), np.abs(left - up_left), np.abs(left + up - 2 * up_left)
    paeth = np.where((to_left <= to_up) & (to_left <= to_up_left), left, np.where(to_up <= to_up_left, up, up_left))
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    best = np.full(rows.shape[0], np.iinfo(np.int64).max)
    for kind, predicted in enumerate((0, left, up, (left + up) >> 1, paeth)):  # none, sub, up, average, paeth
        residue = (value - predicted).astype(np.uint8)  # modulo 256
        cost = np.abs(residue.view(np.int8).astype(np.int16)).sum(axis=1, dtype=np.int64)
        better = cost < best
        best[better] = cost[better]
        out[better, 0] = kind
        out[better, 1:] = residue[better]
    return out


def encode_bmp(pixels: np.ndarray) -> bytes:
    """Uncompressed BMP file of a uint8 `(H, W, C)` array: C = 1 (8-bit gray palette), 3 (24-bit) or 4 (32-bit).

    Four channels are written with a BITMAPV4HEADER whose alpha mask says the
    fourth byte is alpha, so readers keep it (Pillow's own BMP writer stores
    RGBA as plain 32-bit, which Pillow and most readers then read back as RGB).
    TensorFlow, Pillow and OpenCV read all three variants back exactly.

    Example:
        >>> import numpy as np
        >>> data = encode_bmp(np.zeros((2, 3, 3), np.uint8))
        >>> data[:2], len(data)  # 14 + 40 header bytes, 2 rows of 9 bytes padded to 12
        (b'BM', 78)
    """
    import numpy as np

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
    if c == 4:  # BITMAPV4HEADER with an alpha mask
        info = struct.pack("<IiiHHIIiiII", 108, w, h, 1, 32, 3, len(data), 2835, 2835, 0, 0)
        info += struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000) + b"BGRs" + bytes(48)
    else:
        info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 8 * c, 0, len(data), 2835, 2835, 256 if c == 1 else 0, 0)
    offset = 14 + len(info) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + palette + data
