"""Tests of the tissue classes and their values (rinq_jax.data.subjects.tissues)."""

import pytest

from rinq_jax.data.subjects import tissues
from rinq_jax.data.subjects.tissues import (
    BACKGROUND,
    N_CLASSES,
    TISSUE_PROPERTIES,
    TISSUES,
)


def test_tissue_names():
    assert TISSUES[BACKGROUND] == "background"
    assert {"wm", "gm", "csf", "fat", "muscle_skin", "lesion"} <= set(TISSUES.values())
    assert sorted(TISSUES) == list(range(N_CLASSES))
    assert all(TISSUE_PROPERTIES[k].name == TISSUES[k] for k in TISSUES)
    with pytest.raises(TypeError):
        TISSUES[99] = "x"  # read-only mapping


def test_module_exports_exist():
    for name in tissues.__all__:
        assert hasattr(tissues, name), name
