"""The neighbourhood experiment's CSF count and signed errors against hand-made slices."""

import numpy as np

from rinq_jax.data.files import io
from rinq_jax.data.subjects import tissues
from rinq_jax.experiments import neighbourhood
from rinq_jax.physics.sequence import paper_sequence


def test_neighbourhood_sum_counts_the_3x3_block_with_zeros_outside():
    image = np.zeros((5, 5))
    image[2, 2] = 1.0
    image[0, 0] = 0.5
    want = np.zeros((5, 5))
    want[1:4, 1:4] += 1.0
    want[0:2, 0:2] += 0.5  # the corner's neighbourhood is cut by the image edge
    np.testing.assert_allclose(neighbourhood.neighbourhood_sum(image), want)


def _slice() -> io.MrfSlice:
    """4 x 4: a column of CSF, then grey matter (one pixel 5 % CSF), then two of white matter."""
    shape = (4, 4)
    fractions = np.zeros(shape + (tissues.N_CLASSES,), np.float32)
    fractions[:, 0, tissues.CSF] = 1.0
    fractions[:, 1, tissues.GM] = 1.0
    fractions[0, 1, [tissues.GM, tissues.CSF]] = 0.95, 0.05
    fractions[:, 2:, tissues.WM] = 1.0
    tissue = fractions.argmax(axis=-1).astype(np.uint8)
    t1 = np.where(tissue == tissues.WM, 830.0, np.where(tissue == tissues.GM, 1330.0, 4000.0))
    t2 = np.where(tissue == tissues.WM, 80.0, np.where(tissue == tissues.GM, 110.0, 2000.0))
    return io.MrfSlice(
        "sub-0",
        "slice-0",
        paper_sequence(30, 0),
        mask=np.ones(shape, bool),
        tissue=tissue,
        t1_single_ms=t1.astype(np.float32),
        t2_single_ms=t2.astype(np.float32),
        fractions=fractions,
    )


def test_signed_errors_of_scaled_maps_and_each_pixels_csf_neighbourhood():
    truth = _slice()
    maps = {
        "exact": (truth.t1_single_ms, truth.t2_single_ms),
        "scaled": (1.1 * truth.t1_single_ms, 0.9 * truth.t2_single_ms),
    }
    out = neighbourhood.signed_errors(maps, truth)
    np.testing.assert_allclose(out["exact", "gm"][0], 0.0, atol=1e-5)
    errors, csf = out["scaled", "gm"]
    np.testing.assert_allclose(errors, np.tile([10.0, -10.0], (4, 1)), atol=1e-4)
    # grey-matter rows 0..3: CSF column pixels above, beside and below, plus row 0's 5 %
    np.testing.assert_allclose(csf, [2.05, 3.05, 3.0, 2.0], atol=1e-6)
    errors, csf = out["scaled", "wm"]
    assert len(errors) == 8  # both white-matter columns; none next to the CSF column
    np.testing.assert_allclose(csf[::2], [0.05, 0.05, 0.0, 0.0], atol=1e-6)  # beside row 0's 5 %
