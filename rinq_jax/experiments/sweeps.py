"""Robustness sweeps: error vs SNR and vs undersampling, for a trained network and dictionary matching.

    python -m rinq_jax.experiments.sweeps --ckpt RUN_DIR   # a network trained on the quick preset

For every setting a test slice of an unseen subject (`SUBJECT`, not among the training
subjects 0-7) is simulated with `rinq_jax.data.datasets.phantom_dataset.generate_slice` — the
preset's acquisition with one parameter changed — and both the checkpoint and dictionary matching
are scored on it with `rinq_jax.evaluation.evaluate.evaluate`. Slices and results are kept in OUT,
so a re-run only simulates what is missing. Writes ``OUT/sweeps.md`` (a table), ``OUT/sweeps.json``
and ``OUT/sweeps.png`` (loss vs SNR and vs undersampling).

The network was trained at one setting (the preset's SNR 30, undersampling 48), so the sweep
measures how it degrades away from it; dictionary matching needs no training.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from rinq_jax.configs.data import QUICK_DATA_DIR
from rinq_jax.data.datasets import phantom_dataset
from rinq_jax.data.files import io
from rinq_jax.data.files.format import MrfFormatError
from rinq_jax.errors import InputError
from rinq_jax.evaluation import evaluate as evaluate_lib
from rinq_jax.evaluation import export, figures, inference

SNRS = (10.0, 20.0, 30.0, 60.0, None)  # None: noiseless
UNDERSAMPLINGS = (48, 24, 12, 6)  # divisors of the 48 interleaves; 48 is the paper's
SUBJECT = 100
SLICE_INDEX = 1


@dataclasses.dataclass(frozen=True)
class Setting:
    """One point of a sweep: which parameter is varied and the slice's generator config."""

    parameter: str  # "snr" or "undersampling"
    value: float | int | None
    config: phantom_dataset.GenerateConfig

    @property
    def name(self) -> str:
        """File-system name, e.g. ``snr-30`` or ``undersampling-12``."""
        value = "inf" if self.value is None else f"{self.value:g}"
        return f"{self.parameter}-{value}"


def settings(
    base: phantom_dataset.GenerateConfig,
    snrs: Sequence[float | None] = SNRS,
    undersamplings: Sequence[int] = UNDERSAMPLINGS,
) -> list[Setting]:
    """The sweep: SNR varied at the base undersampling, undersampling varied at the base SNR."""
    out = [Setting("snr", s, dataclasses.replace(base, snr=s)) for s in snrs]
    out += [
        Setting("undersampling", u, dataclasses.replace(base, undersampling=u))
        for u in undersamplings
    ]
    for s in out:
        s.config.acquisition()  # refuse an impossible setting before any simulation
    return out


def ensure_slice(setting: Setting, folder: Path, cache_dir: Path) -> Path:
    """Simulate the setting's test slice into ``folder`` unless a complete file exists."""
    path = folder / f"{setting.name}.h5"
    try:
        io.inspect(path)
        return path
    except (MrfFormatError, FileNotFoundError):
        pass
    folder.mkdir(parents=True, exist_ok=True)
    dictionary = phantom_dataset.matching_dictionary(setting.config, cache_dir)
    io.write_slice(
        path, phantom_dataset.generate_slice(setting.config, SUBJECT, SLICE_INDEX, dictionary)
    )
    return path


def run(
    run_dir: str | Path,
    out_dir: str | Path,
    base: phantom_dataset.GenerateConfig,
    *,
    step: int | str = "best",
    snrs: Sequence[float | None] = SNRS,
    undersamplings: Sequence[int] = UNDERSAMPLINGS,
    cache_dir: str | Path = QUICK_DATA_DIR / "cache",
    log=print,
) -> list[dict[str, Any]]:
    """Evaluate a checkpoint and dictionary matching over the sweep; write table, JSON and plot.

    Args:
        run_dir: training run of the network (e.g. RNN3).
        out_dir: where slices and results go.
        base: the acquisition the network was trained with (its data's GenerateConfig).
        step: checkpoint step ("best", "latest" or an int).
        snrs: SNRs to try (None: noiseless), at the base undersampling.
        undersamplings: undersampling factors to try, at the base SNR.
        cache_dir: dictionary cache (the training data's, so nothing is rebuilt).
        log: where progress lines go.

    Returns:
        One dict per setting: parameter, value, and per method ("network", "dictionary
        matching") loss_ms, t1/t2 RME and std, seconds per slice.

    """
    out_dir = Path(out_dir)
    checkpoint = inference.load_checkpoint(run_dir, step)
    label = checkpoint.name
    rows = []
    for setting in settings(base, snrs, undersamplings):
        path = ensure_slice(setting, out_dir / "slices", Path(cache_dir))
        result = evaluate_lib.evaluate(
            [checkpoint],
            [path],
            out_dir / setting.name,
            labels=[label],
            compare_dm=True,
            dm_cache=cache_dir,
            make_figures=False,
            log=lambda *_: None,
        )
        row: dict[str, Any] = {"parameter": setting.parameter, "value": setting.value}
        for method, key in ((label, "network"), (evaluate_lib.DM_LABEL, "dictionary matching")):
            row[key] = result.methods[method].headline()
        log(
            f"{setting.name}: {label} {row['network']['loss_ms']:.1f} ms, "
            f"dictionary matching {row['dictionary matching']['loss_ms']:.1f} ms"
        )
        rows.append(row)
    export.write_json(
        out_dir / "sweeps.json", {"checkpoint": str(run_dir), "model": label, "rows": rows}
    )
    export.write_text(out_dir / "sweeps.md", markdown(rows, label))
    figures.save_figure(plot(rows, label), out_dir / "sweeps.png")
    return rows


