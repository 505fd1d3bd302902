"""Train state: parameters, BatchNorm statistics and the Adam optimiser, as one pytree."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

# The paper's optimiser settings (Table 5): Adam with beta1 = 0.9, beta2 = 0.999.
ADAM_B1 = 0.9
ADAM_B2 = 0.999


class TrainState(train_state.TrainState):
    """`flax.training.train_state.TrainState` plus the BatchNorm running statistics.

    `batch_stats` is carried functionally: the train step returns the updated statistics in the
    new state instead of mutating anything.
    """

    batch_stats: Any = None


def create_optimizer(learning_rate: float) -> optax.GradientTransformation:
    """Adam(beta1=0.9, beta2=0.999) with a constant step size (the paper uses no schedule)."""
    return optax.adam(learning_rate, b1=ADAM_B1, b2=ADAM_B2)


def create_train_state(
    model: nn.Module, rng: jax.Array, sample_x: jax.Array, learning_rate: float
) -> TrainState:
    """Initialise parameters and optimiser for `model`.

    Args:
      model: flax module taking x float32[B, P, P, T, C] and `train: bool`.
      rng: PRNG key for parameter initialisation.
      sample_x: float32[B, P, P, T, C], only its shape and dtype are used (B may be 1).
      learning_rate: Adam step size.

    Returns:
      TrainState at step 0 with `batch_stats` ({} for models without BatchNorm).

    """
    variables = jax.jit(lambda k, x: model.init({"params": k}, x, train=False))(
        rng, jnp.asarray(sample_x)
    )
    return TrainState.create(
        apply_fn=model.apply,
        params=variables["params"],
        batch_stats=variables.get("batch_stats", {}),
        tx=create_optimizer(learning_rate),
    )
