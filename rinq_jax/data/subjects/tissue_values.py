"""The tissue compartments' parameters of a slice: population draws and training draws.

A `TissueValues` holds one draw of every compartment's T1, T2 (ms) and proton density, the
slice's B1 amplitude and global phase; the compartment signal model
(`rinq_jax.data.acquisition.compartments`) turns it into a series. `population_values` draws a
subject around the 3 T population means (`rinq_jax.data.subjects.tissues`, literature values);
`training_values` draws what the training stream needs (`ValueDistribution`): values anywhere
in the encoded range, so that a network must measure rather than recognise tissue.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from rinq_jax.data.subjects import tissues

__all__ = [
    "TissueValues",
    "ValueDistribution",
    "population_means",
    "population_values",
    "training_values",
]


@dataclasses.dataclass(frozen=True)
class TissueValues:
    """One draw of the compartments' parameters (index = tissue label, `tissues.TISSUES`).

    Attributes:
        t1_ms, t2_ms: float[N_CLASSES] relaxation times, ms (background entries unused).
        pd: float[N_CLASSES] proton density relative to CSF = 1 (background 0).
        b1_amplitude: ``a`` in ``b1 = 1 + a beta``, in [0, 0.5).
        phase_rad: global phase added to the slice's background phase.
    """

    t1_ms: np.ndarray
    t2_ms: np.ndarray
    pd: np.ndarray
    b1_amplitude: float = 0.0
    phase_rad: float = 0.0

    def __post_init__(self):
        for name in ("t1_ms", "t2_ms", "pd"):
            value = np.asarray(getattr(self, name), np.float64)
            if value.shape != (tissues.N_CLASSES,):
                raise ValueError(f"TissueValues.{name} must have shape ({tissues.N_CLASSES},)")
            object.__setattr__(self, name, value)
        if not 0.0 <= self.b1_amplitude < 0.5:
            raise ValueError(f"b1_amplitude must lie in [0, 0.5), got {self.b1_amplitude}")


def _population(name: str) -> np.ndarray:
    return np.array([getattr(tissues.TISSUE_PROPERTIES[k], name) for k in range(tissues.N_CLASSES)])


def population_means() -> TissueValues:
    """Every tissue at its 3 T population mean (`tissues.TISSUE_PROPERTIES`), nominal B1."""
    t1_ms, t2_ms = _population("t1_ms"), _population("t2_ms")
    t1_ms[0] = t2_ms[0] = 1.0  # background: holds no magnetisation (pd 0)
    return TissueValues(t1_ms, t2_ms, _population("pd"))


def _clip_relaxation(t1_ms: np.ndarray, t2_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep every value inside the paper's dictionary range, with T2 <= T1."""
    t1_ms = np.clip(t1_ms, *tissues.DICT_T1_RANGE_MS)
    t2_ms = np.minimum(np.clip(t2_ms, *tissues.DICT_T2_RANGE_MS), t1_ms)
    return t1_ms, t2_ms


def population_values(
    rng: np.random.Generator, b1_amplitude: float = 0.0, spread: float = 1.0
) -> TissueValues:
    """One subject's tissue values, drawn around the 3 T population means.

    Population means: `tissues.TISSUE_PROPERTIES` (literature values cited there), times ``1 +
    spread * subject_cv * n``, ``n`` a standard normal clipped at +-2.5, for T1 and T2 (PD with
    half the spread); a uniform global phase.
    """
    cv = _population("subject_cv") * spread

    def scale(factor):
        n = np.clip(rng.standard_normal(tissues.N_CLASSES), -2.5, 2.5)
        return 1.0 + factor * cv * n

    t1_ms, t2_ms = _clip_relaxation(
        _population("t1_ms") * scale(1.0), _population("t2_ms") * scale(1.0)
    )
    t1_ms[0] = t2_ms[0] = 1.0
    pd = _population("pd") * scale(0.5)
    return TissueValues(t1_ms, t2_ms, pd, b1_amplitude, float(rng.uniform(-math.pi, math.pi)))


