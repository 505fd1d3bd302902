"""Does a network measure? Scores per scale bin of the out-of-range brain test set.

    python -m rinq_jax.experiments.out_of_range --ckpt runs/rnn3-complex [more runs]

Evaluates the checkpoints, dictionary matching (B1 free, measured B1 map, B1 = 1) and the
signal-free recognition baseline on the subjects of `rinq_jax.data.out_of_range` (written by
``python -m rinq_jax.data.generate --out DATA --test-set out-of-range`` when missing), one
subject (one scale bin) at a time, and writes ``OUT/table.md``: per bin, the median relative
T1 error of pure (>= 90 %) white and grey matter at that bin's T1 scale and the T2 error at
its T2 scale, against the single-compartment truth. A network measures only where it beats
recognition in every bin. ``OUT/<bin>/metrics.json`` hold the full `evaluate.evaluate` results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rinq_jax.configs.data import DEFAULT_DATA_DIR
from rinq_jax.data import io, out_of_range, synthetic
from rinq_jax.data.format import MrfFormatError
from rinq_jax.evaluation import evaluate, export, inference

TISSUES = ("wm", "gm")


def _bins(files: list[Path]) -> dict[tuple[float, float], list[Path]]:
    """(T1 scale, T2 scale) -> the files of that subject."""
    groups: dict[tuple[float, float], list[Path]] = {}
    for path in files:
        g = io.inspect(path).generator
        groups.setdefault((g["t1_scale"], g["t2_scale"]), []).append(path)
    return dict(sorted(groups.items()))


def median_errors(entry: dict) -> dict[str, float]:
    """``{"wm_t1", "wm_t2", "gm_t1", "gm_t2"}``: pure-pixel median errors, single truth, %."""
    pure = entry["regions"]["single"]["classes"]["pure"]
    return {f"{t}_{p}": pure[t][p]["median_pct"] for t in TISSUES for p in ("t1", "t2")}


def run(ckpts: list[Path], data_dir: Path, out: Path, log=print) -> dict:
    """Evaluate every bin; returns {method: [(t1_scale, t2_scale, median_errors), ...]}."""
    config = synthetic.read_manifest(data_dir)
    if config is None:
        raise ValueError(f"{data_dir}: not a generated brain dataset (no manifest)")
    files = out_of_range.generate(config, data_dir, progress=False)
    checkpoints = [inference.load_checkpoint(c) for c in ckpts]
    rows: dict[str, list] = {}
    for (t1_scale, t2_scale), paths in _bins(files).items():
        result = evaluate.evaluate(
            checkpoints,
            paths,
            out / f"t1x{t1_scale:g}_t2x{t2_scale:g}",
            compare_dm=True,
            log=lambda *_: None,
        )
        for name, entry in result["models"].items():
            rows.setdefault(name, []).append((t1_scale, t2_scale, median_errors(entry)))
        log(f"T1 x{t1_scale:g}, T2 x{t2_scale:g}: {len(paths)} slices scored")
    export.write_text(out / "table.md", table(rows))
    return rows


def table(rows: dict) -> str:
    """Markdown: one row per method and bin, median errors of pure WM and GM (%)."""
    lines = [
        "| method | T1 scale | T2 scale | WM T1 | WM T2 | GM T1 | GM T2 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entries in rows.items():
        for t1_scale, t2_scale, e in entries:
            values = " | ".join(f"{e[k]:.1f}" for k in ("wm_t1", "wm_t2", "gm_t1", "gm_t2"))
            lines.append(f"| {name} | x{t1_scale:g} | x{t2_scale:g} | {values} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """Command line (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ckpt", type=Path, nargs="+", required=True, help="training run directories"
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="brain dataset")
    parser.add_argument(
        "--out", type=Path, help="output folder (default: the first CKPT/out-of-range)"
    )
    args = parser.parse_args(argv)
    out = args.out or args.ckpt[0] / "out-of-range"
    try:
        run(args.ckpt, args.data, out)
    except (MrfFormatError, ValueError, FileNotFoundError) as err:
        print(f"out_of_range: error: {err}", file=sys.stderr)
        return 1
    print((out / "table.md").read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
