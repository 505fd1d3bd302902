"""The spiral sampling geometry: trajectory, density compensation, interleaf schedule, config."""

import math

import numpy as np
import pytest

from rinq_jax.data.acquisition import spiral
from rinq_jax.data.acquisition.trajectory import Trajectory, signature_difference
from tests.data.acquisition_helpers import small_cfg

# --------------------------------------------------------------------------- trajectory


def test_trajectory_shape_range_and_rotation():
    cfg = spiral.AcquisitionConfig()  # the paper's: 256^2, 48 interleaves
    traj = spiral.spiral_trajectory(cfg)
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
    cfg = spiral.AcquisitionConfig()
    traj = spiral.spiral_trajectory(cfg).astype(np.float64)
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
    traj = spiral.spiral_trajectory(spiral.AcquisitionConfig())
    w = spiral.density_compensation(traj)
    assert w.shape == traj.shape[:2] and w.dtype == np.float32 and np.all(w >= 0)
    # Cells tile the disk |k| <= pi: sum(w) = pi^2 (area) / (2 pi)^2 = pi / 4.
    assert math.isclose(float(w.sum()), math.pi / 4, rel_tol=2e-3)


# --------------------------------------------------------------------------- schedule


@pytest.mark.parametrize("order", ["sequential", "golden"])
def test_schedule_covers_all_interleaves(order):
    cfg = spiral.AcquisitionConfig(interleaf_order=order)
    sched = spiral.interleaf_schedule(cfg, 3000)
    assert sched.shape == (3000, 1)
    # Every 48 consecutive repetitions use each interleaf exactly once.
    for start in (0, 17, 2952):
        assert sorted(sched[start : start + 48, 0]) == list(range(48))
    if order == "sequential":
        np.testing.assert_array_equal(sched[:, 0], np.arange(3000) % 48)
    else:
        step = spiral.interleaf_step(cfg)
        assert math.gcd(step, 48) == 1 and abs(step - 0.382 * 48) < 2


def test_schedule_partial_and_full_sampling():
    sched = spiral.interleaf_schedule(spiral.AcquisitionConfig(undersampling=12), 30)
    assert sched.shape == (30, 4)
    np.testing.assert_array_equal(sched[5], [5, 17, 29, 41])
    assert set(sched[:12].ravel()) == set(range(48))
    full = spiral.interleaf_schedule(spiral.AcquisitionConfig(fully_sampled=True), 3)
    np.testing.assert_array_equal(full, np.tile(np.arange(48), (3, 1)))


def test_schedule_rejects_bad_n_reps():
    with pytest.raises(ValueError, match="n_reps"):
        spiral.interleaf_schedule(small_cfg(), 0)


# --------------------------------------------------------------------------- given trajectory


def _golden_cfg():
    return spiral.AcquisitionConfig(
        matrix=32, n_interleaves=24, undersampling=24, interleaf_order="golden"
    )


def test_a_given_trajectory_acquires_exactly_what_the_config_would(tmp_path):
    """played_trajectory(cfg), given back to a config, reproduces its positions, order and
    density weights; it round-trips through a file with the same hash."""
    cfg = _golden_cfg()
    given = spiral.played_trajectory(cfg, 100)
    again = spiral.AcquisitionConfig.for_trajectory(given, matrix=32)
    np.testing.assert_array_equal(spiral.spiral_trajectory(again), spiral.spiral_trajectory(cfg))
    np.testing.assert_array_equal(
        spiral.interleaf_schedule(again, 100), spiral.interleaf_schedule(cfg, 100)
    )
    assert given.order[1] == spiral.interleaf_step(cfg) == 11  # coprime to 24, nearest 0.382 x 24
    given.save(tmp_path / "traj.npz")
    loaded = Trajectory.load(tmp_path / "traj.npz")
    assert loaded == given and loaded.hash == given.hash
    assert Trajectory(given.coords, given.order[::-1]).hash != given.hash
    with pytest.raises(ValueError, match="orders 100 repetitions, not 99"):
        spiral.interleaf_pattern(again, 99)


def test_trajectory_signatures_forgive_float_rounding_not_another_trajectory():
    """A trajectory written in cycles/pixel (float32) and read back is the same one; another
    order, interleaf count or rotation is not, and the difference is named."""
    given = spiral.played_trajectory(_golden_cfg(), 100)
    cycles = (given.coords / np.float32(2 * math.pi)).astype(np.float32)
    read_back = Trajectory(cycles * np.float32(2 * math.pi), given.order)
    assert read_back.hash != given.hash  # the last bits moved
    assert signature_difference(given.signature(), read_back.signature()) is None
    reordered = Trajectory(given.coords, np.roll(given.order, 1))
    fewer = Trajectory(given.coords[:12], given.order % 12)
    rotated = Trajectory(given.coords[:, :, ::-1], given.order)  # swapped kx, ky
    expected = given.signature()
    assert "another order" in signature_difference(expected, reordered.signature())
    assert signature_difference(expected, fewer.signature()) == "24 vs 12 interleaves"
    assert "rad/pixel apart" in signature_difference(expected, rotated.signature())


@pytest.mark.parametrize(
    "coords, order, match",
    [
        (np.full((2, 8, 2), 2.5), [0, 1], "beyond the Nyquist edge"),
        (np.zeros((2, 8, 2)), [0, 2], r"must lie in \[0, 2\)"),
        (np.zeros((2, 8)), [0, 1], "expected shape"),
        (np.zeros((2, 8, 2)), [0.0, 1.0], "int array"),
    ],
)
def test_bad_trajectory_raises(coords, order, match):
    with pytest.raises(ValueError, match=match):
        Trajectory(coords, np.asarray(order))


def test_a_config_of_a_given_trajectory_needs_its_interleaf_count():
    given = spiral.played_trajectory(_golden_cfg(), 10)
    with pytest.raises(ValueError, match="must be 24"):
        spiral.AcquisitionConfig(trajectory=given)


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
        spiral.AcquisitionConfig(**kw)


@pytest.mark.parametrize("kw", [{"edge": 0.5}, {"centre": 0.9}, {"power": 0.0}])
def test_bad_density_raises(kw):
    with pytest.raises(ValueError):
        spiral.VariableDensity(**kw)
