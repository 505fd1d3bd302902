"""A corpus of malformed slice files, each built from a valid tiny slice written by io.write_slice.

Every case is a `Case(name, field, pattern, mutate)`: `mutate(path)` breaks the valid file at
`path` in place (or replaces it, e.g. by a directory), and every reader must then raise
`MrfFormatError` with `.field == field` and a message matching `pattern`. `RAW_CASES` (at the
end) break raw ISMRMRD files and their schedule CSVs for the importer in the same way.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import h5py
import ismrmrd
import numpy as np

from rinq_jax.data.acquisition.spiral import AcquisitionConfig, spiral_trajectory
from rinq_jax.data.files import io
from rinq_jax.data.files.format import SEQUENCE_ARRAYS
from rinq_jax.data.files.io import MrfSlice
from rinq_jax.data.raw import ismrmrd_export
from rinq_jax.physics import schedule_files
from rinq_jax.physics.sequence import paper_sequence
from tests.data import test_io

SHAPE = (8, 10, 30)  # H != W, so a transposed map has the wrong shape


def make_sequence(n_reps: int = SHAPE[2], seed: int = 0) -> dict:
    """The io tests' sequence, at this corpus' length."""
    return test_io.make_sequence(n_reps, seed)


def make_slice(slice_id: str = "z00", shape=SHAPE, seed: int = 0) -> MrfSlice:
    """The io tests' valid slice (every field present), at this corpus' H != W shape."""
    return test_io.make_slice(seed, shape, slice_id=slice_id)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    field: str
    pattern: str
    mutate: Callable[[Path], None]
    # False for file-system cases that cannot sit in a data folder as *.h5 slices
    in_folder: bool = True


# ----------------------------------------------------------------------------- mutations


def _edit(fn):
    def mutate(path):
        with h5py.File(path, "r+") as f:
            fn(f)

    return mutate


def _delete(name):
    return _edit(lambda f: f.__delitem__(name))


def _replace_with(name, make):
    """Replace dataset `name` by `make(old_values)`."""

    def fn(f):
        old = f[name][()]
        del f[name]
        f.create_dataset(name, data=make(old))

    return _edit(fn)


def _to_group(name):
    def fn(f):
        del f[name]
        f.create_group(name)

    return _edit(fn)


def _set_at(name, index, value):
    def make(old):
        new = old.copy()
        new[index] = value
        return new

    return _replace_with(name, make)


def _inside_mask(name, fn):
    """Apply `fn` to the values of map `name` inside the mask."""

    def edit(f):
        mask = f["mask"][()]
        values = f[name][()]
        values[mask] = fn(values[mask])
        del f[name]
        f.create_dataset(name, data=values)

    return _edit(edit)


def _set_attr(key, value, group="/"):
    return _edit(lambda f: f[group].attrs.__setitem__(key, value))


def _del_attr(key, group="/"):
    return _edit(lambda f: f[group].attrs.__delitem__(key))


def _truncate(at):
    def mutate(path):
        size = os.path.getsize(path)
        with open(path, "r+b") as handle:
            handle.truncate(at(size))

    return mutate


def _overwrite_bytes(offset_fn, data: bytes):
    def mutate(path):
        size = os.path.getsize(path)
        with open(path, "r+b") as handle:
            handle.seek(offset_fn(size))
            handle.write(data)

    return mutate


def _write_bytes(data: bytes):
    return lambda path: Path(path).write_bytes(data)


def _make_directory(path):
    os.remove(path)
    os.mkdir(path)


def _remove(path):
    os.remove(path)


def _sequence_as_dataset(f):
    del f["sequence"]
    f.create_dataset("sequence", data=np.zeros(3, np.float32))


# ----------------------------------------------------------------------------- the cases

H, W, T = SHAPE
CASES: list[Case] = [
    # missing fields and halves of map pairs
    Case("missing signals", "signals", "missing", _delete("signals")),
    Case("missing mask", "mask", "missing", _delete("mask")),
    Case("missing t1_ms of pair", "t1_ms", "missing while 't2_ms'", _delete("t1_ms")),
    Case("missing t2_ms of pair", "t2_ms", "missing while 't1_ms'", _delete("t2_ms")),
    Case("missing dm_t1_ms of pair", "dm_t1_ms", "missing while", _delete("dm_t1_ms")),
    Case("missing dm_t2_ms of pair", "dm_t2_ms", "missing while", _delete("dm_t2_ms")),
    Case("missing t2_single_ms of pair", "t2_single_ms", "missing while", _delete("t2_single_ms")),
    # wrong dtypes, one per field (and a few more for the signals)
    Case(
        "signals complex128",
        "signals",
        "dtype complex64, got complex128",
        _replace_with("signals", lambda v: v.astype(np.complex128)),
    ),
    Case(
        "signals real float32",
        "signals",
        "dtype complex64, got float32",
        _replace_with("signals", lambda v: v.real.astype(np.float32)),
    ),
    Case(
        "mask uint8",
        "mask",
        "dtype bool, got uint8",
        _replace_with("mask", lambda v: v.astype(np.uint8)),
    ),
    Case(
        "t1_ms float64",
        "t1_ms",
        "dtype float32, got float64",
        _replace_with("t1_ms", lambda v: v.astype(np.float64)),
    ),
    Case(
        "t2_ms int32",
        "t2_ms",
        "dtype float32, got int32",
        _replace_with("t2_ms", lambda v: v.astype(np.int32)),
    ),
    Case(
        "m0 float32",
        "m0",
        "dtype complex64, got float32",
        _replace_with("m0", lambda v: v.real.astype(np.float32)),
    ),
    Case(
        "b1 float64",
        "b1",
        "dtype float32, got float64",
        _replace_with("b1", lambda v: v.astype(np.float64)),
    ),
    Case(
        "tissue int64",
        "tissue",
        "dtype uint8, got int64",
        _replace_with("tissue", lambda v: v.astype(np.int64)),
    ),
    Case(
        "dm_t1_ms float16",
        "dm_t1_ms",
        "dtype float32, got float16",
        _replace_with("dm_t1_ms", lambda v: v.astype(np.float16)),
    ),
    Case(
        "dm_t2_ms float64",
        "dm_t2_ms",
        "dtype float32, got float64",
        _replace_with("dm_t2_ms", lambda v: v.astype(np.float64)),
    ),
    # wrong shapes: T against the sequence, H/W against the signals, wrong ranks
    Case(
        "signals T - 1",
        "signals",
        rf"\(T = {T} from the sequence\), got \({H}, {W}, {T - 1}\)",
        _replace_with("signals", lambda v: v[..., :-1]),
    ),
    Case(
        "signals T + 1",
        "signals",
        rf"got \({H}, {W}, {T + 1}\)",
        _replace_with("signals", lambda v: np.concatenate([v, v[..., :1]], -1)),
    ),
    Case(
        "signals 2-D",
        "signals",
        r"expected shape \(H, W, T\)",
        _replace_with("signals", lambda v: v[..., 0]),
    ),
    Case(
        "signals transposed H/W",
        "mask",
        rf"expected shape \({W}, {H}\)",
        _replace_with("signals", lambda v: v.transpose(1, 0, 2).copy()),
    ),
    Case(
        "mask W - 1",
        "mask",
        rf"expected shape \({H}, {W}\).*got \({H}, {W - 1}\)",
        _replace_with("mask", lambda v: v[:, :-1]),
    ),
    Case(
        "t1_ms transposed",
        "t1_ms",
        rf"got \({W}, {H}\)",
        _replace_with("t1_ms", lambda v: v.T.copy()),
    ),
    Case(
        "t2_ms H - 1", "t2_ms", rf"got \({H - 1}, {W}\)", _replace_with("t2_ms", lambda v: v[:-1])
    ),
    Case("b1 3-D", "b1", rf"got \({H}, {W}, 1\)", _replace_with("b1", lambda v: v[..., None])),
    Case("m0 flattened", "m0", rf"got \({H * W},\)", _replace_with("m0", lambda v: v.ravel())),
    Case(
        "tissue H + 1",
        "tissue",
        rf"got \({H + 1}, {W}\)",
        _replace_with("tissue", lambda v: np.concatenate([v, v[:1]])),
    ),
    Case("signals is a group", "signals", "expected a dataset, got a group", _to_group("signals")),
    Case("t1_ms is a group", "t1_ms", "expected a dataset, got a group", _to_group("t1_ms")),
    # non-finite values in the signals and in each map
    Case(
        "signals NaN",
        "signals",
        r"1 NaN/Inf \(first at index \(3, 4, 5\)\)",
        _set_at("signals", (3, 4, 5), np.nan),
    ),
    Case(
        "signals +Inf",
        "signals",
        r"first at index \(7, 9, 29\)",
        _set_at("signals", (7, 9, 29), np.inf),
    ),
    Case(
        "signals -Inf imaginary",
        "signals",
        r"first at index \(0, 0, 0\)",
        _set_at("signals", (0, 0, 0), complex(0.0, -np.inf)),
    ),
    Case(
        "signals NaN outside mask",
        "signals",
        r"first at index \(0, 0, 3\)",
        _set_at("signals", (0, 0, 3), np.nan),
    ),
    Case(
        "t1_ms NaN",
        "t1_ms",
        r"NaN/Inf \(first at index \(4, 5\)\)",
        _set_at("t1_ms", (4, 5), np.nan),
    ),
    Case("t2_ms Inf", "t2_ms", "NaN/Inf", _set_at("t2_ms", (4, 5), np.inf)),
    Case(
        "dm_t1_ms NaN outside mask",
        "dm_t1_ms",
        r"first at index \(0, 0\)",
        _set_at("dm_t1_ms", (0, 0), np.nan),
    ),
    Case("dm_t2_ms -Inf", "dm_t2_ms", "NaN/Inf", _set_at("dm_t2_ms", (4, 5), -np.inf)),
    Case("m0 NaN", "m0", "NaN/Inf", _set_at("m0", (2, 2), complex(np.nan, 0.0))),
    Case("b1 Inf", "b1", "NaN/Inf", _set_at("b1", (4, 4), np.inf)),
    # implausible units and ranges
    Case(
        "t1_ms in seconds", "t1_ms", "suggests seconds", _inside_mask("t1_ms", lambda v: v / 1000)
    ),
    Case(
        "t2_ms in seconds", "t2_ms", "suggests seconds", _inside_mask("t2_ms", lambda v: v / 1000)
    ),
    Case(
        "dm_t1_ms in seconds",
        "dm_t1_ms",
        "suggests seconds",
        _inside_mask("dm_t1_ms", lambda v: v / 1000),
    ),
    Case(
        "dm_t2_ms in seconds",
        "dm_t2_ms",
        "suggests seconds",
        _inside_mask("dm_t2_ms", lambda v: v / 1000),
    ),
    Case("negative t2_ms", "t2_ms", "expected positive values", _set_at("t2_ms", (4, 5), -50.0)),
    Case(
        "zero t1_ms inside mask", "t1_ms", "expected positive values", _set_at("t1_ms", (4, 5), 0.0)
    ),
    Case("t1_ms above 10 s", "t1_ms", "<= 10000 ms", _set_at("t1_ms", (4, 5), 12000.0)),
    Case("t2_ms above 5 s", "t2_ms", "<= 5000 ms", _set_at("t2_ms", (4, 5), 6000.0)),
    Case("b1 in percent", "b1", "percent", _inside_mask("b1", lambda v: v * 100)),
    Case("b1_map in percent", "b1_map", "percent", _inside_mask("b1_map", lambda v: v * 100)),
    Case(
        "t1_single_ms in seconds",
        "t1_single_ms",
        "suggests seconds",
        _inside_mask("t1_single_ms", lambda v: v / 1000),
    ),
    Case(
        "fractions above one",
        "fractions",
        r"fractions in \[0, 1\] summing to at most 1",
        _replace_with("fractions", lambda v: v * 2),
    ),
    Case(
        "fractions without a compartment axis",
        "fractions",
        rf"expected shape \({H}, {W}, C\)",
        _replace_with("fractions", lambda v: v[..., 0]),
    ),
    Case("empty mask", "mask", "empty mask", _replace_with("mask", np.zeros_like)),
    # root attributes
    Case(
        "format_version 2",
        "attrs/format_version",
        "unsupported format_version 2",
        _set_attr("format_version", 2),
    ),
    Case(
        "format_version 0",
        "attrs/format_version",
        "unsupported format_version 0",
        _set_attr("format_version", 0),
    ),
    Case(
        "format_version string",
        "attrs/format_version",
        "expected an int",
        _set_attr("format_version", "1"),
    ),
    Case(
        "format_version float",
        "attrs/format_version",
        "expected an int",
        _set_attr("format_version", 1.0),
    ),
    Case(
        "missing format_version",
        "attrs/format_version",
        "missing attribute",
        _del_attr("format_version"),
    ),
    Case("missing subject_id", "attrs/subject_id", "missing attribute", _del_attr("subject_id")),
    Case("missing slice_id", "attrs/slice_id", "missing attribute", _del_attr("slice_id")),
    Case(
        "sequence_hash not the sequence's",
        "attrs/sequence_hash",
        "FispSequence.hash of the file's sequence group",
        _set_attr("sequence_hash", "0123456789abcdef"),
    ),
    Case(
        "subject_id not a string",
        "attrs/subject_id",
        "expected a string",
        _set_attr("subject_id", 7),
    ),
    # the sequence group
    Case("sequence group missing", "sequence", "missing group", _delete("sequence")),
    Case("sequence is a dataset", "sequence", "missing group", _edit(_sequence_as_dataset)),
    Case("sequence/flip_deg missing", "sequence/flip_deg", "missing", _delete("sequence/flip_deg")),
    Case("sequence/tr_ms missing", "sequence/tr_ms", "missing", _delete("sequence/tr_ms")),
    Case(
        "sequence/phase_deg missing", "sequence/phase_deg", "missing", _delete("sequence/phase_deg")
    ),
    Case(
        "sequence arrays of unequal length",
        "sequence",
        "differ in length",
        _replace_with("sequence/tr_ms", lambda v: v[:-2]),
    ),
    Case(
        "sequence/flip_deg NaN",
        "sequence/flip_deg",
        "finite",
        _set_at("sequence/flip_deg", 3, np.nan),
    ),
    Case(
        "sequence/tr_ms 2-D",
        "sequence/tr_ms",
        "float32\\[T\\]",
        _replace_with("sequence/tr_ms", lambda v: v[None]),
    ),
    Case(
        "sequence/flip_deg strings",
        "sequence/flip_deg",
        "expected a real-valued",
        _replace_with("sequence/flip_deg", lambda v: np.array([b"x"] * v.size)),
    ),
    Case(
        "sequence/phase_deg is a group",
        "sequence/phase_deg",
        "expected a dataset",
        _to_group("sequence/phase_deg"),
    ),
    Case(
        "sequence te_ms missing",
        "sequence/te_ms",
        "missing attribute",
        _del_attr("te_ms", "sequence"),
    ),
    Case(
        "sequence te_ms a string",
        "sequence/te_ms",
        "expected a finite number",
        _set_attr("te_ms", "2 ms", "sequence"),
    ),
    Case(
        "sequence ti_ms a string",
        "sequence/ti_ms",
        "expected a number",
        _set_attr("ti_ms", "none", "sequence"),
    ),
    Case("sequence/tr_ms zero", "sequence/tr_ms", "> 0 ms", _set_at("sequence/tr_ms", 5, 0.0)),
    Case(
        "sequence/flip_deg beyond 180",
        "sequence/flip_deg",
        r"\[-180, 180\]",
        _set_at("sequence/flip_deg", 0, 270.0),
    ),
    Case(
        "sequence te_ms beyond TR",
        "sequence/te_ms",
        "te_ms <",
        _set_attr("te_ms", 99.0, "sequence"),
    ),
    Case(
        "sequence of length 0",
        "sequence",
        "at least one repetition",
        _edit(
            lambda f: [
                f.__delitem__(f"sequence/{k}")
                or f.create_dataset(f"sequence/{k}", data=np.zeros(0, np.float32))
                for k in SEQUENCE_ARRAYS
            ]
        ),
    ),
    # damaged files
    Case("zero-length file", "file", "cannot open as HDF5", _truncate(lambda n: 0)),
    Case("truncated to 8 bytes", "file", "cannot open as HDF5", _truncate(lambda n: 8)),
    Case("truncated to 100 bytes", "file", "cannot open as HDF5", _truncate(lambda n: 100)),
    Case("truncated to 1 KiB", "file", "cannot open as HDF5", _truncate(lambda n: 1024)),
    Case("truncated to 4 KiB", "file", "cannot open as HDF5", _truncate(lambda n: 4096)),
    Case("truncated to half", "file", "cannot open as HDF5", _truncate(lambda n: n // 2)),
    Case("truncated by 100 bytes", "file", "cannot open as HDF5", _truncate(lambda n: n - 100)),
    Case("truncated by 1 byte", "file", "cannot open as HDF5", _truncate(lambda n: n - 1)),
    Case("garbage bytes", "file", "cannot open as HDF5", _write_bytes(b"garbage!" * 512)),
    Case(
        "HDF5 signature then garbage",
        "file",
        "cannot open as HDF5",
        _write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 16),
    ),
    Case(
        "zeroed superblock", "file", "cannot open as HDF5", _overwrite_bytes(lambda n: 0, bytes(64))
    ),
    Case("a directory", "file", "is a directory", _make_directory, in_folder=False),
    Case("a non-existent path", "file", "no such file", _remove, in_folder=False),
]


def write_valid(path: Path, slice_id: str = "z00") -> Path:
    io.write_slice(path, make_slice(slice_id))
    return path


def write_case(path: Path, case: Case, slice_id: str = "z00") -> Path:
    """A valid slice at `path`, then broken by `case`."""
    write_valid(path, slice_id)
    case.mutate(path)
    return path


# ----------------------------------------------------------------------------- ISMRMRD raw data
#
# The same scheme for `python -m rinq_jax.data.raw.ismrmrd_import`: a valid tiny raw file (2 coils,
# 12 repetitions of a 4-interleaf spiral at 16 x 16, a noise scan first) and its schedule CSV
# beside it (`schedule_of(raw)`), written by rinq_jax.data.raw.ismrmrd_export; `mutate(raw)` breaks
# one of them, and the import must raise `MrfFormatError` naming the raw file (or, for
# `in_schedule` cases, the CSV) and `field`.

RAW_MATRIX, RAW_REPS, RAW_COILS, RAW_INTERLEAVES = 16, 12, 2, 4


@dataclasses.dataclass(frozen=True)
class RawCase(Case):
    # the error names the schedule CSV rather than the raw file
    in_schedule: bool = False


def schedule_of(raw: Path) -> Path:
    """The schedule CSV that goes with a raw file of this corpus."""
    return raw.with_suffix(".csv")


RAW_CONFIG = AcquisitionConfig(
    matrix=RAW_MATRIX, n_interleaves=RAW_INTERLEAVES, undersampling=RAW_INTERLEAVES, snr=50.0
)
_SAMPLES = spiral_trajectory(RAW_CONFIG).shape[1]


def write_valid_raw(path: Path) -> Path:
    """A valid raw file at `path` and its schedule at `schedule_of(path)`."""
    yy, xx = np.mgrid[:RAW_MATRIX, :RAW_MATRIX] - RAW_MATRIX // 2
    disc = (np.hypot(yy, xx) < 0.4 * RAW_MATRIX).astype(np.float32)
    coefficients = np.stack([disc, disc * yy / RAW_MATRIX]).astype(np.complex64)
    t = np.arange(RAW_REPS) / RAW_REPS
    basis = np.stack([1.0 - np.exp(-3 * t), np.cos(2 * np.pi * t)]).astype(np.complex64)
    seq = paper_sequence(RAW_REPS)
    ismrmrd_export.simulate_raw(
        path, coefficients, basis, RAW_CONFIG, seq, n_coils=RAW_COILS, rng=np.random.default_rng(0)
    )
    schedule_files.write_schedule_csv(schedule_of(path), seq)
    return path


def write_raw_case(path: Path, case: RawCase) -> Path:
    """A valid raw file (and schedule) at `path`, then broken by `case`."""
    write_valid_raw(path)
    case.mutate(path)
    return path


def _records(fn):
    """Rewrite `dataset/data` after `fn(records)` edits the structured array (or returns a new one)."""

    def edit(f):
        records = f["dataset/data"][()]
        new = fn(records)
        del f["dataset/data"]
        f["dataset"].create_dataset("data", data=records if new is None else new, chunks=True)

    return _edit(edit)


def _head(i, name, value):
    """Set head field `name` ("idx/repetition", "flags", ...) of acquisition `i` (0: noise scan)."""

    def fn(records):
        field = records["head"]
        for part in name.split("/"):
            field = field[part]
        field[i] = value

    return _records(fn)


def _resize(i, channels=None, samples=None):
    """Acquisition `i` with another coil or sample count (header and arrays)."""

    def fn(records):
        head = records["head"]
        c, s = int(head["active_channels"][i]), int(head["number_of_samples"][i])
        data = records["data"][i].view(np.complex64).reshape(c, s)
        traj = records["traj"][i].reshape(s, -1)
        c2, s2 = channels or c, samples or s
        data = np.resize(data, (c2, s2)) if c2 > c else data[:c2, :s2]
        records["data"][i] = np.ascontiguousarray(data).view(np.float32).ravel()
        records["traj"][i] = np.ascontiguousarray(traj[:s2]).ravel()
        head["active_channels"][i], head["number_of_samples"][i] = c2, s2

    return _records(fn)


def _each_imaging(fn):
    def edit(records):
        for i in range(1, records.size):
            fn(records, i)

    return _records(edit)


def _no_trajectory(records, i):
    records["head"]["trajectory_dimensions"][i] = 0
    records["traj"][i] = np.zeros(0, np.float32)


def _one_dim_trajectory(records, i):
    records["head"]["trajectory_dimensions"][i] = 1
    records["traj"][i] = records["traj"][i][::2].copy()


def _traj_times(factor):
    def fn(records, i):
        records["traj"][i] = records["traj"][i] * np.float32(factor)

    return fn


def _header(fn):
    """Edit the parsed XML header (`ismrmrd.xsd`) and write it back."""

    def edit(f):
        header = ismrmrd.xsd.CreateFromDocument(f["dataset/xml"][0])
        fn(header)
        f["dataset/xml"][0] = ismrmrd.xsd.ToXML(header)

    return _edit(edit)


def _matrix(x, y):
    def fn(header):
        size = header.encoding[0].encodedSpace.matrixSize
        size.x, size.y = x, y

    return _header(fn)


def _fov(value):
    def fn(header):
        header.encoding[0].encodedSpace.fieldOfView_mm.x = value

    return _header(fn)


def _not_ismrmrd(path):
    os.remove(path)
    with h5py.File(path, "w") as f:
        f.create_group("signals")


def _schedule(fn):
    """Replace the schedule's lines by `fn(lines)`."""

    def mutate(raw):
        csv = schedule_of(raw)
        csv.write_text("\n".join(fn(csv.read_text().splitlines())) + "\n")

    return mutate


