"""Look up the paper's models by name and input kind, with their training defaults.

Names, input kinds, patch sizes and the paper's Table 5 hyperparameters come from
`rinq_jax.configs.models`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rinq_jax.configs.data import PAPER_N_REPS
from rinq_jax.configs.models import INPUT_CHANNELS, INPUT_KINDS, MODEL_NAMES, PATCH_SIZE, TABLE5
from rinq_jax.models.cnn import CNN1
from rinq_jax.models.drone import DRONE
from rinq_jax.models.rnn import RNN1, RNN3

__all__ = ["ModelSpec", "model_spec", "get_model", "check_overrides", "parameter_count"]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the data pipeline and trainer need to know about a model.

    Attributes:
      name: one of ``MODEL_NAMES``.
      input_kind: "complex" (C = 2: real, imaginary) or "magnitude" (C = 1).
      patch_size: P, the input patch is P x P pixels (3 for rnn3, else 1).
      channels: C, the last axis of the input.
      learning_rate: Adam step size (Table 5).
      batch_size: patches per optimisation step (Table 5).

    """

    name: str
    input_kind: str
    patch_size: int
    channels: int
    learning_rate: float
    batch_size: int


_MODULES = {"cnn1": CNN1, "rnn1": RNN1, "rnn3": RNN3, "drone": DRONE}


def model_spec(name: str, input_kind: str = "complex") -> ModelSpec:
    """Return the ``ModelSpec`` of ``name`` for ``input_kind``; ValueError for unknown pairs."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}")
    if input_kind not in INPUT_KINDS:
        raise ValueError(
            f"unknown input kind {input_kind!r}; valid kinds: {', '.join(INPUT_KINDS)}"
        )
    if (name, input_kind) not in TABLE5:
        valid = [kind for (n, kind) in TABLE5 if n == name]
        raise ValueError(
            f"model {name!r} is not defined for {input_kind!r} input in the paper; "
            f"valid input kinds for {name!r}: {', '.join(valid)}"
        )
    learning_rate, batch_size = TABLE5[(name, input_kind)]
    return ModelSpec(
        name=name,
        input_kind=input_kind,
        patch_size=PATCH_SIZE[name],
        channels=INPUT_CHANNELS[input_kind],
        learning_rate=learning_rate,
        batch_size=batch_size,
    )


def get_model(name: str, input_kind: str = "complex", **overrides) -> nn.Module:
    """Build the Flax module for ``(name, input_kind)``.

    ``overrides`` replace module attributes (e.g. ``output_relu=True``,
    ``lstm_unroll=5``, ``fast_gradients=True``, ``n_steps=10``); ``channels`` follows
    from ``input_kind`` and cannot be overridden.
    """
    spec = model_spec(name, input_kind)
    check_overrides(name, overrides)
    return _MODULES[name](channels=spec.channels, **overrides)


def check_overrides(name: str, overrides: Mapping[str, Any]) -> None:
    """Raise a ValueError unless every key of ``overrides`` is an attribute of model ``name``."""
    if name not in _MODULES:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(_MODULES)}")
    fields = {f.name for f in dataclasses.fields(_MODULES[name])} - {"parent", "name", "channels"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"unknown override(s) {unknown} for {name!r}; valid: {', '.join(sorted(fields))}"
        )


def parameter_count(name: str, input_kind: str = "complex", n_reps: int = PAPER_N_REPS) -> int:
    """Trainable parameters of the model for series of ``n_reps`` repetitions (shapes only)."""
    spec = model_spec(name, input_kind)
    model = get_model(name, input_kind)
    x = jax.ShapeDtypeStruct(
        (2, spec.patch_size, spec.patch_size, n_reps, spec.channels), jnp.float32
    )
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    return sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))
