"""Raw k-space as ISMRMRD: export from the generator, import as a slice file, round trips."""

import dataclasses
import math

import h5py
import ismrmrd
import numpy as np
import pytest

from rinq_jax import generate
from rinq_jax.data.acquisition import spiral
from rinq_jax.data.datasets import phantom_dataset
from rinq_jax.data.files import io, nifti
from rinq_jax.data.files.format import MrfFormatError
from rinq_jax.data.raw import ismrmrd_export, ismrmrd_import, ismrmrd_scan
from rinq_jax.physics.matching import match
from rinq_jax.physics.schedule_files import load_sequence, read_schedule, write_schedule_csv
from tests.reliability.corpus import RAW_REPS, schedule_of, write_valid_raw

# 300 repetitions and rank 10 keep the dictionary to seconds; 64 x 64 keeps the phantom's anatomy.
SMALL = phantom_dataset.GenerateConfig(
    n_subjects=1, n_slices=1, matrix=64, n_reps=300, rank=10, snr=30.0
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """(out folder, slice file, dictionary) of a one-slice phantom dataset."""
    out = tmp_path_factory.mktemp("generated")
    (path,) = phantom_dataset.generate(SMALL, out, progress=False)
    return out, path, phantom_dataset.matching_dictionary(SMALL, out / "cache")


def _import(raw, out, *extra) -> io.MrfSlice:
    argv = [str(raw), "--sequence", str(raw.parent / "schedule.csv"), "--out", str(out)]
    assert ismrmrd_import.main([*argv, "--no-progress", *extra]) == 0
    return io.read_slice(out)


def test_single_coil_round_trip_reproduces_the_generators_series(generated, tmp_path):
    out, path, _ = generated
    (raw,) = ismrmrd_export.export_generated(SMALL, out, n_coils=1, progress=False)
    imported = _import(raw, tmp_path / "imported.h5")
    expected = io.read_slice(path)
    # Same k-space (the generator's noise draws), same gridding: equal to float32 rounding.
    error = np.linalg.norm(imported.signals - expected.signals) / np.linalg.norm(expected.signals)
    assert error <= 1e-4, error
    assert imported.sequence == expected.sequence  # the CSV carries the schedule exactly
    assert imported.acquisition["n_coils"] == 1 and imported.acquisition["matrix"] == 64
    assert imported.acquisition["fov_mm"] == 300.0
    # The mask is the object's support: it covers the phantom's brain mask.
    assert np.mean(imported.mask[expected.mask]) > 0.99
    assert imported.mask.sum() < 1.6 * expected.mask.sum()


def test_export_writes_the_documented_header_and_one_acquisition_per_repetition(generated):
    out, _, _ = generated
    (raw,) = ismrmrd_export.export_generated(SMALL, out, n_coils=1, progress=False)
    cfg = SMALL.acquisition()
    traj = spiral.spiral_trajectory(cfg) / (2 * math.pi)
    with ismrmrd.File(raw, "r") as f:
        header = f["dataset"].header
        acquisitions = f["dataset"].acquisitions
        encoding = header.encoding[0]
        assert encoding.trajectory == ismrmrd.xsd.trajectoryType.SPIRAL
        assert (encoding.encodedSpace.matrixSize.x, encoding.encodedSpace.matrixSize.y) == (64, 64)
        assert encoding.encodedSpace.fieldOfView_mm.x == 300.0
        assert encoding.encodingLimits.repetition.maximum == SMALL.n_reps - 1
        assert header.sequenceParameters.TE == [2.0]
        assert len(acquisitions) == SMALL.n_reps + 1
        assert acquisitions[0].is_flag_set(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
        for t in (0, 1, 47, 48, 299):
            acq = acquisitions[t + 1]
            assert acq.idx.repetition == t and acq.idx.kspace_encode_step_1 == t % 48
            assert acq.data.shape == (1, traj.shape[1]) and acq.data.dtype == np.complex64
            np.testing.assert_allclose(acq.traj, traj[t % 48], atol=1e-7)


def _maps(s: io.MrfSlice, mask, dictionary):
    result = match(dictionary.project(s.signals[mask]), dictionary)
    return result.t1_ms, result.t2_ms


def test_eight_coils_give_the_single_coil_maps_within_the_noise(generated, tmp_path):
    out, path, dictionary = generated
    ph, _ = phantom_dataset.slice_phantom(SMALL, 0, 0)
    maps = {}
    for n_coils in (1, 8):
        (raw,) = ismrmrd_export.export_generated(SMALL, out, n_coils=n_coils, progress=False)
        imported = _import(raw, tmp_path / f"coils{n_coils}.h5")
        assert imported.acquisition["n_coils"] == n_coils
        maps[n_coils] = _maps(imported, ph.mask, dictionary)
    truth = (ph.t1_ms[ph.mask], ph.t2_ms[ph.mask])
    for single, multi, true in zip(maps[1], maps[8], truth, strict=True):
        # Independent noise in the two files: the maps differ by the noise, not systematically.
        assert np.median(np.abs(multi - single) / single) < 0.06
        error_single = np.median(np.abs(single - true) / true)
        error_multi = np.median(np.abs(multi - true) / true)
        assert error_multi < 1.15 * error_single + 0.01, (error_multi, error_single)


def _strip_trajectory_and_move_counter(raw, shuffle_seed: int):
    """No trajectory stored, repetitions numbered by idx.contrast, acquisitions shuffled."""
    with h5py.File(raw, "r+") as f:
        records = f["dataset/data"][()]
        imaging = records[1:]
        imaging["head"]["idx"]["contrast"] = imaging["head"]["idx"]["repetition"]
        imaging["head"]["idx"]["repetition"] = 0
        imaging["head"]["trajectory_dimensions"] = 0
        for i in range(imaging.size):
            imaging["traj"][i] = np.zeros(0, np.float32)
        order = np.random.default_rng(shuffle_seed).permutation(imaging.size)
        del f["dataset/data"]
        f["dataset"].create_dataset("data", data=np.concatenate([records[:1], imaging[order]]))


@pytest.mark.parametrize("per_repetition", [False, True])
def test_trajectory_file_and_contrast_counter_give_the_same_slice(tmp_path, per_repetition):
    raw = write_valid_raw(tmp_path / "raw.h5")
    reference = ismrmrd_import.import_ismrmrd(raw, schedule_of(raw), tmp_path / "ref.h5")
    with h5py.File(raw, "r") as f:  # the stored trajectories (cycles/pixel), by repetition
        records = f["dataset/data"][1:]
        stored = np.stack([r.reshape(-1, 2) for r in records["traj"]])
    interleaf = records["head"]["idx"]["kspace_encode_step_1"]
    traj = stored if per_repetition else stored[np.unique(interleaf, return_index=True)[1]]
    np.save(tmp_path / "traj.npy", traj * 2 * np.pi)
    _strip_trajectory_and_move_counter(raw, shuffle_seed=3)
    out = ismrmrd_import.import_ismrmrd(
        raw,
        schedule_of(raw),
        tmp_path / "out.h5",
        ismrmrd_scan.ScanOptions(
            counter="contrast", trajectory=tmp_path / "traj.npy", traj_units="rad_per_pixel"
        ),
    )
    np.testing.assert_allclose(
        io.read_slice(out).signals, io.read_slice(reference).signals, rtol=0, atol=1e-5
    )


def test_trajectory_file_problems_name_the_trajectory_file(tmp_path):
    raw = write_valid_raw(tmp_path / "raw.h5")
    bad = tmp_path / "traj.npy"
    np.save(bad, np.zeros((RAW_REPS, 5, 2), np.float32))
    for path, field in ((bad, "trajectory"), (tmp_path / "none.npy", "file")):
        with pytest.raises(MrfFormatError) as err:
            options = ismrmrd_scan.ScanOptions(trajectory=path)
            ismrmrd_import.import_ismrmrd(raw, schedule_of(raw), tmp_path / "o.h5", options)
        assert err.value.path == str(path) and err.value.field == field


def test_matrix_and_fov_options_override_the_header_and_are_checked(tmp_path):
    raw = write_valid_raw(tmp_path / "raw.h5")
    out = ismrmrd_import.import_ismrmrd(
        raw,
        schedule_of(raw),
        tmp_path / "o.h5",
        ismrmrd_scan.ScanOptions(matrix=32, fov_mm=250.0),
    )
    info = io.inspect(out)
    assert info.shape == (32, 32, RAW_REPS) and info.acquisition["fov_mm"] == 250.0
    for kw, field in (({"matrix": 31}, "--matrix"), ({"fov_mm": -1.0}, "--fov-mm")):
        with pytest.raises(MrfFormatError) as err:
            options = ismrmrd_scan.ScanOptions(**kw)
            ismrmrd_import.import_ismrmrd(raw, schedule_of(raw), tmp_path / "x.h5", options)
        assert err.value.field == field and err.value.path == str(raw)


def test_schedule_csv_round_trip_and_overrides(tmp_path):
    seq = SMALL.sequence()
    path = tmp_path / "schedule.csv"
    write_schedule_csv(path, seq)
    assert read_schedule(path) == seq
    assert load_sequence(path) == seq  # the physics loader reads the same format
    no_inversion = dataclasses.replace(seq, ti_ms=None)
    write_schedule_csv(tmp_path / "no_inversion.csv", no_inversion)
    assert read_schedule(tmp_path / "no_inversion.csv") == no_inversion
    override = read_schedule(path, te_ms=3.0, ti_ms="none")
    assert override.te_ms == 3.0 and override.ti_ms is None
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[2:]) + "\n")  # no te_ms / ti_ms lines: the defaults count
    assert read_schedule(path, default_te_ms=2.0).ti_ms is None
    with pytest.raises(MrfFormatError, match="te_ms"):
        read_schedule(path)


