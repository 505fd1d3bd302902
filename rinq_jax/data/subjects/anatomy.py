"""Axial brain slices from a real brain: the ICBM 2009a template, warped per subject.

A slice samples one subject's warp of the template (`rinq_jax.data.subjects.template`): its grey
and white matter maps act as partial-volume fractions, and CSF is the brain mask minus GM
and WM. The template is skull-stripped, so the head is synthesised from the 3D distance to
the deformed brain (planes up to 16 mm above and below the slice, so shells widen where the
head surface is oblique): extra subarachnoid CSF, inner table, diploe, outer table,
temporalis, scalp fat, skin, air.

Image frame as :func:`rinq_jax.data.subjects.phantom.make_phantom`: pixel centres at
``-fov/2 + (i + 0.5) * pixel``, rows anterior (top) -> posterior, columns the subject's
left -> right (MNI x increasing). Slice position 0 is MNI z = -12 mm (third ventricle,
basal ganglia), 1 is z = +58 mm (high convexity). A subject depends only on
``(seed, subject_id)``; a slice's phase, B1 pattern and lesions also on its position.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from rinq_jax.configs.data import PAPER_FOV_MM
from rinq_jax.data.subjects.draws import checked_number
from rinq_jax.data.subjects.phantom import b1_pattern, smooth_poly
from rinq_jax.data.subjects.phantom import slice_positions as phantom_slice_positions
from rinq_jax.data.subjects.template import (
    BRAIN_CENTRE_MM,
    load_template,
    sample_geometry,
    sample_plane,
    to_template,
)
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
    TISSUES,
    WM,
)

__all__ = ["SliceAnatomy", "make_slice", "slice_positions"]

_Z_RANGE_MM = (-12.0, 58.0)  # MNI z of slice positions 0 and 1
_DZ_MM = np.arange(-16.0, 16.5, 4.0)  # planes used for the 3D shell distances


@dataclass(frozen=True, eq=False)
class SliceAnatomy:
    """One axial slice: tissue fractions and smooth fields on a square grid.

    Attributes:
        fractions: float32[N_CLASSES, H, W], area fraction of each label in each pixel, in
            [0, 1], summing to 1 over labels (BACKGROUND = air).
        phase_rad: float32[H, W], smooth background phase of the transverse
            magnetisation (transmit/receive phase), rad; random per slice.
        b1_shape: float32[H, W] in [-1, 1], transmit field pattern (brighter centre, darker
            rim, random tilt); the field is ``1 + amplitude * b1_shape``.
        subject_id: the subject's index.
        slice_position: axial position in [0, 1], inferior -> superior.
        fov_mm: field of view (square), mm.

    """

    fractions: np.ndarray
    phase_rad: np.ndarray
    b1_shape: np.ndarray
    subject_id: int
    slice_position: float
    fov_mm: float

    @property
    def matrix(self) -> int:
        """Number of pixels along each side."""
        return int(self.fractions.shape[-1])

    @property
    def pixel_mm(self) -> float:
        """Pixel size in mm."""
        return self.fov_mm / self.matrix


def slice_positions(n_slices: int, first: float = 0.3, last: float = 0.8) -> np.ndarray:
    """Evenly spaced slice positions; one slice sits midway between ``first`` and ``last``.

    Args:
        n_slices: number of slices (>= 1).
        first: position of the lowest slice, >= 0.
        last: position of the highest slice, first <= last <= 1.

    Returns:
        float64[n_slices] positions in [0, 1], inferior -> superior.

    Raises:
        ValueError: on a bad count or range.

    """
    n_slices = checked_number("n_slices", n_slices, 1, integer=True)
    first, last = checked_number("first", first, 0.0, 1.0), checked_number("last", last, 0.0, 1.0)
    return phantom_slice_positions(n_slices, first, last)


def _brain_distance(stack: np.ndarray, fine_mm: float, reach_mm: float) -> np.ndarray:
    """Distance (mm) to the brain in 3D, 0 inside; ``inf`` beyond ``reach_mm`` of its box.

    ``stack`` is bool[len(_DZ_MM), n, n], the brain at the planes ``z + _DZ_MM``; the
    distance is the one at the middle plane (the slice).
    """
    n = stack.shape[-1]
    dist = np.full((n, n), np.inf)
    rows, cols = np.flatnonzero(stack.any(axis=(0, 2))), np.flatnonzero(stack.any(axis=(0, 1)))
    if rows.size:
        pad = int(math.ceil(reach_mm / fine_mm))
        r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, n)
        c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, n)
        step = float(_DZ_MM[1] - _DZ_MM[0])
        d3 = ndimage.distance_transform_edt(
            ~stack[:, r0:r1, c0:c1], sampling=(step, fine_mm, fine_mm)
        )
        dist[r0:r1, c0:c1] = d3[len(_DZ_MM) // 2]
    return dist


def _add_lesions(fine: np.ndarray, x: np.ndarray, y: np.ndarray, s: int, count: int, rng) -> None:
    """Turn the WM of ``count`` ellipses (3-8 mm long) into LESION, in place.

    ``fine``: float[N_CLASSES, n, n] sub-pixel fractions at image positions ``x``, ``y``
    (mm), ``s`` samples per pixel side. Centres are pixels whose WM fraction exceeds 0.9.
    """
    pixels = fine.shape[-1] // s

    def pixel_mean(a):
        return a.reshape(pixels, s, pixels, s).mean(axis=(1, 3)).ravel()

    candidates = np.flatnonzero(pixel_mean(fine[WM]) > 0.9)
    picks = rng.integers(0, max(candidates.size, 1), count)
    semi_major, aspects = rng.uniform(1.5, 4.0, count), rng.uniform(1.0, 2.0, count)
    angles = rng.uniform(0.0, math.pi, count)
    if candidates.size == 0:
        return
    x_pix, y_pix = pixel_mean(x)[candidates], pixel_mean(y)[candidates]
    for i, a, asp, ang in zip(picks, semi_major, aspects, angles, strict=True):
        dx, dy = x - x_pix[i], y - y_pix[i]
        u = dx * math.cos(ang) + dy * math.sin(ang)
        v = -dx * math.sin(ang) + dy * math.cos(ang)
        inside = (u / a) ** 2 + (v * asp / a) ** 2 < 1.0
        fine[LESION][inside] += fine[WM][inside]
        fine[WM][inside] = 0.0


def _brain_samples(z_mm: float, xm, ym) -> tuple[np.ndarray, np.ndarray]:
    """The brain's tissue fractions float[N_CLASSES, n, n] at template positions, and its mask.

    GM, WM and CSF from the template's maps (the other classes 0), and the brain mask ``m``
    they were drawn from (see `make_slice`).
    """
    gm_vol, wm_vol, mask_vol = load_template()
    m = np.clip(sample_plane(mask_vol, z_mm, xm, ym), 0.0, 1.0)
    g = np.clip(sample_plane(gm_vol, z_mm, xm, ym), 0.0, None)
    w = np.clip(sample_plane(wm_vol, z_mm, xm, ym), 0.0, None)
    shrink = m / np.maximum(np.maximum(g + w, m), 1e-12)  # so that g + w <= m
    g, w = g * shrink, w * shrink
    fine = np.zeros((N_CLASSES, *m.shape))
    fine[GM], fine[WM], fine[CSF] = g, w, np.maximum(m - g - w, 0.0)
    return fine, m


def _head_shell(geom, xm, ym, z_mm: float, m, mask_vol, fine_mm: float) -> np.ndarray:
    """The head layer (a tissue label) of each sub-pixel sample: BACKGROUND beyond the skin.

    Layers follow the 3D distance to the brain over nearby planes, with the slice's geometry.
    """
    n = m.shape[0]
    theta = np.arctan2(ym - BRAIN_CENTRE_MM[1], xm - BRAIN_CENTRE_MM[0])
    lateral = np.clip((np.abs(np.cos(theta)) - 0.55) / 0.35, 0.0, 1.0) ** 2
    temporal = lateral * float(np.clip((35.0 - z_mm) / 30.0, 0.0, 1.0))  # gone above z ~ 35
    table = geom.skull_mm * (1.0 - geom.diploe_fraction) / 2.0
    layers = (
        (CSF, geom.csf_mm),
        (BONE, table),  # inner table
        (FAT, geom.skull_mm * geom.diploe_fraction),  # diploe
        (BONE, table),  # outer table
        (MUSCLE_SKIN, geom.temporalis_mm * temporal),
        (FAT, geom.scalp_fat_mm),
        (MUSCLE_SKIN, geom.skin_mm),
    )
    bounds = np.cumsum([np.broadcast_to(t, (n, n)) for _, t in layers], axis=0)
    # Off-slice planes reuse the slice's in-plane map: its warp changes little over 16 mm.
    planes = [sample_plane(mask_vol, z_mm + dz, xm, ym) if dz else m for dz in _DZ_MM]
    dist = _brain_distance(np.stack(planes) >= 0.5, fine_mm, float(bounds.max()) + 2.0)
    shell = np.full((n, n), BACKGROUND)
    for (label, _), bound in zip(layers[::-1], bounds[::-1], strict=True):
        shell[dist <= bound] = label  # inner layers overwrite outer ones
    return shell


def make_slice(
    subject_id: int,
    slice_position: float,
    matrix: int = 128,
    fov_mm: float = PAPER_FOV_MM,
    seed: int = 0,
    lesions: bool = False,
    supersample: int = 3,
) -> SliceAnatomy:
    """Cut one axial slice of a subject from the warped ICBM 2009a template.

    Each pixel averages ``supersample**2`` sub-pixel samples. A sample takes the template's
    brain mask ``m``, GM ``g`` and WM ``w`` by linear interpolation (g and w scaled down
    where ``g + w > m``), CSF ``m - g - w``, and gives the rest ``1 - m`` to the head layer
    at its distance from the brain (brain = samples with ``m >= 0.5``).

    Args:
        subject_id: non-negative subject index (its geometry: :func:`sample_geometry`).
        slice_position: axial position in [0, 1]: 0 is the third ventricle / basal ganglia
            level (MNI z = -12 mm), 1 the high convexity (z = +58 mm).
        matrix: pixels per side (8..1024).
        fov_mm: square field of view in mm (1..10000); the paper's is 300 mm.
        seed: non-negative seed of the cohort and of this slice's phase, B1 and lesions.
        lesions: convert 1-4 small (3-8 mm) ellipses of pure WM to LESION.
        supersample: sub-pixel samples per pixel side (1..8); 1 samples pixel centres only.

    Returns:
        The :class:`SliceAnatomy`.

    Raises:
        ValueError: on a bad subject, position, matrix, FOV, seed or supersample.

    """
    geom = sample_geometry(subject_id, seed)
    z = checked_number("slice_position", slice_position, 0.0, 1.0)
    matrix = checked_number("matrix", matrix, 8, 1024, integer=True)
    supersample = checked_number("supersample", supersample, 1, 8, integer=True)
    fov_mm = checked_number("fov_mm", fov_mm, 1.0, 10_000.0)
    if not isinstance(lesions, (bool, np.bool_)):
        raise ValueError(f"lesions must be a bool, got {lesions!r}")

    ss = np.random.SeedSequence([seed, geom.subject_id, int(round(z * 1_000_000)), 1])
    rng_lesion, rng_phase, rng_b1 = (np.random.default_rng(s) for s in ss.spawn(3))
    z_mm = _Z_RANGE_MM[0] + z * (_Z_RANGE_MM[1] - _Z_RANGE_MM[0]) + geom.z_offset_mm
    pixel_mm = fov_mm / matrix
    fine_mm = pixel_mm / supersample
    n = matrix * supersample
    coord = -fov_mm / 2.0 + (np.arange(n) + 0.5) * fine_mm
    x_img, y_img = np.meshgrid(coord, coord)
    xm, ym = to_template(geom, x_img, y_img, z_mm)

    mask_vol = load_template()[2]
    fine, m = _brain_samples(z_mm, xm, ym)
    shell = _head_shell(geom, xm, ym, z_mm, m, mask_vol, fine_mm)
    for label in np.unique(shell):
        fine[label] += np.where(shell == label, 1.0 - m, 0.0)

    if lesions:
        _add_lesions(fine, x_img, y_img, supersample, geom.lesion_count, rng_lesion)

    fractions = fine.reshape(N_CLASSES, matrix, supersample, matrix, supersample).mean(axis=(2, 4))
    fractions = np.clip(fractions, 0.0, 1.0)
    fractions = (fractions / fractions.sum(axis=0)).astype(np.float32)

    # Smooth fields in head-normalised coordinates (|u|, |v| <~ 1 over the head).
    pix = -fov_mm / 2.0 + (np.arange(matrix) + 0.5) * pixel_mm
    rot = math.radians(geom.rotation_deg)
    dx, dy = pix[None, :] - geom.offset_mm[0], pix[:, None] - geom.offset_mm[1]
    u = (math.cos(rot) * dx + math.sin(rot) * dy) / (75.0 * geom.scale_lr)
    v = (-math.sin(rot) * dx + math.cos(rot) * dy) / (95.0 * geom.scale_ap)
    poly = smooth_poly(rng_phase, u, v)
    phase = rng_phase.uniform(-math.pi, math.pi) + rng_phase.uniform(0.75, 2.0) * poly
    return SliceAnatomy(
        fractions=fractions,
        phase_rad=phase.astype(np.float32),
        b1_shape=b1_pattern(rng_b1, u, v).astype(np.float32),
        subject_id=geom.subject_id,
        slice_position=z,
        fov_mm=fov_mm,
    )


def _save_figure(path: str, seed: int = 0) -> None:
    """Save label maps and fraction-weighted T1 maps of 4 subjects at 2 positions each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    t1_ms = np.array([TISSUE_PROPERTIES[k].t1_ms for k in range(N_CLASSES)], np.float32)
    colours = ["black", "#f0e0c0", "#a0a0a0", "#3070ff", "#ffd000", "#c04040", "#ffffff", "#ff00ff"]
    plt.rcParams.update({"image.interpolation": "nearest", "font.size": 7})
    fig, axes = plt.subplots(2, 8, figsize=(12, 3.9))
    for subject, z in np.ndindex(4, 2):
        s = make_slice(subject, (0.35, 0.75)[z], matrix=256, seed=seed, lesions=subject == 3)
        crop = s.fractions[:, 20:236, 30:226]  # the head, in 256 x 256 at 300 mm
        ax_l, ax_t = axes[z, 2 * subject], axes[z, 2 * subject + 1]
        im_l = ax_l.imshow(crop.argmax(axis=0), cmap=ListedColormap(colours), vmin=-0.5, vmax=7.5)
        im_t = ax_t.imshow(np.tensordot(t1_ms, crop, axes=1), cmap="magma", vmin=0, vmax=3000)
        ax_l.set_title(f"subject {subject}, z={(0.35, 0.75)[z]}")
        ax_t.set_title("T1 (with lesions)" if subject == 3 else "T1")
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.subplots_adjust(left=0.01, right=0.9, top=0.88, bottom=0.02, wspace=0.04, hspace=0.14)
    bar = fig.colorbar(im_l, cax=fig.add_axes((0.905, 0.5, 0.012, 0.37)))
    bar.set_ticks(range(N_CLASSES), labels=[TISSUES[k] for k in range(N_CLASSES)])
    fig.colorbar(im_t, cax=fig.add_axes((0.905, 0.04, 0.012, 0.37))).set_label("T1 [ms]")
    fig.suptitle(
        "rinq_jax.data.subjects.anatomy: ICBM 2009a brain, warped per subject, synthetic head; dominant "
        "tissue and fraction-weighted T1; 256 x 256, FOV 300 mm",
        fontsize=9,
    )
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    _save_figure(sys.argv[1] if len(sys.argv) > 1 else "docs/phantom.png")
