"""The generator command: real-anatomy datasets or procedural-phantom slice files.

``python -m rinq_jax.generate --out data/brain --preset brain`` (what ``train.py`` uses
when no ``--data`` is given) makes the real-anatomy dataset of
`rinq_jax.data.datasets.synthetic` (presets ``brain``, ``standard``: training drawn fresh, held-out
subjects on disk); ``--preset quick`` or ``paper`` makes slice files of the procedural phantom
(`rinq_jax.data.datasets.phantom_dataset`). With ``--write-ismrmrd [--coils N]`` the raw N-coil
k-space is also written as ISMRMRD (`rinq_jax.data.raw.ismrmrd_export`, docs/ismrmrd.md): of every
slice (quick, paper) or of the test subjects' slices (brain, standard); the slice files stay the
same. With ``--test-set out-of-range``, ``snr`` or ``slice-profile`` (brain, standard) that test set
of `rinq_jax.data.datasets.test_sets` is written to ``OUT/out_of_range/``, ``OUT/snr/`` or
``OUT/slice_profile/``. Presets:
`rinq_jax.configs.data`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from rinq_jax.configs.data import DICTIONARY_RANK
from rinq_jax.data.acquisition.trajectory import Trajectory
from rinq_jax.data.datasets import synthetic, test_sets
from rinq_jax.data.datasets.phantom_dataset import PRESETS, check_counts, generate
from rinq_jax.data.raw import ismrmrd_export
from rinq_jax.errors import InputError
from rinq_jax.physics import schedule_files


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Generate in-vivo-like MRF slices (HDF5, docs/data_format.md)."
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (existing complete slices are kept)"
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS) + sorted(synthetic.PRESETS),
        default="brain",
        help="brain, standard: real anatomy, streamed training (rinq_jax.data.datasets.synthetic); "
        "quick, paper: procedural phantom slice files (default: brain)",
    )
    parser.add_argument(
        "--subjects", type=int, help="number of subjects (brain, standard: training subjects)"
    )
    parser.add_argument("--slices", type=int, help="slices per subject")
    parser.add_argument("--matrix", type=int, help="image matrix, e.g. 256")
    parser.add_argument("--snr", type=float, help="SNR of the fully sampled reconstruction")
    parser.add_argument(
        "--undersampling", type=int, help="spiral undersampling factor (divides 48)"
    )
    parser.add_argument("--n-reps", type=int, help="repetitions of the sequence")
    parser.add_argument(
        "--sequence",
        type=Path,
        help="(brain, standard) simulate this schedule (CSV or NPZ, docs: README 'Physics') "
        "instead of the paper-like one; its length sets the repetitions",
    )
    parser.add_argument(
        "--trajectory",
        type=Path,
        help="(brain, standard) simulate this k-space trajectory (.npz of "
        "rinq_jax.data.acquisition.trajectory.Trajectory: coords float[I, S, 2] rad/pixel, order int[T]) "
        "instead of the generator's spiral",
    )
    parser.add_argument("--seed", type=int, help="seed of anatomies, tissue values and noise")
    parser.add_argument(
        "--rank", type=int, help=f"SVD rank of the dictionary subspace (default {DICTIONARY_RANK})"
    )
    parser.add_argument(
        "--test-set",
        choices=test_sets.TEST_SETS,
        help="(brain, standard) also write a test set that demands measurement into OUT: "
        "out-of-range: held-out subjects with WM/GM T1 and T2 at x0.5-2.0 of normal and "
        "lesions unlike any tissue; snr: one subject at x0.25-4 the dataset's SNR; "
        "slice-profile: one subject with the slice profiles of sinc pulses "
        "(rinq_jax/data/datasets/test_sets.py)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--cache", type=Path, help="dictionary cache folder (quick, paper; default OUT/cache)"
    )
    parser.add_argument(
        "--write-ismrmrd",
        action="store_true",
        help="also write the raw k-space as ISMRMRD to OUT/ismrmrd-<N>coil/: every slice "
        "(quick, paper), the test subjects' slices (brain, standard)",
    )
    parser.add_argument(
        "--coils", type=int, default=1, help="receive coils N of --write-ismrmrd (default 1)"
    )
    return parser


def _config(args: argparse.Namespace):
    """The data config of the preset with the command line's overrides (ValueError if bad)."""
    brain = args.preset in synthetic.PRESETS  # --subjects: the training subjects there
    values = {
        "n_train" if brain else "n_subjects": args.subjects,
        "n_slices": args.slices,
        "matrix": args.matrix,
        "snr": args.snr,
        "undersampling": args.undersampling,
        "n_reps": args.n_reps,
        "seed": args.seed,
        "rank": args.rank,
    }
    overrides = {field: value for field, value in values.items() if value is not None}
    config = dataclasses.replace(
        (synthetic.PRESETS if brain else PRESETS)[args.preset], **overrides
    )
    if args.sequence or args.trajectory:
        schedule = args.sequence and schedule_files.load_sequence(args.sequence)
        trajectory = args.trajectory and Trajectory.load(args.trajectory)
        if schedule and trajectory and schedule.n_reps != trajectory.n_reps:
            raise ValueError(
                f"{args.sequence} has {schedule.n_reps} repetitions, {args.trajectory} "
                f"orders {trajectory.n_reps} (field 'order')"
            )
        config = config.with_protocol(schedule, trajectory)
    config.acquisition()  # validates matrix, undersampling and SNR before any work
    if not brain:
        check_counts(config)
    return config


def main(argv=None) -> int:
    """Command line: ``python -m rinq_jax.generate --out DIR [--preset quick] [overrides]``."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.coils != 1 and not args.write_ismrmrd:
        parser.error("--coils applies to --write-ismrmrd only")
    if args.write_ismrmrd and args.coils < 1:
        parser.error("--coils must be >= 1")
    brain = args.preset in synthetic.PRESETS
    if args.sequence and args.n_reps or args.trajectory and args.undersampling:
        parser.error("--sequence sets the repetitions and --trajectory the undersampling")
    if (args.test_set or args.sequence or args.trajectory) and not brain:
        parser.error(
            "--test-set, --sequence and --trajectory need a brain preset (brain, standard)"
        )
    try:
        config = _config(args)
    except ValueError as error:
        parser.error(str(error))
    start = time.perf_counter()
    progress = not args.no_progress
    try:
        if brain:
            paths = synthetic.generate(config, args.out, progress=progress)
            counts = ", ".join(f"{len(v)} {k}" for k, v in paths.items())
        else:
            paths = generate(config, args.out, args.cache, progress=progress)
            size_mib = sum(p.stat().st_size for p in paths) / 2**20
            counts = f"{len(paths)} ({size_mib:.0f} MiB)"
        print(f"{counts} slices in {args.out}, {time.perf_counter() - start:.0f} s")
        if args.test_set:
            extra = test_sets.generate(config, args.out, args.test_set, progress=progress)
            where = test_sets.folder(args.out, args.test_set)
            print(f"{sum(map(len, extra.values()))} {args.test_set} test slices in {where}")
        if args.write_ismrmrd:
            if brain:
                raw = ismrmrd_export.export_brain_test(config, args.out, args.coils, progress)
            else:
                raw = ismrmrd_export.export_generated(
                    config, args.out, args.coils, args.cache, progress
                )
            print(f"{len(raw)} raw ISMRMRD files ({args.coils} coils) in {raw[0].parent}")
    except InputError as error:
        print(f"generate: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
