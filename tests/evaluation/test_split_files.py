"""Finding a run's test-split slices from its checkpoint metadata."""

import dataclasses

import pytest

from rinq_jax.evaluation.evaluate import split_test_files
from rinq_jax.evaluation.inference import Checkpoint
from tests.training.conftest import checkpoint_metadata


def _checkpoint(data_dir, data_dir_abs):
    metadata = checkpoint_metadata(
        1,
        data_files={"test": ["s1.h5", "s2.h5"]},
        data_dir_abs=data_dir_abs,
    )
    metadata = dataclasses.replace(metadata, config=metadata.config.replace(data_dir=data_dir))
    return Checkpoint(model=None, variables=None, metadata=metadata, run_dir="runs/x")


def test_relative_data_dir_is_found_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    for name in ("s1.h5", "s2.h5"):
        (tmp_path / "data" / name).touch()
    monkeypatch.chdir(tmp_path)
    paths = split_test_files(_checkpoint("data", "/nonexistent"))
    assert [str(p) for p in paths] == ["data/s1.h5", "data/s2.h5"]


def test_recorded_absolute_folder_is_tried_from_elsewhere(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("s1.h5", "s2.h5"):
        (data / name).touch()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "data" relative to here does not exist
    assert split_test_files(_checkpoint("data", str(data))) == [data / "s1.h5", data / "s2.h5"]
    with pytest.raises(FileNotFoundError, match="pass --data"):
        split_test_files(_checkpoint("data", str(elsewhere)))
