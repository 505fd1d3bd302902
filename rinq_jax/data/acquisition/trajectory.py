"""A given k-space trajectory: the interleaves and the one played at each repetition.

What a scanner protocol fixes and the generator simulates instead of its own spiral
(`rinq_jax.data.acquisition.spiral.AcquisitionConfig(trajectory=...)`); read from a raw file by
`rinq_jax.data.raw.ismrmrd_read.read_trajectory`. Positions are in rad/pixel of the image matrix
(``|k| = pi`` the Nyquist edge; `rinq_jax.data.acquisition.spiral`). A compact *signature* of a
trajectory (`Trajectory.signature`) travels in slice files and checkpoints, so that a network is
only applied to scans of the trajectory it was trained on (`signature_difference`).
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass

import numpy as np

from rinq_jax.errors import MrfFileNotFoundError, MrfFormatError

__all__ = [
    "K_MAX",
    "NYQUIST_SLACK",
    "SIGNATURE_TOLERANCE",
    "Trajectory",
    "signature_difference",
]

#: Outermost radius in rad/pixel: the Nyquist edge pi, pulled in by 1e-6 so that float32
#: coordinates stay inside finufft's half-open [-pi, pi) without wrapping +pi to -pi.
K_MAX = math.pi * (1.0 - 1e-6)
#: Slack on the Nyquist edge |k| <= pi before a trajectory is called out of range.
NYQUIST_SLACK = 1e-3


#: Positions along each interleaf that a trajectory's signature keeps.
SIGNATURE_KNOTS = 8
#: Largest difference (rad/pixel) between two signatures' positions that is the same trajectory.
SIGNATURE_TOLERANCE = 1e-3


def signature_difference(expected: dict, given: dict) -> str | None:
    """How trajectory signature ``given`` differs from ``expected``, or None if it does not.

    Signatures from `Trajectory.signature`; the answer is a phrase for an error message.
    """
    for name, what in (("n_interleaves", "interleaves"), ("n_samples", "samples per interleaf")):
        if expected[name] != given[name]:
            return f"{expected[name]} vs {given[name]} {what}"
    if expected["order"] != given["order"]:
        return "the interleaves played in another order"
    gap = np.abs(np.asarray(expected["knots"]) - np.asarray(given["knots"])).max(axis=(1, 2))
    if gap.max() > SIGNATURE_TOLERANCE:
        i = int(gap.argmax())
        return f"interleaf {i} at k-space positions up to {gap[i]:.3g} rad/pixel apart"
    return None


@dataclass(frozen=True, eq=False)
class Trajectory:
    """A given trajectory: the interleaves and the one played at each repetition.

    One interleaf per repetition, as in spiral MRF (module docstring).

    Attributes:
        coords: float32[I, S, 2] k-space positions in rad/pixel of the image matrix
            (`rinq_jax.data.acquisition.spiral`), each interleaf a spiral-out inside the Nyquist
            disk.
        order: int64[T] the interleaf index (0 .. I-1) acquired at each repetition.
    """

    coords: np.ndarray
    order: np.ndarray

    def __post_init__(self) -> None:
        coords = np.array(self.coords, dtype=np.float32)
        order = np.array(self.order)
        if coords.ndim != 3 or coords.shape[-1] != 2 or coords.shape[1] < 2:
            raise ValueError(
                f"Trajectory.coords: expected shape (interleaves, samples >= 2, 2), got {coords.shape}"
            )
        if not np.all(np.isfinite(coords)):
            raise ValueError("Trajectory.coords: contains NaN or Inf")
        k_max = float(np.max(np.hypot(coords[..., 0], coords[..., 1])))
        if k_max > math.pi * (1.0 + NYQUIST_SLACK):
            raise ValueError(
                f"Trajectory.coords: reaches |k| = {k_max / (2 * math.pi):.4g} cycles/pixel, "
                "beyond the Nyquist edge 0.5 of the matrix"
            )
        if order.ndim != 1 or order.size == 0 or order.dtype.kind not in "iu":
            raise ValueError(
                f"Trajectory.order: expected a non-empty 1-D int array, got {order.dtype} {order.shape}"
            )
        if order.min() < 0 or order.max() >= coords.shape[0]:
            raise ValueError(
                f"Trajectory.order: interleaf indices must lie in [0, {coords.shape[0]}), got "
                f"[{order.min()}, {order.max()}]"
            )
        # Keep the disk's edge inside finufft's half-open [-pi, pi).
        coords = np.clip(coords, -K_MAX, K_MAX)
        order = order.astype(np.int64)
        for name, value in (("coords", coords), ("order", order)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def n_interleaves(self) -> int:
        """Interleaves I."""
        return int(self.coords.shape[0])

    @property
    def n_reps(self) -> int:
        """Repetitions T."""
        return int(self.order.size)

    @property
    def hash(self) -> str:
        """Stable 16-hex-digit digest of the positions (float32) and the order (int64)."""
        digest = hashlib.sha256(self.coords.astype("<f4").tobytes())
        digest.update(self.order.astype("<i8").tobytes())
        return digest.hexdigest()[:16]

    def __eq__(self, other) -> bool:
        return isinstance(other, Trajectory) and self.hash == other.hash

    def __hash__(self) -> int:
        return hash(self.hash)

    def signature(self) -> dict:
        """What a network trained on this trajectory depends on, compact and float-tolerant.

        ``{"n_interleaves", "n_samples", "order": hash of the order, "knots": the positions
        at SIGNATURE_KNOTS points along each interleaf, [I][K][2] rad/pixel}``: kept in slice
        files (``acquisition/trajectory``) and checkpoints, compared by
        `signature_difference` (a file's trajectory stored in cycles/pixel and read back
        differs from the original in the last float32 bit, which a hash would not forgive).
        """
        knots = np.linspace(0, self.coords.shape[1] - 1, SIGNATURE_KNOTS).round().astype(int)
        return {
            "n_interleaves": self.n_interleaves,
            "n_samples": int(self.coords.shape[1]),
            "order": hashlib.sha256(self.order.astype("<i8").tobytes()).hexdigest()[:16],
            "knots": np.round(self.coords[:, knots].astype(np.float64), 5).tolist(),
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write as .npz (``coords``, ``order``)."""
        np.savez(path, coords=self.coords, order=self.order)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trajectory:
        """Read a file written by `save` (MrfFormatError naming the file and field)."""
        if not os.path.exists(path):
            raise MrfFileNotFoundError(path, "file", "no such trajectory file")
        try:
            with np.load(path, allow_pickle=False) as data:
                fields = {name: data[name] for name in ("coords", "order")}
        except (OSError, ValueError, KeyError) as err:
            raise MrfFormatError(
                path, "file", f"expected an .npz with 'coords' and 'order': {err}"
            ) from err
        try:
            return cls(**fields)
        except ValueError as err:  # "Trajectory.<field>: <message>"
            field, message = str(err).removeprefix("Trajectory.").split(": ", 1)
            raise MrfFormatError(path, field, message) from err
