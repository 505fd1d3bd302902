"""Reading and writing slice files (one HDF5 file per slice) in the format of ``data.format``.

The only reader and writer of ``docs/data_format.md``. :class:`MrfSlice` is a slice in memory;
:func:`write_slice` checks it and writes it atomically; :func:`read_slice` reads some fields or
rows and checks them; :func:`inspect` reads metadata and shapes only; :func:`validate` checks
every value. Problems raise ``rinq_jax.data.files.format.MrfFormatError`` naming file and field.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rinq_jax.atomic import atomic_path
from rinq_jax.data.files.format import (
    EMPTY_MASK,
    FIELDS,
    FORMAT_VERSION,
    ROOT_ATTRS,
    TARGET_PAIRS,
    MrfFileNotFoundError,
    MrfFormatError,
    check_file_fields,
    check_finite,
    check_root_attr,
    check_sequence_hash,
    check_slice,
    check_values,
    read_sequence,
)
from rinq_jax.physics.sequence import FispSequence, write_hdf5_group


@dataclasses.dataclass(frozen=True, eq=False)
class MrfSlice:
    """One MRF slice: image time series, maps and metadata.

    Arrays (``None`` when absent from the file or not read):
        signals: complex64[H, W, T] aliased, noisy image time series (arbitrary units).
        mask: bool[H, W] pixels to train and evaluate on.
        t1_ms, t2_ms: float32[H, W] true relaxation times in ms (0 outside the mask is allowed).
        m0: complex64[H, W] proton density times receive phase (arbitrary units).
        b1: float32[H, W] relative transmit field (1 = nominal flip angle).
        tissue: uint8[H, W] tissue label (see the generator's attrs for the label names).
        dm_t1_ms, dm_t2_ms: float32[H, W] dictionary-matching maps in ms.
        t1_single_ms, t2_single_ms: float32[H, W] the single-compartment truth in ms
            (`rinq_jax.data.acquisition.compartments.single_compartment_maps`).
        b1_map: float32[H, W] measured relative B1 (`rinq_jax.data.subjects.b1_map`).
        fractions: float32[H, W, C] compartment area fractions (C tissue labels).

    Metadata:
        subject_id, slice_id: identifiers; splits keep slices (and subjects) disjoint by these.
        sequence: the acquisition's ``FispSequence`` (a dict of its fields, as
            ``FispSequence.to_dict()`` gives, is converted); ``sequence_hash`` is its ``hash``.
        acquisition: scalars such as ``undersampling``, ``snr``, ``n_interleaves``, ``matrix``,
            ``fov_mm``.
        generator: free-form provenance scalars/strings.
    """

    subject_id: str
    slice_id: str
    sequence: FispSequence
    signals: np.ndarray | None = None
    mask: np.ndarray | None = None
    t1_ms: np.ndarray | None = None
    t2_ms: np.ndarray | None = None
    m0: np.ndarray | None = None
    b1: np.ndarray | None = None
    tissue: np.ndarray | None = None
    dm_t1_ms: np.ndarray | None = None
    dm_t2_ms: np.ndarray | None = None
    t1_single_ms: np.ndarray | None = None
    t2_single_ms: np.ndarray | None = None
    b1_map: np.ndarray | None = None
    fractions: np.ndarray | None = None
    acquisition: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    generator: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        # Frozen dataclass: object.__setattr__ is the sanctioned way to normalise in __post_init__.
        if not isinstance(self.sequence, FispSequence):
            object.__setattr__(self, "sequence", FispSequence.from_dict(dict(self.sequence)))
        object.__setattr__(self, "acquisition", dict(self.acquisition))
        object.__setattr__(self, "generator", dict(self.generator))

    @property
    def sequence_hash(self) -> str:
        """``FispSequence.hash`` of the sequence: what the file's ``sequence_hash`` holds."""
        return self.sequence.hash

    @property
    def n_reps(self) -> int:
        """Number of repetitions T, from the sequence."""
        return self.sequence.n_reps

    def arrays(self) -> dict[str, np.ndarray]:
        """Return the fields that are present, by name."""
        return {name: getattr(self, name) for name in FIELDS if getattr(self, name) is not None}


