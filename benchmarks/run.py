"""Side-by-side speed of rinq_jax, PyTorch and mrpro: ``python -m benchmarks.run [--quick]``.

Measures in one run, on whatever machine runs it (CPU or accelerator):

* training throughput (patches/s) of CNN1, RNN1 and RNN3 (complex input, the paper's batch
  sizes 128/128/32, Adam, MSE), rinq_jax's jitted, donating train step vs the PyTorch twins in
  ``benchmarks/torch_reference.py``;
* full-slice inference (a 256 x 256 slice with a ~60 % brain mask, 3,000 repetitions) with RNN1
  and RNN3, vs PyTorch and vs template matching against the paper-grid dictionary compressed to
  rank 50 (rinq_jax's ``match``, and mrpro's ``DictionaryMatchOp`` when installed);
* EPG dictionary generation for the paper grid x 3,000 repetitions (a subset in ``--quick``,
  scaled to the whole grid), rinq_jax vs mrpro's EPG when installed;
* achieved GFLOP/s of each workload against the float32 matmul peak measured in the same run;
* peak resident memory of full-slice inference and of matching (each in a child process).

Timing: on shared CPUs timings are noisy, so the candidates are measured in interleaved
rounds (jax, torch, jax, torch, ...) and each reports the median round; the ratio is
jax/torch throughput from the same run. Compilation and warm-up are excluded. Where JAX runs
on a GPU, PyTorch and mrpro run on it too if the installed torch sees it (``torch_device``).

Writes ``benchmarks/results.json`` (or ``--out``) and prints a Markdown table
(`benchmarks.report`). One module per workload: ``peak``, ``train``, ``inference``,
``matching``, ``epg``, ``memory``; ``common`` holds the sizes and the timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import jax

from benchmarks.common import BF16_MODELS, load_average, load_mrpro, n_mask_pixels, torch_device
from benchmarks.epg import bench_epg
from benchmarks.inference import bench_inference
from benchmarks.matching import bench_matching
from benchmarks.memory import bench_memory
from benchmarks.peak import cpu_description, measure_peak
from benchmarks.report import table
from benchmarks.train import bench_training


def main(argv=None) -> int:
    """Run the suite (``--quick``: a few minutes on 2 CPU cores) and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, subsets scaled up")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results.json")
    parser.add_argument("--only", default="peak,training,inference,matching,epg,memory")
    parser.add_argument("--models", default="cnn1,rnn1,rnn3")
    parser.add_argument("--no-mrpro", action="store_true")
    parser.add_argument("--torch-compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 rows")
    parser.add_argument(
        "--speed-options",
        action="store_true",
        help="also time training with the LSTM's hand-written VJP (rnn1, rnn3) against plain "
        "autodiff, in the same rounds",
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    only = set(args.only.split(","))
    models = args.models.split(",")
    quick = args.quick
    n_pix = n_mask_pixels()
    with_mrpro = not args.no_mrpro and load_mrpro() is not None
    results = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "cpu": cpu_description(),
            "jax": jax.__version__,
            "jax_backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "torch_device": torch_device(),
            "mrpro": load_mrpro().__version__ if with_mrpro else None,
            "quick": quick,
        }
    }
    loads = results["load_average"] = {"start": load_average()}
    results["peak"] = measure_peak(2048 if quick else 4096, 5)
    print(f"matmul peak: {results['peak']}", flush=True)
    if "training" in only:
        results["training"] = {}
        for name in models:
            steps, rounds = (2, 3) if quick else (5, 5)
            bf16 = name in BF16_MODELS and not args.no_bf16
            r = bench_training(name, rounds, steps, args.torch_compile, bf16, args.speed_options)
            results["training"][name] = r
            loads[f"train {name}"] = load_average()
            print(f"train {name}: {r['patches_per_s']} ratio {r['ratio_vs_torch']:.2f}", flush=True)
    if "inference" in only:
        results["inference"] = {}
        for name in [m for m in models if m != "cnn1"]:
            chunk = 1024 if name == "rnn1" else 512
            chunks, rounds = (1, 3) if quick else (2, 5)
            bf16 = name in BF16_MODELS and not args.no_bf16
            r = bench_inference(name, n_pix, chunk, chunks, rounds, bf16)
            results["inference"][name] = r
            loads[f"infer {name}"] = load_average()
            print(f"infer {name}: {r['slice_s']} ratio {r['ratio_vs_torch']:.2f}", flush=True)
    if "matching" in only:
        results["matching"] = r = bench_matching(n_pix, 3 if quick else 5, with_mrpro)
        loads["matching"] = load_average()
        print(f"match: {r['slice_s']} ratio {r.get('ratio_vs_mrpro')}", flush=True)
    if "epg" in only:
        results["epg"] = r = bench_epg(512 if quick else 2048, 3, with_mrpro)
        loads["epg"] = load_average()
        print(f"epg: {r['grid_s']} ratio {r.get('ratio_vs_mrpro')}", flush=True)
    if "memory" in only:
        mem_pixels = 4096 if quick else n_pix
        results["memory"] = {
            kind: bench_memory(kind, mem_pixels, 1024 if kind != "rnn3" else 512)
            for kind in ("rnn1", "rnn3", "match")
        }
        print(f"memory: {results['memory']}", flush=True)
    text = table(results)
    print(text)
    args.out.write_text(json.dumps(results, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
