"""Learning curves per tissue: validation loss against patches seen, for every model.

    python -m rinq_jax.experiments.learning_curves --workdir runs/curves
    python -m rinq_jax.experiments.learning_curves --plot-only runs/rnn3-complex ...

Trains RNN3, RNN1, CNN1 and DRONE (complex input) with the default recipe on the default brain
data (`rinq_jax.configs.recipes`; a finished or interrupted run in ``WORKDIR/<model>`` is
resumed), then draws ``docs/results/learning_curves.png``: for white matter, grey matter and CSF,
the paper's validation loss (sqrt of the MSE over T1 and T2, ms) on the held-out validation
subjects against the number of training patches the model has seen, read from each run's
``metrics.csv`` (`rinq_jax.training.steps.finalize_eval` writes the per-tissue columns).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from rinq_jax.configs.experiments import LEARNING_CURVE_MODELS, learning_curve_config
from rinq_jax.configs.models import MODEL_NAMES
from rinq_jax.evaluation import figures, inference
from rinq_jax.training.loop import train_and_evaluate

TISSUES = (("wm", "white matter"), ("gm", "grey matter"), ("csf", "CSF"))


def read_curve(run_dir: Path) -> dict[str, list[float]]:
    """Validation rows of a run's metrics.csv: {"step": [...], "val_loss_wm_ms": [...], ...}."""
    with (Path(run_dir) / "metrics.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "val"]
    keys = ["step", "val_loss_ms"] + [f"val_loss_{t}_ms" for t, _ in TISSUES]
    return {k: [float(r[k]) if r.get(k) else float("nan") for r in rows] for k in keys}


def plot(runs: dict[str, tuple[Path, int]], out: Path) -> Path:
    """Draw the curves of ``{label: (run_dir, batch_size)}`` into ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    for label, (run_dir, batch_size) in runs.items():
        curve = read_curve(run_dir)
        seen = [s * batch_size for s in curve["step"]]
        for ax, key, title in zip(
            axes,
            ["val_loss_ms"] + [f"val_loss_{t}_ms" for t, _ in TISSUES],
            ["all brain pixels"] + [name for _, name in TISSUES],
            strict=True,
        ):
            ax.plot(seen, curve[key], marker="o", markersize=3, label=label)
            ax.set_title(title, fontsize=10)
    for ax in axes:
        ax.set_xlabel("training patches seen")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("validation loss [ms]\nsqrt(MSE over T1, T2)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Learning curves on the held-out validation subjects (default brain data)")
    fig.tight_layout()
    return figures.save_figure(fig, out)


def main(argv=None) -> int:
    """Command line; see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=Path("runs/curves"))
    p.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(LEARNING_CURVE_MODELS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("docs/results/learning_curves.png"))
    p.add_argument(
        "--plot-only", nargs="+", type=Path, metavar="RUN_DIR", help="only plot these runs"
    )
    args = p.parse_args(argv)
    if args.plot_only:
        runs = {}
        for run in args.plot_only:
            config = inference.load_checkpoint(run, "latest").metadata.config
            runs[f"{config.model.upper()} ({run.name})"] = (run, config.batch_size)
        print(f"wrote {plot(runs, args.out)}")
        return 0
    runs = {}
    for model in args.models:
        config = learning_curve_config(model, args.workdir, args.seed)
        train_and_evaluate(config)
        runs[model.upper()] = (args.workdir / model, config.batch_size)
    print(f"wrote {plot(runs, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
