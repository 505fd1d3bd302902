"""Tests for the spiral acquisition: trajectory, DCF, NUFFT adjointness, recon, noise, speed-ups."""

import dataclasses
import math

import numpy as np
import pytest

from rinq_jax.data import acquisition as acq

M = 64  # small matrix keeps every test at a fraction of a second


def small_cfg(**kw) -> acq.AcquisitionConfig:
    return acq.AcquisitionConfig(matrix=M, **kw)


def smooth_ellipse(a, b, cx=0.0, cy=0.0, width=0.08, matrix=M):
    """Ellipse with tanh edges (band-limited enough for a gridding round trip), float64[M, M]."""
    yy, xx = np.mgrid[-matrix // 2 : matrix // 2, -matrix // 2 : matrix // 2] / (matrix / 2)
    d = np.sqrt(((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2)
    return 0.5 * (1.0 - np.tanh((d - 1.0) / width))


def phantom_subspace(n_reps=200, seed=0):
    """Phantom-like low-rank series: 3 smooth tissue regions, each with its own time course.

    Returns coefficients complex64[K, M, M], basis complex64[K, T], object mask bool[M, M].
    """
    head = smooth_ellipse(0.75, 0.9)
    regions = [head, smooth_ellipse(0.3, 0.45, 0.15, 0.05), smooth_ellipse(0.2, 0.15, -0.3, -0.4)]
    t = np.arange(n_reps) / n_reps
    rng = np.random.default_rng(seed)
    courses = []
    for i in range(len(regions)):
        phase = rng.uniform(0, 2 * np.pi)
        courses.append(np.exp(-t * (1 + i)) * np.exp(1j * (phase + 3 * t * i)) * (1 + 0.3 * i))
    coefficients = np.stack(regions).astype(np.complex64)
    basis = np.stack(courses).astype(np.complex64)
    return coefficients, basis, head > 0.5


def expand(coefficients, basis):
    """Series complex64[H, W, T] = sum_k c_k b_k(t)."""
    return np.einsum("khw,kt->hwt", coefficients, basis).astype(np.complex64)


def rel_err(a, b, mask):
    return np.linalg.norm((a - b)[mask]) / np.linalg.norm(b[mask])


# --------------------------------------------------------------------------- trajectory


def test_trajectory_shape_range_and_rotation():
    cfg = acq.AcquisitionConfig()  # the paper's: 256^2, 48 interleaves
    traj = acq.spiral_trajectory(cfg)
    assert (
        traj.dtype == np.float32 and traj.ndim == 3 and traj.shape[0] == 48 and traj.shape[2] == 2
    )
    assert traj.min() >= -np.pi and traj.max() < np.pi
    radius = np.hypot(traj[..., 0], traj[..., 1])
    assert radius[:, 0].max() < 1e-6  # every interleaf starts at k = 0
    np.testing.assert_allclose(radius[:, -1], np.pi, atol=2e-5)  # ... and ends at Nyquist
    np.testing.assert_allclose(
        radius, np.broadcast_to(radius[:1], radius.shape), atol=1e-5
    )  # rotated copies
    z = traj[..., 0] + 1j * traj[..., 1]
    rot = np.angle(z[1, 10:] / z[0, 10:])
    np.testing.assert_allclose(rot, 2 * np.pi / 48, atol=1e-4)


def test_trajectory_variable_density_and_nyquist():
    cfg = acq.AcquisitionConfig()
    traj = acq.spiral_trajectory(cfg).astype(np.float64)
    z = traj[0, :, 0] + 1j * traj[0, :, 1]
    theta = np.unwrap(np.angle(z[1:]))
    radius = np.abs(z[1:])
    # Radial advance per full turn of one interleaf, divided by 48 = combined ring spacing.
    ring = np.gradient(radius, theta) * 2 * np.pi / cfg.n_interleaves
    nyquist = 2 * np.pi / cfg.matrix
    centre, edge = ring[radius < 0.3], ring[radius > 0.9 * np.pi]
    assert np.all(ring <= nyquist * 1.01)  # Nyquist (or denser) everywhere, all combined
    assert centre.mean() < 0.6 * nyquist  # about 2x oversampled at the centre
    assert edge.mean() > 0.9 * nyquist
    # Readout sampling: at most half a Nyquist step between samples (2x readout oversampling).
    assert np.abs(np.diff(z)).max() <= 0.5 * nyquist * 1.01


def test_density_compensation_normalisation():
    traj = acq.spiral_trajectory(acq.AcquisitionConfig())
    w = acq.density_compensation(traj)
    assert w.shape == traj.shape[:2] and w.dtype == np.float32 and np.all(w >= 0)
    # Cells tile the disk |k| <= pi: sum(w) = pi^2 (area) / (2 pi)^2 = pi / 4.
    assert math.isclose(float(w.sum()), math.pi / 4, rel_tol=2e-3)


# --------------------------------------------------------------------------- NUFFT


@pytest.mark.parametrize("eps", [1e-4, 1e-6])
def test_forward_adjoint_are_adjoint(eps):
    rng = np.random.default_rng(1)
    traj = acq.spiral_trajectory(small_cfg())[:5]
    shape_k = (3, *traj.shape[:-1])
    x = (rng.standard_normal((3, M, M)) + 1j * rng.standard_normal((3, M, M))).astype(np.complex64)
    y = (rng.standard_normal(shape_k) + 1j * rng.standard_normal(shape_k)).astype(np.complex64)
    ax = acq.forward(x, traj, eps=eps)
    ahy = acq.adjoint(y, traj, (M, M), eps=eps)
    assert ax.shape == shape_k and ax.dtype == np.complex64
    assert ahy.shape == (3, M, M) and ahy.dtype == np.complex64
    lhs = np.vdot(y.astype(np.complex128), ax.astype(np.complex128))
    rhs = np.vdot(ahy.astype(np.complex128), x.astype(np.complex128))
    assert abs(lhs - rhs) / abs(lhs) < 1e-5


def test_forward_matches_direct_dft_and_batching():
    rng = np.random.default_rng(2)
    n = 16
    traj = rng.uniform(-np.pi, np.pi, (40, 2)).astype(np.float32)
    x = (rng.standard_normal((2, n, n)) + 1j * rng.standard_normal((2, n, n))).astype(np.complex64)
    pos = np.arange(n) - n // 2
    phase = np.exp(
        -1j * (traj[:, 0, None, None] * pos[:, None] + traj[:, 1, None, None] * pos[None, :])
    )
    direct = np.einsum("bhw,jhw->bj", x.astype(np.complex128), phase)
    out = acq.forward(x, traj, eps=1e-6)
    np.testing.assert_allclose(out, direct, rtol=0, atol=1e-4 * np.abs(direct).max())
    np.testing.assert_allclose(acq.forward(x[1], traj, eps=1e-6), out[1], atol=1e-5)


def test_fully_sampled_round_trip_is_near_identity():
    cfg = small_cfg(fully_sampled=True)
    traj = acq.spiral_trajectory(cfg)
    w = acq.density_compensation(traj)
    img = (smooth_ellipse(0.7, 0.85) + 0.5j * smooth_ellipse(0.3, 0.2, 0.2, 0.1)).astype(
        np.complex64
    )
    rec = acq.adjoint(w * acq.forward(img, traj), traj, (M, M))
    assert rel_err(rec, img, smooth_ellipse(0.7, 0.85) > 0.5) < 0.05


# --------------------------------------------------------------------------- schedule


@pytest.mark.parametrize("order", ["sequential", "golden"])
def test_schedule_covers_all_interleaves(order):
    cfg = acq.AcquisitionConfig(interleaf_order=order)
    sched = acq.interleaf_schedule(cfg, 3000)
    assert sched.shape == (3000, 1)
    # Every 48 consecutive repetitions use each interleaf exactly once.
    for start in (0, 17, 2952):
        assert sorted(sched[start : start + 48, 0]) == list(range(48))
    if order == "sequential":
        np.testing.assert_array_equal(sched[:, 0], np.arange(3000) % 48)
    else:
        step = acq.interleaf_step(cfg)
        assert math.gcd(step, 48) == 1 and abs(step - 0.382 * 48) < 2


def test_schedule_partial_and_full_sampling():
    sched = acq.interleaf_schedule(acq.AcquisitionConfig(undersampling=12), 30)
    assert sched.shape == (30, 4)
    np.testing.assert_array_equal(sched[5], [5, 17, 29, 41])
    assert set(sched[:12].ravel()) == set(range(48))
    full = acq.interleaf_schedule(acq.AcquisitionConfig(fully_sampled=True), 3)
    np.testing.assert_array_equal(full, np.tile(np.arange(48), (3, 1)))


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
def test_acquire_matches_acquire_series(kw):
    coefficients, basis, _ = phantom_subspace(n_reps=60)
    series = expand(coefficients, basis)
    for snr in (None, 20.0):
        cfg = small_cfg(snr=snr, **kw)
        a = acq.acquire(coefficients, basis, cfg, np.random.default_rng(5), batch=16)
        b = acq.acquire_series(series, cfg, np.random.default_rng(5), batch=16)
        c = acq.acquire_series(np.moveaxis(series, -1, 0), cfg, np.random.default_rng(5), batch=16)
        scale = np.abs(b).max()
        np.testing.assert_allclose(a, b, atol=2e-3 * scale)
        np.testing.assert_array_equal(b, c)


def test_noiseless_fully_sampled_shortcut_matches_kspace_path():
    # Noiseless + fully sampled takes K adjoints of the coefficient images; the series
    # goes through per-repetition k-space data: both must agree.
    coefficients, basis, _ = phantom_subspace(n_reps=50)
    cfg = small_cfg(fully_sampled=True)
    fast = acq.acquire(coefficients, basis, cfg)
    slow = acq.acquire_series(expand(coefficients, basis), cfg)
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


def test_noise_std_formula_exact_in_kspace():
    traj = acq.spiral_trajectory(small_cfg())
    w = acq.density_compensation(traj)
    sigma = acq.noise_std(2.0, small_cfg(snr=4.0), w)
    assert math.isclose(sigma * math.sqrt(np.sum(w.astype(np.float64) ** 2)), 0.5, rel_tol=1e-6)
    assert acq.noise_std(2.0, small_cfg(), w) == 0.0


def test_same_seed_same_noise_different_seed_different():
    coefficients, basis, _ = phantom_subspace(n_reps=20)
    cfg = small_cfg(snr=5.0)
    a = acq.acquire(coefficients, basis, cfg, np.random.default_rng(0))
    b = acq.acquire(coefficients, basis, cfg, np.random.default_rng(0))
    c = acq.acquire(coefficients, basis, cfg, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kw",
    [
        {"undersampling": 5},
        {"undersampling": 0},
        {"undersampling": 96},
        {"n_interleaves": 0},
        {"matrix": 63},
        {"fov_mm": -1.0},
        {"snr": 0.0},
        {"snr": float("inf")},
        {"interleaf_order": "random"},
        {"samples_per_interleaf": 3},
        {"nufft_eps": 1e-9},
        {"readout_oversampling": 0.5},
    ],
)
def test_bad_config_raises(kw):
    with pytest.raises(ValueError):
        acq.AcquisitionConfig(**kw)


@pytest.mark.parametrize("kw", [{"edge": 0.5}, {"centre": 0.9}, {"power": 0.0}])
def test_bad_density_raises(kw):
    with pytest.raises(ValueError):
        acq.VariableDensity(**kw)


def test_bad_arguments_raise():
    coefficients, basis, _ = phantom_subspace(n_reps=10)
    cfg = small_cfg()
    with pytest.raises(ValueError, match="coefficients"):
        acq.acquire(coefficients[:, :32], basis, cfg)
    with pytest.raises(ValueError, match="basis"):
        acq.acquire(coefficients, basis[:2], cfg)
    with pytest.raises(ValueError, match="rng"):
        acq.acquire(coefficients, basis, small_cfg(snr=10.0), rng=None)
    with pytest.raises(ValueError, match="ambiguous"):
        acq.acquire_series(np.zeros((M, M, M), np.complex64), cfg)
    with pytest.raises(ValueError, match="images"):
        acq.acquire_series(np.zeros((5, 32, 32), np.complex64), cfg)
    with pytest.raises(ValueError, match="traj"):
        acq.forward(np.zeros((M, M), np.complex64), np.zeros((10, 3), np.float32))
    with pytest.raises(ValueError, match="traj"):
        acq.forward(np.zeros((M, M), np.complex64), np.full((10, 2), 20.0, np.float32))
    with pytest.raises(ValueError, match="kdata"):
        acq.adjoint(np.zeros((7,), np.complex64), np.zeros((10, 2), np.float32), (M, M))
    with pytest.raises(ValueError, match="n_reps"):
        acq.interleaf_schedule(cfg, 0)
    with pytest.raises(ValueError, match="nthreads"):
        acq.forward(np.zeros((M, M), np.complex64), np.zeros((10, 2), np.float32), nthreads=0)


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
