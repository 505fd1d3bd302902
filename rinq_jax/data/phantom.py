"""Procedural axial brain phantoms at 3 T for MR fingerprinting.

The paper trains on axial brain slices of 8 volunteers (FOV 300 mm, 256 x 256, 1.17 mm
pixels; Hoppe, Thamm et al., MICCAI 2019). Those scans are not public, so this module draws
in-vivo-like slices instead: any number of subjects (:func:`sample_subject`), each with its
own head size and shape, scalp, skull, cortical folding, ventricle size, pose and tissue
values, cut at any axial position (:func:`make_phantom`).

Geometry (head frame, mm; x left-right, y anterior(-)..posterior(+), images show anterior
at the top). From the outside in, along rays from the head centre:

    skin/muscle | scalp fat | (temporalis muscle, lateral, inferior slices) |
    skull: outer table (bone), diploe (marrow fat), inner table (bone) |
    subarachnoid CSF | cortex (GM, a ribbon of fixed thickness that also lines every
    sulcus and the interhemispheric fissure) | WM with deep GM nuclei, ventricles and
    optional lesions.

Sulci are CSF-filled clefts at subject-specific angles whose depth changes smoothly from
slice to slice; ventricles, thalamus, caudate and putamen appear only around the slice
levels where they lie. The head's cross-section shrinks towards the vertex.

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
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from scipy import ndimage

__all__ = [
    "BACKGROUND",
    "BONE",
    "BRAIN_LABELS",
    "CSF",
    "DICT_T1_RANGE_MS",
    "DICT_T2_RANGE_MS",
    "FAT",
    "GM",
    "LESION",
    "MUSCLE_SKIN",
    "N_CLASSES",
    "TISSUES",
    "TISSUE_PROPERTIES",
    "WM",
    "Phantom",
    "SubjectAnatomy",
    "TissueProperties",
    "b1_pattern",
    "dominant_tissue",
    "make_phantom",
    "sample_subject",
    "slice_positions",
    "smooth_poly",
]

# Tissue labels (values of ``Phantom.tissue``; index of ``Phantom.fractions``).
BACKGROUND, WM, GM, CSF, FAT, MUSCLE_SKIN, BONE, LESION = range(8)
N_CLASSES = 8

TISSUES: Mapping[int, str] = MappingProxyType(
    {
        BACKGROUND: "background",
        WM: "wm",
        GM: "gm",
        CSF: "csf",
        FAT: "fat",
        MUSCLE_SKIN: "muscle_skin",
        BONE: "bone",
        LESION: "lesion",
    }
)
"""Label -> tissue name for ``Phantom.tissue``."""

BRAIN_LABELS: tuple[int, ...] = (WM, GM, CSF, LESION)
"""Labels inside the brain mask: the pixels a network is trained and evaluated on."""

# The paper's dictionary range (Hoppe et al. 2019, Sect. "Ground-truth data"): every phantom
# value must be representable so that dictionary matching can recover it.
DICT_T1_RANGE_MS = (10.0, 4500.0)
DICT_T2_RANGE_MS = (2.0, 3000.0)


@dataclass(frozen=True)
class TissueProperties:
    """Population mean relaxation times and proton density of one tissue at 3 T.

    Attributes:
        name: tissue name, as in :data:`TISSUES`.
        t1_ms: population mean longitudinal relaxation time, ms.
        t2_ms: population mean transverse relaxation time, ms.
        pd: proton density (water content) relative to CSF = 1.
        subject_cv: relative standard deviation of the per-subject mean (T1 and T2 each;
            PD gets half of it).
        texture_cv: relative standard deviation of pixel-to-pixel texture.

    """

    name: str
    t1_ms: float
    t2_ms: float
    pd: float
    subject_cv: float
    texture_cv: float


# Values at 3 T. Brain tissue: T1 from Wansapura et al., JMRI 9:531 (1999) (WM 832 ms, GM
# 1331 ms) and Lu et al., JMRI 22:13 (2005) (CSF ~4160 ms); T2 chosen inside the span between
# spin-echo values (Wansapura 1999; Stanisz et al., MRM 54:507 (2005)) and the lower MRF-FISP
# in-vivo values (Jiang et al., MRM 74:1621 (2015)), since the phantom stands in for MRF
# ground truth. Fat and muscle: Gold et al., AJR 183:343 (2004) (subcutaneous fat T1 ~370-380
# ms; muscle T1 ~1400 ms, T2 ~32 ms) and Stanisz 2005 (muscle T1 1412 ms, T2 50 ms); skin is
# lumped with muscle. PD: water content WM 0.69, GM 0.80 (Neeb et al., NeuroImage 31:1156
# (2006)). Cortical bone: T1 ~140-260 ms, T2* ~0.4-0.5 ms (Reichert et al., MRI 23:611
# (2005)); its T2 is raised to the dictionary's 2 ms floor, and with PD 0.05 it is nearly
# dark, as in a FISP scan. Lesion: an MS-like demyelinating lesion, values chosen inside the
# range reported for chronic lesions at 3 T (T1 ~1100-1600 ms, T2 ~90-180 ms); no single
# study. Diploe (skull marrow) uses the fat class.
TISSUE_PROPERTIES: Mapping[int, TissueProperties] = MappingProxyType(
    {
        BACKGROUND: TissueProperties("background", 0.0, 0.0, 0.0, 0.0, 0.0),
        WM: TissueProperties("wm", 830.0, 60.0, 0.69, 0.04, 0.02),
        GM: TissueProperties("gm", 1330.0, 85.0, 0.80, 0.04, 0.025),
        CSF: TissueProperties("csf", 4100.0, 1800.0, 1.00, 0.015, 0.01),
        FAT: TissueProperties("fat", 375.0, 95.0, 0.90, 0.04, 0.03),
        MUSCLE_SKIN: TissueProperties("muscle_skin", 1350.0, 40.0, 0.75, 0.04, 0.03),
        BONE: TissueProperties("bone", 250.0, 2.0, 0.05, 0.05, 0.03),
        LESION: TissueProperties("lesion", 1350.0, 130.0, 0.80, 0.08, 0.04),
    }
)
"""Label -> population values at 3 T (citations in the module source)."""

_T1_MS = np.array([TISSUE_PROPERTIES[k].t1_ms for k in range(N_CLASSES)])
_T2_MS = np.array([TISSUE_PROPERTIES[k].t2_ms for k in range(N_CLASSES)])
_PD = np.array([TISSUE_PROPERTIES[k].pd for k in range(N_CLASSES)])
_TEXTURE_CV = np.array([TISSUE_PROPERTIES[k].texture_cv for k in range(N_CLASSES)])

# Smooth drift amplitudes (max relative change across the head): slow spatial variation of
# tissue properties, e.g. WM T1 varies with fibre density and myelination along the brain.
_DRIFT_T1, _DRIFT_T2, _DRIFT_PD = 0.03, 0.03, 0.02


@dataclass(frozen=True)
class SubjectAnatomy:
    """One subject's anatomy and tissue offsets; drawn by :func:`sample_subject`.

    Lengths in mm, angles in radians unless named ``_deg``. Head semi-axes are those of the
    outer skin surface at the widest axial level; other slices scale them down.

    Attributes:
        subject_id: index of the subject (non-negative).
        seed: seed the subject was drawn with.
        head_semi_axis_lr_mm: left-right semi-axis of the head (half the head breadth).
        head_semi_axis_ap_mm: anterior-posterior semi-axis (half the head length).
        shape_amplitudes: relative amplitudes of radial harmonics 2, 3, 4 of the outline.
        shape_phases_rad: phases of those harmonics.
        skin_mm: skin (and galea) thickness, labelled muscle/skin.
        scalp_fat_mm: subcutaneous fat thickness.
        temporalis_mm: maximum temporalis muscle thickness (lateral, inferior slices).
        skull_mm: skull thickness (inner and outer table plus diploe).
        diploe_fraction: fraction of the skull that is diploe (marrow, labelled fat).
        csf_mm: subarachnoid CSF between skull and cortex (grows with age/atrophy).
        cortex_mm: cortical (GM) ribbon thickness.
        fold_amplitude_mm: typical sulcus depth (cortex folding amplitude).
        fold_frequency: number of sulci around the full cortex in one slice.
        sulcus_width_mm: width of the CSF in a sulcus.
        sulcus_angles_rad: elliptic angle of each sulcus at mid-level.
        sulcus_depth_scales: depth of each sulcus relative to ``fold_amplitude_mm``.
        sulcus_z_phases_rad: phase of each sulcus's depth modulation along z.
        sulcus_drifts_rad: change of each sulcus's angle from z=0 to z=1.
        fissure_width_mm: width of the interhemispheric fissure.
        fissure_depth_fraction: depth of the fissure, fraction of the brain's AP semi-axis
            (below the corpus callosum; it splits the hemispheres fully near the vertex).
        ventricle_scale: ventricle size relative to a young adult (about 0.6-1.8).
        rotation_deg: in-plane head rotation.
        offset_mm: in-plane head position (x, y) relative to the FOV centre.
        t1_scale, t2_scale, pd_scale: per-tissue multiplicative offsets of this subject
            from the population means (indexed by label; background is 1).

    """

    subject_id: int
    seed: int
    head_semi_axis_lr_mm: float
    head_semi_axis_ap_mm: float
    shape_amplitudes: tuple[float, ...]
    shape_phases_rad: tuple[float, ...]
    skin_mm: float
    scalp_fat_mm: float
    temporalis_mm: float
    skull_mm: float
    diploe_fraction: float
    csf_mm: float
    cortex_mm: float
    fold_amplitude_mm: float
    fold_frequency: float
    sulcus_width_mm: float
    sulcus_angles_rad: tuple[float, ...]
    sulcus_depth_scales: tuple[float, ...]
    sulcus_z_phases_rad: tuple[float, ...]
    sulcus_drifts_rad: tuple[float, ...]
    fissure_width_mm: float
    fissure_depth_fraction: float
    ventricle_scale: float
    rotation_deg: float
    offset_mm: tuple[float, float]
    t1_scale: tuple[float, ...]
    t2_scale: tuple[float, ...]
    pd_scale: tuple[float, ...]


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
        mask: bool[H, W], brain pixels (``tissue`` in :data:`BRAIN_LABELS`, i.e. brain
            classes make up at least half of the pixel).
        tissue: uint8[H, W], label of the dominant tissue (see :data:`TISSUES`).
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


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _truncated_normal(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float):
    """One normal draw clipped to [lo, hi] (clipping keeps the draw count fixed)."""
    return float(np.clip(rng.normal(mean, sd), lo, hi))


def sample_subject(subject_id: int, seed: int = 0) -> SubjectAnatomy:
    """Draw one subject's anatomy, independent of all other subjects.

    Subject ``k`` is drawn from ``numpy.random.SeedSequence([seed, k])``, so it is the same
    whichever other subjects are made and in whatever order.

    Sizes follow adult head dimensions (breadth ~140-165 mm, length ~175-210 mm), scalp and
    skull thickness (skull ~5-8 mm), cortical thickness 2.3-3.2 mm and sulcus depth ~1-2.5 cm;
    ventricle size varies by a factor ~3 across adults (age, atrophy; the paper's volunteers
    were 43 +- 15 years).

    Args:
        subject_id: non-negative subject index.
        seed: non-negative seed of the whole cohort.

    Returns:
        The subject's :class:`SubjectAnatomy`.

    Raises:
        ValueError: if ``subject_id`` or ``seed`` is not a non-negative integer.

    """
    subject_id = _check_int("subject_id", subject_id, 0)
    seed = _check_int("seed", seed, 0)
    rng = np.random.default_rng(np.random.SeedSequence([seed, subject_id]))

    n_sulci = int(rng.integers(26, 41))
    spacing = 2.0 * math.pi / n_sulci
    angles = (np.arange(n_sulci) + rng.uniform(-0.3, 0.3, n_sulci)) * spacing
    angles = (angles + rng.uniform(0.0, 2.0 * math.pi)) % (2.0 * math.pi)

    def tissue_scales(cv_factor: float) -> tuple[float, ...]:
        out = [1.0]
        for label in range(1, N_CLASSES):
            sd = TISSUE_PROPERTIES[label].subject_cv * cv_factor
            out.append(_truncated_normal(rng, 1.0, sd, 1.0 - 2.5 * sd, 1.0 + 2.5 * sd))
        return tuple(out)

    return SubjectAnatomy(
        subject_id=subject_id,
        seed=seed,
        head_semi_axis_lr_mm=_truncated_normal(rng, 75.0, 4.0, 66.0, 84.0),
        head_semi_axis_ap_mm=_truncated_normal(rng, 95.0, 5.0, 84.0, 106.0),
        shape_amplitudes=tuple(float(v) for v in rng.normal(0.0, 0.015, 3)),
        shape_phases_rad=tuple(float(v) for v in rng.uniform(0.0, 2.0 * math.pi, 3)),
        skin_mm=float(rng.uniform(1.5, 3.0)),
        scalp_fat_mm=float(rng.uniform(2.5, 5.5)),
        temporalis_mm=float(rng.uniform(4.0, 9.0)),
        skull_mm=float(rng.uniform(5.0, 8.0)),
        diploe_fraction=float(rng.uniform(0.25, 0.45)),
        csf_mm=float(rng.uniform(1.0, 3.0)),
        cortex_mm=float(rng.uniform(2.3, 3.2)),
        fold_amplitude_mm=float(rng.uniform(12.0, 22.0)),
        fold_frequency=float(n_sulci),
        sulcus_width_mm=float(rng.uniform(1.0, 2.0)),
        sulcus_angles_rad=tuple(float(v) for v in angles),
        sulcus_depth_scales=tuple(float(v) for v in rng.uniform(0.5, 1.0, n_sulci)),
        sulcus_z_phases_rad=tuple(float(v) for v in rng.uniform(0.0, 2.0 * math.pi, n_sulci)),
        sulcus_drifts_rad=tuple(float(v) for v in rng.normal(0.0, 0.1, n_sulci)),
        fissure_width_mm=float(rng.uniform(1.5, 3.0)),
        fissure_depth_fraction=float(rng.uniform(0.25, 0.45)),
        ventricle_scale=float(np.clip(math.exp(rng.normal(0.0, 0.3)), 0.6, 1.8)),
        rotation_deg=_truncated_normal(rng, 0.0, 4.0, -10.0, 10.0),
        offset_mm=(
            _truncated_normal(rng, 0.0, 4.0, -10.0, 10.0),
            _truncated_normal(rng, 0.0, 4.0, -10.0, 10.0),
        ),
        t1_scale=tissue_scales(1.0),
        t2_scale=tissue_scales(1.0),
        pd_scale=tissue_scales(0.5),
    )


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
    n_slices = _check_int("n_slices", n_slices, 1)
    if not 0.0 <= first <= last <= 1.0:
        raise ValueError(f"need 0 <= first <= last <= 1, got first={first}, last={last}")
    if n_slices == 1:
        return np.array([(first + last) / 2.0])
    return np.linspace(first, last, n_slices)


# --- slice-level profiles (z in [0, 1]) -------------------------------------------------


def _head_scale(z: float) -> float:
    """Cross-section scale of the head: an ellipsoid whose widest level is z = 0.3."""
    return math.sqrt(max(1.0 - ((z - 0.3) / 0.85) ** 2, 0.05))


def _bump(z: float, centre: float, width: float) -> float:
    return math.exp(-(((z - centre) / width) ** 2))


# --- label rendering --------------------------------------------------------------------


def _outline(anatomy: SubjectAnatomy, theta: np.ndarray) -> np.ndarray:
    """Relative radius of the head outline at elliptic angle ``theta``."""
    shape = np.ones_like(theta)
    for k, (amp, phase) in enumerate(
        zip(anatomy.shape_amplitudes, anatomy.shape_phases_rad, strict=True), start=2
    ):
        shape += amp * np.cos(k * theta + phase)
    return shape


def _in_ellipse(x, y, cx, cy, ax, ay):
    return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 < 1.0


def _render_labels(
    anatomy: SubjectAnatomy,
    z: float,
    xh: np.ndarray,
    yh: np.ndarray,
    fine_mm: float,
    lesion_rng: np.random.Generator | None,
) -> np.ndarray:
    """Tissue label of every fine sample at head-frame coordinates (xh, yh) in mm."""
    scale = _head_scale(z)
    a = anatomy.head_semi_axis_lr_mm * scale
    b = anatomy.head_semi_axis_ap_mm * scale
    theta = np.arctan2(yh / b, xh / a)
    shape = _outline(anatomy, theta)
    radius_mm = np.hypot(xh, yh)
    # Depth below the skin along the ray from the head centre; close to the normal depth
    # for the near-circular outlines of heads.
    surface_mm = shape * np.hypot(a * np.cos(theta), b * np.sin(theta))
    depth = surface_mm - radius_mm

    # Temporalis: on the lateral skull, fading out above the temporal fossa.
    lateral = np.clip((np.abs(np.cos(theta)) - 0.55) / 0.35, 0.0, 1.0) ** 2
    temporal_mm = anatomy.temporalis_mm * float(np.clip((0.6 - z) / 0.3, 0.0, 1.0)) * lateral

    d_fat = anatomy.skin_mm
    d_muscle = d_fat + anatomy.scalp_fat_mm
    d_skull = d_muscle + temporal_mm
    table_mm = anatomy.skull_mm * (1.0 - anatomy.diploe_fraction) / 2.0
    d_diploe = d_skull + table_mm
    d_inner = d_diploe + anatomy.skull_mm * anatomy.diploe_fraction
    d_csf = d_inner + table_mm
    d_pial = d_csf + anatomy.csf_mm

    labels = np.zeros(xh.shape, np.uint8)
    labels[depth >= 0.0] = MUSCLE_SKIN
    labels[depth >= d_fat] = FAT
    labels[depth >= d_muscle] = MUSCLE_SKIN
    labels[depth >= d_skull] = BONE
    labels[depth >= d_diploe] = FAT
    labels[depth >= d_inner] = BONE
    labels[depth >= d_csf] = CSF
    brain = depth >= d_pial

    # Sulci: CSF clefts at fixed angles whose depth changes smoothly with z, so neighbouring
    # slices share most sulci and distant ones do not.
    angles = np.asarray(anatomy.sulcus_angles_rad) + np.asarray(anatomy.sulcus_drifts_rad) * z
    depths = (
        anatomy.fold_amplitude_mm
        * np.asarray(anatomy.sulcus_depth_scales)
        * (0.65 + 0.35 * np.sin(2.0 * math.pi * 1.5 * z + np.asarray(anatomy.sulcus_z_phases_rad)))
    )
    order = np.argsort(angles % (2.0 * math.pi))
    angles, depths = angles[order] % (2.0 * math.pi), depths[order]
    near = brain & (depth < d_pial + depths.max())
    th = theta[near] % (2.0 * math.pi)
    right = np.searchsorted(angles, th) % len(angles)
    in_sulcus = np.zeros(th.shape, bool)
    for idx in (right - 1, right):  # the nearest sulcus is one of the two neighbours
        delta = np.angle(np.exp(1j * (th - angles[idx])))
        in_sulcus |= (np.abs(delta) * radius_mm[near] < anatomy.sulcus_width_mm / 2.0) & (
            depth[near] < d_pial[near] + depths[idx]
        )
    brain[near] &= ~in_sulcus

    # Interhemispheric fissure: anterior and posterior clefts along the midline; above the
    # corpus callosum (z > 0.6) it splits the hemispheres completely.
    brain_b = float(np.max(np.where(brain, np.abs(yh), 0.0), initial=0.0))
    fissure_depth = anatomy.fissure_depth_fraction + (1.0 - anatomy.fissure_depth_fraction) * float(
        np.clip((z - 0.6) / 0.2, 0.0, 1.0)
    )
    y_cut = brain_b * (1.0 - fissure_depth)
    brain &= ~((np.abs(xh) < anatomy.fissure_width_mm / 2.0) & (np.abs(yh) >= y_cut))

    # Cortex: the ribbon within cortex_mm of any outer CSF (surface, sulci, fissure).
    labels[brain] = WM
    if brain.any():
        rows = np.flatnonzero(brain.any(axis=1))
        cols = np.flatnonzero(brain.any(axis=0))
        r0, r1 = max(rows[0] - 2, 0), rows[-1] + 3
        c0, c1 = max(cols[0] - 2, 0), cols[-1] + 3
        dist = ndimage.distance_transform_edt(brain[r0:r1, c0:c1], sampling=fine_mm)
        crop = labels[r0:r1, c0:c1]
        crop[brain[r0:r1, c0:c1] & (dist <= anatomy.cortex_mm)] = GM

    white = labels == WM
    vs = anatomy.ventricle_scale
    # Deep grey nuclei (labelled GM), only inside WM so the cortex stays intact.
    for centre, width, (cx, cy), (ax, ay) in (
        (0.50, 0.10, (8.0 + 9.0 * vs, -20.0), (4.5, 8.0)),  # caudate heads
        (0.36, 0.07, (10.0, 8.0), (8.0, 13.0)),  # thalami
        (0.40, 0.08, (24.0, -2.0), (5.0, 13.0)),  # putamen
    ):
        p = _bump(z, centre, width)
        if p > 0.3:
            s = math.sqrt(p)
            nucleus = _in_ellipse(np.abs(xh), yh, cx, cy, ax * s, ay * s)
            labels[white & nucleus] = GM

    # Lateral ventricles: banana-shaped, widest at mid-level, scaled by ventricle_scale.
    p = _bump(z, 0.5, 0.15) * vs
    if p > 0.15:
        half_lr, half_ap, y0 = 4.5 * p, 26.0 * math.sqrt(p), -2.0
        t = (yh - y0) / half_ap
        cx = half_lr + 1.0 + 6.0 * t**2
        ventricle = ((np.abs(xh) - cx) / half_lr) ** 2 + t**2 < 1.0
        labels[ventricle & (labels != BACKGROUND) & brain] = CSF
    p3 = _bump(z, 0.33, 0.06) * vs
    if p3 > 0.2:  # third ventricle: a midline slit between the thalami
        slit = (np.abs(xh) < 1.2 * p3) & (np.abs(yh - 5.0) < 12.0)
        labels[slit & brain] = CSF

    if lesion_rng is not None:
        _add_lesions(labels, xh, yh, lesion_rng)
    return labels


def _add_lesions(
    labels: np.ndarray, xh: np.ndarray, yh: np.ndarray, rng: np.random.Generator
) -> None:
    """Paint 1-5 small elliptical MS-like lesions into WM (in place)."""
    white = np.flatnonzero(labels == WM)
    n_lesions = int(rng.integers(1, 6))
    centres = rng.integers(0, max(white.size, 1), n_lesions)
    radii = rng.uniform(1.5, 4.5, n_lesions)
    aspects = rng.uniform(1.0, 2.0, n_lesions)
    angles = rng.uniform(0.0, math.pi, n_lesions)
    if white.size == 0:
        return
    xf, yf = xh.ravel(), yh.ravel()
    for c, r, asp, ang in zip(centres, radii, aspects, angles, strict=True):
        cx, cy = xf[white[c]], yf[white[c]]
        u = (xh - cx) * math.cos(ang) + (yh - cy) * math.sin(ang)
        v = -(xh - cx) * math.sin(ang) + (yh - cy) * math.cos(ang)
        labels[((u / (r * asp)) ** 2 + (v / r) ** 2 < 1.0) & (labels == WM)] = LESION


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
    matrix: int = 256,
    fov_mm: float = 300.0,
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
    range with T2 <= T1. Each pixel then averages its ``supersample**2`` samples:

    * M0 (proton density): linear mean over the pixel's area (air counts as 0), since the
      signal is the sum of the magnetisation in the pixel.
    * T1 and T2: PD-weighted mean of the *rates*,
      ``1 / T = sum(pd_i / T_i) / sum(pd_i)``. The summed magnetisation of a mixed pixel
      starts to relax at exactly this rate (the initial slope of a sum of exponentials),
      and it is the effective rate of compartments in fast exchange (Zimmerman & Brittin,
      J Phys Chem 61:1328 (1957)). It weights by water, not area, because the protons carry
      the signal. It also keeps each pixel between its components' values and T2 <= T1.
      Pixels are still single-compartment: signals simulated from these maps are not the
      exact two-compartment sum (use ``fractions`` for that).

    Args:
        anatomy: the subject, from :func:`sample_subject`.
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

    Returns:
        The :class:`Phantom`.

    Raises:
        ValueError: on a position outside [0, 1], a bad matrix, FOV, seed or supersample.

    """
    if not isinstance(anatomy, SubjectAnatomy):
        raise ValueError(f"anatomy must be a SubjectAnatomy, got {type(anatomy).__name__}")
    if isinstance(slice_position, bool) or not isinstance(
        slice_position, (int, float, np.integer, np.floating)
    ):
        raise ValueError(f"slice_position must be a number in [0, 1], got {slice_position!r}")
    z = float(slice_position)
    if not 0.0 <= z <= 1.0:
        raise ValueError(f"slice_position must lie in [0, 1] (inferior..superior), got {z}")
    matrix = _check_int("matrix", matrix, 8)
    supersample = _check_int("supersample", supersample, 1)
    if supersample > 16:
        raise ValueError(f"supersample must be <= 16, got {supersample}")
    seed = _check_int("seed", seed, 0)
    if not (isinstance(fov_mm, (int, float, np.integer, np.floating)) and fov_mm > 0):
        raise ValueError(f"fov_mm must be a positive number, got {fov_mm!r}")
    if not math.isfinite(float(fov_mm)):
        raise ValueError(f"fov_mm must be finite, got {fov_mm!r}")
    fov_mm = float(fov_mm)

    # Slice randomness depends on subject, position and seed, never on other slices.
    z_key = int(round(z * 1_000_000))
    ss = np.random.SeedSequence([anatomy.seed, anatomy.subject_id, seed, z_key])
    rng_lesion, rng_texture, rng_drift, rng_phase, rng_b1 = (
        np.random.default_rng(s) for s in ss.spawn(5)
    )

    pixel_mm = fov_mm / matrix
    fine_mm = pixel_mm / supersample
    n_fine = matrix * supersample
    coord = -fov_mm / 2.0 + (np.arange(n_fine) + 0.5) * fine_mm
    xh, yh = _to_head_frame(anatomy, coord[None, :], coord[:, None])
    labels = _render_labels(anatomy, z, xh, yh, fine_mm, rng_lesion if lesions else None)

    # Per-pixel fields in head-normalised coordinates (|u|, |v| <~ 1 inside the head).
    pix = -fov_mm / 2.0 + (np.arange(matrix) + 0.5) * pixel_mm
    xp, yp = _to_head_frame(anatomy, pix[None, :], pix[:, None])
    u, v = xp / anatomy.head_semi_axis_lr_mm, yp / anatomy.head_semi_axis_ap_mm

    # View the fine grid as [H, s, W, s] so pixel fields broadcast as [H, 1, W, 1].
    lab = labels.reshape(matrix, supersample, matrix, supersample)
    t1 = _T1_MS[lab] * np.asarray(anatomy.t1_scale)[lab]
    t2 = _T2_MS[lab] * np.asarray(anatomy.t2_scale)[lab]
    pd = _PD[lab] * np.asarray(anatomy.pd_scale)[lab]
    if variability:
        cv = _TEXTURE_CV[lab]
        for field, amp in ((t1, _DRIFT_T1), (t2, _DRIFT_T2), (pd, _DRIFT_PD)):
            drift = np.clip(amp * smooth_poly(rng_drift, u, v), -1.5 * amp, 1.5 * amp)
            noise = np.clip(_texture(rng_texture, matrix), -3.0, 3.0)
            field *= (1.0 + drift)[:, None, :, None] * (1.0 + cv * noise[:, None, :, None])
    tissue_present = lab != BACKGROUND
    t1 = np.where(tissue_present, np.clip(t1, *DICT_T1_RANGE_MS), 1.0)
    t2 = np.where(tissue_present, np.clip(t2, DICT_T2_RANGE_MS[0], DICT_T2_RANGE_MS[1]), 1.0)
    t2 = np.minimum(t2, t1)

    pd_sum = pd.sum(axis=(1, 3))
    inside = pd_sum > 0.0
    # Air samples have pd = 0 and a placeholder T of 1 ms, so they add nothing to the rates.
    rate1 = np.where(inside, (pd / t1).sum(axis=(1, 3)), 1.0)
    rate2 = np.where(inside, (pd / t2).sum(axis=(1, 3)), 1.0)
    t1_map = np.where(inside, pd_sum / rate1, 0.0)
    t2_map = np.where(inside, pd_sum / rate2, 0.0)
    pd_map = pd_sum / supersample**2

    fractions = np.stack([(lab == k).mean(axis=(1, 3)) for k in range(N_CLASSES)], axis=0).astype(
        np.float32
    )
    tissue, mask = dominant_tissue(fractions)

    phase = rng_phase.uniform(-math.pi, math.pi) + rng_phase.uniform(0.5, 2.0) * smooth_poly(
        rng_phase, u, v
    )
    m0 = (pd_map * np.exp(1j * phase)).astype(np.complex64)
    b1 = 1.0 + 0.2 * b1_pattern(rng_b1, u, v) if b1_field else np.ones((matrix, matrix))

    return Phantom(
        t1_ms=t1_map.astype(np.float32),
        t2_ms=t2_map.astype(np.float32),
        m0=m0,
        b1=b1.astype(np.float32),
        mask=mask,
        tissue=tissue,
        fractions=fractions,
        subject_id=anatomy.subject_id,
        slice_position=z,
        fov_mm=fov_mm,
    )


