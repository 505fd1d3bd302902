"""Single-compartment fit of fingerprints: the (T1, T2) a one-tissue model reaches.

Dictionary matching and every network assume one tissue per pixel. A partial-volume pixel's
signal ``s = sum_l f_l pd_l s_l`` is not such a fingerprint; the best a single-compartment
method can do is the least-squares fit

    (T1, T2, m0) = argmin || s - m0 d(T1, T2; b1) ||^2,   m0 complex,

at the pixel's B1. This module solves it by Gauss-Newton in ``theta = (ln T1, ln T2)`` with
variable projection (Golub & Pereyra, SIAM J. Numer. Anal. 10:413, 1973; Kaufman's Jacobian,
BIT 15:49, 1975): ``m0 = <d, s> / <d, d>`` in closed form, residual ``r = s - m0 d``, Jacobian
``J_k = -m0 (d_k - d <d, d_k> / <d, d>)`` with ``d_k = dd / dtheta_k`` from `jax.jvp` through
the EPG (`rinq_jax.physics.epg.simulate`). Levenberg-Marquardt damping keeps each step a
descent step. For a pure tissue's noiseless fingerprint the fit returns the tissue's values.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from rinq_jax.physics import epg
from rinq_jax.physics.sequence import FispSequence


@dataclasses.dataclass(frozen=True)
class FitResult:
    """The fit of N signals.

    Attributes:
        t1_ms, t2_ms: float32[N] fitted relaxation times, ms.
        residual: float32[N] relative residual ``||s - m0 d|| / ||s||``.
    """

    t1_ms: np.ndarray
    t2_ms: np.ndarray
    residual: np.ndarray


def _vdot(a, b):
    """<a, b> = sum conj(a) b over the last axis."""
    return jnp.sum(jnp.conj(a) * b, axis=-1)


def _normal_equations(model, signals, theta):
    """Projected cost ||s - m0 d||^2 [N], Gauss-Newton matrix [N, 2, 2] and J^T r [N, 2]."""
    basis = jnp.broadcast_to(jnp.eye(2, dtype=theta.dtype)[:, None], (2, *theta.shape))
    d, (d1, d2) = jax.vmap(lambda t: jax.jvp(model, (theta,), (t,)), out_axes=(None, 0))(basis)
    dd = jnp.real(_vdot(d, d))
    m0 = _vdot(d, signals) / dd
    residual = signals - m0[:, None] * d
    jac = [-m0[:, None] * (dk - d * (_vdot(d, dk) / dd)[:, None]) for dk in (d1, d2)]
    gram = jnp.stack([jnp.stack([jnp.real(_vdot(a, b)) for b in jac], -1) for a in jac], -2)
    grad = jnp.stack([jnp.real(_vdot(a, residual)) for a in jac], -1)
    return jnp.sum(jnp.abs(residual) ** 2, axis=-1), gram, grad


def _levenberg_marquardt(model, signals, theta, n_iter):
    """``n_iter`` damped Gauss-Newton iterations from ``theta`` [N, 2]; returns (theta, cost)."""
    lower = jnp.log(jnp.array([10.0, 2.0], theta.dtype))
    upper = jnp.log(jnp.array([4500.0, 3000.0], theta.dtype))

    def body(_, carry):
        theta, cost, gram, grad, damping = carry
        scale = jnp.diagonal(gram, axis1=-2, axis2=-1)[:, :, None] * jnp.eye(2)
        step = -jnp.linalg.solve(gram + damping[:, None, None] * scale, grad[..., None])[..., 0]
        trial = jnp.clip(theta + step, lower, upper)
        trial_cost, trial_gram, trial_grad = _normal_equations(model, signals, trial)
        better = trial_cost < cost

        def pick(new, old):
            return jnp.where(better.reshape(-1, *[1] * (new.ndim - 1)), new, old)

        damping = jnp.where(better, damping * 0.3, damping * 10.0)
        return (
            pick(trial, theta),
            pick(trial_cost, cost),
            pick(trial_gram, gram),
            pick(trial_grad, grad),
            damping,
        )

    cost, gram, grad = _normal_equations(model, signals, theta)
    damping = jnp.full(theta.shape[:1], 1e-3, theta.dtype)
    carry = jax.lax.fori_loop(0, n_iter, body, (theta, cost, gram, grad, damping))
    return carry[0], carry[1]


def fit_single_compartment(
    seq: FispSequence,
    signals: np.ndarray,
    b1: np.ndarray,
    t1_init_ms: np.ndarray,
    t2_init_ms: np.ndarray,
    n_iter: int = 6,
    chunk: int = 256,
) -> FitResult:
    """Least-squares (T1, T2) of one compartment for each signal (module docstring).

    Args:
        seq: the schedule the signals were acquired with (T repetitions).
        signals: complex[N, T] fingerprints (any scale and phase).
        b1: float[N] the B1 at which each signal is fitted (relative).
        t1_init_ms: float[N] starting T1, ms (> 0).
        t2_init_ms: float[N] starting T2, ms (> 0).
        n_iter: Levenberg-Marquardt iterations (one EPG pass with two tangents each).
        chunk: signals per compiled call (chunks run on all cores, as `epg.simulate`).

    Returns:
        `FitResult`; values stay inside the paper's dictionary range (T1 10-4,500 ms,
        T2 2-3,000 ms).
    """
    signals = np.asarray(signals, np.complex64)
    if signals.ndim != 2 or signals.shape[1] != seq.n_reps:
        raise ValueError(f"signals must be complex[N, {seq.n_reps}], got {signals.shape}")
    n = signals.shape[0]
    theta = np.log(np.stack([t1_init_ms, t2_init_ms], -1)).astype(np.float32)
    b1 = np.broadcast_to(np.asarray(b1, np.float32), (n,))
    pad = -n % chunk
    padded = [
        np.pad(v, [(0, pad)] + [(0, 0)] * (v.ndim - 1), mode="edge") for v in (signals, b1, theta)
    ]

    @jax.jit
    def run(signals, b1, theta):
        def model(theta):
            return epg.simulate(seq, jnp.exp(theta[:, 0]), jnp.exp(theta[:, 1]), b1)

        return _levenberg_marquardt(model, signals, theta, n_iter)

    def one(start):
        return [np.asarray(v) for v in run(*(v[start : start + chunk] for v in padded))]

    with ThreadPoolExecutor(epg._cores()) as pool:
        results = list(pool.map(one, range(0, n + pad, chunk)))
    theta = np.concatenate([r[0] for r in results])[:n]
    cost = np.concatenate([r[1] for r in results])[:n]
    norm = np.linalg.norm(signals, axis=-1)
    t1, t2 = np.exp(theta).T
    return FitResult(
        t1.astype(np.float32),
        t2.astype(np.float32),
        (np.sqrt(cost) / np.where(norm > 0, norm, 1.0)).astype(np.float32),
    )
