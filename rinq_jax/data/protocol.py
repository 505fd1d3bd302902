"""A dataset's acquisition protocol as a file: the schedule and the trajectory it simulates.

A dataset made for a scanner's protocol (`rinq_jax.scanner`) simulates that protocol's FISP
schedule (`rinq_jax.physics.sequence.FispSequence`) and k-space trajectory
(`rinq_jax.data.trajectory.Trajectory`) instead of the defaults (`paper_sequence`, the generator's
48-interleaf spiral). Both are kept beside the manifest in one NPZ, ``DIR/protocol.npz``::

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
from rinq_jax.data.trajectory import Trajectory
from rinq_jax.physics.sequence import FispSequence

__all__ = ["PROTOCOL_FILE", "load", "save"]

PROTOCOL_FILE = "protocol.npz"
SCHEDULE_FIELDS = ("flip_deg", "tr_ms", "phase_deg", "te_ms", "ti_ms")


def save(out_dir: str | os.PathLike, schedule: FispSequence, trajectory: Trajectory) -> Path:
    """Write ``out_dir/protocol.npz`` atomically; returns its path."""
    if trajectory.n_reps != schedule.n_reps:
        raise ValueError(
            f"the trajectory orders {trajectory.n_reps} repetitions, the schedule has "
            f"{schedule.n_reps}"
        )
    fields = schedule.to_dict()
    fields["ti_ms"] = np.nan if fields["ti_ms"] is None else fields["ti_ms"]
    path = Path(out_dir) / PROTOCOL_FILE
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **fields, coords=trajectory.coords, order=trajectory.order)
    return path


def load(
    out_dir: str | os.PathLike, schedule_hash: str, trajectory_hash: str
) -> tuple[FispSequence, Trajectory]:
    """(schedule, trajectory) of ``out_dir/protocol.npz``, checked against the expected hashes."""
    path = Path(out_dir) / PROTOCOL_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the manifest names a protocol file")
    with np.load(path) as data:
        schedule = FispSequence.from_dict(
            {k: data[k] for k in data.files if k not in ("coords", "order")}
        )
        trajectory = Trajectory(data["coords"], data["order"])
    for name, value, expected in (
        ("schedule", schedule.hash, schedule_hash),
        ("trajectory", trajectory.hash, trajectory_hash),
    ):
        if value != expected:
            raise ValueError(f"{path}: the {name}'s hash is {value}, the manifest's {expected}")
    return schedule, trajectory
