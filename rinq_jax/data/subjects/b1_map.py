"""A measured B1 map: the true transmit field as a scanner's B1 mapping returns it.

FISP-MRF's T2 is coupled to B1, so protocols give dictionary matching a separately measured B1
map (Ma et al., MRM 78:1452, 2017; Buonincontri & Sawiak, MRM 76:1127, 2016) or fix B1 at 1.
Such maps (Bloch-Siegert, DREAM, AFI) are acquired at a few mm resolution in seconds and carry
a few per cent of noise. The model here:

    b1_map = (G_fwhm * b1) (1 + e),   e = G_1px * n / sd(G_1px * n) * noise_pct / 100,

``G_fwhm`` a Gaussian blur of ``fwhm_mm`` (the map's coarse resolution), ``n`` white Gaussian
noise smoothed over one pixel (a B1 map's noise is not pixel-independent after interpolation).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

FWHM_MM = 8.0
NOISE_PCT = 3.0


def measured_b1_map(
    b1: np.ndarray,
    pixel_mm: float,
    rng: np.random.Generator,
    fwhm_mm: float = FWHM_MM,
    noise_pct: float = NOISE_PCT,
) -> np.ndarray:
    """float32[H, W]: the measured map of the true relative B1 ``b1`` float[H, W] (module doc)."""
    sigma_px = fwhm_mm / pixel_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    smooth = ndimage.gaussian_filter(np.asarray(b1, np.float64), sigma_px, mode="nearest")
    noise = ndimage.gaussian_filter(rng.standard_normal(smooth.shape), 1.0, mode="wrap")
    noise *= noise_pct / 100.0 / noise.std()
    return (smooth * (1.0 + noise)).astype(np.float32)
