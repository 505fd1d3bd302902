"""Tests of the slice format's checks: a malformed field gives an error naming file and field."""

import os

import h5py
import numpy as np
import pytest

from rinq_jax.data.files import io
from rinq_jax.data.files.format import MrfFormatError
from rinq_jax.data.files.io import MrfSlice
from rinq_jax.physics.sequence import FispSequence
from tests.data.test_io import check_error, make_sequence, make_slice


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


def _replace(name, data):
    def fn(f):
        del f[name]
        f.create_dataset(name, data=data)

    return fn


@pytest.mark.parametrize("reader", [io.read_slice, io.validate])
def test_missing_field(slice_file, reader):
    path, _ = slice_file
    _edit(path, lambda f: f.__delitem__("mask"))
    check_error(path, "mask", "missing", reader)


def test_missing_pair_member(slice_file):
    path, _ = slice_file
    _edit(path, lambda f: f.__delitem__("t2_ms"))
    check_error(path, "t2_ms", "missing while 't1_ms' is present")


def test_wrong_dtype(slice_file):
    path, s = slice_file
    _edit(path, _replace("t1_ms", s.t1_ms.astype(np.float64)))
    check_error(path, "t1_ms", "expected dtype float32, got float64", io.inspect)


def test_wrong_shape(slice_file):
    path, s = slice_file
    _edit(path, _replace("b1", s.b1[:, :15]))
    check_error(path, "b1", r"expected shape \(16, 16\).*got \(16, 15\)", io.inspect)


def test_wrong_number_of_repetitions(slice_file):
    path, s = slice_file
    _edit(path, _replace("signals", s.signals[..., :299]))
    check_error(path, "signals", r"expected shape \(16, 16, 300\) \(T = 300.*got \(16, 16, 299\)")


@pytest.mark.parametrize("field", ["signals", "t2_ms", "m0"])
def test_non_finite(slice_file, field):
    path, s = slice_file
    bad = getattr(s, field).copy()
    bad[8, 8] = np.nan
    _edit(path, _replace(field, bad))
    check_error(path, field, r"NaN/Inf \(first at index \(8, 8", io.validate)


def test_t1_in_seconds(slice_file):
    path, s = slice_file
    _edit(path, _replace("t1_ms", s.t1_ms / 1000))
    check_error(path, "t1_ms", "suggests seconds")


def test_t2_above_range_and_non_positive(slice_file, tmp_path):
    path, s = slice_file
    bad = s.t2_ms.copy()
    bad[8, 8] = 6000
    _edit(path, _replace("t2_ms", bad))
    check_error(path, "t2_ms", "<= 5000 ms")
    bad[8, 8] = 0
    _edit(path, _replace("t2_ms", bad))
    check_error(path, "t2_ms", "positive")


def test_empty_mask(slice_file):
    path, s = slice_file
    _edit(path, _replace("mask", np.zeros_like(s.mask)))
    check_error(path, "mask", "empty mask")
    check_error(path, "mask", "empty mask", io.validate)


def test_unsupported_version_and_missing_attribute(slice_file):
    path, _ = slice_file
    _edit(path, lambda f: f.attrs.__setitem__("format_version", 2))
    check_error(path, "attrs/format_version", "unsupported format_version 2", io.inspect)
    _edit(path, lambda f: f.attrs.__delitem__("subject_id"))
    check_error(path, "attrs/format_version", "unsupported", io.inspect)
    _edit(path, lambda f: f.attrs.__setitem__("format_version", 1))
    check_error(path, "attrs/subject_id", "missing attribute", io.inspect)


def test_write_refuses_an_invalid_slice(tmp_path):
    s = make_slice()
    bad = MrfSlice(**{**s.__dict__, "t1_ms": s.t1_ms / 1000})
    with pytest.raises(MrfFormatError, match="suggests seconds"):
        io.write_slice(tmp_path / "a.h5", bad)
    assert os.listdir(tmp_path) == []


def test_a_sequence_dict_becomes_its_fisp_sequence(tmp_path):
    seq = FispSequence.from_dict(make_sequence(300))
    from_dict = make_slice(sequence=make_sequence(300))
    assert isinstance(from_dict.sequence, FispSequence) and from_dict.sequence == seq
    assert from_dict.sequence_hash == make_slice(sequence=seq).sequence_hash == seq.hash
    io.write_slice(tmp_path / "a.h5", from_dict)
    assert io.read_slice(tmp_path / "a.h5").sequence == seq


def test_group_instead_of_dataset_and_mask_as_uint8(slice_file):
    path, s = slice_file
    _edit(path, _replace("mask", s.mask.astype(np.uint8)))
    check_error(path, "mask", "expected dtype bool, got uint8", io.inspect)

    def to_group(f):
        del f["signals"]
        f.create_group("signals")

    _edit(path, to_group)
    check_error(path, "signals", "expected a dataset, got a group", io.inspect)
