"""The generator: phantom -> EPG subspace -> spiral acquisition -> dictionary matching -> HDF5."""

import dataclasses
import re

import numpy as np
import pytest

from rinq_jax import generate
from rinq_jax.data.datasets import phantom_dataset
from rinq_jax.data.files import io, preview
from rinq_jax.data.subjects import phantom, phantom_geometry
from rinq_jax.physics.epg import simulate
from rinq_jax.physics.matching import match

# 300 repetitions and rank 10 keep the paper-grid dictionary to seconds.
TINY = phantom_dataset.GenerateConfig(
    n_subjects=1, n_slices=2, matrix=32, n_reps=300, rank=10, snr=30.0
)


@pytest.fixture(scope="module")
def tiny_dictionary(tmp_path_factory):
    return phantom_dataset.matching_dictionary(TINY, tmp_path_factory.mktemp("cache"))


def _grid_step(grid_values, values):
    """Largest spacing of the grid around each value (the local grid step)."""
    u = np.unique(grid_values)
    i = np.clip(np.searchsorted(u, values), 1, u.size - 2)
    return np.maximum(u[i] - u[i - 1], u[i + 1] - u[i])


def test_matching_noiseless_phantom_signals_recovers_the_maps_within_a_grid_step(tiny_dictionary):
    seq = TINY.sequence()
    ph = phantom.make_phantom(phantom_geometry.sample_subject(0), 0.5, matrix=32, b1_field=False)
    coefficients = phantom_dataset.phantom_coefficients(ph, seq, tiny_dictionary.basis)
    # The coefficients are the projection of the exact EPG fingerprints.
    pixel = tuple(np.argwhere(ph.mask)[0])
    expected = ph.m0[pixel] * np.asarray(simulate(seq, ph.t1_ms[pixel], ph.t2_ms[pixel]))
    np.testing.assert_allclose(
        coefficients[(slice(None), *pixel)], tiny_dictionary.project(expected), atol=1e-5
    )
    result = match(np.moveaxis(coefficients, 0, -1)[ph.mask], tiny_dictionary)
    for true, found, grid_values in (
        (ph.t1_ms[ph.mask], result.t1_ms, tiny_dictionary.grid.t1_ms),
        (ph.t2_ms[ph.mask], result.t2_ms, tiny_dictionary.grid.t2_ms),
    ):
        error_in_steps = np.abs(found - true) / _grid_step(grid_values, true)
        # Partial-volume pixels can trade T1 against T2 along the grid's diagonal.
        assert np.mean(error_in_steps <= 1) >= 0.98
        assert error_in_steps.max() <= 2


def test_generate_writes_valid_resumable_files(tmp_path, tiny_dictionary):
    out = tmp_path / "data"
    paths = phantom_dataset.generate(TINY, out, cache_dir=tmp_path / "cache", progress=False)
    assert [p.name for p in paths] == ["sub-00_slice-00.h5", "sub-00_slice-01.h5"]
    infos = [io.validate(p) for p in paths]
    assert infos[0].shape == (32, 32, 300) and infos[0].sequence_hash == TINY.sequence().hash
    s = io.read_slice(paths[0])
    assert s.acquisition["undersampling"] == 48 and s.acquisition["snr"] == 30.0
    assert np.all(s.t1_ms[~s.mask] == 0) and np.all(s.dm_t1_ms[s.mask] > 0)
    # Dictionary matching of the aliased, noisy series is close to the truth, but not equal.
    relative_error = np.abs(s.dm_t1_ms[s.mask] - s.t1_ms[s.mask]) / s.t1_ms[s.mask]
    assert 0 < np.median(relative_error) < 0.25
    # Different slices differ; a second run keeps complete files and redoes missing ones.
    removed = io.read_slice(paths[1]).signals
    assert not np.array_equal(s.signals, removed)
    mtime = paths[0].stat().st_mtime_ns
    paths[1].unlink()
    phantom_dataset.generate(TINY, out, cache_dir=tmp_path / "cache", progress=False)
    assert paths[0].stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(io.read_slice(paths[1]).signals, removed)
    preview.save_preview(paths[0], tmp_path / "preview.png", frame=10)
    assert (tmp_path / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="frame"):
        preview.save_preview(paths[0], tmp_path / "bad.png", frame=300)
    assert not (tmp_path / "bad.png").exists()


def test_generation_is_reproducible(tiny_dictionary):
    first = phantom_dataset.generate_slice(TINY, 0, 1, tiny_dictionary)
    second = phantom_dataset.generate_slice(TINY, 0, 1, tiny_dictionary)
    np.testing.assert_array_equal(first.signals, second.signals)
    other_seed = phantom_dataset.generate_slice(
        dataclasses.replace(TINY, seed=1), 0, 1, tiny_dictionary
    )
    assert not np.array_equal(first.t1_ms, other_seed.t1_ms)


def test_cli_refuses_bad_values(capsys):
    with pytest.raises(SystemExit):
        generate.main(["--out", "unused", "--undersampling", "5"])
    assert "undersampling" in capsys.readouterr().err


def test_cli_refuses_a_bad_protocol_before_writing(tmp_path, capsys):
    """--sequence / --trajectory: a trajectory file beyond the Nyquist edge or of another length
    than the schedule, or a schedule with --n-reps, is one error naming it; nothing written."""
    from rinq_jax.data.acquisition import spiral
    from rinq_jax.physics import schedule_files
    from rinq_jax.physics.sequence import paper_sequence

    schedule_files.write_schedule_csv(tmp_path / "s.csv", paper_sequence(100))
    coords = spiral.spiral_trajectory(
        spiral.AcquisitionConfig(matrix=32, n_interleaves=4, undersampling=4)
    )
    np.savez(tmp_path / "far.npz", coords=coords * 2, order=np.arange(100) % 4)
    np.savez(tmp_path / "short.npz", coords=coords, order=np.arange(90) % 4)
    out = tmp_path / "out"
    cases = [
        (["--trajectory", str(tmp_path / "far.npz")], "far.npz: field 'coords'.*Nyquist"),
        (
            ["--trajectory", str(tmp_path / "short.npz")],
            "s.csv has 100 repetitions, .*short.npz orders 90",
        ),
        (["--n-reps", "100"], "--sequence sets the repetitions"),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit) as exit_:
            generate.main(["--out", str(out), "--sequence", str(tmp_path / "s.csv"), *extra])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and re.search(message, err.splitlines()[-1]), err
        assert not out.exists()
