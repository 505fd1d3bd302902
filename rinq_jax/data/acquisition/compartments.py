"""The fast acquisition path: MRF series as a sum over tissue compartments.

A pixel ``r`` of a brain slice holds fractions ``f_l(r)`` of the tissue compartments ``l``
(WM, GM, CSF, fat, ...; `rinq_jax.data.subjects.anatomy`). Its transverse magnetisation at
repetition ``t`` is the sum of the compartments' fingerprints (no exchange between compartments)::

    x(r, t) = e^{i phi(r)} sum_l f_l(r) pd_l s_l(t; b1(r)),   b1(r) = 1 + a beta(r),

with ``s_l`` the EPG fingerprint of the compartment's (T1, T2) (`rinq_jax.physics.epg`),
``pd_l`` its proton density, ``phi`` a smooth background phase and ``beta`` the slice's B1
pattern scaled by the amplitude ``a``. In ``D = a beta`` the fingerprint is replaced by its
quadratic interpolant through ``D = -a, 0, a``: ``s(1 + D) ~= c0 + c1 D + c2 D^2`` (exact at
the three nodes; the error over |D| <= a is measured in tests/data/test_compartments.py).
Hence a separable model with ``K = 3 L`` terms::

    x(r, t) = sum_{l, p} M_lp(r) C_lp(t),   M_lp = f_l e^{i phi} beta^p,   C_lp = pd_l a^p c_lp(t).

The acquisition is linear: repetition ``t`` samples the interleaf group ``g(t)`` and the
gridding reconstruction is ``xhat_t = G_g(t) x_t`` with ``G_g = A_g^H W_g A_g``
(`rinq_jax.data.acquisition.gridding`). So ``xhat_t = sum_lp (G_g(t) M_lp) C_lp(t)``: the ``R x K``
gridded maps ``G_g M_lp`` (``R`` = 48 groups at the paper's undersampling) are computed once
per anatomy (`grid_maps`: K forward NUFFTs, R x K adjoints), and any draw of tissue values,
B1 amplitude and global phase becomes an aliased series by ``K`` multiply-adds per pixel and
repetition (`gridded_series`). Noise adds ``G_g`` of white k-space noise; it is stationary in
the image (its covariance depends on pixel differences only), so any window of a gridded noise
image is an exact draw (`noise_bank`).

Units: T1, T2 in ms; B1 relative (1 = nominal flip angle); proton density relative to CSF = 1.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np

from rinq_jax.data.acquisition import nufft, spiral
from rinq_jax.data.subjects import tissues
from rinq_jax.data.subjects.tissue_values import TissueValues
from rinq_jax.physics import epg, slice_profile
from rinq_jax.physics.fit import FitResult, fit_single_compartment
from rinq_jax.physics.sequence import FispSequence

__all__ = [
    "LABELS",
    "N_POWERS",
    "basis_maps",
    "fingerprint_coefficients",
    "grid_maps",
    "gridded_series",
    "noise_bank",
    "signal_rms",
    "single_compartment_maps",
    "true_maps",
]

LABELS: tuple[int, ...] = tuple(range(1, tissues.N_CLASSES))
"""Compartments: every tissue label but background (air holds no magnetisation)."""

N_POWERS = 3
"""Terms of the B1 expansion: 1, D, D^2."""


def basis_maps(fractions: np.ndarray, phase_rad: np.ndarray, b1_shape: np.ndarray) -> np.ndarray:
    """The spatial factors ``M_lp = f_l e^{i phi} beta^p`` (module docstring).

    Args:
        fractions: float[N_CLASSES, H, W] compartment fractions.
        phase_rad: float[H, W] background phase.
        b1_shape: float[H, W] B1 pattern ``beta`` in [-1, 1].

    Returns:
        complex64[K, H, W], ``K = len(LABELS) * N_POWERS``, label-major (``k = 3 i + p``).
    """
    carrier = np.exp(1j * np.asarray(phase_rad, np.float64))
    powers = np.stack([np.asarray(b1_shape, np.float64) ** p for p in range(N_POWERS)])
    maps = fractions[list(LABELS), None] * carrier * powers[None]
    return maps.reshape(-1, *carrier.shape).astype(np.complex64)


def fingerprint_coefficients(
    seq: FispSequence,
    values: TissueValues | list[TissueValues],
    profile: slice_profile.SliceProfile | None = None,
):
    """The temporal factors ``C_lp(t) = pd_l a^p c_lp(t) e^{i phase}`` of one or more draws.

    ``c_0 = s(0)``, ``c_1 = (s(a) - s(-a)) / (2a)``, ``c_2 = (s(a) - 2 s(0) + s(-a)) / (2 a^2)``
    with ``s(D)`` the EPG fingerprint at B1 = 1 + D: the quadratic through the three nodes.
    Times ``a^p`` this is ``(s(a) - s(-a)) / 2`` and ``(s(a) - 2 s(0) + s(-a)) / 2``, which stay
    finite (zero) at ``a = 0``. With a ``profile`` (`rinq_jax.physics.slice_profile`) each
    ``s(D)`` is the slice's sum ``sum_z w_z s(t; (1 + D) p_z)``; None: an ideal slice.

    Returns:
        complex64[K, T] for one draw, complex64[n, K, T] for a list of n draws.
    """
    draws = [values] if isinstance(values, TissueValues) else list(values)
    labels = list(LABELS)
    t1 = np.stack([d.t1_ms[labels] for d in draws])  # [n, L]
    t2 = np.stack([d.t2_ms[labels] for d in draws])
    a = np.array([d.b1_amplitude for d in draws])[:, None, None]  # [n, 1, 1]
    b1 = 1.0 + a * np.array([-1.0, 0.0, 1.0])  # [n, 1, 3]
    if profile is None:
        s = np.asarray(epg.simulate(seq, t1[..., None], t2[..., None], b1))  # [n, L, 3, T]
    else:
        scaled = b1[..., None] * profile.scales  # [n, 1, 3, Z]
        s = np.asarray(epg.simulate(seq, t1[..., None, None], t2[..., None, None], scaled))
        s = np.tensordot(s, profile.weights, axes=([3], [0]))  # [n, L, 3, T]
    minus, zero, plus = s[:, :, 0], s[:, :, 1], s[:, :, 2]
    coef = np.stack([zero, (plus - minus) / 2.0, (plus - 2.0 * zero + minus) / 2.0], axis=2)
    pd = np.stack([d.pd[labels] for d in draws])
    phase = np.exp(1j * np.array([d.phase_rad for d in draws]))
    coef = coef * (pd * phase[:, None])[:, :, None, None]
    coef = coef.reshape(len(draws), -1, seq.n_reps).astype(np.complex64)
    return coef[0] if isinstance(values, TissueValues) else coef


def true_maps(fractions: np.ndarray, values: TissueValues) -> tuple[np.ndarray, np.ndarray]:
    """True T1 and T2 of every pixel, ms: the proton-density-weighted mean of the rates.

        1 / T(r) = sum_l f_l(r) pd_l / T_l  /  sum_l f_l(r) pd_l,

    over the pixel's compartments: the rate at which its summed magnetisation starts to relax
    (initial slope of a sum of exponentials), as `phantom.make_phantom` defines it. A pure
    pixel gets its tissue's values; 0 where the pixel holds no magnetisation.

    Args:
        fractions: float[N_CLASSES, ...] compartment fractions (any trailing shape).
        values: the draw.

    Returns:
        (t1_ms, t2_ms), float32 of the trailing shape.
    """
    f = np.asarray(fractions, np.float64)
    weight = (f * values.pd.reshape(-1, *([1] * (f.ndim - 1))))[list(LABELS)]
    total = weight.sum(axis=0)
    out = []
    for t_ms in (values.t1_ms, values.t2_ms):
        rate = np.tensordot(1.0 / t_ms[list(LABELS)], weight, axes=1)
        out.append(
            np.where(total > 0, total / np.where(rate > 0, rate, 1.0), 0.0).astype(np.float32)
        )
    return out[0], out[1]


PURE_WEIGHT = 0.999
"""A pixel whose largest compartment carries this share of its proton density is pure."""


def single_compartment_maps(
    seq: FispSequence,
    fractions: np.ndarray,
    values: TissueValues | Sequence[TissueValues],
    b1_shape: np.ndarray,
    fit: Callable[..., FitResult] | None = None,
    coefficients: np.ndarray | None = None,
    draw_of: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The truth a one-tissue method can reach: T1, T2 (ms) of the single-compartment fit.

    Each pixel's noiseless, unaliased signal ``sum_l f_l pd_l s_l(b1)`` (this module's
    quadratic B1 model) is fitted by one fingerprint at the pixel's true ``b1 = 1 + a beta``,
    by default exactly (`rinq_jax.physics.fit.fit_single_compartment`, starting from the
    rate-weighted truth, `true_maps`). A pixel whose largest compartment carries `PURE_WEIGHT`
    of its proton density gets that compartment's values exactly.

    Args:
        seq: the acquisition schedule.
        fractions: float[N_CLASSES, N] compartment fractions of N pixels with magnetisation.
        values: the slice's draw, or a sequence of draws (a training batch's), pixel ``n``
            under ``values[draw_of[n]]``.
        b1_shape: float[N] B1 pattern ``beta`` of the pixels.
        fit: ``fit(signals [n, T], b1 [n], t1_init_ms [n], t2_init_ms [n]) -> FitResult`` in
            place of the exact fit (e.g. the fast `rinq_jax.physics.fit.GridFit`).
        coefficients: `fingerprint_coefficients` of ``values`` when already at hand: [K, T],
            or [D, K, T] for a sequence of D draws.
        draw_of: int[N] each pixel's draw in a sequence ``values`` (None: one draw per pixel,
            D = N).

    Returns:
        (t1_ms, t2_ms), float32[N].
    """
    labels = list(LABELS)
    fractions = np.asarray(fractions, np.float64)
    per_pixel = not isinstance(values, TissueValues)
    draws = list(values) if per_pixel else [values]
    if draw_of is not None:
        which = np.asarray(draw_of)
    else:
        which = np.arange(len(draws)) if per_pixel else np.zeros(fractions.shape[1], int)
    t1, t2, pd = (
        np.stack([getattr(d, k)[labels] for d in draws], -1)[:, which]
        for k in ("t1_ms", "t2_ms", "pd")
    )  # [L, N]
    weight = fractions[labels] * pd
    share = weight.max(axis=0) / weight.sum(axis=0)
    best = weight.argmax(axis=0)
    columns = np.arange(best.size)
    t1_ms, t2_ms = t1[best, columns].astype(np.float32), t2[best, columns].astype(np.float32)
    mixed = np.flatnonzero(share < PURE_WEIGHT)
    if mixed.size:
        beta = np.asarray(b1_shape, np.float64)[mixed]
        maps = basis_maps(fractions[:, mixed], np.zeros(mixed.size), beta)  # [K, n]
        if coefficients is None:
            coefficients = fingerprint_coefficients(seq, values)
        coefficients = coefficients if per_pixel else coefficients[None]  # [D, K, T]
        signals = np.empty((mixed.size, coefficients.shape[-1]), np.complex128)
        for d in np.unique(which[mixed]):  # each draw's pixels: [n_d, K] @ [K, T]
            pixels = np.flatnonzero(which[mixed] == d)
            signals[pixels] = maps[:, pixels].T @ coefficients[d]
        amplitude = np.array([d.b1_amplitude for d in draws])[which[mixed]]
        w = weight[:, mixed]
        init = [w.sum(0) / np.sum(w / t[:, mixed], axis=0) for t in (t1, t2)]  # `true_maps`
        if fit is None:
            fit = functools.partial(fit_single_compartment, seq)
        result = fit(signals, 1.0 + amplitude * beta, *init)
        t1_ms[mixed], t2_ms[mixed] = result.t1_ms, result.t2_ms
    return t1_ms, t2_ms


