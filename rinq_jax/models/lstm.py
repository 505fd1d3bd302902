"""A single-layer LSTM written for speed, and the paper's chunking of a signal into steps.

Equations (Hochreiter & Schmidhuber 1997, with forget gate; Keras/PyTorch gate order)::

    z_t = x_t W_ih + h_{t-1} W_hh + b          z_t in R^{4H}, split as (i, f, g, o)
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(c_t)               h_0 = c_0 = 0

Speed: the input projection ``x W_ih + b`` does not depend on the recurrence, so it is
hoisted out of the step as one ``[k*B, F] @ [F, 4H]`` matmul per block of k steps; the steps
only do ``[B, H] @ [H, 4H]``. k is the largest divisor of S with ``k*B <= projection_rows``:
the whole sequence at the training batches (RNN3, B = 32: k = 30), a few steps or one at
inference batches (RNN3, B = 512: k = 2; RNN1, B = 1024: k = 1), which keeps each block's
projection in cache. The first step's recurrent product is skipped (h_0 = 0), and with the
hand-written gradient so is the backward pass's last one (it would give h_0's gradient).

Gradients: by default JAX differentiates the recurrence (``jax.grad``, ``jax.jvp`` and
``jax.vmap`` all work). ``LSTMConfig.manual_gradient`` selects a hand-written VJP instead
(`lstm`'s docstring), faster on CPUs and reverse mode only; tests/models check it against
autodiff.

Input layout: the LSTM reads either chunked steps ``[B, S, F]`` or the grouped layout
``[B, G, S, L]`` of ``group_steps`` (step s is ``x[:, :, s, :]`` flattened, F = G*L), a free
reshape of a [B, P, P, T, C] patch. With the grouped layout each block's steps are gathered
inside the loop into a cache-sized buffer, instead of transposing the whole input first
(110 MB at B = 512 for RNN3).

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
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from rinq_jax.models.common import dot, matmul, weight_gradient

__all__ = [
    "ChunkedLSTM",
    "LSTMConfig",
    "lstm",
    "group_steps",
    "step_length",
    "DEFAULT_UNROLL",
]

# A rolled loop: the hoisted input projection dominates, so unrolling gains nothing on
# CPUs and lengthens compilation (re-measure on accelerators).
DEFAULT_UNROLL = 1

# Rows of one block's input projection (see the module docstring), and the largest block
# whose steps are unrolled (more would only lengthen compilation).
PROJECTION_ROWS = 1024
MAX_UNROLLED_BLOCK = 5


def steps_per_block(n_steps: int, batch: int, rows: int) -> int:
    """The largest divisor k of ``n_steps`` with ``k * batch <= rows`` (at least 1)."""
    k = max(1, min(n_steps, rows // batch))
    while n_steps % k:
        k -= 1
    return k


FORGET_BIAS = 1.0  # initial forget-gate bias (Keras' default, the paper's framework)


def _forget_bias_init(hidden: int):
    def init(key, shape, dtype=jnp.float32):
        del key
        if shape != (4 * hidden,):
            raise ValueError(f"LSTM bias must have shape ({4 * hidden},), got {shape}")
        return jnp.zeros(shape, dtype).at[hidden : 2 * hidden].set(FORGET_BIAS)

    return init


class LSTMConfig(NamedTuple):
    """How ``lstm`` computes (speed only; every choice gives the same results).

    Attributes:
      projection_rows: target rows of one block's hoisted input projection.
      unroll: ``lax.scan`` unroll factor of the steps.
      matmul_dtype: input dtype of the matmuls ("float32", or "bfloat16" for mixed
        precision; see ``common.MATMUL_DTYPES``; the weight gradients are float32 either
        way, see ``common.weight_gradient``). This one does change the values.
      manual_gradient: the hand-written VJP (`lstm`) instead of autodiff: faster on CPUs,
        reverse mode only.
    """

    projection_rows: int = PROJECTION_ROWS
    unroll: int = DEFAULT_UNROLL
    matmul_dtype: str = "float32"
    manual_gradient: bool = False


def _cell(z: jax.Array, c: jax.Array):
    """LSTM cell from the pre-activations z float32[B, 4H] and cell c [B, H].

    Returns the new (h, c) and the gate activations (i, f, g, o), each [B, H].
    """
    i, f, g, o = jnp.split(z, 4, axis=-1)
    i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
    c = f * c + i * g
    return o * jnp.tanh(c), c, (i, f, g, o)


def _recurrent(cfg: LSTMConfig, w_hh, transposed: bool, body):
    """``body(product)``, ``product(a)`` being ``a @ w_hh`` (``w_hh^T`` if ``transposed``)."""
    dtype = jnp.dtype(cfg.matmul_dtype)
    w = w_hh.astype(dtype)
    return body(lambda a: dot(a, w, (1, 1 if transposed else 0), dtype))


def _unless_first(t, product, a) -> jax.Array:
    """``product(a)``, or zeros of its shape at step ``t`` = 0.

    There the product is void: h_0 = 0 in the forward pass, and in the backward pass it
    would give h_0's gradient, which nothing needs (h_0 is no parameter).
    """
    out = jax.eval_shape(product, a)
    return jax.lax.cond(t > 0, product, lambda a: jnp.zeros(out.shape, out.dtype), a)


def _run(cfg: LSTMConfig, x, w_ih, w_hh, bias, save: bool):
    """The recurrence over grouped steps x [B, G, S, L]: hidden states [S, B, H].

    With ``save``, also every step's cell state [S, B, H] and gate activations
    [S, B, 4H], which the backward pass reads instead of recomputing them.
    """
    batch, _, n_steps, _ = x.shape
    zeros = jnp.zeros((batch, w_hh.shape[0]), x.dtype)
    mm = functools.partial(matmul, matmul_dtype=cfg.matmul_dtype)

    def cell(z, c):
        h, c, gates = _cell(z, c)
        return (h, c), ((h, c, jnp.concatenate(gates, axis=-1)) if save else h)

    k = steps_per_block(n_steps, batch, cfg.projection_rows)
    unroll = True if k <= MAX_UNROLLED_BLOCK else cfg.unroll

    def recurrence(product):
        def step(carry, inputs):
            (h, c), (xp_t, t) = carry, inputs
            return cell(xp_t + _unless_first(t, product, h), c)

        def block(carry, start):
            x_block = _time_major(jax.lax.dynamic_slice_in_dim(x, start, k, axis=2))
            xp = mm(x_block, w_ih) + bias
            return jax.lax.scan(step, carry, (xp, start + jnp.arange(k)), unroll=unroll)

        return jax.lax.scan(block, (zeros, zeros), jnp.arange(0, n_steps, k))[1]

    out = _recurrent(cfg, w_hh, False, recurrence)
    # [S/k, k, B, ...] -> [S, B, ...]
    return jax.tree.map(lambda a: a.reshape(n_steps, *a.shape[2:]), out)


def lstm(cfg: LSTMConfig, x, w_ih, w_hh, bias):
    """The LSTM over grouped steps, as a pure function.

    Args:
      cfg: how to compute (``LSTMConfig``; no effect on the values).
      x: float32[B, G, S, L], step s being ``x[:, :, s, :]`` flattened (F = G*L).
      w_ih: input weights float32[F, 4H] (gate order i, f, g, o along 4H).
      w_hh: recurrent weights float32[H, 4H].
      bias: float32[4H].

    Returns:
      The hidden states float32[S, B, H] (time-major), from h_0 = c_0 = 0.

    Gradient: autodiff, or with ``cfg.manual_gradient`` a hand-written VJP: the backward
    pass runs the recurrence in reverse for the pre-activation gradients dz [S, B, 4H]
    alone, then forms ``dW_hh = h_{t-1}^T dz``, ``dW_ih = x^T dz`` and ``dx = dz W_ih^T``
    as single matmuls over all S*B rows, where autodiff of the scan accumulates a rank-B
    update of W's gradient at every step (a [F + H, 4H] read and write per step for RNN1).
    """
    if cfg.manual_gradient:
        return _lstm_manual(cfg, x, w_ih, w_hh, bias)
    return _run(cfg, x, w_ih, w_hh, bias, save=False)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _lstm_manual(cfg: LSTMConfig, x, w_ih, w_hh, bias):
    return _run(cfg, x, w_ih, w_hh, bias, save=False)


def _lstm_fwd(cfg, x, w_ih, w_hh, bias):
    hs, cs, gates = _run(cfg, x, w_ih, w_hh, bias, save=True)
    return hs, (x, w_ih, w_hh, hs, cs, gates)


def _lstm_bwd(cfg, residuals, d_hs):
    x, w_ih, w_hh, hs, cs, gates = residuals
    n_steps, batch, hidden = hs.shape
    zeros = jnp.zeros((1, batch, hidden), hs.dtype)
    dtype = jnp.dtype(cfg.matmul_dtype)
    c_prev = jnp.concatenate([zeros, cs[:-1]])

    def step(product, carry, inputs):
        dh_next, dc_next = carry
        dh, c, c_before, gates_t, t = inputs
        i, f, g, o = jnp.split(gates_t, 4, axis=-1)
        dh = dh + dh_next
        tanh_c = jnp.tanh(c)
        dc = dc_next + dh * o * (1 - tanh_c * tanh_c)
        dz = jnp.concatenate(
            [dc * g * i * (1 - i), dc * c_before * f * (1 - f), dc * i * (1 - g * g),
             dh * tanh_c * o * (1 - o)],
            axis=-1,
        )  # fmt: skip
        return (_unless_first(t, product, dz), dc * f), dz  # dz W_hh^T

    def recurrence(product):
        return jax.lax.scan(
            functools.partial(step, product),
            (zeros[0], zeros[0]),
            (d_hs, cs, c_prev, gates, jnp.arange(n_steps)),
            reverse=True,
            unroll=cfg.unroll,
        )[1]

    dz = _recurrent(cfg, w_hh, True, recurrence)
    rows = n_steps * batch
    dz_rows = dz.reshape(rows, -1)  # [S*B, 4H]
    xs = _time_major(x).reshape(rows, -1)  # [S*B, F]
    _, groups, _, group_len = x.shape
    dx = dot(dz_rows, w_ih, (1, 1), dtype).reshape(n_steps, batch, groups, group_len)
    return (
        jnp.transpose(dx, (1, 2, 0, 3)),  # back to [B, G, S, L]; dropped by XLA if unused
        weight_gradient(xs, dz_rows),
        weight_gradient(hs[:-1], dz[1:]),  # h_{t-1}^T dz_t; h_0 = 0 adds nothing
        dz_rows.sum(axis=0),
    )


_lstm_manual.defvjp(_lstm_fwd, _lstm_bwd)


class ChunkedLSTM(nn.Module):
    """LSTM over a short sequence of signal chunks, returning every step's hidden state.

    Attributes:
      hidden: H, the number of units (paper: 1000 for RNN1, 500 for RNN3).
      unroll: ``lax.scan`` unroll factor (an implementation detail; results are equal).
      projection_rows: target rows of one block's hoisted input projection (speed only).
      matmul_dtype: "float32" or "bfloat16" (mixed precision; see ``LSTMConfig``).
      manual_gradient: the hand-written VJP instead of autodiff (see ``LSTMConfig``).

    Call: ``x`` float32[B, S, F], or float32[B, G, S, L] from ``group_steps`` (F = G*L),
    -> float32[B, S, H].

    """

    hidden: int
    unroll: int = DEFAULT_UNROLL
    projection_rows: int = PROJECTION_ROWS
    matmul_dtype: str = "float32"
    manual_gradient: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Run the LSTM: x float32[B, S, F] or [B, G, S, L] -> hidden states float32[B, S, H]."""
        if x.ndim == 3:
            x = x[:, None]  # [B, 1, S, F]: the grouped layout with one group
        if x.ndim != 4:
            raise ValueError(
                "ChunkedLSTM expects x of shape [batch, steps, features] or "
                f"[batch, groups, steps, features per group], got {x.shape}"
            )
        batch, groups, n_steps, group_len = x.shape
        features = groups * group_len
        h4 = 4 * self.hidden
        w_ih = self.param("w_ih", nn.initializers.glorot_uniform(), (features, h4), jnp.float32)
        w_hh = self.param("w_hh", nn.initializers.orthogonal(), (self.hidden, h4), jnp.float32)
        bias = self.param("bias", _forget_bias_init(self.hidden), (h4,))
        cfg = LSTMConfig(self.projection_rows, self.unroll, self.matmul_dtype, self.manual_gradient)
        return jnp.swapaxes(lstm(cfg, x, w_ih, w_hh, bias), 0, 1)  # [B, S, H]


