"""Evaluate trained checkpoints on MRF slices: flags -> `rinq_jax.evaluation.evaluate.evaluate`.

    python eval.py --ckpt runs/rnn3-complex                    # best step, the run's test split
    python eval.py --ckpt runs/rnn3-complex runs/cnn1-complex --compare-dm --nifti
    python eval.py --ckpt RUN --step 400 --data data/quick/sub-03_slice-01.h5 --out results/x

    python eval.py --ckpt RUN --data my_scan_slice-07.h5 --out results/scan   # no true maps

Writes OUT/metrics.json (per slice and pooled: validation loss sqrt(MSE over T1 and T2) in ms,
RMSE, MAE, relative mean error +- std per parameter and per tissue, seconds per slice),
OUT/figures/<slice>.png (Fig. 2-style) and, with --nifti, OUT/nifti/*.nii.gz.

A slice file without true t1_ms/t2_ms maps (e.g. one's own scan imported from raw data) is
not scored: its predicted maps are the output. For it, always (with or without --nifti),
OUT/nifti/<slice>_<method>_{t1_ms,t2_ms,m0}.nii.gz hold each method's T1 and T2 in ms and |M0|
(dictionary matching's matched scale; for a network the least-squares fit of the EPG
fingerprint at its T1/T2 to the signal), with the pixel size acquisition/fov_mm / matrix
(required); OUT/figures/<slice>.png shows the maps without error panels; metrics.json lists
the slice with its median T1/T2/|M0| in the mask and seconds, and pools errors over the
slices with truth only. Files with and without truth can be mixed in one call.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rinq_jax.cli import positive_int
from rinq_jax.errors import InputError
from rinq_jax.evaluation import evaluate, inference


def _step(text: str) -> int | str:
    if text in ("best", "latest"):
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be 'best', 'latest' or a step number, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a step number must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the command line of eval.py."""
    p = argparse.ArgumentParser(
        prog="eval.py",
        description="Score trained RinQ checkpoints (and dictionary matching) against the true "
        "T1/T2 maps of MRF slices; write metrics.json, Fig. 2-style PNGs and NIfTI maps. "
        "For a slice without true maps (one's own scan), write the predicted T1, T2 and M0 as "
        "NIfTI (always; needs acquisition/fov_mm) and a figure of the maps instead.",
    )
    p.add_argument(
        "--ckpt", nargs="+", required=True, metavar="RUN_DIR", help="training run directories"
    )
    p.add_argument(
        "--step", type=_step, default="best", help="'best' (default), 'latest' or a step number"
    )
    p.add_argument(
        "--data",
        nargs="+",
        metavar="FILE",
        help="slice files, with or without true T1/T2 maps (default: the first run's test split)",
    )
    p.add_argument("--out", type=Path, help="output folder (default: RUN_DIR/eval-<step>)")
    p.add_argument(
        "--compare-dm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also score and time dictionary matching, or write its maps for a slice without "
        "true maps (default: on)",
    )
    p.add_argument(
        "--dm-cache", type=Path, help="dictionary cache folder (default: cache/ next to each slice)"
    )
    p.add_argument(
        "--figures",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write Fig. 2-style PNGs (default: on)",
    )
    p.add_argument(
        "--nifti",
        action="store_true",
        help="write the predicted maps as NIfTI (always done for slices without true maps)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=256,
        help="patches per forward call (default: 256)",
    )
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
            mean_ms=checkpoints[0].train_target_mean_ms,
        )
    except InputError as err:
        print(f"eval.py: error: {err}", file=sys.stderr)
        return 1
    for line in evaluate.summary_lines(result):
        print(line)
    print(f"wrote {out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
