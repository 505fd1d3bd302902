"""Orbax checkpoints of a run: the latest few for resuming, the best one for evaluation.

Layout of a run directory (`TrainConfig.workdir`):

    RUN_DIR/checkpoints/<step>/state     params, batch_stats, opt_state, step, rng (StandardSave)
    RUN_DIR/checkpoints/<step>/metadata  JSON: see `make_metadata`
    RUN_DIR/best/<step>/state            params, batch_stats of the best validation loss
    RUN_DIR/best/<step>/metadata         same JSON, with that evaluation's metrics

The metadata holds everything inference needs (model name, input kind, patch size, n_reps,
signal and target normalisation, sequence/data hash, the full TrainConfig), so
`load_for_inference(RUN_DIR)` rebuilds the model with nothing else.

Orbax writes each step into a temporary directory and renames it when complete, so a run killed
mid-save leaves no half checkpoint that looks finished; a checkpoint that still fails to load is
skipped with a warning naming it, and the next older one is used.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from rinq_jax.configs.data import DEFAULT_DATA_DIR
from rinq_jax.errors import InputError, InputNotFoundError
from rinq_jax.models import get_model
from rinq_jax.training.config import TrainConfig
from rinq_jax.training.state import TrainState

FORMAT = "rinq_jax.checkpoint/2"  # 2: the run length and warm-up as TrainConfig fractions
LATEST_DIR = "checkpoints"
BEST_DIR = "best"


def make_manager(directory: str | Path, max_to_keep: int) -> ocp.CheckpointManager:
    """CheckpointManager with items "state" (pytree) and "metadata" (JSON), synchronous saves.

    Saves are synchronous: the train step donates its state buffers right after a save, and a
    run that is killed should find every checkpoint it was told about complete on disk.
    """
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(
        Path(directory).resolve(), options=options, item_names=("state", "metadata")
    )


def state_to_tree(state: TrainState, rng: jax.Array) -> dict[str, Any]:
    """Collect the saved pytree: {"params", "batch_stats", "opt_state", "step", "rng"}."""
    return {
        "params": state.params,
        "batch_stats": state.batch_stats,
        "opt_state": state.opt_state,
        "step": state.step,
        "rng": rng,
    }


def save(
    manager: ocp.CheckpointManager, tree: dict[str, Any], metadata: dict[str, Any], step: int
) -> None:
    """Write `tree` and `metadata` as checkpoint `step` (overwriting nothing: steps are unique)."""
    manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(tree), metadata=ocp.args.JsonSave(metadata)
        ),
        force=True,
    )
    manager.wait_until_finished()


def _restore(manager: ocp.CheckpointManager, step: int, target: Any | None):
    state_args = (
        ocp.args.StandardRestore(target) if target is not None else ocp.args.StandardRestore()
    )
    out = manager.restore(
        step, args=ocp.args.Composite(state=state_args, metadata=ocp.args.JsonRestore())
    )
    return out["state"], dict(out["metadata"])


def restore_latest(
    manager: ocp.CheckpointManager, target: Any | None = None
) -> tuple[Any, dict[str, Any]] | None:
    """Restore the newest checkpoint that loads, as (tree, metadata); None when there is none.

    Args:
      manager: the CheckpointManager to read.
      target: abstract or concrete pytree like `state_to_tree(...)`, giving structure, dtypes
        and shardings of the restored arrays; None restores plain nested dicts.

    """
    manager.reload()
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            return _restore(manager, step, target)
        except Exception as err:  # noqa: BLE001 - any unreadable checkpoint is skipped alike
            path = Path(manager.directory) / str(step)
            warnings.warn(
                f"skipping unreadable checkpoint {path}: {type(err).__name__}: {err}",
                RuntimeWarning,
                stacklevel=2,
            )
    return None


def make_metadata(
    config: TrainConfig,
    *,
    patch_size: int,
    channels: int,
    n_reps: int,
    signal_normalisation: str,
    sequence_hash: str | None,
    trajectory: dict | None,
    data_hash: str | None,
    data_files: dict[str, list[str]],
    step: int,
    epoch: int,
    batch_in_epoch: int,
    best: dict[str, Any] | None,
    metrics: dict[str, Any] | None = None,
    train_target_mean_ms: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Build the JSON saved beside every checkpoint.

    Args:
      config: the resolved TrainConfig (learning rate and batch size filled in).
      patch_size: the model input's P.
      channels: the model input's C.
      n_reps: the model input's T (repetitions of the sequence).
      signal_normalisation: how the pipeline normalised each input signal (its documented name).
      sequence_hash: the acquisition sequence's hash (data must match it at evaluation).
      trajectory: the k-space trajectory's signature
        (`rinq_jax.data.acquisition.trajectory.Trajectory.signature`), or None.
      data_hash: hash over the training/validation file names and sequence.
      data_files: {"train": [...], "val": [...], "test": [...]} file names of the split.
      step: optimiser steps done; the next step to run is `step`.
      epoch: the epoch of that next step.
      batch_in_epoch: the batch of that next step within its epoch.
      best: {"val_loss_ms", "step"} of the best evaluation so far, or None.
      metrics: the evaluation at this checkpoint, if any.
      train_target_mean_ms: mean (T1, T2) in ms of the training targets: the mean predictor
        that evaluation scores as a baseline.

    """
    return {
        "format": FORMAT,
        "model": config.model,
        "input_kind": config.input_kind,
        "target": config.target,
        "patch_size": int(patch_size),
        "channels": int(channels),
        "n_reps": int(n_reps),
        "target_normalisation": {
            "formula": (
                "y_norm = (ln(y_ms) - offset_ms) / scale_ms"
                if config.target_transform == "log"
                else "y_norm = (y_ms - offset_ms) / scale_ms"
            ),
            "transform": config.target_transform,
            "offset_ms": list(config.target_norm_ms[0]),
            "scale_ms": list(config.target_norm_ms[1]),
        },
        "signal_normalisation": signal_normalisation,
        "sequence_hash": sequence_hash,
        "trajectory": trajectory,
        "data_hash": data_hash,
        "data_files": data_files,
        # data_dir resolved at training time: found again from another working directory.
        "data_dir_abs": str(Path(config.data_dir or DEFAULT_DATA_DIR).resolve()),
        "step": int(step),
        "epoch": int(epoch),
        "batch_in_epoch": int(batch_in_epoch),
        "best": best,
        "metrics": metrics,
        "train_target_mean_ms": None
        if train_target_mean_ms is None
        else list(train_target_mean_ms),
        "config": config.to_dict(),
    }


