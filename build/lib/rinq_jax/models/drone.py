"""DRONE, the fully connected MRF network of Cohen, Zhu & Rosen: a baseline.

Cohen O, Zhu B, Rosen MS. MR fingerprinting deep reconstruction network (DRONE).
Magn Reson Med 2018;80:885-894, doi:10.1002/mrm.27198.

As described there: the input layer takes the signal of one pixel (magnitude, or the
real parts followed by the imaginary parts, i.e. "concatenated", not interleaved), two
hidden layers of 300 units with tanh, and an output layer of 2 units (T1, T2)::

    [B,1,1,T,C] -> [B, C*T] (re_0..re_{T-1}, im_0..im_{T-1})
    -> FC 300 -> tanh -> FC 300 -> tanh -> FC 2

Cohen et al. scale the targets to [0, 1] and use a sigmoid output; our targets are
normalised by the training pipeline (not necessarily into [0, 1]), so the output is
linear by default and ``output_sigmoid=True`` restores theirs. No BatchNorm (the
original has none), so DRONE's variables have no "batch_stats"; ``train`` is accepted
for a uniform interface.

Parameters, T = 3000: ``(C*T*300 + 300) + (300*300 + 300) + (300*2 + 2)`` =
991,202 (magnitude) and 1,891,202 (complex).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from rinq_jax.models.common import check_input

__all__ = ["DRONE"]


class DRONE(nn.Module):
    """Fully connected DRONE network.

    Attributes:
      channels: 1 (magnitude) or 2 (real, imaginary).
      hidden: units per hidden layer (Cohen et al.: 300).
      output_sigmoid: sigmoid output as in Cohen et al. (default: linear).

    Call: ``x`` float32[B, 1, 1, T, C], ``train`` (unused) -> float32[B, 2].

    """

    channels: int
    hidden: int = 300
    output_sigmoid: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Map x float32[B, P, P, T, C] to normalised (T1, T2) float32[B, 2]; see the class."""
        del train  # no BatchNorm or dropout
        check_input(x, "DRONE", 1, self.channels)
        # [B, T, C] -> [B, C, T] -> [B, C*T]: all real parts, then all imaginary parts.
        h = jnp.swapaxes(x[:, 0, 0], 1, 2).reshape(x.shape[0], -1)
        h = jnp.tanh(nn.Dense(self.hidden, name="fc1")(h))
        h = jnp.tanh(nn.Dense(self.hidden, name="fc2")(h))
        y = nn.Dense(2, name="fc3")(h)
        return nn.sigmoid(y) if self.output_sigmoid else y
