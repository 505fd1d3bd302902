"""The quantile layer of RinQ (Hoppe, Thamm et al., MICCAI 2019, Sect. 2.1).

The paper writes the q-quantile of a neighbourhood's predictions ``f`` as ``q(f) = Q f``
with ``Q`` a sparse selection matrix; the backward pass multiplies the cotangent by
``Q^T``, i.e. the gradient flows only into the selected prediction(s).

Definition used here (numpy's default ``method="linear"``, Hyndman & Fan type 7):
with ``n`` values along ``axis`` sorted ascending into ``s_0 <= ... <= s_{n-1}``,

    pos = q * (n - 1),   lo = floor(pos),   hi = min(lo + 1, n - 1),   frac = pos - lo
    quantile = (1 - frac) * s_lo + frac * s_hi

For odd ``n`` and ``q = 0.5`` (the paper's 3x3 = 9 neighbours) ``frac = 0`` and the
result is exactly the median element. For even ``n`` the median is the mean of the two
middle order statistics and ``Q`` has two entries, ``1 - frac`` and ``frac``.

Ties: the order statistic ``s_k`` is attributed to the *first index* (lowest position
along ``axis``) holding that value, so ``Q`` is deterministic. With a stable argsort,
that index is ``order[#(x < s_k)]``. When ``s_lo == s_hi`` both weights land on the same
element (their sum is 1, still a valid selection).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

__all__ = ["quantile"]


def _positions(n: int, q: float) -> tuple[int, int, float]:
    """Sorted positions (lo, hi) and the interpolation weight ``frac`` of the q-quantile."""
    pos = q * (n - 1)
    lo = int(pos // 1)
    hi = min(lo + 1, n - 1)
    return lo, hi, float(pos - lo)


def _first_index_of(x: jax.Array, order: jax.Array, value: jax.Array) -> jax.Array:
    """Lowest index along the last axis whose element equals ``value`` (an order statistic).

    ``order`` is a stable argsort of ``x``; elements smaller than ``value`` fill the first
    ``#(x < value)`` sorted slots, and stability puts the lowest tied index next.
    """
    n_smaller = jnp.sum(x < value[..., None], axis=-1)
    # NaN inputs give n_smaller = 0; clip keeps the gather in range either way.
    n_smaller = jnp.minimum(n_smaller, x.shape[-1] - 1)
    return jnp.take_along_axis(order, n_smaller[..., None], axis=-1)[..., 0]


def _select(x_last: jax.Array, q: float):
    """Forward pass on the last axis: the quantile and the indices/weights that form Q."""
    lo, hi, frac = _positions(x_last.shape[-1], q)
    order = jnp.argsort(x_last, axis=-1, stable=True)
    s_lo = jnp.take_along_axis(x_last, order[..., lo : lo + 1], axis=-1)[..., 0]
    s_hi = jnp.take_along_axis(x_last, order[..., hi : hi + 1], axis=-1)[..., 0]
    idx_lo = _first_index_of(x_last, order, s_lo)
    idx_hi = _first_index_of(x_last, order, s_hi)
    out = s_lo if frac == 0.0 else (1.0 - frac) * s_lo + frac * s_hi
    return out, idx_lo, idx_hi, frac


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _quantile_last(x_last: jax.Array, q: float) -> jax.Array:
    return _select(x_last, q)[0]


def _quantile_last_fwd(x_last: jax.Array, q: float):
    out, idx_lo, idx_hi, frac = _select(x_last, q)
    n = x_last.shape[-1]
    # Residual: Q's row for each quantile, [..., n], with weights 1 - frac and frac
    # (one-hot when frac = 0); tiny for the paper's n = 9.
    q_row = (1.0 - frac) * jax.nn.one_hot(idx_lo, n, dtype=x_last.dtype)
    if frac != 0.0:
        q_row = q_row + frac * jax.nn.one_hot(idx_hi, n, dtype=x_last.dtype)
    return out, q_row


def _quantile_last_bwd(q: float, q_row: jax.Array, g: jax.Array):
    del q  # its weights are already in q_row
    # Q^T g: the cotangent goes into the selected element(s) only.
    return (q_row * g[..., None],)


_quantile_last.defvjp(_quantile_last_fwd, _quantile_last_bwd)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _quantile_jit(x: jax.Array, q: float, axis: int) -> jax.Array:
    # One compiled kernel per shape instead of a dozen op-by-op dispatches when called
    # eagerly; inlined when the caller is itself jitted.
    return _quantile_last(jnp.moveaxis(x, axis, -1), q)


def quantile(x: jax.Array, q: float = 0.5, axis: int = -1) -> jax.Array:
    """Take the q-quantile of ``x`` along ``axis`` with the paper's sparse ``Q^T`` gradient.

    Args:
      x: float array ``[..., n, ...]`` (any float dtype); ``n = x.shape[axis] >= 1``.
      q: quantile level in ``[0, 1]`` (static Python float); 0.5 is the median.
      axis: the axis reduced over (static Python int, negative counts from the end).

    Returns:
      ``x`` with ``axis`` removed, same dtype. Equals ``jnp.quantile(x, q, axis)``
      (numpy's 'linear' interpolation) and ``jnp.median`` for ``q = 0.5``.

    The gradient w.r.t. ``x`` is one-hot at the selected element (weights ``1 - frac``
    and ``frac`` on the two neighbouring order statistics when interpolating); ties
    go to the lowest index. Composes with ``jit``, ``vmap``, ``grad`` and ``pmap``;
    being a ``custom_vjp``, it supports reverse mode only (no ``jvp``/``jacfwd``).

    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"quantile expects a floating-point array, got dtype {x.dtype}")
    if x.ndim == 0:
        raise ValueError("quantile expects an array with at least one axis, got a scalar")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"axis must be in [{-x.ndim}, {x.ndim - 1}] for shape {x.shape}, got {axis}"
        )
    if x.shape[axis] == 0:
        raise ValueError(f"quantile over an empty axis {axis} of shape {x.shape}")
    q = float(q)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    return _quantile_jit(x, q, axis % x.ndim)
