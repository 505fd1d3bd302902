"""The MKL matmul custom call: products, gradients, lowering per platform, fallback, errors."""

import importlib
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rinq_jax.native import GEMM_ENV, cpu_info, gemm, mkl_available, with_packed_rhs

FLAGS = [(False, False), (True, False), (False, True), (True, True)]
_GEMM = importlib.import_module("rinq_jax.native.gemm")  # the package exports the function


@pytest.fixture(autouse=True)
def mkl_wherever_it_builds(monkeypatch):
    # These tests exercise the kernels on any x86-64 Linux CPU where they build (the mkl
    # extra installed), XLA's dot elsewhere.
    if _GEMM._load()[0] is not None:
        monkeypatch.setenv(GEMM_ENV, "mkl")


def _operands(m, k, n, trans_a, trans_b, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    return a, b


def _exact(a, b, trans_a, trans_b):
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)


def test_xla_by_default_and_mkl_where_switched_on(monkeypatch):
    monkeypatch.delenv(GEMM_ENV, raising=False)
    assert not mkl_available()  # the default builds and loads nothing
    if _GEMM._load()[0] is None:
        pytest.skip("MKL kernels not built here (pip install .[mkl] on x86-64 Linux)")
    monkeypatch.setenv(GEMM_ENV, "auto")
    assert mkl_available() == (cpu_info()["vendor_id"] == "GenuineIntel")
    monkeypatch.setenv(GEMM_ENV, "mkl")
    assert mkl_available()


@pytest.mark.parametrize(("trans_a", "trans_b"), FLAGS)
@pytest.mark.parametrize(("m", "k", "n"), [(37, 53, 29), (1, 200, 4000), (300, 1, 7)])
def test_product_matches_float64(m, k, n, trans_a, trans_b):
    a, b = _operands(m, k, n, trans_a, trans_b)
    out = jax.jit(gemm, static_argnums=(2, 3))(a, b, trans_a, trans_b)
    assert out.shape == (m, n) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, _exact(a, b, trans_a, trans_b), rtol=1e-5, atol=1e-5 * k)


@pytest.mark.parametrize("trans_b", [False, True])
def test_packed_rhs_serves_a_chain_of_products(trans_b):
    # The LSTM's use: one right-hand side, packed once, many dependent products.
    a, b = _operands(8, 6, 6, False, trans_b, seed=5)

    def body(product):
        return jax.lax.fori_loop(0, 3, lambda _, h: jnp.tanh(product(h)), a[:, :6])

    out = jax.jit(lambda b: with_packed_rhs(b, 8, trans_b, body))(b)
    op_b, h = (b.T if trans_b else b).astype(np.float64), a[:, :6].astype(np.float64)
    for _ in range(3):
        h = np.tanh(h @ op_b)
    np.testing.assert_allclose(out, h, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"expected a float32\[8, 6\], got float32\[4, 6\]"):
        jax.jit(lambda b: with_packed_rhs(b, 8, trans_b, lambda product: product(a[:4, :6])))(b)


def test_empty_and_zero_contraction():
    assert jax.jit(gemm)(jnp.ones((0, 3)), jnp.ones((3, 4))).shape == (0, 4)
    np.testing.assert_array_equal(jax.jit(gemm)(jnp.ones((2, 0)), jnp.ones((0, 5))), 0.0)


@pytest.mark.parametrize(("trans_a", "trans_b"), FLAGS)
def test_gradient_matches_the_exact_adjoint(trans_a, trans_b):
    # C = op(A) op(B): dA, dB of <C, G> in float64, mapped back through the transposes.
    a, b = _operands(13, 17, 11, trans_a, trans_b, seed=1)
    g = np.random.default_rng(2).standard_normal((13, 11)).astype(np.float32)
    d_a, d_b = jax.grad(lambda a, b: jnp.sum(gemm(a, b, trans_a, trans_b) * g), (0, 1))(a, b)
    op_a = np.asarray(a, np.float64).T if trans_a else np.asarray(a, np.float64)
    op_b = np.asarray(b, np.float64).T if trans_b else np.asarray(b, np.float64)
    d_op_a, d_op_b = g @ op_b.T, op_a.T @ g
    np.testing.assert_allclose(d_a, d_op_a.T if trans_a else d_op_a, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d_b, d_op_b.T if trans_b else d_op_b, rtol=1e-5, atol=1e-5)


def test_second_order_gradient_through_the_custom_call():
    # The backward pass is itself made of gemm calls, so it differentiates again (reverse
    # over reverse): the Hessian of sum(A B)^2 / 2 applied to A is A B B^T.
    a, b = _operands(3, 4, 5, False, False, seed=3)
    grad = jax.grad(lambda a: 0.5 * jnp.sum(gemm(a, b) ** 2))
    hvp = jax.grad(lambda x: jnp.vdot(grad(x), a))(a)
    b64 = np.asarray(b, np.float64)
    np.testing.assert_allclose(hvp, np.asarray(a, np.float64) @ b64 @ b64.T, rtol=1e-5)


def test_unaligned_operands_give_bitwise_equal_products():
    # MKL's reproducibility mode: a product may not depend on where its operands lie in
    # memory (a resumed training run must repeat the uninterrupted one bit for bit).
    a, b = _operands(129, 1000, 515, False, False, seed=4)
    f = jax.jit(gemm)
    aligned = np.asarray(f(a, b))
    shifted = np.empty(a.size + 1, np.float32)[1:].reshape(a.shape)
    shifted[...] = a
    np.testing.assert_array_equal(np.asarray(f(shifted, b)), aligned)


def _lowered_text(platforms):
    f = jax.jit(lambda a, b: gemm(a, b, False, True))
    spec = jax.ShapeDtypeStruct((4, 3), jnp.float32)
    return f.trace(spec, spec).lower(lowering_platforms=tuple(platforms)).as_text()


def test_cpu_lowers_to_the_custom_call_and_accelerators_to_xla_dot():
    if not mkl_available():
        pytest.skip("no MKL on this machine")
    assert "rinq_sgemm" in _lowered_text(["cpu"])
    assert "rinq_sgemm" not in _lowered_text(["cuda"])
    assert "dot_general" in _lowered_text(["cuda"])


def test_xla_mode_falls_back_and_bad_mode_is_rejected():
    code = (
        "import jax, jax.numpy as jnp, numpy as np\n"
        "from rinq_jax.native import gemm, mkl_available\n"
        "a = np.arange(12, dtype=np.float32).reshape(3, 4)\n"
        "assert not mkl_available()\n"
        "t = jax.jit(gemm).lower(a, a.T).as_text()\n"
        "assert 'rinq_sgemm' not in t, t\n"
        "np.testing.assert_allclose(gemm(a, a.T), a @ a.T)\n"
        "print('ok')\n"
    )
    env = {**os.environ, GEMM_ENV: "xla"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]
    env[GEMM_ENV] = "fast"
    code = "from rinq_jax.native import mkl_available; mkl_available()"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and f"{GEMM_ENV} must be" in done.stderr


def test_bad_operands_are_named():
    with pytest.raises(ValueError, match=r"contraction sizes differ: 4 .* vs 5"):
        gemm(jnp.ones((3, 4)), jnp.ones((5, 6)))
    with pytest.raises(ValueError, match="2-D float32"):
        gemm(jnp.ones((3, 4), jnp.int32), jnp.ones((4, 6)))
    with pytest.raises(ValueError, match="2-D float32"):
        gemm(jnp.ones((2, 3, 4)), jnp.ones((4, 6)))