def test_generate_cli_writes_raw_files_and_leaves_its_slices_unchanged(tmp_path):
    argv = ["--preset", "quick", "--subjects", "1", "--slices", "1", "--matrix", "32"]
    argv += ["--n-reps", "96", "--rank", "8", "--no-progress"]
    assert generate.main([*argv, "--out", str(tmp_path / "plain")]) == 0
    raw_argv = [*argv, "--out", str(tmp_path / "raw"), "--write-ismrmrd", "--coils", "3"]
    assert generate.main(raw_argv) == 0
    raw = tmp_path / "raw" / "ismrmrd-3coil" / "sub-00_slice-00.h5"
    with ismrmrd.File(raw, "r") as f:
        assert f["dataset"].acquisitions[1].data.shape[0] == 3
    plain = io.read_slice(tmp_path / "plain" / "sub-00_slice-00.h5")
    with_raw = io.read_slice(tmp_path / "raw" / "sub-00_slice-00.h5")
    for name, values in plain.arrays().items():
        np.testing.assert_array_equal(getattr(with_raw, name), values, err_msg=name)
    assert plain.sequence == with_raw.sequence and plain.generator == with_raw.generator
    for bad in (["--coils", "2"], ["--write-ismrmrd", "--coils", "0"]):
        with pytest.raises(SystemExit):
            generate.main([*argv, "--out", str(tmp_path / "x"), *bad])


