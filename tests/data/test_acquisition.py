"""The simulated spiral acquisition: gridding recon of low-rank and plain series, noise, speed-ups."""

import dataclasses
import math

import numpy as np
import pytest

from rinq_jax.data.acquisition import acquisition as acq
from tests.data.acquisition_helpers import (
    M,
    acquire_series,
    expand,
    phantom_subspace,
    rel_err,
    small_cfg,
)

# --------------------------------------------------------------------------- acquisition


def test_fully_sampled_recovers_series_and_undersampling_aliases():
    coefficients, basis, mask = phantom_subspace()
    truth = expand(coefficients, basis)
    full = acq.acquire(coefficients, basis, small_cfg(fully_sampled=True))
    under = acq.acquire(coefficients, basis, small_cfg())
    assert full.shape == (M, M, basis.shape[1]) and full.dtype == np.complex64
    err_full = rel_err(full, truth, mask[..., None] & np.ones_like(truth, bool))
    err_under = rel_err(under, truth, mask[..., None] & np.ones_like(truth, bool))
    assert err_full < 0.1
    assert err_under > 3 * err_full
    # The aliasing is incoherent over time: the time average (all interleaves) is fine again.
    t48 = 48 * (basis.shape[1] // 48)
    flat = np.ones_like(basis[:, :t48])
    avg_truth = expand(coefficients, flat)[..., 0]
    avg_under = acq.acquire(coefficients, flat, small_cfg()).mean(axis=-1)
    assert rel_err(avg_under, avg_truth, mask) < 0.1


@pytest.mark.parametrize(
    "kw", [{"fully_sampled": True}, {}, {"undersampling": 12, "interleaf_order": "golden"}]
)
def test_acquire_matches_the_series_reference(kw):
    coefficients, basis, _ = phantom_subspace(n_reps=60)
    series = expand(coefficients, basis)
    for snr in (None, 20.0):
        cfg = small_cfg(snr=snr, **kw)
        a = acq.acquire(coefficients, basis, cfg, np.random.default_rng(5), batch=16)
        b = acquire_series(np.moveaxis(series, -1, 0), cfg, np.random.default_rng(5), batch=16)
        np.testing.assert_allclose(a, b, atol=2e-3 * np.abs(b).max())


def test_noiseless_fully_sampled_shortcut_matches_kspace_path():
    # Noiseless + fully sampled takes K adjoints of the coefficient images; the series
    # goes through per-repetition k-space data: both must agree.
    coefficients, basis, _ = phantom_subspace(n_reps=50)
    cfg = small_cfg(fully_sampled=True)
    fast = acq.acquire(coefficients, basis, cfg)
    slow = acquire_series(np.moveaxis(expand(coefficients, basis), -1, 0), cfg)
    np.testing.assert_allclose(fast, slow, atol=1e-3 * np.abs(slow).max())


@pytest.mark.parametrize("undersampling", [48, 4])
def test_result_independent_of_batch(undersampling):
    coefficients, basis, _ = phantom_subspace(n_reps=100)
    cfg = small_cfg(undersampling=undersampling)
    ref = acq.acquire(coefficients, basis, cfg, batch=1)
    for batch in (7, 50, 192, 1000):
        out = acq.acquire(coefficients, basis, cfg, batch=batch)
        np.testing.assert_allclose(out, ref, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("undersampling,fully", [(48, True), (48, False), (12, False)])
def test_measured_noise_matches_snr(undersampling, fully):
    coefficients, basis, _ = phantom_subspace(n_reps=240)
    snr = 10.0
    base = small_cfg(undersampling=undersampling, fully_sampled=fully)
    noisy = acq.acquire(
        coefficients, basis, dataclasses.replace(base, snr=snr), np.random.default_rng(3)
    )
    clean = acq.acquire(coefficients, basis, base)
    noise = noisy - clean
    signal_rms = np.sqrt(np.mean(np.abs(expand(coefficients, basis)) ** 2))
    measured = np.sqrt(np.mean(np.abs(noise) ** 2))
    # Definition: noise std of the fully sampled recon = signal_rms / snr; a recon from
    # 1/R of the data has it larger by sqrt(R) (up to the DCF's sample distribution).
    expected = signal_rms / snr * math.sqrt(base.effective_undersampling)
    assert abs(measured / expected - 1) < 0.1
    # Noise independent between repetitions (also between repetitions sharing an interleaf).
    # One pair of frames correlates by chance ~ 1 / sqrt(samples per frame); average pairs.
    a, b = noise[..., :-48], noise[..., 48:]
    corr = np.sum(a * b.conj(), axis=(0, 1)) / np.sqrt(
        np.sum(np.abs(a) ** 2, axis=(0, 1)) * np.sum(np.abs(b) ** 2, axis=(0, 1))
    )
    assert abs(corr.mean()) < 0.03


def test_same_seed_same_noise_different_seed_different():
    coefficients, basis, _ = phantom_subspace(n_reps=20)
    cfg = small_cfg(snr=5.0)
    a = acq.acquire(coefficients, basis, cfg, np.random.default_rng(0))
    b = acq.acquire(coefficients, basis, cfg, np.random.default_rng(0))
    c = acq.acquire(coefficients, basis, cfg, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


# --------------------------------------------------------------------------- errors


def test_bad_arguments_raise():
    coefficients, basis, _ = phantom_subspace(n_reps=10)
    cfg = small_cfg()
    with pytest.raises(ValueError, match="coefficients"):
        acq.acquire(coefficients[:, :32], basis, cfg)
    with pytest.raises(ValueError, match="basis"):
        acq.acquire(coefficients, basis[:2], cfg)
    with pytest.raises(ValueError, match="rng"):
        acq.acquire(coefficients, basis, small_cfg(snr=10.0), rng=None)


@pytest.mark.parametrize("fully_sampled", [True, False])
def test_out_buffer_is_filled_and_returned(fully_sampled):
    coefficients, basis, _ = phantom_subspace(n_reps=30)
    cfg = small_cfg(fully_sampled=fully_sampled)
    ref = acq.acquire(coefficients, basis, cfg)
    buf = np.full((M, M, 30), np.nan, np.complex64)
    res = acq.acquire(coefficients, basis, cfg, out=buf, progress=True)
    assert res is buf
    np.testing.assert_array_equal(buf, ref)
    with pytest.raises(ValueError, match="out"):
        acq.acquire(coefficients, basis, cfg, out=np.zeros((M, M, 29), np.complex64))
    with pytest.raises(ValueError, match="out"):
        acq.acquire(coefficients, basis, cfg, out=np.zeros((M, M, 30), np.complex128))
