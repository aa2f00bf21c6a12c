"""`tf-histeq demo`: every image and figure, the functions' pixels, the table, the no-clobber manifest."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests._files import decode, hide_matplotlib
from tests._files import run_cli as _run
from tests._references import assert_same_pixels
from tf_histeq import samples
from tf_histeq.cli import app, main
from tf_histeq.cli import demo as cli_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Run `tf-histeq demo` once, in a fresh working directory, with the default output folder."""
    cwd = tmp_path_factory.mktemp("demo")
    previous = os.getcwd()
    os.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(sys, "stdout", out)
            mp.setattr(sys, "stderr", err)
            code = main(["demo"])
    finally:
        os.chdir(previous)
    return code, cwd / app.DEMO_DIR, out.getvalue(), err.getvalue()


class TestDemo:
    def test_writes_every_image_and_figure(self, demo):
        code, out, stdout, _ = demo
        assert code == 0
        assert sorted(p.name for p in out.iterdir()) == sorted([*cli_demo.file_names(True), cli_demo.DEMO_MANIFEST])
        assert f"wrote 19 files to {out}" in stdout

    def test_images_are_the_functions_applied_to_the_samples(self, demo):
        _, out, _, _ = demo
        xray, xray12, scene = samples.chest_xray(), samples.chest_xray(bits=12), samples.color_scene()
        clip = cli_demo.DEMO_CLIP_LIMIT
        assert_same_pixels(decode(out / "xray_original.png")[..., 0], xray)
        assert_same_pixels(decode(out / "xray_clahe.png")[..., 0], tf_histeq.clahe(xray, clip_limit=clip).numpy())
        masked = tf_histeq.equalize_hist(xray, mask=samples.lung_mask()).numpy()
        assert_same_pixels(decode(out / "xray_equalize_hist_lung_mask.png")[..., 0], masked)
        twelve = decode(out / "xray12_clahe_field_mask.png")[..., 0]
        assert twelve.dtype == np.uint16 and twelve.max() <= 4095 and twelve.max() > 3500
        expected = tf_histeq.clahe(xray12, mask=samples.field_mask(), clip_limit=clip, value_range=(0, 4095), bins=4096)
        assert_same_pixels(twelve, expected.numpy())
        assert_same_pixels(
            decode(out / "color_equalize_hist.png"), tf_histeq.equalize_hist(scene, channels="luminance").numpy()
        )
        assert set(np.unique(decode(out / "xray_lung_mask.png")).tolist()) == {0, 255}

    def test_figures_have_content(self, demo):
        _, out, _, _ = demo
        for name, columns in [("xray_compare.png", 5), ("xray12_compare.png", 4), ("color_compare.png", 4)]:
            figure = tf.io.decode_png((out / name).read_bytes()).numpy()
            assert figure.shape[1] == columns * 300  # 3 in per column at 100 dpi
            assert figure[..., :3].std() > 20

    def test_ct_figure_shows_three_orthogonal_slices_before_and_after(self, demo):
        _, out, _, _ = demo
        figure = tf.io.decode_png((out / "ct_slices.png").read_bytes()).numpy()
        assert figure.shape[1] == 3 * 220  # axial, coronal, sagittal: 2.2 in each at 100 dpi
        rows = np.array_split(figure[..., :3].astype(np.float64), 3, axis=0)  # original, equalized, body mask
        assert all(row.std() > 20 for row in rows)
        axial = [row[:, :220] for row in rows]  # the first panel of each row
        assert np.mean(np.abs(axial[1] - axial[0]) > 30) > 0.2 and np.mean(np.abs(axial[2] - axial[1]) > 30) > 0.1

    def test_prints_a_table_of_statistics(self, demo):
        _, _, stdout, _ = demo
        lines = stdout.splitlines()
        header = next(i for i, line in enumerate(lines) if line.startswith("image ") and "RMS contrast" in line)
        assert lines[header].split() == ["image", "variant", "mean", "std", "entropy", "RMS", "contrast"]
        rows, sample = {}, None
        for line in lines[header + 2 : header + 18]:
            parts = line.split()
            if len(parts) == 6:
                sample = parts.pop(0)
            rows[(sample, parts[0])] = [float(v) for v in parts[1:]]  # mean, std, entropy, RMS contrast
        assert len(rows) == 16 and {s for s, _ in rows} == {"xray", "xray12", "color", "ct"}
        for sample, variant in [
            ("xray", "equalize_hist"),
            ("xray", "clahe"),
            ("xray12", "clahe"),
            ("color", "equalize_hist"),
            ("ct", "equalize_hist_body_mask"),
        ]:
            assert rows[(sample, variant)][1] > 1.5 * rows[(sample, "original")][1]  # std up
            assert rows[(sample, variant)][3] > rows[(sample, "original")][3]  # RMS contrast up
        assert rows[("xray", "original")][1] == pytest.approx(
            samples.chest_xray()[samples.field_mask()].std(), abs=0.05
        )

    @pytest.mark.slow  # a second whole demo
    def test_rerun_replaces_its_own_unchanged_files(self, demo, tmp_path, capsys):
        out = shutil.copytree(demo[1], tmp_path / "demo")
        manifest = json.loads((out / cli_demo.DEMO_MANIFEST).read_text())
        assert set(manifest["files"]) == set(cli_demo.file_names(True))
        code, _, err = _run(["demo", "-o", out], capsys)
        assert code == 0, err

    def test_rerun_refuses_a_file_changed_since(self, demo, tmp_path, capsys):
        out = shutil.copytree(demo[1], tmp_path / "demo")
        (out / "xray_clahe.png").write_bytes(b"edited by the user")
        code, _, err = _run(["demo", "-o", out], capsys)
        assert code == 2 and "tf-histeq: error: " in err and "xray_clahe.png" in err
        assert (out / "xray_clahe.png").read_bytes() == b"edited by the user"

    def test_refuses_a_folder_with_a_foreign_file_of_the_same_name(self, tmp_path, capsys):
        (tmp_path / "xray_original.png").write_bytes(b"mine")
        code, stdout, err = _run(["demo", "-o", tmp_path], capsys)
        assert code == 2 and "did not write" in err and "xray_original.png" in err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["xray_original.png"]
        code, _, err = _run(["demo", "-o", tmp_path / "xray_original.png"], capsys)
        assert code == 2 and "is not a folder" in err

    @pytest.mark.slow
    def test_without_matplotlib_writes_images_and_says_how_to_get_figures(self, tmp_path, capsys, monkeypatch):
        hide_matplotlib(monkeypatch)
        code, stdout, _ = _run(["demo", "-o", tmp_path / "d"], capsys)
        assert code == 0
        assert 'pip install "tf_histeq[plot]"' in stdout
        assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(
            [*cli_demo.file_names(False), cli_demo.DEMO_MANIFEST]
        )
