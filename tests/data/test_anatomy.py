"""Tests of the template-based brain slices (rinq_jax.data.subjects.anatomy).

Regenerate the picture with ``python -m rinq_jax.data.subjects.anatomy docs/phantom.png``.
"""

import math

import numpy as np
import pytest
from scipy import ndimage

from rinq_jax.data.subjects.anatomy import SliceAnatomy, make_slice, slice_positions
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
    WM,
)

POSITIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


@pytest.fixture(scope="module")
def slices():
    """Subject 0 at five positions, 128 x 128."""
    return {z: make_slice(0, z, matrix=128, seed=5) for z in POSITIONS}


def _brain(s: SliceAnatomy) -> np.ndarray:
    return s.fractions[list(BRAIN_LABELS)].sum(axis=0)


def _label(s: SliceAnatomy) -> np.ndarray:
    return s.fractions.argmax(axis=0)


def test_shapes_dtypes_and_fractions(slices):
    for z, s in slices.items():
        assert s.fractions.shape == (N_CLASSES, 128, 128)
        assert s.fractions.dtype == np.float32
        assert s.phase_rad.shape == s.b1_shape.shape == (128, 128)
        assert s.phase_rad.dtype == s.b1_shape.dtype == np.float32
        assert s.matrix == 128 and s.pixel_mm == pytest.approx(300.0 / 128)
        assert s.subject_id == 0 and s.slice_position == z and s.fov_mm == 300.0
        assert s.fractions.min() >= 0.0 and s.fractions.max() <= 1.0
        np.testing.assert_allclose(s.fractions.sum(axis=0), 1.0, atol=1e-5)
        # a sizeable brain (>= ~45 cm^2 even near the vertex) and air around the head
        assert (_brain(s) > 0.5).sum() * s.pixel_mm**2 > 4500.0, z
        assert s.fractions[BACKGROUND, 0, 0] == 1.0
        assert s.fractions[LESION].max() == 0.0  # lesions only on request


def test_other_matrix_and_fov():
    s = make_slice(1, 0.6, matrix=64, fov_mm=240.0, supersample=2)
    assert s.fractions.shape == (N_CLASSES, 64, 64) and s.pixel_mm == pytest.approx(3.75)
    np.testing.assert_allclose(s.fractions.sum(axis=0), 1.0, atol=1e-5)


def test_reproducible(slices):
    again = make_slice(0, 0.5, matrix=128, seed=5)
    for field in ("fractions", "phase_rad", "b1_shape"):
        assert np.array_equal(getattr(again, field), getattr(slices[0.5], field)), field


def test_subjects_differ(slices):
    a = slices[0.5]
    for subject in (1, 2):
        b = make_slice(subject, 0.5, matrix=128, seed=5)
        head = (_label(a) != BACKGROUND) | (_label(b) != BACKGROUND)
        changed = (_label(a) != _label(b)) & head
        assert changed.sum() > 0.05 * head.sum(), subject


def test_positions_differ(slices):
    for z0, z1 in zip(POSITIONS[:-1], POSITIONS[1:], strict=True):
        changed = _label(slices[z0]) != _label(slices[z1])
        assert changed.mean() > 0.03, (z0, z1)
    # the brain shrinks towards the vertex
    assert (_brain(slices[1.0]) > 0.5).sum() < 0.8 * (_brain(slices[0.5]) > 0.5).sum()


def test_partial_volume(slices):
    for s in slices.values():
        gm = s.fractions[GM]
        assert ((gm > 0.2) & (gm < 0.8)).sum() > 200
        mixed = (s.fractions.max(axis=0) < 0.9) & (_brain(s) > 0.0)
        assert mixed.sum() > 500


@pytest.mark.parametrize("subject", [0, 1, 2, 3])
def test_ventricles_at_middle_position(subject):
    s = make_slice(subject, 0.4, matrix=128)
    inner = ndimage.distance_transform_edt(_brain(s) > 0.5, sampling=s.pixel_mm) > 15.0
    assert (s.fractions[CSF][inner] > 0.8).sum() >= 5


