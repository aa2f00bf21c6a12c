"""tf_histeq.standardize against TorchIO's HistogramStandardization and MONAI's intensity transforms.

Slow tier: TorchIO and MONAI import PyTorch (about 15 s on 2 cores), once,
in a module fixture. The data are two synthetic scanners of the CT phantom
(tests/test_standardize.py's `two_scanners`), as 3-D volumes and as 2-D slices.

What is compared, and the tolerance of each comparison:

- Nyúl landmarks: `nyul_fit` vs `HistogramStandardization.train` on NIfTI files
  (with a mask file per image): |difference| <= 1e-6 of the standard range
  (measured: below 1e-15; the sums are taken in another order).
- Nyúl apply: `nyul_standardize` vs the transform with the same landmarks, with
  the mask image as `masking_method`: 0 differing voxels. With our landmarks,
  at most 1 float32 ulp apart.
- Windows: `window` vs `ScaleIntensityRange` for every preset: 0 differing.
- Percentile scaling: `scale_intensity_percentiles` vs
  `ScaleIntensityRangePercentiles`: 0 differing where MONAI takes its
  percentiles with `np.percentile` (volumes over 1,000,000 voxels, and, for
  the small matrix, MONAI's transform with its `percentile` routed to that
  branch so that masks can be applied); on small images MONAI uses
  `torch.quantile` in float32, whose rounded percentiles move outputs by at
  most 4e-6 of the output range (measured, asserted).

Integer images go to MONAI as float32 (what its `LoadImage` returns);
`torch.quantile` refuses integer tensors.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests.test_standardize import DTYPES, body_mask, two_scanners

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def refs():
    torch = pytest.importorskip("torch")
    tio = pytest.importorskip("torchio")
    monai = pytest.importorskip("monai.transforms")
    from monai.transforms.intensity import array as monai_array
    from torchio.transforms import HistogramStandardization

    return {"torch": torch, "tio": tio, "monai": monai, "monai_array": monai_array, "hs": HistogramStandardization}


def _volumes(dtype, spatial_dims):
    """Four images from the two scanners: (N, D, H, W, 1) volumes or (N, H, W, 1) slices."""
    batch = np.concatenate([two_scanners(dtype), two_scanners(dtype)[:, :, ::-1]])  # (4, 8, 16, 16, 1)
    return batch if spatial_dims == 3 else batch[:, 4]


def _save(tmp_path, arrays, stem):
    paths = []
    for i, array in enumerate(arrays):
        path = tmp_path / f"{stem}{i}.nii"
        nib.save(nib.Nifti1Image(np.asarray(array), np.eye(4)), path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("spatial_dims", [2, 3], ids=["2d", "3d"])
@pytest.mark.parametrize("masked", [False, True], ids=["all", "mask"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_nyul_fit_and_apply_equal_torchio(refs, tmp_path, dtype, masked, spatial_dims):
    torch, tio = refs["torch"], refs["tio"]
    batch = _volumes(dtype, spatial_dims)
    masks = np.stack([v[..., 0] > np.percentile(v, 40) for v in batch]) if masked else None
    images = _save(tmp_path, [v[..., 0] for v in batch], "image")
    mask_paths = _save(tmp_path, masks.astype(np.uint8), "mask") if masked else None
    expected = refs["hs"].train(images, mask_path=mask_paths, progress=False)

    elements = [(v, m) for v, m in zip(batch, masks, strict=True)] if masked else list(batch)
    ours = tf_histeq.nyul_fit(elements, spatial_dims=spatial_dims)
    assert ours.shape == (1, 13)
    assert np.abs(ours[0] - expected).max() <= 1e-6 * 100

    transform = refs["hs"]({"image": expected}, masking_method="mask" if masked else None)

    def as_4d(array):  # TorchIO's (C, W, H, D)
        return torch.as_tensor(array.reshape(1, *array.shape, 1) if spatial_dims == 2 else array[None])

    for i, volume in enumerate(batch):
        mask = masks[i] if masked else np.ones(volume.shape[:-1], bool)
        subject = tio.Subject(
            image=tio.ScalarImage(tensor=as_4d(volume[..., 0])),
            mask=tio.LabelMap(tensor=as_4d(mask.astype(np.uint8))),
        )
        reference = transform(subject)["image"].data.numpy().reshape(volume.shape)
        same = tf_histeq.nyul_standardize(
            volume, expected, mask=masks[i] if masked else None, spatial_dims=spatial_dims
        )
        assert same.dtype == tf.float32 and np.count_nonzero(same.numpy() != reference) == 0
        fitted = tf_histeq.nyul_standardize(volume, ours, mask=masks[i] if masked else None, spatial_dims=spatial_dims)
        assert np.all(np.abs(fitted.numpy() - reference) <= np.spacing(np.abs(reference)))


def _monai_input(refs, array):
    return refs["torch"].as_tensor(array if array.dtype == np.float64 else array.astype(np.float32))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32", "float64"])
def test_windows_equal_monai_scale_intensity_range(refs, dtype):
    volume = two_scanners("int16")[0, ..., 0].astype(np.float64) + (0.25 if dtype == "float64" else 0)
    shift = {"uint8": 1000, "uint16": 2048}.get(dtype, 0)  # unsigned: HU + shift
    volume = np.clip(volume + shift, 0, 255).astype(dtype) if dtype == "uint8" else (volume + shift).astype(dtype)
    windows = [(level + shift, width) for level, width in tf_histeq.WINDOWS.values()]
    compiled = tf.function(lambda x: tf_histeq.window(x, windows, spatial_dims=3), jit_compile=True)
    for stacked in (tf_histeq.window(volume, windows, spatial_dims=3), compiled(volume)):
        for k, (name, (level, width)) in enumerate(tf_histeq.WINDOWS.items()):
            a_min, a_max = level - width / 2 + shift, level + width / 2 + shift
            transform = refs["monai"].ScaleIntensityRange(a_min, a_max, 0.0, 1.0, clip=True)
            expected = transform(_monai_input(refs, volume)[None]).numpy()[0]
            ours = tf_histeq.window(volume, (level + shift, width), spatial_dims=3).numpy().astype(np.float32)
            assert np.count_nonzero(ours != expected) == 0, name
            assert np.count_nonzero(stacked.numpy()[..., k].astype(np.float32) != expected) == 0, name


def _exact_percentile(torch, mask):
    """MONAI's own `np.percentile` branch (taken above 1,000,000 voxels), of the voxels in `mask`."""

    def percentile(x, q, dim=None, keepdim=False, **kwargs):
        values = x.numpy()
        counted = values[np.broadcast_to(mask, values.shape)] if mask is not None else values
        return torch.as_tensor(np.percentile(counted, np.asarray(q)), dtype=x.dtype)

    return percentile


