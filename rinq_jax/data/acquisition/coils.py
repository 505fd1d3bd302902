"""Receive coils: simulated multi-coil sensitivities and the adaptive coil combination of Walsh.

A receive array of ``C`` coils sees the magnetisation ``m`` weighted by each coil's complex
sensitivity, ``x_c(r, t) = S_c(r) m(r, t)`` (plus independent noise per coil). This module

* simulates smooth sensitivities (`coil_sensitivities`): ``C`` long conductors parallel to the
  main field, evenly spaced on a circle around the FOV, each seen through the Biot-Savart law,
  normalised so that ``sum_c |S_c(r)|^2 = 1`` at every pixel (so a coil-combined image has the
  single-coil scale and SNR);
* combines coil images adaptively (`walsh_weights`, `combine`) as Walsh, Gmitro and Marcellin,
  MRM 43:682 (2000), doi:10.1002/(SICI)1522-2594(200005)43:5<682::AID-MRM10>3.0.CO;2-G: the
  weights at each pixel are the dominant eigenvector of the coil covariance of reference
  images (for MRF the coil images averaged over time segments) over a small window.

For MRF one set of weights serves every repetition, so the combined series is
``sum_c conj(w_c) x_c(t) = g(r) m(r, t)`` with one factor ``g`` for all ``t``: a pixel's
fingerprint keeps its shape, and dictionary matching (which fits a complex M0 per pixel) is
unaffected by ``g``. Pure numpy (and scipy's box filter).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

__all__ = ["DEFAULT_WINDOW", "coil_sensitivities", "combine", "walsh_weights"]

#: Side in pixels of the square window over which Walsh's coil covariance is averaged (and of
#: the box filter that smooths the weights): 7 pixels (8 mm at the paper's 1.17 mm).
DEFAULT_WINDOW = 7


def coil_sensitivities(
    matrix: int, n_coils: int, *, coil_radius: float = 1.5, phase_offsets: bool = True
) -> np.ndarray:
    """Smooth, normalised complex receive sensitivities of a circular array of coils.

    Coil ``c`` is a conductor parallel to B0 at ``p_c = coil_radius * exp(2 pi i c / C)``
    (positions as complex numbers ``z = x + i y`` in units of half the FOV, the FOV spanning
    ``[-1, 1)``). By Biot-Savart its field at ``z`` is ``B ~ e_z x (z - p_c) / |z - p_c|^2``,
    and the receive sensitivity ``B_x - i B_y`` of that field is

        S_c(z) ~ -i / (z - p_c) * exp(i phi_c),

    magnitude ``1 / distance`` (bright near the coil) and a smoothly turning phase;
    ``phi_c = 2 pi c / C`` is a constant per-coil phase offset (cable lengths). The set is then
    normalised, ``S_c <- S_c / sqrt(sum_c' |S_c'|^2)``, so ``sum_c |S_c|^2 = 1`` everywhere.
    A single coil (``n_coils = 1``) is the uniform coil ``S = 1``: the single-coil data of
    `rinq_jax.data.acquisition.acquisition`.

    Args:
        matrix: image matrix (H = W = matrix).
        n_coils: number of coils C >= 1.
        coil_radius: radius of the coil circle in half-FOVs; > sqrt(2), so that the coils lie
            outside the square FOV and every sensitivity is finite and smooth in it.
        phase_offsets: add the per-coil constant phases ``phi_c``.

    Returns:
        complex64[C, H, W] sensitivities, ``sum_c |S_c|^2 = 1`` at every pixel.

    """
    if not (isinstance(matrix, int) and matrix >= 2):
        raise ValueError(f"matrix must be an int >= 2, got {matrix!r}")
    if not (isinstance(n_coils, int) and n_coils >= 1):
        raise ValueError(f"n_coils must be an int >= 1, got {n_coils!r}")
    if not coil_radius > math.sqrt(2.0):
        raise ValueError(f"coil_radius must be > sqrt(2) (outside the FOV), got {coil_radius}")
    if n_coils == 1:
        return np.ones((1, matrix, matrix), np.complex64)
    # Pixel n sits at n - matrix // 2 (rinq_jax.data.acquisition.nufft); rows are y, columns x.
    offset = np.arange(matrix) - matrix // 2
    z = (offset[None, :] + 1j * offset[:, None]) / (matrix / 2.0)
    angles = 2.0 * math.pi * np.arange(n_coils) / n_coils
    p = coil_radius * np.exp(1j * angles)
    sens = -1j / (z[None] - p[:, None, None])
    if phase_offsets:
        sens = sens * np.exp(1j * angles)[:, None, None]
    sens /= np.sqrt(np.sum(np.abs(sens) ** 2, axis=0))
    return sens.astype(np.complex64)


def _box(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over a ``window x window`` neighbourhood of axes 0 and 1 (edges: nearest)."""
    size = (window, window) + (1,) * (values.ndim - 2)
    return ndimage.uniform_filter(values, size=size, mode="nearest")


