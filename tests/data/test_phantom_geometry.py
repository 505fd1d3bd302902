"""Tests of the procedural subjects (rinq_jax.data.subjects.phantom_geometry).

The rendered geometry (layers, ventricles, lesions, slice levels) is tested through
``make_phantom`` in test_phantom.py.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rinq_jax.data.subjects import phantom_geometry
from rinq_jax.data.subjects.phantom_geometry import sample_subject
from rinq_jax.data.subjects.tissues import N_CLASSES


def test_subject_does_not_depend_on_other_subjects():
    alone = sample_subject(7, seed=2)
    _ = [sample_subject(k, seed=2) for k in range(10)]
    assert sample_subject(7, seed=2) == alone
    assert sample_subject(7, seed=3) != alone


@settings(max_examples=25, deadline=None)
@given(subject_id=st.integers(0, 10_000), seed=st.integers(0, 2**31))
def test_sampled_anatomy_is_plausible(subject_id, seed):
    a = sample_subject(subject_id, seed)
    assert 66.0 <= a.head_semi_axis_lr_mm <= 84.0
    assert 84.0 <= a.head_semi_axis_ap_mm <= 106.0
    assert a.head_semi_axis_lr_mm <= a.head_semi_axis_ap_mm
    assert 5.0 <= a.skull_mm <= 8.0 and 2.3 <= a.cortex_mm <= 3.2
    assert len(a.sulcus_angles_rad) == int(a.fold_frequency) == len(a.sulcus_depth_scales)
    assert 0.6 <= a.ventricle_scale <= 1.8 and abs(a.rotation_deg) <= 10.0
    for scales in (a.t1_scale, a.t2_scale, a.pd_scale):
        assert len(scales) == N_CLASSES and scales[0] == 1.0
        assert all(0.7 < s < 1.3 for s in scales)


@pytest.mark.parametrize("subject_id, seed", [(-1, 0), (0, -1), (1.5, 0), (True, 0)])
def test_sample_subject_rejects_bad_arguments(subject_id, seed):
    with pytest.raises(ValueError):
        sample_subject(subject_id, seed)


def test_module_exports_exist():
    for name in phantom_geometry.__all__:
        assert hasattr(phantom_geometry, name), name
