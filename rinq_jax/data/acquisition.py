"""Spiral MRF acquisition: variable-density spiral, NUFFT, noise and gridding reconstruction.

Simulates what the scanner of Hoppe et al. (MICCAI 2019) delivers: a FISP MRF time series
(FOV 300 mm, 256 x 256 at 1.17 mm, 3,000 repetitions) acquired with one spiral interleaf per
repetition out of 48 that fully sample k-space (undersampling factor 48), reconstructed
frame by frame with the gridding adjoint, so every frame carries strong spiral aliasing.

Conventions
-----------
* Image axes are ``(..., H, W)`` = (rows, columns); pixel ``n`` sits at the integer
  position ``n - matrix // 2`` (the centre of the FOV is pixel ``matrix // 2``).
* k-space positions are in radians per pixel in ``[-pi, pi)`` (finufft's convention);
  ``traj[..., 0]`` is the frequency along the rows (axis -2), ``traj[..., 1]`` along the
  columns (axis -1).  ``|k| = pi`` is the Nyquist edge of the ``matrix`` grid.
* Forward model (NUFFT type 2): ``y_j = sum_n x_n exp(-i k_j . n)``.
  Adjoint (NUFFT type 1):       ``x_n = sum_j y_j exp(+i k_j . n)``.
  No scale factors, so ``forward`` and ``adjoint`` are exact adjoints (up to float32
  rounding), and the density compensation ``w`` carries the normalisation:
  ``adjoint(w * forward(x)) ~= x`` for images band-limited to the sampled disk.

The time series is low-rank (subspace of the dictionary), so ``acquire`` works on the K
coefficient images: K forward NUFFTs for all interleaves at once, then per repetition only a
K-term linear combination in k-space, the noise, and one adjoint NUFFT (batched by interleaf).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import finufft
import numpy as np

__all__ = [
    "AcquisitionConfig",
    "VariableDensity",
    "acquire",
    "acquire_noise",
    "acquire_series",
    "adjoint",
    "density_compensation",
    "forward",
    "interleaf_groups",
    "interleaf_pattern",
    "interleaf_schedule",
    "interleaf_step",
    "noise_std",
    "spiral_trajectory",
]

#: Default finufft tolerance: relative error ~1e-4 lets finufft use its 1.25 upsampling,
#: about 5x faster than 2.0; far below the noise and the undersampling artefacts.
DEFAULT_EPS = 1e-4

#: Repetitions per block of ``acquire``: the block's frames are buffered before they are
#: written to the time-last output (192 x 256 x 256 complex64 = 100 MB).
DEFAULT_BATCH = 192

#: Most transforms per finufft call; beyond ~8 batching gains nothing (measured) and the
#: plan's upsampled grids grow with it.
_MAX_TRANS = 16

#: Outermost radius in rad/pixel: the Nyquist edge pi, pulled in by 1e-6 so that float32
#: coordinates stay inside finufft's half-open [-pi, pi) without wrapping +pi to -pi.
_K_MAX = math.pi * (1.0 - 1e-6)

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
            ``noise_std``): RMS of the noiseless image series over all pixels of the FOV and
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

    """

    matrix: int = 256
    fov_mm: float = 300.0
    n_interleaves: int = 48
    undersampling: int = 48
    samples_per_interleaf: int | None = None
    readout_oversampling: float = 2.0
    density: VariableDensity = field(default_factory=VariableDensity)
    snr: float | None = None
    interleaf_order: str = "sequential"
    fully_sampled: bool = False
    nufft_eps: float = DEFAULT_EPS

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
    is rotated by ``2 pi i / n_interleaves``.

    Args:
        cfg: acquisition configuration.

    Returns:
        float32[n_interleaves, n_samples, 2] k-space positions in rad/pixel in [-pi, pi);
        ``[..., 0]`` along the rows (axis -2), ``[..., 1]`` along the columns (axis -1).

    """
    # Dense parametrisation in rho, then resample at equal arc length.
    rho = np.linspace(0.0, 1.0, 200_001)
    theta = (math.pi * cfg.matrix / cfg.n_interleaves) * cfg.density.cumulative(rho)
    radius = _K_MAX * rho
    kr, kc = radius * np.cos(theta), radius * np.sin(theta)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(kr), np.diff(kc)))])
    n = _n_samples(cfg, arc[-1])
    rho_s = np.interp(np.linspace(0.0, arc[-1], n), arc, rho)
    theta_s = (math.pi * cfg.matrix / cfg.n_interleaves) * cfg.density.cumulative(rho_s)
    rotation = 2.0 * math.pi * np.arange(cfg.n_interleaves) / cfg.n_interleaves
    angle = theta_s[None, :] + rotation[:, None]
    radius_s = _K_MAX * rho_s[None, :]
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
    """Which of the ``effective_undersampling`` interleaf groups each repetition uses."""
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


# --------------------------------------------------------------------------- NUFFT


def _upsampfac(eps: float) -> float:
    # 1.25 is much faster but finufft cannot reach tolerances below ~1e-5 with it.
    return 1.25 if eps >= 1e-4 else 2.0


def _plan(
    nufft_type: int,
    shape: tuple[int, int],
    points: np.ndarray,
    n_trans: int,
    eps: float,
    nthreads: int,
) -> finufft.Plan:
    """Make a complex64 finufft plan with its points set; ``points``: float[M, 2] rad/pixel."""
    isign = -1 if nufft_type == 2 else 1
    plan = finufft.Plan(
        nufft_type,
        shape,
        n_trans,
        eps,
        isign,
        dtype="complex64",
        nthreads=nthreads,
        upsampfac=_upsampfac(eps),
    )
    plan.setpts(
        np.ascontiguousarray(points[:, 0], dtype=np.float32),
        np.ascontiguousarray(points[:, 1], dtype=np.float32),
    )
    return plan


def _check_traj(traj: np.ndarray) -> np.ndarray:
    traj = np.asarray(traj)
    if traj.ndim < 2 or traj.shape[-1] != 2:
        raise ValueError(f"traj must have shape (..., n_points, 2), got {traj.shape}")
    if not np.all(np.isfinite(traj)) or np.max(np.abs(traj)) > 3.0 * math.pi:
        raise ValueError("traj must be finite rad/pixel values in [-3 pi, 3 pi] (finufft)")
    return traj.reshape(-1, 2)


def _check_eps_threads(eps: float, nthreads: int) -> None:
    if not 1e-6 <= eps <= 1e-1:
        raise ValueError(f"eps must be in [1e-6, 1e-1], got {eps}")
    if not (isinstance(nthreads, int) and nthreads >= 1):
        raise ValueError(f"nthreads must be an int >= 1, got {nthreads!r}")


def forward(
    image: np.ndarray, traj: np.ndarray, *, eps: float = DEFAULT_EPS, nthreads: int = 1
) -> np.ndarray:
    """Non-uniform DFT of images at k-space points (finufft type 2).

    ``y_j = sum_n x_n exp(-i k_j . n)``, ``n`` the pixel position relative to the centre
    pixel ``matrix // 2``; no normalisation (the exact adjoint is ``adjoint``).

    Args:
        image: complex[..., H, W]; leading axes are batched in one plan (``n_trans``).
        traj: float[..., 2] k-space points in rad/pixel.
        eps: finufft relative tolerance.
        nthreads: finufft threads.

    Returns:
        complex64[*image.shape[:-2], *traj.shape[:-1]].

    """
    _check_eps_threads(eps, nthreads)
    image = np.asarray(image)
    if image.ndim < 2:
        raise ValueError(f"image must have shape (..., H, W), got {image.shape}")
    points = _check_traj(traj)
    batch_shape, shape = image.shape[:-2], image.shape[-2:]
    n_trans = int(np.prod(batch_shape, dtype=np.int64))
    if n_trans == 0:
        return np.zeros((*batch_shape, *np.shape(traj)[:-1]), np.complex64)
    data = np.ascontiguousarray(image, dtype=np.complex64).reshape(n_trans, *shape)
    out = _plan(2, shape, points, n_trans, eps, nthreads).execute(data)
    return out.reshape(*batch_shape, *np.shape(traj)[:-1])


def adjoint(
    kdata: np.ndarray,
    traj: np.ndarray,
    shape: tuple[int, int],
    *,
    eps: float = DEFAULT_EPS,
    nthreads: int = 1,
) -> np.ndarray:
    """Adjoint of ``forward`` (finufft type 1): ``x_n = sum_j y_j exp(+i k_j . n)``.

    Multiply ``kdata`` by ``density_compensation`` weights first for a gridding
    reconstruction.

    Args:
        kdata: complex[..., *traj.shape[:-1]]; leading axes are batched (``n_trans``).
        traj: float[..., 2] k-space points in rad/pixel.
        shape: output image shape (H, W).
        eps: finufft relative tolerance.
        nthreads: finufft threads.

    Returns:
        complex64[*batch, H, W].

    """
    _check_eps_threads(eps, nthreads)
    points = _check_traj(traj)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 2:
        raise ValueError(f"shape must be (H, W) with H, W >= 2, got {shape}")
    kdata = np.asarray(kdata)
    pts_shape = np.shape(traj)[:-1]
    if kdata.shape[kdata.ndim - len(pts_shape) :] != pts_shape or kdata.ndim < len(pts_shape):
        raise ValueError(f"kdata shape {kdata.shape} must end with traj's {pts_shape}")
    batch_shape = kdata.shape[: kdata.ndim - len(pts_shape)]
    n_trans = int(np.prod(batch_shape, dtype=np.int64))
    if n_trans == 0:
        return np.zeros((*batch_shape, *shape), np.complex64)
    data = np.ascontiguousarray(kdata, dtype=np.complex64).reshape(n_trans, -1)
    out = _plan(1, shape, points, n_trans, eps, nthreads).execute(data)
    return out.reshape(*batch_shape, *shape)


# --------------------------------------------------------------------------- acquisition


def noise_std(signal_rms: float, cfg: AcquisitionConfig, weights: np.ndarray) -> float:
    """Noise standard deviation per complex k-space sample for ``cfg.snr``.

    The fully sampled gridding reconstruction ``x_n = sum_j w_j y_j exp(i k_j . n)`` of
    white complex noise (``E|n_j|^2 = sigma^2``) has per-pixel standard deviation
    ``sigma * sqrt(sum_j w_j^2)`` (exactly, every pixel).  Setting that to
    ``signal_rms / snr`` gives

        sigma = signal_rms / (snr * sqrt(sum_j w_j^2)).

    Args:
        signal_rms: ``sqrt(mean |x|^2)`` of the noiseless image series over all pixels and
            repetitions.
        cfg: acquisition configuration with ``snr`` set.
        weights: float[n_interleaves, n_samples] fully sampled ``density_compensation``.

    Returns:
        sigma (``E|n|^2 = sigma^2``; real and imaginary parts each ``sigma / sqrt(2)``);
        0.0 when ``cfg.snr`` is None.

    """
    if cfg.snr is None:
        return 0.0
    w = np.asarray(weights, dtype=np.float64)
    return float(signal_rms / (cfg.snr * math.sqrt(np.sum(w**2))))


def _chunks(index: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, index.size, size):
        yield index[start : start + size]


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="acquire", unit="rep")


def _write_block(out: np.ndarray, frames: np.ndarray, t0: int) -> None:
    """``out[:, :, t0 : t0 + b] = frames.transpose(1, 2, 0)`` in row tiles.

    The output is time-last, so a frame is strided by T in memory; copying a few image rows
    at a time keeps the touched cache lines small (~10x faster than one big transpose).
    """
    b = frames.shape[0]
    for h in range(0, frames.shape[1], 8):
        out[h : h + 8, :, t0 : t0 + b] = frames[:, h : h + 8].transpose(1, 2, 0)


def _thin_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Multiply a: [n, K] by b: [K, M], without BLAS when the product is small.

    Many small threaded-BLAS calls interleaved with finufft's OpenMP threads stall for
    milliseconds each on busy CPUs (measured: 7 ms for a 4 x 10 x 2,882 product, 40x its
    cost); K vectorised multiply-adds stay on this thread.
    """
    if a.shape[0] * a.shape[1] * b.shape[1] > 4_000_000:
        return a @ b
    out = a[:, :1] * b[0]
    for k in range(1, a.shape[1]):
        out += a[:, k : k + 1] * b[k]
    return out