@pytest.mark.parametrize("subject", [0, 3])
def test_skull_is_a_closed_ring(slices, subject):
    for z in POSITIONS:
        s = slices[z] if subject == 0 else make_slice(subject, z, matrix=128, seed=5)
        bone = s.fractions[BONE] > 0.25
        brain = _brain(s) > 0.05
        # the bone pixels enclose all the brain (4-connected air cannot leak in)
        assert np.all(ndimage.binary_fill_holes(bone)[brain]), z
        assert bone.sum() * s.pixel_mm**2 > 1000.0  # a ring of some mm, not a thin line


def test_head_layers_ordered(slices):
    """On rays from the centre outward: brain, then bone, then fat and skin, then air."""
    s = slices[0.5]
    for ray in (s.fractions[:, 64, 64:], s.fractions[:, 64, 63::-1], s.fractions[:, 64:, 64]):
        last_brain = np.flatnonzero(ray[list(BRAIN_LABELS)].sum(axis=0) > 0.5).max()
        bone = np.argmax(ray[BONE])
        first_air = np.flatnonzero(ray[BACKGROUND] == 1.0).min()
        assert last_brain < bone < first_air
        assert ray[FAT, bone:first_air].max() > 0.5 and ray[MUSCLE_SKIN, bone:first_air].max() > 0.3
        assert np.all(ray[BACKGROUND, first_air:] == 1.0)


def test_lesions():
    plain = make_slice(2, 0.6, matrix=128, seed=1)
    s = make_slice(2, 0.6, matrix=128, seed=1, lesions=True)
    assert s.fractions[LESION].max() > 0.5
    np.testing.assert_allclose(s.fractions.sum(axis=0), 1.0, atol=1e-5)
    # lesions replace WM only, and only in small regions
    np.testing.assert_allclose(
        s.fractions[WM] + s.fractions[LESION], plain.fractions[WM], atol=1e-6
    )
    lesion_area = s.fractions[LESION].sum() * s.pixel_mm**2
    assert 5.0 < lesion_area < 4 * math.pi * 4.0**2 + 1.0


def test_fields(slices):
    phases = []
    for s in slices.values():
        assert np.all(np.isfinite(s.phase_rad))
        assert s.b1_shape.min() >= -1.0 and s.b1_shape.max() <= 1.0
        head = s.fractions[BACKGROUND] < 0.5
        assert np.ptp(s.phase_rad[head]) > 0.3  # a smooth but non-trivial phase
        assert np.abs(np.diff(s.phase_rad, axis=0)).max() < 0.5
        # brighter centre than rim on average
        assert s.b1_shape[48:80, 48:80].mean() > s.b1_shape[head].min()
        phases.append(s.phase_rad)
    assert not np.array_equal(phases[0], phases[1])


def test_slice_positions():
    np.testing.assert_allclose(slice_positions(1), [0.55])
    np.testing.assert_allclose(slice_positions(3, 0.2, 0.6), [0.2, 0.4, 0.6])
    assert slice_positions(6).min() >= 0.0 and slice_positions(6).max() <= 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subject_id": -1},
        {"subject_id": 1.5},
        {"subject_id": True},
        {"slice_position": -0.1},
        {"slice_position": 1.2},
        {"slice_position": float("nan")},
        {"slice_position": "mid"},
        {"matrix": 4},
        {"matrix": 64.0},
        {"fov_mm": 0.0},
        {"fov_mm": float("inf")},
        {"seed": -1},
        {"supersample": 0},
        {"supersample": 9},
        {"lesions": "yes"},
    ],
)
def test_invalid_arguments(kwargs):
    args = {"subject_id": 0, "slice_position": 0.5, "matrix": 32} | kwargs
    with pytest.raises(ValueError):
        make_slice(**args)


def test_invalid_slice_positions():
    for bad in ((0,), (2, 0.8, 0.2), (2, -0.1, 0.5), (2, 0.5, 1.5), (2.0,)):
        with pytest.raises(ValueError):
            slice_positions(*bad)
