"""What the command line reads beyond TensorFlow's decoders, against OpenCV and Pillow on hand-built files.

32-bit BMPs (padding byte, bit masks), JPEG (libjpeg's default IDCT, EXIF
orientation), transparency (GIF, PNG tRNS). The decoding tests call
`pipeline.decode`, which decodes as the pipeline does; one `tf-histeq` run on
a folder of all the files checks that the command line does the same.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from tests._references import assert_same_pixels
from tests._service import local_service
from tf_histeq import _xla, ops, samples
from tf_histeq.cli import files, listing, pipeline

cv2 = pytest.importorskip("cv2")
Image = pytest.importorskip("PIL.Image")

SCENE = samples.color_scene((24, 40), seed=4)  # low-contrast RGB: equalization moves every level


# --------------------------------------------------------------------------- hand-built files


def _bmp32(pixels: np.ndarray, compression: int, masks=None, header: int = 40) -> bytes:
    """A 32-bit BMP whose pixels hold `pixels`' 4 bytes in file order; masks after a 40-byte header or in a V4 one."""
    h, w, _ = pixels.shape
    data = np.ascontiguousarray(pixels[::-1]).tobytes()  # bottom-up
    info = struct.pack("<IiiHHIIiiII", header, w, h, 1, 32, compression, len(data), 2835, 2835, 0, 0)
    after = b""
    if header == 40 and masks is not None:
        after = struct.pack("<III", *masks[:3])
    elif header == 108:
        info += struct.pack("<IIII", *(masks or (0, 0, 0, 0))) + b"BGRs" + bytes(48)
    offset = 14 + len(info) + len(after)
    return b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + after + data


def _stored(rgb: np.ndarray, alpha: np.ndarray, order: str) -> np.ndarray:
    """The 4 bytes of each pixel in file order, `order` naming them (e.g. "BGRA", "RGBX")."""
    planes = {"R": rgb[..., 0], "G": rgb[..., 1], "B": rgb[..., 2], "A": alpha, "X": np.zeros_like(alpha)}
    return np.stack([planes[name] for name in order], axis=-1)


def _masks(order: str, with_alpha: bool) -> tuple[int, int, int, int]:
    """The R, G, B, A masks of a file whose bytes are in `order`."""
    at = {name: 0xFF << (8 * k) for k, name in enumerate(order)}
    return at["R"], at["G"], at["B"], at["A"] if with_alpha else 0


ALPHA = np.linspace(0, 255, SCENE.shape[0] * SCENE.shape[1]).reshape(SCENE.shape[:2]).astype(np.uint8)

# name -> (file bytes, the pixels they hold, whether Pillow reads the layout)
BMPS = {
    "bi_rgb_zero_padding": (_bmp32(_stored(SCENE, 0 * ALPHA, "BGRA"), 0), SCENE, True),
    "bi_rgb_v4": (_bmp32(_stored(SCENE, ALPHA, "BGRA"), 0, header=108), SCENE, True),
    "masks_bgra_v4": (
        _bmp32(_stored(SCENE, ALPHA, "BGRA"), 3, _masks("BGRA", True), 108),
        np.dstack([SCENE, ALPHA]),
        True,
    ),
    "masks_rgba_v4": (
        _bmp32(_stored(SCENE, ALPHA, "RGBA"), 3, _masks("RGBA", True), 108),
        np.dstack([SCENE, ALPHA]),
        True,
    ),
    "masks_abgr_v4": (
        _bmp32(_stored(SCENE, ALPHA, "ABGR"), 3, _masks("ABGR", True), 108),
        np.dstack([SCENE, ALPHA]),
        True,
    ),
    "masks_bgrx_40": (_bmp32(_stored(SCENE, ALPHA, "BGRX"), 3, _masks("BGRX", False)), SCENE, True),
    "masks_rgbx_40": (_bmp32(_stored(SCENE, ALPHA, "RGBX"), 3, _masks("RGBX", False)), SCENE, False),
    "masks_xbgr_v4": (_bmp32(_stored(SCENE, ALPHA, "XBGR"), 3, _masks("XBGR", False), 108), SCENE, True),
}


