"""`tf_histeq.volumes`: NIfTI and TIFF stacks read and written back without loss.

Round trips keep the voxels bit for bit, the dtype, the NIfTI header byte for
byte (affine, qform/sform, pixdim, units, scaling, extensions) and the TIFF
metadata (ImageJ, resolution, description); nibabel's own test files come
back byte-identical. Damaged files and files that are not one 3-D volume are
refused with the file's name; nothing is ever overwritten or written half.
"""

from __future__ import annotations

import gzip
import io
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from tf_histeq import volumes
from tf_histeq.volumes import read_volume, write_volume

nibabel = pytest.importorskip("nibabel")
tifffile = pytest.importorskip("tifffile")

NIBABEL_DATA = pathlib.Path(nibabel.__file__).parent / "tests" / "data"
NIBABEL_3D = ["anatomical.nii", "standard.nii.gz", "reoriented_anat_moved.nii", "resampled_anat_moved.nii"]
NIBABEL_4D = ["functional.nii", "example4d.nii.gz", "example_nifti2.nii.gz"]


def voxels(shape, dtype, salt=0) -> np.ndarray:
    """A smooth volume with noise, covering much of the dtype's range (floats: HU-like values)."""
    rng = np.random.default_rng(salt)
    grids = np.meshgrid(*(np.linspace(0, 1, n) for n in shape[:3]), indexing="ij")
    unit = (0.5 * grids[0] + 0.3 * grids[1] + 0.2 * grids[2]) + rng.normal(0, 0.05, shape[:3])
    if len(shape) == 4:
        unit = unit[..., None] + rng.normal(0, 0.05, shape)
    if np.dtype(dtype).kind == "f":
        return (unit * 3000 - 1000).astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.rint(info.min + unit * (int(info.max) - int(info.min))), info.min, info.max).astype(dtype)


def nifti_file(path, data_xyz, *, version=1, endian="<", slope=None, inter=None, extension=False):
    """A NIfTI written by nibabel with an oblique affine, distinct qform/sform, units and (optionally) scaling."""
    image_class = nibabel.Nifti1Image if version == 1 else nibabel.Nifti2Image
    affine = np.array([[-0.9, 0.1, 0, 90], [0.05, 0.8, 0.1, -120], [0, -0.1, 2.5, -60], [0, 0, 0, 1]])
    header = image_class.header_class(endianness=endian)
    image = image_class(data_xyz, affine, header)
    image.header.set_qform(np.diag([0.9, 0.8, 2.5, 1]), code="scanner")
    image.header.set_sform(affine, code="aligned")
    image.header.set_xyzt_units("mm", "sec")
    image.header["descrip"] = b"tf_histeq test volume"
    if extension:
        image.header.extensions.append(nibabel.nifti1.Nifti1Extension("comment", b"kept with the header"))
    if slope is not None:
        image.header.set_slope_inter(slope, inter)
    image.set_data_dtype(data_xyz.dtype)
    nibabel.save(image, str(path))
    if slope is not None:  # nibabel recomputes the scaling on saving: set the stored fields as a scanner would
        packed = pathlib.Path(path).read_bytes()
        raw = bytearray(gzip.decompress(packed) if str(path).endswith(".gz") else packed)
        header = image.header_class.from_fileobj(io.BytesIO(bytes(raw)))
        header.set_slope_inter(slope, inter)
        block = header.binaryblock
        raw[: len(block)] = block
        data = gzip.compress(bytes(raw)) if str(path).endswith(".gz") else bytes(raw)
        pathlib.Path(path).write_bytes(data)
    return path


class TestNibabelFiles:
    @pytest.mark.parametrize("name", NIBABEL_3D)
    def test_round_trip_is_byte_identical(self, name, tmp_path):
        source = NIBABEL_DATA / name
        if not source.exists():
            pytest.skip(f"nibabel's test data lacks {name}")
        array, meta = read_volume(source)
        image = nibabel.load(source)
        stored = np.asanyarray(image.dataobj.get_unscaled())
        assert array.dtype == image.get_data_dtype().newbyteorder("=")
        assert np.array_equal(array, stored.reshape(stored.shape[:3]).transpose(2, 1, 0), equal_nan=True)
        assert np.array_equal(meta.affine, image.affine)
        write_volume(tmp_path / name, array, meta)
        read = (lambda p: gzip.decompress(p.read_bytes())) if name.endswith(".gz") else (lambda p: p.read_bytes())
        assert read(tmp_path / name) == read(source)

    @pytest.mark.parametrize("name", NIBABEL_4D)
    def test_time_series_are_refused_by_name_and_shape(self, name):
        source = NIBABEL_DATA / name
        if not source.exists():
            pytest.skip(f"nibabel's test data lacks {name}")
        shape = nibabel.load(source).shape
        with pytest.raises(ValueError, match=rf"{name}.*a NIfTI of shape {re.escape(str(shape))}.*four_to_three"):
            read_volume(source)


