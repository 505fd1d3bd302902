"""Tests of reading and writing slice files: round trip, partial reads, unreadable files, atomic writes."""

import os

import h5py
import numpy as np
import pytest

from rinq_jax.data.files import io
from rinq_jax.data.files.format import FIELDS, MrfFormatError
from rinq_jax.data.files.io import MrfSlice


def make_sequence(n_reps: int = 300, seed: int = 0, inversion: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "flip_deg": rng.uniform(5, 74, n_reps).astype(np.float32),
        "tr_ms": rng.uniform(12, 15, n_reps).astype(np.float32),
        "phase_deg": np.zeros(n_reps, np.float32),
        "te_ms": 2.0,
        "ti_ms": 20.0 if inversion else None,
    }


def make_slice(
    seed: int = 0,
    shape=(16, 16, 300),
    subject_id: str = "s00",
    slice_id: str = "z00",
    sequence: dict | None = None,
) -> MrfSlice:
    """A small valid slice: a disc mask in a square image, random signals and maps."""
    rng = np.random.default_rng(seed)
    n_rows, n_cols, n_reps = shape
    yy, xx = np.mgrid[:n_rows, :n_cols]
    mask = (yy - n_rows / 2 + 0.5) ** 2 + (xx - n_cols / 2 + 0.5) ** 2 < (0.4 * n_rows) ** 2
    signals = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
    t1 = np.where(mask, rng.uniform(300, 4000, (n_rows, n_cols)), 0).astype(np.float32)
    t2 = np.where(mask, rng.uniform(20, 300, (n_rows, n_cols)), 0).astype(np.float32)
    return MrfSlice(
        subject_id=subject_id,
        slice_id=slice_id,
        sequence=sequence if sequence is not None else make_sequence(n_reps),
        signals=signals,
        mask=mask,
        t1_ms=t1,
        t2_ms=t2,
        m0=(rng.normal(size=mask.shape) + 1j).astype(np.complex64),
        b1=rng.uniform(0.8, 1.2, mask.shape).astype(np.float32),
        tissue=rng.integers(0, 6, mask.shape).astype(np.uint8),
        dm_t1_ms=(t1 + 10 * mask).astype(np.float32),
        dm_t2_ms=(t2 + 2 * mask).astype(np.float32),
        t1_single_ms=(t1 * 0.98).astype(np.float32),
        t2_single_ms=(t2 * 1.02).astype(np.float32),
        b1_map=rng.uniform(0.85, 1.15, mask.shape).astype(np.float32),
        fractions=rng.dirichlet(np.ones(4), mask.shape).astype(np.float32) * mask[..., None],
        acquisition={"undersampling": 48.0, "snr": 30.0, "n_interleaves": 48, "matrix": 16},
        generator={"program": "tests", "seed": seed},
    )


def test_round_trip_is_bit_exact(slice_file):
    path, s = slice_file
    back = io.read_slice(path)
    for name in FIELDS:
        a, b = getattr(s, name), getattr(back, name)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes(), name
    assert (back.subject_id, back.slice_id) == ("s00", "z00")
    assert back.sequence == s.sequence and back.sequence_hash == s.sequence.hash
    for key in ("flip_deg", "tr_ms", "phase_deg"):
        assert getattr(back.sequence, key).tobytes() == getattr(s.sequence, key).tobytes()
    assert (back.sequence.te_ms, back.sequence.ti_ms) == (s.sequence.te_ms, s.sequence.ti_ms)
    assert back.acquisition == s.acquisition
    assert back.generator == s.generator
    with h5py.File(path) as f:
        assert f["signals"].chunks == (1, 16, 300)
        assert f.attrs["format_version"] == 1


def test_no_inversion_round_trips_as_none(tmp_path):
    s = make_slice(sequence=make_sequence(300, inversion=False))
    io.write_slice(tmp_path / "a.h5", s)
    assert io.read_slice(tmp_path / "a.h5").sequence.ti_ms is None


