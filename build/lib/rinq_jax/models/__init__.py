"""The paper's networks (CNN1, RNN1, RNN3), DRONE and the quantile layer."""

from rinq_jax.models.cnn import CNN1
from rinq_jax.models.drone import DRONE
from rinq_jax.models.quantile import quantile
from rinq_jax.models.registry import ModelSpec, get_model, model_spec
from rinq_jax.models.rnn import RNN1, RNN3

__all__ = [
    "CNN1",
    "DRONE",
    "RNN1",
    "RNN3",
    "ModelSpec",
    "get_model",
    "model_spec",
    "quantile",
]
