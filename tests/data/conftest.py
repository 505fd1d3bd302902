"""Shared fixtures of the data tests."""

import pytest

from rinq_jax.data.files import io
from tests.data.test_io import make_slice


@pytest.fixture
def slice_file(tmp_path):
    """(path, MrfSlice) of a small valid slice file written by `io.write_slice`."""
    path = tmp_path / "slice.h5"
    s = make_slice()
    io.write_slice(path, s)
    return path, s
