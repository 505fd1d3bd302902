"""bfloat16 mixed precision: the maths of ``common.matmul`` and the models' ``matmul_dtype``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rinq_jax.models import get_model
from rinq_jax.models.common import matmul
from rinq_jax.models.lstm import LSTMConfig, lstm


def _bf16(a):
    """Round to bfloat16 and back: the inputs the mixed-precision matmul actually multiplies."""
    return np.asarray(jnp.asarray(a).astype(jnp.bfloat16).astype(jnp.float32), np.float64)


@pytest.fixture(scope="module")
def operands():
    keys = jax.random.split(jax.random.key(0), 3)
    a = jax.random.normal(keys[0], (3, 4, 64))
    b = jax.random.normal(keys[1], (64, 16))
    d_out = jax.random.normal(keys[2], (3, 4, 16))
    return a, b, d_out


def test_bf16_matmul_is_the_float32_product_of_rounded_inputs(operands):
    a, b, _ = operands
    exact = _bf16(a) @ _bf16(b)  # float64 product of the rounded inputs
    np.testing.assert_allclose(matmul(a, b, "bfloat16"), exact, rtol=1e-5, atol=1e-5)
    # ... which differs from the float32 product by bfloat16 rounding (8 significant bits).
    rel = np.linalg.norm(matmul(a, b, "bfloat16") - a @ b) / np.linalg.norm(a @ b)
    assert 1e-4 < rel < 1e-2


def test_bf16_matmul_gradient(operands):
    # d_a: bfloat16 inputs (the cotangent rounded once), float32 accumulation; d_b, a
    # weight gradient summed over all rows: float32 product of the rounded input and the
    # float32 cotangent (common.weight_gradient).
    a, b, d_out = operands
    d_a, d_b = jax.grad(lambda a, b: jnp.sum(matmul(a, b, "bfloat16") * d_out), (0, 1))(a, b)
    g, a64, b64 = _bf16(d_out), _bf16(a), _bf16(b)
    np.testing.assert_allclose(d_a, g @ b64.T, rtol=1e-5, atol=1e-5)
    g32 = np.asarray(d_out, np.float64)
    np.testing.assert_allclose(
        d_b, a64.reshape(-1, 64).T @ g32.reshape(-1, 16), rtol=1e-5, atol=1e-4
    )


def test_float32_matmul_is_the_plain_product(operands):
    a, b, _ = operands
    exact = np.asarray(a, np.float64) @ np.asarray(b, np.float64)
    np.testing.assert_allclose(matmul(a, b), exact, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="matmul_dtype"):
        matmul(a, b, "float16")


@pytest.mark.parametrize("rows", [8, 1000])
def test_bf16_lstm_gradient_is_close_to_float32(rows):
    keys = jax.random.split(jax.random.key(1), 5)
    x = jax.random.normal(keys[0], (8, 2, 6, 16))
    w_ih = jax.random.normal(keys[1], (32, 40)) * 0.2
    w_hh = jax.random.normal(keys[2], (10, 40)) * 0.3
    bias = jnp.zeros(40)
    d_out = jax.random.normal(keys[3], (6, 8, 10))
    grads = {}
    for dtype in ("float32", "bfloat16"):
        cfg = LSTMConfig(projection_rows=rows, matmul_dtype=dtype)
        loss = lambda *p, cfg=cfg: jnp.sum(lstm(cfg, x, *p) * d_out)  # noqa: E731
        grads[dtype] = jax.grad(loss, (0, 1, 2))(w_ih, w_hh, bias)
    for g32, g16 in zip(grads["float32"], grads["bfloat16"], strict=True):
        assert np.linalg.norm(g16 - g32) / np.linalg.norm(g32) < 2e-2


@pytest.mark.parametrize("name", ["rnn1", "rnn3"])
def test_bf16_model_predicts_what_the_float32_model_predicts(name):
    # Same parameters (a bf16 model loads a float32 checkpoint and vice versa), outputs
    # within bfloat16 rounding of the float32 model's.
    p = 3 if name == "rnn3" else 1
    x = jax.random.normal(jax.random.key(2), (16, p, p, 300, 2)) / 17
    small = {"lstm_hidden": 32}
    m32 = get_model(name, "complex", **small)
    m16 = get_model(name, "complex", matmul_dtype="bfloat16", **small)
    variables = m32.init(jax.random.key(3), x[:1])
    assert jax.tree.map(jnp.shape, m16.init(jax.random.key(3), x[:1])) == jax.tree.map(
        jnp.shape, variables
    )
    y32 = m32.apply(variables, x)
    y16 = m16.apply(variables, x)
    assert y16.dtype == jnp.float32
    assert float(jnp.linalg.norm(y16 - y32) / jnp.linalg.norm(y32)) < 2e-2
    assert not np.array_equal(y16, y32)  # the option does take effect
