"""What an input's header says beyond TensorFlow's decoders, and the graph that applies it.

TensorFlow's image decoders leave out parts of a file that OpenCV and Pillow
honour; `inspect` reads them from the file's headers (pure Python, a few small
reads) and `apply` puts them into the decoded pixels (TensorFlow ops, in the
`tf.data` pipeline):

- 32-bit BMP: without bit masks (`BI_RGB`) the fourth byte is padding, so the
  image is RGB (as Pillow and `cv2.imread` read it); with bit masks
  (`BI_BITFIELDS`) the masks say which byte is red, green, blue and alpha (a
  zero alpha mask: no alpha). Masks of other than whole bytes are refused.
- JPEG: the EXIF Orientation tag (APP1) rotates or flips the pixels as
  `cv2.imread` and Pillow's `ImageOps.exif_transpose` do, so the output is
  upright and displays as the input did.
- PNG: the `tRNS` key of a gray or RGB image (the level, or colour, that is
  transparent) becomes an alpha channel, as Pillow's `convert("LA")` /
  `convert("RGBA")` make it (palette images already get one from TensorFlow).
- GIF: the transparent colour of the first frame becomes an alpha channel, its
  pixels keeping their palette colour under alpha 0, as Pillow's
  `convert("RGBA")` makes it (TensorFlow paints them black, opaque).

Each file's findings travel as one int32 vector (`Decoding.vector`), a tensor
of the pipeline's elements.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable

from tf_histeq.cli.runtime import tf

# JPEG orientations that swap height and width (EXIF values 5..8: a transpose first).
TRANSPOSED = frozenset({5, 6, 7, 8})
VECTOR_LENGTH = 11
# TensorFlow's 32-bit BMP decoder returns the bytes of each pixel in the order 2, 1, 0, 3 (BGRA read as RGBA).
_TF_BMP_INDEX = (2, 1, 0, 3)

Read = Callable[[int, int], bytes]  # (offset, size) -> at most `size` bytes of the file from `offset`


@dataclasses.dataclass(frozen=True)
class Decoding:
    """What to do to TensorFlow's decoded pixels of one file; the default does nothing."""

    orientation: int = 1  # EXIF orientation, 1..8 (1: as stored)
    order: tuple[int, ...] = ()  # channels of the decoded BMP to keep, in RGB(A) order; () keeps all
    key: tuple[int, ...] = ()  # PNG tRNS: the transparent level (gray) or colour (RGB), at decoded depth
    gif: tuple[int, int] = (0, 0)  # offsets of the first frame's GCE flags byte and its transparent colour

    @property
    def identity(self) -> bool:
        """True if the decoded pixels are right as they are."""
        return self == Decoding()

    def vector(self) -> list[int]:
        """`[orientation, len(order), order (4), key (3), gif (2)]`, -1 where unused."""
        order = list(self.order) + [-1] * (4 - len(self.order))
        key = list(self.key) + [-1] * (3 - len(self.key))
        return [self.orientation, len(self.order), *order, *key, *self.gif]


def inspect(fmt: str, read: Read) -> Decoding:
    """The `Decoding` of a file of format `fmt` (`"png"`, `"jpeg"`, `"bmp"`, `"gif"`), read through `read`.

    Raises:
        ValueError: For a BMP whose bit masks TensorFlow's decoder cannot give exactly.
    """
    if fmt == "bmp":
        return Decoding(order=_bmp_order(read(0, 70)))
    if fmt == "jpeg":
        return Decoding(orientation=_jpeg_orientation(read))
    if fmt == "png":
        return Decoding(key=_png_key(read))
    if fmt == "gif":
        return Decoding(gif=_gif_transparency(read))
    return Decoding()


def file_reader(f) -> Read:
    """A `Read` over an open binary file."""

    def read(offset: int, size: int) -> bytes:
        f.seek(offset)
        return f.read(size)

    return read


def bytes_reader(data: bytes) -> Read:
    """A `Read` over bytes in memory."""
    return lambda offset, size: data[offset : offset + size]


# --------------------------------------------------------------------------- BMP


