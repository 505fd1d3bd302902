"""The rinq_jax HDF5 slice format: one file per slice, written atomically, read with validation.

The full specification is ``docs/data_format.md``; this module is its only reader and writer.
Every problem with a file is reported as one exception type, :class:`MrfFormatError`, whose
message names the file, the field and what was expected, so that command-line tools can print
one line instead of a traceback.

Layout (``H, W`` image rows and columns, ``T`` repetitions)::

    /signals     complex64[H, W, T]   chunks (1, W, T): one image row per chunk
    /mask        bool[H, W]
    /t1_ms, /t2_ms, /dm_t1_ms, /dm_t2_ms, /b1   float32[H, W]      (optional)
    /m0          complex64[H, W]                                   (optional)
    /tissue      uint8[H, W]                                       (optional)
    /sequence    group: flip_deg, tr_ms, phase_deg float32[T]; attrs te_ms, ti_ms (NaN: none)
    /acquisition group attrs: undersampling, snr, n_interleaves, matrix, fov_mm, ...
    /generator   group attrs: free-form provenance (program, version, seed, ...)
    attrs        format_version (int, 1), subject_id, slice_id, sequence_hash (str)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import h5py
import numpy as np

from rinq_jax.atomic import atomic_path

FORMAT_VERSION = 1

# signals and mask make a file usable for inference; the maps are what training needs.
REQUIRED_FIELDS = ("signals", "mask")
OPTIONAL_FIELDS = ("t1_ms", "t2_ms", "m0", "b1", "tissue", "dm_t1_ms", "dm_t2_ms")
FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
# A T1 map without its T2 map (or the reverse) cannot serve as a training target.
TARGET_PAIRS = {"true": ("t1_ms", "t2_ms"), "dm": ("dm_t1_ms", "dm_t2_ms")}

DTYPES = {
    "signals": np.dtype(np.complex64),
    "mask": np.dtype(np.bool_),
    "t1_ms": np.dtype(np.float32),
    "t2_ms": np.dtype(np.float32),
    "m0": np.dtype(np.complex64),
    "b1": np.dtype(np.float32),
    "tissue": np.dtype(np.uint8),
    "dm_t1_ms": np.dtype(np.float32),
    "dm_t2_ms": np.dtype(np.float32),
}
SEQUENCE_ARRAYS = ("flip_deg", "tr_ms", "phase_deg")

# Upper bounds in ms (well above any tissue at 3 T) and the median below which a map is
# almost certainly in seconds (brain T1 ~ 0.8-4 s, T2 ~ 0.04-2 s).
_MAX_MS = {"t1_ms": 10000.0, "t2_ms": 5000.0, "dm_t1_ms": 10000.0, "dm_t2_ms": 5000.0}
_SECONDS_MEDIAN_BELOW = {"t1_ms": 10.0, "t2_ms": 1.0, "dm_t1_ms": 10.0, "dm_t2_ms": 1.0}
_EMPTY_MASK = "expected at least one True pixel, got an empty mask"
_B1_MAX = 5.0  # B1 is a relative scale (~0.5-1.5); a median above this is percent or degrees


class MrfFormatError(ValueError):
    """A slice file (or an in-memory slice about to be written) breaks the format.

    Attributes:
        path: the file concerned.
        field: the dataset, attribute or group at fault (e.g. ``"t1_ms"``, ``"sequence/tr_ms"``,
            ``"attrs/format_version"``, or ``"file"`` for an unreadable file).

    """

    def __init__(self, path: str | os.PathLike, field: str, message: str):
        self.path = os.fspath(path)
        self.field = field
        super().__init__(f"{self.path}: field '{field}': {message}")


class MrfFileNotFoundError(MrfFormatError, FileNotFoundError):
    """The slice file does not exist (field ``file``).

    Both an :class:`MrfFormatError` (one type for every problem with an input file) and a
    ``FileNotFoundError`` (what callers checking for a missing file expect).
    """


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

    Metadata:
        subject_id, slice_id: identifiers; splits keep slices (and subjects) disjoint by these.
        sequence: the acquisition's ``FispSequence.to_dict()`` (``flip_deg``, ``tr_ms``,
            ``phase_deg`` float32[T]; ``te_ms`` float; ``ti_ms`` float or None). Any object
            with ``to_dict()`` (and ideally ``.hash``) may be passed; it is stored as its dict.
        sequence_hash: hex digest identifying the sequence; derived when left empty.
        acquisition: scalars such as ``undersampling``, ``snr``, ``n_interleaves``, ``matrix``,
            ``fov_mm``.
        generator: free-form provenance scalars/strings.
    """

    subject_id: str
    slice_id: str
    sequence: Any
    signals: np.ndarray | None = None
    mask: np.ndarray | None = None
    t1_ms: np.ndarray | None = None
    t2_ms: np.ndarray | None = None
    m0: np.ndarray | None = None
    b1: np.ndarray | None = None
    tissue: np.ndarray | None = None
    dm_t1_ms: np.ndarray | None = None
    dm_t2_ms: np.ndarray | None = None
    sequence_hash: str = ""
    acquisition: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    generator: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        # Frozen dataclass: object.__setattr__ is the sanctioned way to normalise in __post_init__.
        if self.sequence_hash and not hasattr(self.sequence, "to_dict"):
            object.__setattr__(self, "sequence", dict(self.sequence))  # hash given: keep it
        else:
            seq_dict, seq_hash = sequence_dict_and_hash(self.sequence)
            object.__setattr__(self, "sequence", seq_dict)
            object.__setattr__(self, "sequence_hash", self.sequence_hash or seq_hash)
        object.__setattr__(self, "acquisition", dict(self.acquisition))
        object.__setattr__(self, "generator", dict(self.generator))

    @property
    def n_reps(self) -> int:
        """Number of repetitions T, from the sequence."""
        return int(np.shape(self.sequence["flip_deg"])[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """Return the fields that are present, by name."""
        return {name: getattr(self, name) for name in FIELDS if getattr(self, name) is not None}


@dataclasses.dataclass(frozen=True)
class SliceInfo:
    """Metadata and shapes of a slice file, read without touching the arrays' data.

    Attributes:
        path: the file.
        format_version: always ``FORMAT_VERSION`` (other versions are refused).
        subject_id, slice_id, sequence_hash: the file's identifying attributes.
        n_rows, n_cols, n_reps: ``H, W, T`` of ``signals``.
        fields: names of the datasets present, in ``FIELDS`` order.
        acquisition, generator: the groups' attributes.

    """

    path: str
    format_version: int
    subject_id: str
    slice_id: str
    sequence_hash: str
    n_rows: int
    n_cols: int
    n_reps: int
    fields: tuple[str, ...]
    acquisition: Mapping[str, Any]
    generator: Mapping[str, Any]

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(H, W, T)`` of the signals."""
        return (self.n_rows, self.n_cols, self.n_reps)

    def has_target(self, target: str) -> bool:
        """Whether both maps of a training target (``"true"`` or ``"dm"``) are present."""
        return all(name in self.fields for name in TARGET_PAIRS[target])


# --------------------------------------------------------------------------- sequence helpers


def sequence_dict_hash(sequence: Mapping[str, Any]) -> str:
    """Fallback sha256 hex digest of a sequence dict (keys sorted, arrays by dtype/shape/bytes).

    Only used when ``rinq_jax.physics.sequence`` cannot be imported; ``FispSequence.hash`` is
    authoritative otherwise.
    """
    digest = hashlib.sha256()
    for key in sorted(sequence):
        value = sequence[key]
        digest.update(key.encode())
        if isinstance(value, np.ndarray):
            digest.update(f"{value.dtype.str}{value.shape}".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()


def sequence_dict_and_hash(sequence: Any) -> tuple[dict[str, Any], str]:
    """Turn a sequence (object with ``to_dict()``, or a dict) into ``(dict, hash)``.

    The hash is ``sequence.hash`` when the object has one; for a dict it is the hash of
    ``FispSequence.from_dict(dict)`` so files written from a dict and from the object agree,
    falling back to :func:`sequence_dict_hash` while the physics module does not exist.
    """
    if hasattr(sequence, "to_dict"):
        seq_dict = dict(sequence.to_dict())
        seq_hash = getattr(sequence, "hash", None)
        return seq_dict, str(seq_hash) if seq_hash else sequence_dict_hash(seq_dict)
    seq_dict = dict(sequence)
    try:
        from rinq_jax.physics.sequence import FispSequence
    except ImportError:
        return seq_dict, sequence_dict_hash(seq_dict)
    return seq_dict, str(FispSequence.from_dict(seq_dict).hash)


def to_fisp_sequence(sequence: Mapping[str, Any]):
    """Build a ``rinq_jax.physics.sequence.FispSequence`` from a sequence dict read from a file."""
    from rinq_jax.physics.sequence import FispSequence  # late import: physics is optional here

    return FispSequence.from_dict(dict(sequence))


# --------------------------------------------------------------------------- checks


def _check_dtype_shape(path, name: str, dtype, shape, expected_shape, why: str = "") -> None:
    """Raise unless a field has the format's dtype and ``expected_shape``."""
    expected_dtype = DTYPES[name]
    if np.dtype(dtype) != expected_dtype:
        raise MrfFormatError(path, name, f"expected dtype {expected_dtype}, got {np.dtype(dtype)}")
    if tuple(shape) != tuple(expected_shape):
        raise MrfFormatError(
            path, name, f"expected shape {tuple(expected_shape)}{why}, got {tuple(shape)}"
        )


def _check_finite(path, name: str, values: np.ndarray, row0: int = 0) -> None:
    """Raise if any value is NaN or infinite, naming the first bad pixel."""
    bad = ~np.isfinite(values)
    if bad.any():
        first = np.argwhere(bad)[0]
        first[0] += row0
        raise MrfFormatError(
            path,
            name,
            f"expected finite values, got {int(bad.sum())} NaN/Inf (first at index "
            f"{tuple(int(i) for i in first)})",
        )


def _check_values(path, name: str, values: np.ndarray, mask: np.ndarray, row0: int = 0) -> None:
    """Value checks of one [H, W] map (or the signals): finiteness, units and ranges."""
    if name in ("mask", "tissue"):
        return
    _check_finite(path, name, values, row0)
    if name in _MAX_MS and mask.any():
        inside = values[mask]
        median = float(np.median(inside))
        if median < _SECONDS_MEDIAN_BELOW[name]:
            raise MrfFormatError(
                path,
                name,
                f"expected a map in ms; the median inside the mask is {median:.4g}, which "
                f"suggests seconds (multiply by 1000)",
            )
        if inside.min() <= 0:
            raise MrfFormatError(
                path, name, f"expected positive values (ms) inside the mask, got min {inside.min()}"
            )
        if inside.max() > _MAX_MS[name]:
            raise MrfFormatError(
                path,
                name,
                f"expected values <= {_MAX_MS[name]:g} ms inside the mask, got max {inside.max()}",
            )
    if name == "b1" and mask.any():
        median = float(np.median(values[mask]))
        if not 0.0 < median <= _B1_MAX:
            raise MrfFormatError(
                path,
                name,
                f"expected a relative scale around 1 (0 < median <= {_B1_MAX:g}); the median "
                f"inside the mask is {median:.4g} (percent? divide by 100)",
            )


def _is_real_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _check_sequence(path, sequence: Mapping[str, Any]) -> int:
    """Check the sequence arrays (1-D, real, finite, equal length) and its scalars; return T."""
    lengths = set()
    for key in SEQUENCE_ARRAYS:
        if key not in sequence:
            raise MrfFormatError(path, f"sequence/{key}", "missing (expected float32[T])")
        arr = np.asarray(sequence[key])
        if arr.dtype.kind not in "iuf":
            raise MrfFormatError(
                path, f"sequence/{key}", f"expected a real-valued float32[T], got dtype {arr.dtype}"
            )
        if arr.ndim != 1 or not np.isfinite(arr).all():
            raise MrfFormatError(
                path, f"sequence/{key}", f"expected finite float32[T], got shape {arr.shape}"
            )
        lengths.add(arr.shape[0])
    if len(lengths) != 1:
        raise MrfFormatError(path, "sequence", f"arrays differ in length: {sorted(lengths)}")
    n_reps = lengths.pop()
    if n_reps == 0:
        raise MrfFormatError(path, "sequence", "expected at least one repetition, got T = 0")
    if "te_ms" not in sequence:
        raise MrfFormatError(path, "sequence/te_ms", "missing attribute (expected a float in ms)")
    te_ms = sequence["te_ms"]
    if not _is_real_number(te_ms) or not np.isfinite(te_ms):
        raise MrfFormatError(
            path, "sequence/te_ms", f"expected a finite number (ms), got {te_ms!r}"
        )
    ti_ms = sequence.get("ti_ms")
    if ti_ms is not None and not (_is_real_number(ti_ms) and np.isfinite(ti_ms)):
        raise MrfFormatError(
            path, "sequence/ti_ms", f"expected a number (ms) or NaN for no inversion, got {ti_ms!r}"
        )
    return n_reps


def _check_pairs(path, present: Iterable[str]) -> None:
    present = set(present)
    for a, b in TARGET_PAIRS.values():
        if (a in present) != (b in present):
            missing = b if a in present else a
            other = a if a in present else b
            raise MrfFormatError(path, missing, f"missing while '{other}' is present (a pair)")


def _check_slice(path, s: MrfSlice) -> None:
    """Full in-memory check of a slice about to be written."""
    arrays = s.arrays()
    for name in REQUIRED_FIELDS:
        if name not in arrays:
            raise MrfFormatError(path, name, "missing (required)")
    if not s.subject_id or not s.slice_id:
        raise MrfFormatError(path, "attrs/subject_id", "expected non-empty subject_id, slice_id")
    n_reps = _check_sequence(path, s.sequence)
    n_rows, n_cols = np.shape(s.signals)[:2]
    _check_pairs(path, arrays)
    for name, values in arrays.items():
        expected = (n_rows, n_cols, n_reps) if name == "signals" else (n_rows, n_cols)
        why = f" (T = {n_reps} from the sequence)" if name == "signals" else ""
        _check_dtype_shape(path, name, values.dtype, values.shape, expected, why)
    if not s.mask.any():
        raise MrfFormatError(path, "mask", _EMPTY_MASK)
    for name, values in arrays.items():
        _check_values(path, name, values, s.mask)


# --------------------------------------------------------------------------- writing


def _attr_value(value: Any) -> Any:
    # HDF5 attributes cannot hold None; NaN is the documented "absent" (e.g. ti_ms).
    return np.nan if value is None else value


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
    _check_slice(path, s)
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
    seq = f.create_group("sequence")
    for key, value in s.sequence.items():
        if isinstance(value, np.ndarray | list | tuple):
            seq.create_dataset(key, data=np.asarray(value))
        else:
            seq.attrs[key] = _attr_value(value)
    for group_name, values in (("acquisition", s.acquisition), ("generator", s.generator)):
        group = f.create_group(group_name)
        for key, value in values.items():
            group.attrs[key] = _attr_value(value)


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


def _read_sequence(path, f: h5py.File) -> dict[str, Any]:
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
    return seq


def _read_attrs(path, f: h5py.File) -> dict[str, Any]:
    attrs = {}
    for key, kind in (
        ("format_version", int),
        ("subject_id", str),
        ("slice_id", str),
        ("sequence_hash", str),
    ):
        if key not in f.attrs:
            raise MrfFormatError(
                path, f"attrs/{key}", f"missing attribute (expected {kind.__name__})"
            )
        value = _plain(f.attrs[key])
        if key == "format_version":
            if not isinstance(value, int) or isinstance(value, bool):
                raise MrfFormatError(path, f"attrs/{key}", f"expected an int, got {value!r}")
            if value != FORMAT_VERSION:
                raise MrfFormatError(
                    path,
                    f"attrs/{key}",
                    f"unsupported format_version {value} (this reader supports {FORMAT_VERSION})",
                )
        elif not isinstance(value, str):
            raise MrfFormatError(path, f"attrs/{key}", f"expected a string, got {value!r}")
        attrs[key] = value
    return attrs


def _group_attrs(f: h5py.File, name: str) -> dict[str, Any]:
    if name not in f:
        return {}
    return {key: _plain(value) for key, value in f[name].attrs.items()}


def _inspect_open(path, f: h5py.File) -> tuple[SliceInfo, dict[str, Any]]:
    """Metadata checks of an open file: attrs, sequence, presence, dtypes and shapes."""
    attrs = _read_attrs(path, f)
    sequence = _read_sequence(path, f)
    n_reps = _check_sequence(path, sequence)
    for name in REQUIRED_FIELDS:
        if name not in f:
            raise MrfFormatError(path, name, "missing (required)")
    present = tuple(name for name in FIELDS if name in f)
    _check_pairs(path, present)
    for name in present:
        if not isinstance(f[name], h5py.Dataset):
            raise MrfFormatError(path, name, "expected a dataset, got a group")
    signals = f["signals"]
    if len(signals.shape) != 3:
        raise MrfFormatError(path, "signals", f"expected shape (H, W, T), got {signals.shape}")
    n_rows, n_cols = signals.shape[:2]
    for name in present:
        ds = f[name]
        expected = (n_rows, n_cols, n_reps) if name == "signals" else (n_rows, n_cols)
        why = (
            f" (T = {n_reps} from the sequence)" if name == "signals" else " (H, W of the signals)"
        )
        _check_dtype_shape(path, name, ds.dtype, ds.shape, expected, why)
    info = SliceInfo(
        path=os.fspath(path),
        format_version=attrs["format_version"],
        subject_id=attrs["subject_id"],
        slice_id=attrs["slice_id"],
        sequence_hash=attrs["sequence_hash"],
        n_rows=n_rows,
        n_cols=n_cols,
        n_reps=n_reps,
        fields=present,
        acquisition=_group_attrs(f, "acquisition"),
        generator=_group_attrs(f, "generator"),
    )
    return info, sequence


def inspect(path: str | os.PathLike) -> SliceInfo:
    """Read a file's metadata and shapes (no array data), checking them against the format.

    Cheap: only attributes, the small sequence arrays and dataset headers are read.

    Raises:
        MrfFormatError: unreadable file, missing attribute/field, wrong dtype or shape,
            unsupported format_version; a directory (field ``file``); a path that does not
            exist as :class:`MrfFileNotFoundError` (also a ``FileNotFoundError``).

    """
    with _open(path) as f:
        return _inspect_open(path, f)[0]


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
        info, sequence = _inspect_open(path, f)
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
        raise MrfFormatError(path, "mask", _EMPTY_MASK)
    for name, values in arrays.items():
        _check_values(path, name, values, arrays["mask"], row0=sel.start)
    return MrfSlice(
        subject_id=info.subject_id,
        slice_id=info.slice_id,
        sequence=sequence,
        sequence_hash=info.sequence_hash,
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
        info, _ = _inspect_open(path, f)
        maps = {name: _read(path, f, name) for name in info.fields if name != "signals"}
        if not maps["mask"].any():
            raise MrfFormatError(path, "mask", _EMPTY_MASK)
        for name, values in maps.items():
            _check_values(path, name, values, maps["mask"])
        for row0 in range(0, info.n_rows, block_rows):
            block = _read(path, f, "signals", slice(row0, row0 + block_rows))
            _check_finite(path, "signals", block, row0)
    return info
