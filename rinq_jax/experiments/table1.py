"""The paper's Table 1 on the generated brain data: every row with two seeds, one test set.

    python -m rinq_jax.experiments.table1
    python -m rinq_jax.experiments.table1 --steps-fraction 2 --seeds 0 1 2
    python -m rinq_jax.experiments.table1 --recipe paper                 # Table 5 training

Rows (Hoppe et al., MICCAI 2019, Table 1, plus DRONE, Cohen et al. 2018): CNN1 and RNN1 on
magnitude input, CNN1, RNN1 and RNN3 on complex input, RNN3* (RNN3 trained on more data).
Each row is trained once per seed (the seed sets the initial weights, the order and the
draws of the training stream) in ``WORKDIR/<row>-seed<k>``; a finished run (its
``done.json``) is skipped, an unfinished one resumes from its checkpoint; a run of another
length needs another WORKDIR (its learning-rate schedule differs).

Data: the default brain dataset (`rinq_jax.data.datasets.synthetic`, preset "brain", generated on
first use in ``data/brain``). The paper contrasts a small training set (12 slices of 4 subjects) with
a larger one (28 slices); here the small set is the first `configs.experiments.SMALL_SUBJECTS` training subjects
(12 slices) and RNN3* trains on all of them (48 slices). Every row validates and is tested on
the dataset's held-out subjects: a split by subject, stricter than the paper's Table 1 (random
slices, so its test slices had training slices of the same subject beside them).

Training: the ``rinq`` recipe (`rinq_jax.configs.recipes`) or the paper's Table 5
(``--recipe paper``), for ``steps_fraction`` of the recipe's steps of the README's main
command (0.5 by default, a CPU budget).

Scoring: every run on the same test slices with `rinq_jax.evaluation.evaluate`; dictionary
matching beside them. Each cell gives the mean over seeds and every seed's value. The paper's
ordering (complex over magnitude, RNN over CNN, RNN3 with its quantile layer over RNN1, more
data over less) is checked pair by pair on the test loss: a difference counts only when the
seeds' ranges do not overlap. Outputs in WORKDIR: ``table1.md``, ``table1.json``, ``fig2.png``
(the first test slice, every row's first seed) and ``eval/`` (metrics.json per seed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rinq_jax.cli import non_negative_int, positive_float
from rinq_jax.configs import recipes
from rinq_jax.configs.data import DEFAULT_DATA_DIR
from rinq_jax.configs.experiments import (
    SMALL_SUBJECTS,
    TABLE1_ORDERING,
    TABLE1_ROWS,
    TABLE1_SEEDS,
    TABLE1_STEPS_FRACTION,
    Table1Setup,
    table1_config,
)
from rinq_jax.data.datasets import synthetic
from rinq_jax.data.subjects.tissues import SCORED_TISSUES
from rinq_jax.errors import InputError, InputNotFoundError
from rinq_jax.evaluation import evaluate as evaluate_lib
from rinq_jax.evaluation import export, inference
from rinq_jax.evaluation.results import MethodResult
from rinq_jax.training.config import TrainConfig
from rinq_jax.training.loop import TrainSummary, train_and_evaluate

DONE_FILE = "done.json"


def train_run(config: TrainConfig, log=print) -> TrainSummary:
    """Train one run unless its ``done.json`` says it ran its steps; returns its summary."""
    done = Path(config.workdir) / DONE_FILE
    if done.exists():
        summary = TrainSummary(**json.loads(done.read_text()))
        if summary.final_step != config.steps:  # its learning-rate schedule differs
            raise InputError(
                f"{done.parent} ran {summary.final_step} steps, this setup asks for "
                f"{config.steps}; use another --workdir"
            )
        log(f"{done.parent.name}: finished earlier, skipped")
        return summary
    log(f"{Path(config.workdir).name}: training {config.steps} steps ...")
    summary = train_and_evaluate(config)
    export.write_json(done, dataclasses.asdict(summary))
    return summary


# --------------------------------------------------------------------------- tables


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _cell(values: Sequence[float], digits: int = 1) -> str:
    """``mean (v1, v2, ...)`` over seeds."""
    if len(values) == 1:
        return _fmt(values[0], digits)
    seeds = ", ".join(_fmt(v, digits) for v in values)
    return f"{_fmt(float(np.mean(values)), digits)} ({seeds})"


def _scores(method: MethodResult) -> dict[str, float]:
    """Test loss and per-tissue T1/T2 RME of one method of an evaluation."""
    out = {"test_loss_ms": method.headline()["loss_ms"]}
    for tissue in SCORED_TISSUES:
        for p in ("t1", "t2"):
            out[f"rme_{p}_{tissue}_pct"] = method.tissue_rme_pct(tissue, p)
    return out


def ordering_checks(results: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The paper's ordering, pair by pair, on the seeds' test losses.

    Verdict "holds" when every seed of the better row beats every seed of the worse one,
    "reversed" when the opposite holds, else "within seed noise".
    """
    checks = []
    for claim, better, worse in TABLE1_ORDERING:
        if better not in results or worse not in results:
            continue
        b, w = results[better]["test_loss_ms"], results[worse]["test_loss_ms"]
        verdict = (
            "holds" if max(b) < min(w) else "reversed" if min(b) > max(w) else "within seed noise"
        )
        checks.append(
            {
                "claim": claim,
                "better": better,
                "worse": worse,
                "better_ms": float(np.mean(b)),
                "worse_ms": float(np.mean(w)),
                "verdict": verdict,
            }
        )
    return checks


