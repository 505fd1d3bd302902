"""FISP MR fingerprinting sequences: the acquisition schedule a fingerprint depends on.

A `FispSequence` holds, per repetition ``n``, the flip angle ``flip_deg[n]``, the
repetition time ``tr_ms[n]`` and the RF phase ``phase_deg[n]``, plus the echo time
``te_ms`` (the same for all repetitions) and an optional adiabatic inversion
``ti_ms`` before the first pulse. It is immutable and has a stable ``hash`` that
datasets and dictionaries store, so a dictionary is never matched against signals
from another schedule.

`paper_sequence` makes a schedule like the paper's (Hoppe et al. 2019, Sec. 3.1):
3,000 repetitions, flip angles 5-74 deg, TR 12-15 ms, inversion first, with the
flip angles in smooth sinusoidal lobes as in FISP-MRF (Jiang et al., MRM 74:1621,
2015, doi:10.1002/mrm.25559).

User schedules are files (CSV, NPZ): `rinq_jax.physics.schedule_files`.

Inside HDF5 files (slices and dictionaries alike) a sequence is one group, written by
`write_hdf5_group`: datasets ``flip_deg``, ``tr_ms``,
``phase_deg`` (float32[T]) and attributes ``te_ms`` and ``ti_ms`` (NaN: no inversion), beside
the root attribute ``sequence_hash``.
"""

from __future__ import annotations

import dataclasses
import hashlib

import h5py
import numpy as np

from rinq_jax.configs.data import PAPER_N_REPS

FORMAT_FIELDS = ("flip_deg", "tr_ms", "phase_deg")


@dataclasses.dataclass(frozen=True, eq=False)
class FispSequence:
    """An unbalanced-gradient (FISP) MRF schedule.

    Attributes:
        flip_deg: float32[T] flip angle of each repetition in degrees.
        tr_ms: float32[T] repetition time of each repetition in ms.
        phase_deg: float32[T] RF (and receiver) phase of each pulse in degrees.
        te_ms: echo time in ms, 0 <= te_ms < min(tr_ms).
        ti_ms: delay in ms between an ideal inversion pulse and the first
            excitation, or None for no inversion.
    """

    flip_deg: np.ndarray
    tr_ms: np.ndarray
    phase_deg: np.ndarray
    te_ms: float
    ti_ms: float | None = None

    def __post_init__(self):
        arrays = {}
        for name in FORMAT_FIELDS:
            value = np.array(getattr(self, name), dtype=np.float32)
            if value.ndim != 1 or value.size == 0:
                raise ValueError(
                    f"FispSequence.{name}: expected a non-empty 1-D array, got shape {value.shape}"
                )
            if not np.all(np.isfinite(value)):
                raise ValueError(f"FispSequence.{name}: contains NaN or Inf")
            value.setflags(write=False)
            arrays[name] = value
        n_reps = arrays["flip_deg"].size
        for name, value in arrays.items():
            if value.size != n_reps:
                raise ValueError(
                    f"FispSequence.{name}: expected {n_reps} repetitions (the length of flip_deg), got {value.size}"
                )
            object.__setattr__(self, name, value)
        if np.any(arrays["tr_ms"] <= 0):
            raise ValueError("FispSequence.tr_ms: every TR must be > 0 ms")
        if np.any(np.abs(arrays["flip_deg"]) > 180):
            raise ValueError("FispSequence.flip_deg: flip angles must lie in [-180, 180] degrees")
        te_ms = float(self.te_ms)
        if not 0 <= te_ms < float(arrays["tr_ms"].min()):
            raise ValueError(
                f"FispSequence.te_ms: expected 0 <= te_ms < min(tr_ms) = {arrays['tr_ms'].min()}, got {te_ms}"
            )
        object.__setattr__(self, "te_ms", te_ms)
        if self.ti_ms is not None:
            ti_ms = float(self.ti_ms)
            if not (np.isfinite(ti_ms) and ti_ms >= 0):
                raise ValueError(
                    f"FispSequence.ti_ms: expected a delay >= 0 ms or None, got {self.ti_ms}"
                )
            object.__setattr__(self, "ti_ms", ti_ms)

    @property
    def n_reps(self) -> int:
        """Number of repetitions T (time points of a fingerprint)."""
        return int(self.flip_deg.size)

    @property
    def hash(self) -> str:
        """Stable 16-hex-digit digest of every field (float32 bytes, little endian)."""
        digest = hashlib.sha256()
        for name in FORMAT_FIELDS:
            digest.update(name.encode())
            digest.update(getattr(self, name).astype("<f4").tobytes())
        digest.update(f"te_ms={self.te_ms!r};ti_ms={self.ti_ms!r}".encode())
        return digest.hexdigest()[:16]

    def __eq__(self, other) -> bool:
        return isinstance(other, FispSequence) and self.hash == other.hash

    def __hash__(self) -> int:
        return hash(self.hash)

    def to_dict(self) -> dict:
        """Plain arrays and floats (``ti_ms`` is None without inversion), for HDF5 and NPZ."""
        return {
            "flip_deg": self.flip_deg.copy(),
            "tr_ms": self.tr_ms.copy(),
            "phase_deg": self.phase_deg.copy(),
            "te_ms": self.te_ms,
            "ti_ms": self.ti_ms,
        }

    @classmethod
    def from_dict(cls, d: dict) -> FispSequence:
        """Inverse of `to_dict`; ``phase_deg`` defaults to zeros and a NaN ``ti_ms`` means no inversion."""
        flip_deg = np.asarray(d["flip_deg"])
        ti_ms = d.get("ti_ms")
        if ti_ms is not None and not np.isfinite(float(ti_ms)):
            ti_ms = None
        return cls(
            flip_deg=flip_deg,
            tr_ms=np.asarray(d["tr_ms"]),
            phase_deg=np.asarray(d.get("phase_deg", np.zeros_like(flip_deg))),
            te_ms=float(d["te_ms"]),
            ti_ms=None if ti_ms is None else float(ti_ms),
        )

    def times_ms(self) -> np.ndarray:
        """float64[T] time of each echo, from the inversion pulse (or the first excitation)."""
        starts = np.concatenate([[0.0], np.cumsum(self.tr_ms.astype(np.float64))[:-1]])
        return starts + self.te_ms + (self.ti_ms or 0.0)


