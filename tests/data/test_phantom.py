"""Tests of the procedural brain phantoms (rinq_jax.data.subjects.phantom).

Regenerate the picture with ``python -m rinq_jax.data.subjects.phantom docs/phantom.png``.
"""

import dataclasses
import math

import numpy as np
import pytest
from scipy import ndimage

from rinq_jax.data.subjects.phantom import Phantom, make_phantom, slice_positions
from rinq_jax.data.subjects.phantom_geometry import SubjectAnatomy, sample_subject
from rinq_jax.data.subjects.tissues import (
    BACKGROUND,
    BONE,
    BRAIN_LABELS,
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

# Literature ranges at 3 T, wide enough to span the studies cited in tissues.py
# (Wansapura 1999, Stanisz 2005, Lu 2005, Jiang 2015, Gold 2004, Reichert 2005).
RANGES_MS = {
    WM: ((650.0, 1100.0), (40.0, 80.0)),
    GM: ((1000.0, 1850.0), (60.0, 115.0)),
    CSF: ((3600.0, 4500.0), (1500.0, 2200.0)),
    FAT: ((300.0, 450.0), (65.0, 135.0)),
    MUSCLE_SKIN: ((1050.0, 1650.0), (28.0, 55.0)),
    BONE: ((140.0, 350.0), (2.0, 3.0)),
    LESION: ((1000.0, 1800.0), (85.0, 185.0)),
}


@pytest.fixture(scope="module")
def subjects():
    return [sample_subject(k, seed=11) for k in range(4)]


@pytest.fixture(scope="module")
def mid_slices(subjects):
    return [make_phantom(a, 0.5, matrix=128, seed=3, lesions=True) for a in subjects]


@pytest.fixture(scope="module")
def clean_slice(subjects):
    """No texture or drift: every pure pixel carries its tissue's exact subject value."""
    return make_phantom(subjects[0], 0.45, matrix=128, variability=False, b1_field=False)


def _pure(p: Phantom, label: int) -> np.ndarray:
    return p.fractions[label] == 1.0


# --- shapes, dtypes, consistency ----------------------------------------------------------


@pytest.mark.parametrize("matrix", [64, 128, 256])
def test_shapes_and_dtypes(subjects, matrix):
    p = make_phantom(subjects[1], 0.6, matrix=matrix, supersample=2 if matrix == 256 else 4)
    for name, dtype in [
        ("t1_ms", np.float32),
        ("t2_ms", np.float32),
        ("m0", np.complex64),
        ("b1", np.float32),
        ("mask", np.bool_),
        ("tissue", np.uint8),
    ]:
        arr = getattr(p, name)
        assert arr.shape == (matrix, matrix), name
        assert arr.dtype == dtype, name
    assert p.fractions.shape == (N_CLASSES, matrix, matrix)
    assert p.fractions.dtype == np.float32
    np.testing.assert_allclose(p.fractions.sum(axis=0), 1.0, atol=1e-6)
    assert p.matrix == matrix
    assert p.pixel_mm == pytest.approx(300.0 / matrix)
    assert p.subject_id == 1 and p.slice_position == 0.6


def test_tissue_label_and_mask_follow_fractions(mid_slices):
    for p in mid_slices:
        assert np.array_equal(p.mask, np.isin(p.tissue, BRAIN_LABELS))
        # the label of a pure pixel is its tissue
        pure = p.fractions.max(axis=0) == 1.0
        assert np.array_equal(p.tissue[pure], p.fractions[:, pure].argmax(axis=0))


# --- physiological ranges ------------------------------------------------------------------


def test_values_in_literature_ranges_on_pure_pixels(mid_slices):
    seen = set()
    for p in mid_slices:
        for label, ((t1_lo, t1_hi), (t2_lo, t2_hi)) in RANGES_MS.items():
            pure = _pure(p, label)
            if not pure.any():
                continue
            seen.add(label)
            t1, t2 = p.t1_ms[pure], p.t2_ms[pure]
            name = TISSUES[label]
            assert t1.min() >= t1_lo and t1.max() <= t1_hi, (name, t1.min(), t1.max())
            assert t2.min() >= t2_lo and t2.max() <= t2_hi, (name, t2.min(), t2.max())
            pd = np.abs(p.m0[pure])
            props = TISSUE_PROPERTIES[label]
            # bounds of subject offset (2.5 sd), texture (3 sd) and drift (3 %)
            tol = 2.5 * props.subject_cv / 2 + 3 * props.texture_cv + 0.03 + 1e-3
            assert np.all(np.abs(pd / props.pd - 1.0) < tol), name
    assert seen >= {WM, GM, CSF, FAT, MUSCLE_SKIN, BONE, LESION}


def test_values_inside_dictionary_range_everywhere(mid_slices):
    for p in mid_slices:
        head = p.fractions[BACKGROUND] < 1.0
        t1, t2 = p.t1_ms[head], p.t2_ms[head]
        assert t1.min() >= 10.0 and t1.max() <= 4500.0
        assert t2.min() >= 2.0 and t2.max() <= 3000.0
        assert np.all(t2 <= t1)
        air = ~head
        assert np.all(p.t1_ms[air] == 0) and np.all(p.t2_ms[air] == 0) and np.all(p.m0[air] == 0)
        assert np.all(np.isfinite(p.t1_ms)) and np.all(np.isfinite(p.m0))
        assert np.abs(p.m0).max() <= 1.1


def test_texture_and_drift_vary_values_a_few_percent(mid_slices):
    p = mid_slices[0]
    wm = p.t1_ms[_pure(p, WM)]
    cv = wm.std() / wm.mean()
    assert 0.01 < cv < 0.06


# --- reproducibility and variety ----------------------------------------------------------


def test_same_subject_and_seed_is_bit_identical(subjects):
    assert sample_subject(2, seed=11) == subjects[2]
    a = make_phantom(subjects[2], 0.4, matrix=64, seed=5, lesions=True)
    b = make_phantom(sample_subject(2, seed=11), 0.4, matrix=64, seed=5, lesions=True)
    for field in dataclasses.fields(Phantom):
        va, vb = getattr(a, field.name), getattr(b, field.name)
        assert np.array_equal(va, vb), field.name


def test_subjects_differ_in_anatomy_and_values(subjects, mid_slices):
    heads = {(a.head_semi_axis_lr_mm, a.head_semi_axis_ap_mm) for a in subjects}
    assert len(heads) == len(subjects)
    for i in range(len(mid_slices)):
        for j in range(i + 1, len(mid_slices)):
            pi, pj = mid_slices[i], mid_slices[j]
            assert np.mean(pi.tissue != pj.tissue) > 0.02
            wm_i = np.median(pi.t1_ms[_pure(pi, WM)])
            wm_j = np.median(pj.t1_ms[_pure(pj, WM)])
            assert wm_i != wm_j


def test_slice_seed_changes_texture_not_anatomy(subjects):
    a = make_phantom(subjects[0], 0.5, matrix=64, seed=0)
    b = make_phantom(subjects[0], 0.5, matrix=64, seed=1)
    assert np.array_equal(a.tissue, b.tissue)
    assert not np.array_equal(a.t1_ms, b.t1_ms)


def _ventricle_csf_pixels(p: Phantom, anatomy: SubjectAnatomy) -> int:
    """CSF pixels within 30 mm of the head centre (ventricles, not surface CSF)."""
    coord = -p.fov_mm / 2 + (np.arange(p.matrix) + 0.5) * p.pixel_mm
    r = np.hypot(coord[None, :] - anatomy.offset_mm[0], coord[:, None] - anatomy.offset_mm[1])
    return int(np.sum((p.tissue == CSF) & (r < 30.0)))


def test_slices_at_different_positions_differ_plausibly(subjects):
    a = subjects[0]
    by_z = {z: make_phantom(a, z, matrix=128, seed=0) for z in (0.0, 0.5, 0.95)}
    brain = {z: p.mask.sum() for z, p in by_z.items()}
    assert brain[0.5] > brain[0.95] * 1.3  # the brain narrows towards the vertex
    ventricles = {z: _ventricle_csf_pixels(p, a) for z, p in by_z.items()}
    assert ventricles[0.5] > 3 * max(ventricles[0.95], 1)
    assert ventricles[0.5] > ventricles[0.0]


def test_ventricle_scale_grows_ventricles(subjects):
    small = dataclasses.replace(subjects[0], ventricle_scale=0.7)
    large = dataclasses.replace(subjects[0], ventricle_scale=1.6)
    n_small = _ventricle_csf_pixels(make_phantom(small, 0.5, matrix=128), small)
    n_large = _ventricle_csf_pixels(make_phantom(large, 0.5, matrix=128), large)
    assert n_large > 1.5 * n_small


def test_lesions_only_when_asked_and_inside_white_matter(subjects):
    with_lesions = [
        make_phantom(subjects[0], 0.5, matrix=128, seed=s, lesions=True) for s in range(3)
    ]
    assert all(p.fractions[LESION].sum() > 0 for p in with_lesions)
    assert make_phantom(subjects[0], 0.5, matrix=128, seed=0).fractions[LESION].sum() == 0
    for p in with_lesions:
        assert np.all(p.mask[p.tissue == LESION])


# --- partial volume -----------------------------------------------------------------------


def _class_values(anatomy: SubjectAnatomy):
    t1 = np.array([TISSUE_PROPERTIES[k].t1_ms * anatomy.t1_scale[k] for k in range(N_CLASSES)])
    t2 = np.array([TISSUE_PROPERTIES[k].t2_ms * anatomy.t2_scale[k] for k in range(N_CLASSES)])
    # bone's T2 sits at the dictionary floor and is clipped there
    return np.clip(t1, 10.0, 4500.0), np.clip(t2, 2.0, 3000.0)


def test_pure_pixels_carry_exact_tissue_values(subjects, clean_slice):
    t1_k, t2_k = _class_values(subjects[0])
    for label in range(1, N_CLASSES):
        pure = _pure(clean_slice, label)
        if pure.any():
            np.testing.assert_allclose(clean_slice.t1_ms[pure], t1_k[label], rtol=1e-6)
            np.testing.assert_allclose(clean_slice.t2_ms[pure], t2_k[label], rtol=1e-6)


def test_partial_volume_values_lie_between_constituent_tissues(subjects, clean_slice):
    t1_k, t2_k = _class_values(subjects[0])
    p = clean_slice
    mixed = (p.fractions.max(axis=0) < 1.0) & (p.fractions[BACKGROUND] < 1.0)
    assert mixed.any()
    present = (p.fractions[1:] > 0)[:, mixed]  # tissue classes only: air adds nothing
    for values, got in ((t1_k[1:], p.t1_ms[mixed]), (t2_k[1:], p.t2_ms[mixed])):
        lo = np.where(present, values[:, None], np.inf).min(axis=0)
        hi = np.where(present, values[:, None], -np.inf).max(axis=0)
        assert np.all(got >= lo * (1 - 1e-5)) and np.all(got <= hi * (1 + 1e-5))
    # a mixed WM/CSF pixel is strictly between the two
    wm_csf = mixed & (p.fractions[WM] > 0.3) & (p.fractions[CSF] > 0.3)
    assert wm_csf.any()
    assert np.all((p.t1_ms[wm_csf] > t1_k[WM]) & (p.t1_ms[wm_csf] < t1_k[CSF]))


def test_partial_volume_with_texture_stays_between_tissues(subjects, mid_slices):
    # With texture and drift each constituent may vary by its bounded spread (< 25 %).
    t1_k, t2_k = _class_values(subjects[0])
    p = mid_slices[0]
    mixed = (p.fractions.max(axis=0) < 1.0) & (p.fractions[BACKGROUND] < 1.0)
    present = (p.fractions[1:] > 0)[:, mixed]
    for values, got in ((t1_k[1:], p.t1_ms[mixed]), (t2_k[1:], p.t2_ms[mixed])):
        lo = np.where(present, values[:, None], np.inf).min(axis=0)
        hi = np.where(present, values[:, None], -np.inf).max(axis=0)
        assert np.all(got >= 0.75 * lo) and np.all(got <= 1.25 * hi)


def test_partial_volume_only_at_boundaries(clean_slice):
    p = clean_slice
    frac = p.fractions
    mixed = frac.max(axis=0) < 1.0
    # A mixed pixel never sits inside a region of identical pixels: some 8-neighbour differs.
    padded = np.pad(frac, ((0, 0), (1, 1), (1, 1)), mode="edge")
    differs = np.zeros(mixed.shape, bool)
    n = p.matrix
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                shifted = padded[:, 1 + dy : 1 + dy + n, 1 + dx : 1 + dx + n]
                differs |= np.abs(shifted - frac).sum(axis=0) > 0
    assert np.all(differs[mixed])
    head = frac[BACKGROUND] < 1.0
    assert mixed.sum() < 0.6 * head.sum()
    # the interior of the brain is mostly pure
    assert (p.mask & ~mixed).sum() > 0.4 * p.mask.sum()


def test_no_partial_volume_without_supersampling(subjects):
    p = make_phantom(subjects[0], 0.5, matrix=64, supersample=1)
    assert np.all(p.fractions.max(axis=0) == 1.0)


def test_partial_volume_area_converges_with_supersampling(subjects):
    brain = [
        make_phantom(subjects[0], 0.5, matrix=64, supersample=s).fractions[list(BRAIN_LABELS)].sum()
        for s in (4, 8)
    ]
    assert brain[0] == pytest.approx(brain[1], rel=0.01)


# --- mask, m0, b1 ---------------------------------------------------------------------------


@pytest.mark.parametrize("z", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_mask_covers_brain_only_and_is_not_empty(subjects, z):
    p = make_phantom(subjects[3], z, matrix=64, seed=1)
    assert p.mask.sum() > 50
    brain_fraction = p.fractions[list(BRAIN_LABELS)].sum(axis=0)
    assert np.all(brain_fraction[p.mask] >= 0.5)
    assert np.all(p.mask[brain_fraction == 1.0])
    assert not np.any(p.mask[brain_fraction == 0.0])


def test_brain_is_enclosed_by_skull_and_scalp(mid_slices):
    p = mid_slices[0]
    # the brain touches no air: there is always skull and scalp in between
    grown = ndimage.binary_dilation(p.mask, iterations=2)
    assert not np.any(p.fractions[BACKGROUND][grown] > 0)


def test_m0_phase_is_smooth(mid_slices):
    p = mid_slices[1]
    inner = ndimage.binary_erosion(p.fractions[BACKGROUND] == 0)
    step_x = np.angle(p.m0[:, 1:] * np.conj(p.m0[:, :-1]))[inner[:, 1:] & inner[:, :-1]]
    step_y = np.angle(p.m0[1:] * np.conj(p.m0[:-1]))[inner[1:] & inner[:-1]]
    assert np.abs(step_x).max() < 0.2 and np.abs(step_y).max() < 0.2


def test_b1_bounded_and_smooth(subjects):
    for k, a in enumerate(subjects):
        p = make_phantom(a, 0.5, matrix=128, seed=k)
        assert p.b1.min() > 0.8 and p.b1.max() < 1.2
        head = p.fractions[BACKGROUND] < 1.0
        assert p.b1[head].max() - p.b1[head].min() > 0.02  # not flat
        # per mm, the field changes by well under 1 %
        grad = np.abs(np.diff(p.b1, axis=0)).max(), np.abs(np.diff(p.b1, axis=1)).max()
        assert max(grad) / p.pixel_mm < 0.005


def test_b1_disabled_gives_ones(subjects):
    p = make_phantom(subjects[0], 0.5, matrix=64, b1_field=False)
    assert np.all(p.b1 == 1.0)


# --- subjects and positions -----------------------------------------------------------------


def test_slice_positions():
    np.testing.assert_allclose(slice_positions(3, 0.2, 0.8), [0.2, 0.5, 0.8])
    assert slice_positions(1).tolist() == [pytest.approx(0.55)]
    with pytest.raises(ValueError, match="n_slices"):
        slice_positions(0)
    with pytest.raises(ValueError, match="first"):
        slice_positions(3, 0.9, 0.1)


# --- bad arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"slice_position": -0.1}, "slice_position"),
        ({"slice_position": 1.5}, "slice_position"),
        ({"slice_position": math.nan}, "slice_position"),
        ({"slice_position": "mid"}, "slice_position"),
        ({"matrix": 4}, "matrix"),
        ({"matrix": 64.0}, "matrix"),
        ({"fov_mm": 0.0}, "fov_mm"),
        ({"fov_mm": math.inf}, "fov_mm"),
        ({"supersample": 0}, "supersample"),
        ({"supersample": 17}, "supersample"),
        ({"seed": -1}, "seed"),
    ],
)
def test_make_phantom_rejects_bad_arguments(subjects, kwargs, match):
    args = {"anatomy": subjects[0], "slice_position": 0.5, "matrix": 32} | kwargs
    with pytest.raises(ValueError, match=match):
        make_phantom(**args)


def test_make_phantom_rejects_non_anatomy():
    with pytest.raises(ValueError, match="anatomy"):
        make_phantom({"head": 1}, 0.5)
