"""The measured B1 map: unbiased, as noisy as specified, blurred like a low-resolution map."""

import numpy as np
import pytest

from rinq_jax.data.subjects.b1_map import blurred, measured_b1_map, patch_noise


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


def test_patch_noise_is_the_maps_noise_on_a_few_pixels():
    """The training stream's per-patch map noise has the full map's s.d. and pixel correlation.

    Reference: a 512 x 512 map of a uniform field (its noise image ``e``); both against the
    closed form of white noise through a Gaussian of sigma 1 px, correlation exp(-d^2 / 4)
    at lag d (within the discrete kernel's 0.5 %).
    """
    patches = patch_noise(np.random.default_rng(0), 100_000, 3, noise_pct=3.0)
    full = measured_b1_map(np.ones((512, 512)), 1.0, np.random.default_rng(1)) - 1.0
    assert patches.std() == pytest.approx(0.03, rel=0.01)
    for dr, dc in [(0, 1), (1, 0), (1, 1), (0, 2)]:
        closed_form = np.exp(-(dr**2 + dc**2) / 4.0)
        a, b = patches[:, 0, 0], patches[:, dr, dc]
        assert np.corrcoef(a, b)[0, 1] == pytest.approx(closed_form, abs=0.01)
        a, b = full[: 512 - dr, : 512 - dc], full[dr:, dc:]
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] == pytest.approx(closed_form, abs=0.01)


def test_the_blur_of_a_pattern_is_the_blur_of_its_field_less_one():
    """``G (1 + a beta) = 1 + a G beta``: the stream stores G beta once per slice."""
    beta = np.random.default_rng(2).uniform(-1, 1, (40, 40))
    np.testing.assert_allclose(
        blurred(1.0 + 0.15 * beta, 2.3), 1.0 + 0.15 * blurred(beta, 2.3), atol=1e-12
    )
    uniform = measured_b1_map(np.full((40, 40), 1.1), 2.3, np.random.default_rng(0), noise_pct=0)
    np.testing.assert_allclose(uniform, 1.1, rtol=1e-6)
