"""`tf-histeq equalize|match|clahe` on volume files: NIfTI (`.nii`, `.nii.gz`) and TIFF stacks.

A NIfTI is one volume and a TIFF of several pages a stack, both run with
`spatial_dims=3` (one histogram per volume); a one-page TIFF stays a 2-D image.
Outputs are compared with OpenCV on the volume's voxels (`cv2.equalizeHist` of
all voxels as one image: a global equalization does not depend on the
layout), with scikit-image for matching, and with the library's functions;
counts of differing voxels are 0. The files keep their dtype, NIfTI header
(affine, spacing, description) and TIFF metadata. Bad files fail by name and
leave nothing behind.
"""

from __future__ import annotations

import gzip
import io
import sys

import numpy as np
import pytest

import tf_histeq
from tests._files import decode, write_png
from tests._files import run_cli as _run
from tests._references import assert_same_pixels
from tf_histeq import samples
from tf_histeq.cli import main, volfiles
from tf_histeq.volumes import read_volume

nibabel = pytest.importorskip("nibabel")
tifffile = pytest.importorskip("tifffile")
cv2 = pytest.importorskip("cv2")

SHAPE = (8, 32, 32)  # (D, H, W)
WINDOW = {"value_range": (-1024, 3071), "bins": 4096}
AFFINE = np.array([[-0.8, 0, 0, 90], [0, 0.8, 0, -120], [0, 0, 2.5, -60], [0, 0, 0, 1]])


def _nifti(path, volume: np.ndarray) -> None:
    """Write a `(D, H, W)` volume as NIfTI with an anisotropic affine, units and a description."""
    image = nibabel.Nifti1Image(volume.transpose(2, 1, 0), AFFINE)
    image.header.set_xyzt_units("mm", "sec")
    image.header["descrip"] = b"tf_histeq cli test"
    image.set_data_dtype(volume.dtype)
    nibabel.save(image, str(path))


def _low_contrast8(seed: int = 0) -> np.ndarray:
    """A uint8 volume squeezed into 60 levels: the CT phantom's anatomy at low contrast."""
    ct = samples.ct_phantom(SHAPE, seed=seed).astype(np.float64)
    return np.clip(np.rint(100 + np.clip(ct, -1100, 1300) / 40), 0, 255).astype(np.uint8)


def _equalized8(volume: np.ndarray) -> np.ndarray:
    """`cv2.equalizeHist` of all the voxels of a uint8 volume, as one image."""
    return cv2.equalizeHist(np.ascontiguousarray(volume.reshape(-1, volume.shape[-1]))).reshape(volume.shape)


