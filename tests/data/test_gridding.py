"""The noise level of the gridding reconstruction."""

import math

import numpy as np

from rinq_jax.data.acquisition import gridding, nufft, spiral
from tests.data.acquisition_helpers import M, small_cfg


def test_noise_std_gives_the_asked_image_snr():
    """Monte Carlo: white k-space noise at `noise_std`'s sigma, gridded with the density
    weights (finufft type 1), has per-pixel standard deviation signal_rms / snr."""
    cfg = small_cfg(snr=4.0)
    traj = spiral.spiral_trajectory(cfg)
    w = spiral.density_compensation(traj)
    sigma = gridding.noise_std(2.0, cfg, w)
    rng = np.random.default_rng(0)
    n_draws = 64
    noise = rng.normal(size=(n_draws, *w.shape)) + 1j * rng.normal(size=(n_draws, *w.shape))
    noise *= sigma / math.sqrt(2.0)
    images = nufft.adjoint(noise * w, traj, (M, M), eps=1e-6)
    pixel_std = math.sqrt(np.mean(np.abs(images) ** 2))  # E|x|^2 over draws and pixels
    assert math.isclose(pixel_std, 2.0 / 4.0, rel_tol=0.02)
    assert gridding.noise_std(2.0, small_cfg(), w) == 0.0
