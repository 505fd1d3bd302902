"""Checkpoint round trip, corrupt-checkpoint skipping, and load_for_inference with a real model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rinq_jax.errors import InputError
from rinq_jax.training import checkpoints as ckpt
from rinq_jax.training.config import TrainConfig
from rinq_jax.training.loop import train_and_evaluate
from rinq_jax.training.state import create_train_state

from .conftest import TinyNet, checkpoint_metadata


def _trained_state():
    state = create_train_state(TinyNet(), jax.random.PRNGKey(0), jnp.zeros((1, 1, 1, 8, 2)), 1e-2)
    grads = jax.tree.map(jnp.ones_like, state.params)
    return state.apply_gradients(grads=grads)  # step 1, non-trivial Adam moments


def _assert_trees_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_save_restore_round_trip(tmp_path):
    state, rng = _trained_state(), jax.random.PRNGKey(42)
    mgr = ckpt.make_manager(tmp_path, 2)
    meta = checkpoint_metadata(1)
    ckpt.save(mgr, ckpt.state_to_tree(state, rng), meta, 1)
    fresh = create_train_state(TinyNet(), jax.random.PRNGKey(9), jnp.zeros((1, 1, 1, 8, 2)), 1e-2)
    tree, meta2 = ckpt.restore_latest(
        ckpt.make_manager(tmp_path, 2), ckpt.state_to_tree(fresh, jax.random.PRNGKey(0))
    )
    assert ckpt.CheckpointMetadata.from_json(meta2, tmp_path) == meta
    assert int(tree["step"]) == 1
    _assert_trees_equal(tree["params"], state.params)
    _assert_trees_equal(tree["opt_state"], state.opt_state)
    _assert_trees_equal(tree["batch_stats"], state.batch_stats)
    _assert_trees_equal(tree["rng"], rng)
    # The restored opt_state has the optimiser's own structure, ready for apply_gradients.
    assert jax.tree.structure(tree["opt_state"]) == jax.tree.structure(state.opt_state)


def test_keeps_only_the_latest(tmp_path):
    state, rng = _trained_state(), jax.random.PRNGKey(0)
    mgr = ckpt.make_manager(tmp_path, 2)
    for step in (1, 2, 3):
        ckpt.save(mgr, ckpt.state_to_tree(state, rng), checkpoint_metadata(step), step)
    assert mgr.all_steps() == [2, 3]


def test_corrupt_latest_checkpoint_is_skipped_with_a_warning(tmp_path):
    state, rng = _trained_state(), jax.random.PRNGKey(0)
    mgr = ckpt.make_manager(tmp_path, 3)
    for step in (1, 2):
        ckpt.save(mgr, ckpt.state_to_tree(state, rng), checkpoint_metadata(step), step)
    for f in (tmp_path / "2" / "state").rglob("*"):
        if f.is_file():
            f.write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning, match=r"skipping unreadable checkpoint .*2"):
        tree, meta = ckpt.restore_latest(mgr, ckpt.state_to_tree(state, rng))
    assert meta["step"] == 1


def test_load_for_inference_rebuilds_a_registry_model(tmp_path, toy_datasets):
    # A real registry model (RNN1), shrunk by overrides: 8 repetitions in 2 steps of 4.
    config = TrainConfig(
        model="rnn1",
        input_kind="complex",
        workdir=str(tmp_path),
        steps=8,
        batch_size=8,
        progress=False,
        model_overrides=(("lstm_hidden", 8), ("n_steps", 2)),
    )
    summary = train_and_evaluate(config, datasets=toy_datasets)
    model, variables, meta = ckpt.load_for_inference(tmp_path)
    assert meta.model == "rnn1" and meta.patch_size == 1 and meta.channels == 2
    assert meta.step == summary.best_step
    assert meta.config.learning_rate == 1e-3  # the paper's RNN1-complex default
    x = toy_datasets.val.x[:4]
    y = model.apply(variables, x, train=False)
    assert y.shape == (4, 2) and np.isfinite(np.asarray(y)).all()
    _, latest_vars, latest_meta = ckpt.load_for_inference(tmp_path, step=None)
    assert latest_meta.step == 8
    assert ckpt.load_for_inference(tmp_path, step=8)[2].step == 8
    with pytest.raises(FileNotFoundError, match="no checkpoint 999"):
        ckpt.load_for_inference(tmp_path, step=999)
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no readable checkpoint"):
        ckpt.load_for_inference(empty)
    assert list(empty.iterdir()) == []  # reading creates nothing


def test_a_checkpoint_of_another_format_is_refused_by_name(tmp_path):
    with pytest.raises(InputError, match="format 'rinq_jax.checkpoint/1'.*new --workdir"):
        ckpt.check_format({"format": "rinq_jax.checkpoint/1"}, tmp_path)
    ckpt.check_format({"format": ckpt.FORMAT}, tmp_path)  # this version's: accepted


def test_malformed_metadata_is_refused_naming_the_run(tmp_path):
    saved = checkpoint_metadata(3).to_json()
    assert ckpt.CheckpointMetadata.from_json(saved, tmp_path) == checkpoint_metadata(3)
    other_norm = {**saved["target_normalisation"], "scale_ms": [0.6, 2.0]}
    for bad in (
        {k: v for k, v in saved.items() if k != "n_reps"},
        {**saved, "target_normalisation": other_norm},  # not the config's
        {**saved, "best": {"val_loss_ms": 1.0}},
    ):
        with pytest.raises(InputError, match=f"{tmp_path}: malformed checkpoint metadata"):
            ckpt.CheckpointMetadata.from_json(bad, tmp_path)
