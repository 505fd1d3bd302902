"""The machine: its float32 and bfloat16 matmul peak in GFLOP/s, and its CPU.

The peak is the reference of every workload's "% of peak" and roofline in the report.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import interleaved, torch_device, torch_sync


def measure_peak(size: int, rounds: int) -> dict:
    """Matmul GFLOP/s on [size, size] @ [size, size] (best round) by numpy, PyTorch and JAX.

    "jax" is XLA's dot, the product the models use. "peak" is the best float32 figure of all: the machine's
    float32 matmul peak as far as its libraries reach it. "jax_bf16" is JAX's
    bfloat16-input, float32-accumulate matmul (the ``matmul_dtype="bfloat16"`` kernels), the
    reference for the bf16 rows.
    """
    import torch

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    device = torch_device()
    ta, tb = torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)
    f32 = jax.jit(lambda a, b: jax.lax.dot(a, b))
    bf16 = jax.jit(
        lambda a, b: jnp.dot(
            a.astype(jnp.bfloat16), b.astype(jnp.bfloat16), preferred_element_type=jnp.float32
        )
    )

    def timer(fn):
        fn()

        def run():
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t

        return run

    times = interleaved(
        {
            "numpy": timer(lambda: a @ b),
            "torch": timer(lambda: (ta @ tb, torch_sync(device))),
            "jax": timer(lambda: f32(ja, jb).block_until_ready()),
            "jax_bf16": timer(lambda: bf16(ja, jb).block_until_ready()),
        },
        rounds,
    )
    flops = 2.0 * size**3
    out = {k: flops / min(v) / 1e9 for k, v in times.items()}
    out["peak"] = max(out["numpy"], out["torch"], out["jax"])
    out["size"] = size
    return out


def cpu_info() -> dict[str, str]:
    """The first processor's fields in ``/proc/cpuinfo``, or {} where there is none.

    E.g. "vendor_id" ("GenuineIntel", "AuthenticAMD"), "model name", "cpu family", "flags".
    """
    try:
        block = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return {}
    return {
        k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block.splitlines())
    }


def cpu_description() -> str:
    """The CPU as /proc/cpuinfo names it, with the vector extensions that decide the kernels.

    E.g. "AMD EPYC (AuthenticAMD, family 25, model 17; avx512f avx512_bf16)"; "" where unknown.
    """
    info = cpu_info()
    if not info:
        return ""
    flags = [
        f
        for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile")
        if f in info.get("flags", "").split()
    ]
    return (
        f"{info.get('model name', '?')} ({info.get('vendor_id', '?')}, family "
        f"{info.get('cpu family', '?')}, model {info.get('model', '?')}; {' '.join(flags)})"
    )