def test_sequence_hash_is_derived_and_checked(tmp_path):
    """The file's sequence_hash is FispSequence.hash of its sequence group: optional, but checked."""
    s = make_slice()
    io.write_slice(tmp_path / "a.h5", s)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert f.attrs["sequence_hash"] == s.sequence.hash
    with h5py.File(tmp_path / "a.h5", "a") as f:
        del f.attrs["sequence_hash"]
    assert io.inspect(tmp_path / "a.h5").sequence_hash == s.sequence.hash
    with h5py.File(tmp_path / "a.h5", "a") as f:
        f.attrs["sequence_hash"] = "abc123"
    check_error(tmp_path / "a.h5", "attrs/sequence_hash", "expected .* got 'abc123'", io.inspect)


def test_optional_fields_may_be_absent(tmp_path):
    s = make_slice()
    user = MrfSlice(
        subject_id="u",
        slice_id="1",
        sequence=s.sequence,
        signals=s.signals,
        mask=s.mask,
        dm_t1_ms=s.dm_t1_ms,
        dm_t2_ms=s.dm_t2_ms,
    )
    io.write_slice(tmp_path / "u.h5", user)
    info = io.validate(tmp_path / "u.h5")
    assert info.fields == ("signals", "mask", "dm_t1_ms", "dm_t2_ms")
    assert info.has_target("dm") and not info.has_target("true")
    assert io.read_slice(tmp_path / "u.h5").t1_ms is None
    with pytest.raises(MrfFormatError, match="'t1_ms'.*requested but absent"):
        io.read_slice(tmp_path / "u.h5", fields=["t1_ms"])


def test_inspect_and_partial_reads(slice_file):
    path, s = slice_file
    info = io.inspect(path)
    assert info.shape == (16, 16, 300) and info.fields == FIELDS
    assert info.acquisition["undersampling"] == 48.0
    part = io.read_slice(path, fields=["t1_ms"], rows=(3, 7))
    assert part.signals is None and part.t1_ms.shape == (4, 16)
    np.testing.assert_array_equal(part.t1_ms, s.t1_ms[3:7])
    np.testing.assert_array_equal(part.mask, s.mask[3:7])
    with pytest.raises(ValueError, match="unknown field"):
        io.read_slice(path, fields=["t3_ms"])


def test_validate_passes_a_good_file(slice_file):
    path, _ = slice_file
    assert io.validate(path, block_rows=5).subject_id == "s00"


# ----------------------------------------------------------------------------- unreadable files


def check_error(path, field, pattern, reader=io.read_slice):
    with pytest.raises(MrfFormatError, match=pattern) as err:
        reader(path)
    assert err.value.field == field
    assert str(path) in str(err.value) and f"'{field}'" in str(err.value)


def test_truncated_file(slice_file):
    path, _ = slice_file
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)
    check_error(path, "file", "truncated or corrupt", io.inspect)


def test_garbage_file(tmp_path):
    path = tmp_path / "x.h5"
    path.write_bytes(b"not hdf5" * 100)
    check_error(path, "file", "cannot open as HDF5", io.inspect)


# ----------------------------------------------------------------------------- atomic write


def test_atomic_write_failure_leaves_nothing(tmp_path, monkeypatch):
    def boom(f, s):
        f.create_dataset("signals", data=s.signals)
        raise RuntimeError("disk full")

    monkeypatch.setattr(io, "_write_contents", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        io.write_slice(tmp_path / "a.h5", make_slice())
    assert os.listdir(tmp_path) == []


def test_atomic_write_failure_keeps_the_old_file(slice_file, monkeypatch):
    path, s = slice_file
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(io.os, "replace", boom)
    with pytest.raises(OSError, match="rename failed"):
        io.write_slice(path, make_slice(seed=1))
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]


def test_successful_write_leaves_no_temp_file(tmp_path):
    io.write_slice(tmp_path / "a.h5", make_slice())
    assert os.listdir(tmp_path) == ["a.h5"]
