"""MRF dictionaries: the paper's (T1, T2) grid, simulation, SVD compression, storage.

The paper builds its ground truth by template matching (`rinq_jax.physics.matching`)
against this dictionary, with the dictionary and signals compressed to 50 SVD components
in time (McGivney et al., IEEE TMI 33:2311, 2014, doi:10.1109/TMI.2014.2337321).

Run ``python -m rinq_jax.physics.dictionary --out dict.h5`` to build and save the
paper-grid dictionary for `paper_sequence()`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import h5py
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from rinq_jax.atomic import atomic_path
from rinq_jax.configs.data import DICTIONARY_RANK, PAPER_N_REPS
from rinq_jax.physics import epg
from rinq_jax.physics.schedule_files import load_sequence
from rinq_jax.physics.sequence import FispSequence, paper_sequence, write_hdf5_group

# Supplementary Table 1 of the paper: (start, step, stop) in ms, stop included.
PAPER_T1_RANGES_MS = ((10, 10, 90), (100, 20, 1000), (1040, 40, 2000), (2050, 100, 4500))
PAPER_T2_RANGES_MS = (
    (2, 2, 98),
    (100, 5, 150),
    (160, 10, 300),
    (350, 50, 800),
    (900, 100, 1600),
    (1800, 200, 3000),
)

FORMAT_VERSION = 1


def _ranges(ranges) -> np.ndarray:
    return np.concatenate(
        [np.arange(start, stop + step / 2, step) for start, step, stop in ranges]
    ).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class Grid:
    """Dictionary entries as flat parameter vectors.

    Attributes:
        t1_ms: float32[N] T1 of each entry in ms.
        t2_ms: float32[N] T2 of each entry in ms.
        b1: float32[N] relative B1 of each entry, or None for a nominal-B1 dictionary.
    """

    t1_ms: np.ndarray
    t2_ms: np.ndarray
    b1: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.t1_ms.size)


def paper_grid(drop_t2_gt_t1: bool = True, b1_values=None) -> Grid:
    """The paper's dictionary grid (Supplementary Table 1).

    T1: 10:10:90, 100:20:1000, 1040:40:2000, 2050:100:4500 ms (9 + 46 + 25 + 25 = 105
    values; the last range stops at 4450);
    T2: 2:2:98, 100:5:150, 160:10:300, 350:50:800, 900:100:1600, 1800:200:3000 ms
    (49 + 11 + 15 + 10 + 8 + 7 = 100 values). Dropping T2 > T1 leaves 8,537 (T1, T2) pairs.

    Args:
        drop_t2_gt_t1: drop the physically impossible entries with T2 > T1.
        b1_values: optional relative B1 values; the grid becomes T1 x T2 x B1.
    """
    t1_ms, t2_ms = (
        a.ravel()
        for a in np.meshgrid(
            _ranges(PAPER_T1_RANGES_MS), _ranges(PAPER_T2_RANGES_MS), indexing="ij"
        )
    )
    keep = t2_ms <= t1_ms if drop_t2_gt_t1 else np.ones(t1_ms.shape, bool)
    t1_ms, t2_ms = t1_ms[keep], t2_ms[keep]
    if b1_values is None:
        return Grid(t1_ms, t2_ms)
    b1_values = np.asarray(b1_values, np.float32)
    return Grid(
        np.repeat(t1_ms, b1_values.size),
        np.repeat(t2_ms, b1_values.size),
        np.tile(b1_values, t1_ms.size),
    )


@dataclasses.dataclass(frozen=True, eq=False)
class Dictionary:
    """Simulated fingerprints of a grid, normalised to unit L2 norm.

    Attributes:
        atoms: complex64[N, T] (full) or complex64[N, K] (compressed, unit norm in the subspace).
        norms: float32[N] L2 norm of each simulated atom before normalisation (M0 = 1),
            so that simulate(...) = norms * (atoms @ basis) up to compression.
        grid: the entries' parameters.
        sequence_hash: `FispSequence.hash` of the schedule it was simulated for.
        basis: complex64[K, T] rows spanning the time subspace, or None if uncompressed.
        energy_kept: fraction of the dictionary's energy inside the subspace (1 if uncompressed).
    """

    atoms: np.ndarray
    norms: np.ndarray
    grid: Grid
    sequence_hash: str
    basis: np.ndarray | None = None
    energy_kept: float = 1.0

    @property
    def n_reps(self) -> int:
        """Number of time points T of the fingerprints."""
        return int(self.basis.shape[1] if self.basis is not None else self.atoms.shape[1])

    @property
    def rank(self) -> int | None:
        """Number of subspace components K, or None if uncompressed."""
        return None if self.basis is None else int(self.basis.shape[0])

    def project(self, signals) -> np.ndarray:
        """Subspace coefficients complex64[..., K] of time series complex[..., T] (s @ basis^H)."""
        if self.basis is None:
            raise ValueError("Dictionary.project: the dictionary is not compressed (no basis)")
        return np.asarray(jnp.asarray(signals, jnp.complex64) @ jnp.asarray(self.basis).conj().T)


def build(
    seq: FispSequence,
    grid: Grid,
    *,
    chunk_size: int = 2048,
    n_states: int = epg.DEFAULT_N_STATES,
    progress: bool = True,
) -> Dictionary:
    """Simulate and normalise every grid entry, ``chunk_size`` entries at a time (bounded memory).

    Memory: the atoms, N x T complex64 (8,000 x 3,000 -> 190 MB), plus one chunk's EPG states.
    """
    n = len(grid)
    b1 = grid.b1 if grid.b1 is not None else np.ones(n, np.float32)
    atoms = np.empty((n, seq.n_reps), np.complex64)
    norms = np.empty(n, np.float32)
    starts = range(0, n, chunk_size)
    for start in tqdm(starts, desc="EPG dictionary", unit="chunk", disable=not progress):
        stop = min(start + chunk_size, n)
        # Pad the last chunk so every chunk reuses one compiled simulation.
        index = np.minimum(np.arange(start, start + chunk_size), n - 1)
        signals = epg.simulate(
            seq, grid.t1_ms[index], grid.t2_ms[index], b1[index], n_states=n_states
        )
        chunk_norms = jnp.linalg.norm(signals, axis=-1)
        atoms[start:stop] = np.asarray(signals / chunk_norms[:, None])[: stop - start]
        norms[start:stop] = np.asarray(chunk_norms)[: stop - start]
    return Dictionary(atoms, norms, grid, seq.hash)


def _leading_eigenvectors(gram: np.ndarray, rank: int, n_iter: int = 6, seed: int = 0):
    """Leading ``rank`` eigenpairs of a Hermitian PSD matrix by block subspace iteration.

    LAPACK's eigensolvers (``scipy.linalg.eigh(gram, subset_by_index=...)``, the reference
    in tests/physics/test_dictionary.py) reduce the whole T x T matrix to tridiagonal form,
    O(T^3) for any rank. The MRF spectrum decays fast, so ``n_iter`` products with a block of
    ``rank + 20`` vectors, each followed by a QR, and a Rayleigh-Ritz step give the leading
    pairs to double precision, O(n_iter T^2 (rank + 20)). Deterministic (fixed seed).
    """
    size = gram.shape[0]
    block = min(size, rank + 20)
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((size, block)) + 1j * rng.standard_normal((size, block))
    for _ in range(n_iter):
        q, _ = np.linalg.qr(gram @ q)
    ritz_values, ritz_vectors = np.linalg.eigh(q.conj().T @ gram @ q)
    order = np.argsort(ritz_values)[::-1][:rank]
    return ritz_values[order], q @ ritz_vectors[:, order]


def compress(dictionary: Dictionary, rank: int = DICTIONARY_RANK) -> Dictionary:
    """Compress atoms to the ``rank`` leading right-singular vectors in time (SVD).

    The basis V (T x K) holds the leading eigenvectors of the T x T Gram matrix A^H A
    (= the right-singular vectors of A). The compressed atoms A V are re-normalised to
    unit norm (``norms`` absorbs the change), so matching in the subspace scores
    exactly like matching the projected full signals. ``energy_kept`` is
    ||A V||^2 / ||A||^2, the fraction of the atoms' energy inside the subspace.
    """
    if dictionary.basis is not None:
        raise ValueError("compress: the dictionary is already compressed")
    # rank = T would compress nothing, and `match` tells coefficients from time series by length.
    if not 1 <= rank < dictionary.n_reps:
        raise ValueError(
            f"compress: rank must lie in [1, {dictionary.n_reps - 1}] (below T), got {rank}"
        )
    atoms = dictionary.atoms
    gram = (atoms.conj().T @ atoms).astype(np.complex128)
    _, basis_t = _leading_eigenvectors(gram, rank)
    basis_t = basis_t.astype(np.complex64)
    coefficients = atoms @ basis_t
    coefficient_norms = np.linalg.norm(coefficients, axis=-1)
    energy_kept = float(np.sum(coefficient_norms.astype(np.float64) ** 2) / np.real(np.trace(gram)))
    return dataclasses.replace(
        dictionary,
        atoms=coefficients / coefficient_norms[:, None],
        norms=dictionary.norms * coefficient_norms,
        basis=np.ascontiguousarray(basis_t.conj().T),
        energy_kept=energy_kept,
    )


def save(dictionary: Dictionary, path: str | os.PathLike, seq: FispSequence | None = None) -> None:
    """Write ``dictionary`` (and optionally a copy of its sequence) to HDF5 atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["sequence_hash"] = dictionary.sequence_hash
            f.attrs["energy_kept"] = dictionary.energy_kept
            f["atoms"] = dictionary.atoms
            f["norms"] = dictionary.norms
            f["t1_ms"] = dictionary.grid.t1_ms
            f["t2_ms"] = dictionary.grid.t2_ms
            if dictionary.grid.b1 is not None:
                f["b1"] = dictionary.grid.b1
            if dictionary.basis is not None:
                f["basis"] = dictionary.basis
            if seq is not None:
                if seq.hash != dictionary.sequence_hash:
                    raise ValueError(
                        f"save: sequence hash {seq.hash} differs from the dictionary's "
                        f"{dictionary.sequence_hash}"
                    )
                write_hdf5_group(f, seq)


