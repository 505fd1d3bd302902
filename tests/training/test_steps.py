"""Train/eval steps: loss goes down, over-fitting, data-parallel == single device, NaN guard."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rinq_jax.data.subjects.tissues import SCORED_TISSUES
from rinq_jax.models.rnn import NEIGHBOUR_PREDICTIONS, RNN3
from rinq_jax.training import steps
from rinq_jax.training.state import create_train_state
from rinq_jax.training.targets import TargetNorm

from .conftest import TinyNet, ToyPatches

NORM = TargetNorm((0.0, 0.0), (4000.0, 600.0))  # fixed: y_norm = y_ms / (4000, 600)


def _state(lr=1e-2, seed=0, n_reps=8):
    x = jnp.zeros((1, 1, 1, n_reps, 2))
    return create_train_state(TinyNet(), jax.random.PRNGKey(seed), x, lr)


def _batch(ds, n):
    return {"x": ds.x[:n], "y_ms": ds.y_ms[:n]}


def test_a_few_steps_lower_the_loss():
    ds = ToyPatches(n=16)
    mesh = steps.make_mesh(jax.local_devices()[:1])
    fn = steps.make_train_step(mesh, NORM)
    state, rng, batch = _state(), jax.random.PRNGKey(0), steps.shard_batch(_batch(ds, 16), mesh)
    losses = []
    for _ in range(20):
        state, m = fn(state, batch, rng)
        losses.append(float(m["loss"]))
        assert bool(m["finite"])
    assert losses[-1] < 0.5 * losses[0]
    assert int(state.step) == 20


def test_tiny_dataset_is_overfitted():
    ds = ToyPatches(n=32)
    mesh = steps.make_mesh(jax.local_devices()[:1])
    fn = steps.make_train_step(mesh, NORM)
    state, rng = _state(lr=3e-3), jax.random.PRNGKey(0)
    batch = steps.shard_batch(_batch(ds, 32), mesh)
    for _ in range(400):
        state, m = fn(state, batch, rng)
    # Normalised MSE starts near 0.1 (targets ~0.25 with spread); near 0 means memorised.
    assert float(m["loss"]) < 1e-4
    ev = steps.make_eval_step(mesh, NORM)
    sums = ev(state, {**batch, "weight": jnp.ones(32)})
    res = steps.finalize_eval(jax.device_get(sums))
    # Eval uses running BN statistics, so it is a little worse than the train-mode loss.
    assert res["rmse_t1_ms"] < 100 and res["rmse_t2_ms"] < 15


def test_two_device_step_equals_one_device_step():
    assert jax.local_device_count() >= 2, "conftest sets 2 host devices"
    ds = ToyPatches(n=16)
    host_batch, rng = _batch(ds, 16), jax.random.PRNGKey(3)
    results = []
    for devices in (jax.local_devices()[:1], jax.local_devices()[:2]):
        mesh = steps.make_mesh(devices)
        state = steps.replicate(_state(), mesh)
        fn = steps.make_train_step(mesh, NORM)
        for _ in range(3):
            state, m = fn(state, steps.shard_batch(host_batch, mesh), rng)
        results.append((jax.device_get(state), jax.device_get(m)))
    (s1, m1), (s2, m2) = results
    # The 2-device batch really is split: each device holds half of it.
    mesh2 = steps.make_mesh(jax.local_devices()[:2])
    shards = steps.shard_batch(host_batch, mesh2)["x"].addressable_shards
    assert [s.data.shape[0] for s in shards] == [8, 8]
    for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s2.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # BatchNorm running statistics: global-batch statistics on both (see steps module doc).
    for a, b in zip(jax.tree.leaves(s1.batch_stats), jax.tree.leaves(s2.batch_stats), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m1["loss"], m2["loss"], rtol=1e-5)


def test_batch_not_divisible_by_devices_is_refused():
    mesh = steps.make_mesh(jax.local_devices()[:2])
    with pytest.raises(ValueError, match="not divisible by the 2 devices"):
        steps.shard_batch(_batch(ToyPatches(n=16), 15), mesh)


def test_non_finite_loss_leaves_state_unchanged():
    ds = ToyPatches(n=8, nan_at=3)
    mesh = steps.make_mesh(jax.local_devices()[:1])
    fn = steps.make_train_step(mesh, NORM)
    state = _state()
    before = jax.device_get(state)
    new, m = fn(state, steps.shard_batch(_batch(ds, 8), mesh), jax.random.PRNGKey(0))
    assert not bool(m["finite"])
    after = jax.device_get(new)
    assert int(after.step) == 0
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True):
        np.testing.assert_array_equal(a, b)


def test_finalize_eval_is_the_papers_validation_loss():
    pred = np.array([[1000.0, 100.0], [1100.0, 80.0], [900.0, 130.0]])
    true = np.array([[1010.0, 90.0], [1000.0, 100.0], [950.0, 100.0]])
    err2 = (pred - true) ** 2
    res = steps.finalize_eval({"sse_ms2": err2.sum(0), "count": 3.0})
    np.testing.assert_allclose(res["val_loss_ms"], np.sqrt(np.mean(err2)))
    np.testing.assert_allclose(res["rmse_t1_ms"], np.sqrt(np.mean(err2[:, 0])))
    np.testing.assert_allclose(res["rmse_t2_ms"], np.sqrt(np.mean(err2[:, 1])))


def test_log_targets_round_trip_and_weigh_relative_errors_alike():
    y_ms = jnp.array([[830.0, 60.0], [4100.0, 1800.0]])
    norm = TargetNorm((6.5, 4.0), (0.6, 1.2), "log")
    np.testing.assert_allclose(norm.denormalise(norm.normalise(y_ms)), y_ms, rtol=1e-5)
    # a 10 % error moves the normalised target alike in white matter and in CSF
    shift = norm.normalise(1.1 * y_ms) - norm.normalise(y_ms)
    np.testing.assert_allclose(shift[0], shift[1], rtol=1e-5)
    np.testing.assert_allclose(
        shift, np.log(1.1) / np.array([0.6, 1.2]) * np.ones((2, 1)), rtol=1e-5
    )
    assert TargetNorm.from_json(norm.to_json()) == norm
    for bad in (((0, 0), (1, 1), "sqrt"), ((0, 0), (1, 0), "log"), ((0,), (1, 1), "log")):
        with pytest.raises(ValueError):
            TargetNorm(*bad)


def test_eval_step_sums_per_tissue_give_each_tissues_loss_and_relative_error():
    ds = ToyPatches(n=12)
    state = _state()
    tissue = np.array([1, 2, 3, 0] * 3, np.int32)
    batch = {**_batch(ds, 12), "weight": np.ones(12, np.float32), "tissue": tissue}
    sums = jax.device_get(steps.eval_step(state, batch, target_norm=NORM))
    out = steps.finalize_eval(sums)
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    pred = np.asarray(state.apply_fn(variables, ds.x[:12], train=False)) * [4000.0, 600.0]
    for label, name in zip(SCORED_TISSUES.values(), SCORED_TISSUES, strict=True):
        sel = tissue == label
        err = pred[sel] - ds.y_ms[:12][sel]
        assert out[f"val_loss_{name}_ms"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-4)
        rme = 100 * np.mean(np.abs(err[:, 0]) / ds.y_ms[:12][sel][:, 0])
        assert out[f"rme_t1_{name}_pct"] == pytest.approx(rme, rel=1e-4)


def test_neighbour_loss_adds_each_patch_pixels_error_beside_the_median():
    """RNN3's nine predictions (median = the output) each scored against their own pixel's
    target, weighted: 0-weight pixels (the rim) do not count, whatever their target."""
    model = RNN3(lstm_hidden=8)
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    x = jax.random.normal(keys[0], (4, 3, 3, 60, 2))
    state = create_train_state(model, keys[1], x[:1], 1e-3)
    y_patch = np.array(jax.random.uniform(keys[2], (4, 3, 3, 2), minval=50.0, maxval=3000.0))
    weight = np.ones((4, 3, 3), np.float32)
    weight[0, 0, :] = weight[3, :, 2] = 0.0
    y_patch[weight == 0] = 1e6
    batch = {"x": x, "y_ms": y_patch[:, 1, 1], "y_patch_ms": y_patch, "patch_weight": weight}
    rng = jax.random.PRNGKey(1)
    step = jax.jit(steps.train_step, static_argnames=("target_norm", "neighbour_weight"))
    _, plain = step(state, batch, rng, target_norm=NORM)
    _, both = step(state, batch, rng, target_norm=NORM, neighbour_weight=0.5)

    variables = {"params": state.params, "batch_stats": state.batch_stats}
    pred, updates = model.apply(variables, x, train=True, mutable=["batch_stats", "intermediates"])
    slots = np.asarray(updates["intermediates"][NEIGHBOUR_PREDICTIONS][0])  # [4, 9, 2]
    np.testing.assert_allclose(np.median(slots, axis=1), pred, rtol=1e-6)
    scale = np.array([4000.0, 600.0])
    y, y9 = y_patch[:, 1, 1] / scale, y_patch.reshape(4, 9, 2) / scale
    w = weight.reshape(4, 9, 1)
    by_hand = np.sum(w * (slots - y9) ** 2) / (2 * w.sum())
    np.testing.assert_allclose(plain["loss"], np.mean((pred - y) ** 2), rtol=1e-5)
    np.testing.assert_allclose(both["loss"], plain["loss"] + 0.5 * by_hand, rtol=1e-5)
