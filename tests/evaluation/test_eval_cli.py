"""eval.py end to end on a tiny trained checkpoint, and its refusals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from rinq_jax.evaluation import evaluate, inference
from rinq_jax.evaluation.summary import _slug
from tests.scripts import load_script

from .conftest import SHAPE, write_eval_slices


@pytest.fixture(scope="module")
def cli():
    return load_script("eval.py")


def test_eval_py_end_to_end(cli, tiny_run, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["--ckpt", str(tiny_run), "--out", str(out), "--compare-dm", "--nifti"]
    assert cli.main([*argv, "--dm-cache", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out
    assert "rnn3 complex" in printed and "dictionary matching" in printed

    result = json.loads((out / "metrics.json").read_text())
    meta = inference.load_checkpoint(tiny_run).metadata
    test_names = meta.data_files["test"]
    assert [Path(f).name for f in result["files"]] == test_names
    rnn3 = result["models"]["rnn3 complex"]
    assert set(rnn3["slices"]) == set(test_names)
    agg = rnn3["aggregate"]
    # 5 tiny slices -> one test slice, every pixel of its mask scored.
    assert agg["n_pixels"] == rnn3["slices"][test_names[0]]["n_pixels"] > 0
    assert set(agg["tissues"]) == {"wm", "gm", "csf"}
    assert sum(agg["tissues"][t]["n_pixels"] for t in ("wm", "gm", "csf")) == agg["n_pixels"]
    assert agg["val_loss_ms"] > 0 and rnn3["seconds_per_slice"] > 0
    dm = result["models"][evaluate.DM_LABEL]
    # Nearly noiseless EPG signals: dictionary matching is near the grid spacing (a rank-T
    # dictionary that projected twice was off by ~60 %).
    assert dm["aggregate"]["t1"]["rme_pct"] < 5.0
    assert dm["slices"][test_names[0]]["maps_from"] == "matched"
    # the mean predictor: the training targets' mean, scored on the same pixels
    mean = result["models"]["training mean"]
    assert mean["constant_ms"] == pytest.approx(meta.train_target_mean_ms)
    assert mean["aggregate"]["n_pixels"] == agg["n_pixels"]

    stem = Path(test_names[0]).stem
    assert (out / "figures" / f"{stem}.png").stat().st_size > 0
    image = nib.load(out / "nifti" / f"{stem}_rnn3-complex_t1_ms.nii.gz")
    assert image.shape == (SHAPE[1], SHAPE[0], 1)
    assert np.allclose(np.diag(image.affine), [5.0, 5.0, 5.0, 1.0])  # fov 60 mm / 12 pixels
    assert (out / "nifti" / f"{stem}_{_slug(evaluate.DM_LABEL)}_t2_ms.nii.gz").exists()
    assert not list(out.glob(".*tmp*"))  # no temporary files left behind


def test_refuses_data_with_other_number_of_repetitions(cli, tiny_run, tmp_path, capsys):
    other = write_eval_slices(tmp_path / "t40", n_files=1, n_reps=40)
    assert (
        cli.main(["--ckpt", str(tiny_run), "--data", str(other[0]), "--out", str(tmp_path / "o")])
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("eval.py: error: ")
    assert "number of repetitions" in err and "T = 30" in err and "T = 40" in err
    assert str(other[0]) in err
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_refuses_missing_run_and_bad_step(cli, tmp_path, capsys):
    assert cli.main(["--ckpt", str(tmp_path / "nothing")]) == 1
    assert "no run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["--ckpt", "x", "--step", "first"])
    assert exc.value.code == 2
    assert "'best', 'latest' or a step number" in capsys.readouterr().err


def test_check_compatible_names_each_misfit(tiny_run, tiny_data):
    from rinq_jax.data.files import io

    meta = inference.load_checkpoint(tiny_run).metadata
    info = io.inspect(sorted(tiny_data.glob("*.h5"))[0])
    inference.check_compatible(meta, info)  # fits
    with pytest.raises(
        inference.IncompatibleCheckpointError, match="patch size 1 in the checkpoint"
    ):
        inference.check_compatible(dataclasses.replace(meta, patch_size=1), info)
    with pytest.raises(inference.IncompatibleCheckpointError, match="acquisition sequence"):
        inference.check_compatible(dataclasses.replace(meta, sequence_hash="0000"), info)
    with pytest.raises(inference.IncompatibleCheckpointError, match="needs 2 channels"):
        inference.check_compatible(dataclasses.replace(meta, channels=1), info)


def test_eval_on_a_file_written_from_the_format_doc_alone(cli, tiny_run, tiny_data, tmp_path):
    """A slice written with plain h5py, following docs/data_format.md and not rinq_jax's
    writer (as another program would), is read and scored like a generated one."""
    import h5py

    from rinq_jax.data.files import io

    source = io.read_slice(sorted(tiny_data.glob("*.h5"))[0])
    path = tmp_path / "scanner_slice.h5"
    with h5py.File(path, "w") as f:
        # no sequence_hash: another program need not know how rinq_jax hashes a sequence
        f.attrs.update(format_version=1, subject_id="volunteer-7", slice_id="z12")
        f["signals"] = source.signals
        f["mask"] = source.mask
        f["t1_ms"], f["t2_ms"] = source.t1_ms, source.t2_ms
        seq = f.create_group("sequence")
        for key in ("flip_deg", "tr_ms", "phase_deg"):
            seq[key] = np.asarray(getattr(source.sequence, key), np.float64)
        seq.attrs["te_ms"] = source.sequence.te_ms
        seq.attrs["ti_ms"] = np.nan if source.sequence.ti_ms is None else source.sequence.ti_ms
        f.create_group("acquisition").attrs.update(fov_mm=60.0, matrix=12)
        f.create_group("generator").attrs["program"] = "another scanner's exporter"
    out = tmp_path / "eval"
    argv = ["--ckpt", str(tiny_run), "--data", str(path), "--out", str(out), "--no-compare-dm"]
    assert cli.main(argv) == 0
    result = json.loads((out / "metrics.json").read_text())
    scored = result["models"]["rnn3 complex"]["aggregate"]
    assert scored["n_pixels"] == int(source.mask.sum()) and scored["val_loss_ms"] > 0
    assert "tissues" not in scored or not scored["tissues"]  # no tissue map in this file
