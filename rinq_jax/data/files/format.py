"""The rinq_jax HDF5 slice format: field names, dtypes, shapes, and the checks of a slice's fields.

The full specification is ``docs/data_format.md``; ``rinq_jax.data.files.io`` reads and writes it,
and this module says what a valid slice is. Every problem with a file is reported as one exception
type, :class:`MrfFormatError` (`rinq_jax.errors`, re-exported here), whose message names the file,
the field and what was expected, so that command-line tools can print one line instead of a
traceback.

Layout (``H, W`` image rows and columns, ``T`` repetitions)::

    /signals     complex64[H, W, T]   chunks (1, W, T): one image row per chunk
    /mask        bool[H, W]
    /t1_ms, /t2_ms, /dm_t1_ms, /dm_t2_ms, /b1   float32[H, W]      (optional)
    /t1_single_ms, /t2_single_ms, /b1_map       float32[H, W]      (optional)
    /fractions   float32[H, W, C]  compartment area fractions          (optional)
    /m0          complex64[H, W]                                   (optional)
    /tissue      uint8[H, W]                                       (optional)
    /sequence    group: flip_deg, tr_ms, phase_deg float32[T]; attrs te_ms, ti_ms (NaN: none)
    /acquisition group attrs: undersampling, snr, n_interleaves, matrix, fov_mm, ...
    /generator   group attrs: free-form provenance (program, version, seed, ...)
    attrs        format_version (int, 1), subject_id, slice_id (str); sequence_hash (str,
                 FispSequence.hash of /sequence: derived when absent, checked when present)

Maps are in ms (T1, T2, their dictionary-matching versions), B1 is a relative scale (1 = nominal
flip angle); signals and M0 are in arbitrary units. Two truths: ``t1_ms``/``t2_ms`` the
proton-density-weighted mean relaxation rate of the pixel's compartments, ``t1_single_ms``/
``t2_single_ms`` the single-compartment least-squares fit of its noiseless, unaliased signal at
the true B1 (`rinq_jax.physics.fit`), the best a one-tissue method can reach. ``b1`` is the true
transmit field, ``b1_map`` a measured B1 map (what a scanner's B1 mapping gives: smoothed and
noisy). ``fractions[..., c]`` is the area fraction of compartment ``c`` (the generator's
``tissue_labels`` attribute names the compartments).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import h5py
import numpy as np

from rinq_jax.errors import MrfFileNotFoundError as MrfFileNotFoundError  # re-exported
from rinq_jax.errors import MrfFormatError
from rinq_jax.physics.sequence import FispSequence

FORMAT_VERSION = 1

# signals and mask make a file usable for inference; the maps are what training needs.
REQUIRED_FIELDS = ("signals", "mask")
OPTIONAL_FIELDS = (
    "t1_ms",
    "t2_ms",
    "m0",
    "b1",
    "tissue",
    "dm_t1_ms",
    "dm_t2_ms",
    "t1_single_ms",
    "t2_single_ms",
    "b1_map",
    "fractions",
)
FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
# A T1 map without its T2 map (or the reverse) cannot serve as a training target.
TARGET_PAIRS = {
    "true": ("t1_ms", "t2_ms"),
    "dm": ("dm_t1_ms", "dm_t2_ms"),
    "single": ("t1_single_ms", "t2_single_ms"),
}

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
    "t1_single_ms": np.dtype(np.float32),
    "t2_single_ms": np.dtype(np.float32),
    "b1_map": np.dtype(np.float32),
    "fractions": np.dtype(np.float32),
}
SEQUENCE_ARRAYS = ("flip_deg", "tr_ms", "phase_deg")
# The root attributes, all required, and their types. ``sequence_hash`` is optional (it is derived
# from the sequence group; when present it must equal that hash).
ROOT_ATTRS = {"format_version": int, "subject_id": str, "slice_id": str}

# Upper bounds in ms (well above any tissue at 3 T) and the median below which a map is
# almost certainly in seconds (brain T1 ~ 0.8-4 s, T2 ~ 0.04-2 s).
_MAX_MS = {
    "t1_ms": 10000.0,
    "t2_ms": 5000.0,
    "dm_t1_ms": 10000.0,
    "dm_t2_ms": 5000.0,
    "t1_single_ms": 10000.0,
    "t2_single_ms": 5000.0,
}
_SECONDS_MEDIAN_BELOW = {name: 10.0 if limit > 5000 else 1.0 for name, limit in _MAX_MS.items()}
# The message of the error for a mask without a True pixel (a whole slice's mask must have one).
EMPTY_MASK = "expected at least one True pixel, got an empty mask"
_B1_MAX = 5.0  # B1 is a relative scale (~0.5-1.5); a median above this is percent or degrees


# --------------------------------------------------------------------------- sequence


def read_sequence(path, fields: Mapping[str, Any]) -> FispSequence:
    """The ``FispSequence`` of a file's sequence group fields, or the error naming the field.

    ``fields`` are the group's datasets and attributes (``ti_ms`` None for no inversion).
    Checks what the format says (:func:`check_sequence`) and what the physics needs (TR > 0,
    flip angles in [-180, 180] deg, 0 <= TE < min TR).
    """
    check_sequence(path, fields)
    try:
        return FispSequence.from_dict(dict(fields))
    except ValueError as error:
        # FispSequence names the field first: "FispSequence.tr_ms: every TR must be > 0 ms".
        name, sep, message = str(error).removeprefix("FispSequence.").partition(": ")
        field = f"sequence/{name}" if sep and name in (*SEQUENCE_ARRAYS, "te_ms", "ti_ms") else ""
        raise MrfFormatError(path, field or "sequence", message if field else str(error)) from error


def check_sequence_hash(path, stored: str | None, sequence: FispSequence) -> None:
    """Raise if a file's ``sequence_hash`` attribute is not the hash of its sequence group.

    The hash is derived from the sequence (``FispSequence.hash``); a file may leave it out.
    """
    if stored is not None and stored != sequence.hash:
        raise MrfFormatError(
            path,
            "attrs/sequence_hash",
            f"expected {sequence.hash} (FispSequence.hash of the file's sequence group), "
            f"got {stored!r}",
        )


# --------------------------------------------------------------------------- checks


def check_dtype_shape(path, name: str, dtype, shape, expected_shape, why: str = "") -> None:
    """Raise unless a field has the format's dtype and ``expected_shape``.

    ``why`` follows the expected shape in the message (e.g. where T comes from).
    """
    expected_dtype = DTYPES[name]
    if np.dtype(dtype) != expected_dtype:
        raise MrfFormatError(path, name, f"expected dtype {expected_dtype}, got {np.dtype(dtype)}")
    if tuple(shape) != tuple(expected_shape):
        raise MrfFormatError(
            path,
            name,
            f"expected shape ({', '.join(map(str, expected_shape))}){why}, got {tuple(shape)}",
        )


def expected_shape(name: str, n_rows: int, n_cols: int, n_reps: int, shape) -> tuple[tuple, str]:
    """(expected shape, why) of a field: signals [H, W, T], fractions [H, W, C], maps [H, W]."""
    if name == "signals":
        return (n_rows, n_cols, n_reps), f" (T = {n_reps} from the sequence)"
    if name == "fractions":
        channels = shape[2] if len(shape) == 3 and shape[2] >= 1 else "C"
        return (n_rows, n_cols, channels), " (H, W of the signals, C compartments)"
    return (n_rows, n_cols), " (H, W of the signals)"


def check_finite(path, name: str, values: np.ndarray, row0: int = 0) -> None:
    """Raise if any value is NaN or infinite, naming the first bad pixel.

    ``row0`` is the image row of ``values[0]`` (a block of rows), so the pixel named is the
    image's.
    """
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


def check_values(path, name: str, values: np.ndarray, mask: np.ndarray, row0: int = 0) -> None:
    """Value checks of one [H, W] map (or the signals): finiteness, units and ranges.

    ``mask`` covers the same rows as ``values``; ``row0`` is as in :func:`check_finite`.
    """
    if name in ("mask", "tissue"):
        return
    check_finite(path, name, values, row0)
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
    if name == "fractions" and not (np.all(values >= -1e-6) and np.all(values.sum(-1) <= 1 + 1e-4)):
        raise MrfFormatError(
            path, name, "expected area fractions in [0, 1] summing to at most 1 per pixel"
        )
    if name in ("b1", "b1_map") and mask.any():
        median = float(np.median(values[mask]))
        if not 0.0 < median <= _B1_MAX:
            raise MrfFormatError(
                path,
                name,
                f"expected a relative scale around 1 (0 < median <= {_B1_MAX:g}); the median "
                f"inside the mask is {median:.4g} (percent? divide by 100)",
            )


def check_root_attr(path, key: str, value: Any) -> None:
    """Raise unless a root attribute (``ROOT_ATTRS``, read as a Python value) has its type.

    ``format_version`` must moreover be ``FORMAT_VERSION``.
    """
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


def _is_real_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def check_sequence(path, sequence: Mapping[str, Any]) -> int:
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


def check_pairs(path, present: Iterable[str]) -> None:
    """Raise if one map of a target pair (``TARGET_PAIRS``) is present without the other."""
    present = set(present)
    for a, b in TARGET_PAIRS.values():
        if (a in present) != (b in present):
            missing = b if a in present else a
            other = a if a in present else b
            raise MrfFormatError(path, missing, f"missing while '{other}' is present (a pair)")


def check_slice(
    path,
    arrays: Mapping[str, np.ndarray],
    sequence: FispSequence,
    subject_id: str,
    slice_id: str,
) -> None:
    """Full in-memory check of a slice about to be written.

    Args:
        path: the file it is bound for (named in the error).
        arrays: the fields present, by name (``MrfSlice.arrays()``).
        sequence: the acquisition's sequence (T is its length).
        subject_id: the subject's identifier (non-empty).
        slice_id: the slice's identifier (non-empty).

    """
    for name in REQUIRED_FIELDS:
        if name not in arrays:
            raise MrfFormatError(path, name, "missing (required)")
    if not subject_id or not slice_id:
        raise MrfFormatError(path, "attrs/subject_id", "expected non-empty subject_id, slice_id")
    n_reps = sequence.n_reps
    n_rows, n_cols = np.shape(arrays["signals"])[:2]
    check_pairs(path, arrays)
    for name, values in arrays.items():
        expected, why = expected_shape(name, n_rows, n_cols, n_reps, values.shape)
        check_dtype_shape(path, name, values.dtype, values.shape, expected, why)
    mask = arrays["mask"]
    if not mask.any():
        raise MrfFormatError(path, "mask", EMPTY_MASK)
    for name, values in arrays.items():
        check_values(path, name, values, mask)


def check_file_fields(path, f: h5py.Group, n_reps: int) -> tuple[tuple[str, ...], int, int]:
    """Check an open file's datasets from their headers: presence, pairs, dtypes and shapes.

    Args:
        path: the file (named in the error).
        f: the open file.
        n_reps: T, from the file's sequence.

    Returns:
        The fields present (in ``FIELDS`` order) and ``H, W`` of the signals.

    """
    for name in REQUIRED_FIELDS:
        if name not in f:
            raise MrfFormatError(path, name, "missing (required)")
    present = tuple(name for name in FIELDS if name in f)
    check_pairs(path, present)
    for name in present:
        if not isinstance(f[name], h5py.Dataset):
            raise MrfFormatError(path, name, "expected a dataset, got a group")
    signals = f["signals"]
    if len(signals.shape) != 3:
        raise MrfFormatError(path, "signals", f"expected shape (H, W, T), got {signals.shape}")
    n_rows, n_cols = signals.shape[:2]
    for name in present:
        ds = f[name]
        expected, why = expected_shape(name, n_rows, n_cols, n_reps, ds.shape)
        check_dtype_shape(path, name, ds.dtype, ds.shape, expected, why)
    return present, n_rows, n_cols
