"""Pieces shared by the paper's models: input checks, the BatchNorm block, mixed precision."""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = [
    "check_input",
    "b1_steps",
    "B1_INPUT_SCALE",
    "batch_norm",
    "BN_MOMENTUM",
    "BN_EPSILON",
    "MATMUL_DTYPES",
    "check_matmul_dtype",
    "dot",
    "weight_gradient",
    "matmul",
    "dense_dot_general",
]

# Input dtypes of the models' matmuls. "bfloat16" is mixed precision: inputs rounded to
# bfloat16 (8 significant bits), products accumulated in float32; parameters, optimiser
# state and every elementwise op (gates, BatchNorm, the loss) stay float32. TPUs do this
# by default for float32 matmuls; CPUs with AMX or AVX512-BF16 run it faster than float32
# (benchmarks/results.md).
MATMUL_DTYPES = ("float32", "bfloat16")

# Keras' BatchNormalization defaults (the paper's framework); Flax's own epsilon is 1e-5.
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3


def check_input(x: jax.Array, model: str, patch_size: int, channels: int) -> None:
    """Raise a ValueError unless ``x`` is float[B, patch_size, patch_size, T, channels]."""
    if x.ndim != 5:
        raise ValueError(
            f"{model} expects x of shape [batch, {patch_size}, {patch_size}, T, {channels}], "
            f"got {x.ndim} dimensions: {x.shape}"
        )
    if x.shape[1:3] != (patch_size, patch_size):
        raise ValueError(
            f"{model} expects {patch_size}x{patch_size} patches (x.shape[1:3]), got {x.shape[1:3]}"
        )
    if x.shape[4] != channels:
        raise ValueError(
            f"{model} expects {channels} channel(s) in x.shape[4] "
            f"(1: magnitude, 2: real/imag), got {x.shape[4]}"
        )


B1_INPUT_SCALE = 0.1
"""A measured B1 enters a network as ``(b1 - 1) / B1_INPUT_SCALE``: the training range 0.8-1.2
becomes -2..2, the scale of a normalised input rather than of one of its thousands of points."""


def b1_steps(steps: jax.Array, b1: jax.Array | None, b1_input: bool) -> jax.Array:
    """Append each pixel's measured B1 to each of its LSTM steps.

    Args:
        steps: float32[B, P*P, S, L] (`lstm.group_steps`).
        b1: float32[B, P, P] measured relative B1 (1 = nominal), or None.
        b1_input: whether the model reads B1; it must then be given, and otherwise not.

    Returns:
        ``steps`` itself without B1, else float32[B, P*P, S, L + 1] whose last value in every
        step is ``(b1 - 1) / B1_INPUT_SCALE`` of that pixel.
    """
    if not b1_input:
        if b1 is not None:
            raise ValueError("b1 was given to a model built without b1_input")
        return steps
    batch, n_pixels, n_steps, _ = steps.shape
    if b1 is None or b1.shape != (batch, *(2 * (math.isqrt(n_pixels),))):
        shape = None if b1 is None else b1.shape
        raise ValueError(
            f"a model with b1_input needs b1 of shape [batch, P, P] matching x, got {shape}"
        )
    feature = (b1.reshape(batch, n_pixels, 1, 1).astype(steps.dtype) - 1.0) / B1_INPUT_SCALE
    return jnp.concatenate([steps, jnp.broadcast_to(feature, (batch, n_pixels, n_steps, 1))], -1)


def batch_norm(train: bool, name: str) -> nn.BatchNorm:
    """BatchNorm over the last axis, with batch statistics in train mode.

    Under the sharded ``jit`` of `rinq_jax.training.steps` the statistics are the global
    batch's without any cross-device axis (XLA inserts the reduction).
    """
    return nn.BatchNorm(
        use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name
    )


def check_matmul_dtype(matmul_dtype: str) -> None:
    """Raise a ValueError unless ``matmul_dtype`` is one of ``MATMUL_DTYPES``."""
    if matmul_dtype not in MATMUL_DTYPES:
        raise ValueError(f"matmul_dtype must be one of {MATMUL_DTYPES}, got {matmul_dtype!r}")


def dot(a: jax.Array, b: jax.Array, contract: tuple[int, int], dtype) -> jax.Array:
    """Contract axis ``contract[0]`` of ``a`` with axis ``contract[1]`` of ``b``, inputs in ``dtype``.

    Accumulates and returns float32. Contracting over the stored axes, instead of
    transposing an operand first, matters on XLA:CPU: a bfloat16 product with a transposed
    operand falls back to the float32 kernel.
    """
    return jax.lax.dot_general(
        a.astype(dtype),
        b.astype(dtype),
        (((contract[0],), (contract[1],)), ((), ())),
        preferred_element_type=jnp.float32,
    )


def weight_gradient(a: jax.Array, d_out: jax.Array) -> jax.Array:
    """``a^T d_out`` summed over all leading (row) axes: float32[K, N] from [..., K], [..., N].

    Always float32, also in bfloat16 mode: these products sum over every row of the batch
    (float32 keeps small gradients), and XLA:CPU's bfloat16 kernel for a contraction over
    the leading axis is slower than its float32 one.
    """
    rows = a.reshape(-1, a.shape[-1])
    return dot(rows, d_out.reshape(-1, d_out.shape[-1]), (0, 0), jnp.float32)


@jax.custom_vjp
def _bf16_matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    return dot(a, b, (a.ndim - 1, 0), jnp.bfloat16)


def _bf16_matmul_fwd(a, b):
    a16, b16 = a.astype(jnp.bfloat16), b.astype(jnp.bfloat16)
    return dot(a16, b16, (a.ndim - 1, 0), jnp.bfloat16), (a16, b16)


def _bf16_matmul_bwd(residuals, d_out):
    # Written out: autodiff of the forward would multiply a float32 cotangent by a bfloat16
    # operand and round the product to bfloat16.
    a16, b16 = residuals
    d_a = dot(d_out, b16, (d_out.ndim - 1, 1), jnp.bfloat16)
    return d_a, weight_gradient(a16, d_out)


_bf16_matmul.defvjp(_bf16_matmul_fwd, _bf16_matmul_bwd)


def matmul(a: jax.Array, b: jax.Array, matmul_dtype: str = "float32") -> jax.Array:
    """The product a float32[..., K] @ b float32[K, N] -> float32[..., N] in ``matmul_dtype``.

    "float32": the plain product (`dot`). "bfloat16": inputs rounded to bfloat16, float32
    accumulation; in the gradient the same for ``d_a``, and float32 ``weight_gradient`` for
    ``d_b``.
    """
    check_matmul_dtype(matmul_dtype)
    if matmul_dtype == "float32":
        rows = dot(a.reshape(-1, a.shape[-1]), b, (1, 0), jnp.float32)
        return rows.reshape(*a.shape[:-1], b.shape[-1])
    return _bf16_matmul(a, b)


def _dense_dot_general(matmul_dtype, lhs, rhs, dimension_numbers, precision=None, **_):
    (contract_lhs, contract_rhs), batch = dimension_numbers
    if tuple(contract_lhs) != (lhs.ndim - 1,) or tuple(contract_rhs) != (0,) or batch != ((), ()):
        raise ValueError(f"expected a Dense contraction, got {dimension_numbers}")
    return matmul(lhs, rhs, matmul_dtype)


def dense_dot_general(matmul_dtype: str):
    """``dot_general`` for ``nn.Dense``: ``matmul`` in ``matmul_dtype``."""
    check_matmul_dtype(matmul_dtype)
    return functools.partial(_dense_dot_general, matmul_dtype)