def _smooth_noise(rng: np.random.Generator, n: int, n_knots: int) -> np.ndarray:
    """Smooth random curve in [0, 1] (cosine-interpolated random knots), like Perlin noise."""
    knots = rng.uniform(0.0, 1.0, n_knots + 1)
    position = np.linspace(0.0, n_knots, n, endpoint=False)
    left = np.floor(position).astype(int)
    frac = position - left
    weight = (1 - np.cos(np.pi * frac)) / 2
    return knots[left] * (1 - weight) + knots[left + 1] * weight


def paper_sequence(
    n_reps: int = PAPER_N_REPS,
    seed: int = 0,
    *,
    flip_range_deg: tuple[float, float] = (5.0, 74.0),
    tr_range_ms: tuple[float, float] = (12.0, 15.0),
    lobe_length: int = 250,
    te_ms: float = 2.0,
    ti_ms: float | None = 20.0,
) -> FispSequence:
    """A FISP-MRF schedule like the paper's (3,000 repetitions, FA 5-74 deg, TR 12-15 ms).

    Flip angles follow half-sine lobes of ``lobe_length`` repetitions, each rising
    from the lower bound to its own peak (drawn from the seed; the highest lobe
    reaches the upper bound exactly), as in Jiang et al. 2015 (Fig. 1). TR varies
    smoothly (cosine-interpolated random knots, Perlin-like) inside ``tr_range_ms``.
    An ideal inversion precedes the train by ``ti_ms``.

    Args:
        n_reps: number of repetitions T.
        seed: seed of the lobe peaks and the TR curve; the same seed gives the
            same sequence (and hash) on every machine.
        flip_range_deg: (min, max) flip angle in degrees.
        tr_range_ms: (min, max) TR in ms.
        lobe_length: repetitions per flip-angle lobe.
        te_ms: echo time in ms.
        ti_ms: inversion delay in ms, or None for no inversion.

    Returns:
        The `FispSequence`, phases all zero (FISP).
    """
    if n_reps < 1 or lobe_length < 2:
        raise ValueError(
            f"paper_sequence: need n_reps >= 1 and lobe_length >= 2, got {n_reps}, {lobe_length}"
        )
    flip_min, flip_max = flip_range_deg
    tr_min, tr_max = tr_range_ms
    if not 0 <= flip_min < flip_max <= 180 or not 0 < tr_min <= tr_max:
        raise ValueError(
            f"paper_sequence: invalid ranges flip {flip_range_deg} deg, TR {tr_range_ms} ms"
        )
    rng = np.random.default_rng(seed)
    n_lobes = -(-n_reps // lobe_length)
    peaks = rng.uniform(0.35, 1.0, n_lobes)
    peaks[rng.integers(n_lobes)] = 1.0
    n = np.arange(n_reps)
    lobe = np.sin(np.pi * (n % lobe_length) / lobe_length)
    flip_deg = flip_min + (flip_max - flip_min) * peaks[n // lobe_length] * lobe
    tr_ms = tr_min + (tr_max - tr_min) * _smooth_noise(rng, n_reps, max(2, n_reps // 100))
    return FispSequence(flip_deg, tr_ms, np.zeros(n_reps), te_ms=te_ms, ti_ms=ti_ms)


def constant_sequence(
    n_reps: int, flip_deg: float, tr_ms: float, te_ms: float = 0.0, ti_ms: float | None = None
) -> FispSequence:
    """A schedule with one flip angle and one TR (steady-state and inversion-recovery checks)."""
    return FispSequence(
        np.full(n_reps, flip_deg), np.full(n_reps, tr_ms), np.zeros(n_reps), te_ms, ti_ms
    )


def write_hdf5_group(parent: h5py.Group, seq: FispSequence, name: str = "sequence") -> None:
    """Write ``seq`` as the group ``parent[name]`` (the layout of the module docstring)."""
    group = parent.create_group(name)
    for key in FORMAT_FIELDS:
        group.create_dataset(key, data=getattr(seq, key))
    group.attrs["te_ms"] = seq.te_ms
    group.attrs["ti_ms"] = np.nan if seq.ti_ms is None else seq.ti_ms