def _time_major(x: jax.Array) -> jax.Array:
    """Grouped steps [B, G, S, L] -> time-major steps [S, B, G*L]."""
    batch, groups, n_steps, group_len = x.shape
    return jnp.transpose(x, (2, 0, 1, 3)).reshape(n_steps, batch, groups * group_len)


def group_steps(x: jax.Array, n_steps: int) -> jax.Array:
    """The patch float32[B, P, P, T, C] as grouped steps float32[B, P*P, S, ceil(T/S)*C].

    A reshape (no copy when S divides T). ``ChunkedLSTM`` reads step s as ``x[:, :, s, :]``
    flattened: the series cut into S chunks of consecutive time points (zero-padded at the end
    to ``S * ceil(T / S)`` points when S does not divide T, so that another schedule length
    keeps the paper's 30 steps and changes only the LSTM's input width). Within a step the
    order is pixel (row-major), then time, then channel: for one pixel and complex input
    ``re_0, im_0, ..., re_99, im_99``, the paper's "alternated order" of 200 values (RNN1);
    RNN3 concatenates the 9 pixels' blocks (1,800 values).
    """
    x = _pad_time(x, n_steps)
    batch, p0, p1, n_time, channels = x.shape
    return x.reshape(batch, p0 * p1, n_steps, n_time // n_steps * channels)


def step_length(n_time: int, n_steps: int) -> int:
    """Time points per step: ``ceil(T / S)`` (the paper's 100 for T = 3000, S = 30)."""
    return -(-n_time // n_steps)


def _pad_time(x: jax.Array, n_steps: int) -> jax.Array:
    """``x`` [B, P, P, T, C] with zeros after the last time point up to S * step_length."""
    if x.ndim != 5:
        raise ValueError(f"expected x of shape [batch, P, P, T, C], got {x.shape}")
    n_time = x.shape[3]
    pad = n_steps * step_length(n_time, n_steps) - n_time
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, pad), (0, 0))) if pad else x
