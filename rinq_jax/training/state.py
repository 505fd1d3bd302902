"""Train state: parameters, BatchNorm statistics and the Adam optimiser, as one pytree."""

from __future__ import annotations

from collections.abc import Mapping
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


def learning_rate_schedule(
    peak: float,
    total_steps: int,
    kind: str = "constant",
    warmup_steps: int = 0,
    final_fraction: float = 0.0,
) -> optax.Schedule:
    """The step size at each step.

    "constant" (the paper) or "warmup_cosine" (linear warm-up
    from 0 to ``peak`` over ``warmup_steps``, then cosine decay to ``final_fraction * peak`` at
    ``total_steps``; Loshchilov & Hutter, ICLR 2017).
    """
    if kind == "constant":
        return optax.constant_schedule(peak)
    if kind == "warmup_cosine":
        warmup = min(warmup_steps, max(total_steps - 1, 0))
        return optax.warmup_cosine_decay_schedule(
            0.0, peak, warmup, max(total_steps, warmup + 1), end_value=final_fraction * peak
        )
    raise ValueError(f"unknown learning-rate schedule {kind!r}")


def create_optimizer(
    learning_rate: float | optax.Schedule, grad_clip_norm: float | None = None
) -> optax.GradientTransformation:
    """Adam(beta1=0.9, beta2=0.999) (Table 5), after optional global-norm gradient clipping."""
    adam = optax.adam(learning_rate, b1=ADAM_B1, b2=ADAM_B2)
    if grad_clip_norm is None:
        return adam
    return optax.chain(optax.clip_by_global_norm(grad_clip_norm), adam)


def create_train_state(
    model: nn.Module,
    rng: jax.Array,
    sample_x: jax.Array,
    learning_rate: float | optax.Schedule,
    grad_clip_norm: float | None = None,
    inputs: Mapping[str, jax.Array] | None = None,
) -> TrainState:
    """Initialise parameters and optimiser for `model`.

    Args:
      model: flax module taking x float32[B, P, P, T, C] and `train: bool`.
      rng: PRNG key for parameter initialisation.
      sample_x: float32[B, P, P, T, C], only its shape and dtype are used (B may be 1).
      learning_rate: Adam step size, or a schedule of it (`learning_rate_schedule`).
      grad_clip_norm: see `create_optimizer`.
      inputs: the model's other inputs of a sample batch (`steps.model_inputs`), shapes only.

    Returns:
      TrainState at step 0 with `batch_stats` ({} for models without BatchNorm).

    """
    variables = jax.jit(lambda k, x, i: model.init({"params": k}, x, train=False, **i))(
        rng, jnp.asarray(sample_x), dict(inputs or {})
    )
    return TrainState.create(
        apply_fn=model.apply,
        params=variables["params"],
        batch_stats=variables.get("batch_stats", {}),
        tx=create_optimizer(learning_rate, grad_clip_norm),
    )