def _to_head_frame(anatomy: SubjectAnatomy, x_mm: np.ndarray, y_mm: np.ndarray):
    """Scanner (image) coordinates -> head frame: undo the head's offset and rotation."""
    rot = math.radians(anatomy.rotation_deg)
    dx, dy = x_mm - anatomy.offset_mm[0], y_mm - anatomy.offset_mm[1]
    return math.cos(rot) * dx + math.sin(rot) * dy, -math.sin(rot) * dx + math.cos(rot) * dy


def dominant_tissue(fractions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label map and brain mask from area fractions.

    A pixel is brain when brain classes cover at least half of it; its label is then the
    largest brain class, otherwise the largest non-brain class. Mask and labels therefore
    always agree (``mask == isin(tissue, BRAIN_LABELS)``).
    """
    is_brain = np.zeros(N_CLASSES, bool)
    is_brain[list(BRAIN_LABELS)] = True
    brain_fraction = fractions[is_brain].sum(axis=0)
    mask = brain_fraction >= 0.5
    brain_best = np.where(is_brain[:, None, None], fractions, -1.0).argmax(axis=0)
    other_best = np.where(is_brain[:, None, None], -1.0, fractions).argmax(axis=0)
    tissue = np.where(mask, brain_best, other_best).astype(np.uint8)
    return tissue, mask


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
        f"rinq_jax.data.phantom: subject {subject_id}, z=0.5 with lesions; 256 x 256, FOV 300 mm",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


if __name__ == "__main__":
    import sys

    _save_figure(sys.argv[1] if len(sys.argv) > 1 else "docs/phantom.png")
