"""Tests of the HDF5 slice format: round trip, validation errors, atomic writes."""

import os

import h5py
import numpy as np
import pytest

from rinq_jax.data import io
from rinq_jax.data.io import MrfFormatError, MrfSlice


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
        acquisition={"undersampling": 48.0, "snr": 30.0, "n_interleaves": 48, "matrix": 16},
        generator={"program": "tests", "seed": seed},
    )


@pytest.fixture
def slice_file(tmp_path):
    path = tmp_path / "slice.h5"
    s = make_slice()
    io.write_slice(path, s)
    return path, s


def test_round_trip_is_bit_exact(slice_file):
    path, s = slice_file
    back = io.read_slice(path)
    for name in io.FIELDS:
        a, b = getattr(s, name), getattr(back, name)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes(), name
    assert (back.subject_id, back.slice_id) == ("s00", "z00")
    assert back.sequence_hash == s.sequence_hash != ""
    assert back.sequence.keys() == s.sequence.keys()
    for key, value in s.sequence.items():
        if isinstance(value, np.ndarray):
            assert back.sequence[key].tobytes() == value.tobytes()
            assert back.sequence[key].dtype == value.dtype
        else:
            assert back.sequence[key] == value
    assert back.acquisition == s.acquisition
    assert back.generator == s.generator
    with h5py.File(path) as f:
        assert f["signals"].chunks == (1, 16, 300)
        assert f.attrs["format_version"] == 1


def test_no_inversion_round_trips_as_none(tmp_path):
    s = make_slice(sequence=make_sequence(300, inversion=False))
    io.write_slice(tmp_path / "a.h5", s)
    assert io.read_slice(tmp_path / "a.h5").sequence["ti_ms"] is None


def test_object_with_to_dict_is_stored_as_its_dict(tmp_path):
    class Seq:
        hash = "abc123"

        def to_dict(self):
            return make_sequence(300)

    s = make_slice(sequence=Seq())
    assert isinstance(s.sequence, dict) and s.sequence_hash == "abc123"
    io.write_slice(tmp_path / "a.h5", s)
    assert io.inspect(tmp_path / "a.h5").sequence_hash == "abc123"


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
    assert info.shape == (16, 16, 300) and info.fields == io.FIELDS
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


# ----------------------------------------------------------------------------- malformed files


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


def _replace(name, data):
    def fn(f):
        del f[name]
        f.create_dataset(name, data=data)

    return fn


def _check_error(path, field, pattern, reader=io.read_slice):
    with pytest.raises(MrfFormatError, match=pattern) as err:
        reader(path)
    assert err.value.field == field
    assert str(path) in str(err.value) and f"'{field}'" in str(err.value)


@pytest.mark.parametrize("reader", [io.read_slice, io.validate])
def test_missing_field(slice_file, reader):
    path, _ = slice_file
    _edit(path, lambda f: f.__delitem__("mask"))
    _check_error(path, "mask", "missing", reader)


def test_missing_pair_member(slice_file):
    path, _ = slice_file
    _edit(path, lambda f: f.__delitem__("t2_ms"))
    _check_error(path, "t2_ms", "missing while 't1_ms' is present")


def test_wrong_dtype(slice_file):
    path, s = slice_file
    _edit(path, _replace("t1_ms", s.t1_ms.astype(np.float64)))
    _check_error(path, "t1_ms", "expected dtype float32, got float64", io.inspect)


def test_wrong_shape(slice_file):
    path, s = slice_file
    _edit(path, _replace("b1", s.b1[:, :15]))
    _check_error(path, "b1", r"expected shape \(16, 16\).*got \(16, 15\)", io.inspect)


def test_wrong_number_of_repetitions(slice_file):
    path, s = slice_file
    _edit(path, _replace("signals", s.signals[..., :299]))
    _check_error(path, "signals", r"expected shape \(16, 16, 300\) \(T = 300.*got \(16, 16, 299\)")


@pytest.mark.parametrize("field", ["signals", "t2_ms", "m0"])
def test_non_finite(slice_file, field):
    path, s = slice_file
    bad = getattr(s, field).copy()
    bad[8, 8] = np.nan
    _edit(path, _replace(field, bad))
    _check_error(path, field, r"NaN/Inf \(first at index \(8, 8", io.validate)


def test_t1_in_seconds(slice_file):
    path, s = slice_file
    _edit(path, _replace("t1_ms", s.t1_ms / 1000))
    _check_error(path, "t1_ms", "suggests seconds")


def test_t2_above_range_and_non_positive(slice_file, tmp_path):
    path, s = slice_file
    bad = s.t2_ms.copy()
    bad[8, 8] = 6000
    _edit(path, _replace("t2_ms", bad))
    _check_error(path, "t2_ms", "<= 5000 ms")
    bad[8, 8] = 0
    _edit(path, _replace("t2_ms", bad))
    _check_error(path, "t2_ms", "positive")


def test_empty_mask(slice_file):
    path, s = slice_file
    _edit(path, _replace("mask", np.zeros_like(s.mask)))
    _check_error(path, "mask", "empty mask")
    _check_error(path, "mask", "empty mask", io.validate)


def test_truncated_file(slice_file):
    path, _ = slice_file
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)
    _check_error(path, "file", "truncated or corrupt", io.inspect)


def test_garbage_file(tmp_path):
    path = tmp_path / "x.h5"
    path.write_bytes(b"not hdf5" * 100)
    _check_error(path, "file", "cannot open as HDF5", io.inspect)


def test_unsupported_version_and_missing_attribute(slice_file):
    path, _ = slice_file
    _edit(path, lambda f: f.attrs.__setitem__("format_version", 2))
    _check_error(path, "attrs/format_version", "unsupported format_version 2", io.inspect)
    _edit(path, lambda f: f.attrs.__delitem__("subject_id"))
    _check_error(path, "attrs/format_version", "unsupported", io.inspect)
    _edit(path, lambda f: f.attrs.__setitem__("format_version", 1))
    _check_error(path, "attrs/subject_id", "missing attribute", io.inspect)


def test_write_refuses_an_invalid_slice(tmp_path):
    s = make_slice()
    bad = MrfSlice(**{**s.__dict__, "t1_ms": s.t1_ms / 1000})
    with pytest.raises(MrfFormatError, match="suggests seconds"):
        io.write_slice(tmp_path / "a.h5", bad)
    assert os.listdir(tmp_path) == []


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


def test_dict_hash_matches_fisp_sequence(tmp_path):
    sequence_mod = pytest.importorskip("rinq_jax.physics.sequence")
    seq = sequence_mod.FispSequence.from_dict(make_sequence(300))
    from_dict = make_slice(sequence=make_sequence(300))
    from_object = make_slice(sequence=seq)
    assert from_dict.sequence_hash == from_object.sequence_hash == seq.hash
    io.write_slice(tmp_path / "a.h5", from_object)
    assert io.to_fisp_sequence(io.read_slice(tmp_path / "a.h5").sequence) == seq


def test_group_instead_of_dataset_and_mask_as_uint8(slice_file):
    path, s = slice_file
    _edit(path, _replace("mask", s.mask.astype(np.uint8)))
    _check_error(path, "mask", "expected dtype bool, got uint8", io.inspect)

    def to_group(f):
        del f["signals"]
        f.create_group("signals")

    _edit(path, to_group)
    _check_error(path, "signals", "expected a dataset, got a group", io.inspect)