def load(path: str | os.PathLike, seq: FispSequence | None = None) -> Dictionary:
    """Read a dictionary written by `save`; with ``seq``, refuse one simulated for another schedule."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            version = int(f.attrs.get("format_version", -1))
            if version != FORMAT_VERSION:
                raise ValueError(f"{path}: format_version {version}, expected {FORMAT_VERSION}")
            for name in ("atoms", "norms", "t1_ms", "t2_ms"):
                if name not in f:
                    raise ValueError(f"{path}: missing dataset '{name}'")
            grid = Grid(f["t1_ms"][()], f["t2_ms"][()], f["b1"][()] if "b1" in f else None)
            dictionary = Dictionary(
                atoms=f["atoms"][()],
                norms=f["norms"][()],
                grid=grid,
                # files written before dictionaries took the slices' attribute name: "seq_hash"
                sequence_hash=str(f.attrs.get("sequence_hash", f.attrs.get("seq_hash", ""))),
                basis=f["basis"][()] if "basis" in f else None,
                energy_kept=float(f.attrs["energy_kept"]),
            )
    except OSError as error:
        raise ValueError(f"{path}: cannot read dictionary file ({error})") from error
    if seq is not None and seq.hash != dictionary.sequence_hash:
        raise ValueError(
            f"{path}: simulated for sequence {dictionary.sequence_hash}, not for this sequence ({seq.hash})"
        )
    return dictionary


def cached(
    seq: FispSequence,
    grid: Grid,
    cache_dir: str | os.PathLike,
    rank: int | None = DICTIONARY_RANK,
    **build_kwargs,
) -> Dictionary:
    """Load the dictionary for (seq, grid, rank) from ``cache_dir``, building and saving it on a miss.

    The file name carries the sequence hash, the grid size and the rank, so a cached
    dictionary is never reused for another schedule.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    b1_tag = "" if grid.b1 is None else f"-b1x{np.unique(grid.b1).size}"
    path = cache_dir / f"dict-{seq.hash}-n{len(grid)}{b1_tag}-r{rank or 'full'}.h5"
    if path.exists():
        return load(path, seq)
    dictionary = build(seq, grid, **build_kwargs)
    if rank is not None:
        dictionary = compress(dictionary, rank)
    save(dictionary, path, seq)
    return dictionary