def test_scanner_dm_maps_are_attached_for_training_on_them(generated, tmp_path):
    """--dm-maps stores the scanner's own matching maps (NIfTI, eval.py's orientation) as the
    dm targets; the mask keeps only pixels where both maps are positive."""
    out, path, _ = generated
    (raw,) = ismrmrd_export.export_generated(SMALL, out, n_coils=1, progress=False)
    source = io.read_slice(path)
    t1 = np.where(source.mask, source.dm_t1_ms, 0.0)
    t2 = np.where(source.mask, source.dm_t2_ms, np.nan)  # NaN outside: a scanner's background
    maps = [
        nifti.write_nifti(tmp_path / f"{n}.nii.gz", m, 300 / 64)
        for n, m in (("t1", t1), ("t2", t2))
    ]
    imported = _import(raw, tmp_path / "with_dm.h5", "--dm-maps", *map(str, maps))
    np.testing.assert_array_equal(imported.mask, source.mask & imported.mask)
    assert imported.mask.sum() == source.mask.sum()  # the Otsu mask covers the brain mask
    np.testing.assert_array_equal(imported.dm_t1_ms[imported.mask], source.dm_t1_ms[source.mask])
    np.testing.assert_array_equal(imported.dm_t2_ms[imported.mask], source.dm_t2_ms[source.mask])
    assert io.inspect(tmp_path / "with_dm.h5").has_target("dm")


def test_nifti_maps_round_trip_and_a_wrong_shape_is_refused(tmp_path):
    m = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = nifti.write_nifti(tmp_path / "m.nii.gz", m, 1.5)
    np.testing.assert_array_equal(nifti.read_map(path, (3, 4)), m)
    with pytest.raises(MrfFormatError, match=r"field 'data'.*got shape \(4, 3, 1\)"):
        nifti.read_map(path, (4, 4))


def test_a_measured_b1_map_is_attached_and_a_percent_map_refused(generated, tmp_path, capsys):
    """--b1-map stores the scanner's B1 map (NIfTI) as the slice's b1_map, which networks
    trained with --b1-input read; a map in per cent is refused naming the field, exit 2."""
    out, path, _ = generated
    (raw,) = ismrmrd_export.export_generated(SMALL, out, n_coils=1, progress=False)
    b1 = 1.0 + 0.1 * np.linspace(-1, 1, 64)[None, :] * np.ones((64, 1), np.float32)
    good = nifti.write_nifti(tmp_path / "b1.nii.gz", b1, 300 / 64)
    imported = _import(raw, tmp_path / "with_b1.h5", "--b1-map", str(good))
    np.testing.assert_allclose(imported.b1_map, b1, rtol=1e-6)
    percent = nifti.write_nifti(tmp_path / "b1_percent.nii.gz", 100 * b1, 300 / 64)
    argv = [str(raw), "--sequence", str(raw.parent / "schedule.csv"), "--no-progress"]
    bad_out = tmp_path / "percent.h5"
    assert ismrmrd_import.main([*argv, "--out", str(bad_out), "--b1-map", str(percent)]) == 2
    assert not bad_out.exists()
    assert "percent.h5: field 'b1_map': expected a relative scale" in capsys.readouterr().err
