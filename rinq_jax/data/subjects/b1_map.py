"""A measured B1 map: the true transmit field as a scanner's B1 mapping returns it.

FISP-MRF's T2 is coupled to B1, so protocols give dictionary matching a separately measured B1
map (Ma et al., MRM 78:1452, 2017; Buonincontri & Sawiak, MRM 76:1127, 2016) or fix B1 at 1.
Such maps (Bloch-Siegert, DREAM, AFI) are acquired at a few mm resolution in seconds and carry
a few per cent of noise. The model here:

    b1_map = (G_fwhm * b1) (1 + e),   e = G_1px * n / sd(G_1px * n) * noise_pct / 100,

``G_fwhm`` a Gaussian blur of ``fwhm_mm`` (the map's coarse resolution), ``n`` white Gaussian
noise smoothed over one pixel (a B1 map's noise is not pixel-independent after interpolation).
The training stream (`rinq_jax.data.pipeline.stream`) draws the same map for a few pixels at a
time: the blur of the slice's B1 pattern is stored per slice (`blurred`, linear in the
pattern), the noise drawn per patch (`patch_noise`, normalised by its exact s.d.).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

FWHM_MM = 8.0
NOISE_PCT = 3.0
NOISE_SIGMA_PX = 1.0  # the map noise's smoothing, pixels
_TRUNCATE = 4.0  # ndimage.gaussian_filter's default kernel reach, in sigmas


def measured_b1_map(
    b1: np.ndarray,
    pixel_mm: float,
    rng: np.random.Generator,
    fwhm_mm: float = FWHM_MM,
    noise_pct: float = NOISE_PCT,
) -> np.ndarray:
    """float32[H, W]: the measured map of the true relative B1 ``b1`` float[H, W] (module doc)."""
    smooth = blurred(b1, pixel_mm, fwhm_mm)
    noise = ndimage.gaussian_filter(rng.standard_normal(smooth.shape), NOISE_SIGMA_PX, mode="wrap")
    noise *= noise_pct / 100.0 / noise.std()
    return (smooth * (1.0 + noise)).astype(np.float32)


def blurred(image: np.ndarray, pixel_mm: float, fwhm_mm: float = FWHM_MM) -> np.ndarray:
    """float64[H, W]: ``G_fwhm * image``, the map's resolution.

    Edges are continued, so a constant stays constant and the blur of ``1 + a beta`` is
    ``1 + a G_fwhm * beta``.
    """
    sigma_px = fwhm_mm / pixel_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    return ndimage.gaussian_filter(np.asarray(image, np.float64), sigma_px, mode="nearest")


def patch_noise(
    rng: np.random.Generator, n: int, patch_size: int, noise_pct: float = NOISE_PCT
) -> np.ndarray:
    """float32[n, P, P]: the relative error ``e`` of the map (module doc) on n P x P patches.

    White noise on each patch with a margin of the smoothing kernel's reach, smoothed, cropped:
    exactly ``G_1px * n`` on the patch, scaled by the s.d. of that filter's output (the norm of
    its impulse response) to ``noise_pct`` per cent.
    """
    margin = int(_TRUNCATE * NOISE_SIGMA_PX + 0.5)
    size = patch_size + 2 * margin
    white = rng.standard_normal((n, size, size))
    smooth = ndimage.gaussian_filter(white, NOISE_SIGMA_PX, axes=(1, 2), mode="constant")
    crop = smooth[:, margin : margin + patch_size, margin : margin + patch_size]
    return (crop * (noise_pct / 100.0 / _smoothed_noise_sd())).astype(np.float32)


def _smoothed_noise_sd() -> float:
    """s.d. of unit white noise after `ndimage.gaussian_filter` with sigma NOISE_SIGMA_PX."""
    margin = int(_TRUNCATE * NOISE_SIGMA_PX + 0.5)
    impulse = np.zeros((2 * margin + 1,) * 2)
    impulse[margin, margin] = 1.0
    response = ndimage.gaussian_filter(impulse, NOISE_SIGMA_PX, mode="constant")
    return float(np.sqrt(np.sum(response**2)))
