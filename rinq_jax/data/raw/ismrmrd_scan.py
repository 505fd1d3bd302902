"""Open a scanner's raw spiral MRF scan (ISMRMRD) with its schedule: `open_scan`.

What the import (`rinq_jax.data.raw.ismrmrd_import`) and ``python -m rinq_jax.scanner prepare``
read of a scan before any gridding: the image grid, the schedule with TE and TI, the layout of
the imaging acquisitions and the trajectory played, every field checked (`ScanOptions` complete
or override the header). A malformed input raises ``MrfFormatError`` naming file and field.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from rinq_jax.data.acquisition.trajectory import Trajectory
from rinq_jax.data.files.format import MrfFormatError
from rinq_jax.data.raw.ismrmrd_read import (
    REPETITION_COUNTERS,
    RawLayout,
    open_raw,
    read_block,
    read_trajectory,
    scan,
)
from rinq_jax.data.raw.ismrmrd_traj import TRAJ_UNITS, load_trajectory, traj_scale
from rinq_jax.physics.schedule_files import read_schedule
from rinq_jax.physics.sequence import FispSequence

__all__ = ["RawScan", "ScanOptions", "add_scan_flags", "open_scan", "scan_options"]


@dataclasses.dataclass(frozen=True)
class ScanOptions:
    """How to read a raw scan: what completes or overrides its header and schedule.

    Attributes:
        matrix: image matrix H = W; None: the header's ``encodedSpace/matrixSize``.
        fov_mm: field of view in mm; None: the header's ``encodedSpace/fieldOfView_mm``.
        counter: the ``idx`` counter numbering the repetitions (`REPETITION_COUNTERS`).
        trajectory: a ``.npy`` trajectory (`ismrmrd_traj.load_trajectory`) instead of the
            file's; None: the file's.
        traj_units: units of the trajectory (`ismrmrd_traj.TRAJ_UNITS`).
        dataset: the ISMRMRD dataset group.
        te_ms: echo time in ms; None: the CSV's ``# te_ms``, else the header's TE.
        ti_ms: inversion delay in ms or ``"none"``; None: the CSV's, else the header's TI.
        b1_map: the scanner's measured B1 map of the slice (relative, 1 = nominal flip angle),
            a single-slice NIfTI on the image matrix (`rinq_jax.data.files.nifti`); stored as
            the slice's ``b1_map``, which networks trained with ``--b1-input`` read. None: none.
    """

    matrix: int | None = None
    fov_mm: float | None = None
    counter: str = "repetition"
    trajectory: Path | None = None
    traj_units: str = "cycles_per_pixel"
    dataset: str = "dataset"
    te_ms: float | None = None
    ti_ms: float | str | None = None
    b1_map: Path | None = None

    def __post_init__(self):
        if self.counter not in REPETITION_COUNTERS:
            raise ValueError(f"counter must be one of {REPETITION_COUNTERS}, got {self.counter!r}")
        if self.traj_units not in TRAJ_UNITS:
            raise ValueError(f"traj_units must be one of {TRAJ_UNITS}, got {self.traj_units!r}")


def add_scan_flags(parser: argparse.ArgumentParser) -> None:
    """The `ScanOptions` as command-line flags (read back by `scan_options`)."""
    parser.add_argument("--matrix", type=int, help="image matrix (default: from the header)")
    parser.add_argument("--fov-mm", type=float, help="FOV in mm (default: from the header)")
    parser.add_argument(
        "--repetition-counter",
        choices=REPETITION_COUNTERS,
        default="repetition",
        help="idx counter that numbers the repetitions (default: repetition)",
    )
    parser.add_argument("--trajectory", type=Path, help=".npy trajectory float[n, samples, 2]")
    parser.add_argument(
        "--traj-units",
        choices=TRAJ_UNITS,
        default="cycles_per_pixel",
        help="units of the trajectory (default: cycles_per_pixel, [-0.5, 0.5))",
    )
    parser.add_argument("--dataset", default="dataset", help="ISMRMRD dataset group")
    parser.add_argument("--te-ms", type=float, help="echo time (default: CSV, else header)")
    parser.add_argument("--ti-ms", help="inversion delay or 'none' (default: CSV, else header)")
    parser.add_argument(
        "--b1-map", type=Path, help="measured relative B1 map (NIfTI) of the slice, 1 = nominal"
    )


def scan_options(args: argparse.Namespace) -> ScanOptions:
    """The `ScanOptions` of flags added by `add_scan_flags`."""
    return ScanOptions(
        matrix=args.matrix,
        fov_mm=args.fov_mm,
        counter=args.repetition_counter,
        trajectory=args.trajectory,
        traj_units=args.traj_units,
        dataset=args.dataset,
        te_ms=args.te_ms,
        ti_ms=args.ti_ms,
        b1_map=args.b1_map,
    )


def _geometry(path, header, dataset: str, matrix, fov_mm) -> tuple[int, float]:
    """(matrix, fov_mm) from the options, else the header's first encoding's encodedSpace."""
    space = header.encoding[0].encodedSpace if header is not None and header.encoding else None
    where = f"{dataset}/xml/encoding/encodedSpace"
    missing = "no XML header" if header is None else "no encoding in the XML header"
    if matrix is None:
        if space is None:
            raise MrfFormatError(path, f"{dataset}/xml", f"{missing}: pass --matrix, --fov-mm")
        size = space.matrixSize
        if size.x != size.y:
            raise MrfFormatError(
                path,
                f"{where}/matrixSize",
                f"expected a square matrix, got {size.x} x {size.y} (pass --matrix)",
            )
        matrix, matrix_field = size.x, f"{where}/matrixSize"
    else:
        matrix_field = "--matrix"
    if fov_mm is None:
        if space is None:
            raise MrfFormatError(path, f"{dataset}/xml", f"{missing}: pass --matrix, --fov-mm")
        fov_mm, fov_field = space.fieldOfView_mm.x, f"{where}/fieldOfView_mm"
    else:
        fov_field = "--fov-mm"
    if not (isinstance(matrix, int) and 8 <= matrix <= 4096 and matrix % 2 == 0):
        raise MrfFormatError(path, matrix_field, f"expected an even int in [8, 4096], got {matrix}")
    if not (np.isfinite(fov_mm) and fov_mm > 0):
        raise MrfFormatError(path, fov_field, f"expected a finite FOV > 0 mm, got {fov_mm}")
    return matrix, float(fov_mm)


def _header_times(header) -> tuple[float | None, float | None]:
    """(TE, TI) in ms from the header's sequenceParameters, None where absent."""
    params = header.sequenceParameters if header is not None else None
    if params is None:
        return None, None
    return (params.TE[0] if params.TE else None), (params.TI[0] if params.TI else None)


