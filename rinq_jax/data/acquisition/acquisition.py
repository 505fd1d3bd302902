"""Spiral MRF acquisition: simulated undersampled, noisy, gridded image series.

Simulates what the scanner of Hoppe et al. (MICCAI 2019) delivers: a FISP MRF time series
(FOV 300 mm, 256 x 256 at 1.17 mm, 3,000 repetitions) acquired with one spiral interleaf per
repetition out of 48 that fully sample k-space (undersampling factor 48), reconstructed
frame by frame with the gridding adjoint, so every frame carries strong spiral aliasing.
The sampling geometry is `rinq_jax.data.acquisition.spiral`, the NUFFT and its conventions
`rinq_jax.data.acquisition.nufft`, the noise and per-repetition reconstruction
`rinq_jax.data.acquisition.gridding`; this module turns an image series (or its subspace
coefficients) into k-space data for it.

The time series is low-rank (subspace of the dictionary), so ``acquire`` works on the K
coefficient images: K forward NUFFTs for all interleaves at once, then per repetition only a
K-term linear combination in k-space, the noise, and one adjoint NUFFT (batched by interleaf).
"""

from __future__ import annotations

import math

import numpy as np

from rinq_jax.data.acquisition.gridding import (
    DEFAULT_BATCH,
    grid_repetitions,
    output_buffer,
    progress_bar,
)
from rinq_jax.data.acquisition.nufft import adjoint, check_eps_threads, forward
from rinq_jax.data.acquisition.spiral import (
    AcquisitionConfig,
    density_compensation,
    interleaf_groups,
    spiral_trajectory,
)

__all__ = ["acquire", "acquire_noise", "checked_subspace"]


def series_rms(coefficients: np.ndarray, basis: np.ndarray) -> float:
    """RMS over pixels and time of the series ``x(t) = sum_k c_k b_k(t)``, never formed.

    ||x||^2 = sum_kl (B B^H)_kl (C C^H)_kl with C the coefficient images complex[K, ...] and B
    the basis complex[K, T] (complex64 Gram matrices: one BLAS call each; float32 precision is
    ample for an RMS).
    """
    flat = coefficients.reshape(coefficients.shape[0], -1)
    gram_c = (flat @ flat.conj().T).astype(np.complex128)
    energy = float(np.real(np.sum((basis @ basis.conj().T).astype(np.complex128) * gram_c)))
    return math.sqrt(max(energy, 0.0) / (basis.shape[1] * flat.shape[1]))


def _thin_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Multiply a: [n, K] by b: [K, M], without BLAS when the product is small.

    Many small threaded-BLAS calls interleaved with finufft's OpenMP threads stall for
    milliseconds each on busy CPUs, far longer than the product itself; K vectorised
    multiply-adds stay on this thread.
    """
    if a.shape[0] * a.shape[1] * b.shape[1] > 4_000_000:
        return a @ b
    out = a[:, :1] * b[0]
    for k in range(1, a.shape[1]):
        out += a[:, k : k + 1] * b[k]
    return out


def _check_common(cfg: AcquisitionConfig, batch: int, nthreads: int) -> None:
    if not isinstance(cfg, AcquisitionConfig):
        raise ValueError(f"cfg must be an AcquisitionConfig, got {type(cfg)}")
    if not (isinstance(batch, int) and batch >= 1):
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    check_eps_threads(cfg.nufft_eps, nthreads)


def checked_subspace(coefficients, basis, m: int) -> tuple[np.ndarray, np.ndarray]:
    """complex64 coefficients [K, m, m] and basis [K, T], or a ValueError naming the shape."""
    coefficients, basis = np.asarray(coefficients), np.asarray(basis)
    if coefficients.ndim != 3 or coefficients.shape[1:] != (m, m):
        raise ValueError(
            f"coefficients must have shape (K, {m}, {m}) for matrix={m}, got {coefficients.shape}"
        )
    if basis.ndim != 2 or basis.shape[0] != coefficients.shape[0] or basis.shape[1] < 1:
        raise ValueError(
            f"basis must have shape (K={coefficients.shape[0]}, T >= 1), got {basis.shape}"
        )
    return coefficients.astype(np.complex64, copy=False), basis.astype(np.complex64, copy=False)


def acquire(
    coefficients: np.ndarray,
    basis: np.ndarray,
    cfg: AcquisitionConfig,
    rng: np.random.Generator | None = None,
    *,
    batch: int = DEFAULT_BATCH,
    nthreads: int = 1,
    progress: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Simulate the undersampled spiral acquisition and gridding recon of a low-rank series.

    The true series is ``x_t = sum_k coefficients[k] * basis[k, t]``.  Repetition ``t``
    acquires the interleaves ``I(t)`` of ``interleaf_schedule`` and is reconstructed as

        xhat_t = A_I(t)^H ( w_I(t) * (A_I(t) x_t + n_t) ),

    ``A`` the NUFFT (``forward``), ``w`` the density compensation scaled by
    ``n_interleaves / |I(t)|``, ``n_t`` white complex Gaussian noise, independent per
    repetition and sample, with ``sigma`` from ``gridding.noise_std`` (SNR defined in
    ``AcquisitionConfig``).  Cost: K forward NUFFTs over all interleaves at once, then per
    repetition a K-term combination in k-space and one adjoint (batched per interleaf
    group with finufft ``n_trans``).  Noiseless and fully sampled, the adjoints are taken of
    the K coefficient images instead (K adjoints, exact by linearity).  The noise is never
    projected on a subspace: each repetition gets its own independent draw.

    Reproducibility: the same ``rng`` state, ``cfg``, T and ``batch`` give the same noise
    (``batch`` sets the order of the draws).

    Args:
        coefficients: complex[K, H, W] subspace coefficient images (H = W = cfg.matrix).
        basis: complex[K, T] temporal basis.
        cfg: acquisition configuration.
        rng: noise generator; required when ``cfg.snr`` is set.
        batch: repetitions per block (``batch // R`` per interleaf group, at most 16 per
            finufft call); the block's frames are buffered (batch x H x W complex64).
        nthreads: finufft threads.
        progress: show a tqdm progress bar.
        out: optional C-contiguous complex64[H, W, T] buffer for the result; reusing one
            across slices saves the first-touch page faults of a fresh 1.6 GB array.

    Returns:
        complex64[H, W, T] aliased (and noisy) image series.

    """
    _check_common(cfg, batch, nthreads)
    coefficients, basis = checked_subspace(coefficients, basis, cfg.matrix)
    n_comp, n_reps = basis.shape

    signal_rms = series_rms(coefficients, basis)

    if cfg.snr is None and cfg.effective_undersampling == 1:
        return _acquire_noiseless_full(coefficients, basis, cfg, nthreads, progress, out)

    traj = spiral_trajectory(cfg)
    # One type-2 plan over all interleaves: K transforms instead of K x n_interleaves.
    k_coeff = forward(coefficients, traj, eps=cfg.nufft_eps, nthreads=nthreads)
    # Group-major copy, k_group[g] = complex64[K, M_g]: each call reads one contiguous slab.
    groups = interleaf_groups(cfg)
    k_group = np.ascontiguousarray(k_coeff[:, groups].transpose(1, 0, 2, 3))
    k_group = k_group.reshape(len(groups), n_comp, -1)
    del k_coeff

    def clean_kspace(group, reps):
        # y_t = sum_k basis[k, t] (A c_k) on the group's interleaves: a small matmul.
        return _thin_matmul(basis[:, reps].T, k_group[group])

    return grid_repetitions(
        cfg,
        n_reps,
        clean_kspace,
        rng,
        signal_rms,
        batch=batch,
        nthreads=nthreads,
        progress=progress,
        out=out,
    )