def _exif_jpeg(orientation: int) -> bytes:
    """A JPEG of `SCENE` (not square) written by Pillow with an EXIF Orientation tag."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(SCENE).save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def _transparent_gif() -> bytes:
    """A GIF whose transparent palette entry is black, like real black pixels elsewhere in it."""
    indices = (np.arange(SCENE.shape[0] * SCENE.shape[1]).reshape(SCENE.shape[:2]) // 7 % 6).astype(np.uint8)
    image = Image.fromarray(indices, "P")
    palette = [0, 0, 0, 0, 0, 0, 90, 100, 110, 120, 100, 80, 200, 190, 180, 30, 60, 90]  # entries 0 and 1 black
    image.putpalette(palette + [0] * (768 - len(palette)))
    buffer = io.BytesIO()
    image.save(buffer, "GIF", transparency=1)
    return buffer.getvalue()


def _trns_png(mode: str) -> bytes:
    """A gray or RGB PNG whose tRNS chunk makes one level (colour) transparent; Pillow writes it."""
    gray = SCENE[..., 1]
    image = Image.fromarray(gray if mode == "L" else SCENE, mode)
    key = int(gray[3, 5]) if mode == "L" else tuple(int(v) for v in SCENE[3, 5])
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=key)
    return buffer.getvalue()


def _pillow(data: bytes, mode: str | None = None) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        out = np.asarray(im.convert(mode) if mode else im)
    return out if out.ndim == 3 else out[..., None]


def _cv2_rgb(data: bytes, flags=cv2.IMREAD_COLOR) -> np.ndarray:
    """`cv2.imdecode` (which turns JPEGs by their EXIF orientation with IMREAD_COLOR), in RGB(A) order."""
    out = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    return cv2.cvtColor(out, cv2.COLOR_BGRA2RGBA if out.shape[-1] == 4 else cv2.COLOR_BGR2RGB)


def _decode(data: bytes) -> np.ndarray:
    return pipeline.decode(data, False)


# --------------------------------------------------------------------------- BMP


@pytest.mark.parametrize("name", sorted(BMPS))
def test_32_bit_bmps_decode_by_their_masks_as_pillow_reads_them(name):
    data, pixels, pillow_reads = BMPS[name]
    assert_same_pixels(_decode(data), pixels, "tf_histeq:")
    if pillow_reads:
        assert_same_pixels(_pillow(data), pixels, "Pillow:")
    if name.startswith("bi_rgb"):  # OpenCV reads BI_RGB as RGB too (and its BITFIELDS its own way)
        assert_same_pixels(_cv2_rgb(data, cv2.IMREAD_UNCHANGED), pixels, "cv2:")


@pytest.mark.parametrize(
    ("bits", "masks", "words"),
    [
        (32, (0x3FF00000, 0x000FFC00, 0x000003FF, 0xC0000000), "bit masks R/G/B/A 0x3FF00000/"),  # 10-10-10-2
        (32, (0x00FF0000, 0x00FF0000, 0x000000FF, 0), "bit masks R/G/B/A 0x00FF0000/0x00FF0000/"),  # one byte twice
        (16, (0xF800, 0x07E0, 0x001F, 0), "a 16-bit BMP with compression 3 is not supported"),  # RGB 565
    ],
)
def test_bmp_masks_that_cannot_be_decoded_exactly_are_refused_by_name(tmp_path, bits, masks, words):
    data = bytearray(_bmp32(np.zeros((2, 2, 4), np.uint8), 3, masks, 108))
    data[28:30] = struct.pack("<H", bits)
    (tmp_path / "x.bmp").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="convert it to PNG") as info:
        files.sniff(str(tmp_path / "x.bmp"))
    assert words in str(info.value)


# --------------------------------------------------------------------------- JPEG


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpegs_decode_upright_by_their_exif_orientation_as_cv2_imread_does(orientation):
    data = _exif_jpeg(orientation)
    expected = _cv2_rgb(data)  # libjpeg's default IDCT, turned upright
    assert_same_pixels(_decode(data), expected, f"orientation {orientation}:")
    with Image.open(io.BytesIO(data)) as im:  # Pillow decodes and turns it the same way
        from PIL import ImageOps

        assert_same_pixels(np.asarray(ImageOps.exif_transpose(im).convert("RGB")), expected, "Pillow:")


def test_jpeg_sniff_gives_the_upright_size(tmp_path):
    (tmp_path / "portrait.jpg").write_bytes(_exif_jpeg(6))
    assert files.sniff(str(tmp_path / "portrait.jpg"))[3] == (SCENE.shape[1], SCENE.shape[0])


# --------------------------------------------------------------------------- transparency


def test_gif_transparent_pixels_get_alpha_0_and_keep_their_palette_colour_as_pillow_reads_them():
    data = _transparent_gif()
    decoded = _decode(data)
    assert_same_pixels(decoded, _pillow(data, "RGBA"), "Pillow:")
    transparent = decoded[..., 3] == 0
    assert 0 < transparent.sum() < transparent.size
    assert (decoded[~transparent][:, :3] == 0).all(axis=-1).any()  # opaque black pixels stay opaque


@pytest.mark.parametrize(("mode", "as_mode"), [("L", "LA"), ("RGB", "RGBA")])
def test_png_trns_keys_become_alpha_as_pillow_reads_them(mode, as_mode):
    data = _trns_png(mode)
    decoded = _decode(data)
    assert_same_pixels(decoded, _pillow(data, as_mode), "Pillow:")
    assert 0 < int((decoded[..., -1] == 0).sum()) < decoded[..., -1].size


def test_match_reads_its_reference_files_as_opencv_does(tmp_path):
    """`tf-histeq match --reference`: a JPEG (libjpeg's IDCT) and an opaque 32-bit BMP, pooled."""
    from tf_histeq.cli import match

    paths = [tmp_path / "a.jpg", tmp_path / "b.bmp"]
    paths[0].write_bytes(_exif_jpeg(6))
    paths[1].write_bytes(BMPS["bi_rgb_zero_padding"][0])
    reference = match.Reference(str(tmp_path), [str(p) for p in paths], is16=False, formats=["jpeg", "bmp"])
    options = {"value_range": None, "bins": None, "alpha": "auto"}
    pooled = match.read_reference(reference, options)
    expected = [ops.reference_histogram(_cv2_rgb(p.read_bytes(), cv2.IMREAD_UNCHANGED), **options) for p in paths]
    assert_same_pixels(np.asarray(pooled.counts), np.asarray((expected[0] + expected[1]).counts), "counts:")


def test_cut_headers_give_the_full_findings_nothing_or_a_value_error():
    """The header parsers never fail otherwise, nor find something else, on a cut file (the decoder reports it)."""
    from tf_histeq.cli import decoding

    for fmt, data in {
        "jpeg": _exif_jpeg(6),
        "gif": _transparent_gif(),
        "png": _trns_png("RGB"),
        "bmp": BMPS["masks_abgr_v4"][0],
    }.items():
        full = decoding.inspect(fmt, decoding.bytes_reader(data))
        assert not full.identity, fmt
        for size in range(min(len(data), 300)):
            try:
                found = decoding.inspect(fmt, decoding.bytes_reader(data[:size]))
            except ValueError:
                continue
            assert found in (full, decoding.Decoding()), (fmt, size, found)


# --------------------------------------------------------------------------- one command-line run


def _cv2_op(op: str, bgr: np.ndarray) -> np.ndarray:
    """OpenCV's equalizeHist or CLAHE (2.0, 8 x 8: the command line's defaults) on each channel."""
    if op == "equalize":
        return np.dstack([cv2.equalizeHist(bgr[..., c]) for c in range(bgr.shape[-1])])
    clahe = cv2.createCLAHE(2.0, (8, 8))
    return np.dstack([clahe.apply(bgr[..., c]) for c in range(bgr.shape[-1])])


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """`tf-histeq equalize --format png` on a folder of every kind of file above: (inputs, {"equalize": outputs})."""
    from tf_histeq.cli import main

    src = tmp_path_factory.mktemp("in")
    for name, (data, _, _) in BMPS.items():
        (src / f"{name}.bmp").write_bytes(data)
    (src / "logo.gif").write_bytes(_transparent_gif())
    (src / "gray_key.png").write_bytes(_trns_png("L"))
    (src / "rgb_key.png").write_bytes(_trns_png("RGB"))
    (src / "portrait.jpg").write_bytes(_exif_jpeg(6))
    (src / "transversed.jpg").write_bytes(_exif_jpeg(7))
    (src / "plain.jpg").write_bytes(cv2.imencode(".jpg", samples.color_scene((72, 96), seed=5))[1].tobytes())
    (src / "gray.jpg").write_bytes(cv2.imencode(".jpg", samples.chest_xray((64, 80), seed=6))[1].tobytes())
    out = tmp_path_factory.mktemp("equalize")
    assert main(["equalize", str(src), "-o", str(out), "--format", "png"]) == 0
    return src, {"equalize": out}


@pytest.fixture(scope="module")
def clahe_outputs(outputs, tmp_path_factory):
    """`tf-histeq clahe --format png` on the JPEGs of `outputs`' folder (a CLAHE trace: seconds)."""
    from tf_histeq.cli import main

    src, jpegs, out = outputs[0], tmp_path_factory.mktemp("jpegs"), tmp_path_factory.mktemp("clahe")
    for path in src.glob("*.jpg"):
        (jpegs / path.name).write_bytes(path.read_bytes())
    assert main(["clahe", str(jpegs), "-o", str(out), "--format", "png"]) == 0
    return out


def _read_output(path) -> np.ndarray:
    return _pillow(path.read_bytes())


JPEGS = ("plain.jpg", "gray.jpg", "portrait.jpg", "transversed.jpg")


@pytest.mark.parametrize(
    ("op", "name"),
    [
        *(("equalize", name) for name in (*JPEGS, "bi_rgb_zero_padding.bmp")),
        *(pytest.param("clahe", name, marks=pytest.mark.slow) for name in JPEGS),  # a CLAHE trace of its own
    ],
)
def test_outputs_equal_opencv_on_cv2_imread(outputs, request, op, name):
    """JPEG (libjpeg's IDCT, EXIF orientation applied) and opaque 32-bit BMP: 0 pixels off OpenCV's own pipeline."""
    src = outputs[0]
    folders = {"equalize": outputs[1]["equalize"]}
    if op == "clahe":
        folders["clahe"] = request.getfixturevalue("clahe_outputs")
    gray = name.startswith("gray")
    read = cv2.imread(str(src / name), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    expected = _cv2_op(op, read[..., None] if gray else read)
    actual = cv2.imread(str(folders[op] / name.replace(".jpg", ".png").replace(".bmp", ".png")), cv2.IMREAD_UNCHANGED)
    assert_same_pixels(actual if not gray else actual[..., None], expected, f"{op} {name}:")


@pytest.mark.parametrize("op", ["equalize"])
@pytest.mark.parametrize(
    ("name", "mode"),
    [
        *((f"{name}.bmp", None) for name in sorted(BMPS)),
        ("logo.gif", "RGBA"),
        ("gray_key.png", "LA"),
        ("rgb_key.png", "RGBA"),
    ],
)
def test_outputs_are_the_op_on_what_pillow_reads_with_alpha_kept(outputs, op, name, mode):
    """BMP bit masks and transparency: the op (alpha passing through) on Pillow's reading; transparent stays so."""
    src, folders = outputs
    data = (src / name).read_bytes()
    read = BMPS[name[:-4]][1] if name.endswith(".bmp") else _pillow(data, mode)
    expected = ops.equalize_hist(read).numpy()
    actual = _read_output(folders[op] / (name[:-4] + ".png"))
    assert_same_pixels(actual, expected, f"{op} {name}:")
    if read.shape[-1] in (2, 4):
        assert (actual[..., -1] == read[..., -1]).all()


@pytest.mark.slow  # XLA compiles per image shape
def test_compiled_static_pipelines_read_the_files_as_the_general_one(outputs, tmp_path, monkeypatch):
    """Files of one size run XLA-compiled with static shapes: the header findings apply there too."""
    from tf_histeq.cli import main

    monkeypatch.setattr(_xla, "COMPILE_AFTER_VALUES", 1)  # two images of a size are enough here
    src, folders = outputs
    names = ["bi_rgb_zero_padding.bmp", "logo.gif", "gray_key.png"]
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in names:
        for copy in ("a", "b"):
            (inputs / f"{copy}_{name}").write_bytes((src / name).read_bytes())
    jobs = files.plan(
        listing.collect([str(inputs)], False, str(tmp_path / "out")).pairs, "", fmt="png", overwrite=True, compare=False
    )
    assert all(pipeline.runs_compiled(jobs)) and all(pipeline._static_key(job, True) for job in jobs)
    assert main(["equalize", str(inputs), "-o", str(tmp_path / "out"), "--format", "png"]) == 0
    for name in names:
        png = name[:-4] + ".png"
        for copy in ("a", "b"):
            assert_same_pixels(
                _read_output(tmp_path / "out" / f"{copy}_{png}"), _read_output(folders["equalize"] / png), name
            )


@pytest.mark.slow  # starts data-service servers
def test_the_data_service_reads_the_files_as_the_local_run(outputs, tmp_path, capsys):
    """The files' decoding findings travel with the elements to the service's workers."""
    from tf_histeq.cli import main

    target = local_service()
    src, folders = outputs
    assert main(["equalize", str(src), "-o", str(tmp_path), "--format", "png", "--data-service", target]) == 0
    local = sorted(p.name for p in folders["equalize"].iterdir())
    assert f"; {len(local)} done on the tf.data service" in capsys.readouterr().out  # none redone here
    assert sorted(p.name for p in tmp_path.iterdir()) == local
    for name in local:
        assert_same_pixels(_read_output(tmp_path / name), _read_output(folders["equalize"] / name), name)
