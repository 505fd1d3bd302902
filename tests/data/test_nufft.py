"""The finufft NUFFT: adjointness, agreement with the direct DFT, gridding round trip, checks."""

import numpy as np
import pytest

from rinq_jax.data.acquisition import nufft, spiral
from tests.data.acquisition_helpers import M, rel_err, small_cfg, smooth_ellipse


@pytest.mark.parametrize("eps", [1e-4, 1e-6])
def test_forward_adjoint_are_adjoint(eps):
    rng = np.random.default_rng(1)
    traj = spiral.spiral_trajectory(small_cfg())[:5]
    shape_k = (3, *traj.shape[:-1])
    x = (rng.standard_normal((3, M, M)) + 1j * rng.standard_normal((3, M, M))).astype(np.complex64)
    y = (rng.standard_normal(shape_k) + 1j * rng.standard_normal(shape_k)).astype(np.complex64)
    ax = nufft.forward(x, traj, eps=eps)
    ahy = nufft.adjoint(y, traj, (M, M), eps=eps)
    assert ax.shape == shape_k and ax.dtype == np.complex64
    assert ahy.shape == (3, M, M) and ahy.dtype == np.complex64
    lhs = np.vdot(y.astype(np.complex128), ax.astype(np.complex128))
    rhs = np.vdot(ahy.astype(np.complex128), x.astype(np.complex128))
    assert abs(lhs - rhs) / abs(lhs) < 1e-5


def test_forward_matches_direct_dft_and_batching():
    rng = np.random.default_rng(2)
    n = 16
    traj = rng.uniform(-np.pi, np.pi, (40, 2)).astype(np.float32)
    x = (rng.standard_normal((2, n, n)) + 1j * rng.standard_normal((2, n, n))).astype(np.complex64)
    pos = np.arange(n) - n // 2
    phase = np.exp(
        -1j * (traj[:, 0, None, None] * pos[:, None] + traj[:, 1, None, None] * pos[None, :])
    )
    direct = np.einsum("bhw,jhw->bj", x.astype(np.complex128), phase)
    out = nufft.forward(x, traj, eps=1e-6)
    np.testing.assert_allclose(out, direct, rtol=0, atol=1e-4 * np.abs(direct).max())
    np.testing.assert_allclose(nufft.forward(x[1], traj, eps=1e-6), out[1], atol=1e-5)


def test_fully_sampled_round_trip_is_near_identity():
    cfg = small_cfg(fully_sampled=True)
    traj = spiral.spiral_trajectory(cfg)
    w = spiral.density_compensation(traj)
    img = (smooth_ellipse(0.7, 0.85) + 0.5j * smooth_ellipse(0.3, 0.2, 0.2, 0.1)).astype(
        np.complex64
    )
    rec = nufft.adjoint(w * nufft.forward(img, traj), traj, (M, M))
    assert rel_err(rec, img, smooth_ellipse(0.7, 0.85) > 0.5) < 0.05


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="traj"):
        nufft.forward(np.zeros((M, M), np.complex64), np.zeros((10, 3), np.float32))
    with pytest.raises(ValueError, match="traj"):
        nufft.forward(np.zeros((M, M), np.complex64), np.full((10, 2), 20.0, np.float32))
    with pytest.raises(ValueError, match="kdata"):
        nufft.adjoint(np.zeros((7,), np.complex64), np.zeros((10, 2), np.float32), (M, M))
    with pytest.raises(ValueError, match="nthreads"):
        nufft.forward(np.zeros((M, M), np.complex64), np.zeros((10, 2), np.float32), nthreads=0)
