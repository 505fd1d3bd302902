"""A dataset's acquisition protocol as a file: the schedule and the trajectory it simulates.

A dataset made for a scanner's protocol (`rinq_jax.scanner`) simulates that protocol's FISP
schedule (`rinq_jax.physics.sequence.FispSequence`) and k-space trajectory
(`rinq_jax.data.acquisition.trajectory.Trajectory`) instead of the defaults (`paper_sequence`, the
generator's 48-interleaf spiral). Both are kept beside the manifest in one NPZ, ``DIR/protocol.npz``::

    flip_deg, tr_ms, phase_deg   float32[T]    the schedule (`FispSequence.to_dict`)
    te_ms, ti_ms                 float64       echo time; inversion delay (NaN: none), ms
    coords                       float32[I, S, 2]  interleaves, rad/pixel
    order                        int64[T]      interleaf of each repetition

and the manifest's config records their hashes, checked when the folder is read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rinq_jax.atomic import atomic_path
from rinq_jax.data.acquisition.trajectory import Trajectory
from rinq_jax.errors import MrfFileNotFoundError, MrfFormatError
from rinq_jax.physics.sequence import FORMAT_FIELDS, FispSequence

__all__ = ["PROTOCOL_FILE", "load", "save"]

PROTOCOL_FILE = "protocol.npz"
SCHEDULE_FIELDS = (*FORMAT_FIELDS, "te_ms", "ti_ms")


def save(
    out_dir: str | os.PathLike, schedule: FispSequence | None, trajectory: Trajectory | None
) -> Path:
    """Write what is given of the protocol to ``out_dir/protocol.npz`` atomically."""
    fields = {}
    if schedule is not None:
        fields = schedule.to_dict()
        fields["ti_ms"] = np.nan if fields["ti_ms"] is None else fields["ti_ms"]
    if trajectory is not None:
        fields.update(coords=trajectory.coords, order=trajectory.order)
    path = Path(out_dir) / PROTOCOL_FILE
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **fields)
    return path


def load(
    out_dir: str | os.PathLike, schedule_hash: str | None, trajectory_hash: str | None
) -> tuple[FispSequence | None, Trajectory | None]:
    """(schedule, trajectory) of ``out_dir/protocol.npz``, checked against the manifest's hashes.

    None for a part whose expected hash is None (the dataset simulates the default).
    """
    path = Path(out_dir) / PROTOCOL_FILE
    if not path.exists():
        raise MrfFileNotFoundError(
            path, "file", "not found: the dataset's manifest names a protocol"
        )
    schedule = trajectory = None
    with np.load(path) as data:
        if schedule_hash is not None:
            schedule = FispSequence.from_dict({k: data[k] for k in SCHEDULE_FIELDS})
        if trajectory_hash is not None:
            trajectory = Trajectory(data["coords"], data["order"])
    for name, given, expected in (
        ("schedule", schedule, schedule_hash),
        ("trajectory", trajectory, trajectory_hash),
    ):
        if given is not None and given.hash != expected:
            raise MrfFormatError(path, name, f"hash {given.hash}, the manifest's {expected}")
    return schedule, trajectory