def _bmp_order(head: bytes) -> tuple[int, ...]:
    """The channels of TensorFlow's decoded 32-bit BMP in RGB(A) order; () for other bit depths or a cut header."""
    if len(head) < 54:
        return ()
    header_size, _, _, _, bits, compression = struct.unpack("<IiiHHI", head[14:34])
    if bits != 32:
        if compression == 3:
            raise ValueError(f"a {bits}-bit BMP with bit masks (BI_BITFIELDS) is not supported; convert it to PNG")
        return ()
    if compression == 0:  # BI_RGB: bytes B, G, R and padding
        return tuple(_TF_BMP_INDEX[k] for k in (2, 1, 0))
    # BI_BITFIELDS: the masks follow a 40-byte header (red, green, blue) or are part of a larger one (and alpha).
    if len(head) < (70 if header_size >= 56 else 66):
        return ()
    masks = struct.unpack("<III", head[54:66])
    alpha = struct.unpack("<I", head[66:70])[0] if header_size >= 56 else 0
    whole = {0xFF << (8 * k): k for k in range(4)}
    used = [*masks, alpha] if alpha else list(masks)
    if any(mask not in whole for mask in used) or len({whole[mask] for mask in used}) != len(used):
        names = "/".join(f"0x{mask:08X}" for mask in [*masks, alpha])
        raise ValueError(
            f"a 32-bit BMP with bit masks R/G/B/A {names} is not supported (only masks of whole, distinct "
            "bytes are read exactly); convert it to PNG"
        )
    return tuple(_TF_BMP_INDEX[whole[mask]] for mask in used)


# --------------------------------------------------------------------------- JPEG


def _jpeg_orientation(read: Read) -> int:
    """The EXIF Orientation (1..8) of a JPEG, 1 if it has none (markers are walked up to the frame header)."""
    at = 2
    while True:
        marker = read(at, 4)
        if len(marker) < 4 or marker[0] != 0xFF:
            return 1
        code, length = marker[1], struct.unpack(">H", marker[2:4])[0]
        if code == 0xFF:  # fill byte
            at += 1
            continue
        if code == 0xDA or 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):
            return 1  # the scan or the frame header: EXIF comes before them
        if code == 0xE1:
            found = _exif_orientation(read(at + 4, max(length - 2, 0)))
            if found:
                return found
        at += 2 + length


