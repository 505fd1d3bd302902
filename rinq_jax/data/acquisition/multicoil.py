"""The scanner's coil path, simulated: per-coil k-space, combined as the importer combines it.

A scan reaches a network through `rinq_jax.data.raw.ismrmrd_import`: each coil's k-space is
gridded, Walsh weights are estimated from the coils' time-segment averages of the noisy data
(`rinq_jax.data.acquisition.coils.walsh_weights`), and one set of weights combines every repetition.
This module runs that path on a simulated acquisition without writing files, so that the training
data and test slices of a dataset with ``n_coils > 1`` carry the import's combination:

* `raw_kspace`: the raw multi-coil k-space of a series ``x_t = sum_k M_k C_k(t)``,
  ``y_{c,t} = A_i(t) (S_c x_t) + n_{c,t}`` with white noise per coil and sample (what
  `rinq_jax.data.raw.ismrmrd_export.simulate_raw` writes, same draws);
* `scan_weights`: the Walsh weights the importer would estimate from that raw data (its
  first pass);
* `imported_series`: the series the importer would write (both passes), for test slices;
* for the training stream, ``compartments.grid_maps(..., coils=(S, w))`` grids the
  compartment maps per coil and combines them with fixed weights,
  ``sum_c conj(w_c) G_g(S_c M_k)``, so any draw of tissue values gives the coil-combined
  aliased series. The stream adds one gridded noise image (`compartments.noise_bank`): the
  combined noise of C independent coils, ``sum_c conj(w_c) G n_c``, has exactly its
  per-pixel variance (``sum_c |w_c|^2 = 1``) and, the weights being smooth over the Walsh
  window, nearly its spatial covariance.

Sensitivities are `coils.coil_sensitivities` (``sum_c |S_c|^2 = 1``, so the combined image has
the single-coil scale and SNR).
"""

from __future__ import annotations

import math

import numpy as np

from rinq_jax.data.acquisition.acquisition import series_rms
from rinq_jax.data.acquisition.coils import DEFAULT_WINDOW, coil_sensitivities, walsh_weights
from rinq_jax.data.acquisition.gridding import DEFAULT_BATCH, blocking, noise_std
from rinq_jax.data.acquisition.nufft import forward
from rinq_jax.data.acquisition.spiral import (
    AcquisitionConfig,
    density_compensation,
    interleaf_pattern,
    spiral_trajectory,
)
from rinq_jax.data.raw.ismrmrd_import import combined_series, segment_averages
from rinq_jax.data.raw.ismrmrd_read import RawLayout

__all__ = [
    "coil_kspace",
    "imported_series",
    "kspace_blocks",
    "raw_kspace",
    "raw_reader",
    "scan_weights",
]


def coil_kspace(coefficients, sens, cfg: AcquisitionConfig, traj, nthreads) -> np.ndarray:
    """complex64[n_interleaves, C, K, samples]: ``A (S_c c_k)`` on every interleaf."""
    n_comp = coefficients.shape[0]
    out = np.empty((traj.shape[0], sens.shape[0], n_comp, traj.shape[1]), np.complex64)
    for c in range(sens.shape[0]):  # one coil at a time: memory K images, not C x K
        k = forward(sens[c] * coefficients, traj, eps=cfg.nufft_eps, nthreads=nthreads)
        out[:, c] = k.transpose(1, 0, 2)
    return out


