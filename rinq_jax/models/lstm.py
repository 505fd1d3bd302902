"""A single-layer LSTM written for speed, and the paper's chunking of a signal into steps.

Equations (Hochreiter & Schmidhuber 1997, with forget gate; Keras/PyTorch gate order)::

    z_t = x_t W_ih + h_{t-1} W_hh + b          z_t in R^{4H}, split as (i, f, g, o)
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(c_t)               h_0 = c_0 = 0

Speed: the input projection ``x W_ih + b`` does not depend on the recurrence, so it is
hoisted out of the loop as one ``[B*S, F] @ [F, 4H]`` matmul (for RNN3: F = 1800, the
bulk of the FLOPs); the loop (``lax.scan``) only does the fused ``[B, H] @ [H, 4H]``.

Parameters (stable names for checkpoints): ``w_ih`` float32[F, 4H], ``w_hh``
float32[H, 4H], ``bias`` float32[4H] -- ``4 * (F*H + H*H + H)`` in total. This is the
Keras count (one bias vector); PyTorch's ``nn.LSTM`` keeps two (``b_ih`` and ``b_hh``)
and would report ``4*H`` more, which changes nothing the model can express.

Initialisation follows Keras (which the paper's counts match): Glorot-uniform ``w_ih``,
orthogonal ``w_hh``, zero bias except the forget gate's, which starts at 1.0
(``unit_forget_bias=True``; Jozefowicz et al. 2015) so that early gradients pass
through the cell state.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["ChunkedLSTM", "chunk_signal", "DEFAULT_UNROLL"]

# Measured on the 2 shared CPU cores (benchmark: RNN3, B = 32, S = 30, H = 500, jitted
# forward + backward, best of 5): unroll 1 / 2 / 5 / 10 / 30 -> 112 / 200 / 205 / 238 /
# 304 ms, compile 1.9 / 2.2 / 5.1 / 4.5 / 19.6 s. The hoisted input projection dominates,
# so a rolled loop loses nothing and compiles fastest; re-measure on accelerators.
DEFAULT_UNROLL = 1


def _forget_bias_init(hidden: int, forget_bias: float):
    def init(key, shape, dtype=jnp.float32):
        del key
        if shape != (4 * hidden,):
            raise ValueError(f"LSTM bias must have shape ({4 * hidden},), got {shape}")
        return jnp.zeros(shape, dtype).at[hidden : 2 * hidden].set(forget_bias)

    return init


def _lstm_step(w_hh: jax.Array, carry, xp_t: jax.Array):
    """One LSTM step given the precomputed input projection ``xp_t`` float32[B, 4H]."""
    h, c = carry
    z = xp_t + h @ w_hh
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (h, c), h


class ChunkedLSTM(nn.Module):
    """LSTM over a short sequence of signal chunks, returning every step's hidden state.

    Attributes:
      hidden: H, the number of units (paper: 1000 for RNN1, 500 for RNN3).
      unroll: ``lax.scan`` unroll factor (an implementation detail; results are equal).
      forget_bias: initial forget-gate bias (Keras default 1.0).

    Call: ``x`` float32[B, S, F] -> float32[B, S, H].

    """

    hidden: int
    unroll: int = DEFAULT_UNROLL
    forget_bias: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Run the LSTM: x float32[B, S, F] -> hidden states float32[B, S, H]."""
        if x.ndim != 3:
            raise ValueError(
                f"ChunkedLSTM expects x of shape [batch, steps, features], got {x.shape}"
            )
        batch, _, features = x.shape
        h4 = 4 * self.hidden
        w_ih = self.param("w_ih", nn.initializers.glorot_uniform(), (features, h4), jnp.float32)
        w_hh = self.param("w_hh", nn.initializers.orthogonal(), (self.hidden, h4), jnp.float32)
        bias = self.param("bias", _forget_bias_init(self.hidden, self.forget_bias), (h4,))
        # Hoisted input projection: one matmul for all steps, then time-major for scan.
        xp = jnp.swapaxes(x @ w_ih + bias, 0, 1)  # [S, B, 4H]
        zeros = jnp.zeros((batch, self.hidden), xp.dtype)
        _, hs = jax.lax.scan(
            lambda carry, xp_t: _lstm_step(w_hh, carry, xp_t),
            (zeros, zeros),
            xp,
            unroll=self.unroll,
        )
        return jnp.swapaxes(hs, 0, 1)  # [B, S, H]


def chunk_signal(x: jax.Array, n_steps: int) -> jax.Array:
    """Cut each patch's signal into ``n_steps`` chunks of consecutive time points.

    Args:
      x: float32[B, P, P, T, C] -- patch of P x P pixels, T time points, C channels
        (1: magnitude; 2: real, imaginary).
      n_steps: number of sequence elements S; T must be divisible by it (paper: 30).

    Returns:
      float32[B, S, P*P*(T/S)*C]. Within a step the order is pixel (row-major), then
      time, then channel, so for one pixel and complex input a step reads
      ``re_0, im_0, re_1, im_1, ..., re_99, im_99`` -- the paper's "alternated order"
      of the 200 values (RNN1); RNN3 concatenates the 9 pixels' 200-value blocks
      (9 * 200 = 1800). Every step covers the same time window for all pixels.

    """
    if x.ndim != 5:
        raise ValueError(f"expected x of shape [batch, P, P, T, C], got {x.shape}")
    batch, p0, p1, n_time, channels = x.shape
    if n_time % n_steps:
        raise ValueError(
            f"the number of time points T={n_time} must be divisible by n_steps={n_steps}"
        )
    step_len = n_time // n_steps
    x = x.reshape(batch, p0, p1, n_steps, step_len, channels)
    x = jnp.transpose(x, (0, 3, 1, 2, 4, 5))  # [B, S, P, P, T/S, C]
    return x.reshape(batch, n_steps, p0 * p1 * step_len * channels)
