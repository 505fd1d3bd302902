"""RNN1 and RNN3 of RinQ (Hoppe, Thamm et al., MICCAI 2019, supplement Tables 2 and 3).

RNN1 (one pixel; C = 1 magnitude or 2 real/imag), T = 3000::

    [B,1,1,3000,C] -> chunk [B,30,100C] -> LSTM 1000 -> ReLU, BN
    -> FC 500 (per step) -> ReLU, BN -> FC 250 (per step) -> ReLU, BN
    -> flatten 7500 -> FC 360 -> ReLU, BN -> FC 2

RNN3 (3x3 patch, complex)::

    [B,3,3,3000,2] -> chunk [B,30,1800] -> LSTM 500 -> ReLU, BN
    -> FC 500 -> ReLU, BN -> FC 250 -> ReLU, BN -> flatten 7500 -> FC 360 -> ReLU, BN
    -> reshape [3,3,40] -> FC 2 (shared by the 9 neighbours) -> [3,3,2]
    -> 0.5-quantile over the 9 neighbours -> [2]

Choices the paper leaves open (documented here, used throughout):

* Order of ReLU and BN: the text (Sect. 2.1) says each layer is "followed by the ReLU
  activation and a BN", so ReLU comes first.
* Output: the tables put a ReLU after every layer, including FC4; with normalised
  targets a ReLU output can get stuck at 0, so FC4 is linear by default
  (``output_relu=True`` restores the table). No BN after FC4 (it would normalise the
  predictions themselves). In RNN3 a ReLU would commute with the median anyway.
* Step layout: see ``lstm.group_steps`` (re/im alternate inside a step; RNN3 steps
  concatenate the 9 pixels' blocks over the same time window).
* Other schedule lengths T (a scanner's protocol): still 30 steps, each ceil(T / 30) time
  points wide, the last padded with zeros (``lstm.group_steps``), so every layer after the
  LSTM keeps the paper's size; parameter counts per T in the README.
* Measured B1 (``b1_input=True``, an option beside the paper's models, off by default): FISP's
  T2 is coupled to B1, so scanners give dictionary matching a measured B1 map, and a network
  can take the same map. Each pixel's measured B1 enters every LSTM step as one more input,
  ``(b1 - 1) / B1_INPUT_SCALE``, after that pixel's time points (`common.b1_steps`); the LSTM
  input grows by P*P values (RNN3: 1,809, +4,500 parameters), nothing else changes.
* Sect. 2.1 says the FC layers operate "on either the magnitude or on the real and
  imaginary data points separately"; Tables 2-3 admit a single branch, so we read it
  as "depending on the input kind", not as separate real/imag branches.
* The "per step" FC layers are one Dense on the last axis (shared over the 30 steps),
  and BN after them normalises each feature over batch and steps together
  (Keras' BatchNormalization on [B, 30, F]).

Parameter counts ("params" collection; BN scale and bias included, running mean and
variance, in "batch_stats", not), T = 3000:

======================  ===========  =========  ========  =======
model                   LSTM         FC         BN        total
======================  ===========  =========  ========  =======
RNN1 magnitude (F=100)  4,404,000    3,326,832  4,220     7,735,052  (paper 7.7 M)
RNN1 complex (F=200)    4,804,000    3,326,832  4,220     8,135,052  (paper 8.1 M)
RNN3 complex (F=1800)   4,602,000    3,076,192  3,220     7,681,412  (paper 7.7 M)
======================  ===========  =========  ========  =======
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax

from rinq_jax.models.common import b1_steps, batch_norm, check_input, dense_dot_general
from rinq_jax.models.lstm import DEFAULT_UNROLL, ChunkedLSTM, group_steps
from rinq_jax.models.quantile import quantile

__all__ = ["NEIGHBOUR_PREDICTIONS", "RNN1", "RNN3"]

# RNN3's "intermediates" entry: float32[B, 9, 2] the neighbours' predictions before the quantile
NEIGHBOUR_PREDICTIONS = "neighbour_predictions"


def _recurrent_trunk(
    module: nn.Module, x: jax.Array, train: bool, b1: jax.Array | None
) -> jax.Array:
    """Shared body: chunk, LSTM, per-step FC 500/250, flatten, FC 360 -> float32[B, 360].

    Called from the models' compact ``__call__``, so the submodules (and their names)
    belong to ``module``. ``b1``: float32[B, P, P] measured B1 when ``module.b1_input``.
    """
    dense = functools.partial(nn.Dense, dot_general=dense_dot_general(module.matmul_dtype))
    h = b1_steps(group_steps(x, module.n_steps), b1, module.b1_input)  # [B, P*P, S, L (+1)]
    h = ChunkedLSTM(
        module.lstm_hidden,
        unroll=module.lstm_unroll,
        matmul_dtype=module.matmul_dtype,
        manual_gradient=module.fast_gradients,
        name="lstm",
    )(h)
    h = batch_norm(train, "bn_lstm")(nn.relu(h))
    h = dense(500, name="fc1")(h)
    h = batch_norm(train, "bn_fc1")(nn.relu(h))
    h = dense(250, name="fc2")(h)
    h = batch_norm(train, "bn_fc2")(nn.relu(h))
    h = h.reshape(h.shape[0], -1)  # [B, S*250] = [B, 7500]
    h = dense(360, name="fc3")(h)
    return batch_norm(train, "bn_fc3")(nn.relu(h))


class RNN1(nn.Module):
    """RNN with one pixel as input (Table 2).

    Attributes:
      channels: 1 (magnitude) or 2 (real, imaginary).
      lstm_hidden: LSTM units (paper: 1000).
      n_steps: sequence length after chunking (paper: 30 steps of 100 time points).
      output_relu: apply the table's ReLU to the output too (default: linear output).
      lstm_unroll: ``lax.scan`` unroll of the LSTM (speed only).
      matmul_dtype: "float32" (default) or "bfloat16": mixed precision, the matmuls'
        inputs rounded to bfloat16 with float32 accumulation (``common.MATMUL_DTYPES``).
      fast_gradients: the LSTM's hand-written VJP (``lstm.LSTMConfig``): faster training on
        CPUs, reverse mode only.
      b1_input: also read a measured B1 map (module docstring; not in the paper).

    Call: ``x`` float32[B, 1, 1, T, C], ``train``, ``b1`` float32[B, 1, 1] (with
    ``b1_input`` only) -> float32[B, 2] (normalised T1, T2).

    """

    channels: int
    lstm_hidden: int = 1000
    n_steps: int = 30
    output_relu: bool = False
    lstm_unroll: int = DEFAULT_UNROLL
    matmul_dtype: str = "float32"
    fast_gradients: bool = False
    b1_input: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, b1: jax.Array | None = None) -> jax.Array:
        """Map x float32[B, P, P, T, C] to normalised (T1, T2) float32[B, 2]; see the class."""
        check_input(x, "RNN1", 1, self.channels)
        h = _recurrent_trunk(self, x, train, b1)
        y = nn.Dense(2, dot_general=dense_dot_general(self.matmul_dtype), name="fc4")(h)
        return nn.relu(y) if self.output_relu else y


class RNN3(nn.Module):
    """RNN with a 3x3 patch as input and the 0.5-quantile layer (Table 3).

    Attributes: as ``RNN1`` (paper: ``lstm_hidden=500``, ``channels=2``).

    Call: ``x`` float32[B, 3, 3, T, C], ``train``, ``b1`` float32[B, 3, 3] (with ``b1_input``
    only) -> float32[B, 2], the quantile over the 9 neighbours' (T1, T2) predictions, taken per
    parameter. Applied with ``mutable=["intermediates"]``, the nine predictions float32[B, 9, 2]
    (row-major over the patch) are also returned, under `NEIGHBOUR_PREDICTIONS`.
    """

    channels: int = 2
    lstm_hidden: int = 500
    n_steps: int = 30
    output_relu: bool = False
    lstm_unroll: int = DEFAULT_UNROLL
    matmul_dtype: str = "float32"
    fast_gradients: bool = False
    b1_input: bool = False

    patch_size = 3  # class constant: Table 3's reshape to (3, 3, 40) fixes it

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, b1: jax.Array | None = None) -> jax.Array:
        """Map x float32[B, P, P, T, C] to normalised (T1, T2) float32[B, 2]; see the class."""
        check_input(x, "RNN3", self.patch_size, self.channels)
        h = _recurrent_trunk(self, x, train, b1)  # [B, 360]
        n_neighbours = self.patch_size**2
        h = h.reshape(h.shape[0], self.patch_size, self.patch_size, -1)  # [B, 3, 3, 40]
        # one FC shared by the neighbours: [B, 3, 3, 2]
        y = nn.Dense(2, dot_general=dense_dot_general(self.matmul_dtype), name="fc4")(h)
        if self.output_relu:
            y = nn.relu(y)
        y = y.reshape(y.shape[0], n_neighbours, 2)
        # the nine predictions, for a loss on each (`training.steps`, ``neighbour_loss``)
        self.sow("intermediates", NEIGHBOUR_PREDICTIONS, y)
        return quantile(y, 0.5, axis=1)