@dataclasses.dataclass(frozen=True)
class SliceInfo:
    """Metadata and shapes of a slice file, read without touching the arrays' data.

    Attributes:
        path: the file.
        format_version: always ``FORMAT_VERSION`` (other versions are refused).
        subject_id, slice_id: the file's identifying attributes.
        sequence: the acquisition's sequence (``sequence_hash`` is its hash).
        n_rows, n_cols: ``H, W`` of ``signals`` (``T`` is the sequence's length).
        fields: names of the datasets present, in ``FIELDS`` order.
        acquisition, generator: the groups' attributes.

    """

    path: str
    format_version: int
    subject_id: str
    slice_id: str
    sequence: FispSequence
    n_rows: int
    n_cols: int
    fields: tuple[str, ...]
    acquisition: Mapping[str, Any]
    generator: Mapping[str, Any]

    @property
    def sequence_hash(self) -> str:
        """``FispSequence.hash`` of the file's sequence."""
        return self.sequence.hash

    @property
    def n_reps(self) -> int:
        """``T``: repetitions of the sequence and time points of ``signals``."""
        return self.sequence.n_reps

    @property
    def trajectory(self) -> dict | None:
        """The k-space trajectory's signature (`trajectory.Trajectory.signature`), if recorded."""
        text = self.acquisition.get("trajectory")
        return None if text is None else json.loads(text)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(H, W, T)`` of the signals."""
        return (self.n_rows, self.n_cols, self.n_reps)

    def has_target(self, target: str) -> bool:
        """Whether both maps of a training target (``"true"`` or ``"dm"``) are present."""
        return all(name in self.fields for name in TARGET_PAIRS[target])


# --------------------------------------------------------------------------- writing


def write_slice(path: str | os.PathLike, s: MrfSlice) -> None:
    """Validate ``s`` and write it to ``path`` atomically.

    The file is written to ``<path>.tmp-<pid>``, flushed to disk and renamed over ``path``
    (``rinq_jax.atomic.atomic_path``);
    on any error the temporary file is removed and ``path`` is left as it was, so a reader
    never sees a half-written slice.

    Raises:
        MrfFormatError: ``s`` breaks the format (nothing is written).

    """
    path = os.fspath(path)
    check_slice(path, s.arrays(), s.sequence, s.subject_id, s.slice_id)
    with atomic_path(path, keep_suffixes=False, fsync=True) as tmp, h5py.File(tmp, "w") as f:
        _write_contents(f, s)


def _write_contents(f: h5py.File, s: MrfSlice) -> None:
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["subject_id"] = str(s.subject_id)
    f.attrs["slice_id"] = str(s.slice_id)
    f.attrs["sequence_hash"] = str(s.sequence_hash)
    n_rows, n_cols, n_reps = s.signals.shape
    # One image row per chunk: a row-block reader (the patch loader) then reads exactly the rows
    # it needs, with no read amplification, and a chunk of a 256 x 3000 row is 6 MB, large enough
    # that HDF5's per-chunk overhead is negligible. Noisy complex data barely compresses, so no
    # filter (which would also cost CPU on every read).
    f.create_dataset("signals", data=s.signals, chunks=(1, n_cols, n_reps))
    for name, values in s.arrays().items():
        if name != "signals":
            f.create_dataset(name, data=values)
    write_hdf5_group(f, s.sequence)
    for group_name, values in (("acquisition", s.acquisition), ("generator", s.generator)):
        group = f.create_group(group_name)
        for key, value in values.items():
            group.attrs[key] = np.nan if value is None else value  # HDF5 has no None


# --------------------------------------------------------------------------- reading


@contextlib.contextmanager
def _open(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open a slice file read-only; an unreadable file becomes an MrfFormatError."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MrfFileNotFoundError(path, "file", "no such file")
    if os.path.isdir(path):
        raise MrfFormatError(path, "file", "is a directory, expected an HDF5 slice file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise MrfFormatError(
            path, "file", f"cannot open as HDF5 (truncated or corrupt?): {err}"
        ) from err
    with f:
        try:
            yield f
        except (OSError, RuntimeError, KeyError) as err:
            # h5py reports corrupt metadata (an attribute, a group or a dataset header that
            # cannot be decoded) this way; every read of the file happens inside this block.
            raise MrfFormatError(
                path, "file", f"cannot read (truncated or corrupt?): {type(err).__name__}: {err}"
            ) from err


def _read(path, f: h5py.File, name: str, selection=()) -> np.ndarray:
    """Read (part of) a dataset; HDF5 read errors (truncated data) become MrfFormatError."""
    try:
        return f[name][selection]
    except (OSError, KeyError) as err:
        raise MrfFormatError(
            path, name, f"cannot read data (truncated or corrupt?): {err}"
        ) from err


def _plain(value: Any) -> Any:
    """HDF5 attribute value -> Python scalar/str (numpy arrays kept)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_sequence(path, f: h5py.File) -> FispSequence:
    if "sequence" not in f or not isinstance(f["sequence"], h5py.Group):
        raise MrfFormatError(path, "sequence", "missing group (expected flip_deg, tr_ms, ...)")
    group = f["sequence"]
    seq: dict[str, Any] = {}
    for key in group:
        if not isinstance(group[key], h5py.Dataset):
            raise MrfFormatError(path, f"sequence/{key}", "expected a dataset, got a group")
        seq[key] = _read(path, f, f"sequence/{key}")
    for key, value in group.attrs.items():
        value = _plain(value)
        seq[key] = None if isinstance(value, float) and np.isnan(value) else value
    return read_sequence(path, seq)


