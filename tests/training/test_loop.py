"""train_and_evaluate end to end on in-memory data: metrics, checkpoints, resume, NaN stop."""

from __future__ import annotations

import csv
import dataclasses

import jax
import numpy as np
import pytest

from rinq_jax.training import checkpoints as ckpt
from rinq_jax.training.config import TrainConfig
from rinq_jax.training.input_pipeline import Datasets
from rinq_jax.training.loop import NonFiniteLossError, train_and_evaluate

from .conftest import TinyNet, ToyPatches, tensorboard_scalars


def _config(workdir, **kw):
    base = dict(
        model="rnn1",
        input_kind="complex",
        workdir=str(workdir),
        epochs=3,
        learning_rate=1e-2,
        batch_size=8,
        checkpoint_every_steps=3,
        log_every_steps=2,
        progress=False,
    )
    if "steps" in kw:
        del base["epochs"]
    base.update(kw)
    return TrainConfig(**base)


def _rows(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _params(workdir, step=None):
    mgr = ckpt.make_manager(workdir / ckpt.LATEST_DIR, 100)
    step = mgr.latest_step() if step is None else step
    tree, meta = ckpt._restore(mgr, step, None)
    return tree, ckpt.CheckpointMetadata.from_json(meta, workdir)


def test_run_writes_metrics_and_checkpoints(tmp_path, toy_datasets, capsys):
    summary = train_and_evaluate(_config(tmp_path), datasets=toy_datasets, model=TinyNet())
    assert summary.steps_per_epoch == 8 and summary.final_step == 24
    assert "best validation loss" in capsys.readouterr().out
    rows = _rows(tmp_path / "metrics.csv")
    val = [r for r in rows if r["split"] == "val"]
    assert [int(r["step"]) for r in val] == [8, 16, 24]
    assert float(val[-1]["val_loss_ms"]) < 0.8 * float(val[0]["val_loss_ms"])
    assert summary.best_val_loss_ms == pytest.approx(float(val[-1]["val_loss_ms"]))
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    scalars = tensorboard_scalars(tmp_path / "tensorboard")
    assert len(events) == 1 and [s for s, _ in scalars["val/val_loss_ms"]] == [8, 16, 24]
    tree, meta = _params(tmp_path)
    assert meta.step == 24 and meta.model == "rnn1" and meta.n_reps == 8
    # Target normalisation from the training targets' mean and std, saved in the config.
    y = toy_datasets.train.y_ms.astype(np.float64)
    np.testing.assert_allclose(meta.config.target_norm.offset, y.mean(0))
    np.testing.assert_allclose(meta.config.target_norm.scale, y.std(0))
    saved = meta.config
    assert saved.replace(
        t1_offset_ms=None, t2_offset_ms=None, t1_scale_ms=None, t2_scale_ms=None
    ) == _config(tmp_path)
    assert int(tree["step"]) == 24
    assert (tmp_path / ckpt.BEST_DIR / str(summary.best_step)).is_dir()


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path, toy_datasets):
    full = tmp_path / "full"
    train_and_evaluate(_config(full), datasets=toy_datasets, model=TinyNet())
    part = tmp_path / "part"
    # "Kill" the run while it fetches its 12th batch: its last checkpoint is step 9 (mid-epoch
    # 1), its metrics.csv has the train row of step 10; the same command resumes from step 9.
    killed = dataclasses.replace(toy_datasets, train=_KilledAt(toy_datasets.train, batch=12))
    with pytest.raises(_Killed):
        train_and_evaluate(_config(part), datasets=killed, model=TinyNet())
    summary = train_and_evaluate(_config(part), datasets=toy_datasets, model=TinyNet())
    assert summary.final_step == 24
    a, _ = _params(full)
    b, _ = _params(part)
    for x, y in zip(jax.tree.leaves(a["params"]), jax.tree.leaves(b["params"]), strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(jax.tree.leaves(a["opt_state"]), jax.tree.leaves(b["opt_state"]), strict=True):
        np.testing.assert_array_equal(x, y)
    rows = {
        k: [(r["step"], r["split"], r["loss"], r["val_loss_ms"]) for r in _rows(d / "metrics.csv")]
        for k, d in (("full", full), ("part", part))
    }
    assert rows["full"] == rows["part"]


def test_resume_with_different_settings_is_refused(tmp_path, toy_datasets):
    train_and_evaluate(_config(tmp_path, steps=2), datasets=toy_datasets, model=TinyNet())
    with pytest.raises(ValueError, match="learning_rate"):
        train_and_evaluate(
            _config(tmp_path, learning_rate=1e-3), datasets=toy_datasets, model=TinyNet()
        )
    other = Datasets(toy_datasets.train, toy_datasets.val, files={"train": ["other"]})
    with pytest.raises(ValueError, match="data files/sequence hash"):
        train_and_evaluate(_config(tmp_path), datasets=other, model=TinyNet())


def test_non_finite_loss_stops_with_the_step_and_keeps_good_checkpoint(tmp_path):
    # One NaN target; batch order is fixed by (seed, epoch), so find the step that meets it.
    bad = ToyPatches(n=64, seed=0, nan_at=5)
    order = np.random.default_rng([0, 1]).permutation(64)
    bad_step = 8 + int(np.where(order == 5)[0][0]) // 8  # epoch 1, batch with patch 5
    data = Datasets(train=_SkipEpoch0(bad), val=ToyPatches(n=16, seed=1))
    with pytest.raises(NonFiniteLossError, match=f"at step {bad_step} "):
        train_and_evaluate(_config(tmp_path), datasets=data, model=TinyNet())
    tree, meta = _params(tmp_path)
    assert meta.step <= bad_step
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(tree["params"]))


class _Killed(Exception):
    """Stands in for SIGKILL (tests/training/test_kill_resume.py kills a real process)."""


class _KilledAt:
    """The training batches, interrupted when the trainer asks for the ``batch``-th one."""

    def __init__(self, ds, batch):
        self.ds, self.batch, self.served = ds, batch, 0
        self.n_patches, self.n_reps = ds.n_patches, ds.n_reps

    def batches(self, batch_size, seed=0, epoch=0, start_batch=0, drop_remainder=False):
        for b in self.ds.batches(batch_size, seed, epoch, start_batch, drop_remainder):
            if drop_remainder:  # a training batch (not the trainer's sample or statistics)
                self.served += 1
                if self.served == self.batch:
                    raise _Killed
            yield b


class _SkipEpoch0:
    """Epoch 0 without the NaN patch, so the NaN appears mid-run (after a checkpoint)."""

    def __init__(self, ds):
        self.ds, self.n_patches, self.n_reps = ds, ds.n_patches, ds.n_reps

    def batches(self, batch_size, seed=0, epoch=0, start_batch=0, drop_remainder=True):
        for b in self.ds.batches(batch_size, seed, epoch, start_batch, drop_remainder):
            if epoch == 0:
                b = {**b, "y_ms": np.nan_to_num(b["y_ms"], nan=1000.0)}
            yield b