class TestNifti:
    @pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
    @pytest.mark.parametrize(
        ("dtype", "version", "endian"),
        [(np.int16, 1, "<"), (np.uint16, 1, ">"), (np.uint8, 2, "<"), (np.float32, 1, ">"), (np.float64, 2, ">")],
    )
    def test_round_trip_keeps_voxels_dtype_and_header(self, tmp_path, suffix, dtype, version, endian):
        xyz = voxels((9, 7, 5), dtype).transpose(2, 1, 0)  # stored (X, Y, Z) = (5, 7, 9)
        source = nifti_file(tmp_path / f"in{suffix}", xyz, version=version, endian=endian, extension=True)
        array, meta = read_volume(source)
        assert array.shape == (9, 7, 5) and array.dtype == np.dtype(dtype) and array.dtype.isnative
        assert np.array_equal(array, xyz.transpose(2, 1, 0))
        assert array[4, 3, 1] == xyz[1, 3, 4]  # (D, H, W) = (k, j, i)
        assert meta.spacing == pytest.approx((2.5, 0.8, 0.9)) and meta.unit == "mm"
        out = tmp_path / f"out{suffix}"
        write_volume(out, array, meta)
        again, kept = read_volume(out)
        assert again.dtype == array.dtype and np.array_equal(again, array)
        assert kept.header.binaryblock == meta.header.binaryblock
        assert [e.get_content() for e in kept.header.extensions] == [b"kept with the header"]
        written = nibabel.load(out)
        assert np.array_equal(written.affine, nibabel.load(source).affine)
        assert written.header.get_qform(coded=True)[1] == 1 and written.header.get_sform(coded=True)[1] == 2
        assert written.header.get_xyzt_units() == ("mm", "sec")
        assert sorted(os.listdir(tmp_path)) == sorted([f"in{suffix}", f"out{suffix}"])  # no temporary file left

    def test_scaled_data_is_read_as_stored_and_written_with_its_scaling(self, tmp_path):
        stored = voxels((6, 8, 10), np.uint16).transpose(2, 1, 0) // 16  # 12-bit CT, HU = stored - 1024
        source = nifti_file(tmp_path / "ct.nii.gz", stored, slope=1.0, inter=-1024.0)
        array, meta = read_volume(source)
        assert array.dtype == np.uint16 and np.array_equal(array, stored.transpose(2, 1, 0))
        assert meta.scaling == (1.0, -1024.0)
        physical = nibabel.load(source).get_fdata()
        assert np.array_equal(physical.transpose(2, 1, 0), array * 1.0 - 1024.0)
        write_volume(tmp_path / "out.nii.gz", array[::-1].copy(), meta)  # a processed volume: same meaning
        written = nibabel.load(tmp_path / "out.nii.gz")
        assert written.dataobj.slope == 1.0 and written.dataobj.inter == -1024.0
        assert np.array_equal(np.asanyarray(written.dataobj.get_unscaled()), stored[:, :, ::-1])

    def test_a_new_dtype_is_written_as_given(self, tmp_path):
        array, meta = read_volume(nifti_file(tmp_path / "in.nii", voxels((4, 5, 6), np.int16).transpose(2, 1, 0)))
        write_volume(tmp_path / "out.nii", array.astype(np.float32) / 7, meta)
        again, kept = read_volume(tmp_path / "out.nii")
        assert again.dtype == np.float32 and np.array_equal(again, array.astype(np.float32) / 7)
        assert np.array_equal(kept.affine, meta.affine)

    def test_a_trailing_axis_of_one_is_read_as_3d_and_written_back(self, tmp_path):
        xyzt = voxels((5, 6, 7), np.int16).transpose(2, 1, 0)[..., None]
        source = nifti_file(tmp_path / "in.nii", xyzt)
        array, meta = read_volume(source)
        assert array.shape == (5, 6, 7) and meta.stored_shape == (7, 6, 5, 1)
        write_volume(tmp_path / "out.nii", array, meta)
        assert (tmp_path / "out.nii").read_bytes() == source.read_bytes()

    def test_without_meta_a_plain_file_with_unit_spacing(self, tmp_path):
        array = voxels((3, 4, 5), np.int16)
        write_volume(tmp_path / "new.nii.gz", array)
        again, meta = read_volume(tmp_path / "new.nii.gz")
        assert np.array_equal(again, array) and meta.spacing == (1.0, 1.0, 1.0) and meta.scaling is None

    @pytest.mark.parametrize("cut", [0.5, 0.95])
    def test_a_truncated_gz_is_refused_by_name(self, tmp_path, cut):
        source = nifti_file(tmp_path / "in.nii.gz", voxels((8, 8, 8), np.int16))
        data = source.read_bytes()
        (tmp_path / "cut.nii.gz").write_bytes(data[: int(len(data) * cut)])
        with pytest.raises(ValueError, match=r"cut\.nii\.gz'?: not a complete gzip stream"):
            read_volume(tmp_path / "cut.nii.gz")

    def test_a_truncated_nii_is_refused_with_the_shape(self, tmp_path):
        data = nifti_file(tmp_path / "in.nii", voxels((8, 8, 8), np.int16)).read_bytes()
        (tmp_path / "cut.nii").write_bytes(data[:-10])
        with pytest.raises(ValueError, match=r"cut\.nii'?: truncated: .*int16 voxels of shape \(8, 8, 8\)"):
            read_volume(tmp_path / "cut.nii")
        (tmp_path / "junk.nii").write_bytes(b"not a nifti file at all")
        with pytest.raises(ValueError, match=r"junk\.nii'?: not a NIfTI file"):
            read_volume(tmp_path / "junk.nii")

    def test_a_multichannel_array_is_refused_for_nifti(self, tmp_path):
        with pytest.raises(ValueError, match=r"out\.nii.*\(D, H, W, 1\).*\(2, 3, 4, 3\)"):
            write_volume(tmp_path / "out.nii", np.zeros((2, 3, 4, 3), np.uint8))
        assert os.listdir(tmp_path) == []