@dataclasses.dataclass(frozen=True)
class RawScan:
    """An open, checked raw scan: what the import and `rinq_jax.scanner` read of it.

    Attributes:
        path: the ISMRMRD file.
        matrix, fov_mm: the image grid (options, else the header).
        sequence: the schedule (the CSV, TE and TI from the options, CSV or header).
        layout: the imaging acquisitions in repetition order (`ismrmrd_read.scan`).
        trajectory: the interleaves played and their order (`ismrmrd_read.read_trajectory`).
        read: ``read(reps) -> (data, traj, weights)`` of some repetitions (`read_block`).
    """

    path: Path
    matrix: int
    fov_mm: float
    sequence: FispSequence
    layout: RawLayout
    trajectory: Trajectory
    read: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@contextlib.contextmanager
def open_scan(
    raw: str | os.PathLike, sequence_csv: str | os.PathLike, options: ScanOptions = ScanOptions()
) -> Iterator[RawScan]:
    """Open and check a raw scan and its schedule, read as ``options`` say.

    Reads the headers, the schedule and every repetition's trajectory; the data are read by
    ``RawScan.read`` while the file is open.

    Raises:
        MrfFormatError: a malformed input, naming the file and the field.
    """
    o, raw = options, Path(raw)
    with open_raw(raw, o.dataset) as (header, acquisitions):
        matrix, fov_mm = _geometry(raw, header, o.dataset, o.matrix, o.fov_mm)
        header_te, header_ti = _header_times(header)
        seq = read_schedule(
            sequence_csv,
            te_ms=o.te_ms,
            ti_ms=o.ti_ms,
            default_te_ms=header_te,
            default_ti_ms=header_ti,
        )
        layout = scan(
            raw,
            acquisitions,
            seq.n_reps,
            dataset=o.dataset,
            counter=o.counter,
            need_traj=o.trajectory is None,
        )
        scale = traj_scale(o.traj_units, matrix)
        traj_file, rows = None, None
        if o.trajectory is not None:
            traj_file = load_trajectory(o.trajectory, layout.n_samples, layout.n_reps, scale)
            rows = layout.trajectory_rows(traj_file.shape[0], o.trajectory)

        def read(reps):
            return read_block(layout, acquisitions, reps, scale, traj_file, rows)

        played = read_trajectory(layout, acquisitions, scale, traj_file, rows)
        yield RawScan(raw, matrix, fov_mm, seq, layout, played, read)