def acquire_noise(
    cfg: AcquisitionConfig,
    n_reps: int,
    signal_rms: float,
    rng: np.random.Generator,
    *,
    batch: int = DEFAULT_BATCH,
    nthreads: int = 1,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The noise part of ``acquire``: ``A_I(t)^H (w_I(t) * n_t)`` for every repetition.

    Draws exactly the noise ``acquire`` adds for the same ``rng``, ``cfg``, ``T``, ``batch``
    and ``signal_rms`` (the RMS of the noiseless series that sets the SNR), so a noisy
    acquisition is the noiseless one plus ``acquire_noise(...)`` by linearity.

    Returns:
        complex64[H, W, T].
    """
    _check_common(cfg, batch, nthreads)
    if cfg.snr is None:
        raise ValueError("acquire_noise needs cfg.snr")
    n_points = cfg.interleaves_per_repetition * spiral_trajectory(cfg).shape[1]

    def no_signal(group, reps):
        return np.zeros((reps.size, n_points), np.complex64)

    return grid_repetitions(
        cfg,
        n_reps,
        no_signal,
        rng,
        signal_rms,
        batch=batch,
        nthreads=nthreads,
        progress=False,
        out=out,
    )


def _acquire_noiseless_full(
    coefficients: np.ndarray,
    basis: np.ndarray,
    cfg: AcquisitionConfig,
    nthreads: int,
    progress: bool,
    out: np.ndarray | None,
) -> np.ndarray:
    """Noiseless fully sampled ``acquire`` by linearity: xhat_t = sum_k b_kt A^H w A c_k.

    K adjoints instead of T, and no per-repetition k-space data (48 interleaves x ~2,900
    samples each).  Only for the fully sampled case: with R > 1 groups the per-group images
    would be K x R frames and the output writes scattered in time.
    """
    m = cfg.matrix
    n_comp, n_reps = basis.shape
    traj = spiral_trajectory(cfg)
    weights = density_compensation(traj)
    y = forward(coefficients, traj, eps=cfg.nufft_eps, nthreads=nthreads) * weights
    images = adjoint(y, traj, (m, m), eps=cfg.nufft_eps, nthreads=nthreads)
    images_t = images.reshape(n_comp, m * m).T
    out = output_buffer(out, m, n_reps)
    flat_out = out.reshape(m * m, n_reps)  # a view: results go straight into the output
    bar = progress_bar(n_reps, progress)
    for t0 in range(0, n_reps, 256):
        t1 = min(t0 + 256, n_reps)
        flat_out[:, t0:t1] = images_t @ basis[:, t0:t1]
        if bar is not None:
            bar.update(t1 - t0)
    if bar is not None:
        bar.close()
    return out
