"""The network's regression targets: (T1, T2) in ms <-> the normalised outputs it learns.

    y_norm = (f(y_ms) - offset) / scale,   f(y) = y ("linear") or ln(y / 1 ms) ("log")

"log" makes a step in the network's output a relative change of T1 or T2 whatever its size.
The offsets and scales default to the training targets' mean and standard deviation of f(y)
(`rinq_jax.training.input_pipeline.resolve_target_norm`); checkpoints store them
(`TargetNorm.to_json`), so inference maps outputs back to ms with the run's own values.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax.numpy as jnp
import numpy as np

TARGET_TRANSFORMS = ("linear", "log")
#: Relaxation times are raised to this (ms) before the logarithm of the "log" transform.
LOG_FLOOR_MS = 1e-3


def transformed(y_ms, transform: str):
    """f(y_ms) of the module docstring; NumPy in, NumPy out (float64 statistics), JAX in, JAX out."""
    if transform == "linear":
        return y_ms
    xp = np if isinstance(y_ms, np.ndarray) else jnp
    return xp.log(xp.maximum(y_ms, LOG_FLOOR_MS))


@dataclasses.dataclass(frozen=True)
class TargetNorm:
    """Offsets and scales of (T1, T2) and the transform f (module docstring).

    Attributes:
        offset: (T1, T2) offsets, in ms ("linear") or ln ms ("log").
        scale: (T1, T2) scales (> 0), same units.
        transform: one of `TARGET_TRANSFORMS`.
    """

    offset: tuple[float, float]
    scale: tuple[float, float]
    transform: str = "linear"

    def __post_init__(self):
        if self.transform not in TARGET_TRANSFORMS:
            raise ValueError(
                f"target transform must be one of {TARGET_TRANSFORMS}, got {self.transform!r}"
            )
        offset, scale = (tuple(float(v) for v in pair) for pair in (self.offset, self.scale))
        if len(offset) != 2 or len(scale) != 2:
            raise ValueError(f"expected two offsets and two scales, got {offset}, {scale}")
        if not all(0 < s < math.inf for s in scale) or not all(map(math.isfinite, offset)):
            raise ValueError(f"scales must be > 0 and finite, offsets finite: {offset}, {scale}")
        # Plain floats: the jitted steps close over the norm as constants.
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "scale", scale)

    def normalise(self, y_ms: jnp.ndarray) -> jnp.ndarray:
        """y_ms float32[B, 2] (T1, T2 in ms) -> float32[B, 2] regression targets."""
        offset, scale = (jnp.asarray(v, dtype=y_ms.dtype) for v in (self.offset, self.scale))
        return (transformed(y_ms, self.transform) - offset) / scale

    def denormalise(self, y_norm: jnp.ndarray) -> jnp.ndarray:
        """Inverse of `normalise`: network outputs float32[B, 2] -> ms."""
        offset, scale = (jnp.asarray(v, dtype=y_norm.dtype) for v in (self.offset, self.scale))
        y = y_norm * scale + offset
        return jnp.exp(y) if self.transform == "log" else y

    def to_json(self) -> dict[str, Any]:
        """The checkpoint metadata's ``target_normalisation`` entry."""
        unit = "ln(y_ms)" if self.transform == "log" else "y_ms"
        return {
            "formula": f"y_norm = ({unit} - offset_ms) / scale_ms",
            "transform": self.transform,
            "offset_ms": list(self.offset),
            "scale_ms": list(self.scale),
        }

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> TargetNorm:
        """Inverse of `to_json` (ValueError on a malformed entry)."""
        try:
            return cls(entry["offset_ms"], entry["scale_ms"], entry["transform"])
        except (KeyError, TypeError) as err:
            raise ValueError(f"malformed target normalisation {entry!r}") from err
