"""A few hundred steps of the default recipe on a tiny generated brain dataset learn."""

import csv

import numpy as np
import pytest

from rinq_jax.configs.train import get_config
from rinq_jax.data.datasets import synthetic
from rinq_jax.data.files import io
from rinq_jax.data.files.format import TARGET_PAIRS
from rinq_jax.training.loop import train_and_evaluate

# Small and short (120 repetitions), so 4x undersampling and SNR 100 leave the signals enough
# information for a 300-step run.
TINY = synthetic.BrainDataConfig(
    n_train=3,
    n_val=1,
    n_test=1,
    n_slices=2,
    matrix=48,
    n_reps=120,
    undersampling=4,
    snr=100.0,
    noise_bank=3,
    rank=8,
)


def _tiny_run(data, workdir, values):
    """The default recipe for 300 steps of a small RNN3 on ``data``, validated 3 times."""
    return get_config("rnn3").replace(
        data_dir=str(data),
        workdir=str(workdir),
        steps=300,
        learning_rate=3e-3,
        evals_per_run=3,
        max_val_patches=None,
        values=values,
        progress=False,
        model_overrides=(("lstm_hidden", 32),),
    )


@pytest.mark.slow  # ~100 s: a tiny dataset and a 300-step run
def test_recipe_lowers_the_validation_loss_well_below_the_mean_predictor(tmp_path):
    synthetic.generate(TINY, tmp_path / "data", progress=False)
    config = _tiny_run(tmp_path / "data", tmp_path / "run", "brain")
    result = train_and_evaluate(config)
    # the mean predictor on the same validation pixels and the truth the recipe trains on
    pair = TARGET_PAIRS[config.target]
    val = [io.read_slice(p, fields=pair) for p in synthetic.load(tmp_path / "data").val]
    y = np.concatenate([np.stack([getattr(s, f)[s.mask] for f in pair], -1) for s in val])
    mean_loss = np.sqrt(np.mean((y - y.mean(0)) ** 2))
    with (tmp_path / "run" / "metrics.csv").open(newline="") as f:
        val_rows = [r for r in csv.DictReader(f) if r["split"] == "val"]
    first = float(val_rows[0]["val_loss_ms"])
    assert float(val_rows[0]["rme_t1_wm_pct"]) > 0  # per-tissue learning curves are logged
    assert result.best_val_loss_ms < first
    # The run is deterministic (seeded data, initialisation and order; CPU): 0.52 of the mean
    # predictor's loss (0.58 with the raw series, 0.52-0.66 in earlier versions of the data). A
    # network that does not learn stays near 1.0; the bar leaves a margin for float rounding
    # across platforms.
    assert result.best_val_loss_ms < 0.8 * mean_loss


@pytest.mark.slow  # ~3 min: two 300-step runs, a tiny out-of-range set, dictionary matching
def test_wide_values_measure_outside_the_brain_range_where_brain_values_recognise(tmp_path):
    """Trained on wide values, a network tracks white matter at 0.5x and 2x its normal T1;
    trained on brain-like values, the same network and steps stay nearer the normal value."""
    from rinq_jax.data.datasets import test_sets
    from rinq_jax.evaluation import evaluate, inference

    synthetic.generate(TINY, tmp_path / "data", progress=False)
    groups = test_sets.generate(TINY, tmp_path / "data", "out-of-range", progress=False)
    files = [p for paths in groups.values() for p in paths]
    extremes = [p for p in files if io.inspect(p).generator["t1_scale"] in (0.5, 2.0)]
    errors = {}
    for values in ("wide", "brain"):
        config = _tiny_run(tmp_path / "data", tmp_path / values, values)
        train_and_evaluate(config)
        checkpoint = inference.load_checkpoint(tmp_path / values)
        result = evaluate.evaluate(
            [checkpoint], extremes, tmp_path / f"eval-{values}", make_figures=False, log=print
        )
        errors[values] = result.methods[checkpoint.name].tissue_rme_pct("wm", "t1")
    assert errors["wide"] < 0.7 * errors["brain"], errors