def _read(directory: Path, step: int | None):
    """Read checkpoint `step` (None: the newest readable) of `directory` without writing there."""
    # create/save_interval_steps as read_only implies them, so Orbax has nothing to warn about.
    options = ocp.CheckpointManagerOptions(
        read_only=True, create=False, save_interval_steps=0, enable_async_checkpointing=False
    )
    manager = ocp.CheckpointManager(
        directory.resolve(), options=options, item_names=("state", "metadata")
    )
    with contextlib.closing(manager):
        if step is None:
            return restore_latest(manager)
        if step not in manager.all_steps():
            raise InputNotFoundError(f"no checkpoint {step} in {directory}: {manager.all_steps()}")
        return _restore(manager, step, None)


def _to_device_tree(tree):
    return jax.tree.map(lambda a: jax.numpy.asarray(np.asarray(a)), tree)


def check_format(metadata: dict[str, Any], run_dir: Path) -> None:
    """An InputError unless the checkpoint was written in this version's `FORMAT`."""
    if metadata.get("format") != FORMAT:
        raise InputError(
            f"{run_dir} holds a checkpoint of format {metadata.get('format')!r}, this version "
            f"reads and writes {FORMAT!r}; train again in a new --workdir"
        )


def load_for_inference(run_dir: str | Path, step: int | str | None = "best"):
    """Model, variables and metadata of a run, for evaluation.

    Args:
      run_dir: a training workdir (containing `checkpoints/` and `best/`).
      step: "best" (the best validation loss; falls back to the latest when no evaluation was
        saved), None (the latest), or an int step of `checkpoints/`.

    Returns:
      (model, variables, metadata): the flax module from the registry, {"params", "batch_stats"}
      ready for `model.apply(variables, x, train=False)`, and the metadata dict (see
      `make_metadata`; its "config" entry is the full TrainConfig).

    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputNotFoundError(f"no run directory {run_dir}")
    found = None
    if step == "best" and (run_dir / BEST_DIR).is_dir():
        found = _read(run_dir / BEST_DIR, None)
    if found is None and (run_dir / LATEST_DIR).is_dir():
        if step in ("best", None):
            found = _read(run_dir / LATEST_DIR, None)
        elif isinstance(step, int):
            found = _read(run_dir / LATEST_DIR, step)
    if found is None:
        raise InputNotFoundError(f"no readable checkpoint in {run_dir}")
    tree, metadata = found
    check_format(metadata, run_dir)
    overrides = dict(TrainConfig.from_dict(metadata["config"]).model_overrides)
    model = get_model(metadata["model"], metadata["input_kind"], **overrides)
    variables = {
        "params": _to_device_tree(tree["params"]),
        "batch_stats": _to_device_tree(tree.get("batch_stats") or {}),
    }
    return model, variables, metadata


# Config fields that change the training trajectory: a resume must not change them. The run's
# length is one of them: the learning-rate schedule (warm-up, cosine decay) follows it.
TRAJECTORY_FIELDS = (
    "model",
    "steps",
    "epochs",
    "input_kind",
    "target",
    "learning_rate",
    "batch_size",
    "seed",
    "target_transform",
    "lr_schedule",
    "warmup_fraction",
    "final_lr_fraction",
    "grad_clip_norm",
    "t1_offset_ms",
    "t2_offset_ms",
    "t1_scale_ms",
    "t2_scale_ms",
    "model_overrides",
    "values",
    "data_dir",
    "val_fraction",
    "test_fraction",
)


def check_resume(
    saved: dict[str, Any], config: TrainConfig, run_dir: Path, new_data_hash: str
) -> None:
    """Refuse to continue a run whose trajectory-defining settings or data have changed."""
    check_format(saved, run_dir)
    old = TrainConfig.from_dict(saved["config"])
    changed = [f for f in TRAJECTORY_FIELDS if getattr(old, f) != getattr(config, f)]
    if saved.get("data_hash") != new_data_hash:
        changed.append("data")
    if changed:
        diff = ", ".join(
            f"{f}: {getattr(old, f)!r} -> {getattr(config, f)!r}"
            if f != "data"
            else f"data files/sequence hash {saved.get('data_hash')} -> {new_data_hash}"
            for f in changed
        )
        raise InputError(
            f"{run_dir} holds a run with different settings ({diff}); "
            "resume with the same settings or use a new --workdir"
        )