def kspace_blocks(kspace, basis, cfg: AcquisitionConfig, sigma: float, rng, batch: int):
    """Yield ``(t0, complex64[b, C, S])``: blocks of consecutive repetitions' noisy k-space.

    ``y[t, c] = sum_k basis[k, t] kspace[i(t), c, k] + n``, ``i(t)`` the repetition's
    interleaf; the noise is drawn in the order of ``gridding.grid_repetitions`` (block,
    interleaf group, chunk of ``n_trans`` repetitions), ``(b, C, S, 2)`` normals each.
    """
    n_reps, n_coil, n_samples = basis.shape[1], kspace.shape[1], kspace.shape[3]
    block, n_trans = blocking(cfg, batch, n_reps)
    group_of_rep = interleaf_pattern(cfg, n_reps)  # = the interleaf (one per repetition)
    data = np.empty((block, n_coil, n_samples), np.complex64)
    for t0 in range(0, n_reps, block):
        t1 = min(t0 + block, n_reps)
        for group in range(cfg.effective_undersampling):
            reps = t0 + np.flatnonzero(group_of_rep[t0:t1] == group)
            for start in range(0, reps.size, n_trans):
                chunk = reps[start : start + n_trans]
                y = np.matmul(basis[:, chunk].T, kspace[group]).transpose(1, 0, 2)
                if sigma > 0.0:
                    z = rng.standard_normal((chunk.size, n_coil, n_samples, 2), np.float32)
                    y += (sigma / math.sqrt(2.0)) * z.view(np.complex64)[..., 0]
                data[chunk - t0] = y
        yield t0, data[: t1 - t0]


def raw_kspace(
    maps: np.ndarray,
    coefficients: np.ndarray,
    cfg: AcquisitionConfig,
    n_coils: int,
    rng: np.random.Generator | None,
    nthreads: int = 1,
) -> np.ndarray:
    """complex64[T, C, S]: the raw k-space of ``x_t = sum_k maps[k] coefficients[k, t]``.

    One interleaf per repetition (``cfg.interleaves_per_repetition == 1``), the noise level
    of ``gridding.noise_std`` for ``cfg.snr`` (none when it is None; ``rng`` then unused), the
    draws those of `rinq_jax.data.raw.ismrmrd_export.simulate_raw` with the same ``rng``.
    """
    if cfg.interleaves_per_repetition != 1:
        raise ValueError("the coil path needs one interleaf per repetition")
    maps = np.asarray(maps).astype(np.complex64, copy=False)
    coefficients = np.asarray(coefficients).astype(np.complex64, copy=False)
    traj = spiral_trajectory(cfg)
    sigma = noise_std(series_rms(maps, coefficients), cfg, density_compensation(traj))
    sens = coil_sensitivities(cfg.matrix, n_coils).astype(np.complex64)
    kspace = coil_kspace(maps, sens, cfg, traj, nthreads)
    out = np.empty((coefficients.shape[1], n_coils, traj.shape[1]), np.complex64)
    for t0, data in kspace_blocks(kspace, coefficients, cfg, sigma, rng, DEFAULT_BATCH):
        out[t0 : t0 + data.shape[0]] = data
    return out


def raw_reader(raw: np.ndarray, cfg: AcquisitionConfig):
    """(layout, read) of in-memory raw data, as `ismrmrd_read` gives them for a file."""
    traj = spiral_trajectory(cfg)
    order = interleaf_pattern(cfg, raw.shape[0])
    # the importer's per-interleaf weights: the fully sampled ones times the interleaf count
    weights = density_compensation(traj) * np.float32(traj.shape[0])
    layout = RawLayout(
        "(simulated)", "", np.arange(raw.shape[0]), order, raw.shape[1], raw.shape[2], 2, 0
    )

    def read(reps):
        return raw[reps], traj[order[reps]], weights[order[reps]]

    return layout, read


def scan_weights(
    raw: np.ndarray, cfg: AcquisitionConfig, window: int = DEFAULT_WINDOW, nthreads: int = 1
) -> np.ndarray:
    """complex64[C, H, W]: the importer's Walsh weights for raw data complex[T, C, S]."""
    layout, read = raw_reader(raw, cfg)
    averages = segment_averages(layout, read, cfg.matrix, cfg.nufft_eps, nthreads, None)
    return walsh_weights(averages, window=window)


def imported_series(
    raw: np.ndarray, cfg: AcquisitionConfig, window: int = DEFAULT_WINDOW, nthreads: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(series complex64[H, W, T], weights complex64[C, H, W]): the importer's two passes."""
    weights = scan_weights(raw, cfg, window, nthreads)
    layout, read = raw_reader(raw, cfg)
    series = combined_series(layout, read, weights, cfg.matrix, cfg.nufft_eps, nthreads, None)
    return series, weights
