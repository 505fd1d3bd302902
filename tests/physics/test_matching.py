"""Template matching of noiseless atoms against full and compressed paper-grid dictionaries."""

import numpy as np
import pytest

from rinq_jax.physics.matching import match


def _noiseless_signals(dictionary, index, rng):
    m0 = (rng.normal(size=index.size) + 1j * rng.normal(size=index.size)).astype(np.complex64)
    return dictionary.atoms[index] * (dictionary.norms[index] * m0)[:, None], m0


def test_noiseless_atoms_match_their_own_entries(paper_dictionaries):
    seq, full, compressed = paper_dictionaries
    rng = np.random.default_rng(0)
    index = rng.choice(len(full.grid), 600, replace=False)
    signals, m0 = _noiseless_signals(full, index, rng)
    correlation = np.abs(compressed.atoms[index] @ compressed.atoms.conj().T)  # [600, N]
    correlation[np.arange(len(index)), index] = 0
    nearest_other = correlation.max(axis=1)
    assert np.mean(nearest_other < 1 - 1e-6) > 0.95  # the exemption stays an exception
    for dictionary in (full, compressed):
        result = match(signals.reshape(20, 30, -1), dictionary)
        assert result.t1_ms.shape == (20, 30)
        found = result.index.ravel()
        # Some atoms have a twin closer than float32 resolves: at TE = 2 ms and T1 = 10 ms,
        # T2 = 2, 4 and 6 ms differ by ~1e-7 in correlation. Where the nearest other atom
        # correlates below 1 - 1e-6, the entry itself must be found.
        distinguishable = nearest_other < 1 - 1e-6
        np.testing.assert_array_equal(found[distinguishable], index[distinguishable])
        assert np.all(full.grid.t1_ms[found] == full.grid.t1_ms[index])
        assert np.all(
            np.abs(np.sum(full.atoms[found].conj() * full.atoms[index], axis=-1)) > 1 - 1e-6
        )
        np.testing.assert_allclose(
            result.m0.ravel()[distinguishable], m0[distinguishable], rtol=1e-3
        )
        np.testing.assert_allclose(result.score, 1.0, atol=1e-4)
    # Projected coefficients match exactly like the full time series.
    np.testing.assert_array_equal(match(compressed.project(signals), compressed).index, found)


def test_match_refuses_signals_of_another_length(paper_dictionaries):
    _, full, compressed = paper_dictionaries
    with pytest.raises(ValueError, match="expected 3000 time points or 50 coefficients"):
        match(np.zeros((4, 100), np.complex64), compressed)


def _b1_dictionary(seq, b1_values):
    """Paper-grid entries with 500 <= T1 <= 1500 ms, 20 <= T2 <= 150 ms, on a B1 axis."""
    from rinq_jax.physics import dictionary as dic

    grid = dic.paper_grid(b1_values=b1_values)
    keep = (grid.t1_ms >= 500) & (grid.t1_ms <= 1500) & (grid.t2_ms >= 20) & (grid.t2_ms <= 150)
    sub = dic.Grid(grid.t1_ms[keep], grid.t2_ms[keep], grid.b1[keep])
    return dic.build(seq, sub, progress=False)


def test_matching_at_a_known_b1_returns_the_nearest_grid_point():
    from rinq_jax.physics.epg import simulate
    from rinq_jax.physics.matching import at_b1, match_with_b1
    from rinq_jax.physics.sequence import paper_sequence

    seq = paper_sequence(1000)
    dictionary = _b1_dictionary(seq, [0.9, 0.95, 1.0, 1.05, 1.1])
    # At a grid B1 the interpolated dictionary is that B1's own entries.
    exact = at_b1(dictionary, 1.05)
    np.testing.assert_allclose(exact.atoms, dictionary.atoms[3::5], atol=1e-6)
    # Off-grid values and B1: (836, 61.5) ms lies nearest the grid point (840, 62).
    t1_ms, t2_ms = np.array([836.0, 1327.0, 604.0]), np.array([61.5, 84.0, 41.6])
    b1 = np.array([0.97, 1.033, 0.912])
    signals = np.asarray(simulate(seq, t1_ms, t2_ms, b1)) * np.exp(1j)
    result = match_with_b1(signals, dictionary, b1)
    np.testing.assert_array_equal(result.t1_ms, [840.0, 1320.0, 600.0])
    np.testing.assert_array_equal(result.t2_ms, [62.0, 84.0, 42.0])
    # With B1 fixed at 1 instead, T2 is off where B1 is 0.91.
    nominal = match_with_b1(signals, dictionary, 1.0)
    assert abs(nominal.t2_ms[2] - 41.6) > 4.0
