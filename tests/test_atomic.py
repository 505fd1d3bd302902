import os

import pytest

from rinq_jax.atomic import atomic_path


def test_success_renames_and_keeps_the_suffixes(tmp_path):
    target = tmp_path / "maps.nii.gz"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name == f"maps.nii.gz.tmp-{os.getpid()}.nii.gz"
        tmp.write_text("new")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_data_files_are_written_without_suffixes_and_flushed(tmp_path):
    # A reader globbing *.h5 must not see a slice being written.
    target = tmp_path / "subject1_slice0.h5"
    with atomic_path(target, keep_suffixes=False, fsync=True) as tmp:
        tmp.write_bytes(b"slice")
        assert tmp.name == f"subject1_slice0.h5.tmp-{os.getpid()}"
        assert list(tmp_path.glob("*.h5")) == []
    assert target.read_bytes() == b"slice" and list(tmp_path.iterdir()) == [target]
