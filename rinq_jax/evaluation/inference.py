"""Full-slice inference with a trained checkpoint: bounded memory, one compiled batch shape.

A slice is read in blocks of ``chunk_rows`` image rows
(`rinq_jax.data.pipeline.loader.slice_patches`, normalised exactly as in training) and fed to the
network in fixed batches of ``batch_size`` patches; the last, short batch is padded, so one compiled
forward serves every batch and every slice. At paper size (256 x 256 x 3000, complex, 3 x 3 patches)
memory stays at one row block (~60 MB) plus one batch of patches (``batch_size`` x 216 kB).

The network regresses normalised targets (`rinq_jax.training.targets`); maps come back in ms
with the checkpoint's own offsets, scales and transform.

The network predicts T1 and T2 only; `m0_map` adds the proton density M0 by a per-pixel least
squares fit of the EPG fingerprint at the predicted T1/T2 to the measured signal (`estimate_m0`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rinq_jax.configs.models import INPUT_CHANNELS
from rinq_jax.data.acquisition.trajectory import signature_difference
from rinq_jax.data.files import io
from rinq_jax.data.pipeline import loader
from rinq_jax.data.pipeline.transforms import input_subspace, signal_normalisation
from rinq_jax.errors import InputError
from rinq_jax.evaluation import compare
from rinq_jax.models import model_spec
from rinq_jax.physics import epg
from rinq_jax.training import checkpoints

# Patches per forward call of `predict_slice` (bounds memory; one compiled shape).
BATCH_SIZE = 256
# Relaxation times below this (ms) are raised to it before simulating the M0 fit's fingerprint:
# the EPG needs T1, T2 > 0, and an untrained network may predict 0 or less.
M0_FIT_MIN_MS = 1.0


class IncompatibleCheckpointError(InputError):
    """A checkpoint does not fit a slice file (repetitions, sequence, input kind, patch size)."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A trained model ready for inference.

    Attributes:
        model: the flax module.
        variables: {"params", "batch_stats"} of the restored step.
        metadata: the checkpoint's `rinq_jax.training.checkpoints.CheckpointMetadata`.
        run_dir: where it was loaded from.

    """

    model: Any
    variables: Any
    metadata: checkpoints.CheckpointMetadata
    run_dir: str

    @property
    def name(self) -> str:
        """Short label, e.g. ``"rnn3 complex"`` or ``"rnn3 complex, subspace + measured B1"``."""
        config = self.metadata.config
        subspace = ", subspace" if config.subspace_input else ""
        b1 = " + measured B1" if config.b1_input else ""
        return f"{config.model} {config.input_kind}{subspace}{b1}"


def load_checkpoint(run_dir: str | Path, step: int | str | None = "best") -> Checkpoint:
    """Load a run's checkpoint for inference.

    Args:
        run_dir: a training workdir.
        step: "best" (default), "latest" or None (the newest), or an int step.

    Raises:
        FileNotFoundError: no run directory or no readable checkpoint.

    """
    if step == "latest":
        step = None
    model, variables, metadata = checkpoints.load_for_inference(run_dir, step)
    return Checkpoint(model, variables, metadata, str(run_dir))


def check_compatible(metadata: checkpoints.CheckpointMetadata, info: io.SliceInfo) -> None:
    """Refuse a slice the checkpoint cannot read, naming what does not fit.

    Checks: number of repetitions T, acquisition sequence hash, the k-space trajectory (where
    both record it), the input normalisation it was trained with, input kind vs channels,
    patch size vs the model's and vs the image size.

    Raises:
        IncompatibleCheckpointError: one line naming the file, the checkpoint's value and the
            file's value.

    """
    problems = []
    if metadata.n_reps != info.n_reps:
        problems.append(
            f"number of repetitions: the checkpoint was trained on T = {metadata.n_reps}, "
            f"the file has T = {info.n_reps}"
        )
    elif metadata.sequence_hash and metadata.sequence_hash != info.sequence_hash:
        problems.append(
            f"acquisition sequence: the checkpoint's hash is {metadata.sequence_hash}, "
            f"the file's {info.sequence_hash}"
        )
    trained_on, file_has = metadata.trajectory, info.trajectory
    difference = trained_on and file_has and signature_difference(trained_on, file_has)
    if difference:
        problems.append(f"k-space trajectory (checkpoint vs file): {difference}")
    normalisation = metadata.signal_normalisation
    expected = signal_normalisation(metadata.config.subspace_input)
    if normalisation != expected:
        problems.append(
            f"input normalisation: the checkpoint was trained with {normalisation!r}, this "
            f"version normalises {expected!r}"
        )
    kind = metadata.input_kind
    if metadata.channels != INPUT_CHANNELS[kind]:
        problems.append(
            f"input kind {kind!r} needs {INPUT_CHANNELS[kind]} channels, the checkpoint "
            f"says {metadata.channels}"
        )
    patch, want = metadata.patch_size, model_spec(metadata.model, kind).patch_size
    if patch != want:
        problems.append(
            f"patch size {patch} in the checkpoint, model {metadata.model} needs {want}"
        )
    if patch > min(info.n_rows, info.n_cols):
        problems.append(f"patch size {patch} exceeds the image ({info.n_rows} x {info.n_cols})")
    if problems:
        raise IncompatibleCheckpointError(
            f"{info.path}: checkpoint ({metadata.model} {kind}) does not fit: "
            + "; ".join(problems)
        )


def make_forward(checkpoint: Checkpoint):
    """Jitted ``x: float32[B, P, P, T, C] -> y_ms: float32[B, 2]`` in eval mode (running BN stats).

    A checkpoint with ``b1_input`` is called as ``forward(x, b1=float32[B, P, P])``.
    """
    target_norm = checkpoint.metadata.config.target_norm
    model, variables = checkpoint.model, checkpoint.variables

    @jax.jit
    def forward(x, **inputs):
        return target_norm.denormalise(model.apply(variables, x, train=False, **inputs))

    return forward


@dataclasses.dataclass(frozen=True)
class SlicePrediction:
    """Predicted maps of one slice.

    Attributes:
        path: the slice file.
        t1_ms, t2_ms: float32[H, W] predictions in ms (0 outside the mask).
        mask: bool[H, W] the pixels predicted.
        seconds: wall time of reading, normalising and predicting the slice (compilation
            excluded: the forward is compiled before the clock starts).

    """

    path: str
    t1_ms: np.ndarray
    t2_ms: np.ndarray
    mask: np.ndarray
    seconds: float


def predict_slice(
    checkpoint: Checkpoint,
    file: str | Path | io.SliceInfo,
    *,
    batch_size: int = BATCH_SIZE,
    chunk_rows: int = 8,
    forward=None,
    cache_dir: str | Path | None = None,
) -> SlicePrediction:
    """T1/T2 maps of every masked pixel of a slice file.

    Args:
        checkpoint: from `load_checkpoint`.
        file: slice file (docs/data_format.md), or its `io.SliceInfo`.
        batch_size: patches per forward call (bounds memory; one compiled shape).
        chunk_rows: image rows read from disk at a time.
        forward: a `make_forward(checkpoint)` to reuse across slices (compiled once).
        cache_dir: the dictionary cache of a checkpoint with ``subspace_input`` (default:
            `compare.default_cache_dir` of the file; built there once if absent).

    Raises:
        IncompatibleCheckpointError: the checkpoint does not fit the file.
        MrfFormatError: the file is malformed, or has no ``b1_map`` for a checkpoint that
            reads one.

    """
    info = io.as_slice_info(file)
    path = info.path
    meta = checkpoint.metadata
    check_compatible(meta, info)
    forward = forward or make_forward(checkpoint)
    patch, kind = meta.patch_size, meta.input_kind
    channels = INPUT_CHANNELS[kind]
    buffer = np.zeros((batch_size, patch, patch, info.n_reps, channels), np.float32)
    b1_map = loader.read_b1_map(info) if meta.config.b1_input else None
    basis = None
    if meta.config.subspace_input:
        basis = input_subspace(info.sequence, cache_dir or compare.default_cache_dir(path))
    inputs = {} if b1_map is None else {"b1": np.ones((batch_size, patch, patch), np.float32)}
    jax.block_until_ready(forward(buffer, **inputs))  # compile (cached after the first slice)
    t1_ms = np.zeros((info.n_rows, info.n_cols), np.float32)
    t2_ms = np.zeros_like(t1_ms)
    mask = np.zeros((info.n_rows, info.n_cols), bool)
    start = time.perf_counter()
    patches = loader.slice_patches(
        info, patch, kind, chunk_rows, max_patches=batch_size, basis=basis
    )
    for x, pixels in patches:
        n = len(x)
        buffer[:n] = x
        buffer[n:] = 0.0
        rows, cols = pixels[:, 0], pixels[:, 1]
        if b1_map is not None:
            inputs["b1"][:n] = loader.b1_patches(b1_map, rows, cols, patch)
        y_ms = np.asarray(forward(buffer, **inputs))[:n]
        t1_ms[rows, cols], t2_ms[rows, cols] = y_ms[:, 0], y_ms[:, 1]
        mask[rows, cols] = True
    return SlicePrediction(path, t1_ms, t2_ms, mask, time.perf_counter() - start)


def estimate_m0(signals, t1_ms, t2_ms, sequence) -> np.ndarray:
    """Least-squares proton density of each signal given its T1 and T2 (B1 = 1).

    With d the EPG fingerprint at M0 = 1 (`rinq_jax.physics.epg.simulate`) and x the measured
    signal, ``m0 = <d, x> / <d, d> = sum_t conj(d_t) x_t / sum_t |d_t|^2`` minimises
    ``||x - m0 d||^2``; it is the convention of `rinq_jax.physics.matching.MatchResult.m0`
    (signal ~ m0 * simulate(seq, t1, t2)), complex: magnitude times receive phase.

    Args:
        signals: complex[N, T] measured time series (arbitrary units).
        t1_ms: float[N] T1 in ms (raised to `M0_FIT_MIN_MS`).
        t2_ms: float[N] T2 in ms (raised to `M0_FIT_MIN_MS`).
        sequence: the acquisition's `FispSequence` (T repetitions).

    Returns:
        complex64[N] M0 in the signals' units (0 where the fingerprint is 0).

    """
    t1_ms, t2_ms = (np.maximum(np.asarray(v, np.float32), M0_FIT_MIN_MS) for v in (t1_ms, t2_ms))
    atoms = np.asarray(epg.simulate(sequence, t1_ms, t2_ms), np.complex128)
    x = np.asarray(signals, np.complex128)
    inner = np.sum(atoms.conj() * x, axis=-1)
    power = np.sum(np.abs(atoms) ** 2, axis=-1)
    return np.where(power > 0, inner / np.where(power > 0, power, 1.0), 0.0).astype(np.complex64)


def _masked_signals(path: str | Path, mask: np.ndarray, batch: int, chunk_rows: int):
    """The masked pixels' signals complex64[<= batch, T], row-major, ``batch`` at a time."""
    pending: list[np.ndarray] = []
    count = 0
    for r0 in range(0, mask.shape[0], chunk_rows):
        block_mask = mask[r0 : r0 + chunk_rows]
        if not block_mask.any():
            continue
        signals = io.read_slice(path, fields=["signals"], rows=(r0, r0 + chunk_rows)).signals
        pending.append(signals[block_mask])
        count += len(pending[-1])
        while count >= batch:
            joined = np.concatenate(pending)
            yield joined[:batch]
            pending, count = [joined[batch:]], count - batch
    if count:
        yield np.concatenate(pending)


