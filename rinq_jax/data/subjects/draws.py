"""Checked arguments and clipped random draws shared by the anatomy generators.

`checked_number` validates a user-facing number (subject index, seed, matrix, slice position),
`subject_rng` a subject's index and seed and gives its generator;
`clipped_normal` draws one anatomical or tissue parameter from a normal distribution clipped to
a plausible range (clipping rather than redrawing keeps the number of draws fixed, so a subject
is the same whatever its parameters).
"""

from __future__ import annotations

import math

import numpy as np


def checked_number(
    name: str, value: object, lo: float, hi: float = math.inf, integer: bool = False
) -> int | float:
    """``value`` as int (``integer``) or float, if it lies in [lo, hi]; else ValueError.

    ``name`` names the argument in the error message; bools and NaN are refused.
    """
    types = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, types):
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    if not lo <= value <= hi:  # NaN fails too
        bounds = f"be >= {lo}" if hi == math.inf else f"lie in [{lo}, {hi}]"
        raise ValueError(f"{name} must {bounds}, got {value!r}")
    return int(value) if integer else float(value)


def subject_rng(subject_id: object, seed: object) -> tuple[int, int, np.random.Generator]:
    """Checked ``(subject_id, seed)`` (non-negative integers) and the subject's generator.

    The generator is ``default_rng(SeedSequence([seed, subject_id]))``: subject ``k`` is the same
    whichever other subjects are drawn and in whatever order.
    """
    subject_id = checked_number("subject_id", subject_id, 0, integer=True)
    seed = checked_number("seed", seed, 0, integer=True)
    return subject_id, seed, np.random.default_rng(np.random.SeedSequence([seed, subject_id]))


def clipped_normal(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float) -> float:
    """One draw of N(mean, sd^2) clipped to [lo, hi] (one draw from ``rng`` whatever its value)."""
    return float(np.clip(rng.normal(mean, sd), lo, hi))
