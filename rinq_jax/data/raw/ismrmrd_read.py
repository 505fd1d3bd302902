"""Reading raw spiral MRF k-space from an ISMRMRD file, checked field by field.

The file is opened with ``ismrmrd.File``; its XML header is parsed with ``ismrmrd.xsd``.
`scan` reads only the acquisition headers (``head`` of ``<dataset>/data``) and checks the
layout: imaging acquisitions (noise measurements and other non-imaging scans, by their
``ACQ_IS_*`` flags, are skipped), one per repetition, the same coil and sample counts
throughout, a 2-D trajectory. `read_block` then reads a block of acquisitions and returns
gridding-ready samples: data, trajectory in rad/pixel (the convention of
`rinq_jax.data.acquisition.nufft`) and its density compensation (`rinq_jax.data.raw.ismrmrd_traj`).

Every problem raises ``MrfFormatError(path, field, message)``; fields name the ISMRMRD item,
e.g. ``dataset/xml``, ``dataset/data[17]/head/number_of_samples``, ``dataset/data[17]/traj``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import ismrmrd
import numpy as np

from rinq_jax.data.acquisition.trajectory import SIGNATURE_TOLERANCE, Trajectory
from rinq_jax.data.files.format import MrfFileNotFoundError, MrfFormatError
from rinq_jax.data.raw.ismrmrd_traj import check_traj

__all__ = [
    "REPETITION_COUNTERS",
    "RawLayout",
    "open_raw",
    "read_block",
    "read_trajectory",
    "scan",
]

#: Most distinct interleaves a scan's trajectory may have for the generator to simulate it
#: (the training data keep one gridded image per interleaf and compartment).
MAX_INTERLEAVES = 256
#: Which ``idx`` counter numbers the repetitions.
REPETITION_COUNTERS = ("repetition", "contrast")
#: Acquisitions that are not imaging data of the slice (ISMRMRD flag bits).
_SKIPPED_FLAGS = (
    ismrmrd.ACQ_IS_NOISE_MEASUREMENT,
    ismrmrd.ACQ_IS_PARALLEL_CALIBRATION,
    ismrmrd.ACQ_IS_NAVIGATION_DATA,
    ismrmrd.ACQ_IS_PHASECORR_DATA,
    ismrmrd.ACQ_IS_HPFEEDBACK_DATA,
    ismrmrd.ACQ_IS_DUMMYSCAN_DATA,
    ismrmrd.ACQ_IS_RTFEEDBACK_DATA,
    ismrmrd.ACQ_IS_SURFACECOILCORRECTIONSCAN_DATA,
)


@dataclasses.dataclass(frozen=True)
class RawLayout:
    """What `scan` found: the imaging acquisitions, in repetition order.

    Attributes:
        path: the ISMRMRD file.
        dataset: its dataset group.
        position: int64[T] index in ``<dataset>/data`` of repetition t's acquisition.
        interleaf: int64[T] ``idx.kspace_encode_step_1`` of each repetition.
        n_coils: active channels C.
        n_samples: samples per acquisition S.
        traj_dims: ``trajectory_dimensions`` of the file (0: none stored).
        n_skipped: noise measurements and other non-imaging acquisitions skipped.
    """

    path: str
    dataset: str
    position: np.ndarray
    interleaf: np.ndarray
    n_coils: int
    n_samples: int
    traj_dims: int
    n_skipped: int

    @property
    def n_reps(self) -> int:
        """Repetitions T."""
        return int(self.position.size)

    def field(self, i: int | None, item: str) -> str:
        """The error field of ``item`` of acquisition ``i`` (``None``: all of them)."""
        return f"{self.dataset}/data{'' if i is None else f'[{i}]'}/{item}"

    def trajectory_rows(self, n_rows: int, source) -> np.ndarray:
        """int64[T]: the row of a trajectory file (``n_rows`` rows) for each repetition.

        The repetition itself when ``n_rows == T``, else its ``idx.kspace_encode_step_1``.
        """
        if n_rows == self.n_reps:
            return np.arange(self.n_reps)
        if self.interleaf.max() >= n_rows:
            rep = int(np.argmax(self.interleaf >= n_rows))
            raise MrfFormatError(
                self.path,
                self.field(int(self.position[rep]), "head/idx/kspace_encode_step_1"),
                f"interleaf {self.interleaf[rep]}, but the trajectory file {source} has "
                f"{n_rows} interleaves",
            )
        return self.interleaf


@contextlib.contextmanager
def open_raw(path: str | os.PathLike, dataset: str = "dataset") -> Iterator[tuple]:
    """Open an ISMRMRD file; yield ``(header or None, acquisitions h5py dataset)``.

    Raises:
        MrfFormatError: missing file (``MrfFileNotFoundError``), not HDF5, no such dataset
            group, an unparsable XML header, no acquisitions.

    """
    path = Path(path)
    if not path.exists():
        raise MrfFileNotFoundError(path, "file", "no such file")
    if path.is_dir():
        raise MrfFormatError(path, "file", "is a directory, expected an ISMRMRD (HDF5) file")
    try:
        f = ismrmrd.File(path, "r")
    except OSError as err:
        raise MrfFormatError(path, "file", f"cannot open as HDF5/ISMRMRD: {err}") from err
    with f:
        if dataset not in f:
            groups = sorted(f)
            raise MrfFormatError(
                path,
                dataset,
                f"no ISMRMRD dataset group {dataset!r} (groups: {groups}); pass --dataset NAME",
            )
        container = f[dataset]
        header = None
        if container.has_header():
            try:
                header = container.header
            except Exception as err:  # xsdata's parser raises several exception types
                raise MrfFormatError(
                    path, f"{dataset}/xml", f"cannot parse the ISMRMRD XML header: {err}"
                ) from err
        acquisitions = container.acquisitions if container.has_acquisitions() else None
        if acquisitions is None or len(acquisitions) == 0:
            raise MrfFormatError(path, f"{dataset}/data", "no acquisitions in the file")
        yield header, acquisitions.data


def _skipped(flags: np.ndarray) -> np.ndarray:
    bits = np.uint64(sum(1 << (flag - 1) for flag in _SKIPPED_FLAGS))
    return (flags.astype(np.uint64) & bits) != 0


def _check_same(path, dataset, heads, position, name: str, what: str) -> int:
    values = heads[name][position]
    bad = np.flatnonzero(values != values[0])
    if bad.size:
        i = int(position[bad[0]])
        raise MrfFormatError(
            path,
            f"{dataset}/data[{i}]/head/{name}",
            f"expected {values[0]} {what} like acquisition {position[0]}, got {values[bad[0]]}",
        )
    return int(values[0])


def _repetition_order(path, dataset, counter, reps, position, n_reps: int) -> np.ndarray:
    """Positions sorted by repetition, after checking that 0 .. T-1 each occur once."""
    field = f"{dataset}/data/head/idx/{counter}"
    order = np.argsort(reps, kind="stable")
    dup = np.flatnonzero(np.diff(reps[order]) == 0)
    if dup.size:
        first, second = position[order[dup[0]]], position[order[dup[0] + 1]]
        raise MrfFormatError(
            path,
            f"{dataset}/data[{second}]/head/idx/{counter}",
            f"{counter} "
            f"{reps[order[dup[0]]]} already in acquisition {first} (duplicated; "
            "--repetition-counter picks the counter that numbers the repetitions)",
        )
    if reps.size != n_reps:
        raise MrfFormatError(
            path,
            field,
            f"{reps.size} imaging acquisitions (repetitions) but the schedule has {n_reps} rows",
        )
    if reps[order[-1]] != n_reps - 1:
        missing = np.setdiff1d(np.arange(n_reps), reps)
        raise MrfFormatError(
            path,
            field,
            f"expected each of 0 .. {n_reps - 1} once; missing {missing[:5].tolist()}"
            f"{' ...' if missing.size > 5 else ''} ({missing.size} in all)",
        )
    return position[order]


def scan(
    path: str | os.PathLike,
    acquisitions,
    n_reps: int,
    *,
    dataset: str = "dataset",
    counter: str = "repetition",
    need_traj: bool = True,
) -> RawLayout:
    """Check the acquisition headers of an open file and locate each repetition.

    Args:
        path: the file (named in errors).
        acquisitions: its ``<dataset>/data`` dataset (from `open_raw`).
        n_reps: T, the schedule's repetitions.
        dataset: the dataset group's name.
        counter: the ``idx`` counter numbering the repetitions (``REPETITION_COUNTERS``).
        need_traj: the trajectory must come from the file (no trajectory file given).

    Returns:
        The layout of the imaging acquisitions.

    """
    path = os.fspath(path)
    heads = acquisitions.fields("head")[:]
    skipped = _skipped(heads["flags"])
    position = np.flatnonzero(~skipped)
    if position.size == 0:
        raise MrfFormatError(
            path,
            f"{dataset}/data",
            f"no imaging acquisitions: all {heads.size} are noise or "
            "calibration scans (ACQ_IS_* flags)",
        )
    n_coils = _check_same(path, dataset, heads, position, "active_channels", "coils")
    n_samples = _check_same(path, dataset, heads, position, "number_of_samples", "samples")
    dims = _check_same(path, dataset, heads, position, "trajectory_dimensions", "dimensions")
    i0 = int(position[0])
    if n_coils < 1:
        raise MrfFormatError(path, f"{dataset}/data[{i0}]/head/active_channels", "0 coils")
    if n_samples < 2:
        raise MrfFormatError(
            path, f"{dataset}/data[{i0}]/head/number_of_samples", f"expected >= 2, got {n_samples}"
        )
    if need_traj and dims not in (2, 3):
        reason = "no trajectory stored" if dims == 0 else f"got {dims}"
        raise MrfFormatError(
            path,
            f"{dataset}/data[{i0}]/head/trajectory_dimensions",
            "expected a 2-D spiral "
            f"trajectory (2: kx, ky; or 3: kx, ky, weight); {reason}"
            + (": pass --trajectory TRAJ.npy" if dims == 0 else ""),
        )
    reps = heads["idx"][counter][position].astype(np.int64)
    ordered = _repetition_order(path, dataset, counter, reps, position, n_reps)
    interleaf = heads["idx"]["kspace_encode_step_1"][ordered].astype(np.int64)
    return RawLayout(
        path, dataset, ordered, interleaf, n_coils, n_samples, dims, int(skipped.sum())
    )


def read_block(
    layout: RawLayout,
    acquisitions,
    reps: np.ndarray,
    traj_scale: float,
    trajectory: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read the acquisitions of some repetitions, check them, and make them gridding-ready.

    Args:
        layout: from `scan`.
        acquisitions: the open ``<dataset>/data`` dataset.
        reps: int[b] repetitions to read (consecutive ones read fastest).
        traj_scale: factor from the stored trajectory's units to rad/pixel.
        trajectory: float32[n, S, 2] rad/pixel from a trajectory file, or None to use the
            file's.
        rows: int[T] the row of ``trajectory`` of each repetition
            (`RawLayout.trajectory_rows`).

    Returns:
        data complex64[b, C, S], traj float32[b, S, 2] in rad/pixel, and weights
        float32[b, S], the density compensation of each repetition's interleaf.

    """
    positions = layout.position[reps]
    lo, hi = int(positions.min()), int(positions.max()) + 1
    if hi - lo <= 2 * len(reps):  # (nearly) consecutive: one read of the span
        span = acquisitions[lo:hi]

        def get(i):
            return span[i - lo]
    else:

        def get(i):
            return acquisitions[i]

    c, s = layout.n_coils, layout.n_samples
    data = np.empty((len(reps), c, s), np.complex64)
    traj = np.empty((len(reps), s, 2), np.float32)
    weights = np.empty((len(reps), s), np.float32)
    for b, (rep, i) in enumerate(zip(reps, positions, strict=True)):
        record = get(int(i))
        raw = record["data"]
        if raw.size != 2 * c * s:
            raise MrfFormatError(
                layout.path,
                layout.field(i, "data"),
                f"expected {2 * c * s} floats ({c} coils x {s} samples, complex), got {raw.size}",
            )
        data[b] = raw.view(np.complex64).reshape(c, s)
        if not np.all(np.isfinite(data[b])):
            coil, sample = np.argwhere(~np.isfinite(data[b]))[0]
            raise MrfFormatError(
                layout.path,
                layout.field(i, "data"),
                f"expected finite samples, got NaN/Inf (first at coil {coil}, sample {sample})",
            )
        if trajectory is None:
            stored = record["traj"]
            if stored.size != layout.traj_dims * s:
                raise MrfFormatError(
                    layout.path,
                    layout.field(i, "traj"),
                    f"expected {layout.traj_dims * s} "
                    f"floats ({s} samples x {layout.traj_dims}), got {stored.size}",
                )
            traj[b] = stored.reshape(s, layout.traj_dims)[:, :2] * traj_scale
        else:
            traj[b] = trajectory[rows[rep]]
        weights[b] = check_traj(layout.path, layout.field(i, "traj"), traj[b])
    return data, traj, weights


