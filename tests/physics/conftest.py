"""The paper-grid dictionary, full and compressed, shared by the dictionary and matching tests."""

import pytest

from rinq_jax.physics import dictionary as dic
from rinq_jax.physics.sequence import paper_sequence


@pytest.fixture(scope="session")
def paper_dictionaries():
    """(paper_sequence(), the full paper-grid dictionary, the same compressed to rank 50)."""
    seq = paper_sequence()
    full = dic.build(seq, dic.paper_grid(), progress=False)
    return seq, full, dic.compress(full, rank=50)
