"""eval.py on slices without true maps (a researcher's own scan): NIfTI maps, M0, figure, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from rinq_jax.data.files import io, nifti
from rinq_jax.evaluation import compare, evaluate, figures, inference
from rinq_jax.evaluation.summary import _slug
from rinq_jax.physics import epg
from rinq_jax.physics.sequence import paper_sequence
from tests.scripts import load_script

from .conftest import N_REPS, SHAPE

ERROR_FIELDS = {"val_loss_ms", "t1", "t2", "tissues", "rmse_ms", "rme_pct"}


@pytest.fixture(scope="module")
def cli():
    return load_script("eval.py")


def write_without_truth(source: Path, path: Path, acquisition: dict | None = None) -> Path:
    """``source`` written again with its signals, mask, sequence and acquisition only."""
    s = io.read_slice(source)
    io.write_slice(
        path,
        io.MrfSlice(
            subject_id="scan-01",
            slice_id="z07",
            sequence=s.sequence,
            signals=s.signals,
            mask=s.mask,
            acquisition=s.acquisition if acquisition is None else acquisition,
        ),
    )
    return path


@pytest.fixture(scope="module")
def scan(tiny_data, tmp_path_factory) -> Path:
    source = sorted(tiny_data.glob("*.h5"))[0]
    return write_without_truth(source, tmp_path_factory.mktemp("scan") / "scan-01_z07.h5")


@pytest.fixture(scope="module")
def dm_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dm_cache")


def test_m0_estimate_recovers_a_known_complex_m0():
    seq = paper_sequence(N_REPS, 0)
    t1_ms = np.array([300.0, 830.0, 1330.0, 3000.0, 4500.0], np.float32)
    t2_ms = np.array([20.0, 80.0, 110.0, 1500.0, 600.0], np.float32)
    m0 = np.array([1.0, 0.3 - 0.4j, 2e3j, -7.5 + 1e-3j, 1e-4 * np.exp(2.0j)], np.complex64)
    signals = m0[:, None] * np.asarray(epg.simulate(seq, t1_ms, t2_ms))
    fitted = inference.estimate_m0(signals, t1_ms, t2_ms, seq)
    assert fitted.shape == m0.shape and fitted.dtype == np.complex64
    np.testing.assert_allclose(np.abs(fitted), np.abs(m0), rtol=1e-4)
    np.testing.assert_allclose(fitted, m0, rtol=1e-4)  # the receive phase too


def test_eval_py_writes_maps_for_a_slice_without_truth(
    cli, tiny_run, tiny_data, scan, dm_cache, tmp_path
):
    out = tmp_path / "eval"
    argv = ["--ckpt", str(tiny_run), "--data", str(scan), "--out", str(out)]
    assert cli.main([*argv, "--dm-cache", str(dm_cache)]) == 0  # no --nifti: written anyway

    checkpoint = inference.load_checkpoint(tiny_run)
    p = inference.predict_slice(checkpoint, scan)
    mask = p.mask
    expected = {
        "rnn3-complex": (p.t1_ms, p.t2_ms, inference.m0_map(scan, p.t1_ms, p.t2_ms)),
    }
    d = compare.match_slice(scan, compare.matching_dictionary(scan, dm_cache))
    expected[_slug(evaluate.DM_LABEL)] = (d.t1_ms, d.t2_ms, d.m0)
    h = SHAPE[0]
    for method, (t1_ms, t2_ms, m0) in expected.items():
        for name, values in (("t1_ms", t1_ms), ("t2_ms", t2_ms), ("m0", np.abs(m0))):
            image = nib.load(out / "nifti" / f"{scan.stem}_{method}_{name}.nii.gz")
            data = np.asarray(image.dataobj)
            assert data.shape == (SHAPE[1], SHAPE[0], 1)
            # data/nifti.py's orientation: voxel (i, j, 0) = map[H - 1 - j, i]
            np.testing.assert_allclose(data[:, :, 0], values[::-1, :].T, rtol=1e-6)
            assert data[3, h - 1 - 5, 0] == pytest.approx(values[5, 3], rel=1e-6)
            # fov 60 mm / matrix 12 = 5 mm pixels; 5 mm slices
            np.testing.assert_allclose(image.affine, np.diag([5.0, 5.0, 5.0, 1.0]))
    # nearly noiseless fingerprints of M0 = 1: matching finds it, and T1 near the truth
    source = io.read_slice(sorted(tiny_data.glob("*.h5"))[0])  # what `scan` was made from
    assert np.median(np.abs(d.m0[mask])) == pytest.approx(1.0, rel=0.05)
    assert np.median(d.t1_ms[mask]) == pytest.approx(np.median(source.t1_ms[mask]), rel=0.1)
    assert (out / "figures" / f"{scan.stem}.png").stat().st_size > 0

    result = json.loads((out / "metrics.json").read_text())
    assert result["files_without_truth"] == [str(scan)]
    for name in ("rnn3 complex", evaluate.DM_LABEL):
        entry = result["models"][name]
        assert entry["aggregate"] is None
        summary = entry["slices"][scan.name]
        assert not ERROR_FIELDS & set(summary)
        assert summary["n_pixels"] == int(mask.sum()) and summary["seconds"] > 0
        method = _slug(name)
        t1_ms, t2_ms, m0 = expected[method]
        assert summary["t1_median_ms"] == pytest.approx(float(np.median(t1_ms[mask])))
        assert summary["t2_median_ms"] == pytest.approx(float(np.median(t2_ms[mask])))
        assert summary["m0_median"] == pytest.approx(float(np.median(np.abs(m0[mask]))))
        assert Path(summary["nifti"]["m0"]).name == f"{scan.stem}_{method}_m0.nii.gz"
    assert "training mean" not in result["models"]  # nothing to score a baseline on
    assert not list(out.rglob(".*tmp*"))


def test_prediction_grid_has_no_truth_or_error_panels():
    t1 = np.full(SHAPE, 900.0, np.float32)
    t2 = np.full(SHAPE, 90.0, np.float32)
    mask = np.zeros(SHAPE, bool)
    mask[2:9, 3:10] = True
    rows = [
        figures.MapRow("rnn3 complex", t1, t2, np.full(SHAPE, 2.0 + 1.0j)),
        figures.MapRow("no m0", t1, t2),
    ]
    titles = figures.panel_titles(figures.prediction_grid(rows, mask, title="scan"))
    assert titles[:3] == ["rnn3 complex: T1", "rnn3 complex: T2", "rnn3 complex: |M0|"]
    assert titles[3:5] == ["no m0: T1", "no m0: T2"]
    assert not any("RME" in t or "truth" in t for t in titles)


def _untimed(slice_entry: dict) -> dict:
    return {k: v for k, v in slice_entry.items() if k != "seconds"}


def test_mixed_call_scores_the_truth_file_as_alone(
    cli, tiny_run, tiny_data, scan, dm_cache, tmp_path
):
    truth_file = str(sorted(tiny_data.glob("*.h5"))[1])
    results = {}
    for name, files in (("alone", [truth_file]), ("mixed", [str(scan), truth_file])):
        argv = ["--ckpt", str(tiny_run), "--data", *files, "--out", str(tmp_path / name)]
        assert cli.main([*argv, "--dm-cache", str(dm_cache), "--no-figures"]) == 0
        results[name] = json.loads((tmp_path / name / "metrics.json").read_text())
    alone, mixed = results["alone"], results["mixed"]
    assert mixed["files_without_truth"] == [str(scan)] and alone["files_without_truth"] == []
    assert set(mixed["models"]) == set(alone["models"])  # with the training-mean baseline
    truth_name = Path(truth_file).name
    for name, entry in alone["models"].items():
        other = mixed["models"][name]
        assert other["aggregate"] == entry["aggregate"]
        assert _untimed(other["slices"][truth_name]) == _untimed(entry["slices"][truth_name])
        assert entry["aggregate"]["n_pixels"] > 0 and "val_loss_ms" in entry["aggregate"]
    # the slice without truth is listed with its maps, never scored
    assert set(mixed["models"]["rnn3 complex"]["slices"]) == {truth_name, scan.name}
    assert scan.name not in mixed["models"]["training mean"]["slices"]
    assert (tmp_path / "mixed" / "nifti" / f"{scan.stem}_rnn3-complex_m0.nii.gz").exists()
    written = {p.name for p in (tmp_path / "mixed" / "nifti").iterdir()}
    assert not any(n.startswith(Path(truth_file).stem) for n in written)  # no --nifti


def test_refuses_a_slice_without_truth_or_fov(cli, tiny_run, tiny_data, tmp_path, capsys):
    source = sorted(tiny_data.glob("*.h5"))[0]
    path = write_without_truth(source, tmp_path / "no_fov.h5", acquisition={"matrix": 12})
    out = tmp_path / "o"
    assert cli.main(["--ckpt", str(tiny_run), "--data", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("eval.py: error: ") and err.count("\n") == 1
    assert str(path) in err and "acquisition/fov_mm" in err
    assert not (out / "metrics.json").exists()
    assert nifti.pixel_size_mm(io.inspect(source)) == 5.0  # the file with fov_mm has a size
