"""The training runs as configs: `get_config(model, recipe)` is what `python train.py --model M` trains.

Every run starts here: the README's main command, the Table 1 rows
(`rinq_jax.experiments.table1`), the learning curves and the scanner runs only replace fields
(`TrainConfig.replace`, or ``--field-name VALUE`` on train.py's command line).
"""

from __future__ import annotations

import jax

from rinq_jax.configs import recipes
from rinq_jax.training.config import TrainConfig


def get_config(
    model: str, recipe: str = "rinq", input_kind: str = "complex", backend: str | None = None
) -> TrainConfig:
    """The run of ``model`` by ``recipe`` (`configs.recipes`) on the default brain data.

    Its length is the trainer's default (`TrainConfig.steps`); the LSTM's hand-written VJP is
    on where `recipes.fast_gradients` says it pays (``backend``: JAX's default backend).
    """
    fast = recipes.fast_gradients(model, backend or jax.default_backend())
    return TrainConfig(
        model=model,
        input_kind=input_kind,
        model_overrides=(("fast_gradients", True),) if fast else (),
        **recipes.recipe_fields(recipe, model),
    )
