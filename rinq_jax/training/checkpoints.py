"""Orbax checkpoints of a run: the latest few for resuming, the best one for evaluation.

Layout of a run directory (`TrainConfig.workdir`):

    RUN_DIR/checkpoints/<step>/state     params, batch_stats, opt_state, step, rng (StandardSave)
    RUN_DIR/checkpoints/<step>/metadata  JSON: `CheckpointMetadata`
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
import dataclasses
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from rinq_jax.errors import InputError, InputNotFoundError
from rinq_jax.models import get_model
from rinq_jax.training.config import TrainConfig
from rinq_jax.training.state import TrainState
from rinq_jax.training.targets import TargetNorm

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
    manager: ocp.CheckpointManager, tree: dict[str, Any], metadata: CheckpointMetadata, step: int
) -> None:
    """Write `tree` and `metadata` as checkpoint `step` (overwriting nothing: steps are unique)."""
    manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(tree), metadata=ocp.args.JsonSave(metadata.to_json())
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


@dataclasses.dataclass(frozen=True)
class BestEval:
    """The best validation so far: its loss (ms, `steps.finalize_eval`) and step."""

    val_loss_ms: float
    step: int

    def __post_init__(self):
        object.__setattr__(self, "val_loss_ms", float(self.val_loss_ms))
        object.__setattr__(self, "step", int(self.step))


@dataclasses.dataclass(frozen=True)
class CheckpointMetadata:
    """The JSON saved beside every checkpoint (`to_json`): what inference and a resume need.

    Attributes:
      config: the resolved TrainConfig (learning rate, batch size, target norm filled in).
      patch_size, channels, n_reps: the model input's P, C and T (repetitions).
      signal_normalisation: how the pipeline normalised each input signal (its documented name).
      sequence_hash: the acquisition sequence's hash (data must match it at evaluation).
      trajectory: the k-space trajectory's signature
        (`rinq_jax.data.acquisition.trajectory.Trajectory.signature`), or None.
      data_hash: hash over the training/validation file names and sequence.
      data_files: {"train": [...], "val": [...], "test": [...]} file names of the split.
      data_dir_abs: the data folder's absolute path at training time (found again from another
        working directory).
      step: optimiser steps done; the next step to run is `step`.
      epoch, batch_in_epoch: where that next step lies in the data.
      best: the best validation so far, or None.
      metrics: the validation at this checkpoint (`steps.evaluate_patches`), if any.
      train_target_mean_ms: mean (T1, T2) in ms of the training targets: the mean predictor
        that evaluation scores as a baseline.
      pending_losses: train losses since the last log row (a resume logs the same rows).
    """

    config: TrainConfig
    patch_size: int
    channels: int
    n_reps: int
    signal_normalisation: str
    sequence_hash: str | None
    trajectory: dict | None
    data_hash: str | None
    data_files: dict[str, list[str]]
    data_dir_abs: str
    step: int
    epoch: int
    batch_in_epoch: int
    best: BestEval | None = None
    metrics: dict[str, float] | None = None
    train_target_mean_ms: tuple[float, float] | None = None
    pending_losses: tuple[float, ...] = ()

    def __post_init__(self):
        # Plain ints and floats: array scalars would not survive the JSON.
        for name in ("patch_size", "channels", "n_reps", "step", "epoch", "batch_in_epoch"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "pending_losses", tuple(map(float, self.pending_losses)))
        mean = self.train_target_mean_ms
        if mean is not None:
            object.__setattr__(self, "train_target_mean_ms", tuple(map(float, mean)))

    @property
    def model(self) -> str:
        """The registry name of the model."""
        return self.config.model

    @property
    def input_kind(self) -> str:
        """The input kind the model reads."""
        return self.config.input_kind

    def to_json(self) -> dict[str, Any]:
        """The checkpoint's JSON (`FORMAT`).

        The model, input kind, target and target normalisation also stand at the top level,
        for a reader of the file.
        """
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        mean = self.train_target_mean_ms
        return {
            "format": FORMAT,
            "model": self.model,
            "input_kind": self.input_kind,
            "target": self.config.target,
            "target_normalisation": self.config.target_norm.to_json(),
            **fields,
            "best": None if self.best is None else dataclasses.asdict(self.best),
            "train_target_mean_ms": None if mean is None else list(mean),
            "pending_losses": list(self.pending_losses),
            "config": self.config.to_dict(),
        }

    @classmethod
    def from_json(cls, saved: dict[str, Any], run_dir: Path) -> CheckpointMetadata:
        """Inverse of `to_json`; InputError naming ``run_dir`` on another format or bad entry."""
        check_format(saved, run_dir)
        names = [f.name for f in dataclasses.fields(cls)]
        try:
            values = {name: saved[name] for name in names if name in saved}
            values["config"] = TrainConfig.from_dict(saved["config"])
            if TargetNorm.from_json(saved["target_normalisation"]) != values["config"].target_norm:
                raise ValueError("target_normalisation differs from the config's")
            if values.get("best") is not None:
                values["best"] = BestEval(**values["best"])
            return cls(**values)
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{run_dir}: malformed checkpoint metadata ({err!r})") from err


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
      ready for `model.apply(variables, x, train=False)`, and the `CheckpointMetadata`.

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
    tree, saved = found
    metadata = CheckpointMetadata.from_json(saved, run_dir)
    config = metadata.config
    model = get_model(config.model, config.input_kind, **config.model_kwargs)
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
    "b1_input",
    "subspace_input",
    "values",
    "data_dir",
    "val_fraction",
    "test_fraction",
)


def check_resume(
    saved: CheckpointMetadata, config: TrainConfig, run_dir: Path, new_data_hash: str
) -> None:
    """Refuse to continue a run whose trajectory-defining settings or data have changed."""
    old = saved.config
    changed = [f for f in TRAJECTORY_FIELDS if getattr(old, f) != getattr(config, f)]
    if saved.data_hash != new_data_hash:
        changed.append("data")
    if changed:
        diff = ", ".join(
            f"{f}: {getattr(old, f)!r} -> {getattr(config, f)!r}"
            if f != "data"
            else f"data files/sequence hash {saved.data_hash} -> {new_data_hash}"
            for f in changed
        )
        raise InputError(
            f"{run_dir} holds a run with different settings ({diff}); "
            "resume with the same settings or use a new --workdir"
        )
