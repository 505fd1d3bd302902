"""The benchmark results as one Markdown table (printed by `benchmarks.run`)."""

from __future__ import annotations

from benchmarks.common import N_REPS


def _fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def table(results: dict) -> str:
    """The results as one Markdown table."""
    rows = [
        "| workload | rinq_jax | PyTorch / mrpro | ratio (roofline) | rinq_jax GFLOP/s (% peak) |",
        "|---|---|---|---|---|",
    ]
    peak = results["peak"]["peak"]
    peak_bf16 = results["peak"].get("jax_bf16")

    def pct(g, ref=peak):
        return f"{g:.0f} ({100 * g / ref:.0f} %)"

    def roofline(r):
        # The most any implementation could lead PyTorch by: the peak over PyTorch's rate.
        return f" (roofline {peak / r['gflops']['torch']:.2f}x)"

    for name, r in results.get("training", {}).items():
        rate = r["patches_per_s"]
        other = f"{rate['torch']:.0f}"
        if "torch_compile" in rate:
            other += f" (compiled {rate['torch_compile']:.0f})"
        rows.append(
            f"| train {name} (B={r['batch']}), patches/s | {rate['jax']:.0f} | {other} "
            f"| {r['ratio_vs_torch']:.2f}x{roofline(r)} | {pct(r['gflops']['jax'])} |"
        )
        for option, label in (("jax_fast_grad", "the LSTM's hand-written VJP"),):
            if option in rate:
                rows.append(
                    f"| train {name} {label}, patches/s | {rate[option]:.0f} | {rate['torch']:.0f} "
                    f"| {rate[option] / rate['torch']:.2f}x ({r[f'ratio_{option}_vs_jax']:.2f}x "
                    f"the plain default) | {pct(r['gflops'][option])} |"
                )
        if "jax_bf16" in rate:
            rows.append(
                f"| train {name} bf16 mixed precision, patches/s | {rate['jax_bf16']:.0f} | "
                f"{rate['torch_bf16']:.0f} (autocast) | {r['ratio_bf16_vs_torch_bf16']:.2f}x "
                f"({r['ratio_bf16_vs_torch']:.2f}x float32 torch) | "
                f"{pct(r['gflops']['jax_bf16'], peak_bf16)} of bf16 peak |"
            )
    for name, r in results.get("inference", {}).items():
        t = r["slice_s"]
        rows.append(
            f"| infer {name}, slice of {r['pixels']} px, s | {t['jax']:.1f} | "
            f"{t['torch']:.1f} | {r['ratio_vs_torch']:.2f}x{roofline(r)} | {pct(r['gflops']['jax'])} |"
        )
        if "jax_bf16" in t:
            rows.append(
                f"| infer {name} bf16 mixed precision, s | {t['jax_bf16']:.1f} | "
                f"{t['torch_bf16']:.1f} (autocast) | {r['ratio_bf16_vs_torch_bf16']:.2f}x "
                f"({r['ratio_bf16_vs_torch']:.2f}x float32 torch) | "
                f"{pct(r['gflops']['jax_bf16'], peak_bf16)} of bf16 peak |"
            )
    m = results.get("matching")
    if m:
        rows.append(
            f"| match rank {m['rank']}, {m['atoms']} atoms, slice, s | {m['slice_s']['jax']:.2f} | "
            f"{_fmt(m['slice_s'].get('mrpro'), '.2f')} | {_fmt(m.get('ratio_vs_mrpro'), '.2f')}x | "
            f"{pct(m['gflops']['jax'])} |"
        )
    e = results.get("epg")
    if e:
        rows.append(
            f"| EPG paper grid ({e['grid_atoms']} atoms x {N_REPS}), s | {e['grid_s']['jax']:.1f} | "
            f"{_fmt(e['grid_s'].get('mrpro'))} | {_fmt(e.get('ratio_vs_mrpro'), '.1f')}x | "
            f"~{e['gflops_estimate']['jax']:.1f} (textbook-EPG equivalent) |"
        )
    for kind, r in results.get("memory", {}).items():
        rows.append(f"| peak RSS {kind}, whole slice | {r['peak_rss_gib']:.2f} GiB | | | |")
    p = results["peak"]
    rows.append(
        f"| matmul peak {p['size']}^3, GFLOP/s | XLA {p['jax']:.0f} "
        f"(bf16 {p['jax_bf16']:.0f}) | "
        f"torch {p['torch']:.0f}, numpy {p['numpy']:.0f} | | float32 peak {p['peak']:.0f} |"
    )
    load = results.get("load_average", {})
    if load:
        rows.append(
            f"\n1-minute load average during the run: {min(load.values()):.1f} to "
            f"{max(load.values()):.1f} on {results['machine']['cpus']} CPUs "
            f"({results['machine'].get('cpu') or 'CPU unknown'})"
            + (
                " -- other processes competed for the cores: PyTorch's spinning OpenMP "
                "threads suffer most from that, so these ratios overstate rinq_jax's lead."
                if max(load.values()) > results["machine"]["cpus"] + 0.5
                else "."
            )
        )
    return "\n".join(rows)
