"""Fault injection: every malformed slice file of the corpus gives one specific, one-line error.

The corpus (`corpus.CASES`, 84 files) is built from a valid tiny slice written by
`io.write_slice`. Each case must raise `MrfFormatError` naming the file and the field from the
library readers, and from the command lines that read data (`train.py --data-dir DIR` and
`python -m rinq_jax.data.files.preview FILE`) print exactly one stderr line starting with the
program's name, no traceback, and exit non-zero. The CLIs run in-process (`main(argv)`) for
every case and as real subprocesses for a few. The raw-data corpus (`corpus.RAW_CASES`: broken
ISMRMRD files and schedule CSVs) does the same for `python -m rinq_jax.data.raw.ismrmrd_import`
(exit status 2).
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rinq_jax import scanner
from rinq_jax.data.files import io, pixels, preview
from rinq_jax.data.files.format import MrfFormatError
from rinq_jax.data.pipeline import loader
from rinq_jax.data.raw import ismrmrd_import
from tests.scripts import load_script

from .corpus import (
    CASES,
    RAW_CASES,
    SHAPE,
    make_sequence,
    make_slice,
    schedule_of,
    write_case,
    write_raw_case,
    write_valid,
    write_valid_raw,
)

ROOT = Path(__file__).resolve().parents[2]
PREVIEW_PROG = "python -m rinq_jax.data.files.preview"
IDS = [case.name for case in CASES]
FOLDER_CASES = [case for case in CASES if case.in_folder]


@pytest.fixture(scope="module")
def train_cli():
    return load_script("train.py")


def _field_class(field: str) -> str:
    return field.split("/")[0] if "/" in field else field


def _assert_error(err: MrfFormatError, path: Path, case) -> None:
    assert err.field == case.field
    assert err.path == str(path)
    assert str(err).startswith(f"{path}: field '{case.field}': ")
    assert re.search(case.pattern, str(err)), str(err)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("reader", [io.validate, io.read_slice], ids=["validate", "read_slice"])
def test_readers_raise_the_specific_error(tmp_path, case, reader):
    path = write_case(tmp_path / "bad.h5", case)
    with pytest.raises(MrfFormatError) as err:
        reader(path)
    _assert_error(err.value, path, case)


def test_missing_file_is_also_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        io.inspect(tmp_path / "nope.h5")
    assert isinstance(err.value, MrfFormatError) and err.value.field == "file"


def _one_error_line(err: str, prog: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: "), err
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_preview_cli_prints_one_line(tmp_path, capsys, case):
    path = write_case(tmp_path / "bad.h5", case)
    out = tmp_path / "p.png"
    assert preview.main([str(path), "--out", str(out)]) == 1
    line = _one_error_line(capsys.readouterr().err, PREVIEW_PROG)
    assert f"{path}: field '{case.field}'" in line
    assert sorted(os.listdir(tmp_path)) == sorted(["bad.h5"] if path.exists() else [])


def _train_argv(data: Path, run: Path) -> list[str]:
    """Train on slice files' rate-weighted truth (RNN3's recipe learns the single-compartment
    truth, which user files rarely hold)."""
    return [
        "--model",
        "rnn3",
        "--data-dir",
        str(data),
        "--workdir",
        str(run),
        "--target",
        "true",
        "--no-progress",
    ]


@pytest.mark.parametrize("case", FOLDER_CASES, ids=[c.name for c in FOLDER_CASES])
def test_train_cli_prints_one_line(tmp_path, capsys, train_cli, case):
    """A data folder of three slices, all broken the same way (so whichever is read first fails)."""
    data = tmp_path / "data"
    data.mkdir()
    paths = [write_case(data / f"z{i}.h5", case, slice_id=f"z{i}") for i in range(3)]
    assert train_cli.main(_train_argv(data, tmp_path / "run")) == 1
    line = _one_error_line(capsys.readouterr().err, "train.py")
    assert any(f"{p}: field '{case.field}'" in line for p in paths), line


# ----------------------------------------------------------------------------- across files


def _other_sequence_slice(slice_id):
    s = make_slice(slice_id)
    seq = make_sequence(seed=1)
    return dataclasses.replace(s, sequence=seq)


def _shorter_slice(slice_id):
    n_rows, n_cols, n_reps = SHAPE
    return make_slice(slice_id, shape=(n_rows, n_cols, n_reps - 5))


def _without_true_maps(slice_id):
    s = make_slice(slice_id)
    return io.MrfSlice(**{**s.__dict__, "t1_ms": None, "t2_ms": None})


FOLDER_PROBLEMS = {
    "wrong number of repetitions": (_shorter_slice, "signals", "expected T = 30 repetitions"),
    "different sequence": (_other_sequence_slice, "attrs/sequence_hash", "expected the sequence"),
    "no target maps": (_without_true_maps, "t1_ms", "target='true' needs"),
}


@pytest.mark.parametrize("problem", sorted(FOLDER_PROBLEMS))
def test_inconsistent_folder(tmp_path, capsys, train_cli, problem):
    make, field, pattern = FOLDER_PROBLEMS[problem]
    data = tmp_path / "data"
    data.mkdir()
    good = [write_valid(data / f"a{i}.h5", slice_id=f"a{i}") for i in range(3)]
    odd = data / "b.h5"
    io.write_slice(odd, make("b"))
    io.validate(odd)  # the file alone is valid; only the set is not
    with pytest.raises(MrfFormatError, match=pattern) as err:
        pixels.check_files([*good, odd], target="true")
    assert err.value.field == field and err.value.path == str(odd)
    with pytest.raises(MrfFormatError, match=pattern):
        loader.PatchDataset([*good, odd])
    assert train_cli.main(_train_argv(data, tmp_path / "run")) == 1
    line = _one_error_line(capsys.readouterr().err, "train.py")
    assert f"{odd}: field '{field}'" in line


def test_check_files_returns_the_pixels_of_good_files(tmp_path):
    good = [write_valid(tmp_path / f"a{i}.h5", slice_id=f"a{i}") for i in range(2)]
    checked = pixels.check_files(good, target="dm")
    assert [c.info.path for c in checked] == [str(p) for p in good]
    for c, path in zip(checked, good, strict=True):
        s = io.read_slice(path)
        np.testing.assert_array_equal(np.stack([c.rows, c.cols]), np.nonzero(s.mask))
        np.testing.assert_array_equal(
            c.y_ms, np.stack([s.dm_t1_ms[s.mask], s.dm_t2_ms[s.mask]], -1)
        )
    # a dataset built from them indexes the same pixels as one that reads the files itself
    from_checked, from_files = (
        loader.PatchDataset(checked, target="dm"),
        loader.PatchDataset(good, target="dm"),
    )
    np.testing.assert_array_equal(from_checked.targets_ms, from_files.targets_ms)
    with pytest.raises(ValueError, match="at least one file"):
        pixels.check_files([])


# ----------------------------------------------------------------------------- subprocesses

SUBPROCESS_CASES = ["truncated to half", "t1_ms in seconds", "signals NaN"]


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_preview_subprocess(tmp_path, name):
    case = CASES[IDS.index(name)]
    path = write_case(tmp_path / "bad.h5", case)
    done = _run(["-m", "rinq_jax.data.files.preview", str(path), "--out", str(tmp_path / "p.png")])
    assert done.returncode == 1
    line = _one_error_line(done.stderr, PREVIEW_PROG)
    assert f"{path}: field '{case.field}'" in line


def test_train_subprocess(tmp_path):
    case = CASES[IDS.index("signals NaN")]  # found when the first rows are read, mid-start-up
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        write_case(data / f"z{i}.h5", case, slice_id=f"z{i}")
    done = _run([str(ROOT / "train.py"), *_train_argv(data, tmp_path / "run")])
    assert done.returncode == 1
    line = _one_error_line(done.stderr, "train.py")
    assert "field 'signals'" in line and "NaN/Inf" in line


def test_a_bad_map_in_any_file_of_the_folder_stops_train_py(tmp_path, capsys, train_cli):
    """Every file's maps are checked before the split, so a bad file bound for the test split
    (or a bad map that is not the training target) is reported too."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(5):
        write_valid(data / f"a{i}.h5", slice_id=f"a{i}")
    bad = write_case(data / "b.h5", CASES[IDS.index("dm_t2_ms -Inf")], slice_id="b")
    assert train_cli.main(_train_argv(data, tmp_path / "run")) == 1
    line = _one_error_line(capsys.readouterr().err, "train.py")
    assert f"{bad}: field 'dm_t2_ms'" in line


