"""Train one of the paper's networks: flags -> TrainConfig -> `train_and_evaluate`.

    python train.py --model rnn3                      # the default brain data
    python train.py --model rnn1 --input magnitude --data DIR --epochs 20
    python train.py --model rnn3 --recipe paper       # Table 5: constant Adam, MSE in ms

With no --data the default brain dataset (`rinq_jax.data.datasets.synthetic`, preset "brain") is
generated on first use in data/brain: training batches are drawn fresh from its training subjects,
validation and test subjects are fixed files. On it, or on another generated brain dataset (--data
DIR with a manifest, e.g. from `python -m rinq_jax.scanner prepare`), the default length is
`recipes.default_steps(model)` optimiser steps; with --data of plain slice files it is
`DEFAULT_EPOCHS` epochs. The recipes (`rinq_jax.configs.recipes`) set the step size, its schedule
and the target transform. Re-running the same command with the same --workdir resumes from its
latest checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax

from rinq_jax.cli import non_negative_int, positive_float, positive_int
from rinq_jax.configs import recipes
from rinq_jax.configs.data import VALUE_DISTRIBUTIONS
from rinq_jax.configs.models import INPUT_KINDS, MODEL_NAMES
from rinq_jax.data.datasets.synthetic import MANIFEST
from rinq_jax.errors import InputError
from rinq_jax.models import get_model
from rinq_jax.training.config import TrainConfig
from rinq_jax.training.loop import NonFiniteLossError, train_and_evaluate

DEFAULT_EPOCHS = 10


def _batch_size(text: str) -> int:
    value = positive_int(text)
    n = jax.device_count()  # all hosts' devices after jax.distributed.initialize()
    if value % n:
        raise argparse.ArgumentTypeError(
            f"{value} is not divisible by the {n} devices (the batch is split evenly)"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the command line of train.py."""
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Train a RinQ fingerprinting network (CNN1, RNN1, RNN3 or DRONE) on MRF "
        "slices; metrics go to WORKDIR/metrics.csv and WORKDIR/tensorboard, checkpoints to "
        "WORKDIR/checkpoints (latest) and WORKDIR/best (best validation loss).",
    )
    p.add_argument("--model", required=True, choices=MODEL_NAMES, help="network to train")
    p.add_argument(
        "--input",
        default="complex",
        choices=INPUT_KINDS,
        help="input signal: complex (real and imaginary channels) or magnitude "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="a generated brain dataset folder (python -m rinq_jax.generate), or a folder "
        "of slice files (*.h5), split 8:2:2 by slice like the paper; default: the brain "
        "dataset, generated once in data/brain",
    )
    p.add_argument(
        "--workdir",
        default=None,
        help="run directory for checkpoints and metrics (default: runs/<model>-<input>); "
        "an existing run there is resumed",
    )
    length = p.add_mutually_exclusive_group()
    length.add_argument(
        "--epochs",
        type=positive_int,
        help=f"passes over the training set (default with --data of slice files: {DEFAULT_EPOCHS})",
    )
    length.add_argument(
        "--steps",
        type=positive_int,
        help="total optimiser steps instead of epochs (default on generated brain data: "
        + ", ".join(f"{k} {recipes.default_steps(k)}" for k in MODEL_NAMES)
        + ")",
    )
    p.add_argument(
        "--recipe",
        default="rinq",
        choices=recipes.RECIPES,
        help="rinq: log targets, warm-up and cosine decay, clipping (default); paper: Table 5, "
        "constant step size, MSE in ms (see rinq_jax/configs/recipes.py)",
    )
    p.add_argument(
        "--lr", type=positive_float, help="Adam (peak) learning rate (default: the recipe's)"
    )
    p.add_argument(
        "--batch-size",
        type=_batch_size,
        help="global batch in patches, divisible by the number of devices "
        "(default: the recipe's, per model)",
    )
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of init, split and data order"
    )
    p.add_argument(
        "--train-subjects",
        type=positive_int,
        help="train on the first N training subjects of a generated dataset (default: all)",
    )
    p.add_argument(
        "--values",
        default="wide",
        choices=tuple(VALUE_DISTRIBUTIONS),
        help="what the training stream of a generated dataset draws tissue values from: wide "
        "(brain compartments anywhere in T1 50-4,500 ms, T2 5-2,500 ms in 3 of 4 draws, so "
        "that the network measures) or brain (0.70-1.42x of each tissue's population mean); "
        "rinq_jax/configs/data.py (default: %(default)s)",
    )
    p.add_argument(
        "--target",
        default="true",
        choices=("true", "dm"),
        help="training targets: true T1/T2 maps or dictionary-matching maps (default: %(default)s)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        default=200,
        help="also checkpoint every N steps inside an epoch, 0 for epoch ends only "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--keep-checkpoints",
        type=positive_int,
        default=TrainConfig.keep_checkpoints,
        help="latest checkpoints kept besides the best (one is written every --checkpoint-every "
        "steps and at every validation; keep them all for learning curves; default: %(default)s)",
    )
    p.add_argument(
        "--matmul-dtype",
        default="float32",
        choices=("float32", "bfloat16"),
        help="input dtype of the matmuls (rnn1, rnn3): bfloat16 is mixed precision, float32 "
        "accumulation and parameters, faster on CPUs with AMX/AVX512-BF16 and on "
        "accelerators (default: %(default)s)",
    )
    p.add_argument(
        "--fast-gradients",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the LSTM's hand-written VJP (rnn1, rnn3): same values as autodiff, faster "
        "training on CPUs (default: on for "
        + ", ".join(recipes.FAST_GRADIENT_MODELS)
        + " on the CPU; the models themselves default to plain autodiff)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def _model_overrides(args: argparse.Namespace) -> tuple[tuple[str, object], ...]:
    overrides = () if args.matmul_dtype == "float32" else (("matmul_dtype", args.matmul_dtype),)
    fast = args.fast_gradients
    if fast is None:
        fast = recipes.fast_gradients(args.model, jax.default_backend())
    return overrides + ((("fast_gradients", True),) if fast else ())


def config_from_args(args: argparse.Namespace):
    """Turn parsed flags into a TrainConfig."""
    if args.epochs is None and args.steps is None:
        streamed = args.data is None or (Path(args.data) / MANIFEST).exists()
        steps, epochs = (
            (recipes.default_steps(args.model), 1) if streamed else (None, DEFAULT_EPOCHS)
        )
    else:
        steps, epochs = args.steps, args.epochs or 1
    fields = recipes.recipe_fields(
        args.recipe, args.model, steps or recipes.default_steps(args.model)
    )
    fields.update(
        {k: v for k, v in (("learning_rate", args.lr), ("batch_size", args.batch_size)) if v}
    )
    return TrainConfig(
        model=args.model,
        input_kind=args.input,
        target=args.target,
        data_dir=args.data,
        workdir=args.workdir or f"runs/{args.model}-{args.input}",
        epochs=epochs,
        steps=steps,
        seed=args.seed,
        train_subjects=args.train_subjects,
        values=args.values,
        checkpoint_every_steps=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints,
        progress=not args.no_progress,
        model_overrides=_model_overrides(args),
        **fields,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse flags, train, print the result; one-line errors for bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        get_model(args.model, args.input, **dict(_model_overrides(args)))
    except ValueError as err:
        parser.error(str(err))
    try:
        train_and_evaluate(config_from_args(args))
    except (NonFiniteLossError, InputError) as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