def signal_rms(maps: np.ndarray, coefficients: np.ndarray) -> float:
    """RMS of the noiseless series ``sum_k maps[k] coefficients[k, t]`` over pixels and time.

    Computed from Gram matrices (``||x||^2 = sum_kl (M M^H)_kl (C C^H)_kl``) without forming it.
    """
    flat = maps.reshape(maps.shape[0], -1).astype(np.complex128)
    coef = coefficients.astype(np.complex128)
    energy = float(np.real(np.sum((flat @ flat.conj().T) * (coef @ coef.conj().T))))
    return math.sqrt(max(energy, 0.0) / (flat.shape[1] * coef.shape[1]))


def _group_weights(cfg: spiral.AcquisitionConfig):
    """(trajectory, density weights scaled to one repetition, interleaves of each group)."""
    traj = spiral.spiral_trajectory(cfg)
    scale = cfg.n_interleaves / cfg.interleaves_per_repetition
    weights = spiral.density_compensation(traj) * scale
    return traj, weights, spiral.interleaf_groups(cfg)


def grid_maps(
    maps: np.ndarray,
    cfg: spiral.AcquisitionConfig,
    nthreads: int = 1,
    coils: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``G_g M`` for every interleaf group ``g``: sampling, density compensation, adjoint.

    Args:
        maps: complex[K, H, W] (H = W = cfg.matrix).
        cfg: the acquisition (its ``undersampling`` sets the groups).
        nthreads: finufft threads.
        coils: (sensitivities S, combination weights w), both complex[C, H, W]: grid each
            coil's maps and combine, ``sum_c conj(w_c) G_g(S_c M)``
            (`rinq_jax.data.acquisition.multicoil`);
            None: one ideal coil.

    Returns:
        complex64[R, K, H, W]; ``R = cfg.effective_undersampling`` groups.
    """
    traj, weights, groups = _group_weights(cfg)
    shape = maps.shape[-2:]
    out = np.zeros((len(groups), maps.shape[0], *shape), np.complex64)
    per_coil = [(maps, None)]  # (the coil's maps, its conjugate combination weight)
    if coils is not None:
        per_coil = ((s_c * maps, np.conj(w_c)) for s_c, w_c in zip(*coils, strict=True))
    for coil_maps, conj_weight in per_coil:
        kdata = nufft.forward(coil_maps, traj, eps=cfg.nufft_eps, nthreads=nthreads)  # [K, I, S]
        for g, interleaves in enumerate(groups):
            gridded = nufft.adjoint(
                kdata[:, interleaves] * weights[interleaves],
                traj[interleaves],
                shape,
                eps=cfg.nufft_eps,
                nthreads=nthreads,
            )
            out[g] += gridded if conj_weight is None else conj_weight * gridded
    return out


def gridded_series(
    gridded: np.ndarray,
    coefficients: np.ndarray,
    group_of_rep: np.ndarray,
    out: np.ndarray | None = None,
    block: int = 256,
) -> np.ndarray:
    """Aliased series ``xhat(r, t) = sum_k gridded[g(t), k, r] C_k(t)`` of some pixels.

    Computed ``block`` pixels at a time: per interleaf group one product
    ``C[:, t_g]^T @ gridded[g, :, block]`` into a time-major block, then one transposed copy
    into the time-last output (strided writes into the full output cost 4x more).

    Args:
        gridded: complex64[R, K, N] gridded maps at N pixels (`grid_maps`, flattened and
            indexed; a leading batch axis ``[B, R, K, N]`` pairs with ``[B, K, T]``).
        coefficients: complex64[K, T] (or [B, K, T]).
        group_of_rep: int[T] interleaf group of each repetition
            (`spiral.interleaf_pattern`).
        out: optional complex64[N, T] (or [B, N, T]) to *add* the series to (e.g. the noise).
        block: pixels per time-major block.

    Returns:
        complex64[N, T] (or [B, N, T]): ``out`` plus the series, or the series.
    """
    batched = gridded.ndim == 4
    if not batched:
        gridded, coefficients = gridded[None], coefficients[None]
    n_batch, n_groups, _, n_pix = gridded.shape
    n_reps = coefficients.shape[-1]
    result = np.zeros((n_batch, n_pix, n_reps), np.complex64) if out is None else out
    result = result if batched else result.reshape(1, n_pix, n_reps)
    reps = [np.flatnonzero(group_of_rep == g) for g in range(n_groups)]
    frames = np.empty((n_reps, min(block, n_pix)), np.complex64)
    for b in range(n_batch):
        coef_t = [np.ascontiguousarray(coefficients[b][:, r].T) for r in reps]  # [t_g, K]
        for p0 in range(0, n_pix, block):
            p1 = min(p0 + block, n_pix)
            for g, r in enumerate(reps):
                frames[r, : p1 - p0] = coef_t[g] @ gridded[b, g, :, p0:p1]
            result[b, p0:p1] += frames[:, : p1 - p0].T
    return result if batched else result[0]


def noise_bank(
    cfg: spiral.AcquisitionConfig,
    n_per_group: int,
    rng: np.random.Generator,
    nthreads: int = 1,
) -> np.ndarray:
    """Gridded unit-variance white k-space noise, ``n_per_group`` images per interleaf group.

    Each image is ``G_g n / sqrt(sum w^2)`` for complex white noise ``n`` (``E|n|^2 = 1``), scaled
    so that the fully sampled reconstruction of unit noise has unit per-pixel standard
    deviation: multiply by ``signal_rms / snr`` for the SNR of
      `rinq_jax.data.acquisition.gridding.noise_std`.

    Returns:
        complex64[R, n_per_group, H, W].
    """
    traj, weights, groups = _group_weights(cfg)
    full = spiral.density_compensation(traj).astype(np.float64)
    norm = 1.0 / math.sqrt(np.sum(full**2))
    shape = (cfg.matrix, cfg.matrix)
    out = np.empty((len(groups), n_per_group, *shape), np.complex64)
    for g, interleaves in enumerate(groups):
        z = rng.standard_normal((n_per_group, len(interleaves), traj.shape[1], 2), np.float32)
        noise = z.view(np.complex64)[..., 0] * np.float32(norm / math.sqrt(2.0))
        out[g] = nufft.adjoint(
            noise * weights[interleaves],
            traj[interleaves],
            shape,
            eps=cfg.nufft_eps,
            nthreads=nthreads,
        )
    return out
