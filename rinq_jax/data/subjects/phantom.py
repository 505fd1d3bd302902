"""Procedural axial brain phantoms at 3 T for MR fingerprinting: T1, T2, M0 and B1 maps.

The paper trains on axial brain slices of 8 volunteers (FOV 300 mm, 256 x 256, 1.17 mm
pixels; Hoppe, Thamm et al., MICCAI 2019). Those scans are not public, so this module draws
in-vivo-like slices instead: any number of subjects
(`rinq_jax.data.subjects.phantom_geometry.sample_subject`), each with its own head size and shape,
scalp, skull, cortical folding, ventricle size, pose and tissue values, cut at any axial
position (:func:`make_phantom`). The head geometry and its tissue labels are
`rinq_jax.data.subjects.phantom_geometry`; the tissues' values at 3 T
`rinq_jax.data.subjects.tissues`.

Slice position ``z`` runs from 0 (inferior: just above the skull base, at the level of the
third ventricle and thalami) to 1 (superior: near the vertex).

Partial volume: labels are rendered on a grid ``supersample`` times finer in each
direction, each sub-pixel gets its tissue's parameters, and each pixel averages its
sub-pixels (see :func:`make_phantom` for how T1 and T2 are averaged and why).

Everything random is drawn from explicit seeds: subject ``k`` depends only on
``(seed, k)``, a slice only on the subject, its position and the slice ``seed``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from rinq_jax.configs.data import PAPER_FOV_MM, PAPER_MATRIX
from rinq_jax.data.subjects.draws import checked_number
from rinq_jax.data.subjects.phantom_geometry import (
    SubjectAnatomy,
    render_labels,
    sample_subject,
)
from rinq_jax.data.subjects.tissues import (
    BACKGROUND,
    DICT_T1_RANGE_MS,
    DICT_T2_RANGE_MS,
    N_CLASSES,
    TISSUE_PROPERTIES,
    TISSUES,
    dominant_tissue,
)

__all__ = ["Phantom", "b1_pattern", "make_phantom", "slice_positions", "smooth_poly"]

_T1_MS = np.array([TISSUE_PROPERTIES[k].t1_ms for k in range(N_CLASSES)])
_T2_MS = np.array([TISSUE_PROPERTIES[k].t2_ms for k in range(N_CLASSES)])
_PD = np.array([TISSUE_PROPERTIES[k].pd for k in range(N_CLASSES)])
_TEXTURE_CV = np.array([TISSUE_PROPERTIES[k].texture_cv for k in range(N_CLASSES)])

# Smooth drift amplitudes (max relative change across the head): slow spatial variation of
# tissue properties, e.g. WM T1 varies with fibre density and myelination along the brain.
_DRIFT_T1, _DRIFT_T2, _DRIFT_PD = 0.03, 0.03, 0.02


@dataclass(frozen=True, eq=False)
class Phantom:
    """One axial slice: tissue maps on a square grid (rows anterior -> posterior).

    Attributes:
        t1_ms: float32[H, W], T1 in ms; 0 outside the head.
        t2_ms: float32[H, W], T2 in ms; 0 outside the head.
        m0: complex64[H, W], proton density (CSF = 1) times a smooth background phase;
            0 outside the head.
        b1: float32[H, W], relative transmit field (flip-angle scale), smooth, in
            (0.8, 1.2); all ones when disabled. Defined everywhere, also outside the head.
        mask: bool[H, W], brain pixels (``tissue`` in
          :data:`rinq_jax.data.subjects.tissues.BRAIN_LABELS`, i.e. brain
            classes make up at least half of the pixel).
        tissue: uint8[H, W], label of the dominant tissue (see
          :data:`rinq_jax.data.subjects.tissues.TISSUES`).
        fractions: float32[N_CLASSES, H, W], area fraction of each label in each pixel;
            sums to 1 over labels.
        subject_id: the subject's index.
        slice_position: axial position in [0, 1], inferior -> superior.
        fov_mm: field of view (square), mm.

    """

    t1_ms: np.ndarray
    t2_ms: np.ndarray
    m0: np.ndarray
    b1: np.ndarray
    mask: np.ndarray
    tissue: np.ndarray
    fractions: np.ndarray
    subject_id: int
    slice_position: float
    fov_mm: float

    @property
    def matrix(self) -> int:
        """Number of pixels along each side."""
        return int(self.t1_ms.shape[0])

    @property
    def pixel_mm(self) -> float:
        """Pixel size in mm."""
        return self.fov_mm / self.matrix


def slice_positions(n_slices: int, first: float = 0.25, last: float = 0.85) -> np.ndarray:
    """Evenly spaced slice positions, for turning slice indices into positions.

    The default range leaves out the lowest slices (few structures) and the vertex (little
    brain), like a clinical axial brain stack.

    Args:
        n_slices: number of slices (>= 1); one slice sits midway between ``first`` and
            ``last``.
        first: position of the first (lowest) slice, >= 0.
        last: position of the last (highest) slice, first <= last <= 1.

    Returns:
        float64[n_slices] positions in [0, 1], inferior -> superior.

    Raises:
        ValueError: on a bad count or range.

    """
    n_slices = checked_number("n_slices", n_slices, 1, integer=True)
    if not 0.0 <= first <= last <= 1.0:
        raise ValueError(f"need 0 <= first <= last <= 1, got first={first}, last={last}")
    if n_slices == 1:
        return np.array([(first + last) / 2.0])
    return np.linspace(first, last, n_slices)


# --- smooth fields ------------------------------------------------------------------------


def smooth_poly(rng: np.random.Generator, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Random 2nd-order polynomial, |value| <= 1 on the unit square."""
    coeffs = rng.normal(size=5)
    coeffs /= np.sum(np.abs(coeffs))
    return coeffs[0] * u + coeffs[1] * v + coeffs[2] * u**2 + coeffs[3] * u * v + coeffs[4] * v**2


