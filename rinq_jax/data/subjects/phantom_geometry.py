"""Procedural head geometry of the brain phantoms: subjects and the tissue label of each point.

A subject (:func:`sample_subject`) has its own head size and shape, scalp, skull, cortical
folding, ventricle size, pose and tissue values; :func:`render_labels` gives the tissue label
(`rinq_jax.data.subjects.tissues`) of any point of an axial slice through it, which
`rinq_jax.data.subjects.phantom.make_phantom` renders into maps.

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

Subject ``k`` depends only on ``(seed, k)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from rinq_jax.data.subjects.draws import clipped_normal, subject_rng
from rinq_jax.data.subjects.tissues import (
    BACKGROUND,
    BONE,
    CSF,
    FAT,
    GM,
    LESION,
    MUSCLE_SKIN,
    N_CLASSES,
    TISSUE_PROPERTIES,
    WM,
)

__all__ = ["SubjectAnatomy", "render_labels", "sample_subject"]


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
    subject_id, seed, rng = subject_rng(subject_id, seed)

    n_sulci = int(rng.integers(26, 41))
    spacing = 2.0 * math.pi / n_sulci
    angles = (np.arange(n_sulci) + rng.uniform(-0.3, 0.3, n_sulci)) * spacing
    angles = (angles + rng.uniform(0.0, 2.0 * math.pi)) % (2.0 * math.pi)

    def tissue_scales(cv_factor: float) -> tuple[float, ...]:
        out = [1.0]
        for label in range(1, N_CLASSES):
            sd = TISSUE_PROPERTIES[label].subject_cv * cv_factor
            out.append(clipped_normal(rng, 1.0, sd, 1.0 - 2.5 * sd, 1.0 + 2.5 * sd))
        return tuple(out)

    return SubjectAnatomy(
        subject_id=subject_id,
        seed=seed,
        head_semi_axis_lr_mm=clipped_normal(rng, 75.0, 4.0, 66.0, 84.0),
        head_semi_axis_ap_mm=clipped_normal(rng, 95.0, 5.0, 84.0, 106.0),
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
        rotation_deg=clipped_normal(rng, 0.0, 4.0, -10.0, 10.0),
        offset_mm=(
            clipped_normal(rng, 0.0, 4.0, -10.0, 10.0),
            clipped_normal(rng, 0.0, 4.0, -10.0, 10.0),
        ),
        t1_scale=tissue_scales(1.0),
        t2_scale=tissue_scales(1.0),
        pd_scale=tissue_scales(0.5),
    )


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


def render_labels(
    anatomy: SubjectAnatomy,
    z: float,
    xh: np.ndarray,
    yh: np.ndarray,
    fine_mm: float,
    lesion_rng: np.random.Generator | None,
) -> np.ndarray:
    """Tissue label of every fine sample at head-frame coordinates (xh, yh) in mm.

    ``z`` is the slice position in [0, 1], ``fine_mm`` the sample spacing (sets the cortex
    ribbon's distance transform); ``lesion_rng`` draws lesions into WM, None for none.
    Returns uint8 labels of ``rinq_jax.data.subjects.tissues`` with the shape of ``xh``.

    From the outside in: the head's layers (skin, fat, muscle, skull, CSF), the brain cut
    by sulci and the interhemispheric fissure, a cortical ribbon over white matter, deep
    grey nuclei and ventricles, then lesions.
    """
    labels, brain, ray = _head_layers(anatomy, z, xh, yh)
    _cut_sulci(anatomy, z, brain, ray)
    _cut_fissure(anatomy, z, brain, xh, yh)
    labels[brain] = WM
    _paint_cortex(labels, brain, fine_mm, anatomy.cortex_mm)
    _paint_deep_structures(anatomy, z, labels, brain, xh, yh)
    if lesion_rng is not None:
        _add_lesions(labels, xh, yh, lesion_rng)
    return labels


@dataclass(frozen=True)
class _Ray:
    """Where each fine sample lies on the ray from the head centre (arrays shaped like xh)."""

    theta: np.ndarray  # elliptic angle, rad
    radius_mm: np.ndarray  # distance from the head centre
    depth_mm: np.ndarray  # depth below the skin along the ray
    pial_mm: np.ndarray  # depth of the brain's surface along the ray


def _head_layers(anatomy: SubjectAnatomy, z: float, xh: np.ndarray, yh: np.ndarray):
    """Labels of the head's layers down to the CSF, the brain mask below them, and the `_Ray`."""
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
    return labels, depth >= d_pial, _Ray(theta, radius_mm, depth, d_pial)


def _cut_sulci(anatomy: SubjectAnatomy, z: float, brain: np.ndarray, ray: _Ray) -> None:
    """Cut the sulci from ``brain`` (in place).

    CSF clefts at fixed angles whose depth changes smoothly with z, so neighbouring slices
    share most sulci and distant ones do not.
    """
    angles = np.asarray(anatomy.sulcus_angles_rad) + np.asarray(anatomy.sulcus_drifts_rad) * z
    depths = (
        anatomy.fold_amplitude_mm
        * np.asarray(anatomy.sulcus_depth_scales)
        * (0.65 + 0.35 * np.sin(2.0 * math.pi * 1.5 * z + np.asarray(anatomy.sulcus_z_phases_rad)))
    )
    order = np.argsort(angles % (2.0 * math.pi))
    angles, depths = angles[order] % (2.0 * math.pi), depths[order]
    near = brain & (ray.depth_mm < ray.pial_mm + depths.max())
    th = ray.theta[near] % (2.0 * math.pi)
    right = np.searchsorted(angles, th) % len(angles)
    in_sulcus = np.zeros(th.shape, bool)
    for idx in (right - 1, right):  # the nearest sulcus is one of the two neighbours
        delta = np.angle(np.exp(1j * (th - angles[idx])))
        in_sulcus |= (np.abs(delta) * ray.radius_mm[near] < anatomy.sulcus_width_mm / 2.0) & (
            ray.depth_mm[near] < ray.pial_mm[near] + depths[idx]
        )
    brain[near] &= ~in_sulcus


def _cut_fissure(anatomy: SubjectAnatomy, z: float, brain, xh, yh) -> None:
    """Cut the interhemispheric fissure from ``brain`` (in place).

    Anterior and posterior clefts along the midline; above the corpus callosum (z > 0.6)
    the fissure splits the hemispheres completely.
    """
    brain_b = float(np.max(np.where(brain, np.abs(yh), 0.0), initial=0.0))
    fissure_depth = anatomy.fissure_depth_fraction + (1.0 - anatomy.fissure_depth_fraction) * float(
        np.clip((z - 0.6) / 0.2, 0.0, 1.0)
    )
    y_cut = brain_b * (1.0 - fissure_depth)
    brain &= ~((np.abs(xh) < anatomy.fissure_width_mm / 2.0) & (np.abs(yh) >= y_cut))


def _paint_cortex(labels, brain, fine_mm: float, cortex_mm: float) -> None:
    """Label the cortex GM (in place): the brain within cortex_mm of outer CSF."""
    if not brain.any():
        return
    rows = np.flatnonzero(brain.any(axis=1))
    cols = np.flatnonzero(brain.any(axis=0))
    r0, r1 = max(rows[0] - 2, 0), rows[-1] + 3
    c0, c1 = max(cols[0] - 2, 0), cols[-1] + 3
    dist = ndimage.distance_transform_edt(brain[r0:r1, c0:c1], sampling=fine_mm)
    crop = labels[r0:r1, c0:c1]
    crop[brain[r0:r1, c0:c1] & (dist <= cortex_mm)] = GM


def _paint_deep_structures(anatomy: SubjectAnatomy, z: float, labels, brain, xh, yh) -> None:
    """Deep grey nuclei (labelled GM) and the ventricles (CSF), in place."""
    white = labels == WM
    vs = anatomy.ventricle_scale
    # Deep grey nuclei, only inside WM so the cortex stays intact.
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
