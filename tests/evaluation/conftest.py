"""Tiny slice files with tissue labels and acquisition attributes, and one tiny trained run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rinq_jax.data.files.io import MrfSlice, write_slice
from rinq_jax.physics import epg
from rinq_jax.physics.sequence import paper_sequence

N_REPS = 30
SHAPE = (12, 12)


def write_eval_slices(
    folder: Path, n_files: int = 5, n_reps: int = N_REPS, seed: int = 0, b1_map: bool = False
) -> list[Path]:
    """Slices of EPG fingerprints (+ noise) for three tissues: WM ring, GM ring, CSF core.

    T1/T2 vary +-10 % around the tissue means so the maps have texture; ``fov_mm`` 60 over
    a 12-pixel matrix gives 5 mm pixels. With ``b1_map``, a B1 field 0.85-1.15 (a ramp across
    the slice) acts on the fingerprints and is stored, with 2 % noise, as the measured map.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    seq = paper_sequence(n_reps, 0)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    radius = np.hypot(yy - 5.5, xx - 5.5)
    mask = radius < 5.5
    tissue = np.where(radius < 2, 3, np.where(radius < 4, 2, 1)).astype(np.uint8) * mask
    means = {1: (830.0, 80.0), 2: (1330.0, 110.0), 3: (3000.0, 1500.0)}
    paths = []
    for i in range(n_files):
        t1 = np.ones(SHAPE, np.float32)
        t2 = np.ones(SHAPE, np.float32)
        for label, (m1, m2) in means.items():
            sel = tissue == label
            t1[sel] = m1 * rng.uniform(0.9, 1.1, sel.sum())
            t2[sel] = m2 * rng.uniform(0.9, 1.1, sel.sum())
        b1 = 1.0 + 0.15 * np.sin(0.5 * xx + i) if b1_map else 1.0
        clean = np.asarray(epg.simulate(seq, t1, t2, b1))
        noise = 0.002 * (rng.normal(size=clean.shape) + 1j * rng.normal(size=clean.shape))
        path = folder / f"sub-{i // 2:02d}_slice-{i % 2:02d}.h5"
        write_slice(
            path,
            MrfSlice(
                subject_id=f"sub-{i // 2:02d}",
                slice_id=f"slice-{i % 2:02d}",
                sequence=seq,
                signals=(clean * mask[..., None] + noise).astype(np.complex64),
                mask=mask,
                t1_ms=np.where(mask, t1, 0).astype(np.float32),
                t2_ms=np.where(mask, t2, 0).astype(np.float32),
                tissue=tissue,
                b1_map=(b1 * rng.uniform(0.98, 1.02, SHAPE)).astype(np.float32) if b1_map else None,
                acquisition={"fov_mm": 60.0, "matrix": SHAPE[0], "undersampling": 1, "snr": 100.0},
            ),
        )
        paths.append(path)
    return paths


TINY_OVERRIDES = (("lstm_hidden", 8), ("n_steps", 3))


def train_tiny(
    data_dir: Path,
    workdir: Path,
    model: str = "rnn3",
    input_kind: str = "complex",
    b1_input: bool = False,
    subspace_input: bool = False,
):
    """A few steps of a small registry model on ``data_dir``; returns the run directory."""
    from rinq_jax.training.config import TrainConfig
    from rinq_jax.training.loop import train_and_evaluate

    overrides = TINY_OVERRIDES if model in ("rnn1", "rnn3") else ()
    config = TrainConfig(
        model=model,
        input_kind=input_kind,
        data_dir=str(data_dir),
        workdir=str(workdir),
        steps=4,
        batch_size=16,
        progress=False,
        model_overrides=overrides,
        b1_input=b1_input,
        subspace_input=subspace_input,
    )
    train_and_evaluate(config)
    return workdir


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("eval_data")
    write_eval_slices(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_data) -> Path:
    return train_tiny(tiny_data, tmp_path_factory.mktemp("eval_runs") / "rnn3")
