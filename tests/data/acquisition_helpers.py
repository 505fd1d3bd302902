"""Small images and low-rank series shared by the spiral, NUFFT and acquisition tests."""

import math

import numpy as np

from rinq_jax.data.acquisition import spiral
from rinq_jax.data.acquisition.gridding import DEFAULT_BATCH, blocking, grid_repetitions
from rinq_jax.data.acquisition.nufft import GroupPlan

M = 64  # small matrix keeps every test at a fraction of a second


def small_cfg(**kw) -> spiral.AcquisitionConfig:
    return spiral.AcquisitionConfig(matrix=M, **kw)


def smooth_ellipse(a, b, cx=0.0, cy=0.0, width=0.08, matrix=M):
    """Ellipse with tanh edges (band-limited enough for a gridding round trip), float64[M, M]."""
    yy, xx = np.mgrid[-matrix // 2 : matrix // 2, -matrix // 2 : matrix // 2] / (matrix / 2)
    d = np.sqrt(((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2)
    return 0.5 * (1.0 - np.tanh((d - 1.0) / width))


def phantom_subspace(n_reps=200, seed=0):
    """Phantom-like low-rank series: 3 smooth tissue regions, each with its own time course.

    Returns coefficients complex64[K, M, M], basis complex64[K, T], object mask bool[M, M].
    """
    head = smooth_ellipse(0.75, 0.9)
    regions = [head, smooth_ellipse(0.3, 0.45, 0.15, 0.05), smooth_ellipse(0.2, 0.15, -0.3, -0.4)]
    t = np.arange(n_reps) / n_reps
    rng = np.random.default_rng(seed)
    courses = []
    for i in range(len(regions)):
        phase = rng.uniform(0, 2 * np.pi)
        courses.append(np.exp(-t * (1 + i)) * np.exp(1j * (phase + 3 * t * i)) * (1 + 0.3 * i))
    coefficients = np.stack(regions).astype(np.complex64)
    basis = np.stack(courses).astype(np.complex64)
    return coefficients, basis, head > 0.5


def expand(coefficients, basis):
    """Series complex64[H, W, T] = sum_k c_k b_k(t)."""
    return np.einsum("khw,kt->hwt", coefficients, basis).astype(np.complex64)


def rel_err(a, b, mask):
    return np.linalg.norm((a - b)[mask]) / np.linalg.norm(b[mask])


def acquire_series(frames, cfg, rng=None, batch=DEFAULT_BATCH):
    """Reference acquisition of a plain image series frames complex[T, H, W] -> [H, W, T].

    Each repetition's frame goes through its own k-space sampling (no subspace), with the
    noise `acquisition.acquire` draws for the same ``rng``: the slow path the fast ones are
    checked against.
    """
    frames = np.asarray(frames)
    n_reps, m = frames.shape[0], cfg.matrix
    signal_rms = math.sqrt(sum(float(np.vdot(f, f).real) for f in frames) / (n_reps * m * m))
    traj = spiral.spiral_trajectory(cfg)
    _, n_trans = blocking(cfg, batch, n_reps)
    plan = GroupPlan(2, cfg, traj, spiral.interleaf_schedule(cfg, n_reps), n_trans, 1)
    data = np.zeros((n_trans, m, m), np.complex64)

    def clean_kspace(group, reps):
        data[reps.size :] = 0.0
        data[: reps.size] = frames[reps]
        return plan.execute(group, reps[0], data)[: reps.size]

    return grid_repetitions(
        cfg,
        n_reps,
        clean_kspace,
        rng,
        signal_rms,
        batch=batch,
        nthreads=1,
        progress=False,
        out=None,
    )
