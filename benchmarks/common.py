"""What the benchmark workloads share: sizes, interleaved timing, FLOP counts, the references' device.

Timing: on shared CPUs timings are noisy, so the candidates are measured in interleaved
rounds (jax, torch, jax, torch, ...) and each reports the median round (`interleaved`,
`median`). Where JAX runs on a GPU, PyTorch and mrpro run on it too if the installed torch
sees it (`torch_device`). torch and mrpro are benchmark-only requirements, imported where
they are used.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import types
from pathlib import Path

import jax
import numpy as np

from rinq_jax.training.targets import TargetNorm

SLICE_SHAPE = (256, 256)
MASK_FRACTION = 0.6
N_REPS = 3000
RANK = 50
PAPER_BATCH = {"cnn1": 128, "rnn1": 128, "rnn3": 32}
PATCH = {"cnn1": 1, "rnn1": 1, "rnn3": 3}
BF16_MODELS = ("rnn1", "rnn3")  # models with matmul_dtype="bfloat16"
TARGET_NORM = TargetNorm((0.0, 0.0), (4500.0, 3000.0))  # offsets, scales of (T1, T2) in ms
OUT_DIR = Path(__file__).parent / "out"  # the dictionary cache
SETTLE_S = 0.3


def n_mask_pixels() -> int:
    """Pixels inside the synthetic brain mask: an ellipse covering MASK_FRACTION of the slice."""
    h, w = SLICE_SHAPE
    yy, xx = np.mgrid[:h, :w]
    # An ellipse of area f*h*w with the slice's aspect ratio: semi-axes sqrt(f/pi) * (h, w).
    a = np.sqrt(MASK_FRACTION / np.pi)
    mask = ((yy - h / 2 + 0.5) / (a * h)) ** 2 + ((xx - w / 2 + 0.5) / (a * w)) ** 2 <= 1
    return int(mask.sum())


def interleaved(fns: dict, rounds: int, settle_s: float = SETTLE_S) -> dict[str, list[float]]:
    """Call each ``fn() -> seconds`` once per round, alternating; return every round's seconds.

    Each call waits ``settle_s`` first: a BLAS's worker threads keep spinning for a while
    after their last call, and would otherwise slow whichever candidate runs next
    (benchmarks/results.md measures by how much).
    """
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            time.sleep(settle_s)
            times[k].append(fn())
    return times


def torch_device() -> str:
    """Where the PyTorch and mrpro references run: "cuda" or "cpu".

    "cuda" where JAX runs on a GPU and the installed torch sees one (PyPI's Linux torch
    wheels are CUDA builds), so that an accelerator run compares GPU with GPU.
    """
    import torch

    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def torch_sync(device: str) -> None:
    """Wait for the PyTorch work queued on ``device`` (CUDA runs asynchronously)."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def median(xs):
    """Median of a list, or None if empty."""
    return statistics.median(xs) if xs else None


def matmul_flops_per_sample(name: str, n_time: int = N_REPS, channels: int = 2) -> float:
    """Forward multiply-add FLOPs (2 per MAC) of one input patch; elementwise work is ignored.

    Training counts 3x (forward, and the two backward matmuls per forward one). The count
    is the textbook one that PyTorch performs; rinq_jax's LSTM skips the first step's
    product with h_0 = 0 (1/30 of the recurrent FLOPs), so its GFLOP/s are "effective" ones.
    """
    if name == "cnn1":
        flops, c, t = 0.0, channels, n_time
        for features, kernel, stride in ((30, 15, 5), (60, 10, 3), (120, 5, 2), (240, 3, 2)):
            t = (t - kernel) // stride + 1
            flops += 2 * t * kernel * c * features
            c = features
        t = (t - 3) // 2 + 1
        for f_in, f_out in ((c * t, 1000), (1000, 500), (500, 300), (300, 2)):
            flops += 2 * f_in * f_out
        return flops
    steps = 30
    hidden = {"rnn1": 1000, "rnn3": 500}[name]
    features = PATCH[name] ** 2 * channels * n_time // steps
    lstm = 2 * steps * (features + hidden) * 4 * hidden
    fcs = 2 * steps * (hidden * 500 + 500 * 250) + 2 * steps * 250 * 360
    out = 2 * 360 * 2 if name == "rnn1" else 2 * 9 * 40 * 2
    return float(lstm + fcs + out)


def model_overrides(matmul_dtype: str) -> dict:
    """`get_model` overrides for ``matmul_dtype`` ("float32": none, the models' default)."""
    return {} if matmul_dtype == "float32" else {"matmul_dtype": matmul_dtype}


def add_ratios(out: dict, rate: str) -> None:
    """Add jax/torch ratios of ``out[rate]``: float32 vs float32, bf16 vs torch's bf16 and float32."""
    r = out[rate]
    out["ratio_vs_torch"] = r["jax"] / r["torch"]
    if "jax_bf16" in r:
        out["ratio_bf16_vs_torch_bf16"] = r["jax_bf16"] / r["torch_bf16"]
        out["ratio_bf16_vs_torch"] = r["jax_bf16"] / r["torch"]


def load_average() -> float:
    """The 1-minute load average (processes wanting a CPU), or -1 where unknown."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0


def load_mrpro():
    """Import mrpro, or None. Its brainweb phantom imports torchvision, which we do not need."""
    try:
        import mrpro  # noqa: F401
    except ModuleNotFoundError as error:
        if error.name is None or not error.name.startswith("torchvision"):
            return None
        # Stub only the import: mrpro.phantoms.brainweb is never called here.
        stub = types.ModuleType("torchvision")
        stub.transforms = types.ModuleType("torchvision.transforms")
        stub.transforms.functional = types.ModuleType("torchvision.transforms.functional")
        sys.modules.setdefault("torchvision", stub)
        sys.modules.setdefault("torchvision.transforms", stub.transforms)
        sys.modules.setdefault("torchvision.transforms.functional", stub.transforms.functional)
        try:
            import mrpro  # noqa: F401
        except Exception:  # noqa: BLE001
            return None
    except Exception:  # noqa: BLE001 -- a broken install counts as not installed
        return None
    import mrpro

    return mrpro