class TestNoLoss:
    def test_an_existing_file_is_never_replaced_unless_asked(self, tmp_path):
        target = tmp_path / "out.nii"
        target.write_bytes(b"the user's file")
        with pytest.raises(FileExistsError, match=r"out\.nii'? exists; it is kept"):
            write_volume(target, voxels((3, 4, 5), np.uint8))
        assert target.read_bytes() == b"the user's file" and os.listdir(tmp_path) == ["out.nii"]
        write_volume(target, voxels((3, 4, 5), np.uint8), overwrite=True)
        assert np.array_equal(read_volume(target)[0], voxels((3, 4, 5), np.uint8))

    def test_a_failed_write_leaves_nothing(self, tmp_path):
        (tmp_path / "folder-is-a-file").write_bytes(b"")
        with pytest.raises(OSError):
            write_volume(tmp_path / "folder-is-a-file" / "out.tif", voxels((3, 4, 5), np.uint8))
        assert os.listdir(tmp_path) == ["folder-is-a-file"]

    def test_names_and_kinds(self, tmp_path):
        with pytest.raises(ValueError, match=r"out\.png'?: not a volume file name; expected one ending in \.nii"):
            write_volume(tmp_path / "out.png", voxels((3, 4, 5), np.uint8))
        array, meta = read_volume(nifti_file(tmp_path / "in.nii", voxels((3, 4, 5), np.uint8)))
        with pytest.raises(ValueError, match=r"out\.tif'?: `meta` is of a nifti file"):
            write_volume(tmp_path / "out.tif", array, meta)
        with pytest.raises(ValueError, match=r"`array` must be a non-empty \(D, H, W\).*shape \(4, 5\)"):
            write_volume(tmp_path / "out.tif", np.zeros((4, 5), np.uint8))
        assert os.listdir(tmp_path) == ["in.nii"]


