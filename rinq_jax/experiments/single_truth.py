"""How close the training targets are to the truth the evaluation scores.

    python -m rinq_jax.experiments.single_truth --data data/brain

RNN3's recipe learns the single-compartment truth (``TrainConfig.target = "single"``), which
the training stream computes for every batch with the fast dictionary search
(`rinq_jax.physics.fit.GridFit`), while the test slices store the exact least-squares fit
(``t1_single_ms``: `rinq_jax.physics.fit.fit_single_compartment`, run to convergence from the
grid fit's answer by `grid_started_fit`). This recomputes the test
slices' truth with the stream's fit, from the slices' own anatomy and tissue values
(`brain_slices.slice_model`), and prints the relative difference over their brain pixels (at
least 98 % white matter, grey matter and CSF) and their pure (>= 90 %) white and grey matter.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from rinq_jax.data.acquisition import compartments
from rinq_jax.data.datasets import brain_slices, synthetic
from rinq_jax.data.files import io
from rinq_jax.data.subjects import tissues
from rinq_jax.physics.fit import GridFit


def differences(data_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    """{"brain", "pure"} -> {"t1", "t2"} -> |grid / exact - 1| over the test slices' pixels."""
    data = synthetic.load(data_dir)
    fit = GridFit.from_dictionary(synthetic.matching_dictionary(data.config, data_dir, False))
    out = {group: {"t1": [], "t2": []} for group in ("brain", "pure")}
    brain = list(tissues.BRAIN_LABELS)
    for path in data.test:
        s = io.read_slice(path)
        subject, index = (int(part.split("-")[1]) for part in path.stem.split("_"))
        slc, values, _ = brain_slices.slice_model(data.config, subject, index)
        m = s.mask
        grid = compartments.single_compartment_maps(
            data.config.sequence(), slc.fractions[:, m], values, slc.b1_shape[m], fit
        )
        fractions = slc.fractions[:, m]
        groups = {
            "brain": fractions[brain].sum(axis=0) >= 0.98,
            "pure": fractions[[tissues.WM, tissues.GM]].max(axis=0) >= 0.9,
        }
        exact = (s.t1_single_ms[m], s.t2_single_ms[m])
        for key, got, want in zip(("t1", "t2"), grid, exact, strict=True):
            error = np.abs(got / want - 1.0)
            for group, keep in groups.items():
                out[group][key].append(error[keep])
    return {g: {k: np.concatenate(v) for k, v in d.items()} for g, d in out.items()}


def main(argv: list[str] | None = None) -> int:
    """Print the differences' median, 99th percentile and maximum."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/brain"), help="generated dataset")
    args = parser.parse_args(argv)
    for group, errors in differences(args.data).items():
        for key, error in errors.items():
            pct = 100 * np.percentile(error, [50, 99, 100])
            print(
                f"{group:5s} {key.upper()} ({error.size} pixels): grid fit vs exact fit, "
                f"median {pct[0]:.3f} %, 99th percentile {pct[1]:.3f} %, max {pct[2]:.3f} %"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