def _row(n, text):
    """Replace data row `n` (0-based, after the comment and header lines) of the schedule."""

    def fn(lines):
        lines[3 + n] = text
        return lines

    return _schedule(fn)


def _reversed_trajectory(records, i):
    records["traj"][i] = records["traj"][i].reshape(-1, 2)[::-1].ravel().copy()


def _set_data(i, index, value):
    """Set float `index` of acquisition `i`'s data (interleaved re/im, coil-major)."""

    def fn(records):
        records["data"][i][index] = value

    return _records(fn)


def _shorten_data(i, n_floats):
    def fn(records):
        records["data"][i] = records["data"][i][:-n_floats].copy()

    return _records(fn)


def _drop_column(k):
    def fn(lines):
        return [
            line if line.startswith("#") else ",".join(np.delete(line.split(","), k))
            for line in lines
        ]

    return _schedule(fn)


_NOISE_FLAG = 1 << (ismrmrd.ACQ_IS_NOISE_MEASUREMENT - 1)
_S = "dataset/data"
RAW_CASES: list[RawCase] = [
    RawCase("raw: a non-existent path", "file", "no such file", _remove),
    RawCase("raw: a directory", "file", "is a directory", _make_directory),
    RawCase("raw: garbage bytes", "file", "cannot open as HDF5", _write_bytes(b"raw!" * 999)),
    RawCase("raw: truncated to half", "file", "cannot open as HDF5", _truncate(lambda n: n // 2)),
    RawCase("raw: HDF5 but not ISMRMRD", "dataset", "no ISMRMRD dataset group", _not_ismrmrd),
    RawCase("raw: no acquisitions", _S, "no acquisitions", _delete("dataset/data")),
    RawCase(
        "raw: only noise scans",
        _S,
        "no imaging acquisitions",
        _records(lambda r: r["head"]["flags"].__setitem__(slice(None), _NOISE_FLAG)),
    ),
    RawCase(
        "raw: unparsable XML header",
        "dataset/xml",
        "cannot parse the ISMRMRD XML header",
        _edit(lambda f: f["dataset/xml"].__setitem__(0, b"<ismrmrdHeader><encoding>")),
    ),
    RawCase("raw: no XML header", "dataset/xml", "pass --matrix", _delete("dataset/xml")),
    RawCase(
        "raw: odd matrix",
        "dataset/xml/encoding/encodedSpace/matrixSize",
        "even int",
        _matrix(15, 15),
    ),
    RawCase(
        "raw: non-square matrix",
        "dataset/xml/encoding/encodedSpace/matrixSize",
        "square matrix, got 16 x 32",
        _matrix(16, 32),
    ),
    RawCase(
        "raw: zero FOV", "dataset/xml/encoding/encodedSpace/fieldOfView_mm", "FOV > 0", _fov(0.0)
    ),
    RawCase(
        "raw: no trajectory",
        f"{_S}[1]/head/trajectory_dimensions",
        "no trajectory stored: pass --trajectory",
        _each_imaging(_no_trajectory),
    ),
    RawCase(
        "raw: 1-D trajectory",
        f"{_S}[1]/head/trajectory_dimensions",
        "got 1",
        _each_imaging(_one_dim_trajectory),
    ),
    RawCase(
        "raw: trajectory in rad/pixel",
        f"{_S}[1]/traj",
        "beyond the Nyquist edge",
        _each_imaging(_traj_times(2 * np.pi)),
    ),
    RawCase(
        "raw: spiral-in trajectory",
        f"{_S}[1]/traj",
        "spiral-out",
        _each_imaging(_reversed_trajectory),
    ),
    RawCase(
        # repetition 5 (acquisition 6) plays interleaf 1 but is labelled interleaf 0
        "raw: one interleaf label, two trajectories",
        "dataset/data[6]/traj",
        "plays interleaf 0 at other k-space positions than its first repetition 0",
        _head(6, "idx/kspace_encode_step_1", 0),
    ),
    RawCase(
        "raw: repetition duplicated",
        f"{_S}[6]/head/idx/repetition",
        "repetition 4 already in acquisition 5",
        _head(6, "idx/repetition", 4),
    ),
    RawCase(
        "raw: repetition out of range",
        f"{_S}/head/idx/repetition",
        rf"missing \[{RAW_REPS - 1}\]",
        _head(RAW_REPS, "idx/repetition", RAW_REPS + 5),
    ),
    RawCase(
        "raw: one repetition missing",
        f"{_S}/head/idx/repetition",
        f"{RAW_REPS - 1} imaging acquisitions .* schedule has {RAW_REPS} rows",
        _records(lambda r: np.delete(r, 4)),
    ),
    RawCase(
        "raw: sample count differs",
        f"{_S}[3]/head/number_of_samples",
        "samples like acquisition 1",
        _resize(3, samples=20),
    ),
    RawCase(
        "raw: coil count differs",
        f"{_S}[7]/head/active_channels",
        f"expected {RAW_COILS} coils like acquisition 1, got 3",
        _resize(7, channels=3),
    ),
    RawCase(
        "raw: data shorter than its header",
        f"{_S}[2]/data",
        "expected .* floats",
        _shorten_data(2, 6),
    ),
    RawCase(
        "raw: NaN sample",
        f"{_S}[5]/data",
        r"NaN/Inf \(first at coil 1, sample 3\)",
        _set_data(5, 2 * (_SAMPLES + 3), np.nan),
    ),
    RawCase(
        "raw: schedule one row longer",
        f"{_S}/head/idx/repetition",
        f"{RAW_REPS} imaging acquisitions .* schedule has {RAW_REPS + 1} rows",
        _schedule(lambda lines: [*lines, lines[-1]]),
    ),
    RawCase(
        "schedule: missing",
        "file",
        "no such schedule file",
        lambda raw: schedule_of(raw).unlink(),
        in_schedule=True,
    ),
    RawCase(
        "schedule: no tr_ms column",
        "tr_ms",
        "missing column",
        _drop_column(1),
        in_schedule=True,
    ),
    RawCase(
        "schedule: non-numeric flip angle",
        "flip_deg",
        "line 6: 'ten' is not a number",
        _row(2, "ten,12.0,0.0"),
        in_schedule=True,
    ),
    RawCase(
        "schedule: flip angle 270",
        "flip_deg",
        r"\[-180, 180\]",
        _row(0, "270,12.0,0.0"),
        in_schedule=True,
    ),
    RawCase("schedule: TR 0", "tr_ms", "TR > 0 ms", _row(1, "10.0,0,0.0"), in_schedule=True),
    RawCase("schedule: NaN TR", "tr_ms", "finite", _row(1, "10.0,nan,0.0"), in_schedule=True),
    RawCase(
        "schedule: ragged row",
        "header",
        "2 values, the header 3",
        _row(3, "10.0,12.0"),
        in_schedule=True,
    ),
    RawCase(
        "schedule: unknown column",
        "phase",
        "unknown column 'phase'",
        _schedule(lambda lines: [line.replace("phase_deg", "phase") for line in lines]),
        in_schedule=True,
    ),
    RawCase(
        "schedule: TE beyond TR",
        "te_ms",
        "te_ms < min TR",
        _schedule(lambda lines: ["# te_ms = 40.0", *lines[1:]]),
        in_schedule=True,
    ),
]
