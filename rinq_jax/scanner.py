"""Train for your scanner: a dataset simulated through the acquisition of a raw scan.

    python -m rinq_jax.scanner prepare RAW.h5 --sequence SCHEDULE.csv --out DIR
    python train.py --model rnn3 --data-dir DIR --workdir runs/mine
    python eval.py --ckpt runs/mine                                   # held-out subjects
    python eval.py --ckpt runs/mine --data DIR/scans/*.h5 --out results/mine  # the scan's maps

``prepare`` reads from the ISMRMRD file (`rinq_jax.data.raw.ismrmrd_scan.open_scan`, every field
checked) what the network must be trained for: the k-space trajectory (each interleaf's
positions and the interleaf played at each repetition), the matrix and FOV, the coil count,
and with the schedule CSV the FISP schedule (TE and TI from the CSV or the header). It then

1. generates a brain dataset (`rinq_jax.data.datasets.synthetic`, preset ``brain`` unless
``--preset``)
   simulated through exactly that acquisition: the schedule (`BrainDataConfig.schedule`), the
   trajectory and its order (`BrainDataConfig.trajectory`, sampling, density compensation and
   gridding as the importer does them), the matrix and FOV, and the coils combined as the
   importer combines them (`rinq_jax.data.acquisition.multicoil`); the schedule and trajectory are
   kept in ``DIR/protocol.npz``, the matching dictionary in ``DIR/cache``;
2. imports the scan itself into ``DIR/scans/<name>.h5`` (`ismrmrd_import.import_ismrmrd`).

The checkpoint of a run on ``DIR`` records the schedule's hash and the trajectory's signature;
``eval.py`` refuses a scan of another schedule or trajectory, naming the difference. A
malformed input is one error line naming the file and field (exit status 2), before anything
is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from rinq_jax.data.datasets import brain_slices, synthetic
from rinq_jax.data.files.format import MrfFormatError
from rinq_jax.data.raw import ismrmrd_import, ismrmrd_scan
from rinq_jax.errors import InputError

PROG = "python -m rinq_jax.scanner"
SCANS = "scans"


def protocol_config(
    scan: ismrmrd_scan.RawScan, base: synthetic.BrainDataConfig
) -> synthetic.BrainDataConfig:
    """``base`` (subjects, slices, SNR, seed, ...) acquired as ``scan`` was."""
    return base.with_protocol(
        scan.sequence,
        scan.trajectory,
        matrix=scan.matrix,
        fov_mm=scan.fov_mm,
        n_coils=scan.layout.n_coils,
    )


def prepare(
    raw: Path,
    sequence_csv: Path,
    out_dir: Path,
    *,
    base: synthetic.BrainDataConfig = synthetic.PRESETS["brain"],
    progress: bool = True,
    options: ismrmrd_scan.ScanOptions = ismrmrd_scan.ScanOptions(),
) -> tuple[synthetic.BrainDataConfig, Path]:
    """Steps 1-2 of the module docstring; returns (the dataset's config, the imported scan).

    ``base``: the dataset's subjects, slices, SNR and seed (`protocol_config`); ``options``:
    how to read the scan.
    """
    with ismrmrd_scan.open_scan(raw, sequence_csv, options) as scan:
        config = protocol_config(scan, base)
    synthetic.generate(config, out_dir, progress=progress)
    imported = ismrmrd_import.import_ismrmrd(
        raw,
        sequence_csv,
        out_dir / SCANS / f"{raw.stem}.h5",
        options,
        nthreads=brain_slices.NUFFT_THREADS,
        progress=progress,
    )
    return config, imported


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser(
        "prepare", help="simulate training and test data through a raw scan's acquisition"
    )
    p.add_argument("raw", type=Path, help="the scan's raw k-space (ISMRMRD, HDF5)")
    p.add_argument("--sequence", type=Path, required=True, help="the schedule (CSV)")
    p.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    p.add_argument(
        "--preset", choices=sorted(synthetic.PRESETS), default="brain", help="(default: brain)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of anatomies, values and noise")
    ismrmrd_scan.add_scan_flags(p)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv=None) -> int:
    """Command line (module docstring)."""
    args = _parser().parse_args(argv)
    start = time.perf_counter()
    try:
        config, imported = prepare(
            args.raw,
            args.sequence,
            args.out,
            base=dataclasses.replace(synthetic.PRESETS[args.preset], seed=args.seed),
            progress=not args.no_progress,
            options=ismrmrd_scan.scan_options(args),
        )
    except MrfFormatError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except (InputError, OSError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    trajectory = config.trajectory
    print(
        f"{args.out}: brain data of the scan's protocol ({config.n_reps} repetitions, "
        f"{trajectory.n_interleaves} interleaves, {config.matrix} x {config.matrix} at "
        f"{config.fov_mm:g} mm, {config.n_coils} coils; {time.perf_counter() - start:.0f} s); "
        f"the scan: {imported}"
    )
    print(f"next: python train.py --model rnn3 --data-dir {args.out} --workdir runs/<name>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