class TestTiff:
    def test_imagej_stack_keeps_spacing_resolution_and_metadata(self, tmp_path):
        stack = voxels((6, 9, 11), np.uint16)
        source = tmp_path / "in.tif"
        tifffile.imwrite(
            source,
            stack,
            imagej=True,
            resolution=(1 / 0.35, 1 / 0.3),
            metadata={"axes": "ZYX", "spacing": 1.5, "unit": "um", "min": 10, "max": 60000, "Labels": list("abcdef")},
        )
        array, meta = read_volume(source)
        assert array.dtype == np.uint16 and np.array_equal(array, stack)
        assert meta.spacing == pytest.approx((1.5, 0.3, 0.35)) and meta.unit == "um"
        write_volume(tmp_path / "out.tif", array, meta)
        again, kept = read_volume(tmp_path / "out.tif")
        assert np.array_equal(again, stack) and kept.tiff == meta.tiff and kept.spacing == meta.spacing
        with tifffile.TiffFile(tmp_path / "out.tif") as tif:
            assert tif.imagej_metadata["Labels"] == list("abcdef") and tif.series[0].axes == "ZYX"

    @pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint8])
    def test_plain_stack_keeps_description_resolution_and_compression(self, tmp_path, dtype):
        stack = voxels((4, 10, 12), dtype)
        source = tmp_path / "in.tiff"
        tifffile.imwrite(
            source,
            stack,
            photometric="minisblack",
            resolution=(300, 150),
            resolutionunit="inch",
            description="scanner notes",
            metadata=None,
            compression="zlib",
        )
        array, meta = read_volume(source)
        assert array.dtype == np.dtype(dtype) and np.array_equal(array, stack)
        assert meta.spacing == pytest.approx((None, 1 / 150, 1 / 300)) and meta.unit == "inch"
        write_volume(tmp_path / "out.tiff", array, meta)
        again, kept = read_volume(tmp_path / "out.tiff")
        assert np.array_equal(again, stack) and kept.tiff == meta.tiff
        assert kept.tiff["description"] == "scanner notes" and kept.tiff["compression"] == 8

    def test_rgb_stack(self, tmp_path):
        stack = voxels((3, 8, 9, 3), np.uint8)
        tifffile.imwrite(tmp_path / "in.tif", stack, photometric="rgb")
        array, meta = read_volume(tmp_path / "in.tif")
        assert array.shape == (3, 8, 9, 3) and np.array_equal(array, stack)
        write_volume(tmp_path / "out.tif", array, meta)
        assert np.array_equal(read_volume(tmp_path / "out.tif")[0], stack)

    def test_not_a_stack_is_refused_by_name_and_shape(self, tmp_path):
        tifffile.imwrite(tmp_path / "flat.tif", voxels((1, 8, 9), np.uint8)[0])
        with pytest.raises(ValueError, match=r"flat\.tif'?: holds an image of shape \(8, 9\), axes 'YX', not a 3-D"):
            read_volume(tmp_path / "flat.tif")
        hyper = voxels((3, 2, 8, 9), np.uint16)
        tifffile.imwrite(tmp_path / "hyper.tif", hyper, imagej=True, metadata={"axes": "ZCYX"})
        with pytest.raises(ValueError, match=r"hyper\.tif'?: holds an image of shape \(3, 2, 8, 9\), axes 'ZCYX'"):
            read_volume(tmp_path / "hyper.tif")
        with tifffile.TiffWriter(tmp_path / "two.tif") as tif:
            tif.write(voxels((2, 8, 9), np.uint8), photometric="minisblack")
            tif.write(voxels((2, 5, 5), np.uint8), photometric="minisblack")
        with pytest.raises(ValueError, match=r"two\.tif'?: holds 2 image series"):
            read_volume(tmp_path / "two.tif")

    @pytest.mark.parametrize("compression", [None, "zlib"])
    def test_a_truncated_tiff_is_refused_by_name(self, tmp_path, compression):
        tifffile.imwrite(
            tmp_path / "in.tif", voxels((4, 30, 40), np.uint16), photometric="minisblack", compression=compression
        )
        data = (tmp_path / "in.tif").read_bytes()
        for cut in (len(data) // 2, 5):
            (tmp_path / "cut.tif").write_bytes(data[:cut])
            with pytest.raises(ValueError, match=r"cut\.tif'?: not a readable TIFF"):
                read_volume(tmp_path / "cut.tif")


def test_the_module_imports_no_tensorflow():
    code = "import sys, tf_histeq.volumes; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(ImportError, match=r'pip install "tf_histeq\[volumes\]"'):
        volumes._nibabel()
