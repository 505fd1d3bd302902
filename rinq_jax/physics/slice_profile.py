"""Slice profile of a selective excitation: the flip-angle scales across a slice and their weights.

A 2D acquisition excites a slice with a band-limited pulse, so the flip angle is nominal only
at the slice centre and falls off through its edges; the measured fingerprint is the sum over
the slice of fingerprints at scaled flip angles,

    s(t) = sum_z w_z s(t; B1 * p(z)),

which a dictionary simulated at the nominal flip (as this project's and most) does not model
(Ma et al., MRM 78:1781, 2017). Here ``p(z)`` is the small-tip-angle profile of a Hann-windowed
sinc pulse of time-bandwidth product ``tbw``: the magnitude of the Fourier transform of its
envelope (Pauly et al., J Magn Reson 81:43, 1989), 1 at the slice centre, sampled at
``n_points`` positions evenly over ``extent`` slice thicknesses (thickness = the profile's full
width at half maximum, which for the ideal sinc is its bandwidth); spins are uniform through
the slab, ``w_z = 1 / n_points``.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class SliceProfile:
    """Flip-angle scales ``p_z`` and weights ``w_z`` of a slice (module docstring).

    Attributes:
        scales: float64[Z] flip-angle scale at each position, 1 at the centre.
        weights: float64[Z] share of the slice's spins at each position (sum 1).
    """

    scales: np.ndarray
    weights: np.ndarray


def envelope_profile(tbw: float, frequencies: np.ndarray, n_samples: int = 4096) -> np.ndarray:
    """|FT| of a Hann-windowed sinc envelope of time-bandwidth ``tbw`` at ``frequencies``.

    Frequencies are in units of the pulse's bandwidth (the slice is [-0.5, 0.5]); normalised to
    1 at 0. The transform is a direct sum over ``n_samples`` points of the envelope on [-1/2,
    1/2] of the pulse duration.
    """
    t = (np.arange(n_samples) + 0.5) / n_samples - 0.5  # pulse duration 1
    envelope = np.sinc(tbw * t) * (0.5 + 0.5 * np.cos(2.0 * np.pi * t))
    f = np.asarray(frequencies, np.float64)[:, None] * tbw  # bandwidth tbw / duration
    spectrum = np.abs(np.exp(-2j * np.pi * f * t) @ envelope)
    return spectrum / abs(envelope.sum())


def sinc_profile(tbw: float = 4.0, n_points: int = 16, extent: float = 2.0) -> SliceProfile:
    """The profile of a Hann-windowed sinc pulse over ``extent`` slice thicknesses."""
    if tbw <= 0 or n_points < 1 or extent <= 0:
        raise ValueError(f"need tbw > 0, n_points >= 1, extent > 0, got {tbw, n_points, extent}")
    z = ((np.arange(n_points) + 0.5) / n_points - 0.5) * extent  # in slice thicknesses
    return SliceProfile(envelope_profile(tbw, z), np.full(n_points, 1.0 / n_points))
