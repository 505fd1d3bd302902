"""finufft NUFFT of images on a square pixel grid: plans, forward (type 2) and adjoint (type 1).

Conventions
-----------
* Image axes are ``(..., H, W)`` = (rows, columns); pixel ``n`` sits at the integer
  position ``n - matrix // 2`` (the centre of the FOV is pixel ``matrix // 2``).
* k-space positions are in radians per pixel in ``[-pi, pi)`` (finufft's convention);
  ``traj[..., 0]`` is the frequency along the rows (axis -2), ``traj[..., 1]`` along the
  columns (axis -1).  ``|k| = pi`` is the Nyquist edge of the ``matrix`` grid.
* Forward model (NUFFT type 2): ``y_j = sum_n x_n exp(-i k_j . n)``.
  Adjoint (NUFFT type 1):       ``x_n = sum_j y_j exp(+i k_j . n)``.
  No scale factors, so ``forward`` and ``adjoint`` are exact adjoints (up to float32
  rounding), and the density compensation ``w`` (`rinq_jax.data.acquisition.spiral`) carries the
  normalisation: ``adjoint(w * forward(x)) ~= x`` for images band-limited to the sampled disk.
"""

from __future__ import annotations

import math

import finufft
import numpy as np

__all__ = ["DEFAULT_EPS", "GroupPlan", "adjoint", "check_eps_threads", "forward", "make_plan"]

#: Default finufft tolerance: relative error ~1e-4 lets finufft use its faster 1.25
#: upsampling instead of 2.0; far below the noise and the undersampling artefacts.
DEFAULT_EPS = 1e-4


def _upsampfac(eps: float) -> float:
    # 1.25 is much faster but finufft cannot reach tolerances below ~1e-5 with it.
    return 1.25 if eps >= 1e-4 else 2.0


def make_plan(
    nufft_type: int,
    shape: tuple[int, int],
    points: np.ndarray,
    n_trans: int,
    eps: float,
    nthreads: int,
) -> finufft.Plan:
    """Make a complex64 finufft plan with its points set; ``points``: float[M, 2] rad/pixel.

    Type 1 (the adjoint) always runs on one thread: finufft's multithreaded spreading adds the
    threads' subgrids in whatever order they finish, so its results differ in the last bits
    from run to run, and the generator must be reproducible from its seed (measured no slower
    at the generator's sizes, benchmarks/results.md). Type 2 uses ``nthreads``.
    """
    isign = -1 if nufft_type == 2 else 1
    if nufft_type == 1:
        nthreads = 1
    plan = finufft.Plan(
        nufft_type,
        shape,
        n_trans,
        eps,
        isign,
        dtype="complex64",
        nthreads=nthreads,
        upsampfac=_upsampfac(eps),
    )
    plan.setpts(
        np.ascontiguousarray(points[:, 0], dtype=np.float32),
        np.ascontiguousarray(points[:, 1], dtype=np.float32),
    )
    return plan


class GroupPlan:
    """A finufft plan re-pointed (``setpts``) at the interleaf group in use.

    ``traj``: float[n_interleaves, n_samples, 2] rad/pixel; ``schedule``: int[T, I] the
    interleaves of each repetition (`rinq_jax.data.acquisition.spiral.interleaf_schedule`); ``cfg``
    supplies ``matrix`` and ``nufft_eps``.
    """

    def __init__(self, nufft_type, cfg, traj, schedule, n_trans, nthreads):
        self._schedule, self._traj, self.group = schedule, traj, 0
        pts = traj[schedule[0]].reshape(-1, 2)
        self.plan = make_plan(nufft_type, (cfg.matrix,) * 2, pts, n_trans, cfg.nufft_eps, nthreads)
        self.n_trans = n_trans

    def execute(self, group: int, rep: int, data: np.ndarray) -> np.ndarray:
        """Execute the plan on ``data`` at the points of ``group`` (repetition ``rep``'s)."""
        if group != self.group:
            pts = self._traj[self._schedule[rep]].reshape(-1, 2)
            self.plan.setpts(
                np.ascontiguousarray(pts[:, 0], dtype=np.float32),
                np.ascontiguousarray(pts[:, 1], dtype=np.float32),
            )
            self.group = group
        return self.plan.execute(data)


