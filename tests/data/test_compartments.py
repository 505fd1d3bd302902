"""The compartment model and the fast acquisition path against the full NUFFT path."""

import math

import numpy as np
import pytest

from rinq_jax.data.acquisition import acquisition, compartments, nufft, spiral
from rinq_jax.data.acquisition.trajectory import Trajectory
from rinq_jax.data.subjects import phantom, phantom_geometry, tissue_values, tissues
from rinq_jax.physics import epg
from rinq_jax.physics.sequence import paper_sequence
from rinq_jax.physics.slice_profile import SliceProfile
from tests.data.acquisition_helpers import acquire_series

N_REPS = 120
MATRIX = 32


@pytest.fixture(scope="module")
def model():
    """Fractions of a small phantom slice, a B1 pattern, and one draw's factors."""
    ph = phantom.make_phantom(
        phantom_geometry.sample_subject(1), 0.5, matrix=MATRIX, variability=False
    )
    u = np.linspace(-1.0, 1.0, MATRIX)
    beta = np.clip(0.7 * u[:, None] - 0.4 * u[None, :] ** 2, -1.0, 1.0)
    maps = compartments.basis_maps(ph.fractions, np.angle(ph.m0), beta)
    seq = paper_sequence(N_REPS)
    values = tissue_values.training_values(
        np.random.default_rng(3), tissue_values.ValueDistribution()
    )
    coef = compartments.fingerprint_coefficients(seq, values)
    return ph, beta, maps, seq, values, coef


def _fast(maps, coef, cfg):
    gridded = compartments.grid_maps(maps, cfg)
    pattern = spiral.interleaf_pattern(cfg, coef.shape[-1])
    series = compartments.gridded_series(gridded.reshape(*gridded.shape[:2], -1), coef, pattern)
    return series.reshape(cfg.matrix, cfg.matrix, -1)


@pytest.mark.parametrize("undersampling", [48, 8])
def test_fast_path_equals_full_nufft_path(model, undersampling):
    _, _, maps, _, _, coef = model
    cfg = spiral.AcquisitionConfig(matrix=MATRIX, undersampling=undersampling, nufft_eps=1e-6)
    series = np.einsum("khw,kt->thw", maps, coef)
    full = acquire_series(series, cfg)
    fast = _fast(maps, coef, cfg)
    assert np.linalg.norm(fast - full) / np.linalg.norm(full) <= 1e-4


def test_fast_path_of_a_given_trajectory_equals_a_direct_nufft_of_each_frame(model):
    """A scanner's trajectory (20 interleaves of another spiral, rotated by the golden angle,
    played in a random order): each frame of the fast compartment path is the density-
    compensated adjoint NUFFT of the forward NUFFT of that frame on its interleaf."""
    _, _, maps, _, _, coef = model
    other = spiral.AcquisitionConfig(
        matrix=MATRIX,
        n_interleaves=20,
        undersampling=20,
        density=spiral.VariableDensity(3.0, 1.0, 2.0),
    )
    base = spiral.spiral_trajectory(other)[0]
    angle = np.arange(20)[:, None] * math.pi * (3.0 - math.sqrt(5.0))  # golden angle
    radius, theta = np.hypot(*base.T), np.arctan2(base[:, 1], base[:, 0])
    coords = np.stack([radius * np.cos(theta + angle), radius * np.sin(theta + angle)], -1)
    order = np.random.default_rng(0).integers(0, 20, N_REPS)
    given = Trajectory(coords, order)
    cfg = spiral.AcquisitionConfig.for_trajectory(given, matrix=MATRIX, nufft_eps=1e-6)
    fast = _fast(maps, coef, cfg)
    weights = spiral.density_compensation(given.coords) * 20
    for t in (0, 1, 57, N_REPS - 1):
        frame = np.einsum("khw,k->hw", maps, coef[:, t])
        i = order[t]
        kspace = nufft.forward(frame, given.coords[i], eps=1e-6)
        direct = nufft.adjoint(kspace * weights[i], given.coords[i], (MATRIX, MATRIX), eps=1e-6)
        error = np.linalg.norm(fast[..., t] - direct) / np.linalg.norm(direct)
        assert error <= 1e-4, (t, error)


def test_fast_path_plus_acquire_noise_equals_noisy_full_path(model):
    _, _, maps, _, _, coef = model
    cfg = spiral.AcquisitionConfig(matrix=MATRIX, snr=20.0, nufft_eps=1e-6)
    series = np.einsum("khw,kt->thw", maps, coef)
    full = acquire_series(series, cfg, np.random.default_rng(7))
    rms = compartments.signal_rms(maps, coef)
    assert rms == pytest.approx(np.sqrt(np.mean(np.abs(series) ** 2)), rel=1e-5)
    noise = acquisition.acquire_noise(cfg, N_REPS, rms, np.random.default_rng(7))
    fast = _fast(maps, coef, cfg) + noise
    assert np.linalg.norm(fast - full) / np.linalg.norm(full) <= 1e-4


