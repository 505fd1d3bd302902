"""A single-layer LSTM written for speed, and the paper's chunking of a signal into steps.

Equations (Hochreiter & Schmidhuber 1997, with forget gate; Keras/PyTorch gate order)::

    z_t = x_t W_ih + h_{t-1} W_hh + b          z_t in R^{4H}, split as (i, f, g, o)
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(c_t)               h_0 = c_0 = 0

Speed: two ways to compute ``z_t``, chosen by the input width (``fuse_input``):

* F > H (RNN3: F = 1800, H = 500): the input projection ``x W_ih + b`` does not depend on
  the recurrence, so it is hoisted out of the loop as one ``[S*B, F] @ [F, 4H]`` matmul
  (the bulk of the FLOPs) and the loop (``lax.scan``) only does ``[B, H] @ [H, 4H]``.
* F <= H (RNN1: F = 200, H = 1000): one fused ``[x_t, h_{t-1}] @ [W_ih; W_hh]`` per step.
  The hoisted product would be a [S, B, 4H] buffer written once and read once, 20 times
  larger than the input; the fused step never materialises it. Measured on 2 CPU cores
  (CPU seconds): RNN1 inference at B = 512 1.76 -> 1.39 s, a training step at B = 128
  1.47 -> 1.30 s; RNN3 gets slower fused (0.72 -> 0.79 s, 0.31 -> 0.46 s), hence the rule.

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

import functools

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


def _gates(z: jax.Array, c: jax.Array):
    """LSTM cell update from the pre-activations ``z`` float32[B, 4H] and cell ``c`` [B, H]."""
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (h, c), h


def _lstm_step(w_hh: jax.Array, carry, xp_t: jax.Array):
    """One LSTM step given the precomputed input projection ``xp_t`` float32[B, 4H]."""
    h, c = carry
    return _gates(xp_t + h @ w_hh, c)


def _fused_lstm_step(w: jax.Array, bias: jax.Array, carry, x_t: jax.Array):
    """One LSTM step with ``w`` = [W_ih; W_hh] float32[F + H, 4H] and input ``x_t`` [B, F]."""
    h, c = carry
    return _gates(jnp.concatenate([x_t, h], axis=-1) @ w + bias, c)


class ChunkedLSTM(nn.Module):
    """LSTM over a short sequence of signal chunks, returning every step's hidden state.

    Attributes:
      hidden: H, the number of units (paper: 1000 for RNN1, 500 for RNN3).
      unroll: ``lax.scan`` unroll factor (an implementation detail; results are equal).
      forget_bias: initial forget-gate bias (Keras default 1.0).
      fuse_input: compute ``x_t W_ih`` inside the loop, fused with ``h W_hh`` (True), or
        hoisted before it (False); None picks fused when F <= H (see the module docstring).
        Same parameters and results either way.

    Call: ``x`` float32[B, S, F] -> float32[B, S, H].

    """

    hidden: int
    unroll: int = DEFAULT_UNROLL
    forget_bias: float = 1.0
    fuse_input: bool | None = None

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
        xs = jnp.swapaxes(x, 0, 1)  # [S, B, F]: time-major for scan (cheaper than [S, B, 4H])
        zeros = jnp.zeros((batch, self.hidden), x.dtype)
        fuse = features <= self.hidden if self.fuse_input is None else self.fuse_input
        if fuse:
            w = jnp.concatenate([w_ih, w_hh], axis=0)  # [F + H, 4H]
            step = functools.partial(_fused_lstm_step, w, bias)
        else:
            # Hoisted input projection: one matmul for all steps.
            xs = xs @ w_ih + bias  # [S, B, 4H]
            step = functools.partial(_lstm_step, w_hh)
        _, hs = jax.lax.scan(step, (zeros, zeros), xs, unroll=self.unroll)
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
