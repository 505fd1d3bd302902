"""Input transforms: a pixel's complex time series -> the networks' input ``x``.

Input to the networks (``x: float32[B, P, P, T, C]``)
-----------------------------------------------------
* **Normalisation** (:func:`normalise_signals`, the one function training and evaluation both
  call): each pixel's complex time series ``s`` (length ``T``) becomes
  ``s / ||s||_2 * sqrt(T) * e^{-i phi}``, so its entries are O(1) whatever the receive gain,
  the mean of ``|s_t|^2`` is 1, and its global phase ``phi`` (receive and background phase,
  :func:`phase_factor`) is removed: a network need not learn that a rotated fingerprint
  means the same tissue. The norm ``||s||_2`` is returned alongside; it is the M0 scale for
  evaluation (M0 ~ norm / norm of the matched dictionary atom). An all-zero signal stays zero
  (norm 0) instead of becoming NaN. Every signal of a patch is normalised by its own norm.
* **Subspace** (``TrainConfig.subspace_input``, on in RNN3's ``rinq`` recipe; the paper feeds
  the series as measured): before the normalisation, each series is projected onto the rank-50
  subspace of the matching dictionary (the paper grid times the B1 axis, `input_subspace`),
  ``s -> V^H V s`` with ``V`` complex[r, T] orthonormal rows, the compression template matching
  works in (McGivney et al., IEEE TMI 33:2311, 2014). At 48x undersampling 88 % of a pure
  white-matter series' energy is spiral aliasing outside that subspace (a test slice, README);
  the projection removes it and keeps every fingerprint of the grid (99.9+ % of their energy),
  so the network need not learn to. The input keeps its length T: the networks are unchanged.
* **Channels** (:func:`to_channels`): ``input_kind="complex"`` gives ``C = 2`` (real, imaginary
  parts of the normalised series); ``"magnitude"`` gives ``C = 1`` (``|normalised|``).
* **Patches** (:func:`gather_patches`): ``P = 1`` is the pixel itself;
  ``P = 3`` its 3x3 neighbourhood, ``x[:, 1, 1]`` being the centre. Neighbours outside the image
  are handled by **edge replication** (``numpy.pad(mode="edge")``, equivalently clamping the
  neighbour's row and column to the image): a pixel on the top row sees its own row again above
  it. Neighbours inside the image but outside the mask are served as they are (they are real,
  measured signals); only the centre pixels are restricted to the mask.

The loaders (``rinq_jax.data.pipeline.loader`` for slice files, ``rinq_jax.data.pipeline.stream``
for fresh draws) apply these transforms; the targets ``y_ms`` are the loaders' (see ``loader``).
"""

from __future__ import annotations

import os

import numpy as np

from rinq_jax.configs.data import DICTIONARY_RANK
from rinq_jax.configs.models import INPUT_CHANNELS, PATCH_SIZE
from rinq_jax.physics import dictionary
from rinq_jax.physics.sequence import FispSequence

PATCH_SIZES = tuple(sorted(set(PATCH_SIZE.values())))  # the models' P
# What `normalise_signals` does, recorded in every checkpoint and checked by `eval.py`.
SIGNAL_NORMALISATION = (
    "per-pixel s / ||s||_2 * sqrt(T), global phase removed "
    "(rinq_jax.data.pipeline.transforms.normalise_signals)"
)


SUBSPACE = (
    f"projected onto the rank-{DICTIONARY_RANK} subspace of the paper grid x "
    f"{len(dictionary.MATCHING_B1_VALUES)} B1 values (rinq_jax.data.pipeline.transforms.project), "
    "then "
)


def signal_normalisation(subspace_input: bool) -> str:
    """What is done to a series before the network, as recorded in checkpoints."""
    return (SUBSPACE if subspace_input else "") + SIGNAL_NORMALISATION


_SUBSPACES: dict[tuple[str, str], np.ndarray] = {}


def input_subspace(
    seq: FispSequence, cache_dir: str | os.PathLike, progress: bool = True
) -> np.ndarray:
    """complex64[r, T]: orthonormal rows spanning the matching dictionary of ``seq``.

    The dictionary (`dictionary.matching_dictionary`: paper grid, B1 axis, rank 50 or T - 1) is
    loaded from or built into ``cache_dir`` (with a progress bar if ``progress``), once per
    process.
    """
    key = (seq.hash, os.fspath(cache_dir))
    if key not in _SUBSPACES:
        rank = min(DICTIONARY_RANK, seq.n_reps - 1)
        built = dictionary.matching_dictionary(seq, cache_dir, rank, True, progress=progress)
        _SUBSPACES[key] = np.asarray(built.basis, np.complex64)
    return _SUBSPACES[key]


