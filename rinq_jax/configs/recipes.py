"""Training recipes: the paper's, and ours for a CPU budget on freshly drawn data.

``paper`` (Hoppe, Thamm et al. 2019, Sect. 2.2 and supplementary Table 5): Adam
(beta1 0.9, beta2 0.999) at a constant step size, MSE of the targets, each of T1 and T2
standardised by the training mean and standard deviation in ms (`rinq_jax.training.config`);
learning rate and batch size per model from `rinq_jax.configs.models` (Table 5). Use it for the
Table 1 rows.

``rinq`` (the default of ``train.py``): the same networks and optimiser, with

* **log targets**: MSE of standardised ``ln T1``, ``ln T2``. An error of 10 % costs the same in
  white matter (T1 ~ 830 ms) as in CSF (~ 4,000 ms); in ms the loss is dominated by CSF and
  T1, and white and grey matter, most of the brain, are left to the mean;
* **warm-up and cosine decay** of the step size (`state.learning_rate_schedule`): a higher peak
  than Table 5 for fast progress, and small final steps that settle the noisy Adam updates
  of a short run;
* **gradient clipping** at global norm 1 against the LSTM's occasional gradient bursts;
* **validation** ``EVALS_PER_RUN`` times per run on a fixed sample of the held-out subjects' pixels;
  the best checkpoint by the paper's validation loss (sqrt of the MSE over T1 and T2 in ms) is
  kept.

The step counts are sized so that the README's main command fits a laptop's budget on 2 CPU
cores (timings in benchmarks/results.md).
"""

from __future__ import annotations

from typing import Any

RECIPES = ("rinq", "paper")

# model -> (peak learning rate, batch size, optimiser steps on the default data)
RINQ = {
    "rnn3": (1e-3, 32, 3000),
    "rnn1": (1e-3, 128, 600),
    "cnn1": (1e-3, 128, 3000),
    "drone": (1e-3, 128, 6000),
}
DEFAULT_EPOCHS = 10  # run length on a folder of slice files when none is asked for
WARMUP_FRACTION = 0.05
EVALS_PER_RUN = 10
FINAL_LR_FRACTION = 0.02
GRAD_CLIP_NORM = 1.0
# Models that `train.py` trains with their hand-written VJP (the LSTM's) on the CPU, where it
# was measured to pay (benchmarks/results.md); `get_model` itself builds plain autodiff models.
FAST_GRADIENT_MODELS = ("rnn1", "rnn3")
FAST_GRADIENT_BACKENDS = ("cpu",)
VAL_PATCHES = 3072  # a fixed sample of the validation subjects' brain pixels


def default_steps(model: str) -> int:
    """Optimiser steps of a run on a generated brain dataset when none are asked for."""
    return RINQ[model][2]


def fast_gradients(model: str, backend: str) -> bool:
    """Whether `train.py` switches on ``model``'s hand-written VJP on ``backend`` by default."""
    return model in FAST_GRADIENT_MODELS and backend in FAST_GRADIENT_BACKENDS


def recipe_fields(recipe: str, model: str) -> dict[str, Any]:
    """TrainConfig fields of a recipe for a model, for a run of any length.

    The paper's recipe leaves the config's defaults (Table 5 learning rate and batch size,
    constant, linear targets). The warm-up and the validations are fractions of the run's
    steps, which the trainer knows once it has the data (`TrainConfig.steps`).
    """
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    if recipe == "paper":
        return {}
    learning_rate, batch_size, _ = RINQ[model]
    return {
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "target_transform": "log",
        "lr_schedule": "warmup_cosine",
        "warmup_fraction": WARMUP_FRACTION,
        "final_lr_fraction": FINAL_LR_FRACTION,
        "grad_clip_norm": GRAD_CLIP_NORM,
        "evals_per_run": EVALS_PER_RUN,
        "max_val_patches": VAL_PATCHES,
    }
