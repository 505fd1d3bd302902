import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from rinq_jax.models.quantile import quantile


def _normal(shape, seed=0):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


@pytest.mark.parametrize(
    "shape,axis",
    [((9,), 0), ((4, 9), -1), ((9, 4), 0), ((3, 5, 7), 1), ((2, 3, 3, 11), 3), ((6, 1), 1)],
)
def test_forward_equals_median_for_odd_sizes(shape, axis):
    x = _normal(shape, seed=sum(shape))
    np.testing.assert_array_equal(quantile(x, 0.5, axis), jnp.median(x, axis=axis))


@pytest.mark.parametrize("n,q", [(2, 0.5), (4, 0.1), (4, 0.5), (8, 0.75), (10, 0.5), (10, 0.33)])
def test_forward_matches_numpy_linear_interpolation(n, q):
    x = np.asarray(_normal((5, n), seed=n))
    np.testing.assert_allclose(quantile(x, q), np.quantile(x, q, axis=-1), rtol=1e-6, atol=1e-6)


def test_gradient_is_one_hot_at_the_median():
    x = _normal((6, 9), seed=3)
    w = _normal((6,), seed=4)  # a cotangent per row
    grad = jax.grad(lambda x: jnp.sum(w * quantile(x)))(x)
    median_index = jnp.argmax(x == jnp.median(x, axis=-1, keepdims=True), axis=-1)
    expected = w[:, None] * jax.nn.one_hot(median_index, 9)
    np.testing.assert_array_equal(grad, expected)


def test_gradient_of_interpolated_quantile_weights_two_neighbours():
    x = jnp.array([3.0, 0.0, 2.0, 1.0])  # sorted: 0 (idx 1), 1 (idx 3), 2 (idx 2), 3 (idx 0)
    # q = 0.5: pos 1.5 -> halfway between 1 (index 3) and 2 (index 2).
    np.testing.assert_allclose(jax.grad(quantile)(x), [0.0, 0.0, 0.5, 0.5])
    # q = 0.9: pos 2.7 -> 0.3 * x[2] + 0.7 * x[0].
    np.testing.assert_allclose(jax.grad(lambda x: quantile(x, 0.9))(x), [0.7, 0.0, 0.3, 0.0])


@pytest.mark.parametrize("n,q", [(9, 0.5), (8, 0.5), (7, 0.3)])
def test_gradient_equals_central_finite_differences(n, q):
    x = np.asarray(_normal((n,), seed=n), np.float64)
    grad = np.asarray(jax.grad(lambda x: quantile(x, q))(jnp.asarray(x, jnp.float32)))
    eps = 1e-3  # far below the gaps between order statistics of these samples
    fd = np.array(
        [(np.quantile(x + eps * e, q) - np.quantile(x - eps * e, q)) / (2 * eps) for e in np.eye(n)]
    )
    np.testing.assert_allclose(grad, fd, atol=1e-6)
    # ... and the same through the layer itself (float32 central differences).
    fd32 = np.array(
        [
            (
                quantile(jnp.asarray(x + eps * e, jnp.float32), q)
                - quantile(jnp.asarray(x - eps * e, jnp.float32), q)
            )
            / (2 * eps)
            for e in np.eye(n)
        ]
    )
    np.testing.assert_allclose(grad, fd32, atol=2e-3)


@pytest.mark.parametrize("shape,q,axis", [((4, 9), 0.5, -1), ((9, 3), 0.5, 0), ((3, 6), 0.4, 1)])
def test_check_grads(shape, q, axis):
    x = _normal(shape, seed=7)
    check_grads(lambda x: quantile(x, q, axis), (x,), order=1, modes=["rev"])


def test_jit_and_vmap():
    x = _normal((5, 3, 9), seed=8)
    np.testing.assert_array_equal(jax.jit(quantile, static_argnums=(1, 2))(x, 0.5, -1), quantile(x))
    vmapped = jax.vmap(lambda r: quantile(r, 0.5, axis=-1))(x)
    np.testing.assert_array_equal(vmapped, jnp.median(x, axis=-1))
    g_vmap = jax.vmap(jax.grad(lambda r: jnp.sum(quantile(r))))(x)
    g_full = jax.grad(lambda x: jnp.sum(quantile(x)))(x)
    np.testing.assert_array_equal(g_vmap, g_full)
    assert float(jnp.sum(g_full)) == 15.0  # one unit of cotangent per output


def test_pmap_over_two_devices():
    if jax.local_device_count() < 2:
        pytest.skip("needs 2 devices (tests/conftest.py sets XLA_FLAGS)")
    x = _normal((2, 4, 9), seed=9)
    out = jax.pmap(lambda x: quantile(x))(x)
    np.testing.assert_array_equal(out, jnp.median(x, axis=-1))
    grads = jax.pmap(jax.grad(lambda x: jnp.sum(quantile(x))))(x)
    np.testing.assert_array_equal(grads, jax.grad(lambda x: jnp.sum(quantile(x)))(x))


def test_ties_send_the_gradient_to_the_first_index():
    np.testing.assert_array_equal(jax.grad(quantile)(jnp.ones(9)), jax.nn.one_hot(0, 9))
    x = jnp.array([2.0, 1.0, 0.0, 1.0, 1.0])  # median 1, first held by index 1
    np.testing.assert_array_equal(jax.grad(quantile)(x), [0.0, 1.0, 0.0, 0.0, 0.0])
    # even count, both neighbours tied: the weights 0.5 + 0.5 land on one element
    x = jnp.array([5.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(jax.grad(quantile)(x), [0.0, 1.0, 0.0, 0.0])
    # deterministic across calls and under jit
    grads = [jax.jit(jax.grad(quantile))(jnp.zeros(9)) for _ in range(3)]
    for g in grads:
        np.testing.assert_array_equal(g, jax.nn.one_hot(0, 9))


def test_q_0_and_1_are_min_and_max():
    x = _normal((4, 7), seed=10)
    np.testing.assert_array_equal(quantile(x, 0.0), jnp.min(x, axis=-1))
    np.testing.assert_array_equal(quantile(x, 1.0), jnp.max(x, axis=-1))


@pytest.mark.parametrize(
    "x,q,axis,match",
    [
        (jnp.ones((3, 9)), 1.5, -1, "q must be in"),
        (jnp.ones((3, 9)), -0.1, -1, "q must be in"),
        (jnp.ones((3, 9)), 0.5, 2, "axis must be in"),
        (jnp.ones((3, 9), jnp.int32), 0.5, -1, "floating-point"),
        (jnp.ones((3, 0)), 0.5, -1, "empty axis"),
        (jnp.float32(1.0), 0.5, -1, "scalar"),
    ],
)
def test_invalid_arguments_raise(x, q, axis, match):
    with pytest.raises(ValueError, match=match):
        quantile(x, q, axis)