def walsh_weights(reference: np.ndarray, *, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """Adaptive coil-combination weights (Walsh et al., MRM 43:682, 2000).

    1. Coil covariance of the reference coil images over a ``window x window`` box (and
       summed over the reference frames ``f``, if several),
       ``R_ij(r) = sum_f sum_{r' near r} x_{i,f}(r') conj(x_{j,f}(r'))``.
    2. Its dominant eigenvector ``v(r)`` (unit norm) per pixel: for ``x_c = S_c m`` it is
       ``S(r) / |S(r)|`` up to a phase, the matched filter that maximises the SNR.
    3. Phase reference: each pixel's ``v`` is rotated so that the component of the
       reference coil (the coil with the most energy) is real and positive; this removes the
       eigen-solver's arbitrary phase per pixel, which would otherwise make the combined phase
       jump between pixels.
    4. Smoothing: the phase-referenced ``v`` is box-filtered over the same window and
       renormalised to unit norm.

    Applied with `combine`, ``x_c = S_c m`` gives ``g m`` with
    ``g = sum_c conj(w_c) S_c ~ |S| exp(i arg S_ref)``: the magnetisation times a smooth
    magnitude (1 for sensitivities normalised as in `coil_sensitivities`) and the smooth phase
    of the reference coil. ``g`` does not depend on time when the same weights combine every
    repetition. With one coil the weights are exactly 1 (the identity, no phase change).
    Noise is assumed white and uncorrelated between coils (no prewhitening).

    Args:
        reference: complex[C, H, W] or complex[C, H, W, F] coil images, e.g. time averages of
            an MRF series over F segments of the acquisition (each segment's average is
            nearly alias-free when it covers every interleaf; several segments keep tissues
            whose signal changes sign over time, which cancel in one overall mean).
        window: odd side of the averaging window in pixels, >= 1.

    Returns:
        complex64[C, H, W] weights with ``sum_c |w_c|^2 = 1`` at every pixel.

    """
    reference = np.asarray(reference)
    if reference.ndim not in (3, 4) or reference.shape[0] < 1:
        raise ValueError(f"reference must have shape (C, H, W[, F]), got {reference.shape}")
    if not (isinstance(window, int) and window >= 1 and window % 2 == 1):
        raise ValueError(f"window must be an odd int >= 1, got {window!r}")
    if not np.all(np.isfinite(reference)):
        raise ValueError("reference coil images must be finite")
    n_coils = reference.shape[0]
    if n_coils == 1:
        return np.ones(reference.shape[:3], np.complex64)
    x = reference.astype(np.complex128).reshape(*reference.shape[:3], -1)
    x = x.transpose(1, 2, 3, 0)  # [H, W, F, C]
    covariance = _box(np.einsum("hwfi,hwfj->hwij", x, x.conj()), window)  # [H, W, C, C]
    # A pixel whose window holds no signal has R = 0: a tiny ridge makes its eigenvector the
    # reference coil's, so the weights stay defined (that pixel's image is ~0 anyway).
    ridge = 1e-12 * max(float(np.max(np.abs(np.trace(covariance, axis1=-2, axis2=-1)))), 1e-30)
    covariance += ridge * np.eye(n_coils)
    _, vectors = np.linalg.eigh(covariance)
    v = vectors[..., -1]  # eigh sorts eigenvalues ascending: the last is the dominant one
    ref = int(np.argmax(np.sum(np.abs(x) ** 2, axis=(0, 1, 2))))
    v = v * np.exp(-1j * np.angle(v[..., ref]))[..., None]
    v = _box(v, window)
    v /= np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-30)
    return np.moveaxis(v, -1, 0).astype(np.complex64)


def combine(weights: np.ndarray, coil_images: np.ndarray) -> np.ndarray:
    """Coil-combined image(s) ``sum_c conj(w_c) x_c``.

    Args:
        weights: complex[C, H, W] combination weights (`walsh_weights`).
        coil_images: complex[C, H, W, *rest] coil images (e.g. ``rest = (T,)`` for a series;
            the same weights combine every trailing index).

    Returns:
        complex64[H, W, *rest].

    """
    weights = np.asarray(weights)
    coil_images = np.asarray(coil_images)
    if weights.ndim != 3 or coil_images.shape[:3] != weights.shape:
        raise ValueError(
            f"coil_images shape {coil_images.shape} must start with weights' {weights.shape}"
        )
    w = weights.conj().reshape(weights.shape + (1,) * (coil_images.ndim - 3))
    out = w[0] * coil_images[0]
    for c in range(1, weights.shape[0]):
        out += w[c] * coil_images[c]
    return out.astype(np.complex64, copy=False)