# ----------------------------------------------------------------------------- ISMRMRD import

IMPORT_PROG = ismrmrd_import.PROG
RAW_IDS = [case.name for case in RAW_CASES]


def test_the_valid_raw_file_imports(tmp_path):
    raw = write_valid_raw(tmp_path / "raw.h5")
    out = ismrmrd_import.import_ismrmrd(raw, schedule_of(raw), tmp_path / "out.h5")
    assert io.validate(out).shape == (16, 16, 12)


def _raw_argv(raw: Path, out: Path) -> list[str]:
    return [str(raw), "--sequence", str(schedule_of(raw)), "--out", str(out), "--no-progress"]


@pytest.mark.parametrize("case", RAW_CASES, ids=RAW_IDS)
def test_ismrmrd_import_raises_the_specific_error(tmp_path, case):
    raw = write_raw_case(tmp_path / "raw.h5", case)
    with pytest.raises(MrfFormatError) as err:
        ismrmrd_import.import_ismrmrd(raw, schedule_of(raw), tmp_path / "out.h5")
    _assert_error(err.value, schedule_of(raw) if case.in_schedule else raw, case)
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("case", RAW_CASES, ids=RAW_IDS)
def test_ismrmrd_import_cli_prints_one_line(tmp_path, capsys, case):
    raw = write_raw_case(tmp_path / "raw.h5", case)
    before = sorted(os.listdir(tmp_path))
    assert ismrmrd_import.main(_raw_argv(raw, tmp_path / "out.h5")) == 2
    line = _one_error_line(capsys.readouterr().err, IMPORT_PROG)
    assert f"{schedule_of(raw) if case.in_schedule else raw}: field '{case.field}'" in line
    assert sorted(os.listdir(tmp_path)) == before  # nothing written, no temporary left


