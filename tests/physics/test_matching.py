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
