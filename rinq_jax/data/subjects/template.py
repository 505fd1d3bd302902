"""The ICBM 2009a brain template and each subject's warp of it.

The template is the ICBM 2009a nonlinear symmetric one at 1 mm (Fonov et al.,
NeuroImage 54:313 (2011); NeuroImage 47:S102 (2009)), whose grey matter, white matter and
brain mask ship with nilearn (nothing is downloaded). Its tissue maps average 152 brains,
so at boundaries they act as partial-volume fractions.

A subject (:func:`sample_geometry`) is the template under a random in-plane affine map, a
smooth elastic displacement and a ventricle-size change; :func:`to_template` takes image
positions (mm, the frame of `rinq_jax.data.subjects.anatomy`) to the template's MNI positions, and
:func:`sample_plane` interpolates the template there. A subject depends only on
``(seed, subject_id)``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from rinq_jax.data.subjects.draws import clipped_normal, subject_rng

__all__ = [
    "BRAIN_CENTRE_MM",
    "SubjectGeometry",
    "load_template",
    "sample_geometry",
    "sample_plane",
    "to_template",
]

_ORIGIN_MM = np.array([-98.0, -134.0, -72.0])  # MNI position of template voxel (0, 0, 0)
# MNI (x, y) of the brain's centre, placed at the head-frame origin.
BRAIN_CENTRE_MM = (0.0, -18.0)
_VENTRICLE_MM = (0.0, -10.0, 15.0)  # centre of the ventricle expansion
_VENTRICLE_SIGMA_MM = (14.0, 28.0, 16.0)
_N_WARP = 16  # random Fourier features of the elastic displacement


@dataclass(frozen=True)
class SubjectGeometry:
    """One subject's random geometry; drawn by :func:`sample_geometry`. Lengths in mm.

    Attributes:
        subject_id: index of the subject (non-negative).
        seed: seed of the cohort the subject was drawn with.
        scale_lr, scale_ap: in-plane size relative to the template (isotropic ~N(1, 0.05)
            times a small LR/AP anisotropy).
        rotation_deg: in-plane rotation of the head.
        offset_mm: in-plane position (x, y) of the brain centre relative to the FOV centre.
        z_offset_mm: shift of the slice levels (slice planning varies between scans).
        warp_amplitude_mm: RMS of each component of the elastic displacement.
        warp_smoothness_mm: correlation length of the displacement (Gaussian covariance).
        warp_seed: seed of the displacement's random Fourier features (Rahimi & Recht,
            NIPS 2007): a smooth function of the template position (x, y, z).
        ventricle_scale: linear magnification of the deep, periventricular region.
        skin_mm, scalp_fat_mm: skin (labelled muscle/skin) and scalp fat thickness.
        temporalis_mm: maximum temporalis muscle thickness (lateral, inferior slices).
        skull_mm: skull thickness; ``diploe_fraction`` of it is diploe (labelled fat),
            the rest splits evenly into inner and outer table (bone).
        csf_mm: extra subarachnoid CSF between the template's brain mask and the skull.
        lesion_count: lesions per slice when lesions are requested (1-4).

    """

    subject_id: int
    seed: int
    scale_lr: float
    scale_ap: float
    rotation_deg: float
    offset_mm: tuple[float, float]
    z_offset_mm: float
    warp_amplitude_mm: float
    warp_smoothness_mm: float
    warp_seed: int
    ventricle_scale: float
    skin_mm: float
    scalp_fat_mm: float
    temporalis_mm: float
    skull_mm: float
    diploe_fraction: float
    csf_mm: float
    lesion_count: int


def sample_geometry(subject_id: int, seed: int = 0) -> SubjectGeometry:
    """Draw one subject's geometry from ``numpy.random.SeedSequence([seed, subject_id])``.

    Args:
        subject_id: non-negative subject index.
        seed: non-negative seed of the whole cohort.

    Returns:
        The subject's :class:`SubjectGeometry`.

    Raises:
        ValueError: if ``subject_id`` or ``seed`` is not a non-negative integer.

    """
    subject_id, seed, rng = subject_rng(subject_id, seed)
    scale = clipped_normal(rng, 1.0, 0.05, 0.88, 1.12)
    aniso = clipped_normal(rng, 0.0, 0.025, -0.06, 0.06)
    return SubjectGeometry(
        subject_id=subject_id,
        seed=seed,
        scale_lr=scale * (1.0 + aniso),
        scale_ap=scale * (1.0 - aniso),
        rotation_deg=clipped_normal(rng, 0.0, 4.0, -10.0, 10.0),
        offset_mm=(
            clipped_normal(rng, 0.0, 4.0, -10.0, 10.0),
            clipped_normal(rng, 0.0, 4.0, -10.0, 10.0),
        ),
        z_offset_mm=clipped_normal(rng, 0.0, 1.5, -3.0, 3.0),
        warp_amplitude_mm=float(rng.uniform(1.5, 3.5)),
        warp_smoothness_mm=float(rng.uniform(15.0, 25.0)),
        warp_seed=int(rng.integers(2**31)),
        ventricle_scale=float(rng.uniform(0.9, 1.35)),
        skin_mm=float(rng.uniform(1.5, 3.0)),
        scalp_fat_mm=float(rng.uniform(2.5, 5.5)),
        temporalis_mm=float(rng.uniform(4.0, 9.0)),
        skull_mm=float(rng.uniform(5.0, 8.0)),
        diploe_fraction=float(rng.uniform(0.25, 0.45)),
        csf_mm=float(rng.uniform(0.0, 2.0)),
        lesion_count=int(rng.integers(1, 5)),
    )


@functools.lru_cache(maxsize=1)
def load_template() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GM, WM probability and brain mask, float32[197, 233, 189] indexed (x, y, z), 1 mm.

    Voxel (0, 0, 0) lies at MNI (-98, -134, -72) mm. Read once per process from nilearn's
    wheel (nothing is downloaded).
    """
    from nilearn import datasets

    loaders = (datasets.load_mni152_gm_template, datasets.load_mni152_wm_template)
    maps = [f(resolution=1).get_fdata(dtype=np.float32) for f in loaders]
    mask = datasets.load_mni152_brain_mask(resolution=1).get_fdata(dtype=np.float32)
    return maps[0], maps[1], mask


