"""A second scanner protocol, end to end without a scanner: the "scanner" side.

    python -m rinq_jax.experiments.second_protocol --out data/protocol2-scanner

plays the scanner of issue 24's demonstration. It writes a FISP protocol unlike the default
(`paper_sequence(3000)` with the generator's 48-interleaf spiral):

* ``OUT/schedule.csv``: 1,000 repetitions, flip angles in sine-squared lobes of 200
  repetitions whose peaks grow from 30 to 65 deg, TR 9-11 ms in slow linear ramps, TE 2.5 ms,
  an inversion 50 ms before the first pulse (the default: lobes of 250 repetitions up to 74
  deg, TR 12-15 ms, TI 20 ms);
* ``OUT/trajectory.npz`` (`rinq_jax.data.acquisition.trajectory.Trajectory`, rad/pixel at 128 x 128): 24
  interleaves of a variable-density spiral that is denser at the centre than the default's
  (``VariableDensity(centre=3, power=2)``), rotated by multiples of the golden angle (the
  default: 48 interleaves in uniform 7.5 deg steps), played in order 0, 1, ..., 23, 0, ...;

and acquires held-out brain subjects of its own (seed 1, so other anatomy and tissue values
than any dataset of seed 0) with 8 receive coils as raw ISMRMRD (`ismrmrd_export`), with their
true maps as slice files (``OUT/test/``). From ``OUT/ismrmrd-8coil/`` (the raw files and
``schedule.csv``) alone, ``python -m rinq_jax.scanner prepare`` then makes the training data
(the README's "From your scanner"), and ``python -m rinq_jax.experiments.scanner_roundtrip
--data OUT`` scores a network on these scans' imports.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from rinq_jax.data.acquisition import spiral
from rinq_jax.data.acquisition.trajectory import Trajectory
from rinq_jax.data.datasets import synthetic
from rinq_jax.data.raw import ismrmrd_export
from rinq_jax.physics import schedule_files
from rinq_jax.physics.sequence import FispSequence

N_REPS = 1000
N_INTERLEAVES = 24
MATRIX = 128
N_COILS = 8
GOLDEN_ANGLE_RAD = math.pi * (3.0 - math.sqrt(5.0))


def schedule() -> FispSequence:
    """The protocol's FISP schedule (module docstring)."""
    t = np.arange(N_REPS)
    peaks = np.linspace(30.0, 65.0, N_REPS // 200)
    flip_deg = 3.0 + (peaks[t // 200] - 3.0) * np.sin(np.pi * (t % 200) / 200) ** 2
    tr_ms = 9.0 + 2.0 * np.abs(((t / 250.0) % 2.0) - 1.0)  # 9 -> 11 -> 9 ms ramps
    return FispSequence(flip_deg, tr_ms, np.zeros(N_REPS), te_ms=2.5, ti_ms=50.0)


def trajectory() -> Trajectory:
    """The protocol's spiral (module docstring): one interleaf, golden-angle rotations."""
    cfg = spiral.AcquisitionConfig(
        matrix=MATRIX,
        n_interleaves=N_INTERLEAVES,
        undersampling=N_INTERLEAVES,
        density=spiral.VariableDensity(centre=3.0, edge=1.0, power=2.0),
    )
    base = spiral.spiral_trajectory(cfg)[0].astype(np.float64)
    radius, theta = np.hypot(base[:, 0], base[:, 1]), np.arctan2(base[:, 1], base[:, 0])
    angle = theta[None, :] + GOLDEN_ANGLE_RAD * np.arange(N_INTERLEAVES)[:, None]
    coords = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=-1)
    return Trajectory(coords, np.arange(N_REPS) % N_INTERLEAVES)


def scanner_config() -> synthetic.BrainDataConfig:
    """The scanner's subjects: a small dataset of seed 1 whose test subjects are scanned."""
    return synthetic.BrainDataConfig(
        n_train=1, n_val=1, n_test=2, n_coils=N_COILS, seed=1
    ).with_protocol(schedule(), trajectory())


def run(out: Path, progress: bool = True) -> list[Path]:
    """Write the protocol files, the scanned subjects' truths and their raw files."""
    out.mkdir(parents=True, exist_ok=True)
    config = scanner_config()
    schedule_files.write_schedule_csv(out / "schedule.csv", config.schedule)
    config.trajectory.save(out / "trajectory.npz")
    synthetic.generate(config, out, progress=progress)
    return ismrmrd_export.export_brain_test(config, out, N_COILS, progress=progress)


def main(argv=None) -> int:
    """Command line (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/protocol2-scanner"))
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    raws = run(args.out, progress=not args.no_progress)
    print(f"{len(raws)} raw {N_COILS}-coil scans of the second protocol in {raws[0].parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
