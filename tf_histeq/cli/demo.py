"""`tf-histeq demo`: equalize the built-in samples; write the images, comparison figures and a table.

The demo records what it wrote (names and SHA-256) in `DIR/.tf_histeq_demo.json`;
a rerun into the same folder replaces only those files, and only if they are
unchanged since. Any other existing file of the same name stops it (exit 2)
before anything is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import time

import numpy as np

from tf_histeq import __version__
from tf_histeq.cli import files, runtime, writing
from tf_histeq.cli.equalize import PLOT_HINT, figure_png, plot_available
from tf_histeq.cli.files import UsageError
from tf_histeq.cli.terminal import PROG

DEMO_MANIFEST = ".tf_histeq_demo.json"


@dataclasses.dataclass
class _Variant:
    sample: str
    name: str
    image: object  # numpy array
    value_range: tuple[int, int]
    region: object = None  # bool (H, W) array: where the statistics are taken; None for all pixels


def _stats(image, value_range: tuple[int, int], region=None) -> dict[str, float]:
    """Mean, standard deviation, Shannon entropy (bits per pixel) and RMS contrast of integer levels.

    `region`, a bool `(H, W)` array, restricts them to its pixels (all channels).
    """
    low, high = value_range
    values = image.astype(np.int64)
    values = (values[region] if region is not None else values).ravel()
    counts = np.bincount(np.clip(values, low, high) - low, minlength=high - low + 1)
    p = counts[counts > 0] / values.size
    std = float(values.std())
    return {
        "mean": float(values.mean()),
        "std": std,
        "entropy": float(-(p * np.log2(p)).sum()),
        "rms_contrast": std / (high - low),  # std of the intensities scaled to [0, 1]
    }


DEMO_CLIP_LIMIT = 4.0  # stronger than the default 2.0: the phantom's tiles have narrow histograms
DEMO_CT_SHAPE = (48, 96, 96)  # (D, H, W) of the CT phantom: small enough to keep the demo quick
# The CT window the demo reads the phantom through: -1024..3071 HU in 4096 bins (padding and air clipped).
DEMO_CT_WINDOW = {"value_range": (-1024, 3071), "bins": 4096}


def _variants(tf_histeq, samples) -> list[_Variant]:
    """Every image the demo writes, in order; figures show all but the masks."""
    xray, xray12, scene = samples.chest_xray(), samples.chest_xray(bits=12), samples.color_scene()
    lungs, field = samples.lung_mask(), samples.field_mask()
    r8, r12 = (0, 255), (0, 4095)
    twelve = {"value_range": r12, "bins": 4096}
    clip = {"clip_limit": DEMO_CLIP_LIMIT}
    rows = [
        ("xray", "original", xray, r8),
        ("xray", "equalize_hist", tf_histeq.equalize_hist(xray), r8),
        ("xray", "clahe", tf_histeq.clahe(xray, **clip), r8),
        ("xray", "clahe_field_mask", tf_histeq.clahe(xray, mask=field, **clip), r8),
        ("xray", "equalize_hist_lung_mask", tf_histeq.equalize_hist(xray, mask=lungs), r8),
        ("xray", "field_mask", field.astype("uint8") * 255, r8),
        ("xray", "lung_mask", lungs.astype("uint8") * 255, r8),
        ("xray12", "original", xray12, r12),
        ("xray12", "equalize_hist", tf_histeq.equalize_hist(xray12, **twelve), r12),
        ("xray12", "clahe", tf_histeq.clahe(xray12, **clip, **twelve), r12),
        ("xray12", "clahe_field_mask", tf_histeq.clahe(xray12, mask=field, **clip, **twelve), r12),
        ("color", "original", scene, r8),
        ("color", "equalize_hist", tf_histeq.equalize_hist(scene, channels="luminance"), r8),
        ("color", "equalize_hist_per_channel", tf_histeq.equalize_hist(scene), r8),
        ("color", "clahe", tf_histeq.clahe(scene, channels="luminance", **clip), r8),
    ]
    # Statistics of the X-rays leave the black border out: it is 21 % of the pixels and says nothing.
    variants = [
        _Variant(sample, name, getattr(image, "numpy", lambda i=image: i)(), vr, None if sample == "color" else field)
        for sample, name, image, vr in rows
    ]
    return variants + _ct_variants(tf_histeq, samples)


def _ct_variants(tf_histeq, samples) -> list[_Variant]:
    """The CT phantom volume, equalized per volume (one histogram of all its voxels), and within the body only.

    Its statistics are taken over the body (`ct_labels` neither air nor outside the field of view).
    """
    ct = samples.ct_phantom(DEMO_CT_SHAPE)
    labels = samples.ct_labels(DEMO_CT_SHAPE)
    body = (labels != samples.CT_LABELS["air"]) & (labels != samples.CT_LABELS["outside"])
    window = DEMO_CT_WINDOW
    rows = [
        ("original", ct),
        ("equalize_hist", tf_histeq.equalize_hist(ct, spatial_dims=3, **window).numpy()),
        ("equalize_hist_body_mask", tf_histeq.equalize_hist(ct, spatial_dims=3, mask=body, **window).numpy()),
    ]
    return [_Variant("ct", name, volume, window["value_range"], body) for name, volume in rows]


_DEMO_SAMPLES = {
    "xray": "chest X-ray phantom, 8-bit",
    "xray12": "the same, 12-bit in uint16 (value_range=(0, 4095), bins=4096)",
    "color": "hazy colour scene, RGB (channels='luminance' unless per channel)",
    "ct": "CT phantom volume, int16 HU, spatial_dims=3 (value_range=(-1024, 3071), bins=4096)",
}
_DEMO_MASKS = ("field_mask", "lung_mask")
_VOLUME_SAMPLES = ("ct",)  # shown as three orthogonal slices (`tf_histeq.plot.slices`), not written as PNGs
# The slices figure: a soft-tissue-to-bone gray scale, so that the original's contrast is the radiologist's view.
_CT_FIGURE = {"value_range": DEMO_CT_WINDOW["value_range"], "width": 2.2}
_VARIANT_TITLES = {
    "original": "original",
    "equalize_hist": "equalize_hist",
    "equalize_hist_per_channel": "equalize_hist, per channel",
    "clahe": f"clahe (clip {DEMO_CLIP_LIMIT:g}, 8×8)",
    "clahe_field_mask": "clahe, mask: field",
    "equalize_hist_lung_mask": "equalize_hist, mask: lungs",
    "equalize_hist_body_mask": "equalize_hist, mask: body",
}


def _sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _manifest(out: str) -> dict[str, str]:
    """The files a previous demo wrote into `out`, with their hashes; {} when there is none."""
    path = os.path.join(out, DEMO_MANIFEST)
    if not os.path.lexists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        entries = manifest["files"]
        if manifest.get("tool") != "tf-histeq demo" or not isinstance(entries, dict):
            raise ValueError
        return {str(k): str(v) for k, v in entries.items()}
    except (OSError, ValueError, KeyError, TypeError):
        message = f"{path!r} exists but is not a tf-histeq demo manifest; choose another folder with -o"
        raise UsageError(message) from None


def run(args) -> int:
    """Run `tf-histeq demo`; return the exit status (0).

    Raises:
        UsageError: If the output folder holds files the demo did not write, before anything is written.
    """
    out = args.output
    if os.path.lexists(out) and not os.path.isdir(out):
        raise UsageError(f"the output {out!r} exists and is not a folder; choose another with -o")
    has_plot = plot_available()
    names = file_names(has_plot)
    known = _manifest(out) if os.path.isdir(out) else {}
    foreign = [
        name
        for name in names
        if os.path.lexists(os.path.join(out, name))
        and (name not in known or _sha256(os.path.join(out, name)) != known[name])
    ]
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise UsageError(
            f"{out!r} already holds files that tf-histeq demo did not write (or that changed since): {shown}; "
            "choose another folder with -o"
        )

    runtime.import_tensorflow()
    import tf_histeq
    from tf_histeq import samples

    start = time.perf_counter()
    variants = _variants(tf_histeq, samples)
    outputs: dict[str, bytes] = {}
    for variant in variants:
        if variant.sample not in _VOLUME_SAMPLES:
            outputs[f"{variant.sample}_{variant.name}.png"] = files.encode_png(_hwc(variant.image))
    if has_plot:
        from tf_histeq import plot

        for sample in _VOLUME_SAMPLES:
            shown = [v for v in variants if v.sample == sample]
            fig = plot.slices([v.image for v in shown], [_VARIANT_TITLES[v.name] for v in shown], **_CT_FIGURE)
            outputs[f"{sample}_slices.png"] = _png(fig)
        for sample in _DEMO_SAMPLES:
            if sample in _VOLUME_SAMPLES:
                continue
            shown = [v for v in variants if v.sample == sample and v.name not in _DEMO_MASKS]
            outputs[f"{sample}_compare.png"] = figure_png(
                [v.image for v in shown], [_VARIANT_TITLES[v.name] for v in shown], shown[0].value_range
            )

    os.makedirs(out, exist_ok=True)
    written = dict(known)
    try:
        for name, data in outputs.items():
            writing.write_atomic(os.path.join(out, name), data, overwrite=True)
            written[name] = hashlib.sha256(data).hexdigest()
    finally:
        manifest = {"tool": "tf-histeq demo", "version": __version__, "files": dict(sorted(written.items()))}
        writing.write_atomic(
            os.path.join(out, DEMO_MANIFEST), (json.dumps(manifest, indent=1) + "\n").encode(), overwrite=True
        )
    elapsed = time.perf_counter() - start

    print(f"{PROG} demo: wrote {len(outputs)} files to {os.path.abspath(out)} in {elapsed:.1f} s")
    for sample, title in _DEMO_SAMPLES.items():
        print(f"  {title}:")
        names_here = [n for n in outputs if n.startswith(sample + "_")]
        print("    " + "  ".join(names_here))
    if not has_plot:
        print(f"  (no comparison figures: they need matplotlib, {PLOT_HINT})")
    print()
    print(_table(variants))
    return 0


def file_names(has_plot: bool) -> list[str]:
    """The files the demo writes (known before computing anything, for the no-clobber check)."""
    names = [
        "xray_original.png",
        "xray_equalize_hist.png",
        "xray_clahe.png",
        "xray_clahe_field_mask.png",
        "xray_equalize_hist_lung_mask.png",
        "xray_field_mask.png",
        "xray_lung_mask.png",
        "xray12_original.png",
        "xray12_equalize_hist.png",
        "xray12_clahe.png",
        "xray12_clahe_field_mask.png",
        "color_original.png",
        "color_equalize_hist.png",
        "color_equalize_hist_per_channel.png",
        "color_clahe.png",
    ]
    if has_plot:
        names += [f"{sample}_compare.png" for sample in _DEMO_SAMPLES if sample not in _VOLUME_SAMPLES]
        names += [f"{sample}_slices.png" for sample in _VOLUME_SAMPLES]
    return names


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _hwc(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 3 else image[..., None]


def _table(variants: list[_Variant]) -> str:
    header = f"{'image':<8} {'variant':<26} {'mean':>8} {'std':>8} {'entropy':>8} {'RMS contrast':>13}"
    lines = [header, "-" * len(header)]
    previous = None
    for v in variants:
        if v.name in _DEMO_MASKS:
            continue
        s = _stats(v.image, v.value_range, v.region)
        sample = v.sample if v.sample != previous else ""
        previous = v.sample
        lines.append(
            f"{sample:<8} {v.name:<26} {s['mean']:8.1f} {s['std']:8.1f} {s['entropy']:8.2f} {s['rms_contrast']:13.3f}"
        )
    lines.append("X-rays: over the exposed field (the black border left out); colour: over all pixels and channels;")
    lines.append("ct: over the body's voxels (air and the padding outside the field of view left out).")
    lines.append("mean and std in the image's units (0..255, xray12 0..4095, ct HU in the window -1024..3071);")
    lines.append("entropy in bits per pixel;")
    lines.append("RMS contrast: std of the intensities scaled to 0..1.")
    return "\n".join(lines)
