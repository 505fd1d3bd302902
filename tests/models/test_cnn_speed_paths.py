"""CNN1, with and without its fast gradients, computes the maths of the plain Flax / XLA layers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from rinq_jax.models.cnn import CNN1, CONV_LAYERS, FC_LAYERS, bn_relu_train, strided_conv1d
from rinq_jax.models.common import BN_EPSILON, batch_norm


def _lax_conv(x, kernel, stride):
    return lax.conv_general_dilated(
        x, kernel, (stride,), "VALID", dimension_numbers=("NWC", "WIO", "NWC")
    )


# CNN1's four layers at T = 3000 (kernel a multiple of the stride or not; the blocked input
# gradient pads or truncates the input), plus short odd lengths.
CASES = [
    (3000, 2, 30, 15, 5),
    (598, 30, 60, 10, 3),
    (197, 60, 120, 5, 2),
    (97, 120, 240, 3, 2),
    (61, 3, 4, 7, 3),  # 7 = 2*3 + 1, last block partly read
    (23, 2, 5, 4, 4),  # kernel == stride
    (20, 2, 5, 3, 4),  # kernel < stride: samples between windows are never read
    (12, 2, 3, 5, 1),  # stride 1
]


@pytest.mark.parametrize("n_time,channels,features,kernel,stride", CASES)
def test_strided_conv1d_matches_xla_value_and_gradients(n_time, channels, features, kernel, stride):
    kx, kw, kd = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (3, n_time, channels), jnp.float32)
    w = jax.random.normal(kw, (kernel, channels, features), jnp.float32)
    n_out = (n_time - kernel) // stride + 1
    dy = jax.random.normal(kd, (3, n_out, features), jnp.float32)

    def vjp(f):
        y, pull = jax.vjp(lambda x, w: f(x, w, stride), x, w)
        return (y, *pull(dy))

    got = jax.jit(lambda: vjp(strided_conv1d))()
    want = jax.jit(lambda: vjp(_lax_conv))()
    assert got[0].shape == (3, n_out, features)
    for g, r, what in zip(got, want, ("y", "dx", "dkernel"), strict=True):
        scale = float(jnp.max(jnp.abs(r)))
        np.testing.assert_allclose(g, r, rtol=0, atol=2e-6 * scale, err_msg=what)
    # samples no window reads get exactly zero gradient
    if kernel < stride:
        unread = np.ones(n_time, bool)
        for t in range(n_out):
            unread[t * stride : t * stride + kernel] = False
        assert np.all(np.asarray(got[1])[:, unread] == 0)


class _ReferenceCNN1(nn.Module):
    """CNN1 as first written, with flax.linen.Conv: the fast version must match it."""

    channels: int

    @nn.compact
    def __call__(self, x, train=False):
        h = x[:, 0, 0]
        for k, (features, kernel, stride) in enumerate(CONV_LAYERS, start=1):
            h = nn.Conv(features, (kernel,), strides=(stride,), padding="VALID", name=f"conv{k}")(h)
            h = nn.relu(batch_norm(train, None, f"bn_conv{k}")(h))
        h = nn.avg_pool(h, (3,), strides=(2,), padding="VALID")
        h = h.reshape(h.shape[0], -1)
        for k, features in enumerate(FC_LAYERS, start=1):
            h = nn.Dense(features, name=f"fc{k}")(h)
            h = nn.relu(batch_norm(train, None, f"bn_fc{k}")(h))
        return nn.Dense(2, name="fc4")(h)


@pytest.mark.parametrize("fast_gradients", [False, True], ids=["autodiff", "fast-gradients"])
@pytest.mark.parametrize("channels,n_time", [(2, 3000), (1, 400)])
def test_cnn1_matches_flax_conv_reference(channels, n_time, fast_gradients):
    x = jax.random.normal(jax.random.key(1), (8, 1, 1, n_time, channels), jnp.float32)
    y = jax.random.normal(jax.random.key(2), (8, 2), jnp.float32)
    fast, ref = CNN1(channels, fast_gradients=fast_gradients), _ReferenceCNN1(channels)
    init = jax.jit(lambda m, x: m.init({"params": jax.random.key(0)}, x), static_argnums=0)
    variables = init(fast, x)
    ref_variables = init(ref, x)
    # same parameter names, shapes and initial values (same initialisers, same rng paths)
    assert jax.tree.structure(variables) == jax.tree.structure(ref_variables)
    for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(ref_variables), strict=True):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)

    def loss_and_grads(model):
        def loss(params):
            pred, upd = model.apply(
                {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
            )
            return jnp.mean((pred - y) ** 2), (pred, upd)

        (val, aux), grads = jax.value_and_grad(loss, has_aux=True)(variables["params"])
        eval_pred = model.apply(variables, x, train=False)
        return val, aux, grads, eval_pred

    got = jax.jit(lambda: loss_and_grads(fast))()
    want = jax.jit(lambda: loss_and_grads(ref))()
    loss, (pred, updates), grads, eval_pred = got
    ref_loss, (ref_pred, ref_updates), ref_grads, ref_eval_pred = want
    # The biases of the layers followed by BatchNorm have a gradient of exactly zero in exact
    # arithmetic (BN removes any shift): both versions give float32 noise there (~1e-7).
    zero = [f"conv{k}" for k in range(1, 5)] + [f"fc{k}" for k in range(1, 4)]
    for layer in zero:
        for g in (grads[layer]["bias"], ref_grads[layer]["bias"]):
            assert float(jnp.max(jnp.abs(g))) < 1e-6, layer
    others = (loss, pred, updates, eval_pred, _drop_biases(grads, zero))
    ref_others = (ref_loss, ref_pred, ref_updates, ref_eval_pred, _drop_biases(ref_grads, zero))
    for (path, g), r in zip(
        jax.tree_util.tree_leaves_with_path(others), jax.tree.leaves(ref_others), strict=True
    ):
        scale = max(float(jnp.max(jnp.abs(r))), 1e-6)
        np.testing.assert_allclose(
            g, r, rtol=0, atol=1e-5 * scale, err_msg=jax.tree_util.keystr(path)
        )


def _drop_biases(grads, layers):
    return {k: ({"kernel": v["kernel"]} if k in layers else v) for k, v in grads.items()}


def test_bn_relu_train_vjp_matches_autodiff_including_the_statistics():
    keys = jax.random.split(jax.random.key(3), 6)
    h = 2.0 + 3.0 * jax.random.normal(keys[0], (4, 9, 5), jnp.float32)
    scale = jax.random.normal(keys[1], (5,), jnp.float32)
    bias = jax.random.normal(keys[2], (5,), jnp.float32)
    cts = tuple(
        jax.random.normal(k, s) for k, s in zip(keys[3:], [h.shape, (5,), (5,)], strict=True)
    )

    def plain(h, scale, bias):  # flax's BatchNorm (fast variance) then ReLU
        mean = h.mean((0, 1))
        var = jnp.maximum(0.0, (h * h).mean((0, 1)) - mean * mean)
        y = (h - mean) * (lax.rsqrt(var + BN_EPSILON) * scale) + bias
        return nn.relu(y), mean, var

    def vjp(f):
        out, pull = jax.vjp(f, h, scale, bias)
        return out, pull(cts)

    got, want = jax.jit(lambda: vjp(bn_relu_train))(), jax.jit(lambda: vjp(plain))()
    for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-5 * float(jnp.max(jnp.abs(r))))