def _blocking(cfg: AcquisitionConfig, batch: int, n_reps: int) -> tuple[int, int]:
    """(repetitions per block, transforms per finufft call) of the engine."""
    per_group = max(1, batch // cfg.effective_undersampling)
    block = min(per_group * cfg.effective_undersampling, n_reps)
    return block, min(per_group, _MAX_TRANS, n_reps)


class _GroupPlan:
    """A finufft plan re-pointed (``setpts``) at the interleaf group in use."""

    def __init__(self, nufft_type, cfg, traj, schedule, n_trans, nthreads):
        self._schedule, self._traj, self.group = schedule, traj, 0
        pts = traj[schedule[0]].reshape(-1, 2)
        self.plan = _plan(nufft_type, (cfg.matrix,) * 2, pts, n_trans, cfg.nufft_eps, nthreads)
        self.n_trans = n_trans

    def execute(self, group: int, rep: int, data: np.ndarray) -> np.ndarray:
        if group != self.group:
            pts = self._traj[self._schedule[rep]].reshape(-1, 2)
            self.plan.setpts(
                np.ascontiguousarray(pts[:, 0], dtype=np.float32),
                np.ascontiguousarray(pts[:, 1], dtype=np.float32),
            )
            self.group = group
        return self.plan.execute(data)


def _run(
    cfg: AcquisitionConfig,
    n_reps: int,
    clean_kspace,
    rng: np.random.Generator | None,
    signal_rms: float,
    *,
    batch: int,
    nthreads: int,
    progress: bool,
    out: np.ndarray | None,
) -> np.ndarray:
    """Shared engine: k-space data + noise -> batched gridding adjoint, block by block.

    Repetitions are processed in blocks of consecutive time points (``batch // R`` per
    interleaf group, ``R`` the effective undersampling), group by group inside a block, so
    each adjoint is batched over repetitions that share an interleaf group and the block is
    written to the time-last output in one cache-friendly copy.

    ``clean_kspace(group, reps) -> complex64[len(reps), M_g]`` gives the noiseless data.
    Noise is drawn in this fixed order (block, group, chunk; ``standard_normal((b, M_g, 2))``
    each), so the same rng gives the same noise whatever produced the clean data.
    """
    m, u = cfg.matrix, cfg.effective_undersampling
    traj = spiral_trajectory(cfg)
    weights = density_compensation(traj) * (cfg.n_interleaves / cfg.interleaves_per_repetition)
    sigma = noise_std(signal_rms, cfg, density_compensation(traj))
    if sigma > 0.0 and not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator when snr is set, got {rng!r}")
    schedule = interleaf_schedule(cfg, n_reps)
    group_of_rep = interleaf_pattern(cfg, n_reps)
    block, n_trans = _blocking(cfg, batch, n_reps)
    n_points = cfg.interleaves_per_repetition * traj.shape[1]

    out = _output(out, m, n_reps)
    frames = np.empty((block, m, m), np.complex64)
    y = np.empty((n_trans, n_points), np.complex64)
    plan = _GroupPlan(1, cfg, traj, schedule, n_trans, nthreads)
    bar = _progress(n_reps, progress)
    for t0 in range(0, n_reps, block):
        t1 = min(t0 + block, n_reps)
        for group in range(u):
            reps = t0 + np.flatnonzero(group_of_rep[t0:t1] == group)
            if reps.size == 0:
                continue
            g_w = weights[schedule[reps[0]]].reshape(-1)
            for chunk in _chunks(reps, n_trans):
                b = chunk.size
                y[b:] = 0.0
                y[:b] = clean_kspace(group, chunk)
                if sigma > 0.0:
                    z = rng.standard_normal((b, n_points, 2), dtype=np.float32)
                    y[:b] += (sigma / math.sqrt(2.0)) * z.view(np.complex64)[..., 0]
                y *= g_w
                frames[chunk - t0] = plan.execute(group, chunk[0], y)[:b]
        _write_block(out, frames[: t1 - t0], t0)
        if bar is not None:
            bar.update(t1 - t0)
    if bar is not None:
        bar.close()
    return out


def _output(out: np.ndarray | None, m: int, n_reps: int) -> np.ndarray:
    if out is None:
        return np.empty((m, m, n_reps), np.complex64)
    if (
        not isinstance(out, np.ndarray)
        or out.shape != (m, m, n_reps)
        or out.dtype != np.complex64
        or not out.flags.c_contiguous
    ):
        raise ValueError(
            f"out must be a C-contiguous complex64 array of shape {(m, m, n_reps)}, got "
            f"{getattr(out, 'shape', None)} {getattr(out, 'dtype', type(out))}"
        )
    return out


def _check_common(cfg: AcquisitionConfig, batch: int, nthreads: int) -> None:
    if not isinstance(cfg, AcquisitionConfig):
        raise ValueError(f"cfg must be an AcquisitionConfig, got {type(cfg)}")
    if not (isinstance(batch, int) and batch >= 1):
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    _check_eps_threads(cfg.nufft_eps, nthreads)


def acquire(
    coefficients: np.ndarray,
    basis: np.ndarray,
    cfg: AcquisitionConfig,
    rng: np.random.Generator | None = None,
    *,
    batch: int = DEFAULT_BATCH,
    nthreads: int = 1,
    progress: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Simulate the undersampled spiral acquisition and gridding recon of a low-rank series.

    The true series is ``x_t = sum_k coefficients[k] * basis[k, t]``.  Repetition ``t``
    acquires the interleaves ``I(t)`` of ``interleaf_schedule`` and is reconstructed as

        xhat_t = A_I(t)^H ( w_I(t) * (A_I(t) x_t + n_t) ),

    ``A`` the NUFFT (``forward``), ``w`` the density compensation scaled by
    ``n_interleaves / |I(t)|``, ``n_t`` white complex Gaussian noise, independent per
    repetition and sample, with ``sigma`` from ``noise_std`` (SNR defined in
    ``AcquisitionConfig``).  Cost: K forward NUFFTs over all interleaves at once, then per
    repetition a K-term combination in k-space and one adjoint (batched per interleaf
    group with finufft ``n_trans``).  Noiseless and fully sampled, the adjoints are taken of
    the K coefficient images instead (K adjoints, exact by linearity).  The noise is never
    projected on a subspace: each repetition gets its own independent draw.

    Reproducibility: the same ``rng`` state, ``cfg``, T and ``batch`` give the same noise
    (``batch`` sets the order of the draws); ``acquire_series`` draws it identically.

    Args:
        coefficients: complex[K, H, W] subspace coefficient images (H = W = cfg.matrix).
        basis: complex[K, T] temporal basis.
        cfg: acquisition configuration.
        rng: noise generator; required when ``cfg.snr`` is set.
        batch: repetitions per block (``batch // R`` per interleaf group, at most 16 per
            finufft call); the block's frames are buffered (batch x H x W complex64).
        nthreads: finufft threads.
        progress: show a tqdm progress bar.
        out: optional C-contiguous complex64[H, W, T] buffer for the result; reusing one
            across slices saves the first-touch page faults of a fresh 1.6 GB array
            (~5 s per 256 x 256 x 3000 slice on this machine).

    Returns:
        complex64[H, W, T] aliased (and noisy) image series.

    """
    _check_common(cfg, batch, nthreads)
    coefficients = np.asarray(coefficients)
    basis = np.asarray(basis)
    m = cfg.matrix
    if coefficients.ndim != 3 or coefficients.shape[1:] != (m, m):
        raise ValueError(
            f"coefficients must have shape (K, {m}, {m}) for matrix={m}, got {coefficients.shape}"
        )
    if basis.ndim != 2 or basis.shape[0] != coefficients.shape[0] or basis.shape[1] < 1:
        raise ValueError(
            f"basis must have shape (K={coefficients.shape[0]}, T >= 1), got {basis.shape}"
        )
    coefficients = coefficients.astype(np.complex64, copy=False)
    basis = basis.astype(np.complex64, copy=False)
    n_comp, n_reps = basis.shape

    # ||x||^2 = sum_kl (B B^H)_kl (C C^H)_kl without forming the series.
    # (complex64 Gram matrices: one BLAS call each; float32 precision is ample for an RMS.)
    flat = coefficients.reshape(n_comp, -1)
    gram_c = (flat @ flat.conj().T).astype(np.complex128)
    energy = float(np.real(np.sum((basis @ basis.conj().T).astype(np.complex128) * gram_c)))
    signal_rms = math.sqrt(max(energy, 0.0) / (n_reps * m * m))

    if cfg.snr is None and cfg.effective_undersampling == 1:
        return _acquire_noiseless_full(coefficients, basis, cfg, nthreads, progress, out)

    traj = spiral_trajectory(cfg)
    # One type-2 plan over all interleaves: K transforms instead of K x n_interleaves.
    k_coeff = forward(coefficients, traj, eps=cfg.nufft_eps, nthreads=nthreads)
    # Group-major copy, k_group[g] = complex64[K, M_g]: each call reads one contiguous slab.
    groups = interleaf_groups(cfg)
    k_group = np.ascontiguousarray(k_coeff[:, groups].transpose(1, 0, 2, 3))
    k_group = k_group.reshape(len(groups), n_comp, -1)
    del k_coeff

    def clean_kspace(group, reps):
        # y_t = sum_k basis[k, t] (A c_k) on the group's interleaves: a small matmul.
        return _thin_matmul(basis[:, reps].T, k_group[group])

    return _run(
        cfg,
        n_reps,
        clean_kspace,
        rng,
        signal_rms,
        batch=batch,
        nthreads=nthreads,
        progress=progress,
        out=out,
    )


def acquire_noise(
    cfg: AcquisitionConfig,
    n_reps: int,
    signal_rms: float,
    rng: np.random.Generator,
    *,
    batch: int = DEFAULT_BATCH,
    nthreads: int = 1,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The noise part of ``acquire``: ``A_I(t)^H (w_I(t) * n_t)`` for every repetition.

    Draws exactly the noise ``acquire`` and ``acquire_series`` add for the same ``rng``,
    ``cfg``, ``T``, ``batch`` and ``signal_rms`` (the RMS of the noiseless series that sets
    the SNR), so ``acquire_series(x) == gridding of x + acquire_noise(...)`` by linearity.

    Returns:
        complex64[H, W, T].
    """
    _check_common(cfg, batch, nthreads)
    if cfg.snr is None:
        raise ValueError("acquire_noise needs cfg.snr")
    n_points = cfg.interleaves_per_repetition * spiral_trajectory(cfg).shape[1]

    def no_signal(group, reps):
        return np.zeros((reps.size, n_points), np.complex64)

    return _run(
        cfg,
        n_reps,
        no_signal,
        rng,
        signal_rms,
        batch=batch,
        nthreads=nthreads,
        progress=False,
        out=out,
    )


def _acquire_noiseless_full(
    coefficients: np.ndarray,
    basis: np.ndarray,
    cfg: AcquisitionConfig,
    nthreads: int,
    progress: bool,
    out: np.ndarray | None,
) -> np.ndarray:
    """Noiseless fully sampled ``acquire`` by linearity: xhat_t = sum_k b_kt A^H w A c_k.

    K adjoints instead of T, and no per-repetition k-space data (48 interleaves x ~2,900
    samples each).  Only for the fully sampled case: with R > 1 groups the per-group images
    would be K x R frames and the output writes scattered in time.
    """
    m = cfg.matrix
    n_comp, n_reps = basis.shape
    traj = spiral_trajectory(cfg)
    weights = density_compensation(traj)
    y = forward(coefficients, traj, eps=cfg.nufft_eps, nthreads=nthreads) * weights
    images = adjoint(y, traj, (m, m), eps=cfg.nufft_eps, nthreads=nthreads)
    images_t = images.reshape(n_comp, m * m).T
    out = _output(out, m, n_reps)
    flat_out = out.reshape(m * m, n_reps)  # a view: results go straight into the output
    bar = _progress(n_reps, progress)
    for t0 in range(0, n_reps, 256):
        t1 = min(t0 + 256, n_reps)
        flat_out[:, t0:t1] = images_t @ basis[:, t0:t1]
        if bar is not None:
            bar.update(t1 - t0)
    if bar is not None:
        bar.close()
    return out


def acquire_series(
    images: np.ndarray,
    cfg: AcquisitionConfig,
    rng: np.random.Generator | None = None,
    *,
    time_axis: int | None = None,
    batch: int = DEFAULT_BATCH,
    nthreads: int = 1,
    progress: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Simulate the acquisition of ``acquire`` for a plain image series (no subspace).

    With the same ``rng`` and config, the noise equals that of ``acquire`` on the same
    series, so both give the same result up to NUFFT tolerance.

    Args:
        images: complex[T, H, W] or complex[H, W, T] (H = W = cfg.matrix).
        cfg: acquisition configuration.
        rng: noise generator; required when ``cfg.snr`` is set.
        time_axis: 0 or 2 (or -1); ``None`` infers it from the shape (an error when both
            readings fit, i.e. T == matrix).
        batch: as in ``acquire``.
        nthreads: as in ``acquire``.
        progress: as in ``acquire``.
        out: as in ``acquire``.

    Returns:
        complex64[H, W, T] aliased (and noisy) image series.

    """
    _check_common(cfg, batch, nthreads)
    images = np.asarray(images)
    m = cfg.matrix
    if images.ndim != 3:
        raise ValueError(f"images must have shape (T, H, W) or (H, W, T), got {images.shape}")
    first, last = images.shape[1:] == (m, m), images.shape[:2] == (m, m)
    if time_axis is None:
        if first and last:
            raise ValueError(
                f"images shape {images.shape} is ambiguous for matrix={m}; pass time_axis"
            )
        time_axis = 0 if first else 2
    if time_axis not in (0, 2, -1):
        raise ValueError(f"time_axis must be 0 or 2 (-1), got {time_axis}")
    if (time_axis == 0 and not first) or (time_axis != 0 and not last):
        raise ValueError(
            f"images shape {images.shape} does not hold ({m}, {m}) frames on time axis "
            f"{time_axis} for matrix={m}"
        )
    frames = images if time_axis == 0 else np.moveaxis(images, -1, 0)  # a view, no copy
    n_reps = frames.shape[0]
    signal_rms = math.sqrt(sum(float(np.vdot(f, f).real) for f in frames) / (n_reps * m * m))
    traj = spiral_trajectory(cfg)
    schedule = interleaf_schedule(cfg, n_reps)
    _, n_trans = _blocking(cfg, batch, n_reps)
    plan = _GroupPlan(2, cfg, traj, schedule, n_trans, nthreads)
    data = np.zeros((n_trans, m, m), np.complex64)

    def clean_kspace(group, reps):
        data[reps.size :] = 0.0
        data[: reps.size] = frames[reps]
        return plan.execute(group, reps[0], data)[: reps.size]

    return _run(
        cfg,
        n_reps,
        clean_kspace,
        rng,
        signal_rms,
        batch=batch,
        nthreads=nthreads,
        progress=progress,
        out=out,
    )
