"""MRF schedules as files: CSV (the scanner's schedule, the importer's ``--sequence``) and NPZ.

**CSV** (`read_schedule`, `write_schedule_csv`)::

    # te_ms = 2.0
    # ti_ms = 20.0
    flip_deg,tr_ms,phase_deg
    5.0,12.1,0.0
    ...

one row per repetition (in repetition order), columns ``flip_deg`` (degrees, in [-180, 180]),
``tr_ms`` (ms, > 0) and optionally ``phase_deg`` (degrees; default 0). ``# te_ms = ...`` (ms,
``0 <= TE < min TR``) and ``# ti_ms = ...`` (ms; ``none`` or absent: no inversion) may come
from comment lines, from keyword arguments (which win) or from defaults (e.g. the ISMRMRD
header's TE and TI).

**NPZ** (`save_sequence`): arrays ``flip_deg``, ``tr_ms``, optionally ``phase_deg``, and
scalars ``te_ms`` and optionally ``ti_ms`` (NaN: no inversion).

`load_sequence` reads either by its suffix. Problems raise ``MrfFormatError(file, field,
message)`` (`rinq_jax.errors`), ``field`` a column (``flip_deg``, ``tr_ms``, ``phase_deg``),
``te_ms``, ``ti_ms``, ``header`` or ``file``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from rinq_jax.atomic import atomic_path
from rinq_jax.errors import MrfFileNotFoundError, MrfFormatError
from rinq_jax.physics.sequence import FORMAT_FIELDS, FispSequence

__all__ = ["load_sequence", "read_schedule", "save_sequence", "write_schedule_csv"]

_REQUIRED = ("flip_deg", "tr_ms")


def _number(path, field: str, text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MrfFormatError(path, field, f"{where}: {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise MrfFormatError(path, field, f"{where}: expected a finite number, got {text.strip()}")
    return value


def _read_lines(path: Path) -> tuple[dict[str, str], list[str], list[tuple[int, list[str]]]]:
    """(comment key = value pairs, header names, (line number, values) rows)."""
    comments, header, rows = {}, None, []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise MrfFormatError(path, "file", f"cannot read the schedule CSV: {err}") from err
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            key, sep, value = line[1:].partition("=")
            if sep:
                comments[key.strip()] = value.strip()
        elif header is None:
            header = [name.strip() for name in line.split(",")]
        else:
            rows.append((number, line.split(",")))
    if header is None or not rows:
        raise MrfFormatError(
            path,
            "header",
            "expected a header row (flip_deg,tr_ms[,phase_deg]) and one row per repetition",
        )
    return comments, header, rows


def _columns(path, header: list[str], rows) -> dict[str, np.ndarray]:
    for name in header:
        if name not in FORMAT_FIELDS:
            raise MrfFormatError(
                path,
                name or "header",
                f"unknown column {name!r} (expected {', '.join(FORMAT_FIELDS)})",
            )
    if len(set(header)) != len(header):
        raise MrfFormatError(path, "header", f"a column appears twice: {header}")
    for name in _REQUIRED:
        if name not in header:
            raise MrfFormatError(path, name, f"missing column (the header names {header})")
    columns = {name: np.empty(len(rows)) for name in header}
    for r, (number, values) in enumerate(rows):
        if len(values) != len(header):
            raise MrfFormatError(
                path, "header", f"line {number} has {len(values)} values, the header {len(header)}"
            )
        for name, text in zip(header, values, strict=True):
            columns[name][r] = _number(path, name, text, f"line {number}")
    return columns


def _check_ranges(path, columns: dict[str, np.ndarray], rows) -> None:
    checks = {
        "flip_deg": (lambda v: np.abs(v) > 180, "expected a flip angle in [-180, 180] deg"),
        "tr_ms": (lambda v: v <= 0, "expected TR > 0 ms"),
    }
    for name, (bad_of, expected) in checks.items():
        bad = np.flatnonzero(bad_of(columns[name]))
        if bad.size:
            number = rows[bad[0]][0]
            raise MrfFormatError(
                path,
                name,
                f"line {number}: {expected}, got {columns[name][bad[0]]:g} ({bad.size} such rows)",
            )


def _scalar(path, field, value, optional: bool) -> float | None:
    if value is None or (optional and str(value).strip().lower() in ("", "none", "nan")):
        return None
    return _number(path, field, str(value), "value")


def read_schedule(
    path: str | os.PathLike,
    *,
    te_ms: float | None = None,
    ti_ms: float | str | None = None,
    default_te_ms: float | None = None,
    default_ti_ms: float | None = None,
) -> FispSequence:
    """Read a CSV schedule (format in the module docstring) into a ``FispSequence``.

    Args:
        path: the CSV file.
        te_ms: echo time in ms, overriding the file's ``# te_ms`` line.
        ti_ms: inversion delay in ms (or ``"none"``), overriding the file's ``# ti_ms`` line.
        default_te_ms: TE when neither ``te_ms`` nor the file gives one.
        default_ti_ms: TI when neither ``ti_ms`` nor the file gives one (None: no inversion).

    Returns:
        The schedule, T = the number of rows.

    Raises:
        MrfFormatError: naming ``path`` and the column or scalar at fault.

    """
    path = Path(path)
    if not path.exists():
        raise MrfFileNotFoundError(path, "file", "no such schedule file")
    if path.is_dir():
        raise MrfFormatError(path, "file", "is a directory, expected a CSV schedule")
    comments, header, rows = _read_lines(path)
    columns = _columns(path, header, rows)
    _check_ranges(path, columns, rows)
    te = _scalar(path, "te_ms", te_ms if te_ms is not None else comments.get("te_ms"), False)
    te = default_te_ms if te is None else te
    if te is None:
        raise MrfFormatError(
            path,
            "te_ms",
            "missing: add a '# te_ms = 2.0' line, pass --te-ms, or set TE in the ISMRMRD header",
        )
    tr_min = float(columns["tr_ms"].astype(np.float32).min())
    if not 0.0 <= te < tr_min:
        raise MrfFormatError(
            path, "te_ms", f"expected 0 <= te_ms < min TR = {tr_min:g}, got {te:g}"
        )
    given_ti = ti_ms if ti_ms is not None else comments.get("ti_ms")
    ti = _scalar(path, "ti_ms", given_ti, True) if given_ti is not None else default_ti_ms
    if ti is not None and ti < 0:
        raise MrfFormatError(path, "ti_ms", f"expected a delay >= 0 ms or none, got {ti:g}")
    return FispSequence(
        flip_deg=columns["flip_deg"],
        tr_ms=columns["tr_ms"],
        phase_deg=columns.get("phase_deg", np.zeros(len(rows))),
        te_ms=te,
        ti_ms=ti,
    )


def write_schedule_csv(path: str | os.PathLike, seq: FispSequence) -> None:
    """Write ``seq`` as a CSV schedule (atomically).

    ``# te_ms = ...`` and ``# ti_ms = ...`` comment lines (``none``: no inversion), a header
    ``flip_deg,tr_ms,phase_deg`` and one row per repetition; the float32 values are written
    exactly, so the schedule read back has the same ``FispSequence.hash``.
    """
    lines = [
        f"# te_ms = {seq.te_ms!r}",
        f"# ti_ms = {'none' if seq.ti_ms is None else repr(seq.ti_ms)}",
        "flip_deg,tr_ms,phase_deg",
    ]
    rows = zip(seq.flip_deg.tolist(), seq.tr_ms.tolist(), seq.phase_deg.tolist(), strict=True)
    lines += [f"{f!r},{tr!r},{p!r}" for f, tr, p in rows]
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")


def save_sequence(seq: FispSequence, path: str | os.PathLike) -> None:
    """Write ``seq`` as NPZ atomically (temp name, then rename)."""
    d = seq.to_dict()
    d["ti_ms"] = np.nan if d["ti_ms"] is None else d["ti_ms"]
    with atomic_path(path) as tmp:
        np.savez(tmp, **d)


def _read_npz(path: Path, te_ms, ti_ms) -> FispSequence:
    try:
        with np.load(path) as npz:
            fields = {name: npz[name] for name in npz.files}
    except (OSError, ValueError) as error:
        raise MrfFormatError(path, "file", f"cannot read as NPZ ({error})") from error
    for name in ("flip_deg", "tr_ms"):
        if name not in fields:
            raise MrfFormatError(path, name, f"missing array (the file has {sorted(fields)})")
    if te_ms is not None:
        fields["te_ms"] = te_ms
    if ti_ms is not None:
        fields["ti_ms"] = ti_ms
    if "te_ms" not in fields:
        raise MrfFormatError(path, "te_ms", "missing: pass te_ms=... or store it in the file")
    fields["ti_ms"] = _scalar(path, "ti_ms", fields.get("ti_ms"), True)
    try:
        return FispSequence.from_dict(fields)
    except ValueError as error:
        raise MrfFormatError(path, "sequence", str(error)) from error


def load_sequence(
    path: str | os.PathLike, te_ms: float | None = None, ti_ms: float | str | None = None
) -> FispSequence:
    """Load a user's schedule from CSV or NPZ (formats in the module docstring).

    Keyword arguments override values stored in the file.

    Raises:
        MrfFormatError: naming the file and the missing or malformed field.

    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_schedule(path, te_ms=te_ms, ti_ms=ti_ms)
    if suffix != ".npz":
        raise MrfFormatError(path, "file", "expected a .csv or .npz schedule file")
    if not path.exists():
        raise MrfFileNotFoundError(path, "file", "no such schedule file")
    return _read_npz(path, te_ms, ti_ms)
