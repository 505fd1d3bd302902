"""The slice profile against the Fourier picture of selective excitation."""

import numpy as np
import pytest

from rinq_jax.physics import epg
from rinq_jax.physics.sequence import paper_sequence
from rinq_jax.physics.slice_profile import envelope_profile, sinc_profile


@pytest.mark.parametrize("tbw", [4.0, 8.0])
def test_profile_is_the_rect_of_the_sinc_at_half_maximum_on_the_slice_edge(tbw):
    """A windowed sinc's spectrum is a rect convolved with the window's narrow symmetric
    spectrum: 1 in the middle, exactly 1/2 at the band edge, ~0 a bandwidth away."""
    centre, edge, outside = envelope_profile(tbw, np.array([0.0, 0.5, 1.0]))
    assert centre == pytest.approx(1.0)
    assert edge == pytest.approx(0.5, abs=0.01)
    assert outside < 0.01


def test_sinc_profile_samples_twice_the_slice_symmetrically_with_unit_weight():
    p = sinc_profile(4.0, n_points=16, extent=2.0)
    np.testing.assert_allclose(p.scales, p.scales[::-1])
    assert p.weights.sum() == pytest.approx(1.0)
    assert p.scales.max() <= 1.0 and p.scales.min() < 0.01


def test_a_softer_pulse_moves_the_fingerprint_further_from_the_ideal_slice():
    """The angle between white matter's profile-summed and ideal fingerprints grows as the
    time-bandwidth product (the edge's sharpness) falls."""
    seq = paper_sequence(1000)
    ideal = np.asarray(epg.simulate(seq, 830.0, 80.0))
    angle = {}
    for tbw in (8.0, 4.0, 2.0):
        p = sinc_profile(tbw)
        s = p.weights @ np.asarray(epg.simulate(seq, 830.0, 80.0, p.scales))  # [T]
        cosine = abs(np.vdot(ideal, s)) / (np.linalg.norm(ideal) * np.linalg.norm(s))
        angle[tbw] = np.arccos(min(cosine, 1.0))
    assert 0 < angle[8.0] < angle[4.0] < angle[2.0]
