"""Look up the paper's models by name and input kind, with their training defaults.

Training defaults are the paper's Table 5 (Adam, beta1 = 0.9, beta2 = 0.999):

=====  =========  ==============  ==========
model  input      learning rate   batch size
=====  =========  ==============  ==========
cnn1   magnitude  5e-5            128
cnn1   complex    5e-5            128
rnn1   magnitude  5e-5            128
rnn1   complex    1e-3            128
rnn3   complex    1e-4            32
drone  both       1e-3            128   (ours: Adam's customary default; see below)
=====  =========  ==============  ==========

RNN3 exists only for complex input in the paper; ``("rnn3", "magnitude")`` is refused.
DRONE is not in Table 5; Cohen et al. train with Adam but their step size is not one
the RinQ paper reports, so we use 1e-3 with the paper's usual batch size 128.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from rinq_jax.models.cnn import CNN1
from rinq_jax.models.drone import DRONE
from rinq_jax.models.rnn import RNN1, RNN3

__all__ = ["ModelSpec", "model_spec", "get_model", "MODEL_NAMES", "INPUT_KINDS"]

MODEL_NAMES = ("cnn1", "rnn1", "rnn3", "drone")
INPUT_KINDS = ("complex", "magnitude")
_CHANNELS = {"magnitude": 1, "complex": 2}


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


# (name, input_kind) -> (patch_size, learning_rate, batch_size)
_SPECS = {
    ("cnn1", "magnitude"): (1, 5e-5, 128),
    ("cnn1", "complex"): (1, 5e-5, 128),
    ("rnn1", "magnitude"): (1, 5e-5, 128),
    ("rnn1", "complex"): (1, 1e-3, 128),
    ("rnn3", "complex"): (3, 1e-4, 32),
    ("drone", "magnitude"): (1, 1e-3, 128),
    ("drone", "complex"): (1, 1e-3, 128),
}

_MODULES = {"cnn1": CNN1, "rnn1": RNN1, "rnn3": RNN3, "drone": DRONE}


def model_spec(name: str, input_kind: str = "complex") -> ModelSpec:
    """Return the ``ModelSpec`` of ``name`` for ``input_kind``; ValueError for unknown pairs."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}")
    if input_kind not in INPUT_KINDS:
        raise ValueError(
            f"unknown input kind {input_kind!r}; valid kinds: {', '.join(INPUT_KINDS)}"
        )
    if (name, input_kind) not in _SPECS:
        valid = [kind for (n, kind) in _SPECS if n == name]
        raise ValueError(
            f"model {name!r} is not defined for {input_kind!r} input in the paper; "
            f"valid input kinds for {name!r}: {', '.join(valid)}"
        )
    patch_size, learning_rate, batch_size = _SPECS[(name, input_kind)]
    return ModelSpec(
        name=name,
        input_kind=input_kind,
        patch_size=patch_size,
        channels=_CHANNELS[input_kind],
        learning_rate=learning_rate,
        batch_size=batch_size,
    )


def get_model(name: str, input_kind: str = "complex", **overrides) -> nn.Module:
    """Build the Flax module for ``(name, input_kind)``.

    ``overrides`` replace module attributes (e.g. ``output_relu=True``,
    ``lstm_unroll=5``, ``bn_axis_name="batch"``, ``n_steps=10``); ``channels`` follows
    from ``input_kind`` and cannot be overridden.
    """
    spec = model_spec(name, input_kind)
    module_cls = _MODULES[name]
    fields = {f.name for f in dataclasses.fields(module_cls)} - {"parent", "name", "channels"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"unknown override(s) {unknown} for {name!r}; valid: {', '.join(sorted(fields))}"
        )
    return module_cls(channels=spec.channels, **overrides)
