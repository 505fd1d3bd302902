"""Gridding reconstruction of a simulated acquisition, repetition by repetition.

The engine of `rinq_jax.data.acquisition.acquisition`: given the noiseless k-space data of each
repetition, it adds white complex Gaussian noise (level ``noise_std`` for the configured SNR)
and reconstructs every frame with the density-compensated adjoint NUFFT,

    xhat_t = A_I(t)^H ( w_I(t) * (y_t + n_t) ),

``I(t)`` the interleaves of repetition ``t``
(`rinq_jax.data.acquisition.spiral.interleaf_schedule`), ``w`` the density compensation scaled by
``n_interleaves / |I(t)|``.  Repetitions go in blocks of consecutive time points, group by group
inside a block, so each adjoint is batched over repetitions that share an interleaf group (finufft
``n_trans``), and each block is written to the time-last output ``complex64[H, W, T]`` in one
cache-friendly copy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from tqdm.auto import tqdm

from rinq_jax.data.acquisition.nufft import GroupPlan
from rinq_jax.data.acquisition.spiral import (
    AcquisitionConfig,
    density_compensation,
    interleaf_pattern,
    interleaf_schedule,
    spiral_trajectory,
)

__all__ = [
    "DEFAULT_BATCH",
    "blocking",
    "grid_repetitions",
    "noise_std",
    "output_buffer",
    "progress_bar",
]

#: Repetitions per block of ``acquire``: the block's frames are buffered before they are
#: written to the time-last output (192 x 256 x 256 complex64 = 100 MB).
DEFAULT_BATCH = 192

#: Most transforms per finufft call; batching more gains little and the plan's upsampled
#: grids grow with it.
_MAX_TRANS = 16


def noise_std(signal_rms: float, cfg: AcquisitionConfig, weights: np.ndarray) -> float:
    """Noise standard deviation per complex k-space sample for ``cfg.snr``.

    The fully sampled gridding reconstruction ``x_n = sum_j w_j y_j exp(i k_j . n)`` of
    white complex noise (``E|n_j|^2 = sigma^2``) has per-pixel standard deviation
    ``sigma * sqrt(sum_j w_j^2)`` (exactly, every pixel).  Setting that to
    ``signal_rms / snr`` gives

        sigma = signal_rms / (snr * sqrt(sum_j w_j^2)).

    Args:
        signal_rms: ``sqrt(mean |x|^2)`` of the noiseless image series over all pixels and
            repetitions.
        cfg: acquisition configuration with ``snr`` set.
        weights: float[n_interleaves, n_samples] fully sampled ``density_compensation``.

    Returns:
        sigma (``E|n|^2 = sigma^2``; real and imaginary parts each ``sigma / sqrt(2)``);
        0.0 when ``cfg.snr`` is None.

    """
    if cfg.snr is None:
        return 0.0
    w = np.asarray(weights, dtype=np.float64)
    return float(signal_rms / (cfg.snr * math.sqrt(np.sum(w**2))))


def _chunks(index: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, index.size, size):
        yield index[start : start + size]


def progress_bar(total: int, enabled: bool):
    """A tqdm progress bar over ``total`` repetitions, or None when not ``enabled``."""
    if not enabled:
        return None
    return tqdm(total=total, desc="acquire", unit="rep")


def _write_block(out: np.ndarray, frames: np.ndarray, t0: int) -> None:
    """``out[:, :, t0 : t0 + b] = frames.transpose(1, 2, 0)`` in row tiles.

    The output is time-last, so a frame is strided by T in memory; copying a few image rows
    at a time keeps the touched cache lines small (faster than one big transpose).
    """
    b = frames.shape[0]
    for h in range(0, frames.shape[1], 8):
        out[h : h + 8, :, t0 : t0 + b] = frames[:, h : h + 8].transpose(1, 2, 0)


def blocking(cfg: AcquisitionConfig, batch: int, n_reps: int) -> tuple[int, int]:
    """(repetitions per block, transforms per finufft call) of ``grid_repetitions``."""
    per_group = max(1, batch // cfg.effective_undersampling)
    block = min(per_group * cfg.effective_undersampling, n_reps)
    return block, min(per_group, _MAX_TRANS, n_reps)


def grid_repetitions(
    cfg: AcquisitionConfig,
    n_reps: int,
    clean_kspace,
    rng: np.random.Generator | None,
    signal_rms: float,
    *,
    batch: int,
    nthreads: int,
    progress: bool,
    out: np.ndarray | None,
) -> np.ndarray:
    """Shared engine: k-space data + noise -> batched gridding adjoint, block by block.

    Repetitions are processed in blocks of consecutive time points (``batch // R`` per
    interleaf group, ``R`` the effective undersampling), group by group inside a block, so
    each adjoint is batched over repetitions that share an interleaf group and the block is
    written to the time-last output in one cache-friendly copy.

    ``clean_kspace(group, reps) -> complex64[len(reps), M_g]`` gives the noiseless data.
    Noise is drawn in this fixed order (block, group, chunk; ``standard_normal((b, M_g, 2))``
    each), so the same rng gives the same noise whatever produced the clean data.
    """
    m, u = cfg.matrix, cfg.effective_undersampling
    traj = spiral_trajectory(cfg)
    weights = density_compensation(traj) * (cfg.n_interleaves / cfg.interleaves_per_repetition)
    sigma = noise_std(signal_rms, cfg, density_compensation(traj))
    if sigma > 0.0 and not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator when snr is set, got {rng!r}")
    schedule = interleaf_schedule(cfg, n_reps)
    group_of_rep = interleaf_pattern(cfg, n_reps)
    block, n_trans = blocking(cfg, batch, n_reps)
    n_points = cfg.interleaves_per_repetition * traj.shape[1]

    out = output_buffer(out, m, n_reps)
    frames = np.empty((block, m, m), np.complex64)
    y = np.empty((n_trans, n_points), np.complex64)
    plan = GroupPlan(1, cfg, traj, schedule, n_trans, nthreads)
    bar = progress_bar(n_reps, progress)
    for t0 in range(0, n_reps, block):
        t1 = min(t0 + block, n_reps)
        for group in range(u):
            reps = t0 + np.flatnonzero(group_of_rep[t0:t1] == group)
            if reps.size == 0:
                continue
            g_w = weights[schedule[reps[0]]].reshape(-1)
            for chunk in _chunks(reps, n_trans):
                b = chunk.size
                y[b:] = 0.0
                y[:b] = clean_kspace(group, chunk)
                if sigma > 0.0:
                    z = rng.standard_normal((b, n_points, 2), dtype=np.float32)
                    y[:b] += (sigma / math.sqrt(2.0)) * z.view(np.complex64)[..., 0]
                y *= g_w
                frames[chunk - t0] = plan.execute(group, chunk[0], y)[:b]
        _write_block(out, frames[: t1 - t0], t0)
        if bar is not None:
            bar.update(t1 - t0)
    if bar is not None:
        bar.close()
    return out


def output_buffer(out: np.ndarray | None, m: int, n_reps: int) -> np.ndarray:
    """``out`` checked as a C-contiguous complex64[m, m, n_reps] buffer, or a new one."""
    if out is None:
        return np.empty((m, m, n_reps), np.complex64)
    if (
        not isinstance(out, np.ndarray)
        or out.shape != (m, m, n_reps)
        or out.dtype != np.complex64
        or not out.flags.c_contiguous
    ):
        raise ValueError(
            f"out must be a C-contiguous complex64 array of shape {(m, m, n_reps)}, got "
            f"{getattr(out, 'shape', None)} {getattr(out, 'dtype', type(out))}"
        )
    return out
