"""The trainer on real slice files through the real pipeline and registry (tiny sizes)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from rinq_jax.training import checkpoints as ckpt
from rinq_jax.training.config import TrainConfig
from rinq_jax.training.loop import train_and_evaluate
from tests.scripts import load_script

from .conftest import write_tiny_slices as _write_slices


def test_registry_model_on_slice_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _write_slices(data)
    config = TrainConfig(
        model="rnn3",
        input_kind="complex",
        data_dir=str(data),
        workdir=str(tmp_path / "run"),
        epochs=2,
        batch_size=16,
        progress=False,
        model_overrides=(("lstm_hidden", 8), ("n_steps", 3)),
    )
    summary = train_and_evaluate(config)
    assert np.isfinite(summary.best_val_loss_ms)
    model, variables, meta = ckpt.load_for_inference(tmp_path / "run")
    assert meta.patch_size == 3 and meta.n_reps == 30 and meta.sequence_hash
    # 5 slices: 1 validation, 1 test, 3 training (the paper's 8:2:2, rounded, at least 1 each).
    assert [len(meta.data_files[k]) for k in ("train", "val", "test")] == [3, 1, 1]
    assert "normalise_signals" in meta.signal_normalisation
    x = np.zeros((2, 3, 3, 30, 2), np.float32)
    assert model.apply(variables, x, train=False).shape == (2, 2)


def test_train_py_end_to_end_full_size_rnn3(tmp_path, capsys):
    """The CLI with the paper-size RNN3 for 2 steps on tiny files (T = 30: one value per step)."""
    data = tmp_path / "data"
    data.mkdir()
    _write_slices(data)
    cli = load_script("train.py")
    run = tmp_path / "run"
    argv = ["--model", "rnn3", "--data-dir", str(data), "--workdir", str(run), "--steps", "2"]
    assert cli.main([*argv, "--no-progress"]) == 1  # the recipe's target "single": not in files
    assert "t1_single_ms" in capsys.readouterr().err  # names the missing truth
    assert cli.main([*argv, "--target", "true", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "best validation loss" in out and str(run / "best") in out
    with (run / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["split"] == "val"


def test_a_scanners_own_matching_maps_train_a_network_and_eval_writes_its_maps(tmp_path):
    """Scans with the scanner's matching maps and no true maps (ismrmrd_import --dm-maps):
    train.py --target dm learns from them, eval.py writes the test scan's maps as NIfTI."""
    data = tmp_path / "data"
    data.mkdir()
    _write_slices(data, maps="dm")
    run = tmp_path / "run"
    argv = ["--model", "rnn1", "--data-dir", str(data), "--workdir", str(run), "--steps", "2"]
    argv += ["--batch-size", "16"]
    assert load_script("train.py").main([*argv, "--target", "dm", "--no-progress"]) == 0
    out = tmp_path / "eval"
    assert load_script("eval.py").main(["--ckpt", str(run), "--out", str(out)]) == 0
    result = json.loads((out / "metrics.json").read_text())
    (test_file,) = result["files_without_truth"]
    stem = Path(test_file).stem
    assert {p.name for p in (out / "nifti").iterdir()} >= {
        f"{stem}_rnn1-complex-subspace_{name}.nii.gz" for name in ("t1_ms", "t2_ms", "m0")
    }
