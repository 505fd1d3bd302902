"""One immutable configuration per training run, saved with every checkpoint.

`python train.py --model rnn3` trains `rinq_jax.configs.train.get_config("rnn3")` with its
flags' fields replaced; the trainer reads nothing else.
The config round-trips through JSON (`to_json` / `from_json`) so a checkpoint carries the exact
settings that produced it.

Target normalisation (documented here because eval depends on it): the networks regress
`y_norm = (y_ms - offset_ms) / scale_ms` per parameter (T1, T2), MSE on y_norm. Offsets and scales
left at None are filled by the trainer with the training split's mean and standard deviation of
the targets (over all masked training pixels), so both parameters weigh alike in the loss and a
freshly initialised network (outputs near 0) starts at the mean predictor instead of far from it.
With ``target_transform="log"`` the same holds for ``ln(y / 1 ms)``: offsets and scales are then
the mean and standard deviation of the log relaxation times (dimensionless), and the loss weighs a
10 % error alike in white matter (T1 ~ 830 ms) and CSF (~ 4,000 ms). Set them to fixed numbers
(e.g. offset 0, scales 4000 ms and 600 ms, the display windows of the paper's Fig. 2) to make
the normalisation independent of the data. The resolved numbers are part of the config saved
with every checkpoint; evaluation de-normalises with them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from rinq_jax.configs import recipes
from rinq_jax.configs.data import DEFAULT_DATA_DIR, VALUE_DISTRIBUTIONS
from rinq_jax.configs.models import B1_INPUT_MODELS, INPUT_KINDS, MODEL_NAMES
from rinq_jax.models.registry import check_overrides, model_spec
from rinq_jax.training.targets import TARGET_TRANSFORMS, TargetNorm

TARGETS = ("true", "dm", "single")
NEIGHBOUR_LOSS_MODELS = ("rnn3",)  # the quantile layer's nine predictions
# Integer fields and their lowest value (None, where allowed, passes).
_LOWEST = {
    "steps": 1,
    "epochs": 1,
    "batch_size": 1,
    "seed": 0,
    "evals_per_run": 0,
    "train_subjects": 1,
    "checkpoint_every_steps": 0,
    "keep_checkpoints": 1,
    "log_every_steps": 1,
    "max_val_patches": 1,
}
_POSITIVE = ("learning_rate", "grad_clip_norm", "t1_scale_ms", "t2_scale_ms")  # finite, > 0
_FRACTIONS = {
    "warmup_fraction": (0.0, 0.5),
    "final_lr_fraction": (0.0, 1.0),
    "val_fraction": (0.0, 0.5),
    "test_fraction": (0.0, 0.5),
}
LR_SCHEDULES = ("constant", "warmup_cosine")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of one run.

    Attributes:
      model: one of `rinq_jax.configs.models.MODEL_NAMES`.
      input_kind: "complex" (2 channels, real and imaginary) or "magnitude" (1 channel).
      target: "true" trains on the true T1/T2 (the rate-weighted truth, ``t1_ms``); "single" on
        the single-compartment truth (``t1_single_ms``: what one fingerprint of the pixel's
        noiseless signal says, `rinq_jax.data.acquisition.compartments.single_compartment_maps`);
        "dm" on dictionary-matching maps.
      data_dir: a generated brain dataset or a folder of slice files (`*.h5`); None means the
        default brain dataset (`configs.data.DEFAULT_DATA_DIR`, generated on first use).
      workdir: where checkpoints, metrics.csv and TensorBoard events go (None:
        ``runs/<model>-<input_kind>``).
      steps: total number of optimiser steps. None: ``epochs`` passes over the training set, or
        when that is None too, `configs.recipes.default_steps` on a generated dataset and
        `configs.recipes.DEFAULT_EPOCHS` epochs on slice files.
      epochs: passes over the training set, when ``steps`` is None.
      learning_rate: Adam step size; None takes the paper's value from `model_spec`.
      batch_size: global batch (patches per step, over all devices); None takes `model_spec`'s.
      seed: seeds parameter init, data order and the per-step dropout keys.
      target_transform: "linear" (the paper's MSE in ms, normalised) or "log" (MSE of the
        normalised log relaxation times; see module doc).
      t1_offset_ms, t2_offset_ms: target offsets (None: training-set mean; see module doc).
      t1_scale_ms, t2_scale_ms: target scales, > 0 (None: training-set standard deviation).
      lr_schedule: "constant" (the paper) or "warmup_cosine": linear warm-up from 0 over
        `warmup_fraction` of the run's steps, then cosine decay to `final_lr_fraction` of the
        peak at the last step.
      warmup_fraction: warm-up length of "warmup_cosine", as a fraction of the run's steps.
      final_lr_fraction: end of the cosine decay, as a fraction of `learning_rate`.
      grad_clip_norm: clip the global gradient norm to this before Adam (None: no clipping).
      evals_per_run: also validate (and keep the best checkpoint) this many times, evenly over
        the run's steps; 0 for epoch ends only (streamed epochs are long).
      train_subjects: train on the first N training subjects of a generated dataset (None: all).
      values: what a generated dataset's training stream draws tissue values, B1 and SNR from,
        a key of `rinq_jax.configs.data.VALUE_DISTRIBUTIONS` ("wide" or "brain").
      val_fraction, test_fraction: slice fractions of the random slice split (paper: 2/12 each).
      checkpoint_every_steps: extra checkpoint every N steps inside an epoch (0: epoch ends only).
      keep_checkpoints: how many of the latest checkpoints are kept (the best one is kept apart).
      log_every_steps: train-loss rows in metrics.csv / TensorBoard every N steps.
      max_val_patches: cap on validation patches per evaluation (None: all), to bound eval time.
      progress: show a tqdm progress bar.
      b1_input: the network also reads a measured B1 map (`models.common.b1_steps`; RNN1 and
        RNN3 only, not in the paper): training draws it as a scanner measures it
        (`rinq_jax.data.subjects.b1_map`), and evaluation needs the slice files' ``b1_map``.
      subspace_input: project each series onto the matching dictionary's rank-50 subspace
        before it is normalised (`rinq_jax.data.pipeline.transforms`; not in the paper): the
        spiral's aliasing outside it is removed, the networks are unchanged.
      neighbour_loss: weight of a loss on each of RNN3's nine neighbour predictions against its
        own pixel's truth, beside the paper's loss on their median (`training.steps.train_step`;
        a generated dataset's stream only, which draws the neighbours' targets; 0: the paper's).
      model_overrides: keyword overrides for `get_model` (e.g. a smaller hidden size in tests,
        the LSTM's ``fast_gradients``), as a tuple of (name, value) pairs so the config stays
        hashable; checked against the model's attributes (`models.registry.check_overrides`).

    """

    model: str = "rnn3"
    input_kind: str = "complex"
    target: str = "true"
    data_dir: str | None = None
    workdir: str | None = None
    steps: int | None = None
    epochs: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    seed: int = 0
    target_transform: str = "linear"
    t1_offset_ms: float | None = None
    t2_offset_ms: float | None = None
    t1_scale_ms: float | None = None
    t2_scale_ms: float | None = None
    lr_schedule: str = "constant"
    warmup_fraction: float = 0.0
    final_lr_fraction: float = 0.0
    grad_clip_norm: float | None = None
    evals_per_run: int = 0
    train_subjects: int | None = None
    values: str = "wide"
    val_fraction: float = 2 / 12
    test_fraction: float = 2 / 12
    checkpoint_every_steps: int = 200
    keep_checkpoints: int = 3
    log_every_steps: int = 10
    max_val_patches: int | None = None
    progress: bool = True
    b1_input: bool = False
    subspace_input: bool = False
    neighbour_loss: float = 0.0
    model_overrides: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self):
        choices = {
            "model": MODEL_NAMES,
            "input_kind": INPUT_KINDS,
            "target": TARGETS,
            "target_transform": TARGET_TRANSFORMS,
            "lr_schedule": LR_SCHEDULES,
            "values": tuple(VALUE_DISTRIBUTIONS),
        }
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {getattr(self, name)!r}")
        model_spec(self.model, self.input_kind)  # the pair exists (RNN3 takes complex input only)
        for name, lowest in _LOWEST.items():
            value = getattr(self, name)
            if value is not None and not value >= lowest:
                raise ValueError(f"{name} must be >= {lowest}, got {value}")
        for name in _POSITIVE:
            value = getattr(self, name)
            if value is not None and not 0 < value < math.inf:
                raise ValueError(f"{name} must be > 0 and finite, got {value}")
        for name, (low, high) in _FRACTIONS.items():
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{name} must lie in [{low}, {high}], got {getattr(self, name)}")
        if not 0.0 <= self.neighbour_loss < math.inf:
            raise ValueError(f"neighbour_loss must be >= 0 and finite, got {self.neighbour_loss}")
        if self.neighbour_loss and self.model not in NEIGHBOUR_LOSS_MODELS:
            raise ValueError(
                f"neighbour_loss: only {', '.join(NEIGHBOUR_LOSS_MODELS)} predict for the "
                f"neighbours of a patch, not {self.model}"
            )
        if self.steps is not None and self.epochs is not None:
            raise ValueError(f"set steps or epochs, not both (got {self.steps}, {self.epochs})")
        # JSON turns tuples into lists; normalise so equality survives the round trip.
        object.__setattr__(
            self, "model_overrides", tuple((str(k), v) for k, v in self.model_overrides)
        )
        if "b1_input" in dict(self.model_overrides):
            raise ValueError("set b1_input as the config field, not as a model override")
        if self.b1_input and self.model not in B1_INPUT_MODELS:
            raise ValueError(
                f"b1_input: only {', '.join(B1_INPUT_MODELS)} read a measured B1 map, "
                f"not {self.model}"
            )
        check_overrides(self.model, self.model_kwargs)

    @property
    def model_kwargs(self) -> dict[str, Any]:
        """The module attributes `get_model` sets: ``model_overrides`` and ``b1_input``."""
        return dict(self.model_overrides) | ({"b1_input": True} if self.b1_input else {})

    @property
    def data_path(self) -> Path:
        """The data folder or file: ``data_dir``, else the default brain dataset."""
        return Path(self.data_dir or DEFAULT_DATA_DIR)

    @property
    def target_norm(self) -> TargetNorm:
        """The offsets, scales and transform of the targets (once resolved from the data)."""
        values = (self.t1_offset_ms, self.t2_offset_ms, self.t1_scale_ms, self.t2_scale_ms)
        if any(v is None for v in values):
            raise ValueError("target normalisation not resolved yet (see resolve_target_norm)")
        return TargetNorm(values[:2], values[2:], self.target_transform)

    def replace(self, **changes) -> TrainConfig:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of all fields."""
        d = dataclasses.asdict(self)
        d["model_overrides"] = [list(kv) for kv in self.model_overrides]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of `to_dict`; unknown keys are an error (a newer config is not silently cut)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        d = dict(d)
        d["model_overrides"] = tuple(tuple(kv) for kv in d.get("model_overrides", ()))
        return cls(**d)

    def to_json(self) -> str:
        """JSON text of `to_dict`."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Inverse of `to_json`."""
        return cls.from_dict(json.loads(text))


def run_length(config: TrainConfig, streamed: bool, steps_per_epoch: int) -> int:
    """Optimiser steps of the run (`TrainConfig.steps`).

    ``steps``, else ``epochs`` epochs, else the default: `recipes.default_steps` on a generated
    dataset, `recipes.DEFAULT_EPOCHS` epochs on slice files.
    """
    if config.steps is not None:
        return config.steps
    if config.epochs is not None:
        return config.epochs * steps_per_epoch
    if streamed:
        return recipes.default_steps(config.model)
    return recipes.DEFAULT_EPOCHS * steps_per_epoch


def resolve_config(config: TrainConfig) -> TrainConfig:
    """Fill the defaults that follow from other fields.

    Learning rate and batch size from the model's `ModelSpec` (paper Table 5), the workdir
    ``runs/<model>-<input_kind>``.
    """
    spec = model_spec(config.model, config.input_kind)
    return config.replace(
        learning_rate=config.learning_rate or spec.learning_rate,
        batch_size=config.batch_size or spec.batch_size,
        workdir=config.workdir or f"runs/{config.model}-{config.input_kind}",
    )