def sample_plane(volume: np.ndarray, z_mm: float, x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
    """Trilinear samples of ``volume`` at MNI (x, y, z_mm); 0 outside the template.

    Args:
        volume: one of the `load_template` maps, float32[197, 233, 189].
        z_mm: MNI height of the plane, mm.
        x_mm: float[...] MNI x positions in mm (e.g. from `to_template`).
        y_mm: float[...] MNI y positions in mm, the shape of ``x_mm``.

    Returns:
        float[...] samples, the shape of ``x_mm``.
    """
    kz = z_mm - _ORIGIN_MM[2]
    k0 = int(math.floor(kz))
    if not 0 <= k0 < volume.shape[2] - 1:
        return np.zeros(x_mm.shape)
    t = kz - k0  # only the two planes around z: the deformation is in-plane
    plane = (1.0 - t) * volume[:, :, k0] + t * volume[:, :, k0 + 1]
    coords = np.stack([x_mm - _ORIGIN_MM[0], y_mm - _ORIGIN_MM[1]])
    return ndimage.map_coordinates(plane, coords, order=1, mode="constant", cval=0.0)


def to_template(geom: SubjectGeometry, x: np.ndarray, y: np.ndarray, z_mm: float):
    """Image (x, y) in mm -> MNI (x, y): undo shift, rotation and scale; add the warps.

    Args:
        geom: the subject's geometry.
        x: float[...] image x positions in mm (frame of `rinq_jax.data.subjects.anatomy`).
        y: float[...] image y positions in mm, the shape of ``x``.
        z_mm: MNI height of the plane, mm (the ventricle change and the elastic
            displacement depend on it).

    Returns:
        (x, y) MNI positions in mm, each float[...] of the shape of ``x``.
    """
    rot = math.radians(geom.rotation_deg)
    dx, dy = x - geom.offset_mm[0], y - geom.offset_mm[1]
    xh = (math.cos(rot) * dx + math.sin(rot) * dy) / geom.scale_lr
    yh = (-math.sin(rot) * dx + math.cos(rot) * dy) / geom.scale_ap
    # Image y points posterior, MNI y anterior.
    xm, ym = xh + BRAIN_CENTRE_MM[0], BRAIN_CENTRE_MM[1] - yh
    # Ventricles: magnify the region around them by ventricle_scale (smooth, invertible).
    (cx, cy, cz), (sx, sy, sz) = _VENTRICLE_MM, _VENTRICLE_SIGMA_MM
    w = np.exp(-0.5 * (((xm - cx) / sx) ** 2 + ((ym - cy) / sy) ** 2 + ((z_mm - cz) / sz) ** 2))
    shrink = 1.0 - (1.0 - 1.0 / geom.ventricle_scale) * w
    xm, ym = cx + (xm - cx) * shrink, cy + (ym - cy) * shrink
    # Elastic displacement: a smooth Gaussian random field (random Fourier features).
    # u(p) = A sqrt(2/N) sum_i w_i cos(k_i . p + phi_i), k ~ N(0, 1/len^2), w ~ N(0, 1):
    # each component has RMS A and Gaussian correlation exp(-|dp|^2 / (2 len^2)).
    rng = np.random.default_rng(geom.warp_seed)
    k = rng.normal(0.0, 1.0 / geom.warp_smoothness_mm, (_N_WARP, 3))
    phases = rng.uniform(0.0, 2.0 * math.pi, _N_WARP)
    weights = rng.normal(0.0, geom.warp_amplitude_mm * math.sqrt(2.0 / _N_WARP), (_N_WARP, 2))
    ux, uy = np.zeros_like(xm), np.zeros_like(ym)
    for (kx, ky, kz), phase, (wx, wy) in zip(k, phases, weights, strict=True):
        c = np.cos(kx * xm + ky * ym + (kz * z_mm + phase))
        ux += wx * c
        uy += wy * c
    return xm + ux, ym + uy