CASES = [
    dict(clip=False, relative=False, channel_wise=False),
    dict(clip=True, relative=False, channel_wise=True),
    dict(clip=True, relative=True, channel_wise=False),
    dict(clip=False, relative=True, channel_wise=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(k for k, v in c.items() if v) or "plain")
@pytest.mark.parametrize("spatial_dims", [2, 3], ids=["2d", "3d"])
@pytest.mark.parametrize("masked", [False, True], ids=["all", "mask"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_percentile_scaling_equals_monai(refs, monkeypatch, dtype, masked, spatial_dims, case):
    volumes = two_scanners(dtype)  # (2, 8, 16, 16, 1)
    image = np.concatenate([volumes[0], volumes[1][::-1]], axis=-1)  # (8, 16, 16, 2): two channels
    if spatial_dims == 2:
        image = image[3]
    mask = body_mask(volumes)[0] if masked else None
    if masked and spatial_dims == 2:
        mask = mask[3]
    monai_image = np.moveaxis(image, -1, 0)  # channels first
    monkeypatch.setattr(refs["monai_array"], "percentile", _exact_percentile(refs["torch"], mask))
    transform = refs["monai"].ScaleIntensityRangePercentiles(2.5, 97.5, -1.0, 2.0, **case)
    expected = np.moveaxis(transform(_monai_input(refs, monai_image)).numpy(), 0, -1)
    ours = tf_histeq.scale_intensity_percentiles(
        image, lower=2.5, upper=97.5, b_min=-1.0, b_max=2.0, mask=mask, spatial_dims=spatial_dims, **case
    ).numpy()
    assert ours.dtype == (np.float64 if dtype == "float64" else np.float32)
    assert np.count_nonzero(ours.astype(np.float32) != expected) == 0


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_percentile_scaling_equals_unpatched_monai(refs, dtype):
    # Above 1,000,000 voxels MONAI calls np.percentile: 0 differing.
    big = np.concatenate([two_scanners(dtype)[0, ..., 0]] * 8)  # (64, 16, 16)
    big = np.tile(big, (1, 8, 8))  # (64, 128, 128) = 1,048,576 voxels
    transform = refs["monai"].ScaleIntensityRangePercentiles(1.0, 99.0, 0.0, 1.0, clip=True, relative=True)
    expected = transform(_monai_input(refs, big)[None]).numpy()[0]
    ours = tf_histeq.scale_intensity_percentiles(
        big, lower=1.0, upper=99.0, b_min=0.0, b_max=1.0, clip=True, relative=True, spatial_dims=3
    ).numpy()
    assert np.count_nonzero(ours != expected) == 0
    # Below it, torch.quantile in float32: the outputs move by its rounded percentiles
    # (measured here: up to 1.2e-7, on about a third of the voxels).
    small = two_scanners(dtype)[0, :7, ..., 0]  # 1,792 voxels: fractional ranks
    for lower, upper in ((1.0, 99.0), (0.3, 99.7)):
        transform = refs["monai"].ScaleIntensityRangePercentiles(lower, upper, 0.0, 1.0, clip=True, relative=True)
        expected = transform(_monai_input(refs, small)[None]).numpy()[0]
        ours = tf_histeq.scale_intensity_percentiles(
            small, lower=lower, upper=upper, b_min=0.0, b_max=1.0, clip=True, relative=True, spatial_dims=3
        ).numpy()
        assert np.abs(ours - expected).max() <= 4e-6