def _check_traj(traj: np.ndarray) -> np.ndarray:
    traj = np.asarray(traj)
    if traj.ndim < 2 or traj.shape[-1] != 2:
        raise ValueError(f"traj must have shape (..., n_points, 2), got {traj.shape}")
    if not np.all(np.isfinite(traj)) or np.max(np.abs(traj)) > 3.0 * math.pi:
        raise ValueError("traj must be finite rad/pixel values in [-3 pi, 3 pi] (finufft)")
    return traj.reshape(-1, 2)


def check_eps_threads(eps: float, nthreads: int) -> None:
    """Raise ValueError unless ``1e-6 <= eps <= 1e-1`` and ``nthreads`` is an int >= 1."""
    if not 1e-6 <= eps <= 1e-1:
        raise ValueError(f"eps must be in [1e-6, 1e-1], got {eps}")
    if not (isinstance(nthreads, int) and nthreads >= 1):
        raise ValueError(f"nthreads must be an int >= 1, got {nthreads!r}")


def forward(
    image: np.ndarray, traj: np.ndarray, *, eps: float = DEFAULT_EPS, nthreads: int = 1
) -> np.ndarray:
    """Non-uniform DFT of images at k-space points (finufft type 2).

    ``y_j = sum_n x_n exp(-i k_j . n)``, ``n`` the pixel position relative to the centre
    pixel ``matrix // 2``; no normalisation (the exact adjoint is ``adjoint``).

    Args:
        image: complex[..., H, W]; leading axes are batched in one plan (``n_trans``).
        traj: float[..., 2] k-space points in rad/pixel.
        eps: finufft relative tolerance.
        nthreads: finufft threads.

    Returns:
        complex64[*image.shape[:-2], *traj.shape[:-1]].

    """
    check_eps_threads(eps, nthreads)
    image = np.asarray(image)
    if image.ndim < 2:
        raise ValueError(f"image must have shape (..., H, W), got {image.shape}")
    points = _check_traj(traj)
    batch_shape, shape = image.shape[:-2], image.shape[-2:]
    n_trans = int(np.prod(batch_shape, dtype=np.int64))
    if n_trans == 0:
        return np.zeros((*batch_shape, *np.shape(traj)[:-1]), np.complex64)
    data = np.ascontiguousarray(image, dtype=np.complex64).reshape(n_trans, *shape)
    out = make_plan(2, shape, points, n_trans, eps, nthreads).execute(data)
    return out.reshape(*batch_shape, *np.shape(traj)[:-1])


def adjoint(
    kdata: np.ndarray,
    traj: np.ndarray,
    shape: tuple[int, int],
    *,
    eps: float = DEFAULT_EPS,
    nthreads: int = 1,
) -> np.ndarray:
    """Adjoint of ``forward`` (finufft type 1): ``x_n = sum_j y_j exp(+i k_j . n)``.

    Multiply ``kdata`` by ``density_compensation`` weights first for a gridding
    reconstruction.

    Args:
        kdata: complex[..., *traj.shape[:-1]]; leading axes are batched (``n_trans``).
        traj: float[..., 2] k-space points in rad/pixel.
        shape: output image shape (H, W).
        eps: finufft relative tolerance.
        nthreads: finufft threads.

    Returns:
        complex64[*batch, H, W].

    """
    check_eps_threads(eps, nthreads)
    points = _check_traj(traj)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 2:
        raise ValueError(f"shape must be (H, W) with H, W >= 2, got {shape}")
    kdata = np.asarray(kdata)
    pts_shape = np.shape(traj)[:-1]
    if kdata.shape[kdata.ndim - len(pts_shape) :] != pts_shape or kdata.ndim < len(pts_shape):
        raise ValueError(f"kdata shape {kdata.shape} must end with traj's {pts_shape}")
    batch_shape = kdata.shape[: kdata.ndim - len(pts_shape)]
    n_trans = int(np.prod(batch_shape, dtype=np.int64))
    if n_trans == 0:
        return np.zeros((*batch_shape, *shape), np.complex64)
    data = np.ascontiguousarray(kdata, dtype=np.complex64).reshape(n_trans, -1)
    out = make_plan(1, shape, points, n_trans, eps, nthreads).execute(data)
    return out.reshape(*batch_shape, *shape)