@dataclasses.dataclass(frozen=True)
class ValueDistribution:
    """What the training stream draws, per draw, for every compartment of the anatomy.

    A draw is *wide* with probability ``wide_fraction``: every brain compartment's (WM, GM,
    CSF, lesion) T1 log-uniform in ``t1_range_ms`` and T2 log-uniform in ``[t2_range_ms[0],
    min(T1, t2_range_ms[1])]``, independently, PD uniform in ``pd_range``. The anatomy then
    says where compartments are, not what their values are: white matter may get CSF-like or
    lesion-like values, so a network must read the values from the signal (recognising the
    tissue earns nothing). Otherwise, and always for the head around the brain, the draw is
    *brain-like*: each tissue's T1 and T2 log-uniform within a factor
    ``exp(+-brain_log_width)`` of its population mean, PD within +-10 %. Every draw: B1
    amplitude uniform in ``[0, max_b1_amplitude]``, uniform global phase; every patch: the
    slice's SNR times a log-uniform factor in ``snr_factor_range``.

    Attributes:
        wide_fraction: share of wide draws, in [0, 1].
        t1_range_ms, t2_range_ms: ranges of wide draws (inside the dictionary's 10-4,500 ms and
            2-3,000 ms).
        pd_range: proton density range of wide draws (relative to CSF = 1).
        brain_log_width: half-width in ln(T) of brain-like draws.
        max_b1_amplitude: B1 = 1 + a * pattern, a uniform in [0, max].
        snr_factor_range: (low, high) factor on the SNR of each patch.
        draws_per_batch: draws per training batch (patch ``i`` uses draw ``i mod draws``).
    """

    wide_fraction: float = 0.0
    t1_range_ms: tuple[float, float] = (50.0, 4500.0)
    t2_range_ms: tuple[float, float] = (5.0, 2500.0)
    pd_range: tuple[float, float] = (0.5, 1.0)
    brain_log_width: float = 0.35
    max_b1_amplitude: float = 0.15
    snr_factor_range: tuple[float, float] = (1.0, 1.0)
    draws_per_batch: int = 4

    def __post_init__(self):
        for name in ("t1_range_ms", "t2_range_ms", "pd_range", "snr_factor_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"ValueDistribution.{name} must satisfy 0 < low <= high")
            object.__setattr__(self, name, (float(lo), float(hi)))
        if self.draws_per_batch < 1:
            raise ValueError(f"draws_per_batch must be >= 1, got {self.draws_per_batch}")
        if not 0.0 <= self.wide_fraction <= 1.0:
            raise ValueError(f"wide_fraction must lie in [0, 1], got {self.wide_fraction}")
        if not 0.0 <= self.max_b1_amplitude < 0.5:
            raise ValueError(f"max_b1_amplitude must lie in [0, 0.5), got {self.max_b1_amplitude}")
        t1_lo, t1_hi = tissues.DICT_T1_RANGE_MS
        t2_lo, t2_hi = tissues.DICT_T2_RANGE_MS
        if not (t1_lo <= self.t1_range_ms[0] and self.t1_range_ms[1] <= t1_hi):
            raise ValueError(f"t1_range_ms must lie inside the dictionary's {t1_lo}-{t1_hi} ms")
        if not (t2_lo <= self.t2_range_ms[0] and self.t2_range_ms[1] <= t2_hi):
            raise ValueError(f"t2_range_ms must lie inside the dictionary's {t2_lo}-{t2_hi} ms")


def _log_uniform(rng: np.random.Generator, lo, hi, size=None) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def training_values(rng: np.random.Generator, distribution: ValueDistribution) -> TissueValues:
    """A fresh draw of every compartment's values for a training batch (`ValueDistribution`).

    Brain-like draws alone are far wider than the subjects' spread (+-4 % s.d.), yet a network
    trained on them alone learns each tissue's typical values: off by 35 % at 0.6x a tissue's
    T1 (issue 23). Wide draws cover what the sequence encodes.
    """
    d = distribution
    wide = rng.uniform() < d.wide_fraction
    log_scale = rng.uniform(-1.0, 1.0, (2, tissues.N_CLASSES)) * d.brain_log_width
    t1_ms = _population("t1_ms") * np.exp(log_scale[0])
    t2_ms = _population("t2_ms") * np.exp(log_scale[1])
    pd = _population("pd") * rng.uniform(0.9, 1.1, tissues.N_CLASSES)
    if wide:  # the brain compartments only: the head around them keeps its contrast
        brain = list(tissues.BRAIN_LABELS)
        t1_ms[brain] = _log_uniform(rng, *d.t1_range_ms, len(brain))
        t2_ms[brain] = _log_uniform(
            rng, d.t2_range_ms[0], np.minimum(t1_ms[brain], d.t2_range_ms[1])
        )
        pd[brain] = rng.uniform(*d.pd_range, len(brain))
    t1_ms, t2_ms = _clip_relaxation(t1_ms, t2_ms)
    t1_ms[0] = t2_ms[0] = 1.0
    pd[0] = 0.0
    return TissueValues(
        t1_ms,
        t2_ms,
        pd,
        float(rng.uniform(0.0, d.max_b1_amplitude)),
        float(rng.uniform(-math.pi, math.pi)),
    )
