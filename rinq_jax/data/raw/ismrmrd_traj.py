"""Spiral trajectories of raw data: units, a user's trajectory file, checks and density weights.

ISMRMRD leaves the trajectory's units to the writer. The importer takes them from
``--traj-units`` (`TRAJ_UNITS`) and converts to rad/pixel, the convention of
`rinq_jax.data.acquisition.nufft` (``|k| = pi`` the Nyquist edge of the matrix). Each repetition's
interleaf must be a spiral-out inside the Nyquist disk; its density compensation is that of
`rinq_jax.data.acquisition.spiral.density_compensation` for one interleaf,

    w_j = pi (r_{j+1/2}^2 - r_{j-1/2}^2) / (2 pi)^2,

which is the generator's per-repetition weight (fully sampled weights times
``n_interleaves / interleaves per repetition``), whatever the number of interleaves.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from rinq_jax.data.acquisition.spiral import density_compensation
from rinq_jax.data.acquisition.trajectory import NYQUIST_SLACK
from rinq_jax.data.files.format import MrfFileNotFoundError, MrfFormatError

__all__ = ["TRAJ_UNITS", "check_traj", "load_trajectory", "traj_scale"]

#: Units a trajectory may be stored in: cycles/pixel (``[-0.5, 0.5)``, Gadgetron's spiral
#: convention), rad/pixel (``[-pi, pi)``, finufft's) or cycles per FOV (``[-matrix/2,
#: matrix/2)``, BART's).
TRAJ_UNITS = ("cycles_per_pixel", "rad_per_pixel", "per_fov")


def traj_scale(units: str, matrix: int) -> float:
    """Factor from a trajectory in ``units`` (`TRAJ_UNITS`) to rad/pixel."""
    if units not in TRAJ_UNITS:
        raise ValueError(f"traj units must be one of {TRAJ_UNITS}, got {units!r}")
    return {"cycles_per_pixel": 2.0 * math.pi, "rad_per_pixel": 1.0}.get(
        units, 2.0 * math.pi / matrix
    )


def load_trajectory(
    path: str | os.PathLike, n_samples: int, n_reps: int, scale: float
) -> np.ndarray:
    """A trajectory file (``.npy``, float[n, S, 2] in the units of ``scale``) in rad/pixel.

    Row ``i`` is the trajectory of repetition ``i`` when ``n == T``, else of the acquisitions
    whose ``idx.kspace_encode_step_1`` is ``i`` (the interleaf index; see
    ``ismrmrd_read.RawLayout.trajectory_rows``).

    Raises:
        MrfFormatError: naming ``path``: missing, unreadable, or not of shape (n, S, 2).

    """
    path = Path(path)
    if not path.exists():
        raise MrfFileNotFoundError(path, "file", "no such trajectory file")
    try:
        traj = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise MrfFormatError(path, "file", f"cannot read as a .npy array: {err}") from err
    if traj.ndim != 3 or traj.shape[1:] != (n_samples, 2) or traj.dtype.kind not in "iuf":
        raise MrfFormatError(
            path,
            "trajectory",
            f"expected a real array of shape (n, {n_samples}, 2) (n interleaves or T = {n_reps} "
            f"repetitions, {n_samples} samples, kx/ky), got {traj.dtype} {traj.shape}",
        )
    return (traj * scale).astype(np.float32)


def check_traj(path, field: str, traj: np.ndarray) -> np.ndarray:
    """Check one interleaf (float32[S, 2] rad/pixel) and return its density compensation.

    It must be finite, inside the Nyquist disk ``|k| <= pi`` and a spiral-out (radius growing
    along the readout).

    Returns:
        float32[S] weights (module docstring).

    Raises:
        MrfFormatError: naming ``path`` and ``field``.

    """
    if not np.all(np.isfinite(traj)):
        raise MrfFormatError(path, field, "expected finite k-space positions")
    k_max = float(np.max(np.hypot(traj[:, 0], traj[:, 1])))
    if k_max > math.pi * (1.0 + NYQUIST_SLACK):
        raise MrfFormatError(
            path,
            field,
            f"reaches |k| = {k_max / (2 * math.pi):.4g} cycles/pixel, beyond the Nyquist edge "
            "0.5 of the matrix (wrong --traj-units or --matrix?)",
        )
    try:
        return density_compensation(traj[None])[0]
    except ValueError as err:
        raise MrfFormatError(
            path,
            field,
            f"expected a spiral-out interleaf (radius growing along the readout) for the "
            f"density compensation: {err}",
        ) from err
