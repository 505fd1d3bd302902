"""Tests of the subjects' geometry drawn on the ICBM 2009a template (rinq_jax.data.subjects.template)."""

import dataclasses

import pytest

from rinq_jax.data.subjects.template import SubjectGeometry, sample_geometry


def test_geometry_is_reproducible_and_differs_between_subjects_and_seeds():
    assert sample_geometry(3, seed=2) == sample_geometry(3, seed=2)
    assert sample_geometry(0) != sample_geometry(1)
    assert sample_geometry(0, seed=0) != sample_geometry(0, seed=1)


def test_geometry_ranges():
    for k in range(20):
        g = sample_geometry(k)
        assert isinstance(g, SubjectGeometry) and g.subject_id == k
        assert 0.85 <= g.scale_lr <= 1.15 and 0.85 <= g.scale_ap <= 1.15
        assert abs(g.rotation_deg) <= 10.0 and max(map(abs, g.offset_mm)) <= 10.0
        assert 1.5 <= g.skin_mm <= 3.0 and 2.5 <= g.scalp_fat_mm <= 5.5
        assert 5.0 <= g.skull_mm <= 8.0 and 0.0 <= g.csf_mm <= 2.0
        assert 15.0 <= g.warp_smoothness_mm <= 25.0 and 1 <= g.lesion_count <= 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.skull_mm = 1.0  # type: ignore[misc]


def test_invalid_geometry():
    for bad in ((-1,), (0, -1), (0.5,)):
        with pytest.raises(ValueError):
            sample_geometry(*bad)
