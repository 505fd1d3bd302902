"""`python -m rinq_jax.scanner prepare`: a dataset simulated through a raw scan's acquisition,
and the protocol carried from the schedule CSV and raw file to a checkpoint and its refusals."""

import math

import numpy as np
import pytest

from rinq_jax import scanner
from rinq_jax.configs.train import get_config
from rinq_jax.data.acquisition import spiral
from rinq_jax.data.acquisition.trajectory import Trajectory, signature_difference
from rinq_jax.data.datasets import synthetic
from rinq_jax.data.files import io
from rinq_jax.data.raw import ismrmrd_export
from rinq_jax.data.raw.ismrmrd_import import import_ismrmrd
from rinq_jax.evaluation import inference
from rinq_jax.evaluation.inference import IncompatibleCheckpointError
from rinq_jax.physics import schedule_files
from rinq_jax.physics.sequence import FispSequence
from rinq_jax.training.loop import train_and_evaluate

MATRIX, N_REPS, COILS = 48, 90, 3
BASE = synthetic.BrainDataConfig(
    n_train=1, n_val=1, n_test=1, n_slices=1, noise_bank=2, rank=8, snr=60.0
)


def _golden_trajectory(n_interleaves: int, order: np.ndarray) -> Trajectory:
    """A scanner's spiral: one variable-density interleaf rotated by multiples of the golden
    angle (not the generator's uniform rotations)."""
    cfg = spiral.AcquisitionConfig(matrix=MATRIX, n_interleaves=n_interleaves, undersampling=1)
    base = spiral.spiral_trajectory(cfg)[0]
    radius, theta = np.hypot(*base.T), np.arctan2(base[:, 1], base[:, 0])
    angle = np.arange(n_interleaves)[:, None] * math.pi * (3.0 - math.sqrt(5.0))
    coords = np.stack([radius * np.cos(theta + angle), radius * np.sin(theta + angle)], -1)
    return Trajectory(coords, order)


def _write_scan(folder, trajectory, schedule, name="scan"):
    """A raw 3-coil scan of a disc through `trajectory` (ISMRMRD, by the project's exporter)."""
    yy, xx = np.mgrid[:MATRIX, :MATRIX] - MATRIX // 2
    disc = (np.hypot(yy, xx) < 0.35 * MATRIX).astype(np.complex64)
    t = np.arange(N_REPS)
    basis = np.stack([np.sin(t / 7.0) + 1.5, np.cos(t / 11.0)]).astype(np.complex64)
    cfg = spiral.AcquisitionConfig.for_trajectory(trajectory, matrix=MATRIX, snr=40.0)
    raw = ismrmrd_export.simulate_raw(
        folder / f"{name}.h5",
        np.stack([disc, 0.3 * disc * yy / MATRIX]),
        basis,
        cfg,
        schedule,
        n_coils=COILS,
        rng=np.random.default_rng(0),
    )
    schedule_files.write_schedule_csv(folder / f"{name}.csv", schedule)
    return raw, folder / f"{name}.csv"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scanner")
    t = np.arange(N_REPS)
    schedule = FispSequence(  # no inversion, its own flip and TR pattern
        flip_deg=8 + 50 * np.sin(np.pi * t / 45) ** 2,
        tr_ms=9 + 2 * np.cos(t / 13),
        phase_deg=np.zeros(N_REPS),
        te_ms=2.5,
    )
    order = np.arange(N_REPS) % 12
    trajectory = _golden_trajectory(12, order)
    raw, csv = _write_scan(folder, trajectory, schedule)
    config, imported = scanner.prepare(raw, csv, folder / "data", base=BASE, progress=False)
    return folder, schedule, trajectory, config, imported


def test_prepare_reads_the_scans_protocol_and_simulates_through_it(prepared):
    folder, schedule, trajectory, config, imported = prepared
    assert config.schedule.hash == schedule_files.load_sequence(folder / "scan.csv").hash
    assert config.schedule.ti_ms is None and config.n_reps == N_REPS
    # the interleaf order read from the ISMRMRD file is the one written; the positions too
    np.testing.assert_array_equal(config.trajectory.order, trajectory.order)
    np.testing.assert_allclose(config.trajectory.coords, trajectory.coords, atol=1e-5)
    assert (config.matrix, config.fov_mm, config.n_coils) == (MATRIX, 300.0, COILS)
    assert synthetic.read_manifest(folder / "data") == config
    test = io.inspect(synthetic.load(folder / "data").test[0])
    scan = io.inspect(imported)
    assert test.sequence_hash == scan.sequence_hash == schedule.hash
    assert test.acquisition["n_coils"] == scan.acquisition["n_coils"] == COILS
    assert signature_difference(test.trajectory, scan.trajectory) is None


def test_the_protocol_travels_to_the_checkpoint_which_refuses_another_trajectory(prepared):
    """CSV -> generator -> slice file -> checkpoint -> eval keep the schedule's hash and the
    trajectory; a scan of the same schedule through other interleaves is refused by name."""
    folder, schedule, _, _, imported = prepared
    run = folder / "run"
    config = get_config("rnn3").replace(
        data_dir=str(folder / "data"),
        workdir=str(run),
        steps=2,
        evals_per_run=1,
        max_val_patches=64,
        progress=False,
        model_overrides=(("lstm_hidden", 8),),
    )
    train_and_evaluate(config)
    metadata = inference.load_checkpoint(run).metadata
    assert metadata.sequence_hash == schedule.hash
    inference.check_compatible(metadata, io.inspect(imported))  # the scan itself: accepted
    uniform = spiral.played_trajectory(
        spiral.AcquisitionConfig(matrix=MATRIX, n_interleaves=12, undersampling=12), N_REPS
    )
    other, _ = _write_scan(folder, uniform, schedule, name="other")
    other_slice = import_ismrmrd(other, folder / "other.csv", folder / "other-slice.h5")
    with pytest.raises(
        IncompatibleCheckpointError,
        match=r"k-space trajectory \(checkpoint vs file\): interleaf \d+ at k-space positions",
    ):
        inference.check_compatible(metadata, io.inspect(other_slice))
