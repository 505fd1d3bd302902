"""CNN1: the CNN baseline of Hoppe et al. (2017/2018) with BN, as in RinQ's Table 4.

One pixel, C = 1 (magnitude) or 2 (real, imaginary) channels, T = 3000::

    [B,1,1,3000,C] -> [B,3000,C]
    -> Conv K15 S5 30 -> BN -> ReLU    [B,598,30]     (all convolutions VALID)
    -> Conv K10 S3 60 -> BN -> ReLU    [B,197,60]
    -> Conv K5  S2 120 -> BN -> ReLU   [B,97,120]
    -> Conv K3  S2 240 -> BN -> ReLU   [B,48,240]
    -> AvgPool K3 S2                   [B,23,240] -> flatten [B,5520]
    -> FC 1000 -> BN -> ReLU -> FC 500 -> BN -> ReLU -> FC 300 -> BN -> ReLU -> FC 2

Choices: Table 4 names the layers "Conv + BN" / "FC + BN" and applies a ReLU after
every layer, so BN sits between the linear map and its ReLU here (RNNs: ReLU first, as
their text says). The output FC is linear unless ``output_relu=True`` (the table's
literal reading). Channels are the last axis (time-major flatten, as in Keras).

Plain Flax layers, so ``jax.grad``, ``jax.jvp`` and ``jax.vmap`` all work.

Parameter count ("params": conv/FC weights and biases plus BN scale and bias), T = 3000:
conv ``15*30*C + 30 + 18,060 + 36,120 + 86,640``, FC ``5,521,000 + 500,500 + 150,300 +
602``, BN ``2 * 2,250 = 4,500``: 6,318,202 (C = 1) and 6,318,652 (C = 2); paper 6.3 M.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from rinq_jax.models.common import batch_norm, check_input

__all__ = ["CNN1"]

# (features, kernel size, stride) of Table 4's four convolutions.
CONV_LAYERS = ((30, 15, 5), (60, 10, 3), (120, 5, 2), (240, 3, 2))
FC_LAYERS = (1000, 500, 300)


class CNN1(nn.Module):
    """The CNN of Table 4.

    Attributes:
      channels: 1 (magnitude) or 2 (real, imaginary).
      output_relu: apply the table's ReLU to the output too (default: linear output).

    Call: ``x`` float32[B, 1, 1, T, C], ``train`` -> float32[B, 2] (normalised T1, T2).

    """

    channels: int
    output_relu: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Map x float32[B, P, P, T, C] to normalised (T1, T2) float32[B, 2]; see the class."""
        check_input(x, "CNN1", 1, self.channels)
        h = x[:, 0, 0]  # [B, T, C]
        for k, (features, kernel, stride) in enumerate(CONV_LAYERS, start=1):
            if h.shape[1] < kernel:
                raise ValueError(
                    f"CNN1 needs more time points: conv{k} (kernel {kernel}) gets length "
                    f"{h.shape[1]} from T={x.shape[3]} (the paper uses T=3000)"
                )
            h = nn.Conv(features, (kernel,), (stride,), "VALID", name=f"conv{k}")(h)
            h = nn.relu(batch_norm(train, f"bn_conv{k}")(h))
        if h.shape[1] < 3:
            raise ValueError(f"CNN1's average pooling needs length >= 3, got {h.shape[1]}")
        h = nn.avg_pool(h, (3,), strides=(2,), padding="VALID")
        h = h.reshape(h.shape[0], -1)  # [B, 23*240] = [B, 5520] for T = 3000
        for k, features in enumerate(FC_LAYERS, start=1):
            h = nn.Dense(features, name=f"fc{k}")(h)
            h = nn.relu(batch_norm(train, f"bn_fc{k}")(h))
        y = nn.Dense(2, name="fc4")(h)
        return nn.relu(y) if self.output_relu else y
