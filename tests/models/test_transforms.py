"""The default models under JAX's transformations, and their fast gradients equal to autodiff.

What a user importing the pure functions does: ``jax.grad`` and ``jax.vmap`` through every
RNN's apply function, ``jax.jvp`` (forward mode) through the models without the quantile
layer, and ``jax.test_util.check_grads`` against finite differences in both modes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from rinq_jax.models import get_model
from rinq_jax.models.lstm import LSTMConfig, lstm

# Small networks of the paper's layouts: T = 300 (CNN1's shortest valid length), 3 steps.
SMALL = {"rnn1": {"lstm_hidden": 8, "n_steps": 3}, "rnn3": {"lstm_hidden": 8, "n_steps": 3}}
PATCH = {"rnn1": 1, "rnn3": 3, "cnn1": 1}
N_REPS = 300


def _model_and_inputs(name, batch=4, **overrides):
    model = get_model(name, "complex", **SMALL.get(name, {}), **overrides)
    p = PATCH[name]
    x = jax.random.normal(jax.random.key(1), (batch, p, p, N_REPS, 2)) * 0.3
    variables = model.init({"params": jax.random.key(0)}, x)
    return model, variables, x


def _loss(model, variables, x):
    def loss(params):
        return jnp.sum(model.apply({**variables, "params": params}, x) ** 2)

    return loss


@pytest.mark.parametrize("name", ["rnn1", "rnn3", "cnn1"])
def test_grad_and_vmap_through_apply(name):
    model, variables, x = _model_and_inputs(name)
    grads = jax.grad(_loss(model, variables, x))(variables["params"])
    assert jax.tree.structure(grads) == jax.tree.structure(variables["params"])
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    # vmap over a leading axis of inputs equals applying to each in turn
    xs = jnp.stack([x, -x, 2 * x])
    mapped = jax.vmap(lambda x: model.apply(variables, x))(xs)
    looped = jnp.stack([model.apply(variables, xi) for xi in xs])
    np.testing.assert_allclose(mapped, looped, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["rnn1", "cnn1"])
def test_jvp_equals_the_vjp_transposed(name):
    # <J t, u> = <t, J^T u> for random tangent t and cotangent u
    model, variables, x = _model_and_inputs(name)
    params = variables["params"]

    def f(params):
        return model.apply({**variables, "params": params}, x)

    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    tangent = tree.unflatten(
        [jax.random.normal(k, a.shape) for k, a in zip(keys, leaves, strict=True)]
    )
    y, jt = jax.jvp(f, (params,), (tangent,))
    u = jax.random.normal(jax.random.key(3), y.shape)
    (jtu,) = jax.vjp(f, params)[1](u)
    lhs = jnp.sum(jt * u)
    rhs = sum(
        jnp.sum(a * b) for a, b in zip(jax.tree.leaves(tangent), jax.tree.leaves(jtu), strict=True)
    )
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4)


def test_check_grads_of_the_lstm_in_both_modes():
    # The recurrence is smooth (the models' ReLUs make finite differences of whole networks
    # unreliable; there `test_jvp_equals_the_vjp_transposed` ties the two modes together).
    # float32 arithmetic: central differences with a step of 1e-3 agree to ~1e-3.
    keys = jax.random.split(jax.random.key(4), 4)
    args = (
        jax.random.normal(keys[0], (3, 2, 4, 3)),  # x [B, G, S, L]
        jax.random.normal(keys[1], (6, 20)) * 0.5,  # w_ih [F, 4H], H = 5
        jax.random.normal(keys[2], (5, 20)) * 0.5,  # w_hh
        jax.random.normal(keys[3], (20,)) * 0.5,  # bias
    )
    f = lambda *a: lstm(LSTMConfig(), *a)  # noqa: E731
    check_grads(f, args, order=1, modes=("fwd", "rev"), eps=1e-3, atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("name", ["rnn1", "rnn3"])
def test_fast_gradients_equal_autodiff(name):
    model, variables, x = _model_and_inputs(name)
    fast = get_model(name, "complex", **SMALL.get(name, {}), fast_gradients=True)

    def train_loss(m):
        def loss(params):
            y, _ = m.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"])
            return jnp.sum(y**2)

        return jax.value_and_grad(loss)(variables["params"])

    (value, grads), (fast_value, fast_grads) = train_loss(model), train_loss(fast)
    np.testing.assert_allclose(fast_value, value, rtol=1e-5)
    # relative to the largest gradient: the biases before a BatchNorm have an exact gradient
    # of zero, and both versions give float32 noise there
    scale = max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grads))
    for (path, g), f in zip(
        jax.tree_util.tree_leaves_with_path(grads), jax.tree.leaves(fast_grads), strict=True
    ):
        np.testing.assert_allclose(f, g, atol=1e-5 * scale, err_msg=jax.tree_util.keystr(path))
