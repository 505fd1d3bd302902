"""Spiral k-space sampling: variable-density interleaves, density compensation, schedule.

Which k-space points the MRF acquisition samples: the variable-density spiral interleaves,
their analytic density compensation, and which interleaves each repetition acquires.

The geometry of Hoppe et al. (MICCAI 2019): FOV 300 mm, 256 x 256 at 1.17 mm, 48
variable-density spiral interleaves that together sample k-space at (or above) Nyquist, one
of them acquired per repetition (undersampling factor 48).  `AcquisitionConfig` holds these
settings and the SNR and NUFFT tolerance of the acquisition
(`rinq_jax.data.acquisition.acquisition`).

k-space positions are in radians per pixel in ``[-pi, pi)`` (finufft's convention, see
`rinq_jax.data.acquisition.nufft`); ``traj[..., 0]`` is the frequency along the rows (axis -2),
``traj[..., 1]`` along the columns (axis -1).  ``|k| = pi`` is the Nyquist edge of the
``matrix`` grid.  The density compensation ``w`` carries the normalisation of the gridding
reconstruction: ``adjoint(w * forward(x)) ~= x`` for images band-limited to the sampled disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rinq_jax.configs.data import PAPER_FOV_MM, PAPER_MATRIX, PAPER_UNDERSAMPLING
from rinq_jax.data.acquisition.nufft import DEFAULT_EPS
from rinq_jax.data.acquisition.trajectory import K_MAX, Trajectory

__all__ = [
    "AcquisitionConfig",
    "played_trajectory",
    "trajectory_signature",
    "VariableDensity",
    "density_compensation",
    "interleaf_groups",
    "interleaf_pattern",
    "interleaf_schedule",
    "interleaf_step",
    "spiral_trajectory",
]


_INTERLEAF_ORDERS = ("sequential", "golden")
_GOLDEN_FRACTION = 2.0 - (1.0 + math.sqrt(5.0)) / 2.0  # 1 - 1/phi = 0.382: golden angle / 2pi


@dataclass(frozen=True)
class VariableDensity:
    """Radial sampling-density profile of the combined (all-interleaves) spiral.

    The oversampling factor relative to Nyquist at normalised radius ``rho = |k| / pi`` is
    ``f(rho) = edge + (centre - edge) * (1 - rho) ** power``: the spacing between
    neighbouring spiral turns of the combined trajectory is ``(2 pi / matrix) / f(rho)``
    rad/pixel.  ``power = 1`` is the linearly decreasing FOV of Kim et al., MRM 49:1010
    (2003), used for MRF by Jiang et al., MRM 74:1621 (2015).

    Attributes:
        centre: oversampling factor at k = 0, >= edge.
        edge: oversampling factor at the Nyquist edge, >= 1 (1 = exactly Nyquist).
        power: shape of the transition, > 0 (larger: dense only very near the centre).

    """

    centre: float = 2.0
    edge: float = 1.0
    power: float = 1.0

    def __post_init__(self) -> None:
        if not self.edge >= 1.0:
            raise ValueError(f"VariableDensity.edge must be >= 1 (Nyquist), got {self.edge}")
        if not self.centre >= self.edge:
            raise ValueError(
                f"VariableDensity.centre must be >= edge ({self.edge}), got {self.centre}"
            )
        if not self.power > 0.0:
            raise ValueError(f"VariableDensity.power must be > 0, got {self.power}")

    def oversampling(self, rho: np.ndarray) -> np.ndarray:
        """Oversampling factor ``f(rho)`` at normalised radius ``rho`` in [0, 1]."""
        return self.edge + (self.centre - self.edge) * (1.0 - rho) ** self.power

    def cumulative(self, rho: np.ndarray) -> np.ndarray:
        """``F(rho) = integral_0^rho f(r) dr`` in closed form (gives the spiral angle)."""
        p1 = self.power + 1.0
        return self.edge * rho + (self.centre - self.edge) * (1.0 - (1.0 - rho) ** p1) / p1


@dataclass(frozen=True)
class AcquisitionConfig:
    """Spiral MRF acquisition, defaults as in the paper (FISP, 300 mm, 256^2, R = 48).

    Attributes:
        matrix: image matrix (H = W = matrix); 256 gives 1.17 mm pixels at 300 mm.
        fov_mm: field of view in mm (only sets ``resolution_mm``; k-space is in rad/pixel).
        n_interleaves: spiral interleaves that together sample k-space at (or above) Nyquist.
        undersampling: ``n_interleaves / interleaves acquired per repetition``; must divide
            ``n_interleaves``.  48 of 48: one interleaf per repetition (the paper).
        samples_per_interleaf: readout samples per interleaf; ``None``: enough for
            ``readout_oversampling`` samples per Nyquist step along the readout.
        readout_oversampling: samples per Nyquist distance ``2 pi / matrix`` along the
            readout when ``samples_per_interleaf`` is None (scanners sample 2x).
        density: variable-density profile of the combined trajectory.
        snr: signal-to-noise ratio, ``None`` for noiseless data.  Definition (see
            ``gridding.noise_std``): RMS of the noiseless image series over all pixels of the FOV and
            all repetitions, divided by the noise standard deviation per pixel (complex,
            ``sqrt(E|n|^2)``) of the *fully sampled* gridding reconstruction.  The k-space
            noise per sample is the same whatever the undersampling, so an undersampled
            frame is noisier by about ``sqrt(undersampling)``.
        interleaf_order: which interleaves follow one another (``interleaf_schedule``):
            ``"sequential"``: repetition t uses interleaf ``t mod n_interleaves``, i.e. the
            spiral rotates by ``360 / n_interleaves`` degrees (7.5 deg for 48) per TR, as in
            Jiang et al. (2015); ``"golden"``: step by the integer coprime to the
            undersampling nearest to ``0.382 * undersampling`` (golden-angle-like).
        fully_sampled: acquire all interleaves in every repetition (reference data); the
            ``undersampling`` field is then ignored.
        nufft_eps: finufft relative tolerance (>= 1e-6 for complex64).
        trajectory: a given trajectory (a scanner's) instead of the variable-density spiral;
            ``n_interleaves`` and ``undersampling`` must then equal its interleaves (one per
            repetition, in its ``order``), and ``density``, ``samples_per_interleaf``,
            ``readout_oversampling`` and ``interleaf_order`` are unused.

    """

    matrix: int = PAPER_MATRIX
    fov_mm: float = PAPER_FOV_MM
    n_interleaves: int = PAPER_UNDERSAMPLING
    undersampling: int = PAPER_UNDERSAMPLING
    samples_per_interleaf: int | None = None
    readout_oversampling: float = 2.0
    density: VariableDensity = field(default_factory=VariableDensity)
    snr: float | None = None
    interleaf_order: str = "sequential"
    fully_sampled: bool = False
    nufft_eps: float = DEFAULT_EPS
    trajectory: Trajectory | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.matrix, int) and 8 <= self.matrix <= 4096 and self.matrix % 2 == 0):
            raise ValueError(f"matrix must be an even int in [8, 4096], got {self.matrix!r}")
        if not self.fov_mm > 0.0:
            raise ValueError(f"fov_mm must be > 0, got {self.fov_mm}")
        if not (isinstance(self.n_interleaves, int) and self.n_interleaves >= 1):
            raise ValueError(f"n_interleaves must be an int >= 1, got {self.n_interleaves!r}")
        if not (
            isinstance(self.undersampling, int)
            and 1 <= self.undersampling <= self.n_interleaves
            and self.n_interleaves % self.undersampling == 0
        ):
            raise ValueError(
                f"undersampling must be an int in [1, n_interleaves={self.n_interleaves}] that "
                f"divides n_interleaves, got {self.undersampling!r}"
            )
        if self.samples_per_interleaf is not None and not (
            isinstance(self.samples_per_interleaf, int) and self.samples_per_interleaf >= 16
        ):
            raise ValueError(
                f"samples_per_interleaf must be None or an int >= 16, "
                f"got {self.samples_per_interleaf!r}"
            )
        if not self.readout_oversampling >= 1.0:
            raise ValueError(f"readout_oversampling must be >= 1, got {self.readout_oversampling}")
        if not isinstance(self.density, VariableDensity):
            raise ValueError(f"density must be a VariableDensity, got {type(self.density)}")
        if self.snr is not None and not (math.isfinite(self.snr) and self.snr > 0.0):
            raise ValueError(f"snr must be None or a finite number > 0, got {self.snr}")
        if self.interleaf_order not in _INTERLEAF_ORDERS:
            raise ValueError(
                f"interleaf_order must be one of {_INTERLEAF_ORDERS}, got {self.interleaf_order!r}"
            )
        if not 1e-6 <= self.nufft_eps <= 1e-1:
            raise ValueError(f"nufft_eps must be in [1e-6, 1e-1], got {self.nufft_eps}")
        if self.trajectory is not None:
            n = self.trajectory.n_interleaves
            if not isinstance(self.trajectory, Trajectory):
                raise ValueError(f"trajectory must be a Trajectory, got {type(self.trajectory)}")
            if self.n_interleaves != n or self.undersampling != n:
                raise ValueError(
                    f"with a given trajectory of {n} interleaves, n_interleaves and "
                    f"undersampling must be {n} (one interleaf per repetition), got "
                    f"{self.n_interleaves} and {self.undersampling}"
                )

    @classmethod
    def for_trajectory(cls, trajectory: Trajectory, **fields) -> AcquisitionConfig:
        """The acquisition of a given trajectory (one interleaf of it per repetition)."""
        n = trajectory.n_interleaves
        return cls(n_interleaves=n, undersampling=n, trajectory=trajectory, **fields)

    @property
    def resolution_mm(self) -> float:
        """In-plane pixel size in mm (300 / 256 = 1.17 mm for the paper)."""
        return self.fov_mm / self.matrix

    @property
    def effective_undersampling(self) -> int:
        """Undersampling actually applied: 1 when ``fully_sampled``."""
        return 1 if self.fully_sampled else self.undersampling

    @property
    def interleaves_per_repetition(self) -> int:
        """Interleaves acquired in each repetition."""
        return self.n_interleaves // self.effective_undersampling


# --------------------------------------------------------------------------- trajectory


def _n_samples(cfg: AcquisitionConfig, arc_length: float) -> int:
    if cfg.samples_per_interleaf is not None:
        return cfg.samples_per_interleaf
    nyquist = 2.0 * math.pi / cfg.matrix
    return int(math.ceil(arc_length / nyquist * cfg.readout_oversampling)) + 1


def spiral_trajectory(cfg: AcquisitionConfig) -> np.ndarray:
    """Variable-density spiral interleaves, sampled at constant speed along the readout.

    One interleaf runs from k = 0 out to ``|k| = pi`` rad/pixel.  Its angle as a function of
    the normalised radius ``rho = |k| / pi`` follows from the ring spacing of the combined
    trajectory, ``dk / d(theta) * 2 pi / n_interleaves = (2 pi / matrix) / f(rho)``:

        theta(rho) = (pi * matrix / n_interleaves) * F(rho),   F(rho) = int_0^rho f,

    with ``f`` the oversampling profile (``VariableDensity``).  Samples are equally spaced
    in arc length (the gradient-amplitude-limited regime of a real spiral).  Interleaf ``i``
    is rotated by ``2 pi i / n_interleaves``. With a given ``cfg.trajectory``, its positions.

    Args:
        cfg: acquisition configuration.

    Returns:
        float32[n_interleaves, n_samples, 2] k-space positions in rad/pixel in [-pi, pi);
        ``[..., 0]`` along the rows (axis -2), ``[..., 1]`` along the columns (axis -1).
    """
    if cfg.trajectory is not None:
        return cfg.trajectory.coords
    # Dense parametrisation in rho, then resample at equal arc length.
    rho = np.linspace(0.0, 1.0, 200_001)
    theta = (math.pi * cfg.matrix / cfg.n_interleaves) * cfg.density.cumulative(rho)
    radius = K_MAX * rho
    kr, kc = radius * np.cos(theta), radius * np.sin(theta)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(kr), np.diff(kc)))])
    n = _n_samples(cfg, arc[-1])
    rho_s = np.interp(np.linspace(0.0, arc[-1], n), arc, rho)
    theta_s = (math.pi * cfg.matrix / cfg.n_interleaves) * cfg.density.cumulative(rho_s)
    rotation = 2.0 * math.pi * np.arange(cfg.n_interleaves) / cfg.n_interleaves
    angle = theta_s[None, :] + rotation[:, None]
    radius_s = K_MAX * rho_s[None, :]
    traj = np.stack([radius_s * np.cos(angle), radius_s * np.sin(angle)], axis=-1)
    return traj.astype(np.float32)


def density_compensation(traj: np.ndarray) -> np.ndarray:
    """Analytic density compensation for a set of rotated spiral interleaves.

    Each sample ``j`` of an interleaf stands for the annulus between the mid-radii to its
    neighbours, shared by the ``n_interleaves`` rotated copies (the exact radial form of
    the ``|k| |dk_radial|`` weights of Hoge et al., MRM 38:117 (1997)):

        w_j = pi * (r_{j+1/2}^2 - r_{j-1/2}^2) / n_interleaves / (2 pi)^2,

    with ``r_{-1/2} = 0`` and the last cell extended by half a step.  Dividing the cell area
    (rad/pixel)^2 by ``(2 pi)^2`` makes ``adjoint(w * forward(x)) ~= x`` for images whose
    spectrum lies inside the sampled disk (``sum(w) = pi / 4``, the disk's share of the
    square ``[-pi, pi)^2``).  Requires radii that grow along each interleaf (all spirals from
    ``spiral_trajectory``).

    Args:
        traj: float[n_interleaves, n_samples, 2] in rad/pixel, all interleaves of the spiral.

    Returns:
        float32[n_interleaves, n_samples] weights for the *fully sampled* set.  For a
        repetition that acquires a subset of interleaves, multiply by
        ``n_interleaves / interleaves acquired`` to keep the image scale.

    """
    traj = np.asarray(traj)
    if traj.ndim != 3 or traj.shape[-1] != 2 or traj.shape[1] < 2:
        raise ValueError(
            f"traj must have shape (n_interleaves, n_samples >= 2, 2), got {traj.shape}"
        )
    radius = np.hypot(traj[..., 0].astype(np.float64), traj[..., 1].astype(np.float64))
    if np.any(np.diff(radius, axis=1) < -1e-5):
        raise ValueError("density_compensation needs radii that grow along each interleaf")
    mid = 0.5 * (radius[:, 1:] + radius[:, :-1])
    last = radius[:, -1:] + 0.5 * (radius[:, -1:] - radius[:, -2:-1])
    edges = np.concatenate([np.zeros_like(radius[:, :1]), mid, last], axis=1)
    area = math.pi * np.diff(edges**2, axis=1) / traj.shape[0]
    return (area / (2.0 * math.pi) ** 2).astype(np.float32)


def interleaf_step(cfg: AcquisitionConfig) -> int:
    """Increment of the interleaf index from one repetition to the next (see config)."""
    u = cfg.effective_undersampling
    if u == 1 or cfg.interleaf_order == "sequential":
        return 1
    target = _GOLDEN_FRACTION * u
    candidates = [s for s in range(1, u) if math.gcd(s, u) == 1]
    return min(candidates, key=lambda s: (abs(s - target), s))


def interleaf_pattern(cfg: AcquisitionConfig, n_reps: int) -> np.ndarray:
    """Which of the ``effective_undersampling`` interleaf groups each repetition uses.

    With a given ``cfg.trajectory`` (not fully sampled), its ``order``, which must have
    ``n_reps`` entries.
    """
    if cfg.trajectory is not None and not cfg.fully_sampled:
        if cfg.trajectory.n_reps != n_reps:
            raise ValueError(
                f"the trajectory orders {cfg.trajectory.n_reps} repetitions, not {n_reps}"
            )
        return cfg.trajectory.order
    u = cfg.effective_undersampling
    return (np.arange(n_reps, dtype=np.int64) * interleaf_step(cfg)) % u


def interleaf_schedule(cfg: AcquisitionConfig, n_reps: int) -> np.ndarray:
    """Interleaves acquired in each repetition.

    Repetition ``t`` acquires the group ``g(t) = (t * step) mod R`` (``R`` the effective
    undersampling, ``step`` from ``interleaf_step``): interleaves ``g + j R`` for
    ``j = 0 .. n_interleaves / R - 1``, spread evenly in angle.  For the paper (R = 48,
    one interleaf) that is interleaf ``(t * step) mod 48``.  ``step`` is coprime to ``R``, so
    every ``R`` consecutive repetitions cover all interleaves once.

    Args:
        cfg: acquisition configuration.
        n_reps: number of repetitions T >= 1.

    Returns:
        int64[T, interleaves_per_repetition] interleaf indices.

    """
    if not (isinstance(n_reps, (int, np.integer)) and n_reps >= 1):
        raise ValueError(f"n_reps must be an int >= 1, got {n_reps!r}")
    return interleaf_groups(cfg)[interleaf_pattern(cfg, int(n_reps))]


def interleaf_groups(cfg: AcquisitionConfig) -> np.ndarray:
    """int64[R, interleaves_per_repetition]: group g holds interleaves g + j R."""
    u = cfg.effective_undersampling
    j = np.arange(cfg.interleaves_per_repetition, dtype=np.int64)
    return np.arange(u, dtype=np.int64)[:, None] + u * j[None, :]


def played_trajectory(cfg: AcquisitionConfig, n_reps: int) -> Trajectory:
    """The trajectory ``cfg`` acquires over ``n_reps`` repetitions (one interleaf each)."""
    if cfg.interleaves_per_repetition != 1:
        raise ValueError(
            f"played_trajectory needs one interleaf per repetition, got {cfg.interleaves_per_repetition}"
        )
    return Trajectory(spiral_trajectory(cfg), interleaf_schedule(cfg, n_reps)[:, 0])


def trajectory_signature(cfg: AcquisitionConfig, n_reps: int) -> dict | None:
    """`Trajectory.signature` of what ``cfg`` acquires over ``n_reps`` repetitions.

    None when a repetition plays several interleaves (such data are not compared).
    """
    if cfg.interleaves_per_repetition != 1:
        return None
    return played_trajectory(cfg, n_reps).signature()
