"""Property-based tests (hypothesis) of the quantile layer and of the loader's patch gathering."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rinq_jax.data.pipeline import transforms
from rinq_jax.models.quantile import quantile

# Few distinct shapes: every (shape, q, axis) compiles its own kernel.
SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)
# Values on a coarse grid, so ties (the hard case for the gradient) are common.
ELEMENTS = st.integers(-20, 20).map(lambda i: i / 4)
LEVELS = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 1.0))


@st.composite
def quantile_inputs(draw):
    shape = draw(SHAPES)
    x = draw(hnp.arrays(np.float32, shape, elements=ELEMENTS))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return x, draw(LEVELS), axis


@settings(max_examples=40, deadline=None)
@given(quantile_inputs())
def test_forward_equals_numpy_quantile(inputs):
    x, q, axis = inputs
    got = np.asarray(quantile(jnp.asarray(x), q, axis))
    want = np.quantile(x.astype(np.float64), q, axis=axis)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(quantile_inputs(), st.randoms(use_true_random=False))
def test_forward_is_permutation_invariant(inputs, rnd):
    x, q, axis = inputs
    perm = list(range(x.shape[axis]))
    rnd.shuffle(perm)
    shuffled = np.take(x, perm, axis=axis)
    np.testing.assert_array_equal(quantile(jnp.asarray(shuffled), q, axis), quantile(x, q, axis))


@settings(max_examples=40, deadline=None)
@given(quantile_inputs())
def test_gradient_is_a_selection_summing_to_one(inputs):
    """Per reduced slice: weights >= 0 summing to 1, on at most two elements, and only on
    elements whose value is one of the two order statistics interpolated between."""
    x, q, axis = inputs
    grad = np.asarray(jax.grad(lambda v: quantile(v, q, axis).sum())(jnp.asarray(x)))
    rows = np.moveaxis(grad, axis, -1).reshape(-1, x.shape[axis])
    values = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
    n = x.shape[axis]
    pos = q * (n - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    np.testing.assert_allclose(rows.sum(-1), 1.0, rtol=1e-6)
    assert (rows >= 0).all()
    for g, v in zip(rows, values, strict=True):
        ordered = np.sort(v)
        support = np.flatnonzero(g)
        assert 1 <= support.size <= 2
        assert set(v[support]) <= {ordered[lo], ordered[hi]}


@settings(max_examples=30, deadline=None)
@given(quantile_inputs(), st.floats(-3, 3, allow_nan=False))
def test_gradient_scales_with_the_cotangent(inputs, scale):
    x, q, axis = inputs
    g1 = jax.grad(lambda v: quantile(v, q, axis).sum())(jnp.asarray(x))
    gs = jax.grad(lambda v: (scale * quantile(v, q, axis)).sum())(jnp.asarray(x))
    np.testing.assert_allclose(gs, np.float32(scale) * g1, rtol=1e-6, atol=1e-7)


@settings(max_examples=60, deadline=None)
@given(
    n_rows=st.integers(1, 9),
    n_cols=st.integers(1, 6),
    patch_size=st.sampled_from(transforms.PATCH_SIZES),
    block_rows=st.integers(1, 4),
    data=st.data(),
)
def test_block_gather_equals_whole_image_patches(n_rows, n_cols, patch_size, block_rows, data):
    """The loader gathers patches from a block of rows plus its halo (as the loader reads it);
    they equal slices of numpy's edge padding."""
    image = np.arange(n_rows * n_cols * 2, dtype=np.float32).reshape(n_rows, n_cols, 2)
    block0 = data.draw(st.integers(0, (n_rows - 1) // block_rows)) * block_rows
    rows_in_block = np.arange(block0, min(n_rows, block0 + block_rows))
    rows = data.draw(st.lists(st.sampled_from(list(rows_in_block)), min_size=1, max_size=6))
    cols = data.draw(st.lists(st.integers(0, n_cols - 1), min_size=len(rows), max_size=len(rows)))
    half = patch_size // 2
    row0, row1 = max(0, block0 - half), min(n_rows, block0 + block_rows + half)
    got = transforms.gather_patches(image[row0:row1], row0, n_rows, np.array(rows),
                                    np.array(cols), patch_size)  # fmt: skip
    # independent reference: numpy's edge padding, then plain slices
    padded = np.pad(image, ((half, half), (half, half), (0, 0)), mode="edge")
    want = np.stack(
        [padded[r : r + patch_size, c : c + patch_size] for r, c in zip(rows, cols, strict=True)]
    )
    np.testing.assert_array_equal(got, want)
    assert got.shape == (len(rows), patch_size, patch_size, 2)