def _texture(rng: np.random.Generator, matrix: int) -> np.ndarray:
    """Unit-variance noise correlated over about one pixel, float64[matrix, matrix]."""
    noise = ndimage.gaussian_filter(rng.normal(size=(matrix, matrix)), 0.7, mode="wrap")
    return noise / noise.std()


def b1_pattern(rng: np.random.Generator, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Transmit field pattern at 3 T: brighter centre, darker rim, a random tilt; in (-1, 1).

    ``u, v``: head-normalised coordinates (|u|, |v| <~ 1 over the head). tanh bounds the
    pattern smoothly (no clipping kinks); the field is ``1 + amplitude * pattern``.
    """
    centre = rng.uniform(0.5, 1.3)
    width = rng.uniform(0.5, 0.8)
    tilt_u, tilt_v = rng.normal(0.0, 0.25, 2)
    r2 = u**2 + v**2
    f = centre * (np.exp(-r2 / (2.0 * width**2)) - 0.6) + tilt_u * u + tilt_v * v
    return np.tanh(f)


# --- public entry point -----------------------------------------------------------------


def make_phantom(
    anatomy: SubjectAnatomy,
    slice_position: float,
    matrix: int = PAPER_MATRIX,
    fov_mm: float = PAPER_FOV_MM,
    seed: int = 0,
    supersample: int = 4,
    lesions: bool = False,
    b1_field: bool = True,
    variability: bool = True,
) -> Phantom:
    """Render one axial slice of a subject.

    Per-pixel values: each fine sample of tissue ``k`` gets
    ``T = T_k * subject_scale_k * (1 + drift(x, y)) * (1 + texture_cv_k * n(x, y))``
    (same for T2 and PD with their own drift and noise fields), clipped to the dictionary
    range with T2 <= T1. Each pixel then averages its ``supersample**2`` samples
    (`_pixel_averages`: M0 over the area, T1 and T2 as PD-weighted rates).

    Args:
        anatomy: the subject, from `rinq_jax.data.subjects.phantom_geometry.sample_subject`.
        slice_position: axial position in [0, 1], 0 inferior (basal ganglia level) to 1
            superior (near the vertex). Use :func:`slice_positions` to turn slice indices
            into positions.
        matrix: pixels per side (>= 8); square grid.
        fov_mm: square field of view in mm (> 0); the paper's is 300 mm.
        seed: non-negative seed of this slice's texture, drift, lesions, phase and B1.
        supersample: fine samples per pixel side (1..16) for partial volume; 1 gives no
            partial volume.
        lesions: add 1-5 small MS-like lesions in WM.
        b1_field: draw a smooth transmit field; otherwise ``b1`` is all ones.
        variability: add per-pixel texture and smooth drift; ``False`` gives every pure
            pixel of a tissue the subject's exact tissue value (for tests and figures).

    Returns the :class:`Phantom`; raises ValueError on a position outside [0, 1] or a bad
    matrix, FOV, seed or supersample.
    """
    z, matrix, fov_mm, seed, supersample = _checked_arguments(
        anatomy, slice_position, matrix, fov_mm, seed, supersample
    )
    # Slice randomness depends on subject, position and seed, never on other slices.
    z_key = int(round(z * 1_000_000))
    ss = np.random.SeedSequence([anatomy.seed, anatomy.subject_id, seed, z_key])
    rng_lesion, rng_texture, rng_drift, rng_phase, rng_b1 = (
        np.random.default_rng(s) for s in ss.spawn(5)
    )

    fine_mm = fov_mm / matrix / supersample
    xh, yh = _to_head_frame(anatomy, *_pixel_centres_mm(matrix * supersample, fine_mm, fov_mm))
    labels = render_labels(anatomy, z, xh, yh, fine_mm, rng_lesion if lesions else None)
    # Per-pixel fields in head-normalised coordinates (|u|, |v| <~ 1 inside the head).
    xp, yp = _to_head_frame(anatomy, *_pixel_centres_mm(matrix, fov_mm / matrix, fov_mm))
    u, v = xp / anatomy.head_semi_axis_lr_mm, yp / anatomy.head_semi_axis_ap_mm

    # View the fine grid as [H, s, W, s] so pixel fields broadcast as [H, 1, W, 1].
    lab = labels.reshape(matrix, supersample, matrix, supersample)
    drift_rng = rng_drift if variability else None
    t1, t2, pd = _sample_values(anatomy, lab, u, v, drift_rng, rng_texture)
    t1_map, t2_map, pd_map = _pixel_averages(t1, t2, pd)

    fractions = np.stack([(lab == k).mean(axis=(1, 3)) for k in range(N_CLASSES)], axis=0)
    tissue, mask = dominant_tissue(fractions.astype(np.float32))
    # A smooth receive phase: a random offset plus a smooth polynomial over the head.
    offset_rad, scale = rng_phase.uniform(-math.pi, math.pi), rng_phase.uniform(0.5, 2.0)
    m0 = pd_map * np.exp(1j * (offset_rad + scale * smooth_poly(rng_phase, u, v)))
    b1 = 1.0 + 0.2 * b1_pattern(rng_b1, u, v) if b1_field else np.ones((matrix, matrix))

    return Phantom(
        t1_ms=t1_map.astype(np.float32),
        t2_ms=t2_map.astype(np.float32),
        m0=m0.astype(np.complex64),
        b1=b1.astype(np.float32),
        mask=mask,
        tissue=tissue,
        fractions=fractions.astype(np.float32),
        subject_id=anatomy.subject_id,
        slice_position=z,
        fov_mm=fov_mm,
    )


def _checked_arguments(anatomy, slice_position, matrix, fov_mm, seed, supersample):
    """`make_phantom`'s arguments checked: (z, matrix, fov_mm, seed, supersample)."""
    if not isinstance(anatomy, SubjectAnatomy):
        raise ValueError(f"anatomy must be a SubjectAnatomy, got {type(anatomy).__name__}")
    if isinstance(slice_position, bool) or not isinstance(
        slice_position, (int, float, np.integer, np.floating)
    ):
        raise ValueError(f"slice_position must be a number in [0, 1], got {slice_position!r}")
    z = float(slice_position)
    if not 0.0 <= z <= 1.0:
        raise ValueError(f"slice_position must lie in [0, 1] (inferior..superior), got {z}")
    matrix = checked_number("matrix", matrix, 8, integer=True)
    supersample = checked_number("supersample", supersample, 1, integer=True)
    if supersample > 16:
        raise ValueError(f"supersample must be <= 16, got {supersample}")
    seed = checked_number("seed", seed, 0, integer=True)
    if not (isinstance(fov_mm, (int, float, np.integer, np.floating)) and fov_mm > 0):
        raise ValueError(f"fov_mm must be a positive number, got {fov_mm!r}")
    if not math.isfinite(float(fov_mm)):
        raise ValueError(f"fov_mm must be finite, got {fov_mm!r}")
    return z, matrix, float(fov_mm), seed, supersample


def _sample_values(anatomy, lab, u, v, rng_drift, rng_texture):
    """T1, T2 (ms) and PD of every fine sample, float[H, s, W, s], from its label ``lab``.

    The subject's tissue values times, unless ``rng_drift`` is None, a smooth drift over
    the head-normalised pixel coordinates ``u, v`` and a per-pixel texture; clipped to the
    dictionary range with T2 <= T1; air gets a placeholder T of 1 ms (and PD 0).
    """
    t1 = _T1_MS[lab] * np.asarray(anatomy.t1_scale)[lab]
    t2 = _T2_MS[lab] * np.asarray(anatomy.t2_scale)[lab]
    pd = _PD[lab] * np.asarray(anatomy.pd_scale)[lab]
    if rng_drift is not None:
        cv = _TEXTURE_CV[lab]
        for field, amp in ((t1, _DRIFT_T1), (t2, _DRIFT_T2), (pd, _DRIFT_PD)):
            drift = np.clip(amp * smooth_poly(rng_drift, u, v), -1.5 * amp, 1.5 * amp)
            noise = np.clip(_texture(rng_texture, lab.shape[0]), -3.0, 3.0)
            field *= (1.0 + drift)[:, None, :, None] * (1.0 + cv * noise[:, None, :, None])
    tissue_present = lab != BACKGROUND
    t1 = np.where(tissue_present, np.clip(t1, *DICT_T1_RANGE_MS), 1.0)
    t2 = np.where(tissue_present, np.clip(t2, DICT_T2_RANGE_MS[0], DICT_T2_RANGE_MS[1]), 1.0)
    return t1, np.minimum(t2, t1), pd


def _pixel_averages(t1, t2, pd):
    """Pixel maps (t1_ms, t2_ms, pd) float[H, W] of fine samples float[H, s, W, s].

    * PD (M0): linear mean over the pixel's area (air counts as 0), since the signal is
      the sum of the magnetisation in the pixel.
    * T1 and T2: PD-weighted mean of the *rates*, ``1 / T = sum(pd_i / T_i) / sum(pd_i)``.
      The summed magnetisation of a mixed pixel starts to relax at exactly this rate (the
      initial slope of a sum of exponentials), and it is the effective rate of compartments
      in fast exchange (Zimmerman & Brittin, J Phys Chem 61:1328 (1957)). It weights by
      water, not area, because the protons carry the signal. It also keeps each pixel
      between its components' values and T2 <= T1. Pixels are still single-compartment:
      signals simulated from these maps are not the exact two-compartment sum (use the
      phantom's ``fractions`` for that). Air pixels get T = 0.
    """
    pd_sum = pd.sum(axis=(1, 3))
    inside = pd_sum > 0.0
    # Air samples have pd = 0 and a placeholder T of 1 ms, so they add nothing to the rates.
    rate1 = np.where(inside, (pd / t1).sum(axis=(1, 3)), 1.0)
    rate2 = np.where(inside, (pd / t2).sum(axis=(1, 3)), 1.0)
    t1_map = np.where(inside, pd_sum / rate1, 0.0)
    t2_map = np.where(inside, pd_sum / rate2, 0.0)
    return t1_map, t2_map, pd_sum / (pd.shape[1] * pd.shape[3])


def _pixel_centres_mm(n: int, spacing_mm: float, fov_mm: float):
    """Pixel centres (x float[1, n], y float[n, 1]) in mm of an n x n grid over the FOV."""
    coord = -fov_mm / 2.0 + (np.arange(n) + 0.5) * spacing_mm
    return coord[None, :], coord[:, None]


def _to_head_frame(anatomy: SubjectAnatomy, x_mm: np.ndarray, y_mm: np.ndarray):
    """Scanner (image) coordinates -> head frame: undo the head's offset and rotation."""
    rot = math.radians(anatomy.rotation_deg)
    dx, dy = x_mm - anatomy.offset_mm[0], y_mm - anatomy.offset_mm[1]
    return math.cos(rot) * dx + math.sin(rot) * dy, -math.sin(rot) * dx + math.cos(rot) * dy


def _save_figure(path: str, subject_id: int = 0, seed: int = 0) -> None:
    """Save one subject's T1, T2, |M0|, label and B1 maps, and T1 of three more slices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    crop = np.s_[16:240, 16:240]
    colours = ["black", "#f0e0c0", "#a0a0a0", "#3070ff", "#ffd000", "#c04040", "#ffffff", "#ff00ff"]
    panels = []
    p = make_phantom(sample_subject(subject_id, seed), 0.5, lesions=True, seed=seed)
    head = p.tissue > 0
    panels = [
        (np.where(head, p.t1_ms, np.nan), "T1 [ms]", "magma", 0, 3000),
        (np.where(head, p.t2_ms, np.nan), "T2 [ms]", "viridis", 0, 200),
        (np.abs(p.m0), "|M0| (CSF = 1)", "gray", 0, 1),
        (p.tissue, "tissue", ListedColormap(colours), -0.5, N_CLASSES - 0.5),
        (np.where(head, p.b1, np.nan), "B1 (relative)", "coolwarm", 0.8, 1.2),
    ]
    for sid, z in ((1, 0.25), (2, 0.6), (3, 0.85)):
        q = make_phantom(sample_subject(sid, seed), z, seed=seed)
        panels.append(
            (np.where(q.tissue > 0, q.t1_ms, np.nan), f"subject {sid}, z={z}: T1", "magma", 0, 3000)
        )
    fig, axes = plt.subplots(2, 4, figsize=(10, 5.4))
    for ax, (img, title, cmap, lo, hi) in zip(axes.ravel(), panels, strict=True):
        im = ax.imshow(img[crop], cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        bar.ax.tick_params(labelsize=7)
        if title == "tissue":
            bar.set_ticks(range(N_CLASSES), labels=[TISSUES[k] for k in range(N_CLASSES)])
    fig.suptitle(
        f"rinq_jax.data.subjects.phantom: subject {subject_id}, z=0.5 with lesions; 256 x 256, FOV 300 mm",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


if __name__ == "__main__":
    _save_figure(sys.argv[1] if len(sys.argv) > 1 else "docs/phantom.png")
