"""The scanner path measured end to end: raw multi-coil ISMRMRD -> import -> maps, scored.

    python -m rinq_jax.experiments.scanner_roundtrip --ckpt runs/rnn3-complex --coils 8

For the held-out test subjects of a generated brain dataset (default ``data/brain``, the data
of the README's command):

1. their raw N-coil k-space is written as ISMRMRD (`ismrmrd_export.export_brain_test`, kept in
   ``DATA/ismrmrd-<N>coil/``), as a scanner's converter would leave it;
2. each raw file is imported (`ismrmrd_import.import_ismrmrd`: gridding, Walsh coil
   combination, mask) into ``OUT/imported/``, the slice file a user gets from a scan;
3. the imported series is scored: a copy with the test slice's true maps and brain mask
   (``OUT/scored/``) goes through `evaluate.evaluate` with the checkpoint and dictionary
   matching, so ``OUT/eval/metrics.json`` holds the same per-tissue metrics as ``eval.py`` on
   the generator's own single-coil slices.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rinq_jax.configs.data import DEFAULT_DATA_DIR
from rinq_jax.data.datasets import synthetic
from rinq_jax.data.files import io
from rinq_jax.data.raw import ismrmrd_export
from rinq_jax.data.raw.ismrmrd_import import import_ismrmrd
from rinq_jax.errors import InputError
from rinq_jax.evaluation import evaluate, inference
from rinq_jax.evaluation.results import EvaluationResult


def scored_copy(imported: Path, truth: Path, out: Path) -> Path:
    """``imported``'s series with ``truth``'s brain mask and every map of it, at ``out``.

    The truth's own series and dictionary-matching maps stay behind (evaluation matches the
    imported series again); its true maps, tissue labels, fractions, B1 and measured B1 map
    come along, so the imported scan is scored like a test slice.
    """
    scan = io.read_slice(imported, fields=["signals"])
    reference = io.read_slice(truth)
    maps = {
        name: value
        for name, value in reference.arrays().items()
        if name not in ("signals", "dm_t1_ms", "dm_t2_ms")
    }
    io.write_slice(
        out,
        io.MrfSlice(
            subject_id=reference.subject_id,
            slice_id=reference.slice_id,
            sequence=scan.sequence,
            signals=scan.signals,
            **maps,
            acquisition=scan.acquisition,
            generator={"imported": str(imported), "truth": str(truth)},
        ),
    )
    return out


def run(ckpt: Path, data_dir: Path, n_coils: int, out: Path) -> EvaluationResult:
    """Steps 1-3 of the module docstring; returns `evaluate.evaluate`'s result."""
    config = synthetic.read_manifest(data_dir)
    if config is None:
        raise ValueError(f"{data_dir}: not a generated brain dataset (no manifest)")
    checkpoint = inference.load_checkpoint(ckpt)
    raws = ismrmrd_export.export_brain_test(config, data_dir, n_coils, progress=False)
    scored = []
    (out / "scored").mkdir(parents=True, exist_ok=True)
    for raw in raws:
        imported = import_ismrmrd(raw, raw.parent / "schedule.csv", out / "imported" / raw.name)
        truth = data_dir / "test" / raw.name
        scored.append(scored_copy(imported, truth, out / "scored" / raw.name))
    return evaluate.evaluate(
        [checkpoint],
        scored,
        out / "eval",
        compare_dm=True,
        dm_cache=data_dir / "cache",
        mean_ms=checkpoint.metadata.train_target_mean_ms,
    )


def main(argv=None) -> int:
    """Command line (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", type=Path, required=True, help="a training run directory")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="a brain dataset")
    p.add_argument("--coils", type=int, default=8, help="receive coils (default 8)")
    p.add_argument("--out", type=Path, default=Path("results/scanner-roundtrip"))
    args = p.parse_args(argv)
    try:
        result = run(args.ckpt, args.data, args.coils, args.out)
    except InputError as err:
        print(f"scanner_roundtrip: error: {err}", file=sys.stderr)
        return 1
    for line in result.summary_lines():
        print(line)
    print(f"wrote {args.out / 'eval' / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
