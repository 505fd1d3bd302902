"""Does a network measure? Scores per condition of a test set that demands it.

    python -m rinq_jax.experiments.test_sets --set out-of-range --ckpt runs/rnn3-complex [more]
    python -m rinq_jax.experiments.test_sets --set snr --ckpt runs/rnn3-complex
    python -m rinq_jax.experiments.test_sets --set out-of-range --ckpt RUN --steps 600 1200 ...

Evaluates the checkpoints, dictionary matching (B1 free, measured B1 map, B1 = 1) and the
signal-free recognition baseline on a set of `rinq_jax.data.datasets.test_sets` (written into the
dataset's folder when missing), one condition (one subject) at a time, and writes
``OUT/table.md``: per condition, the median relative T1 and T2 errors of pure (>= 90 %) white
and grey matter against the single-compartment truth, and the slices' mean white-matter SNR.
A network measures only where it beats recognition in every out-of-range bin. With ``--steps``
the run's checkpoints at those steps are scored instead (a learning curve on the set; keep them
with ``train.py --keep-checkpoints 20``: a run checkpoints at every validation, too).
``OUT/<condition>/metrics.json`` hold the full `evaluate.evaluate` results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from rinq_jax.configs.data import DEFAULT_DATA_DIR
from rinq_jax.data.datasets import synthetic, test_sets
from rinq_jax.data.files import io
from rinq_jax.errors import InputError
from rinq_jax.evaluation import evaluate, export, inference
from rinq_jax.evaluation.results import MethodResult

PAIRS = (("wm", "t1"), ("wm", "t2"), ("gm", "t1"), ("gm", "t2"))  # the table's columns
COLUMNS = tuple(f"{t}_{p}" for t, p in PAIRS)


def median_errors(method: MethodResult) -> dict[str, float]:
    """`COLUMNS` -> pure-pixel median errors against the single-compartment truth, %."""
    return {f"{t}_{p}": method.pure_median_pct(t, p, "single") for t, p in PAIRS}


def run(
    ckpts: list[Path],
    data_dir: Path,
    test_set: str,
    out: Path,
    steps: list[int] | None = None,
    log=print,
) -> dict:
    """Evaluate every condition; returns {method: [(condition, snr_wm, median_errors), ...]}.

    ``steps``: score the checkpoints of ``ckpts[0]`` at these steps instead (labels
    ``"<model> step N"``).
    """
    config = synthetic.read_manifest(data_dir)
    if config is None:
        raise ValueError(f"{data_dir}: not a generated brain dataset (no manifest)")
    groups = test_sets.generate(config, data_dir, test_set, progress=False)
    if steps:
        checkpoints = [inference.load_checkpoint(ckpts[0], step) for step in steps]
        labels = [f"{c.name} step {step}" for c, step in zip(checkpoints, steps, strict=True)]
    else:
        checkpoints = [inference.load_checkpoint(c) for c in ckpts]
        labels = None
    rows: dict[str, list] = {}
    for condition, paths in groups.items():
        name = condition.replace(" ", "").replace(",", "_")
        result = evaluate.evaluate(
            checkpoints, paths, out / name, labels=labels, compare_dm=True, log=lambda *_: None
        )
        # files of an older generator lack SNR_WM: nan
        snr_wm = np.mean([io.inspect(p).acquisition.get("snr_wm", np.nan) for p in paths])
        for name, method in result.methods.items():
            rows.setdefault(name, []).append((condition, snr_wm, median_errors(method)))
        log(f"{condition}: {len(paths)} slices scored")
    export.write_text(out / "table.md", table(rows))
    return rows


def table(rows: dict) -> str:
    """Markdown: one row per method and condition, median errors of pure WM and GM (%)."""
    lines = [
        "| method | condition | SNR_WM | WM T1 | WM T2 | GM T1 | GM T2 |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, entries in rows.items():
        for condition, snr_wm, e in entries:
            values = " | ".join(f"{e[k]:.1f}" for k in COLUMNS)
            snr = "n/a" if np.isnan(snr_wm) else f"{snr_wm:.0f}"
            lines.append(f"| {method} | {condition} | {snr} | {values} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """Command line (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=test_sets.TEST_SETS, required=True, help="test set")
    parser.add_argument(
        "--ckpt", type=Path, nargs="+", required=True, help="training run directories"
    )
    parser.add_argument(
        "--steps", type=int, nargs="+", help="score the first run's checkpoints at these steps"
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="brain dataset")
    parser.add_argument("--out", type=Path, help="output folder (default: the first CKPT/SET)")
    args = parser.parse_args(argv)
    if args.steps and len(args.ckpt) > 1:
        parser.error("--steps scores the checkpoints of one run: give one --ckpt")
    out = args.out or args.ckpt[0] / args.set
    try:
        run(args.ckpt, args.data, args.set, out, args.steps)
    except InputError as err:
        print(f"test_sets: error: {err}", file=sys.stderr)
        return 1
    print((out / "table.md").read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