def _cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stdout", out)
        mp.setattr(sys, "stderr", err)
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A folder mixing volumes and images, bad volume files, and one run of `equalize` over the good ones."""
    root = tmp_path_factory.mktemp("volumes")
    good = root / "good"
    good.mkdir()
    volumes = {
        "ct.nii.gz": samples.ct_phantom(SHAPE),
        "low.nii": _low_contrast8(),
        "stack.tif": (samples.ct_phantom(SHAPE, seed=1) + 2048).astype(np.uint16),
        "page.tif": _low_contrast8(seed=2)[3],
    }
    _nifti(good / "ct.nii.gz", volumes["ct.nii.gz"])
    _nifti(good / "low.nii", volumes["low.nii"])
    imagej = {"spacing": 2.5, "unit": "um", "axes": "ZYX"}
    tifffile.imwrite(good / "stack.tif", volumes["stack.tif"], imagej=True, metadata=imagej, resolution=(2.0, 2.0))
    tifffile.imwrite(good / "page.tif", volumes["page.tif"])
    image = samples.chest_xray((24, 32), seed=3)
    write_png(good / "xray.png", image)
    result = _cli(["equalize", good, "-o", root / "out", "--compare"])
    return root, volumes, image, result


class TestEqualize:
    def test_a_folder_of_volumes_and_images(self, data):
        root, _, _, (code, stdout, err) = data
        assert code == 0, err
        assert "5 processed, 0 skipped (output exists), 0 failed" in stdout
        names = sorted(p.name for p in (root / "out").iterdir())
        expected = ["ct.nii.gz", "low.nii", "page.tif", "stack.tif", "xray.png"]
        assert names == sorted(expected + [name + ".compare.png" for name in expected])

    def test_nifti_voxels_are_one_histogram_per_volume(self, data):
        root, volumes, _, _ = data
        low, _ = read_volume(root / "out" / "low.nii")
        assert_same_pixels(low, _equalized8(volumes["low.nii"]), "uint8 NIfTI vs cv2.equalizeHist of its voxels")
        ct, _ = read_volume(root / "out" / "ct.nii.gz")
        expected = tf_histeq.equalize_hist(volumes["ct.nii.gz"], spatial_dims=3).numpy()
        assert_same_pixels(ct, expected, "int16 NIfTI vs equalize_hist(spatial_dims=3)")

    def test_nifti_keeps_dtype_affine_spacing_and_header(self, data):
        root, _, _, _ = data
        for name in ("ct.nii.gz", "low.nii"):
            source, output = nibabel.load(root / "good" / name), nibabel.load(root / "out" / name)
            assert output.get_data_dtype() == source.get_data_dtype()
            np.testing.assert_array_equal(output.affine, source.affine)
            assert output.header.get_zooms() == source.header.get_zooms() == (0.8, 0.8, 2.5)
            assert output.header.get_xyzt_units() == ("mm", "sec")
            assert output.header["descrip"] == b"tf_histeq cli test"
            assert output.shape == source.shape == SHAPE[::-1]

    def test_tiff_stack_is_a_volume_and_keeps_its_metadata(self, data):
        root, volumes, _, _ = data
        stack, meta = read_volume(root / "out" / "stack.tif")
        expected = tf_histeq.equalize_hist(volumes["stack.tif"], spatial_dims=3).numpy()
        assert_same_pixels(stack, expected, "uint16 TIFF stack vs equalize_hist(spatial_dims=3)")
        assert stack.dtype == np.uint16 and meta.spacing == (2.5, 0.5, 0.5) and meta.unit == "um"
        # One histogram for the stack, not one per page: a page alone equalizes differently.
        page = tf_histeq.equalize_hist(volumes["stack.tif"][0]).numpy()
        assert np.count_nonzero(page != stack[0]) > 0.5 * page.size

    def test_a_one_page_tiff_stays_a_2d_image(self, data):
        root, volumes, _, _ = data
        with tifffile.TiffFile(root / "out" / "page.tif") as tif:
            assert len(tif.pages) == 1 and tif.series[0].shape == (32, 32)
            page = tif.asarray()
        assert_same_pixels(page, cv2.equalizeHist(volumes["page.tif"]), "one-page TIFF vs cv2.equalizeHist")

    def test_images_beside_volumes_are_processed_as_before(self, data):
        root, _, image, _ = data
        assert_same_pixels(decode(root / "out" / "xray.png")[..., 0], cv2.equalizeHist(image))

    def test_compare_figure_of_a_volume_shows_three_slices(self, data):
        root, _, _, _ = data
        figure = decode(root / "out" / "ct.nii.gz.compare.png")
        assert figure.shape[1] == 3 * 250  # three panels of 2.5 in at 100 dpi
        assert figure[..., :3].std() > 20

    def test_rerun_keeps_every_output(self, data):
        root, _, _, _ = data
        before = {p.name: p.read_bytes() for p in (root / "out").iterdir()}
        code, stdout, err = _cli(["equalize", root / "good", "-o", root / "out", "--compare"])
        assert code == 0, err
        assert "0 processed, 5 skipped (output exists), 0 failed" in stdout
        assert {p.name: p.read_bytes() for p in (root / "out").iterdir()} == before

    def test_value_range_and_bins_reach_the_volume(self, data, tmp_path):
        root, volumes, _, _ = data
        code, _, err = _cli(
            [
                "equalize",
                root / "good" / "ct.nii.gz",
                "-o",
                tmp_path,
                "--value-range",
                "-1024",
                "3071",
                "--bins",
                "4096",
            ]
        )
        assert code == 0, err
        expected = tf_histeq.equalize_hist(volumes["ct.nii.gz"], spatial_dims=3, **WINDOW).numpy()
        assert_same_pixels(read_volume(tmp_path / "ct.nii.gz")[0], expected)

    def test_a_stack_of_rgb_pages_is_equalized_per_channel(self, tmp_path):
        rgb = np.stack([_low_contrast8(seed)[:4, :16, :16] for seed in (4, 5, 6)], axis=-1)
        tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
        code, _, err = _cli(["equalize", tmp_path / "rgb.tif", "-o", tmp_path / "out"])
        assert code == 0, err
        out, _ = read_volume(tmp_path / "out" / "rgb.tif")
        expected = np.stack([_equalized8(np.ascontiguousarray(rgb[..., c])) for c in range(3)], axis=-1)
        assert_same_pixels(out, expected, "RGB stack vs cv2.equalizeHist per channel of its voxels")


class TestMatch:
    def test_an_image_and_a_volume_matched_to_a_volume_reference(self, data, tmp_path):
        root, volumes, image, _ = data
        exposure = pytest.importorskip("skimage.exposure")
        args = ["match", root / "good" / "xray.png", root / "good" / "low.nii", "-o", tmp_path]
        code, _, err = _cli([*args, "--reference", root / "good" / "page.tif"])
        assert code == 0, err
        reference = volumes["page.tif"]
        expected = np.round(exposure.match_histograms(image, reference)).astype(np.uint8)
        assert_same_pixels(decode(tmp_path / "xray.png")[..., 0], expected, "image vs skimage")
        # skimage wants the same rank: the reference's pixels as a volume of one slice (it counts them all).
        expected = np.round(exposure.match_histograms(volumes["low.nii"], reference[None])).astype(np.uint8)
        assert_same_pixels(read_volume(tmp_path / "low.nii")[0], expected, "volume vs skimage")

    @pytest.mark.slow  # a second match run; the default tier has a volume-file reference above
    def test_a_nifti_reference(self, data, tmp_path):
        root, volumes, image, _ = data
        exposure = pytest.importorskip("skimage.exposure")
        code, _, err = _cli(
            ["match", root / "good" / "xray.png", "-o", tmp_path, "--reference", root / "good" / "low.nii"]
        )
        assert code == 0, err
        reference = volumes["low.nii"].reshape(-1, SHAPE[2])  # every voxel, as one image of the same rank
        expected = np.round(exposure.match_histograms(image, reference)).astype(np.uint8)
        assert_same_pixels(decode(tmp_path / "xray.png")[..., 0], expected, "vs skimage, volume reference")

    @pytest.mark.slow  # a third match run
    def test_a_volume_matched_to_a_png_reference(self, data, tmp_path):
        root, volumes, image, _ = data
        exposure = pytest.importorskip("skimage.exposure")
        code, _, err = _cli(
            ["match", root / "good" / "ct.nii.gz", "-o", tmp_path, "--reference", root / "good" / "xray.png"]
        )
        assert code == 1, err  # int16 voxels (65536 levels), an 8-bit reference: refused by match_histograms
        assert f"{root / 'good' / 'ct.nii.gz'}: `reference.bins` must be 65536" in err and "reference.bins=256" in err
        code, _, err = _cli(
            ["match", root / "good" / "low.nii", "-o", tmp_path, "--reference", root / "good" / "xray.png"]
        )
        assert code == 0, err
        expected = np.round(exposure.match_histograms(volumes["low.nii"], image[None])).astype(np.uint8)
        assert_same_pixels(read_volume(tmp_path / "low.nii")[0], expected, "vs skimage, PNG reference")

    def test_a_reference_mixing_images_and_volumes_is_refused(self, data, tmp_path):
        root, _, _, _ = data
        code, _, err = _cli(["match", root / "good" / "xray.png", "-o", tmp_path / "o", "--reference", root / "good"])
        assert code == 2 and "mixes volume files" in err, err
        assert not (tmp_path / "o").exists()


def _no_partial_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class TestRefusals:
    def test_clahe_refuses_volumes_by_name_and_does_images(self, data, tmp_path):
        root, volumes, _, _ = data
        good = root / "good"
        code, stdout, err = _cli(["clahe", good / "ct.nii.gz", good / "stack.tif", good / "page.tif", "-o", tmp_path])
        assert code == 1
        assert "1 processed, 0 skipped (output exists), 2 failed" in stdout
        for name in ("ct.nii.gz", "stack.tif"):
            assert f"{good / name}: {volfiles.CLAHE_REFUSAL}" in err
        assert "tf_histeq.equalize_adapthist" in volfiles.CLAHE_REFUSAL
        assert _no_partial_files(tmp_path) == ["page.tif"]
        assert_same_pixels(
            read_volume(tmp_path / "page.tif", single_page=True)[0][0], tf_histeq.clahe(volumes["page.tif"]).numpy()
        )

    def test_a_time_series_is_refused_by_name(self, tmp_path):
        series = np.arange(8 * 8 * 4 * 3, dtype=np.int16).reshape(8, 8, 4, 3)
        nibabel.save(nibabel.Nifti1Image(series, np.eye(4)), str(tmp_path / "fmri.nii.gz"))
        code, _, err = _cli(["equalize", tmp_path / "fmri.nii.gz", "-o", tmp_path / "out"])
        assert code == 1
        assert (
            f"{tmp_path / 'fmri.nii.gz'}: a NIfTI of shape (8, 8, 4, 3) (x, y, z, t, ...) is not one 3-D volume" in err
        )
        assert "nibabel.four_to_three" in err
        assert _no_partial_files(tmp_path / "out") == []

    def test_a_truncated_nifti_fails_by_name_and_writes_nothing(self, data, tmp_path):
        root, _, _, _ = data
        packed = (root / "good" / "ct.nii.gz").read_bytes()
        (tmp_path / "cut.nii.gz").write_bytes(packed[: len(packed) // 2])
        raw = gzip.decompress(packed)
        (tmp_path / "short.nii").write_bytes(raw[: len(raw) - 100])
        code, stdout, err = _cli(["equalize", tmp_path / "cut.nii.gz", tmp_path / "short.nii", "-o", tmp_path / "out"])
        assert code == 1 and "0 processed, 0 skipped (output exists), 2 failed" in stdout
        assert f"{tmp_path / 'cut.nii.gz'}: not a complete gzip stream (truncated or damaged)" in err
        assert f"{tmp_path / 'short.nii'}: truncated: its header describes int16 voxels of shape (32, 32, 8)" in err
        assert _no_partial_files(tmp_path / "out") == []

    def test_float_voxels_outside_0_255_need_a_value_range(self, tmp_path):
        volume = samples.ct_phantom(SHAPE).astype(np.float32)
        _nifti(tmp_path / "ct.nii", volume)
        code, _, err = _cli(["equalize", tmp_path / "ct.nii", "-o", tmp_path / "out"])
        assert code == 1 and "float32 voxels span -2048..1" in err and "pass --value-range LOW HIGH" in err, err
        assert _no_partial_files(tmp_path / "out") == []
        code, _, err = _cli(["equalize", tmp_path / "ct.nii", "-o", tmp_path / "out", "--value-range", "-1024", "3071"])
        assert code == 0, err
        out, _ = read_volume(tmp_path / "out" / "ct.nii")
        expected = tf_histeq.equalize_hist(volume, spatial_dims=3, value_range=(-1024, 3071)).numpy()
        assert out.dtype == np.float32
        assert_same_pixels(out, expected)

    def test_without_nibabel_the_message_says_what_to_install(self, data, tmp_path, monkeypatch):
        root, _, _, _ = data
        monkeypatch.setitem(sys.modules, "nibabel", None)
        code, stdout, err = _cli(["equalize", root / "good" / "low.nii", root / "good" / "page.tif", "-o", tmp_path])
        assert code == 1 and "1 processed, 0 skipped (output exists), 1 failed" in stdout
        assert f"{root / 'good' / 'low.nii'}: reading and writing NIfTI files needs nibabel: " in err
        assert 'pip install "tf_histeq[volumes]"' in err
        assert _no_partial_files(tmp_path) == ["page.tif"]  # TIFF files need tifffile only

    def test_an_existing_output_is_kept_and_overwrite_replaces_it(self, data, tmp_path):
        root, volumes, _, _ = data
        (tmp_path / "low.nii").write_bytes(b"mine")
        code, stdout, _ = _cli(["equalize", root / "good" / "low.nii", "-o", tmp_path])
        assert code == 0 and "0 processed, 1 skipped" in stdout
        assert (tmp_path / "low.nii").read_bytes() == b"mine"
        code, stdout, _ = _cli(["equalize", root / "good" / "low.nii", "-o", tmp_path, "--overwrite"])
        assert code == 0 and "1 processed, 0 skipped" in stdout
        assert_same_pixels(read_volume(tmp_path / "low.nii")[0], _equalized8(volumes["low.nii"]))
        assert _no_partial_files(tmp_path) == ["low.nii"]


def test_ctrl_c_between_volumes_keeps_the_finished_ones(data, tmp_path, monkeypatch):
    root, volumes, _, _ = data
    calls = []
    transform = volfiles.transform

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return transform(*args, **kwargs)

    monkeypatch.setattr(volfiles, "transform", interrupted)
    good = root / "good"
    code, _, err = _cli(["equalize", good / "low.nii", good / "ct.nii.gz", good / "stack.tif", "-o", tmp_path])
    assert code == 130 and "interrupted: 1 processed, 0 failed, 2 not done" in err, err
    assert _no_partial_files(tmp_path) == ["low.nii"]  # complete, and no temporary file
    assert_same_pixels(read_volume(tmp_path / "low.nii")[0], _equalized8(volumes["low.nii"]))


def test_help_says_what_a_volume_file_is(capsys):
    code, stdout, _ = _run(["equalize", "--help"], capsys)
    assert code == 0
    text = " ".join(stdout.split())
    assert "a NIfTI (.nii, .nii.gz) is one volume" in text and "a TIFF of one page stays a 2-D image" in text
    assert 'pip install "tf_histeq[volumes]"' in text
    code, stdout, _ = _run(["clahe", "--help"], capsys)
    assert "tf_histeq.equalize_adapthist" in " ".join(stdout.split())


class TestSlices:
    def test_planes_are_drawn_to_scale_and_bad_input_is_named(self):
        plot = pytest.importorskip("tf_histeq.plot")
        volume = samples.ct_phantom(SHAPE)
        cubic = plot.to_array(plot.slices([volume], value_range=(-1024, 3071), dpi=40))
        thick = plot.to_array(plot.slices([volume], value_range=(-1024, 3071), spacing=(8.0, 1.0, 1.0), dpi=40))
        assert thick.shape[0] > cubic.shape[0]  # 8 slices of 8 mm: coronal and sagittal planes 64 mm tall, not 8
        with pytest.raises(ValueError, match=r"volumes\[1\]\.shape.*\(D, H, W\), the same for every volume"):
            plot.slices([volume, volume[:4]])
        with pytest.raises(ValueError, match=r"center.*inside the shape \(8, 32, 32\)"):
            plot.slices([volume], center=(8, 0, 0))
        with pytest.raises(TypeError, match=r"volumes.*list or tuple"):
            plot.slices(volume)
