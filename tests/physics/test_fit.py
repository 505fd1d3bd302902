"""The single-compartment fit: exact on pure fingerprints, a least-squares optimum on mixtures."""

import numpy as np

from rinq_jax.physics.epg import simulate
from rinq_jax.physics.fit import fit_single_compartment
from rinq_jax.physics.sequence import paper_sequence


def _projected_cost(seq, signal, t1_ms, t2_ms, b1):
    """||s - m0 d||^2 with the best complex m0, in float64."""
    d = np.asarray(simulate(seq, t1_ms, t2_ms, b1), np.complex128)
    s = signal.astype(np.complex128)
    return np.sum(np.abs(s) ** 2) - np.abs(np.vdot(d, s)) ** 2 / np.vdot(d, d).real


def test_pure_fingerprints_are_fitted_exactly_from_far_starts():
    seq = paper_sequence(600)
    t1_ms, t2_ms = np.array([400.0, 830.0, 1330.0, 2500.0]), np.array([30.0, 60.0, 85.0, 900.0])
    b1 = np.array([0.9, 1.0, 1.05, 1.12])
    scale = np.array([0.5, 2.0, 1.0, 3.0]) * np.exp(1j * np.array([0.3, -2.0, 1.0, 3.0]))
    signals = np.asarray(simulate(seq, t1_ms, t2_ms, b1)) * scale[:, None]
    fit = fit_single_compartment(seq, signals, b1, 1.3 * t1_ms, 0.75 * t2_ms, n_iter=12)
    np.testing.assert_allclose(fit.t1_ms, t1_ms, rtol=1e-3)
    np.testing.assert_allclose(fit.t2_ms, t2_ms, rtol=1e-3)
    assert np.all(fit.residual < 1e-4)


def test_a_mixture_is_fitted_to_a_local_least_squares_optimum():
    seq = paper_sequence(600)
    wm, gm = (
        np.asarray(simulate(seq, 830.0, 60.0, 0.95)),
        np.asarray(simulate(seq, 1330.0, 85.0, 0.95)),
    )
    signal = 0.6 * 0.69 * wm + 0.4 * 0.8 * gm
    fit = fit_single_compartment(seq, signal[None], [0.95], [1000.0], [70.0], n_iter=10)
    t1, t2 = float(fit.t1_ms[0]), float(fit.t2_ms[0])
    assert 830 < t1 < 1330 and 60 < t2 < 85
    best = _projected_cost(seq, signal, t1, t2, 0.95)
    np.testing.assert_allclose(fit.residual[0] ** 2, best / np.sum(np.abs(signal) ** 2), rtol=1e-2)
    for dt1, dt2 in ((1.01, 1.0), (0.99, 1.0), (1.0, 1.01), (1.0, 0.99)):
        assert _projected_cost(seq, signal, t1 * dt1, t2 * dt2, 0.95) > best