def markdown(results: Mapping[str, Mapping[str, Any]], setup: Table1Setup, test_files) -> str:
    """table1.md: the rows with the paper's numbers, per-tissue errors, the ordering checks."""
    seeds = ", ".join(str(s) for s in setup.seeds)
    lines = [
        f"# Table 1 on the brain data (recipe `{setup.recipe}`, seeds {seeds})",
        "",
        f"Test: {len(test_files)} slices of the held-out subjects "
        f"({', '.join(Path(f).stem for f in test_files)}), the same for every row. Loss: sqrt of "
        "the MSE over T1 and T2 in ms (the paper's). RME: relative mean error [%] per dominant "
        "tissue, T1 / T2. Cells: mean over seeds (each seed's value).",
        "",
        "| Row | steps | train subjects | test loss [ms] | paper val loss [ms] | "
        "WM T1 / T2 | GM T1 / T2 | CSF T1 / T2 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results.values():
        tissues = [
            f"{_cell(r[f'rme_t1_{t}_pct'])} / {_cell(r[f'rme_t2_{t}_pct'])}" for t in SCORED_TISSUES
        ]
        lines.append(
            f"| {r['label']} | {r.get('steps', '-')} | {r.get('train_subjects', '-')} | "
            f"{_cell(r['test_loss_ms'])} | {_fmt(r.get('paper_val_loss_ms'), 2)} | "
            + " | ".join(tissues)
            + " |"
        )
    lines += ["", "## The paper's ordering", "", "| Claim | better | worse | verdict |"]
    lines.append("|---|---|---|---|")
    for c in ordering_checks(results):
        lines.append(
            f"| {c['claim']} | {c['better']} {c['better_ms']:.1f} ms | "
            f"{c['worse']} {c['worse_ms']:.1f} ms | {c['verdict']} |"
        )
    lines += ["", "![Fig. 2 on the brain data](fig2.png)", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the experiment


def _dataset(data_dir: Path):
    """The generated brain dataset's config and test files (the default one made if missing)."""
    if synthetic.read_manifest(data_dir) is None and data_dir == DEFAULT_DATA_DIR:
        synthetic.generate(synthetic.PRESETS["brain"], data_dir)
    data = synthetic.read_manifest(data_dir)
    if data is None:
        raise InputNotFoundError(f"{data_dir}: not a generated brain dataset (no manifest.json)")
    return data, [data_dir / name for name in synthetic.file_lists(data)["test"]]


def run(
    setup: Table1Setup,
    workdir: str | Path,
    *,
    rows: Sequence[str] | None = None,
    compare_dm: bool = True,
    log=print,
) -> dict[str, Any]:
    """Train every row and seed (resumable), score them on the test subjects, write the tables.

    Returns:
        {row key: results} as written to ``table1.json``: per score a list over seeds.

    """
    by_key = {r.key: r for r in TABLE1_ROWS}
    unknown = [k for k in rows or () if k not in by_key]
    if unknown:
        raise InputError(f"unknown row(s) {unknown}; valid: {', '.join(by_key)}")
    if setup.recipe not in recipes.RECIPES:
        raise InputError(f"recipe must be one of {recipes.RECIPES}, got {setup.recipe!r}")
    selected = [by_key[k] for k in rows] if rows else list(TABLE1_ROWS)
    workdir = Path(workdir)
    data, test_files = _dataset(Path(setup.data_dir))

    configs = {
        (r.key, s): table1_config(r, setup, s, workdir) for r in selected for s in setup.seeds
    }
    for config in configs.values():
        train_run(config, log)

    results: dict[str, dict[str, Any]] = {
        r.key: {
            "label": r.label,
            "model": r.model,
            "input_kind": r.input_kind,
            "steps": configs[r.key, setup.seeds[0]].steps,
            "train_subjects": data.n_train if r.more_data else SMALL_SUBJECTS,
            "paper_val_loss_ms": r.paper_val_loss_ms,
        }
        for r in selected
    }
    dm_entry = None
    for i, seed in enumerate(setup.seeds):
        checkpoints = [
            inference.load_checkpoint(configs[r.key, seed].workdir, "best") for r in selected
        ]
        result = evaluate_lib.evaluate(
            checkpoints,
            test_files,
            workdir / "eval" / f"seed-{seed}",
            labels=[r.label for r in selected],
            compare_dm=compare_dm and i == 0,
            make_figures=i == 0,
            log=log,
        )
        for r in selected:
            for name, value in _scores(result.methods[r.label]).items():
                results[r.key].setdefault(name, []).append(value)
        dm_entry = dm_entry or result.methods.get(evaluate_lib.DM_LABEL)
    if dm_entry is not None:
        results["dictionary-matching"] = {
            "label": "Dictionary matching",
            **{k: [v] for k, v in _scores(dm_entry).items()},
        }
    figure = workdir / "eval" / f"seed-{setup.seeds[0]}" / "figures" / f"{test_files[0].stem}.png"
    if figure.exists():
        shutil.copyfile(figure, workdir / ".fig2.png.tmp")
        (workdir / ".fig2.png.tmp").replace(workdir / "fig2.png")
    text = markdown(results, setup, test_files)
    export.write_text(workdir / "table1.md", text)
    export.write_json(
        workdir / "table1.json", {"rows": results, "ordering": ordering_checks(results)}
    )
    log(text)
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line; one-line errors for bad input."""
    p = argparse.ArgumentParser(
        prog="python -m rinq_jax.experiments.table1",
        description="Train the paper's Table 1 rows (plus DRONE) with several seeds on the brain "
        "data, score them and dictionary matching on the held-out test subjects; write "
        "table1.md, table1.json and fig2.png.",
    )
    p.add_argument("--workdir", type=Path, default=Path("runs/table1"), help="default: runs/table1")
    p.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="a generated brain dataset")
    p.add_argument("--recipe", choices=recipes.RECIPES, default="rinq", help="default: rinq")
    p.add_argument(
        "--steps-fraction",
        type=positive_float,
        default=TABLE1_STEPS_FRACTION,
        help="each row's steps as a fraction of the recipe's default steps (default: %(default)s)",
    )
    p.add_argument(
        "--seeds", type=non_negative_int, nargs="+", default=list(TABLE1_SEEDS), help="default: 0 1"
    )
    p.add_argument(
        "--rows", nargs="+", help=f"subset of rows: {', '.join(r.key for r in TABLE1_ROWS)}"
    )
    p.add_argument("--no-dm", action="store_true", help="skip dictionary matching")
    args = p.parse_args(argv)
    setup = Table1Setup(args.data, args.recipe, args.steps_fraction, tuple(args.seeds))
    try:
        run(setup, args.workdir, rows=args.rows, compare_dm=not args.no_dm)
    except InputError as err:
        print(f"table1: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
