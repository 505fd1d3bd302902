"""Small in-memory stand-ins for the data pipeline and the models, for fast trainer tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import flax.linen as nn
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rinq_jax.data.files.format import TARGET_PAIRS
from rinq_jax.data.files.io import MrfSlice, write_slice
from rinq_jax.training import checkpoints as ckpt
from rinq_jax.training.config import TrainConfig
from rinq_jax.training.input_pipeline import Datasets


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Tag -> [(step, value)] of the event files in `folder`, read by TensorBoard itself."""
    events = EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


class ToyPatches:
    """PatchDataset stand-in: random signals whose (T1, T2) in ms are a fixed smooth function.

    x float32[N, P, P, T, C]; y_ms = (1000 + 500 tanh(x.w1), 100 + 50 tanh(x.w2)) of the
    centre pixel, so a small network can learn it. Order depends on (seed, epoch) only.
    """

    def __init__(self, n=64, patch_size=1, n_reps=8, channels=2, seed=0, nan_at=None):
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(n, patch_size, patch_size, n_reps, channels)).astype(np.float32)
        w = np.random.default_rng(1234).normal(size=(2, n_reps * channels)) / np.sqrt(n_reps)
        c = patch_size // 2
        centre = self.x[:, c, c].reshape(n, -1)
        self.y_ms = np.stack(
            [1000 + 500 * np.tanh(centre @ w[0]), 100 + 50 * np.tanh(centre @ w[1])], axis=1
        ).astype(np.float32)
        if nan_at is not None:
            self.y_ms[nan_at] = np.nan
        self.n_patches, self.n_reps = n, n_reps

    def batches(self, batch_size, seed=0, epoch=0, start_batch=0, drop_remainder=True):
        order = np.random.default_rng([seed, epoch]).permutation(self.n_patches)
        n_batches = (
            self.n_patches // batch_size if drop_remainder else -(-self.n_patches // batch_size)
        )
        for b in range(start_batch, n_batches):
            idx = order[b * batch_size : (b + 1) * batch_size]
            yield {"x": self.x[idx], "y_ms": self.y_ms[idx], "index": idx}


class TinyNet(nn.Module):
    """Flatten -> Dense 32 -> BatchNorm -> ReLU -> Dense 2: BatchNorm makes the data-parallel
    equality test meaningful (batch statistics must be global)."""

    @nn.compact
    def __call__(self, x, train: bool):
        h = x.reshape(x.shape[0], -1)
        # No bias before BatchNorm: its gradient is exactly 0 in theory, rounding noise in
        # practice, and Adam's first steps (g / |g|) would blow that noise up to +-lr.
        h = nn.Dense(32, use_bias=False)(h)
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
        return nn.Dense(2)(nn.relu(h))


@pytest.fixture
def toy_datasets():
    return Datasets(
        train=ToyPatches(n=64, seed=0),
        val=ToyPatches(n=24, seed=1),
        files={"train": ["toy_train"], "val": ["toy_val"], "test": []},
        sequence_hash="toyhash",
        signal_normalisation="none (toy)",
    )


def write_tiny_slices(folder: Path, n_files=5, shape=(8, 8, 30), maps="true") -> list[Path]:
    """Small valid slices whose T1/T2 depend on the signal (so there is something to learn).

    ``maps``: store them as the true maps (``t1_ms``/``t2_ms``) or, as a scanner's scan
    imported with its own matching maps, as ``dm_t1_ms``/``dm_t2_ms`` only.
    """
    rng = np.random.default_rng(0)
    n_reps = shape[2]
    seq = {
        "flip_deg": rng.uniform(5, 74, n_reps).astype(np.float32),
        "tr_ms": rng.uniform(12, 15, n_reps).astype(np.float32),
        "phase_deg": np.zeros(n_reps, np.float32),
        "te_ms": 2.0,
        "ti_ms": 20.0,
    }
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = (yy - 3.5) ** 2 + (xx - 3.5) ** 2 < 12
    paths = []
    for i in range(n_files):
        t1 = rng.uniform(300, 3000, shape[:2]).astype(np.float32)
        t2 = (t1 / 10).astype(np.float32)
        decay = np.exp(-np.arange(n_reps) * 15.0 / t1[..., None])
        signals = (decay + 0.05 * rng.normal(size=shape)).astype(np.complex64)
        path = folder / f"slice{i}.h5"
        write_slice(
            path,
            MrfSlice(
                subject_id=f"s{i // 2}",
                slice_id=f"z{i}",
                sequence=seq,
                signals=signals,
                mask=mask,
                **{
                    name: np.where(mask, values, 0).astype(np.float32)
                    for name, values in zip(TARGET_PAIRS[maps], (t1, t2), strict=True)
                },
                acquisition={"fov_mm": 40.0, "matrix": shape[0]},
            ),
        )
        paths.append(path)
    return paths


def checkpoint_metadata(step: int, **changes) -> ckpt.CheckpointMetadata:
    """A complete `CheckpointMetadata` (log targets, a best evaluation), fields replaced."""
    config = TrainConfig(t1_offset_ms=6.5, t2_offset_ms=4.0, t1_scale_ms=0.6, t2_scale_ms=1.2)
    metadata = ckpt.CheckpointMetadata(
        config=config.replace(target_transform="log"),
        patch_size=3,
        channels=2,
        n_reps=8,
        signal_normalisation="s / |s|",
        sequence_hash="abc",
        trajectory=None,
        data_hash="def",
        data_files={"train": ["a.h5"], "val": ["b.h5"], "test": []},
        data_dir_abs="/data",
        step=step,
        epoch=0,
        batch_in_epoch=step,
        best=ckpt.BestEval(12.5, step),
        metrics={"val_loss_ms": 12.5},
        train_target_mean_ms=(800.0, 70.0),
        pending_losses=(0.5, 0.25),
    )
    return dataclasses.replace(metadata, **changes)
