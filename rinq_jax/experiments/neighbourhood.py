"""Do a patch network's neighbours leak into a pure pixel's value? Errors by the 3x3 surround.

    python -m rinq_jax.experiments.neighbourhood --ckpt runs/rnn3-complex [more]

RNN3 reads a 3 x 3 patch and answers the centre pixel's T1, T2 through the median of nine
outputs (`rinq_jax.models.rnn`). Averaging over neighbours lowers the noise where they hold the
centre's tissue; where they hold another, the centre's answer is pulled towards theirs. Grey
matter is a ribbon of two to three 2.3 mm pixels between white matter and CSF, so this is where
it shows. For every checkpoint, and dictionary matching with the measured B1 map (one pixel at a
time: the reference without leakage), on the checkpoint's test-split slices this prints, for the
pure (>= 90 %, `metrics.pixel_classes`) white- and grey-matter pixels grouped by how much CSF
their 3 x 3 neighbourhood holds (sum of the nine pixels' CSF area fractions, in pixels), the
median signed relative error (bias) and the median |error| of T1 and T2, in %, against the
single-compartment truth (``t1_single_ms``, ``t2_single_ms``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from rinq_jax.data.files import io
from rinq_jax.data.subjects import tissues
from rinq_jax.evaluation import compare, evaluate, inference, metrics

# CSF in the 3 x 3 neighbourhood, in pixels of area: none, a partial-volume trace, one or more.
CSF_BINS = ((0.0, 0.05), (0.05, 1.0), (1.0, 9.0))
TISSUES = {"wm": tissues.WM, "gm": tissues.GM}
TRUTH_FIELDS = ["mask", "tissue", "fractions", "t1_single_ms", "t2_single_ms"]


def neighbourhood_sum(values: np.ndarray) -> np.ndarray:
    """float[H, W] -> the sum over each pixel's 3 x 3 neighbourhood (zero outside the image)."""
    return ndimage.correlate(np.asarray(values, np.float64), np.ones((3, 3)), mode="constant")


def signed_errors(maps: dict[str, tuple[np.ndarray, np.ndarray]], truth: io.MrfSlice):
    """(method, tissue) -> (signed relative (T1, T2) errors float[N, 2] in %, CSF float[N]).

    ``maps``: method -> (t1_ms, t2_ms) float[H, W]; ``truth`` a slice with the single-compartment
    truth and fractions; N the pure pixels of the tissue, CSF their `neighbourhood_sum`.
    """
    fractions = truth.fractions
    pure = metrics.pixel_classes(fractions.reshape(-1, fractions.shape[-1]))["pure"]
    pure = pure.reshape(truth.mask.shape) & truth.mask
    csf = neighbourhood_sum(fractions[..., tissues.CSF])
    out = {}
    for label, (t1_ms, t2_ms) in maps.items():
        for name, tissue in TISSUES.items():
            keep = pure & (truth.tissue == tissue)
            errors = [
                100.0 * (pred[keep] / true[keep] - 1.0)
                for pred, true in ((t1_ms, truth.t1_single_ms), (t2_ms, truth.t2_single_ms))
            ]
            out[label, name] = (np.stack(errors, axis=1), csf[keep])
    return out


def run(ckpts: list[Path]) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """(method, tissue) -> (signed errors float[N, 2] %, neighbourhood CSF float[N]) over slices."""
    checkpoints = [inference.load_checkpoint(c) for c in ckpts]
    labels = evaluate.labels_for(checkpoints)
    forwards = [inference.make_forward(c) for c in checkpoints]
    files = evaluate.split_test_files(checkpoints[0])
    dictionary = compare.matching_dictionary(files[0])
    pooled: dict = {}
    for path in files:
        truth = io.read_slice(path, fields=TRUTH_FIELDS)
        maps = {}
        for label, c, forward in zip(labels, checkpoints, forwards, strict=True):
            p = inference.predict_slice(c, path, forward=forward)
            maps[label] = (p.t1_ms, p.t2_ms)
        d = compare.match_slice(path, dictionary, b1_mode="map")
        maps[evaluate.DM_LABELS["map"]] = (d.t1_ms, d.t2_ms)
        for key, value in signed_errors(maps, truth).items():
            pooled.setdefault(key, []).append(value)
    return {
        key: (np.concatenate([e for e, _ in v]), np.concatenate([c for _, c in v]))
        for key, v in pooled.items()
    }


def main(argv: list[str] | None = None) -> int:
    """Print one row per method, tissue and CSF bin."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, nargs="+", required=True, help="run folders")
    args = parser.parse_args(argv)
    print(
        "| method | tissue | CSF in 3x3 (pixels) | pixels | T1 bias | T1 median abs | T2 bias | T2 median abs |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (label, name), (errors, csf) in run(args.ckpt).items():
        for lo, hi in CSF_BINS:
            keep = (csf >= lo) & (csf < hi)
            if not keep.any():
                continue
            e = errors[keep]
            bias, spread = np.median(e, axis=0), np.median(np.abs(e), axis=0)
            print(
                f"| {label} | {name.upper()} | {lo:g}-{hi:g} | {keep.sum()} | {bias[0]:+.1f} | "
                f"{spread[0]:.1f} | {bias[1]:+.1f} | {spread[1]:.1f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
