"""Tests of the input transforms: normalisation and edge-replicated patches."""

import numpy as np
import pytest

from rinq_jax.data.pipeline.transforms import (
    input_subspace,
    normalise_signals,
    phase_factor,
    project,
)
from rinq_jax.physics import epg
from rinq_jax.physics.sequence import paper_sequence

# ----------------------------------------------------------------------------- normalisation


def test_the_global_phase_of_a_fingerprint_is_removed_exactly():
    from rinq_jax.physics.epg import simulate
    from rinq_jax.physics.sequence import paper_sequence

    seq = paper_sequence(600)
    d = np.asarray(simulate(seq, np.array([300.0, 830.0, 4100.0]), np.array([20.0, 60.0, 1800.0])))
    # FISP with RF phases in 180 deg steps: the signal is i times a real fingerprint
    np.testing.assert_allclose(d.real, 0.0, atol=1e-7)
    phi = np.array([0.3, 2.0, -3.0])
    rotated = 2.5 * np.exp(1j * phi)[:, None] * d
    normalised, _ = normalise_signals(rotated)
    np.testing.assert_allclose(normalised.imag, 0.0, atol=1e-5)
    assert np.all(normalised.real[:, 300:].mean(axis=1) > 0)
    # the same fingerprint at any phase normalises to the same series
    np.testing.assert_allclose(normalised, normalise_signals(-1j * d)[0], atol=1e-5)
    assert phase_factor(np.zeros(10, np.complex64)) == 1


def test_normalise_signals():
    rng = np.random.default_rng(0)
    signals = (rng.normal(size=(4, 5, 40)) + 1j * rng.normal(size=(4, 5, 40))) * 1e3
    signals[0, 0] = 0
    normalised, norms = normalise_signals(signals.astype(np.complex64))
    assert normalised.dtype == np.complex64 and norms.dtype == np.float32
    got = np.linalg.norm(normalised, axis=-1)
    np.testing.assert_allclose(got[1:], np.sqrt(40), rtol=1e-5)
    assert got[0, 0] == 0 and norms[0, 0] == 0 and np.isfinite(normalised).all()
    np.testing.assert_allclose(norms, np.linalg.norm(signals, axis=-1), rtol=1e-5)
    undone = normalised * norms[..., None] / np.sqrt(40) / phase_factor(signals)[..., None]
    np.testing.assert_allclose(undone, signals, rtol=1e-4)
    np.testing.assert_allclose(np.abs(phase_factor(signals)), 1.0, rtol=1e-6)


def test_the_input_subspace_keeps_fingerprints_and_removes_most_of_white_noise(tmp_path):
    """``project`` is the orthogonal projector onto the matching dictionary's span.

    Closed forms: idempotent (P P = P), the residual is orthogonal to the basis, a fingerprint
    of the grid keeps its energy (to the compression's 1e-3), and white noise keeps r / T of
    its energy on average.
    """
    seq = paper_sequence(200, 0)
    basis = input_subspace(seq, tmp_path)
    r, n_reps = basis.shape
    assert r == 50 and input_subspace(seq, tmp_path) is basis  # built once per process
    atoms = np.asarray(
        epg.simulate(seq, np.array([400.0, 830.0, 2000.0]), np.array([30.0, 80.0, 600.0]), 0.93)
    )
    kept = project(atoms, basis)
    np.testing.assert_allclose(
        np.linalg.norm(kept, axis=-1) / np.linalg.norm(atoms, axis=-1), 1, atol=1e-3
    )
    np.testing.assert_allclose(project(kept, basis), kept, atol=1e-6)
    noise = np.random.default_rng(0).standard_normal((4000, n_reps)) * (1 + 1j)
    residual = noise - project(noise, basis)
    assert np.abs(residual @ basis.conj().T).max() < 1e-4 * np.abs(noise).max()
    fraction = np.sum(np.abs(project(noise, basis)) ** 2) / np.sum(np.abs(noise) ** 2)
    assert fraction == pytest.approx(r / n_reps, rel=0.02)