def read_trajectory(
    layout: RawLayout,
    acquisitions,
    traj_scale: float,
    trajectory: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    block: int = 256,
) -> Trajectory:
    """The scan's trajectory: each interleaf's positions and the interleaf of each repetition.

    The interleaf of a repetition is its ``idx.kspace_encode_step_1`` (or its row of a
    trajectory file, arguments as in `read_block`), renumbered 0 .. I-1 in increasing order.
    An interleaf's positions are those of its first repetition; every later repetition of it
    must repeat them (to ``trajectory.SIGNATURE_TOLERANCE`` rad/pixel).

    Raises:
        MrfFormatError: a repetition whose positions differ from its interleaf's first, more
            than `MAX_INTERLEAVES` interleaves, or any error of `read_block`.
    """
    labels = layout.interleaf if rows is None else rows
    ids, order = np.unique(labels, return_inverse=True)
    field = "head/idx/kspace_encode_step_1" if rows is None else "traj"
    if ids.size > MAX_INTERLEAVES:
        raise MrfFormatError(
            layout.path,
            layout.field(None, field),
            f"{ids.size} distinct interleaves; the generator simulates at most {MAX_INTERLEAVES}",
        )
    coords = np.full((ids.size, layout.n_samples, 2), np.nan, np.float32)
    for t0 in range(0, layout.n_reps, block):
        reps = np.arange(t0, min(t0 + block, layout.n_reps))
        _, traj, _ = read_block(layout, acquisitions, reps, traj_scale, trajectory, rows)
        for b, rep in enumerate(reps):
            i = order[rep]
            if np.isnan(coords[i, 0, 0]):
                coords[i] = traj[b]
            elif np.abs(traj[b] - coords[i]).max() > SIGNATURE_TOLERANCE:
                raise MrfFormatError(
                    layout.path,
                    layout.field(int(layout.position[rep]), "traj"),
                    f"repetition {rep} plays interleaf {ids[i]} at other k-space positions "
                    f"than its first repetition {int(np.argmax(order == i))} (each "
                    "kspace_encode_step_1 must name one interleaf)",
                )
    return Trajectory(coords, order)
