"""Training throughput (patches/s) of CNN1, RNN1 and RNN3, rinq_jax vs PyTorch.

Complex input, the paper's batch sizes 128/128/32, Adam, MSE: rinq_jax's jitted, donating
train step vs the PyTorch twins in ``benchmarks/torch_reference.py`` (eager, and compiled
with ``--torch-compile``), optionally both in bfloat16 mixed precision.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from benchmarks.common import (
    N_REPS,
    PAPER_BATCH,
    PATCH,
    TARGET_NORM,
    add_ratios,
    interleaved,
    matmul_flops_per_sample,
    median,
    model_overrides,
    torch_device,
    torch_sync,
)
from rinq_jax.configs.recipes import FAST_GRADIENT_MODELS
from rinq_jax.models import get_model, model_spec
from rinq_jax.training.state import create_train_state
from rinq_jax.training.steps import make_mesh, make_train_step, shard_batch


def _jax_train(
    name: str,
    batch: int,
    x: np.ndarray,
    y: np.ndarray,
    matmul_dtype="float32",
    fast_gradients: bool = False,
):
    """A timed jitted train step; ``fast_gradients``: the LSTM's hand-written VJP."""
    spec = model_spec(name, "complex")
    overrides = model_overrides(matmul_dtype)
    if fast_gradients:
        overrides["fast_gradients"] = True
    model = get_model(name, "complex", **overrides)
    state = create_train_state(model, jax.random.key(0), x[:1], spec.learning_rate)
    n_params = sum(v.size for v in jax.tree.leaves(state.params))
    mesh = make_mesh(jax.local_devices()[:1])
    step = make_train_step(mesh, TARGET_NORM)
    data = shard_batch({"x": x, "y_ms": y}, mesh)
    rng = jax.random.key(1)
    holder = {"state": state}
    t = time.perf_counter()
    holder["state"], metrics = step(holder["state"], data, rng)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - t

    def run(n_steps: int) -> float:
        t = time.perf_counter()
        for _ in range(n_steps):
            holder["state"], metrics = step(holder["state"], data, rng)
        jax.block_until_ready((holder["state"], metrics))
        return time.perf_counter() - t

    run(1)  # second call: donation buffers settled
    return run, n_params, compile_s


def _torch_train(name: str, x: np.ndarray, y: np.ndarray, compile_model: bool, bf16=False):
    import torch

    from benchmarks import torch_reference as ref

    torch.manual_seed(0)
    device = torch_device()
    model = ref.build(name).to(device)
    lr = model_spec(name, "complex").learning_rate
    fn = torch.compile(model) if compile_model else model
    step = ref.make_train_step(model, lr, bf16, device) if not compile_model else None
    if compile_model:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))

        def step(xb, yb):
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(fn(xb), yb)
            loss.backward()
            optimizer.step()
            return loss.detach()

        model.train()
    y_norm = np.asarray(TARGET_NORM.normalise(y))
    xt, yt = (torch.from_numpy(v).to(device) for v in (x, y_norm))
    t = time.perf_counter()
    step(xt, yt)
    torch_sync(device)
    compile_s = time.perf_counter() - t

    def run(n_steps: int) -> float:
        t = time.perf_counter()
        for _ in range(n_steps):
            step(xt, yt)
        torch_sync(device)
        return time.perf_counter() - t

    run(1)
    return run, model, compile_s


def bench_training(
    name: str,
    rounds: int,
    steps: int,
    torch_compile: bool,
    bf16: bool = False,
    speed_options: bool = False,
) -> dict:
    """Patches/s of one training step at the paper's batch size, jax vs torch (eager, compiled).

    ``bf16``: also both frameworks' bfloat16 mixed precision ("jax_bf16", "torch_bf16").
    ``speed_options``: also the opt-in speed paths against the plain default ("jax"), timed in
    the same interleaved rounds: "jax_fast_grad" (the LSTM's hand-written VJP, what `train.py`
    uses on the CPU for the models in `configs.recipes.FAST_GRADIENT_MODELS`).
    """
    from benchmarks import torch_reference as ref

    batch = PAPER_BATCH[name]
    p = PATCH[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, p, p, N_REPS, 2), dtype=np.float32)
    y = rng.uniform(10, 3000, (batch, 2)).astype(np.float32)
    jax_run, n_params, jax_compile_s = _jax_train(name, batch, x, y)
    torch_run, torch_model, torch_compile_s = _torch_train(name, x, y, False)
    extra = ref.check_param_counts(name, torch_model, n_params)
    fns = {"jax": lambda: jax_run(steps), "torch": lambda: torch_run(steps)}
    if bf16:
        jax_bf16_run = _jax_train(name, batch, x, y, "bfloat16")[0]
        torch_bf16_run = _torch_train(name, x, y, False, bf16=True)[0]
        fns["jax_bf16"] = lambda: jax_bf16_run(steps)
        fns["torch_bf16"] = lambda: torch_bf16_run(steps)
    if speed_options and name in FAST_GRADIENT_MODELS:
        fast_run = _jax_train(name, batch, x, y, fast_gradients=True)[0]
        fns["jax_fast_grad"] = lambda: fast_run(steps)
    compiled = None
    if torch_compile:
        try:
            compiled_run, _, compiled_s = _torch_train(name, x, y, True)
            fns["torch_compile"] = lambda: compiled_run(steps)
            compiled = compiled_s
        except Exception as error:  # noqa: BLE001 -- report, do not abort the suite
            print(f"  torch.compile unavailable for {name}: {type(error).__name__}: {error}")
    times = interleaved(fns, rounds)
    flops = 3 * matmul_flops_per_sample(name) * batch
    out = {
        "batch": batch,
        "params_jax": n_params,
        "params_torch": n_params + extra,
        "compile_s": {"jax": jax_compile_s, "torch": torch_compile_s, "torch_compile": compiled},
        "step_s": {k: median(v) / steps for k, v in times.items()},
        "rounds_s": times,
    }
    out["patches_per_s"] = {k: batch / v for k, v in out["step_s"].items()}
    out["gflops"] = {k: flops / v / 1e9 for k, v in out["step_s"].items()}
    add_ratios(out, "patches_per_s")
    if "jax_fast_grad" in out["patches_per_s"]:
        out["ratio_jax_fast_grad_vs_jax"] = (
            out["patches_per_s"]["jax_fast_grad"] / out["patches_per_s"]["jax"]
        )
    if "torch_compile" in out["patches_per_s"]:
        out["ratio_vs_torch_compile"] = (
            out["patches_per_s"]["jax"] / out["patches_per_s"]["torch_compile"]
        )
    return out
