"""Pieces shared by the paper's models: input checks and the ReLU/BatchNorm block."""

from __future__ import annotations

import flax.linen as nn
import jax

__all__ = ["check_input", "batch_norm", "BN_MOMENTUM", "BN_EPSILON"]

# Keras' BatchNormalization defaults (the paper's framework); Flax's own epsilon is 1e-5.
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3


def check_input(x: jax.Array, model: str, patch_size: int, channels: int) -> None:
    """Raise a ValueError unless ``x`` is float[B, patch_size, patch_size, T, channels]."""
    if x.ndim != 5:
        raise ValueError(
            f"{model} expects x of shape [batch, {patch_size}, {patch_size}, T, {channels}], "
            f"got {x.ndim} dimensions: {x.shape}"
        )
    if x.shape[1:3] != (patch_size, patch_size):
        raise ValueError(
            f"{model} expects {patch_size}x{patch_size} patches (x.shape[1:3]), got {x.shape[1:3]}"
        )
    if x.shape[4] != channels:
        raise ValueError(
            f"{model} expects {channels} channel(s) in x.shape[4] "
            f"(1: magnitude, 2: real/imag), got {x.shape[4]}"
        )


def batch_norm(train: bool, axis_name: str | None, name: str) -> nn.BatchNorm:
    """BatchNorm over the last axis, with batch statistics in train mode.

    ``axis_name`` is the ``pmap`` axis over which batch statistics are averaged, so that
    a data-parallel step normalises with the global batch (None: no cross-device sync;
    not needed under a sharded ``jit``).
    """
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        axis_name=axis_name,
        name=name,
    )
