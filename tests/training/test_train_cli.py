"""train.py's flag parsing: refusals and the config it builds."""

from __future__ import annotations

import sys

import pytest

from rinq_jax.configs import recipes
from tests.scripts import load_script


def _train_module():
    return load_script("train.py")


@pytest.fixture(scope="module")
def cli():
    return _train_module()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "resnet"], "invalid choice: 'resnet'"),
        (["--model", "rnn3", "--lr=-1e-3"], "must be > 0"),
        (["--model", "rnn3", "--lr", "0"], "must be > 0"),
        (["--model", "rnn3", "--batch-size", "33"], "not divisible by the 2 devices"),
        (["--model", "rnn3", "--batch-size", "0"], "positive integer"),
        (["--model", "rnn3", "--epochs", "2", "--steps", "5"], "not allowed with argument"),
        (["--model", "rnn3", "--input", "phase"], "invalid choice: 'phase'"),
        (["--model", "rnn3", "--target", "fake"], "invalid choice: 'fake'"),
        (["--model", "rnn3", "--input", "magnitude"], "not defined for 'magnitude'"),
        (["--model", "rnn3", "--matmul-dtype", "float16"], "invalid choice: 'float16'"),
        (["--model", "rnn3", "--train-subjects", "0"], "positive integer"),
        (
            ["--model", "drone", "--matmul-dtype", "bfloat16"],
            "unknown override(s) ['matmul_dtype']",
        ),
        (["--model", "cnn1", "--fast-gradients"], "unknown override(s) ['fast_gradients']"),
    ],
)
def test_refusals(cli, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_defaults(cli):
    args = cli.build_parser().parse_args(["--model", "rnn3"])
    c = cli.config_from_args(args)
    assert (
        c.workdir == "runs/rnn3-complex"
        and c.steps == recipes.default_steps("rnn3")
        and c.data_dir is None
    )
    # the default recipe: log targets, warm-up and cosine decay, its own peak step size
    assert (c.target_transform, c.lr_schedule) == ("log", "warmup_cosine")
    assert (c.learning_rate, c.batch_size) == recipes.RINQ["rnn3"][:2]
    assert 0 < c.warmup_steps < c.steps and c.grad_clip_norm == recipes.GRAD_CLIP_NORM
    args = cli.build_parser().parse_args(["--model", "rnn3", "--recipe", "paper"])
    c = cli.config_from_args(args)
    assert (c.target_transform, c.lr_schedule, c.grad_clip_norm) == ("linear", "constant", None)
    assert c.learning_rate is None and c.batch_size is None  # the paper's, filled in by the loop
    # the LSTM's hand-written VJP by default on the CPU (recipes.fast_gradients), else autodiff
    assert c.model_overrides == (("fast_gradients", True),)
    args = cli.build_parser().parse_args(
        ["--model", "rnn1", "--matmul-dtype", "bfloat16", "--no-fast-gradients"]
    )
    assert cli.config_from_args(args).model_overrides == (("matmul_dtype", "bfloat16"),)
    args = cli.build_parser().parse_args(["--model", "cnn1"])
    assert cli.config_from_args(args).model_overrides == ()
    args = cli.build_parser().parse_args(
        [
            "--model",
            "cnn1",
            "--input",
            "magnitude",
            "--data",
            "d",
            "--lr",
            "1e-4",
            "--batch-size",
            "64",
        ]
    )
    c = cli.config_from_args(args)
    assert (c.workdir, c.epochs, c.steps) == ("runs/cnn1-magnitude", cli.DEFAULT_EPOCHS, None)
    assert (c.learning_rate, c.batch_size, c.data_dir) == (1e-4, 64, "d")


def test_a_generated_brain_dataset_trains_for_the_default_steps(cli, tmp_path):
    """--data of a generated dataset (a manifest: the default's or `scanner prepare`'s) is a
    stream without epochs: the default data's length, not epochs over 155,579 pixels."""
    (tmp_path / "manifest.json").write_text("{}")
    c = cli.config_from_args(
        cli.build_parser().parse_args(["--model", "rnn3", "--data", str(tmp_path)])
    )
    assert (c.epochs, c.steps) == (1, recipes.default_steps("rnn3"))


def test_bad_data_folder_is_one_line_error(cli, tmp_path, capsys):
    code = cli.main(
        [
            "--model",
            "rnn1",
            "--data",
            str(tmp_path / "empty"),
            "--workdir",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("train.py: error: no slice files") and err.count("\n") == 1
    assert "train_cli" not in sys.modules  # loaded by path, not registered


def test_train_subjects_needs_a_generated_dataset(cli, tmp_path, capsys):
    from tests.evaluation.conftest import write_eval_slices

    write_eval_slices(tmp_path / "slices", n_files=3)
    argv = ["--model", "rnn1", "--data", str(tmp_path / "slices"), "--train-subjects", "2"]
    assert cli.main([*argv, "--workdir", str(tmp_path / "run"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "train_subjects needs a generated brain dataset" in err and err.count("\n") == 1
    args = cli.build_parser().parse_args(["--model", "rnn3", "--train-subjects", "4"])
    assert cli.config_from_args(args).train_subjects == 4
