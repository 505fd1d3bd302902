"""The measured B1 map: unbiased, as noisy as specified, blurred like a low-resolution map."""

import numpy as np

from rinq_jax.data.subjects.b1_map import measured_b1_map


def test_a_uniform_field_is_measured_unbiased_with_the_stated_noise():
    b1 = np.full((128, 128), 0.95)
    maps = [measured_b1_map(b1, 2.34, np.random.default_rng(i), noise_pct=3.0) for i in range(4)]
    ratio = np.stack(maps) / 0.95 - 1.0
    assert abs(ratio.mean()) < 0.002
    np.testing.assert_allclose(ratio.std(axis=(1, 2)), 0.03, rtol=1e-6)


def test_an_edge_is_blurred_to_the_stated_resolution():
    b1 = np.ones((64, 64))
    b1[:, 32:] = 1.2
    measured = measured_b1_map(b1, 1.0, np.random.default_rng(0), fwhm_mm=8.0, noise_pct=0.0)
    profile = measured[32]
    # A Gaussian edge of FWHM 8 px climbs from 12 % to 88 % of the step in ~ 1.0 FWHM
    rise = np.flatnonzero((profile > 1.024) & (profile < 1.176))
    assert 6 <= rise.size <= 10
    np.testing.assert_allclose(profile[[0, -1]], [1.0, 1.2], atol=1e-6)