@pytest.mark.parametrize("case", RAW_CASES, ids=RAW_IDS)
def test_scanner_prepare_prints_one_line_and_writes_nothing(tmp_path, capsys, case):
    """`python -m rinq_jax.scanner prepare` reads the scan as the import does: the same
    errors, exit 2, and no dataset folder."""
    raw = write_raw_case(tmp_path / "raw.h5", case)
    before = sorted(os.listdir(tmp_path))
    argv = ["prepare", str(raw), "--sequence", str(schedule_of(raw)), "--out"]
    assert scanner.main([*argv, str(tmp_path / "data"), "--no-progress"]) == 2
    line = _one_error_line(capsys.readouterr().err, scanner.PROG)
    assert f"{schedule_of(raw) if case.in_schedule else raw}: field '{case.field}'" in line
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize("name", ["raw: no trajectory", "raw: NaN sample", "schedule: TR 0"])
def test_ismrmrd_import_subprocess(tmp_path, name):
    """As a user runs it, progress bar on: the error is still the only stderr line."""
    case = RAW_CASES[RAW_IDS.index(name)]
    raw = write_raw_case(tmp_path / "raw.h5", case)
    argv = [str(raw), "--sequence", str(schedule_of(raw)), "--out", str(tmp_path / "out.h5")]
    done = _run(["-m", "rinq_jax.data.raw.ismrmrd_import", *argv])
    assert done.returncode == 2
    line = _one_error_line(done.stderr, IMPORT_PROG)
    assert f"field '{case.field}'" in line