def project(signals: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """complex64[..., T]: each series' orthogonal projection ``V^H V s`` onto ``basis`` [r, T].

    Computed as one matrix product over all series (not numpy's stacked products).
    """
    signals = np.asarray(signals)
    flat = signals.reshape(-1, signals.shape[-1])
    return ((flat @ basis.conj().T) @ basis).astype(np.complex64).reshape(signals.shape)


def normalise_signals(signals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale each complex time series to L2 norm ``sqrt(T)``.

    Args:
        signals: complex[..., T] time series (any leading shape).

    Returns:
        normalised: complex64[..., T], ``signals / norms * sqrt(T)`` (zero where the norm is 0).
        norms: float32[...] the L2 norm of each input series (the M0 scale for evaluation).

    """
    signals = np.asarray(signals)
    n_reps = signals.shape[-1]
    norms = np.linalg.norm(signals, axis=-1).astype(np.float32)
    # Guarded division: background pixels can be exactly zero and must not become NaN.
    scale = np.where(norms > 0, np.sqrt(np.float32(n_reps)) / np.where(norms > 0, norms, 1), 0)
    return (signals * (scale * phase_factor(signals))[..., None]).astype(np.complex64), norms


def phase_factor(signals: np.ndarray) -> np.ndarray:
    """complex[...]: the unit factor that removes a series' global phase.

    A fingerprint is ``s_t = e^{i phi} d_t`` with ``d_t`` real (FISP with RF phases in steps of
    180 deg) and ``phi`` the pixel's receive and background phase, which says nothing about T1
    or T2. ``sum_t s_t^2 = e^{2 i phi} sum_t d_t^2`` gives ``phi`` up to pi without the
    cancellations of ``sum_t s_t``; the sign makes the second half's mean real part >= 0 (the
    recovered magnetisation). 1 for an all-zero series.
    """
    signals = np.asarray(signals, np.complex128)
    axis = np.sum(signals * signals, axis=-1)
    factor = np.exp(-0.5j * np.angle(axis))
    late = np.sum(signals[..., signals.shape[-1] // 2 :], axis=-1) * factor
    return np.where(late.real < 0, -factor, factor).astype(np.complex64)


def to_channels(normalised: np.ndarray, input_kind: str) -> np.ndarray:
    """Complex series -> network channels.

    Args:
        normalised: complex[..., T] (normally the output of :func:`normalise_signals`).
        input_kind: ``"complex"`` (C = 2: real, imaginary) or ``"magnitude"`` (C = 1).

    Returns:
        float32[..., T, C].

    """
    if input_kind == "complex":
        return np.stack([normalised.real, normalised.imag], axis=-1).astype(np.float32)
    if input_kind == "magnitude":
        return np.abs(normalised)[..., None].astype(np.float32)
    raise ValueError(f"input_kind must be one of {tuple(INPUT_CHANNELS)}, got {input_kind!r}")


def gather_patches(
    block: np.ndarray,
    row0: int,
    n_rows: int,
    rows: np.ndarray,
    cols: np.ndarray,
    patch_size: int,
) -> np.ndarray:
    """Patches from a block holding image rows ``row0 ...`` of an image with ``n_rows`` rows.

    Edge replication is clamping the neighbour coordinates to the image, so no padded copy of
    the block is made. The block must contain every clamped row.

    Args:
        block: [R, W, ...] image rows ``row0 ... row0 + R - 1``, any dtype.
        row0: the image row of ``block[0]``.
        n_rows: H, the image's number of rows.
        rows: int[N] centre pixel rows (of the image).
        cols: int[N] centre pixel columns.
        patch_size: odd P.

    Returns:
        [N, P, P, ...] patches, ``out[n, P // 2, P // 2] == block[rows[n] - row0, cols[n]]``.

    """
    half = patch_size // 2
    offsets = np.arange(-half, half + 1)
    n_cols = block.shape[1]
    rr = np.clip(np.asarray(rows)[:, None] + offsets, 0, n_rows - 1) - row0  # [N, P]
    cc = np.clip(np.asarray(cols)[:, None] + offsets, 0, n_cols - 1)  # [N, P]
    return block[rr[:, :, None], cc[:, None, :]]
