"""Tests of the train / validation / test splits of slice files."""

import pytest

from rinq_jax.data.files import io
from rinq_jax.data.pipeline.splits import random_slice_split
from tests.data.test_io import make_slice


def _write(tmp_path, name, **kwargs):
    path = tmp_path / f"{name}.h5"
    io.write_slice(path, make_slice(**kwargs))
    return str(path)


@pytest.fixture
def corpus(tmp_path):
    """8 subjects with 4 slices (28 would be slow to write; sizes are what matters)."""
    paths = []
    for subject in range(7):
        for z in range(4):
            name = f"s{subject}_z{z}"
            paths.append(
                _write(tmp_path, name, shape=(4, 4, 8), subject_id=f"s{subject}", slice_id=f"z{z}")
            )
    return paths


@pytest.mark.parametrize("sizes", [(8, 2, 2), (19, 7, 2)])
def test_random_slice_split(corpus, sizes):
    split = random_slice_split(corpus, *sizes, seed=0)
    assert tuple(map(len, (split.train, split.val, split.test))) == sizes
    parts = [set(split.train), set(split.val), set(split.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert split == random_slice_split(list(reversed(corpus)), *sizes, seed=0)
    assert split != random_slice_split(corpus, *sizes, seed=1)


def test_random_split_errors(corpus):
    with pytest.raises(ValueError, match="needs 29 slices, only 28"):
        random_slice_split(corpus, 20, 7, 2, seed=0)
    with pytest.raises(ValueError, match="same slice"):
        random_slice_split([*corpus, corpus[0]], 1, 1, 1, seed=0)
