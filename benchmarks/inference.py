"""Full-slice inference with RNN1 and RNN3, rinq_jax vs PyTorch, and its peak memory.

A 256 x 256 slice with a ~60 % brain mask, 3,000 repetitions: the time per chunk of
patches, measured on identical pre-built chunks, scaled to the slice's masked pixels.
``python -m benchmarks.inference MODEL --pixels N`` runs one whole slice in a fresh process
and prints its peak resident memory (`benchmarks.memory`).
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import numpy as np

from benchmarks.common import (
    N_REPS,
    PATCH,
    add_ratios,
    interleaved,
    matmul_flops_per_sample,
    median,
    model_overrides,
    torch_device,
    torch_sync,
)
from benchmarks.memory import print_peak_memory
from rinq_jax.models import get_model


def _inference_inputs(name: str, chunk: int, seed: int = 0) -> np.ndarray:
    """A chunk of normalised network inputs float32[chunk, P, P, T, 2] (values do not affect speed)."""
    p = PATCH[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((chunk, p, p, N_REPS, 2), dtype=np.float32)
    return x / np.float32(np.sqrt(N_REPS))


def _jax_model(name: str, chunk: int, matmul_dtype: str = "float32"):
    """(jitted inference apply, initialised variables, one input chunk) of a registry model."""
    model = get_model(name, "complex", **model_overrides(matmul_dtype))
    x = _inference_inputs(name, chunk)
    variables = jax.jit(lambda k, x: model.init({"params": k}, x, train=False))(
        jax.random.key(0), x[:1]
    )
    apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
    return apply, variables, x


def _jax_infer(name: str, chunk: int, matmul_dtype: str = "float32"):
    apply, variables, x = _jax_model(name, chunk, matmul_dtype)
    xj = jax.device_put(x)
    apply(variables, xj).block_until_ready()

    def run(n_chunks: int) -> float:
        t = time.perf_counter()
        for _ in range(n_chunks):
            y = apply(variables, xj)
        y.block_until_ready()
        return time.perf_counter() - t

    return run, x


def _torch_infer(name: str, x: np.ndarray, bf16: bool = False):
    import torch

    from benchmarks import torch_reference as ref

    torch.manual_seed(0)
    device = torch_device()
    model = ref.build(name).to(device).eval()
    xt = torch.from_numpy(x).to(device)

    def forward():
        with torch.inference_mode(), torch.autocast(device, torch.bfloat16, enabled=bf16):
            model(xt)

    forward()

    def run(n_chunks: int) -> float:
        t = time.perf_counter()
        for _ in range(n_chunks):
            forward()
        torch_sync(device)
        return time.perf_counter() - t

    return run


def bench_inference(
    name: str, n_pixels: int, chunk: int, chunks: int, rounds: int, bf16: bool = False
) -> dict:
    """Full-slice inference time (s) extrapolated from ``chunks`` chunks of ``chunk`` patches.

    The per-chunk time is measured on identical, pre-built chunks for both frameworks (input
    gathering, identical for both, is not timed) and scaled to the slice's masked pixels.
    ``bf16``: also both frameworks' bfloat16 mixed precision ("jax_bf16", "torch_bf16").
    """
    jax_run, x = _jax_infer(name, chunk)
    torch_run = _torch_infer(name, x)
    fns = {"jax": lambda: jax_run(chunks), "torch": lambda: torch_run(chunks)}
    if bf16:
        jax_bf16_run = _jax_infer(name, chunk, "bfloat16")[0]
        torch_bf16_run = _torch_infer(name, x, bf16=True)
        fns["jax_bf16"] = lambda: jax_bf16_run(chunks)
        fns["torch_bf16"] = lambda: torch_bf16_run(chunks)
    times = interleaved(fns, rounds)
    per_pixel = {k: median(v) / (chunks * chunk) for k, v in times.items()}
    flops = matmul_flops_per_sample(name)
    out = {
        "chunk": chunk,
        "pixels": n_pixels,
        "slice_s": {k: v * n_pixels for k, v in per_pixel.items()},
        "pixels_per_s": {k: 1 / v for k, v in per_pixel.items()},
        "gflops": {k: flops / v / 1e9 for k, v in per_pixel.items()},
        "rounds_s": times,
    }
    add_ratios(out, "pixels_per_s")
    return out


def infer_slice(name: str, n_pixels: int, chunk: int) -> np.ndarray:
    """Infer ``n_pixels`` patches once, ``chunk`` at a time: the memory benchmark's workload."""
    apply, variables, x = _jax_model(name, chunk)
    out = np.empty((n_pixels, 2), np.float32)
    for start in range(0, n_pixels, chunk):
        n = min(chunk, n_pixels - start)
        out[start : start + n] = np.asarray(apply(variables, x))[:n]
    return out


def main(argv=None) -> int:
    """Child process of `benchmarks.memory.bench_memory`: one whole slice, then its peak RSS."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=("rnn1", "rnn3"))
    parser.add_argument("--pixels", type=int, required=True)
    parser.add_argument("--chunk", type=int, default=1024)
    args = parser.parse_args(argv)
    print_peak_memory(lambda: infer_slice(args.model, args.pixels, args.chunk))
    return 0


if __name__ == "__main__":
    sys.exit(main())
