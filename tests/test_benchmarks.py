"""The benchmark's own arithmetic: FLOP counts against XLA's, the report, the reference's device."""

import json

import jax
import jax.numpy as jnp
import pytest

from benchmarks.common import interleaved, matmul_flops_per_sample, torch_device
from benchmarks.memory import print_peak_memory
from benchmarks.report import table
from rinq_jax.models import get_model


@pytest.mark.parametrize("name, patch", [("cnn1", 1), ("rnn1", 1), ("rnn3", 3)])
def test_flop_count_matches_xla_cost_analysis(name, patch):
    # Fully unrolled LSTM steps, so that XLA counts every step (it counts a loop body once).
    overrides = {} if name == "cnn1" else {"lstm_unroll": 30}
    model = get_model(name, "complex", **overrides)
    x = jnp.zeros((2, patch, patch, 3000, 2))
    variables = model.init(jax.random.key(0), x[:1])
    # Lowered for a GPU, where the cost analysis counts every dot.
    lowered = jax.jit(model.apply).trace(variables, x).lower(lowering_platforms=("cuda",))
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    # XLA also counts the elementwise work (gates, BatchNorm): 1-3 % on top of the matmuls.
    assert 1.0 <= cost["flops"] / 2 / matmul_flops_per_sample(name) < 1.05


def test_interleaved_alternates_and_times_every_round():
    calls = []
    times = interleaved(
        {"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b") or 2.0},
        rounds=3,
        settle_s=0.0,
    )
    assert calls == ["a", "b"] * 3
    assert times == {"a": [1.0] * 3, "b": [2.0] * 3}


def test_print_peak_memory_runs_the_workload_and_reports_its_high_water_mark(capsys):
    # What a workload's child process prints for `benchmarks.memory.bench_memory`.
    calls = []
    print_peak_memory(lambda: calls.append(bytearray(64 * 2**20)))
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(calls) == 1 and report["seconds"] >= 0
    assert report["peak_rss_bytes"] >= report["import_rss_bytes"] > 0


def _fake_results(load):
    rate = {"jax": 300.0, "torch": 200.0, "jax_bf16": 900.0, "torch_bf16": 600.0}
    return {
        "machine": {"cpus": 2, "cpu": "EPYC (AuthenticAMD)"},
        "peak": {
            "numpy": 350.0,
            "torch": 400.0,
            "jax": 320.0,
            "jax_bf16": 1000.0,
            "size": 2048,
        },
        "training": {
            "rnn3": {
                "batch": 32,
                "patches_per_s": rate,
                "gflops": {k: v / 2 for k, v in rate.items()},
                "ratio_vs_torch": 1.5,
                "ratio_bf16_vs_torch_bf16": 1.5,
                "ratio_bf16_vs_torch": 4.5,
            }
        },
        "load_average": {"start": 0.5, "train rnn3": load},
    }


def test_table_warns_when_other_processes_competed():
    results = _fake_results(3.4)
    results["peak"]["peak"] = 400.0
    assert "other processes competed for the cores" in table(results)


@pytest.mark.parametrize(
    "jax_backend, cuda, expected",
    [("gpu", True, "cuda"), ("gpu", False, "cpu"), ("cpu", True, "cpu"), ("cpu", False, "cpu")],
)
def test_references_run_on_the_gpu_only_beside_jax(monkeypatch, jax_backend, cuda, expected):
    # An accelerator run compares GPU with GPU; a CPU run never sends PyTorch to a GPU.
    torch = pytest.importorskip("torch")  # a benchmark-only requirement
    monkeypatch.setattr(jax, "default_backend", lambda: jax_backend)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert torch_device() == expected
