"""`tf-histeq nyul-fit` / `nyul-apply` in process: landmarks = `nyul_fit`, outputs = `nyul_standardize`, bad files.

Two NIfTI volumes and two 16-bit PNG slices of two synthetic scanners of the
CT phantom (tests/test_standardize.py's `scanner`).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_standardize import scanner
from tf_histeq import standardize, volumes
from tf_histeq.cli import main

pytest.importorskip("nibabel")
cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A folder of two volumes (int16 NIfTI) and two uint16 PNG slices; the fitted landmarks file; the arrays."""
    root = tmp_path_factory.mktemp("nyul")
    inputs = root / "in"
    inputs.mkdir()
    arrays = {}
    for i, (scale, offset, gamma) in enumerate([(3000, 100, 1.0), (2000, 500, 0.6)]):
        volume = scanner("int16", scale=scale, offset=offset, gamma=gamma, seed=i, shape=(8, 16, 16))
        volumes.write_volume(inputs / f"v{i}.nii.gz", volume)
        image = (volume[4] + 1024).astype(np.uint16)
        cv2.imwrite(str(inputs / f"s{i}.png"), image)
        arrays[f"v{i}.nii.gz"], arrays[f"s{i}.png"] = volume, image
    landmarks = root / "landmarks.json"
    assert main(["nyul-fit", str(inputs), "--landmarks", str(landmarks)]) == 0
    return root, inputs, landmarks, arrays


def test_fit_writes_the_landmarks_of_nyul_fit(files):
    _, _, landmarks, arrays = files
    document = json.loads(landmarks.read_text())
    # Sorted file order: s0.png, s1.png, v0.nii.gz, v1.nii.gz; images 2-D, volumes 3-D.
    expected = standardize.nyul_fit(
        [arrays["s0.png"][None], arrays["s1.png"][None], arrays["v0.nii.gz"], arrays["v1.nii.gz"]], spatial_dims=3
    )
    assert np.array_equal(np.array(document["landmarks"]), expected)
    assert document["cutoff"] == [0.01, 0.99] and document["output_range"] == [0.0, 100.0]
    assert document["fitted_on"] == {"files": 4, "kinds": ["images", "volumes"]}
    before = landmarks.read_bytes()
    assert main(["nyul-fit", str(files[1]), "--landmarks", str(landmarks)]) == 2  # never overwritten
    assert landmarks.read_bytes() == before


def test_apply_writes_nyul_standardize(files, tmp_path):
    _, inputs, landmarks, arrays = files
    fitted = np.array(json.loads(landmarks.read_text())["landmarks"])
    out = tmp_path / "out"
    assert main(["nyul-apply", str(inputs), "-o", str(out), "--landmarks", str(landmarks)]) == 0
    for name, array in arrays.items():
        spatial_dims = 3 if name.endswith(".nii.gz") else 2
        array = array if spatial_dims == 3 else array[..., None]  # decoded (H, W, 1)
        want = standardize.nyul_standardize(array, fitted, spatial_dims=spatial_dims).numpy()
        if spatial_dims == 3:
            got, meta = volumes.read_volume(out / name)
            assert meta.kind == "nifti"
        else:
            got = np.load(out / name.replace(".png", ".npy"))
        assert got.dtype == np.float32 and np.count_nonzero(got != want) == 0, name
    stamp = (out / "v0.nii.gz").stat().st_mtime_ns
    assert main(["nyul-apply", str(inputs), "-o", str(out), "--landmarks", str(landmarks)]) == 0
    assert (out / "v0.nii.gz").stat().st_mtime_ns == stamp  # kept


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not a JSON file"),
        ('{"landmarks": []}', "not a landmarks file of nyul-fit"),
        ('{"format": "tf_histeq.nyul_landmarks", "landmarks": [1, 2], "cutoff": [0.01, 0.99]}', "landmarks.shape"),
        (
            '{"format": "tf_histeq.nyul_landmarks", "landmarks": [NaN, 1,2,3,4,5,6,7,8,9,10,11,12], '
            '"cutoff": [0.01, 0.99]}',
            "be finite",
        ),
        (
            '{"format": "tf_histeq.nyul_landmarks", "landmarks": [12,11,10,9,8,7,6,5,4,3,2,1,0], '
            '"cutoff": [0.01, 0.99]}',
            "be sorted",
        ),
    ],
    ids=["not-json", "no-format", "length", "nan", "unsorted"],
)
def test_bad_landmarks_files_name_the_file(files, tmp_path, capsys, text, message):
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    out = tmp_path / "out"
    assert main(["nyul-apply", str(files[1]), "-o", str(out), "--landmarks", str(bad)]) == 2
    error = capsys.readouterr().err
    assert f"--landmarks {str(bad)!r}" in error and message in error
    assert not out.exists()
