"""Train one of the paper's networks: a config from `rinq_jax.configs.train`, then `train_and_evaluate`.

    python train.py --model rnn3                       # the main run, on the default brain data
    python train.py --model rnn3 --recipe paper        # Table 5: constant Adam, MSE in ms
    python train.py --model rnn1 --input-kind magnitude --data-dir DIR --epochs 20
    python train.py --model rnn3 --steps 6000 --seed 1 --workdir runs/rnn3-long

Every other flag is a field of `rinq_jax.training.config.TrainConfig` (``--field-name VALUE``
or ``--config.field_name=VALUE``; ``python train.py --help`` lists them), overriding the
recipe's config (`rinq_jax.configs.train.get_config`). Without ``--data-dir`` the default
brain dataset is generated once in data/brain. Re-running a command with the same workdir
resumes its latest checkpoint.
"""

from __future__ import annotations

import argparse
import sys

from rinq_jax.cli import add_config_flags, config_overrides
from rinq_jax.configs import recipes
from rinq_jax.configs.models import MODEL_NAMES
from rinq_jax.configs.train import get_config
from rinq_jax.errors import InputError
from rinq_jax.training.config import TrainConfig
from rinq_jax.training.loop import NonFiniteLossError, train_and_evaluate


def build_parser() -> argparse.ArgumentParser:
    """The command line: the model, the recipe and every TrainConfig field."""
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train a RinQ fingerprinting network; metrics go to WORKDIR/metrics.csv and "
        "WORKDIR/tensorboard, checkpoints to WORKDIR/checkpoints and WORKDIR/best.",
    )
    parser.add_argument("--model", required=True, choices=MODEL_NAMES)
    parser.add_argument(
        "--recipe", default="rinq", choices=recipes.RECIPES, help="rinq_jax/configs/recipes.py"
    )
    add_config_flags(parser, TrainConfig, skip=("model",))
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The recipe's config for the model with the flags' fields replaced."""
    return get_config(args.model, args.recipe).replace(**config_overrides(args))


def main(argv: list[str] | None = None) -> int:
    """Parse flags, train; one-line errors for bad flags (exit 2) and bad input (exit 1)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as err:  # a field's value out of range: the config's own checks
        parser.error(str(err))
    try:
        train_and_evaluate(config)
    except (NonFiniteLossError, InputError) as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
