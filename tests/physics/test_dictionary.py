"""The paper's grid, simulation, SVD compression and storage of dictionaries."""

import numpy as np
import pytest
import scipy.linalg

from rinq_jax.physics import dictionary as dic
from rinq_jax.physics.epg import simulate
from rinq_jax.physics.sequence import paper_sequence


def test_paper_grid_reproduces_the_supplementary_table():
    full = dic.paper_grid(drop_t2_gt_t1=False)
    t1_values, t2_values = np.unique(full.t1_ms), np.unique(full.t2_ms)
    assert t1_values.size == 9 + 46 + 25 + 25  # 10:10:90, 100:20:1000, 1040:40:2000, 2050:100:4500
    assert t2_values.size == 49 + 11 + 15 + 10 + 8 + 7
    assert len(full) == t1_values.size * t2_values.size
    for value in (10, 90, 100, 1000, 1040, 2000, 2050, 4450):
        assert value in t1_values
    for value in (2, 98, 100, 150, 160, 300, 350, 800, 900, 1600, 1800, 3000):
        assert value in t2_values
    assert 4500 not in t1_values  # 2050:100:4500 stops at 4450
    assert 1020 not in t1_values and 3100 not in t2_values
    grid = dic.paper_grid()
    assert np.all(grid.t2_ms <= grid.t1_ms) and len(grid) == np.sum(full.t2_ms <= full.t1_ms)
    with_b1 = dic.paper_grid(b1_values=[0.9, 1.0, 1.1])
    assert len(with_b1) == 3 * len(grid) and set(np.unique(with_b1.b1)) == {
        np.float32(0.9),
        1.0,
        np.float32(1.1),
    }


def test_atoms_are_normalised_simulations(paper_dictionaries):
    seq, full, _ = paper_dictionaries
    np.testing.assert_allclose(np.linalg.norm(full.atoms, axis=-1), 1.0, rtol=1e-5)
    i = 1234
    expected = simulate(seq, full.grid.t1_ms[i], full.grid.t2_ms[i])
    np.testing.assert_allclose(full.atoms[i] * full.norms[i], expected, atol=1e-5)


def test_rank_50_keeps_the_energy(paper_dictionaries):
    _, full, compressed = paper_dictionaries
    assert compressed.energy_kept >= 0.999
    assert compressed.atoms.shape == (len(full.grid), 50) and compressed.basis.shape == (50, 3000)
    np.testing.assert_allclose(compressed.basis @ compressed.basis.conj().T, np.eye(50), atol=1e-5)


def test_subspace_iteration_equals_lapack_eigh(paper_dictionaries):
    # The leading eigenpairs of a paper dictionary's Gram matrix (first 600 repetitions), by
    # the compressor's subspace iteration and by LAPACK through scipy.
    _, full, _ = paper_dictionaries
    atoms = full.atoms[::4, :600].astype(np.complex128)
    gram = atoms.conj().T @ atoms
    values, vectors = dic._leading_eigenvectors(gram, 20)
    ref_values, ref_vectors = scipy.linalg.eigh(gram, subset_by_index=[580, 599])
    # eigenvalues to double precision relative to the largest
    np.testing.assert_allclose(values, ref_values[::-1], rtol=0, atol=1e-10 * values[0])
    # the same subspace: projecting the reference vectors onto ours keeps them whole
    np.testing.assert_allclose(np.linalg.norm(vectors.conj().T @ ref_vectors, axis=0), 1, atol=1e-6)


def test_compress_refuses_ranks_outside_one_to_t_minus_one():
    seq = paper_sequence(20)
    full = dic.build(
        seq, dic.Grid(np.array([800.0], np.float32), np.array([60.0], np.float32)), progress=False
    )
    for rank in (0, 20):
        with pytest.raises(ValueError, match=r"rank must lie in \[1, 19\]"):
            dic.compress(full, rank)


def test_save_load_round_trip_and_sequence_check(tmp_path):
    seq = paper_sequence(200)
    grid = dic.Grid(
        np.array([800.0, 1300.0, 4000.0], np.float32), np.array([60.0, 90.0, 2000.0], np.float32)
    )
    compressed = dic.compress(dic.build(seq, grid, progress=False), rank=2)
    path = tmp_path / "d.h5"
    dic.save(compressed, path, seq)
    loaded = dic.load(path, seq)
    for name in ("atoms", "norms", "basis"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(compressed, name))
    np.testing.assert_array_equal(loaded.grid.t2_ms, grid.t2_ms)
    assert loaded.energy_kept == compressed.energy_kept and loaded.sequence_hash == seq.hash
    assert [p.name for p in tmp_path.iterdir()] == ["d.h5"]
    with pytest.raises(ValueError, match="not for this sequence"):
        dic.load(path, paper_sequence(200, seed=1))
    (tmp_path / "broken.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="broken.h5"):
        dic.load(tmp_path / "broken.h5")


def test_cached_builds_once(tmp_path):
    seq = paper_sequence(100)
    grid = dic.Grid(np.array([500.0, 900.0], np.float32), np.array([50.0, 70.0], np.float32))
    first = dic.cached(seq, grid, tmp_path, rank=2, progress=False)
    (path,) = tmp_path.iterdir()
    assert seq.hash in path.name
    mtime = path.stat().st_mtime_ns
    second = dic.cached(seq, grid, tmp_path, rank=2, progress=False)
    assert path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(first.atoms, second.atoms)


def test_cli_builds_and_saves(tmp_path, capsys):
    out = tmp_path / "cli.h5"
    assert dic.main(["--out", str(out), "--n-reps", "100", "--rank", "10"]) == 0
    printed = capsys.readouterr().out
    assert "8537 entries x 100 repetitions" in printed and "MiB" in printed
    assert dic.load(out).atoms.shape == (8537, 10)