def _value_text(value) -> str:
    return "noiseless" if value is None else f"{value:g}"


def markdown(rows: Sequence[dict[str, Any]], label: str) -> str:
    """Markdown table: one line per setting, network and dictionary matching side by side."""
    lines = [
        f"| setting | {label}: loss [ms] | T1 / T2 RME [%] | DM: loss [ms] | T1 / T2 RME [%] |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        n, d = r["network"], r["dictionary matching"]
        lines.append(
            f"| {r['parameter']} {_value_text(r['value'])} | {n['loss_ms']:.1f} | "
            f"{n['t1_rme_pct']:.1f} / {n['t2_rme_pct']:.1f} | {d['loss_ms']:.1f} | "
            f"{d['t1_rme_pct']:.1f} / {d['t2_rme_pct']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[dict[str, Any]], label: str) -> Figure:
    """Two panels: loss vs SNR (noiseless drawn at the right end) and vs undersampling."""
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, parameter, xlabel in (
        (axes[0], "snr", "SNR (noiseless at the right)"),
        (axes[1], "undersampling", "undersampling factor"),
    ):
        points = [r for r in rows if r["parameter"] == parameter]
        finite = [r["value"] for r in points if r["value"] is not None]
        top = max(finite) * 2 if finite else 1.0
        xs = [top if r["value"] is None else r["value"] for r in points]
        for key, name, marker in ((label, "network", "o"), ("DM", "dictionary matching", "s")):
            ys = [r[name]["loss_ms"] for r in points]
            ys = [math.nan if y is None else y for y in ys]
            ax.plot(xs, ys, marker=marker, label=key)
        ax.set_xscale("log")
        ax.minorticks_off()  # only the sweep's values are labelled
        ax.set_xticks(xs, [_value_text(r["value"]) for r in points])
        ax.set_xlabel(xlabel)
        ax.set_ylabel("sqrt(MSE) over T1 and T2 [ms]")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def main(argv: list[str] | None = None) -> int:
    """Command line; one-line errors for bad input."""
    p = argparse.ArgumentParser(
        prog="python -m rinq_jax.experiments.sweeps",
        description="Error vs SNR and vs undersampling for a trained checkpoint and dictionary matching.",
    )
    p.add_argument("--ckpt", required=True, type=Path, help="training run directory (e.g. RNN3)")
    p.add_argument("--step", default="best", help="'best', 'latest' or a step number")
    p.add_argument(
        "--preset",
        choices=sorted(phantom_dataset.PRESETS),
        default="quick",
        help="acquisition the network was trained with",
    )
    p.add_argument("--out", type=Path, help="output folder (default: CKPT/sweeps)")
    p.add_argument("--cache", type=Path, help="dictionary cache (default: data/<preset>/cache)")
    p.add_argument("--snr", type=float, nargs="+", help=f"SNRs (0 = noiseless; default {SNRS})")
    p.add_argument("--undersampling", type=int, nargs="+", help=f"default {UNDERSAMPLINGS}")
    args = p.parse_args(argv)
    step = int(args.step) if args.step.isdigit() else args.step
    snrs = SNRS if args.snr is None else tuple(None if s == 0 else s for s in args.snr)
    try:
        run(
            args.ckpt,
            args.out or args.ckpt / "sweeps",
            phantom_dataset.PRESETS[args.preset],
            step=step,
            snrs=snrs,
            undersamplings=args.undersampling or UNDERSAMPLINGS,
            cache_dir=args.cache or Path("data") / args.preset / "cache",
        )
    except InputError as err:
        print(f"sweeps: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