def test_model_series_is_the_sum_of_compartment_fingerprints(model):
    """Without B1 the separable model is exactly sum_l f_l pd_l e^{i phi} EPG(T1_l, T2_l)."""
    ph, beta, _, seq, values, _ = model
    values = tissue_values.TissueValues(values.t1_ms, values.t2_ms, values.pd, 0.0, 0.4)
    maps = compartments.basis_maps(ph.fractions, np.angle(ph.m0), beta)
    coef = compartments.fingerprint_coefficients(seq, values)
    x = np.einsum("khw,kt->hwt", maps, coef)
    r, c = MATRIX // 2, MATRIX // 2
    labels = list(compartments.LABELS)
    s = np.asarray(epg.simulate(seq, values.t1_ms[labels], values.t2_ms[labels]))
    expected = np.exp(1j * (np.angle(ph.m0[r, c]) + 0.4)) * (
        (ph.fractions[labels, r, c] * values.pd[labels]) @ s
    )
    np.testing.assert_allclose(x[r, c], expected, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("label", [tissues.WM, tissues.GM])
def test_b1_quadratic_is_exact_at_the_nodes_and_close_between(label):
    seq = paper_sequence(600)
    a = 0.15
    t1, t2 = tissues.TISSUE_PROPERTIES[label].t1_ms, tissues.TISSUE_PROPERTIES[label].t2_ms
    t1_ms = np.full(tissues.N_CLASSES, t1)
    t2_ms = np.full(tissues.N_CLASSES, t2)
    pd = np.ones(tissues.N_CLASSES)
    coef = compartments.fingerprint_coefficients(
        seq, tissue_values.TissueValues(t1_ms, t2_ms, pd, a)
    ).reshape(len(compartments.LABELS), compartments.N_POWERS, -1)[0]
    beta = np.linspace(-1.0, 1.0, 9)
    approx = np.stack([coef[0] + b * coef[1] + b**2 * coef[2] for b in beta])
    exact = np.asarray(epg.simulate(seq, t1, t2, 1.0 + a * beta))
    error = np.linalg.norm(approx - exact, axis=1) / np.linalg.norm(exact, axis=1)
    assert error[[0, 4, 8]].max() < 1e-5  # the interpolation nodes
    assert error.max() < 2e-3


def test_true_maps_pure_mixed_and_empty_pixels():
    values = tissue_values.population_values(np.random.default_rng(0))
    f = np.zeros((tissues.N_CLASSES, 3))
    f[tissues.WM, 0] = 1.0
    f[tissues.WM, 1], f[tissues.CSF, 1] = 0.6, 0.4
    f[tissues.BACKGROUND, 2] = 1.0
    t1, t2 = compartments.true_maps(f, values)
    assert t1[0] == pytest.approx(values.t1_ms[tissues.WM], rel=1e-6)
    assert t2[0] == pytest.approx(values.t2_ms[tissues.WM], rel=1e-6)
    w_wm, w_csf = 0.6 * values.pd[tissues.WM], 0.4 * values.pd[tissues.CSF]
    rate = (w_wm / values.t1_ms[tissues.WM] + w_csf / values.t1_ms[tissues.CSF]) / (w_wm + w_csf)
    assert t1[1] == pytest.approx(1.0 / rate, rel=1e-6)
    assert values.t1_ms[tissues.WM] < t1[1] < values.t1_ms[tissues.CSF]
    assert t1[2] == 0.0 and t2[2] == 0.0


def test_noise_bank_has_the_variance_of_the_gridded_noise():
    """Bank images times rms / snr have the per-pixel variance of acquire_noise's frames."""
    cfg = spiral.AcquisitionConfig(matrix=MATRIX, snr=10.0)
    rms = 2.0
    noise = acquisition.acquire_noise(cfg, 480, rms, np.random.default_rng(1))
    bank = compartments.noise_bank(cfg, 10, np.random.default_rng(2)) * (rms / cfg.snr)
    var_noise, var_bank = np.mean(np.abs(noise) ** 2), np.mean(np.abs(bank) ** 2)
    assert var_bank == pytest.approx(var_noise, rel=0.05)
    # an undersampled frame is noisier than the fully sampled one by about sqrt(48)
    assert math.sqrt(var_bank) / (rms / cfg.snr) == pytest.approx(math.sqrt(48), rel=0.15)


def test_brain_like_training_values_stay_in_the_dictionary_range_and_vary():
    rng = np.random.default_rng(0)
    distribution = tissue_values.ValueDistribution()
    draws = [tissue_values.training_values(rng, distribution) for _ in range(200)]
    t1 = np.array([d.t1_ms[1:] for d in draws])
    t2 = np.array([d.t2_ms[1:] for d in draws])
    assert t1.min() >= tissues.DICT_T1_RANGE_MS[0] and t1.max() <= tissues.DICT_T1_RANGE_MS[1]
    assert np.all(t2 <= t1)
    wm = t1[:, tissues.WM - 1] / tissues.TISSUE_PROPERTIES[tissues.WM].t1_ms
    assert wm.min() < 0.75 and wm.max() > 1.35  # far wider than the subjects' +-4 %
    assert wm.max() < np.exp(0.35) + 1e-9
    assert all(0.0 <= d.b1_amplitude <= 0.15 for d in draws)


def test_wide_draws_cover_the_range_log_uniformly_in_the_brain_only():
    rng = np.random.default_rng(1)
    distribution = tissue_values.ValueDistribution(wide_fraction=1.0, max_b1_amplitude=0.2)
    draws = [tissue_values.training_values(rng, distribution) for _ in range(2000)]
    t1 = np.array([d.t1_ms for d in draws])
    t2 = np.array([d.t2_ms for d in draws])
    brain = list(tissues.BRAIN_LABELS)
    # ln T1 uniform on [ln 50, ln 4500]: its quartiles at a quarter, half, three quarters
    u = (np.log(t1[:, brain]) - np.log(50.0)) / np.log(4500.0 / 50.0)
    np.testing.assert_allclose(np.percentile(u, [25, 50, 75]), [0.25, 0.5, 0.75], atol=0.02)
    assert np.all(t2[:, brain] <= t1[:, brain]) and t2[:, brain].min() >= 5.0
    # the same white matter value as a 0.5x or 2x subject is drawn often
    wm = t1[:, tissues.WM] / tissues.TISSUE_PROPERTIES[tissues.WM].t1_ms
    assert np.mean(wm < 0.6) > 0.1 and np.mean(wm > 1.8) > 0.1
    # the head around the brain keeps brain-like values
    fat = t1[:, tissues.FAT] / tissues.TISSUE_PROPERTIES[tissues.FAT].t1_ms
    assert fat.min() > np.exp(-0.35) - 1e-9 and fat.max() < np.exp(0.35) + 1e-9
    assert max(d.b1_amplitude for d in draws) > 0.19


def test_reachable_truth_is_the_tissue_value_in_pure_pixels_and_between_in_mixtures():
    seq = paper_sequence(N_REPS)
    values = tissue_values.population_values(np.random.default_rng(4), 0.1)
    fractions = np.zeros((tissues.N_CLASSES, 3))
    fractions[tissues.WM, 0] = 1.0  # pure white matter
    fractions[tissues.GM, 1] = 1.0  # pure grey matter
    fractions[[tissues.WM, tissues.GM], 2] = 0.5  # a half-half boundary pixel
    t1, t2 = compartments.single_compartment_maps(seq, fractions, values, np.array([0.3, -1, 0.5]))
    np.testing.assert_allclose(t1[:2], values.t1_ms[[tissues.WM, tissues.GM]], rtol=1e-6)
    np.testing.assert_allclose(t2[:2], values.t2_ms[[tissues.WM, tissues.GM]], rtol=1e-6)
    assert t1[0] < t1[2] < t1[1] and t2[0] < t2[2] < t2[1]


def test_tissue_values_refuse_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        tissue_values.TissueValues(np.ones(3), np.ones(8), np.ones(8))
    with pytest.raises(ValueError, match="b1_amplitude"):
        tissue_values.TissueValues(np.ones(8), np.ones(8), np.ones(8), 0.7)


def test_profile_coefficients_are_the_weighted_sum_of_fingerprints_at_scaled_b1():
    seq = paper_sequence(200)
    values = tissue_values.population_values(np.random.default_rng(1), b1_amplitude=0.1)
    ideal = compartments.fingerprint_coefficients(seq, values)
    unit = SliceProfile(np.array([1.0]), np.array([1.0]))
    np.testing.assert_allclose(
        compartments.fingerprint_coefficients(seq, values, unit), ideal, rtol=1e-5, atol=1e-7
    )
    # two positions at flip scales 0.6 and 0.9: the zeroth coefficient (B1 = 1) of a label is
    # the mean of the two fingerprints, times the label's PD and the draw's phase
    two = SliceProfile(np.array([0.6, 0.9]), np.array([0.5, 0.5]))
    coef = compartments.fingerprint_coefficients(seq, values, two)
    label = compartments.LABELS[0]
    expected = 0.5 * sum(
        np.asarray(epg.simulate(seq, values.t1_ms[label], values.t2_ms[label], scale))
        for scale in (0.6, 0.9)
    )
    expected = expected * values.pd[label] * np.exp(1j * values.phase_rad)
    np.testing.assert_allclose(coef[0], expected, rtol=1e-4, atol=1e-6)
