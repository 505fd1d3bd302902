"""Small images and low-rank series shared by the spiral, NUFFT and acquisition tests."""

import numpy as np

from rinq_jax.data import spiral

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