def _read_attrs(path, f: h5py.File) -> dict[str, Any]:
    attrs = {}
    for key, kind in ROOT_ATTRS.items():
        if key not in f.attrs:
            raise MrfFormatError(
                path, f"attrs/{key}", f"missing attribute (expected {kind.__name__})"
            )
        attrs[key] = _plain(f.attrs[key])
        check_root_attr(path, key, attrs[key])
    return attrs


def _group_attrs(f: h5py.File, name: str) -> dict[str, Any]:
    if name not in f:
        return {}
    return {key: _plain(value) for key, value in f[name].attrs.items()}


def _inspect_open(path, f: h5py.File) -> SliceInfo:
    """Metadata checks of an open file: attrs, sequence, presence, dtypes and shapes."""
    attrs = _read_attrs(path, f)
    sequence = _read_sequence(path, f)
    stored_hash = _plain(f.attrs["sequence_hash"]) if "sequence_hash" in f.attrs else None
    check_sequence_hash(path, stored_hash, sequence)
    present, n_rows, n_cols = check_file_fields(path, f, sequence.n_reps)
    return SliceInfo(
        path=os.fspath(path),
        format_version=attrs["format_version"],
        subject_id=attrs["subject_id"],
        slice_id=attrs["slice_id"],
        sequence=sequence,
        n_rows=n_rows,
        n_cols=n_cols,
        fields=present,
        acquisition=_group_attrs(f, "acquisition"),
        generator=_group_attrs(f, "generator"),
    )


def inspect(path: str | os.PathLike) -> SliceInfo:
    """Read a file's metadata and shapes (no array data), checking them against the format.

    Cheap: only attributes, the small sequence arrays and dataset headers are read.

    Raises:
        MrfFormatError: unreadable file, missing attribute/field, wrong dtype or shape,
            unsupported format_version; a directory (field ``file``); a path that does not
            exist as :class:`MrfFileNotFoundError` (also a ``FileNotFoundError``).

    """
    with _open(path) as f:
        return _inspect_open(path, f)


