"""Slice files of the procedural phantom: phantom -> EPG -> spiral k-space -> gridding -> HDF5.

The presets ``quick`` and ``paper`` (`rinq_jax.configs.data`) of the generator command
(`rinq_jax.generate`). For each subject and slice position:

1. a brain phantom (`rinq_jax.data.subjects.phantom`) gives true T1, T2, M0 and B1 maps;
2. every head pixel's fingerprint is simulated with the EPG (`rinq_jax.physics.epg`)
   and projected onto the rank-K SVD basis of the paper-grid dictionary, giving K
   coefficient images (the series is low-rank, so step 3 costs K NUFFTs, not T);
3. the spiral acquisition (`rinq_jax.data.acquisition.acquisition`) samples one interleaf per
   repetition, adds complex Gaussian noise at the requested SNR and reconstructs the
   aliased image series with the gridding adjoint;
4. dictionary matching of that series (`rinq_jax.physics.matching.match`, rank K)
   gives the paper's kind of ground truth, ``dm_t1_ms`` and ``dm_t2_ms``;
5. the slice is written atomically in the format of docs/data_format.md.

Files that already exist and pass `rinq_jax.data.files.io.inspect` are skipped, so a killed run
resumes where it stopped; a file is only ever complete or absent (temp name, then rename).
A writer killed with SIGKILL cannot remove its temporary file (``<name>.tmp-<pid>``); readers
ignore such files (they do not end in ``.h5``) and the next run removes those of processes that
are no longer running, in the output folder and the dictionary cache.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rinq_jax.configs.data import (
    DICTIONARY_RANK,
    PAPER_FOV_MM,
    PAPER_MATRIX,
    PAPER_N_REPS,
    PAPER_UNDERSAMPLING,
    PHANTOM_PRESETS,
)
from rinq_jax.data.acquisition import acquisition, spiral
from rinq_jax.data.files import io
from rinq_jax.data.subjects import phantom, phantom_geometry, tissues
from rinq_jax.physics import dictionary as dictionary_lib
from rinq_jax.physics import epg
from rinq_jax.physics.matching import match
from rinq_jax.physics.sequence import FispSequence, paper_sequence


@dataclasses.dataclass(frozen=True)
class GenerateConfig:
    """What to generate; every slice is reproducible from (seed, subject, slice).

    Attributes:
        n_subjects: subjects (independent anatomies and tissue values).
        n_slices: slices per subject, spread over `phantom.slice_positions`.
        matrix: image matrix (H = W); 256 is the paper's 1.17 mm at 300 mm FOV.
        fov_mm: field of view in mm.
        n_reps: repetitions of `paper_sequence` (3,000 in the paper).
        sequence_seed: seed of `paper_sequence`.
        undersampling: spiral undersampling factor (48 in the paper).
        snr: SNR of the fully sampled reconstruction (see `spiral.AcquisitionConfig`),
            or None for noiseless data.
        fully_sampled: acquire all interleaves in every repetition (reference data).
        rank: SVD rank of the dictionary subspace (50 in the paper).
        b1_field: give the phantoms a smooth B1 field; dictionary matching then uses a
            B1 axis (`dictionary.MATCHING_B1_VALUES`), as the paper's 691,497-entry dictionary
            (8,537 x 81) did.
        lesions: add lesions to some white matter.
        seed: seed of anatomies, tissue values and noise.
    """

    n_subjects: int = 4
    n_slices: int = 3
    matrix: int = PAPER_MATRIX
    fov_mm: float = PAPER_FOV_MM
    n_reps: int = PAPER_N_REPS
    sequence_seed: int = 0
    undersampling: int = PAPER_UNDERSAMPLING
    snr: float | None = 30.0
    fully_sampled: bool = False
    rank: int = DICTIONARY_RANK
    b1_field: bool = False
    lesions: bool = False
    seed: int = 0

    def sequence(self) -> FispSequence:
        """The acquisition schedule of every slice."""
        return paper_sequence(self.n_reps, self.sequence_seed)

    def acquisition(self) -> spiral.AcquisitionConfig:
        """The spiral acquisition of every slice."""
        return spiral.AcquisitionConfig(
            matrix=self.matrix,
            fov_mm=self.fov_mm,
            undersampling=self.undersampling,
            snr=self.snr,
            fully_sampled=self.fully_sampled,
        )


PRESETS = {name: GenerateConfig(**fields) for name, fields in PHANTOM_PRESETS.items()}


def slice_path(out_dir: Path, subject: int, slice_index: int) -> Path:
    """File of one slice: ``sub-XX_slice-YY.h5``."""
    return out_dir / f"sub-{subject:02d}_slice-{slice_index:02d}.h5"


def matching_dictionary(config: GenerateConfig, cache_dir: Path) -> dictionary_lib.Dictionary:
    """The rank-K paper-grid dictionary (with a B1 axis if the phantoms have B1), cached."""
    seq = config.sequence()
    return dictionary_lib.matching_dictionary(seq, cache_dir, config.rank, b1_axis=config.b1_field)


def phantom_coefficients(
    ph: phantom.Phantom, seq: FispSequence, basis: np.ndarray, chunk_size: int = 4096
) -> np.ndarray:
    """Subspace coefficient images complex64[K, H, W] of the phantom's noiseless series.

    Each head pixel's fingerprint M0 * EPG(T1, T2, B1) is simulated and projected onto
    ``basis`` (complex64[K, T]) in chunks, so memory stays at one chunk of fingerprints.
    """
    head = np.flatnonzero(ph.m0.ravel() != 0)
    t1_ms, t2_ms, b1 = (a.ravel()[head] for a in (ph.t1_ms, ph.t2_ms, ph.b1))
    coefficients = np.zeros((basis.shape[0], ph.matrix * ph.matrix), np.complex64)
    basis_h = basis.conj().T
    for start in range(0, head.size, chunk_size):
        # Pad to a fixed chunk so one compiled simulation serves every chunk.
        index = np.minimum(np.arange(start, start + chunk_size), head.size - 1)
        signals = np.asarray(epg.simulate(seq, t1_ms[index], t2_ms[index], b1[index]))
        n = min(chunk_size, head.size - start)
        coefficients[:, head[start : start + n]] = (signals[:n] @ basis_h).T
    coefficients *= ph.m0.ravel()[None, :]
    return coefficients.reshape(-1, ph.matrix, ph.matrix)


def slice_phantom(
    config: GenerateConfig, subject: int, slice_index: int
) -> tuple[phantom.Phantom, float]:
    """The phantom of one slice (step 1) and its slice position."""
    anatomy = phantom_geometry.sample_subject(subject, config.seed)
    position = float(phantom.slice_positions(config.n_slices)[slice_index])
    ph = phantom.make_phantom(
        anatomy,
        position,
        matrix=config.matrix,
        fov_mm=config.fov_mm,
        seed=config.seed * 1000 + slice_index,
        lesions=config.lesions,
        b1_field=config.b1_field,
    )
    return ph, position


def generate_slice(
    config: GenerateConfig,
    subject: int,
    slice_index: int,
    dictionary: dictionary_lib.Dictionary,
    out: np.ndarray | None = None,
) -> io.MrfSlice:
    """Simulate one slice (steps 1-4 of the module docstring).

    ``out``: a complex64[H, W, T] buffer the signals are written into (the previous slice's,
    once written to disk), see ``acquisition.acquire``.
    """
    seq = config.sequence()
    ph, position = slice_phantom(config, subject, slice_index)
    coefficients = phantom_coefficients(ph, seq, dictionary.basis)
    rng = np.random.default_rng([config.seed, subject, slice_index])
    signals = acquisition.acquire(
        coefficients, dictionary.basis, config.acquisition(), rng, out=out
    )
    matched = match(dictionary.project(signals[ph.mask]), dictionary)
    dm_t1_ms, dm_t2_ms = np.zeros_like(ph.t1_ms), np.zeros_like(ph.t2_ms)
    dm_t1_ms[ph.mask], dm_t2_ms[ph.mask] = matched.t1_ms, matched.t2_ms
    return io.MrfSlice(
        subject_id=f"sub-{subject:02d}",
        slice_id=f"slice-{slice_index:02d}",
        sequence=seq,
        signals=signals,
        mask=ph.mask,
        t1_ms=np.where(ph.mask, ph.t1_ms, 0).astype(np.float32),
        t2_ms=np.where(ph.mask, ph.t2_ms, 0).astype(np.float32),
        m0=ph.m0,
        b1=ph.b1,
        tissue=ph.tissue,
        dm_t1_ms=dm_t1_ms,
        dm_t2_ms=dm_t2_ms,
        acquisition={
            "undersampling": config.acquisition().effective_undersampling,
            "snr": np.nan if config.snr is None else config.snr,
            "n_interleaves": config.acquisition().n_interleaves,
            "matrix": config.matrix,
            "fov_mm": config.fov_mm,
        },
        generator={
            "config": repr(config),
            "slice_position": position,
            "dm_rank": config.rank,
            "tissue_labels": repr(dict(tissues.TISSUES)),
        },
    )


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Remove ``*.tmp-<pid>`` files (atomic writers' temporaries) whose process has ended.

    Temporaries of running processes (e.g. a concurrent generator) are kept; a reused pid
    merely keeps a stale file until a later run. Returns the removed files.
    """
    removed = []
    for path in sorted(Path(folder).glob("*.tmp-*")):
        pid = path.name.rsplit(".tmp-", 1)[1].split(".")[0]
        if path.is_file() and pid.isdigit() and not _pid_running(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def generate(
    config: GenerateConfig, out_dir: Path, cache_dir: Path | None = None, progress: bool = True
) -> list[Path]:
    """Generate every slice of ``config`` into ``out_dir``, skipping complete files.

    Returns:
        The slice files, sorted by subject then slice.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir or out_dir / "cache")
    for folder in (out_dir, cache_dir):
        for path in remove_stale_temp_files(folder):
            print(f"removed {path} (left by a killed writer)", file=sys.stderr)
    paths = {
        (subject, s): slice_path(out_dir, subject, s)
        for subject in range(config.n_subjects)
        for s in range(config.n_slices)
    }
    todo = [key for key, path in paths.items() if not io.is_complete(path)]
    if todo:
        dictionary = matching_dictionary(config, cache_dir)
        buffer = None  # one signal buffer for all slices: no fresh 1.6 GB per paper slice
        for subject, s in tqdm(todo, desc="slices", unit="slice", disable=not progress):
            mrf_slice = generate_slice(config, subject, s, dictionary, out=buffer)
            io.write_slice(paths[subject, s], mrf_slice)
            buffer = mrf_slice.signals
    return sorted(paths.values())


def check_counts(config: GenerateConfig) -> None:
    """Refuse counts that cannot describe a dataset (before any work is done)."""
    for name in ("n_subjects", "n_slices", "n_reps", "rank"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.rank >= config.n_reps:
        raise ValueError(f"rank {config.rank} must be below the {config.n_reps} repetitions")