def _exif_orientation(segment: bytes) -> int | None:
    """The Orientation tag (0x0112) of IFD0 of an APP1 `Exif` segment, if valid."""
    if not segment.startswith(b"Exif\0\0") or len(segment) < 14:
        return None
    tiff = segment[6:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return None
    ifd = struct.unpack(order + "I", tiff[4:8])[0]
    if ifd + 2 > len(tiff):
        return None
    count = struct.unpack(order + "H", tiff[ifd : ifd + 2])[0]
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        if len(entry) < 12:
            return None
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag == 0x0112 and kind == 3:  # SHORT
            value = struct.unpack(order + "H", entry[8:10])[0]
            return value if 1 <= value <= 8 else None
    return None


# --------------------------------------------------------------------------- PNG


def _png_key(read: Read) -> tuple[int, ...]:
    """The tRNS key of a gray (colour type 0) or RGB (2) PNG at the decoded depth; () if none."""
    header = read(0, 33)
    if len(header) < 33:
        return ()
    depth, colour = header[24], header[25]
    if colour not in (0, 2):
        return ()
    at = 33
    while True:
        chunk = read(at, 8)
        if len(chunk) < 8:
            return ()
        length, tag = struct.unpack(">I4s", chunk)
        if tag in (b"IDAT", b"IEND"):
            return ()
        if tag == b"tRNS":
            body = read(at + 8, min(length, 6))
            values = struct.unpack(f">{len(body) // 2}H", body[: len(body) // 2 * 2])
            wanted = 1 if colour == 0 else 3
            if len(values) < wanted:
                return ()
            scale = 255 // ((1 << depth) - 1) if depth < 8 else 1  # 1-, 2- and 4-bit gray decode as 8-bit
            return tuple(v * scale for v in values[:wanted])
        at += 12 + length


# --------------------------------------------------------------------------- GIF


def _gif_transparency(read: Read) -> tuple[int, int]:
    """Offsets of the first frame's GCE flags byte and of its transparent palette entry; (0, 0) if none."""
    screen = read(0, 13)
    if len(screen) < 13:
        return 0, 0
    flags = screen[10]
    palette = 13 if flags & 0x80 else 0
    at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    gce = None  # (flags byte offset, transparent index)
    while True:
        block = read(at, 2)
        if len(block) < 2:
            return 0, 0
        if block[0] == 0x21:  # an extension: label, then sub-blocks
            if block[1] == 0xF9:
                body = read(at + 2, 6)
                if len(body) == 6 and body[0] == 4 and body[1] & 1:
                    gce = (at + 3, body[4])
                else:
                    gce = None
            at += 2
            while True:
                size = read(at, 1)
                if not size:
                    return 0, 0
                at += 1 + size[0]
                if size[0] == 0:
                    break
        elif block[0] == 0x2C:  # the first image descriptor
            descriptor = read(at, 10)
            if len(descriptor) < 10 or gce is None:
                return 0, 0
            if descriptor[9] & 0x80:  # a local colour table
                palette, entries = at + 10, 2 << (descriptor[9] & 7)
            else:
                entries = 2 << (flags & 7) if palette else 0
            if not palette or gce[1] >= entries:
                return 0, 0
            return gce[0], palette + 3 * gce[1]
        else:
            return 0, 0


# --------------------------------------------------------------------------- the graph


def apply(data, image, vector):
    """`image`, TensorFlow's decoding of the file `data`, with the file's `Decoding.vector` applied.

    Every step is a `tf.cond` whose untaken branch costs nothing: a `vector` of
    `Decoding()` gives `image` back unchanged.
    """
    if image.dtype == tf.uint8:  # GIFs are 8-bit
        image = tf.cond(vector[9] > 0, lambda: _gif_alpha(data, vector[9], vector[10]), lambda: image)
    image = tf.cond(vector[1] > 0, lambda: tf.gather(image, vector[2 : 2 + vector[1]], axis=-1), lambda: image)
    image = tf.cond(vector[6] >= 0, lambda: _key_alpha(image, vector[6:9]), lambda: image)
    return orient(image, vector[0])


def orient(image, orientation):
    """Turn `image` upright from its EXIF `orientation` (1..8; a tensor or an int)."""

    def transform(transpose: bool, flip_rows: bool, flip_columns: bool):
        def run():
            out = tf.transpose(image, [1, 0, 2]) if transpose else image
            axes = [axis for axis, flip in ((0, flip_rows), (1, flip_columns)) if flip]
            return tf.reverse(out, axes) if axes else out

        return run

    branches = [
        transform(False, False, False),  # 1: as stored
        transform(False, False, True),  # 2: mirrored left-right
        transform(False, True, True),  # 3: turned 180°
        transform(False, True, False),  # 4: mirrored top-bottom
        transform(True, False, False),  # 5: transposed
        transform(True, False, True),  # 6: stored turned 90° counterclockwise: turn it clockwise
        transform(True, True, True),  # 7: transversed
        transform(True, True, False),  # 8: stored turned 90° clockwise: turn it counterclockwise
    ]
    if isinstance(orientation, int):
        return branches[orientation - 1]()
    return tf.switch_case(tf.clip_by_value(orientation, 1, 8) - 1, branches)


def _key_alpha(image, key):
    """`image` with an alpha channel: transparent where every channel equals `key` (its first C values)."""
    channels = tf.shape(image)[-1]
    same = tf.reduce_all(tf.equal(tf.cast(image, tf.int32), key[:channels]), axis=-1, keepdims=True)
    alpha = tf.where(same, tf.constant(0, image.dtype), tf.constant(image.dtype.max, image.dtype))
    return tf.concat([image, alpha], axis=-1)


_BYTES = [bytes([i]) for i in range(256)]


def _patched(data, offset, values):
    """`data` with the bytes at `offset` replaced by `values` (uint8 tensor)."""
    head = tf.strings.substr(data, 0, offset)
    tail = tf.strings.substr(data, offset + tf.size(values), -1)
    middle = tf.strings.reduce_join(tf.gather(tf.constant(_BYTES), tf.cast(values, tf.int32)))
    return tf.strings.join([head, middle, tail])


def _gif_alpha(data, flags_at, colour_at):
    """The first frame of a GIF as RGBA: its transparent pixels keep their palette colour, alpha 0.

    TensorFlow's decoder leaves transparent pixels black, like black ones. The
    frame is decoded twice with the transparency flag cleared, the second time
    with the transparent palette entry inverted: the pixels that differ are the
    transparent ones.
    """
    flags = tf.io.decode_raw(tf.strings.substr(data, flags_at, 1), tf.uint8)
    opaque = _patched(data, flags_at, tf.bitwise.bitwise_and(flags, tf.constant(0xFE, tf.uint8)))
    colour = tf.io.decode_raw(tf.strings.substr(data, colour_at, 3), tf.uint8)
    inverted = _patched(opaque, colour_at, tf.constant(255, tf.uint8) - colour)
    rgb = tf.io.decode_gif(opaque)[0]
    other = tf.io.decode_gif(inverted)[0]
    transparent = tf.reduce_any(tf.not_equal(rgb, other), axis=-1, keepdims=True)
    alpha = tf.where(transparent, tf.constant(0, tf.uint8), tf.constant(255, tf.uint8))
    return tf.concat([rgb, alpha], axis=-1)
