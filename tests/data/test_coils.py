"""Receive coils: normalised Biot-Savart sensitivities and Walsh's adaptive combination."""

import numpy as np
import pytest

from rinq_jax.data.acquisition import coils
from tests.data.acquisition_helpers import M, expand, phantom_subspace


@pytest.mark.parametrize("n_coils", [1, 2, 8, 32])
def test_sensitivities_have_unit_sum_of_squares_and_are_smooth(n_coils):
    sens = coils.coil_sensitivities(M, n_coils)
    assert sens.shape == (n_coils, M, M) and sens.dtype == np.complex64
    np.testing.assert_allclose(np.sum(np.abs(sens) ** 2, axis=0), 1.0, atol=1e-5)
    # Smooth in the disc inscribed in the FOV (where the head is; the corners come close to
    # the coils): neighbouring pixels differ by a few percent of the largest magnitude.
    yy, xx = np.mgrid[:M, :M] - M // 2
    disc = np.hypot(yy, xx) < M // 2 - 1
    for axis in (1, 2):
        step = np.abs(np.diff(sens, axis=axis))[
            :, disc[:-1] & disc[1:] if axis == 1 else disc[:, :-1] & disc[:, 1:]
        ]
        assert step.max() < 0.1 * np.abs(sens).max()
    if n_coils > 1:  # distinct coils: each is brightest on its own side of the FOV
        brightest = np.argmax(np.abs(sens).reshape(n_coils, -1), axis=1)
        assert np.unique(brightest).size == n_coils


def test_single_coil_is_uniform_and_its_combination_the_identity():
    np.testing.assert_array_equal(coils.coil_sensitivities(M, 1), np.ones((1, M, M)))
    rng = np.random.default_rng(0)
    images = (rng.normal(size=(1, M, M, 5)) + 1j * rng.normal(size=(1, M, M, 5))).astype(
        np.complex64
    )
    weights = coils.walsh_weights(images.mean(-1))
    np.testing.assert_array_equal(weights, np.ones((1, M, M)))
    np.testing.assert_array_equal(coils.combine(weights, images), images[0])


@pytest.mark.parametrize("n_coils", [2, 8])
def test_walsh_reproduces_the_single_coil_series_up_to_a_time_constant_smooth_factor(n_coils):
    coefficients, basis, mask = phantom_subspace(n_reps=60)
    series = expand(coefficients, basis)  # [H, W, T]: the single-coil image series m_t
    sens = coils.coil_sensitivities(M, n_coils)
    coil_series = sens[..., None] * series[None]  # x_{c,t} = S_c m_t
    # Sensitivities from time-segment averages, one set of weights for every repetition.
    segments = coil_series.reshape(n_coils, M, M, 4, 15).mean(-1)
    weights = coils.walsh_weights(segments)
    np.testing.assert_allclose(np.sum(np.abs(weights) ** 2, axis=0), 1.0, atol=1e-5)
    combined = coils.combine(weights, coil_series)
    assert combined.shape == series.shape and combined.dtype == np.complex64
    # g per pixel by least squares over time; then every repetition's ratio against it.
    g = np.sum(combined * series.conj(), axis=-1) / np.maximum(
        np.sum(np.abs(series) ** 2, -1), 1e-30
    )
    inside = mask[..., None] & (np.abs(series) > 1e-3 * np.abs(series).max())
    ratio = combined[inside] / series[inside]
    # The same factor g at every repetition ...
    assert np.max(np.abs(ratio - np.broadcast_to(g[..., None], series.shape)[inside])) < 1e-4
    # ... of unit magnitude (the sensitivities' sum of squares) ...
    np.testing.assert_allclose(np.abs(g[mask]), 1.0, atol=5e-3)
    # ... and a smooth phase, the reference coil's (no per-pixel phase jumps).
    step_rows = np.angle(g[1:] / g[:-1])[mask[1:] & mask[:-1]]
    step_cols = np.angle(g[:, 1:] / g[:, :-1])[mask[:, 1:] & mask[:, :-1]]
    assert max(np.abs(step_rows).max(), np.abs(step_cols).max()) < 0.2


def test_walsh_weights_match_the_true_sensitivities_up_to_the_reference_phase():
    coefficients, basis, mask = phantom_subspace(n_reps=40)
    sens = coils.coil_sensitivities(M, 8)
    reference = sens * expand(coefficients, basis).mean(-1)[None]
    weights = coils.walsh_weights(reference)
    # w ~ S / |S| exp(-i arg S_ref), |S| = 1: the true sensitivities with the reference's phase.
    ref = int(np.argmax(np.sum(np.abs(reference) ** 2, axis=(1, 2))))
    expected = sens * np.exp(-1j * np.angle(sens[ref]))[None]
    error = np.abs(weights - expected)[:, mask]
    assert np.mean(error) < 0.01 and np.max(error) < 0.1, (np.mean(error), np.max(error))


def test_combination_keeps_the_snr_of_white_coil_noise():
    rng = np.random.default_rng(1)
    sens = coils.coil_sensitivities(M, 8)
    weights = coils.walsh_weights(sens)  # as if from a uniform object
    noise = (rng.normal(size=(8, M, M, 50)) + 1j * rng.normal(size=(8, M, M, 50))) / np.sqrt(2)
    combined = coils.combine(weights, noise.astype(np.complex64))
    # Unit-norm weights: combined noise has the per-coil variance, like a single coil.
    assert abs(np.mean(np.abs(combined) ** 2) - 1.0) < 0.02


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="n_coils"):
        coils.coil_sensitivities(M, 0)
    with pytest.raises(ValueError, match="outside the FOV"):
        coils.coil_sensitivities(M, 4, coil_radius=1.0)
    with pytest.raises(ValueError, match="odd"):
        coils.walsh_weights(np.ones((2, 8, 8), np.complex64), window=4)
    with pytest.raises(ValueError, match="finite"):
        coils.walsh_weights(np.full((2, 8, 8), np.nan, np.complex64))
    with pytest.raises(ValueError, match="must start with"):
        coils.combine(np.ones((2, 8, 8)), np.ones((3, 8, 8)))
