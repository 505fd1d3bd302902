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

Gradients: by default plain autodiff (``jax.grad``, ``jax.jvp``, ``jax.vmap`` all work).
``fast_gradients=True`` swaps in hand-written VJPs for the convolutions (`strided_conv1d`)
and BatchNorm + ReLU (`bn_relu_train`): the same maths, faster on XLA:CPU
(benchmarks/results.md), reverse mode only. The variables are those of the Flax layers
(same names, shapes, initialisers) either way, so checkpoints are shared.

Parameter count ("params": conv/FC weights and biases plus BN scale and bias), T = 3000:
conv ``15*30*C + 30 + 18,060 + 36,120 + 86,640``, FC ``5,521,000 + 500,500 + 150,300 +
602``, BN ``2 * 2,250 = 4,500``: 6,318,202 (C = 1) and 6,318,652 (C = 2); paper 6.3 M.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from rinq_jax.models.common import BN_EPSILON, BN_MOMENTUM, batch_norm, check_input

__all__ = ["CNN1", "BatchNormReLU", "StridedConv1D", "bn_relu_train", "strided_conv1d"]

# (features, kernel size, stride) of Table 4's four convolutions.
CONV_LAYERS = ((30, 15, 5), (60, 10, 3), (120, 5, 2), (240, 3, 2))
FC_LAYERS = (1000, 500, 300)


_NWC = ("NWC", "WIO", "NWC")  # x [B, T, C], kernel [K, C, F], y [B, T', F]