def main(argv=None) -> int:
    """Build the paper-grid dictionary and save it: ``python -m rinq_jax.physics.dictionary --out FILE``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="HDF5 file to write")
    parser.add_argument(
        "--sequence", type=Path, help="CSV/NPZ schedule (default: paper_sequence())"
    )
    parser.add_argument(
        "--n-reps", type=int, default=PAPER_N_REPS, help="repetitions of paper_sequence"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of paper_sequence (default 0)")
    parser.add_argument(
        "--rank",
        type=int,
        default=DICTIONARY_RANK,
        help="SVD rank; 0 keeps the full time series (default %(default)s)",
    )
    parser.add_argument("--keep-t2-gt-t1", action="store_true", help="keep entries with T2 > T1")
    parser.add_argument(
        "--b1", type=str, help="comma-separated relative B1 values, e.g. 0.8,0.9,1.0,1.1,1.2"
    )
    parser.add_argument(
        "--n-states", type=int, default=epg.DEFAULT_N_STATES, help="EPG dephasing states"
    )
    args = parser.parse_args(argv)
    seq = load_sequence(args.sequence) if args.sequence else paper_sequence(args.n_reps, args.seed)
    b1_values = [float(v) for v in args.b1.split(",")] if args.b1 else None
    grid = paper_grid(drop_t2_gt_t1=not args.keep_t2_gt_t1, b1_values=b1_values)
    start = time.perf_counter()
    dictionary = build(seq, grid, n_states=args.n_states)
    build_s = time.perf_counter() - start
    if args.rank:
        dictionary = compress(dictionary, args.rank)
    total_s = time.perf_counter() - start
    save(dictionary, args.out, seq)
    kept = (
        f", rank {args.rank} loses {1 - dictionary.energy_kept:.1e} of the energy"
        if args.rank
        else ""
    )
    print(
        f"{len(grid)} entries x {seq.n_reps} repetitions (sequence {seq.hash}){kept}; "
        f"simulated in {build_s:.1f} s, {total_s:.1f} s in all; "
        f"{args.out} is {args.out.stat().st_size / 2**20:.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())


# The B1 axis of the matching dictionary where B1 varies (the generated data's 0.8-1.2 range).
MATCHING_B1_VALUES = (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2)


def matching_dictionary(
    seq: FispSequence,
    cache_dir: str | os.PathLike,
    rank: int | None,
    b1_axis: bool,
    progress: bool = True,
) -> Dictionary:
    """The dictionary of template matching, loaded from or built into ``cache_dir``.

    The paper grid (`paper_grid`), with the B1 axis `MATCHING_B1_VALUES` if ``b1_axis``,
    simulated for ``seq`` and compressed to ``rank``; ``progress``: a progress bar while building.
    """
    grid = paper_grid(b1_values=MATCHING_B1_VALUES if b1_axis else None)
    return cached(seq, grid, cache_dir, rank=rank, progress=progress)