def m0_map(
    path: str | Path,
    t1_ms: np.ndarray,
    t2_ms: np.ndarray,
    *,
    batch: int = 1024,
    chunk_rows: int = 8,
) -> np.ndarray:
    """M0 map of a slice file from its signals and T1/T2 maps (`estimate_m0` per masked pixel).

    The pixels are fitted ``batch`` at a time, the last batch padded, so that the EPG
    simulation compiles for one shape only.

    Args:
        path: slice file (its ``signals``, ``mask`` and ``sequence`` are read).
        t1_ms: float[H, W] T1 in ms (e.g. a network's prediction).
        t2_ms: float[H, W] T2 in ms.
        batch: pixels simulated at a time (memory: ``batch * T`` complex numbers, a few times).
        chunk_rows: image rows of signals read at a time.

    Returns:
        complex64[H, W] M0 (0 outside the mask).

    """
    head = io.read_slice(path, fields=["mask"])
    mask, sequence = head.mask, head.sequence
    t1, t2 = np.asarray(t1_ms)[mask], np.asarray(t2_ms)[mask]
    fitted = np.zeros(t1.shape, np.complex64)
    start = 0
    for x in _masked_signals(path, mask, batch, chunk_rows):
        n, pad = len(x), batch - len(x)
        params = [np.pad(v[start : start + n], (0, pad), constant_values=1000.0) for v in (t1, t2)]
        x = np.pad(x, ((0, pad), (0, 0)))
        fitted[start : start + n] = estimate_m0(x, *params, sequence)[:n]
        start += n
    m0 = np.zeros(mask.shape, np.complex64)
    m0[mask] = fitted
    return m0