def is_complete(path: str | os.PathLike) -> bool:
    """Whether a generated file exists whole (a generator's resume skips it).

    A training ``.npz`` (written atomically) when it exists; a slice file when :func:`inspect`
    accepts it.
    """
    path = Path(path)
    if path.suffix == ".npz":
        return path.exists()
    try:
        inspect(path)
    except (MrfFormatError, FileNotFoundError):
        return False
    return True


def as_slice_info(file: str | os.PathLike | SliceInfo) -> SliceInfo:
    """A file's :class:`SliceInfo`: ``file`` itself when it is one, else :func:`inspect` of it."""
    return file if isinstance(file, SliceInfo) else inspect(file)


def _row_selection(rows, n_rows: int) -> slice:
    if rows is None:
        return slice(0, n_rows)
    if isinstance(rows, tuple):
        rows = slice(*rows)
    if not isinstance(rows, slice) or rows.step not in (None, 1):
        raise ValueError(f"rows must be a contiguous slice or (start, stop), got {rows!r}")
    start, stop, _ = rows.indices(n_rows)
    return slice(start, max(start, stop))


def read_slice(
    path: str | os.PathLike,
    fields: Iterable[str] | None = None,
    rows: slice | tuple[int, int] | None = None,
) -> MrfSlice:
    """Read and check a slice (or some of its fields, or a block of its rows).

    Args:
        path: the file.
        fields: names from ``FIELDS`` to read; ``None`` reads every field present. ``mask`` is
            always read (the value checks need it).
        rows: a contiguous block of image rows (``slice(r0, r1)`` or ``(r0, r1)``); arrays
            then have ``r1 - r0`` rows. Only those rows are read from disk.

    Returns:
        MrfSlice with the requested arrays (others ``None``) and all metadata.

    Raises:
        MrfFormatError: any format problem, including a requested optional field that is
            absent, non-finite values and implausible units in what was read.
        ValueError: an unknown field name or a non-contiguous ``rows``.

    """
    with _open(path) as f:
        info = _inspect_open(path, f)
        if fields is None:
            wanted = list(info.fields)
        else:
            wanted = list(dict.fromkeys(fields))
            unknown = [name for name in wanted if name not in FIELDS]
            if unknown:
                raise ValueError(f"unknown field(s) {unknown}; known: {FIELDS}")
            absent = [name for name in wanted if name not in info.fields]
            if absent:
                raise MrfFormatError(
                    path, absent[0], f"requested but absent; the file has {info.fields}"
                )
        if "mask" not in wanted:
            wanted.insert(0, "mask")
        sel = _row_selection(rows, info.n_rows)
        arrays = {name: _read(path, f, name, sel) for name in wanted}
    if rows is None and not arrays["mask"].any():
        raise MrfFormatError(path, "mask", EMPTY_MASK)
    for name, values in arrays.items():
        check_values(path, name, values, arrays["mask"], row0=sel.start)
    return MrfSlice(
        subject_id=info.subject_id,
        slice_id=info.slice_id,
        sequence=info.sequence,
        acquisition=info.acquisition,
        generator=info.generator,
        **arrays,
    )


def validate(path: str | os.PathLike, block_rows: int = 16) -> SliceInfo:
    """Check a whole file: metadata, shapes, and every value, reading signals in row blocks.

    Memory stays at ``block_rows * W * T * 8`` bytes for the signals, so a paper-size slice
    (256 x 256 x 3000) is checked in ~100 MB.

    Returns:
        The file's SliceInfo when it is valid.

    Raises:
        MrfFormatError: the first problem found.

    """
    with _open(path) as f:
        info = _inspect_open(path, f)
        maps = {name: _read(path, f, name) for name in info.fields if name != "signals"}
        if not maps["mask"].any():
            raise MrfFormatError(path, "mask", EMPTY_MASK)
        for name, values in maps.items():
            check_values(path, name, values, maps["mask"])
        for row0 in range(0, info.n_rows, block_rows):
            block = _read(path, f, "signals", slice(row0, row0 + block_rows))
            check_finite(path, "signals", block, row0)
    return info
