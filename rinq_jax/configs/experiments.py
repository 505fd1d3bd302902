"""Experiments as configs: the rows of the paper's Table 1 and the learning-curve runs.

`rinq_jax.experiments.table1` and `rinq_jax.experiments.learning_curves` run what is defined
here; each run's `TrainConfig` starts from `rinq_jax.configs.train.get_config`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from rinq_jax.configs import recipes
from rinq_jax.configs.data import DEFAULT_DATA_DIR
from rinq_jax.configs.models import MODEL_NAMES
from rinq_jax.configs.train import get_config
from rinq_jax.training.config import TrainConfig

# --------------------------------------------------------------------------- Table 1

SMALL_SUBJECTS = 4  # the paper's small set: 4 subjects, 12 slices
TABLE1_SEEDS = (0, 1)
TABLE1_STEPS_FRACTION = 0.5


@dataclasses.dataclass(frozen=True)
class Row:
    """One network of the table.

    Attributes:
        key: run folder prefix, e.g. ``"rnn3-complex-more"``.
        model, input_kind: registry names.
        more_data: trained on every training subject (RNN3*), else on `SMALL_SUBJECTS`.
        paper_val_loss_ms: the paper's Table 1 value (None where the paper has none).
        label: row label in tables and figures.

    """

    key: str
    model: str
    input_kind: str
    more_data: bool
    paper_val_loss_ms: float | None
    label: str


TABLE1_ROWS = (
    Row("cnn1-magnitude", "cnn1", "magnitude", False, 636.96, "CNN1 magnitude"),
    Row("rnn1-magnitude", "rnn1", "magnitude", False, 424.96, "RNN1 magnitude"),
    Row("cnn1-complex", "cnn1", "complex", False, 470.26, "CNN1 complex"),
    Row("rnn1-complex", "rnn1", "complex", False, 269.20, "RNN1 complex"),
    Row("rnn3-complex", "rnn3", "complex", False, 221.52, "RNN3 complex"),
    Row("rnn3-complex-more", "rnn3", "complex", True, 195.34, "RNN3* complex (more data)"),
    Row("drone-complex", "drone", "complex", False, None, "DRONE complex"),
)
# The paper's claims, as (claim, better row, worse row) on the test loss.
TABLE1_ORDERING = (
    ("complex over magnitude", "cnn1-complex", "cnn1-magnitude"),
    ("complex over magnitude", "rnn1-complex", "rnn1-magnitude"),
    ("RNN over CNN", "rnn1-magnitude", "cnn1-magnitude"),
    ("RNN over CNN", "rnn1-complex", "cnn1-complex"),
    ("RNN3 (3x3 patch, quantile layer) over RNN1", "rnn3-complex", "rnn1-complex"),
    ("more data over less", "rnn3-complex-more", "rnn3-complex"),
)


@dataclasses.dataclass(frozen=True)
class Table1Setup:
    """Everything the experiment's runs share.

    Attributes:
        data_dir: a generated brain dataset (`rinq_jax.data.datasets.synthetic`).
        recipe: "rinq" or "paper" (`rinq_jax.configs.recipes`).
        steps_fraction: each row's steps as a fraction of the recipe's default steps.
        seeds: one run per row and seed.
        model_overrides: per model name, `get_model` overrides (tests use tiny networks).
        max_steps: cap on every run's steps (smoke runs).

    """

    data_dir: str = str(DEFAULT_DATA_DIR)
    recipe: str = "rinq"
    steps_fraction: float = TABLE1_STEPS_FRACTION
    seeds: tuple[int, ...] = TABLE1_SEEDS
    model_overrides: Mapping[str, tuple] = dataclasses.field(default_factory=dict)
    max_steps: int | None = None


def table1_config(row: Row, setup: Table1Setup, seed: int, workdir: Path) -> TrainConfig:
    """The TrainConfig of one row and seed, in ``workdir/<row>-seed<k>``.

    Every row reads the series as acquired and learns the rate-weighted truth, as in the paper
    (the recipe's subspace input and single-compartment target, which only RNN3's has, are
    off), so that the rows differ in the network alone.
    """
    steps = max(1, round(setup.steps_fraction * recipes.default_steps(row.model)))
    if setup.max_steps is not None:
        steps = min(steps, setup.max_steps)
    config = get_config(row.model, setup.recipe, row.input_kind)
    return config.replace(
        data_dir=setup.data_dir,
        workdir=str(workdir / f"{row.key}-seed{seed}"),
        steps=steps,
        seed=seed,
        subspace_input=False,
        target="true",
        train_subjects=None if row.more_data else SMALL_SUBJECTS,
        progress=False,
        model_overrides=tuple(
            {
                **dict(config.model_overrides),
                **dict(setup.model_overrides.get(row.model, ())),
            }.items()
        ),
    )


# --------------------------------------------------------------------------- learning curves

# The models of the learning curves (complex input, the default recipe and run length).
LEARNING_CURVE_MODELS = MODEL_NAMES


def learning_curve_config(model: str, workdir: Path, seed: int = 0) -> TrainConfig:
    """The TrainConfig of one learning curve, in ``workdir/<model>``."""
    return get_config(model).replace(
        workdir=str(workdir / model), steps=recipes.default_steps(model), seed=seed
    )
