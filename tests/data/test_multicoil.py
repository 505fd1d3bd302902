"""The simulated coil path against the importer on a written raw file, and its linearity."""

import numpy as np
import pytest

from rinq_jax.data.acquisition import compartments, multicoil, nufft, spiral
from rinq_jax.data.acquisition.coils import coil_sensitivities
from rinq_jax.data.acquisition.trajectory import Trajectory
from rinq_jax.data.files import io
from rinq_jax.data.raw import ismrmrd_export, ismrmrd_import
from rinq_jax.data.subjects import phantom, phantom_geometry, tissue_values
from rinq_jax.physics import schedule_files
from rinq_jax.physics.sequence import paper_sequence

N_REPS, MATRIX, COILS = 96, 32, 4


@pytest.fixture(scope="module")
def scan():
    ph = phantom.make_phantom(
        phantom_geometry.sample_subject(2), 0.5, matrix=MATRIX, variability=False
    )
    maps = compartments.basis_maps(ph.fractions, np.angle(ph.m0), np.zeros((MATRIX, MATRIX)))
    seq = paper_sequence(N_REPS)
    values = tissue_values.population_values(np.random.default_rng(1))
    coef = compartments.fingerprint_coefficients(seq, values)
    cfg = spiral.AcquisitionConfig(matrix=MATRIX, n_interleaves=24, undersampling=24, snr=20.0)
    return maps, coef, seq, cfg


def test_simulated_coil_path_is_the_importers_series_of_the_written_raw_file(scan, tmp_path):
    """raw_kspace + imported_series in memory equal simulate_raw -> ISMRMRD file ->
    import_ismrmrd with the same noise draws (float32 round trip of the cycles/pixel file)."""
    maps, coef, seq, cfg = scan
    raw = multicoil.raw_kspace(maps, coef, cfg, COILS, np.random.default_rng(5))
    series, _ = multicoil.imported_series(raw, cfg)
    path = ismrmrd_export.simulate_raw(
        tmp_path / "raw.h5", maps, coef, cfg, seq, n_coils=COILS, rng=np.random.default_rng(5)
    )
    schedule_files.write_schedule_csv(tmp_path / "schedule.csv", seq)
    out = ismrmrd_import.import_ismrmrd(path, tmp_path / "schedule.csv", tmp_path / "in.h5")
    imported = io.read_slice(out).signals
    error = np.linalg.norm(series - imported) / np.linalg.norm(imported)
    assert error < 1e-5, error


def test_combined_gridded_maps_give_the_importers_series_for_any_draw(scan):
    """Linearity: gridding each coil's compartment maps and combining with the scan's weights,
    then drawing new tissue values, equals the importer's second pass on the noiseless raw
    data of that draw with the same weights."""
    maps, coef, seq, cfg = scan
    noisy = multicoil.raw_kspace(maps, coef, cfg, COILS, np.random.default_rng(6))
    weights = multicoil.scan_weights(noisy, cfg)
    sens = coil_sensitivities(MATRIX, COILS)
    gridded = compartments.grid_maps(maps, cfg, coils=(sens, weights))
    draw = tissue_values.training_values(
        np.random.default_rng(7), tissue_values.ValueDistribution()
    )
    new_coef = compartments.fingerprint_coefficients(seq, draw)
    fast = compartments.gridded_series(
        gridded.reshape(*gridded.shape[:2], -1), new_coef, spiral.interleaf_pattern(cfg, N_REPS)
    ).reshape(MATRIX, MATRIX, N_REPS)
    clean = spiral.AcquisitionConfig(matrix=MATRIX, n_interleaves=24, undersampling=24)
    raw = multicoil.raw_kspace(maps, new_coef, clean, COILS, None)
    layout, read = multicoil.raw_reader(raw, clean)
    direct = ismrmrd_import.combined_series(layout, read, weights, MATRIX, 1e-6, 1, None)
    error = np.linalg.norm(fast - direct) / np.linalg.norm(direct)
    assert error < 1e-3, error
    # the weights do combine: one coil's image is far from the combined one
    single = multicoil.imported_series(multicoil.raw_kspace(maps, new_coef, clean, 1, None), clean)
    assert np.linalg.norm(np.abs(single[0]) - np.abs(direct)) / np.linalg.norm(direct) > 1e-3


def test_simulated_kspace_of_a_given_trajectory_is_a_direct_nufft_of_each_frame(scan):
    """The raw k-space of a scanner's trajectory (golden-angle rotations, random order) at
    repetition t is the NUFFT of that repetition's frame, coil by coil, on its interleaf."""
    maps, coef, _, _ = scan
    cfg = spiral.AcquisitionConfig(matrix=MATRIX, n_interleaves=6, undersampling=6)
    base = spiral.spiral_trajectory(cfg)[0]
    angle = np.arange(6)[:, None] * np.pi * (3.0 - np.sqrt(5.0))
    radius, theta = np.hypot(*base.T), np.arctan2(base[:, 1], base[:, 0])
    coords = np.stack([radius * np.cos(theta + angle), radius * np.sin(theta + angle)], -1)
    given = Trajectory(coords, np.random.default_rng(3).integers(0, 6, N_REPS))
    acq = spiral.AcquisitionConfig.for_trajectory(given, matrix=MATRIX, nufft_eps=1e-6)
    raw = multicoil.raw_kspace(maps, coef, acq, COILS, None)
    sens = coil_sensitivities(MATRIX, COILS)
    for t in (0, 17, N_REPS - 1):
        frame = np.einsum("khw,k->hw", maps, coef[:, t])
        direct = nufft.forward(sens * frame, given.coords[given.order[t]], eps=1e-6)
        error = np.linalg.norm(raw[t] - direct) / np.linalg.norm(direct)
        assert error <= 1e-4, (t, error)