def _conv1d(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """XLA's VALID strided convolution: x [B, T, C], kernel [K, C, F] -> [B, (T-K)//stride+1, F]."""
    return lax.conv_general_dilated(x, kernel, (stride,), "VALID", dimension_numbers=_NWC)


def _blocked_conv1d(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """The same convolution as `_conv1d`, written as a stride-1 one over blocks of time.

    With m = ceil(K / s) and L = T' + m - 1 (T' the output length), the time axis is cut
    into L blocks of s samples, x [B, L*s, C] -> [B, L, s*C] (a free reshape; x is zero-padded
    or truncated to L*s samples), and the kernel is zero-padded from K to m*s taps,
    [m*s, C, F] -> [m, s*C, F]: output t reads blocks t .. t+m-1, i.e. samples t*s .. t*s+m*s-1,
    of which the padded taps (zero weight) are the last m*s-K; the padded samples are only
    read by those taps. Only used for the input gradient (see `strided_conv1d`).
    """
    n_batch, n_time, channels = x.shape
    taps, _, features = kernel.shape
    n_out = (n_time - taps) // stride + 1
    m = -(-taps // stride)
    need = (n_out + m - 1) * stride
    x = jnp.pad(x, ((0, 0), (0, need - n_time), (0, 0))) if need > n_time else x[:, :need]
    x = x.reshape(n_batch, need // stride, stride * channels)
    kernel = jnp.pad(kernel, ((0, m * stride - taps), (0, 0), (0, 0)))
    kernel = kernel.reshape(m, stride * channels, features)
    return lax.conv_general_dilated(x, kernel, (1,), "VALID", dimension_numbers=_NWC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def strided_conv1d(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """VALID 1-D convolution x [B, T, C], kernel [K, C, F] -> [B, (T-K)//stride+1, F].

    The forward pass and the kernel gradient are XLA's own strided convolution; only the
    input gradient differs. XLA computes it as a convolution with the output gradient dilated
    by the stride (zeros inserted), which XLA:CPU runs slowly; here it is the input gradient
    of `_blocked_conv1d`, a stride-1 convolution over blocks of `stride` samples (same maths,
    float32 rounding apart). Reverse-mode only (``custom_vjp``).
    """
    return _conv1d(x, kernel, stride)


def _strided_conv1d_fwd(x, kernel, stride):
    return _conv1d(x, kernel, stride), (x, kernel)


def _strided_conv1d_bwd(stride, residuals, dy):
    x, kernel = residuals
    _, x_vjp = jax.vjp(lambda x: _blocked_conv1d(x, kernel, stride), x)
    _, kernel_vjp = jax.vjp(lambda k: _conv1d(x, k, stride), kernel)
    return x_vjp(dy)[0], kernel_vjp(dy)[0]


strided_conv1d.defvjp(_strided_conv1d_fwd, _strided_conv1d_bwd)


class StridedConv1D(nn.Module):
    """``nn.Conv(features, (kernel_size,), strides=(stride,), padding="VALID")`` on [B, T, C].

    Same parameters ("kernel" [K, C, F] with LeCun-normal initialisation, "bias" [F] zeros);
    with ``fast_gradient`` computed by `strided_conv1d` (faster input gradient on CPU).
    """

    features: int
    kernel_size: int
    stride: int
    fast_gradient: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Map x float32[B, T, C] to float32[B, (T - kernel_size) // stride + 1, features]."""
        kernel = self.param(
            "kernel",
            nn.initializers.lecun_normal(),
            (self.kernel_size, x.shape[-1], self.features),
        )
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        conv = strided_conv1d if self.fast_gradient else _conv1d
        return conv(x, kernel, self.stride) + bias


def _batch_stats(h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and (fast, clipped) variance over all but the last axis, as flax's BatchNorm."""
    axes = tuple(range(h.ndim - 1))
    mean = h.mean(axes)
    return mean, jnp.maximum(0.0, (h * h).mean(axes) - mean * mean)


@jax.custom_vjp
def bn_relu_train(
    h: jax.Array, scale: jax.Array, bias: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Train-mode BatchNorm then ReLU over the last axis: h [..., F] -> (y, mean [F], var [F]).

    y = relu((h - mean) * rsqrt(var + BN_EPSILON) * scale + bias) with the batch mean and
    variance (returned for the running averages): the formulas of flax's ``BatchNorm`` (fast
    variance E[h^2] - E[h]^2 clipped at 0) followed by ``nn.relu``. The hand-written VJP is
    the textbook one, g = dy * (y > 0), dh = scale * rsqrt(var + eps) * (g - mean(g) - xhat *
    mean(g * xhat)): two reductions and one elementwise pass over h, where autodiff through
    flax's BatchNorm and the ReLU leaves XLA more passes and buffers.
    """
    y, stats, _ = _bn_relu_fwd(h, scale, bias)
    return y, *stats


def _bn_relu_fwd(h, scale, bias):
    mean, var = _batch_stats(h)
    inv = lax.rsqrt(var + BN_EPSILON)
    y = jnp.maximum((h - mean) * (inv * scale) + bias, 0.0)
    return y, (mean, var), (h, y, mean, inv, scale)


def _bn_relu_train_fwd(h, scale, bias):
    y, stats, residuals = _bn_relu_fwd(h, scale, bias)
    return (y, *stats), residuals


def _bn_relu_train_bwd(residuals, cotangents):
    h, y, mean, inv, scale = residuals
    dy, dmean, dvar = cotangents  # dmean, dvar: zero unless the statistics reach the loss
    axes = tuple(range(h.ndim - 1))
    n = h.size // h.shape[-1]
    g = jnp.where(y > 0, dy, 0.0)
    centred = h - mean
    xhat = centred * inv
    dbias = g.sum(axes)
    dscale = (g * xhat).sum(axes)
    dh = (scale * inv) * (g - (dbias + xhat * dscale) / n) + (dmean + 2.0 * dvar * centred) / n
    return dh, dscale, dbias


bn_relu_train.defvjp(_bn_relu_train_fwd, _bn_relu_train_bwd)


class BatchNormReLU(nn.Module):
    """``nn.relu(batch_norm(train, None, name)(h))``, with ``fast_gradient`` the fused `bn_relu_train`.

    Same variables as flax's ``BatchNorm`` ("params": scale ones, bias zeros; "batch_stats":
    mean zeros, var ones; momentum BN_MOMENTUM, epsilon BN_EPSILON) so checkpoints are shared.
    No cross-device statistics: CNN1 uses flax's BatchNorm when ``bn_axis_name`` is set.
    """

    fast_gradient: bool = False

    @nn.compact
    def __call__(self, h: jax.Array, train: bool) -> jax.Array:
        """Normalise h float32[..., F] (batch statistics if ``train``, else running ones), ReLU."""
        features = h.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (features,))
        bias = self.param("bias", nn.initializers.zeros, (features,))
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
        ra_var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)
        if not train:
            return nn.relu(
                (h - ra_mean.value) * (lax.rsqrt(ra_var.value + BN_EPSILON) * scale) + bias
            )
        if self.fast_gradient:
            y, mean, var = bn_relu_train(h, scale, bias)
        else:
            y, (mean, var), _ = _bn_relu_fwd(h, scale, bias)
        if not self.is_initializing():
            ra_mean.value = BN_MOMENTUM * ra_mean.value + (1.0 - BN_MOMENTUM) * mean
            ra_var.value = BN_MOMENTUM * ra_var.value + (1.0 - BN_MOMENTUM) * var
        return y


class CNN1(nn.Module):
    """The CNN of Table 4.

    Attributes:
      channels: 1 (magnitude) or 2 (real, imaginary).
      output_relu: apply the table's ReLU to the output too (default: linear output).
      bn_axis_name: ``pmap`` axis name for cross-device batch statistics, or None.
      fast_gradients: hand-written VJPs for the convolutions and BatchNorm + ReLU (module
        doc): faster training on CPUs, reverse mode only.

    Call: ``x`` float32[B, 1, 1, T, C], ``train`` -> float32[B, 2] (normalised T1, T2).

    """

    channels: int
    output_relu: bool = False
    bn_axis_name: str | None = None
    fast_gradients: bool = False

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
            h = StridedConv1D(features, kernel, stride, self.fast_gradients, name=f"conv{k}")(h)
            h = self._bn_relu(h, train, f"bn_conv{k}")
        if h.shape[1] < 3:
            raise ValueError(f"CNN1's average pooling needs length >= 3, got {h.shape[1]}")
        h = nn.avg_pool(h, (3,), strides=(2,), padding="VALID")
        h = h.reshape(h.shape[0], -1)  # [B, 23*240] = [B, 5520] for T = 3000
        for k, features in enumerate(FC_LAYERS, start=1):
            h = nn.Dense(features, name=f"fc{k}")(h)
            h = self._bn_relu(h, train, f"bn_fc{k}")
        y = nn.Dense(2, name="fc4")(h)
        return nn.relu(y) if self.output_relu else y

    def _bn_relu(self, h: jax.Array, train: bool, name: str) -> jax.Array:
        if self.bn_axis_name is None:
            return BatchNormReLU(self.fast_gradients, name=name)(h, train)
        return nn.relu(batch_norm(train, self.bn_axis_name, name)(h))
