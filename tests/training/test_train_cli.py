"""train.py's flag parsing: refusals and the config it builds."""

from __future__ import annotations

import sys

import pytest

from rinq_jax.configs import recipes
from rinq_jax.configs.train import get_config
from rinq_jax.training.config import resolve_config, run_length
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
        (["--model", "rnn3", "--learning-rate=-1e-3"], "learning_rate must be > 0 and finite"),
        (["--model", "rnn3", "--config.learning_rate=inf"], "learning_rate must be > 0 and finite"),
        (["--model", "rnn3", "--batch-size", "0"], "batch_size must be >= 1"),
        (["--model", "rnn3", "--steps", "x"], "expected int, got 'x'"),
        (["--model", "rnn3", "--epochs", "2", "--steps", "5"], "set steps or epochs, not both"),
        (["--model", "rnn3", "--input-kind", "magnitude"], "not defined for 'magnitude'"),
        (["--model", "rnn3", "--values", "narrow"], "values must be one of"),
        (["--model", "rnn3", "--model-overrides", "{bad"], "expected JSON"),
        (
            ["--model", "cnn1", "--model-overrides", '{"fast_gradients": true}'],
            "unknown override(s) ['fast_gradients']",
        ),
    ],
)
def test_refusals(cli, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_the_default_is_the_recipe_config_and_flags_replace_its_fields(cli):
    def config(*argv):
        return cli.config_from_args(cli.build_parser().parse_args(["--model", *argv]))

    assert config("rnn3") == get_config("rnn3")
    assert config("rnn3", "--recipe", "paper") == get_config("rnn3", "paper")
    # both spellings of a field, a None, a JSON field, a boolean
    changed = config(
        "rnn1",
        "--steps",
        "6000",
        "--config.seed=2",
        "--train-subjects",
        "none",
        "--model-overrides",
        '{"matmul_dtype": "bfloat16"}',
        "--no-progress",
    )
    assert changed == get_config("rnn1").replace(
        steps=6000, seed=2, progress=False, model_overrides=(("matmul_dtype", "bfloat16"),)
    )
    magnitude = resolve_config(config("cnn1", "--input-kind", "magnitude"))
    assert magnitude.workdir == "runs/cnn1-magnitude"


def test_the_run_length_follows_the_data_and_sizes_the_recipe():
    """No steps or epochs: the default steps on a stream, DEFAULT_EPOCHS epochs of slice files;
    the warm-up and the validations are fractions of that length (not of a default length)."""
    config = get_config("rnn3")
    assert run_length(config, streamed=True, steps_per_epoch=7) == recipes.default_steps("rnn3")
    assert run_length(config, streamed=False, steps_per_epoch=7) == 7 * recipes.DEFAULT_EPOCHS
    assert run_length(config.replace(epochs=3), streamed=True, steps_per_epoch=7) == 21
    assert run_length(config.replace(steps=5), streamed=False, steps_per_epoch=7) == 5
    assert config.warmup_fraction == recipes.WARMUP_FRACTION
    assert config.evals_per_run == recipes.EVALS_PER_RUN


def test_bad_data_folder_is_one_line_error(cli, tmp_path, capsys):
    code = cli.main(
        [
            "--model",
            "rnn1",
            "--data-dir",
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
    argv = ["--model", "rnn1", "--data-dir", str(tmp_path / "slices"), "--train-subjects", "2"]
    assert cli.main([*argv, "--workdir", str(tmp_path / "run"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "train_subjects needs a generated brain dataset" in err and err.count("\n") == 1
    args = cli.build_parser().parse_args(["--model", "rnn3", "--train-subjects", "4"])
    assert cli.config_from_args(args).train_subjects == 4


def test_neighbour_loss_needs_rnn3_and_a_generated_dataset(cli, tmp_path, capsys):
    from tests.evaluation.conftest import write_eval_slices

    write_eval_slices(tmp_path / "slices", n_files=3)
    argv = ["--data-dir", str(tmp_path / "slices"), "--neighbour-loss", "1", "--no-progress"]
    assert cli.main(["--model", "rnn3", *argv, "--workdir", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "neighbour_loss needs a generated brain dataset" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--model", "rnn1", *argv])
    assert exit_info.value.code == 2
    assert "only rnn3 predict for the neighbours" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
