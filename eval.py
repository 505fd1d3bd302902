"""Evaluate trained checkpoints on MRF slices: flags -> `rinq_jax.evaluation.evaluate.evaluate`.

    python eval.py --ckpt runs/rnn3-complex                    # best step, the run's test split
    python eval.py --ckpt runs/rnn3-complex runs/cnn1-complex --no-compare-dm --nifti
    python eval.py --ckpt RUN --data my_scan_slice-07.h5 --out results/scan   # no true maps

Writes OUT/metrics.json, OUT/figures/<slice>.png and, with --nifti, OUT/nifti/*.nii.gz; a slice
without true maps (one's own scan) is not scored, its maps (NIfTI) are the output. What each
file holds: `rinq_jax.evaluation.evaluate`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rinq_jax.cli import checkpoint_step, positive_int
from rinq_jax.errors import InputError
from rinq_jax.evaluation import evaluate, inference


def build_parser() -> argparse.ArgumentParser:
    """The command line of eval.py."""
    p = argparse.ArgumentParser(prog="eval.py", description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", nargs="+", required=True, metavar="RUN_DIR", help="training runs")
    p.add_argument("--step", type=checkpoint_step, default="best", help="best, latest or N")
    p.add_argument("--data", nargs="+", metavar="FILE", help="default: the run's test split")
    p.add_argument("--out", type=Path, help="output folder (default: RUN_DIR/eval-<step>)")
    p.add_argument("--dm-cache", type=Path, help="dictionaries (default: cache/ by each slice)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="patches per call")
    on = {"action": argparse.BooleanOptionalAction, "default": True}
    p.add_argument("--compare-dm", **on, help="also dictionary matching and the baselines")
    p.add_argument("--figures", **on, help="Fig. 2-style PNGs")
    p.add_argument("--nifti", action="store_true", help="NIfTI maps of scored slices too")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse flags, evaluate, print a summary; one-line errors for bad input."""
    args = build_parser().parse_args(argv)
    try:
        checkpoints = [inference.load_checkpoint(run, args.step) for run in args.ckpt]
        files = args.data or evaluate.split_test_files(checkpoints[0])
        out = args.out or Path(args.ckpt[0]) / f"eval-{args.step}"
        result = evaluate.evaluate(
            checkpoints,
            files,
            out,
            compare_dm=args.compare_dm,
            dm_cache=args.dm_cache,
            make_figures=args.figures,
            nifti=args.nifti,
            batch_size=args.batch_size,
            mean_ms=checkpoints[0].metadata.train_target_mean_ms,
        )
    except InputError as err:
        print(f"eval.py: error: {err}", file=sys.stderr)
        return 1
    for line in result.summary_lines():
        print(line)
    print(f"wrote {out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
