"""Metrics to `metrics.csv` and TensorBoard event files (tensorboardX, no TensorFlow).

Every `MetricsWriter.write` appends one CSV row and the same numbers as TensorBoard scalars
``<split>/<name>``. On resume the CSV drops the rows the interrupted run logged after its last
checkpoint, and the event file starts with TensorBoard's purge marker after that step
(`tensorboardX.SummaryWriter`'s ``purge_step``), so both read like one unbroken run.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

from tensorboardX import SummaryWriter

from rinq_jax.data.subjects.tissues import SCORED_TISSUES

CSV_COLUMNS = (
    "step",
    "epoch",
    "split",
    "loss",
    "grad_norm",
    "val_loss_ms",
    "rmse_t1_ms",
    "rmse_t2_ms",
    *(
        f"{metric}_{tissue}_{unit}"
        for tissue in SCORED_TISSUES
        for metric, unit in (("val_loss", "ms"), ("rme_t1", "pct"), ("rme_t2", "pct"))
    ),
    "patches_per_s",
    "wall_s",
)


class MetricsWriter:
    """Appends rows to `workdir/metrics.csv` and scalars to a TensorBoard event file.

    On resume from step `resume_step`, CSV rows logged after that step (by the run that was
    interrupted, after its last checkpoint) are dropped, so the file reads like one unbroken run.
    """

    def __init__(self, workdir: str | Path, resume_step: int = 0):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.workdir / "metrics.csv"
        rows = []
        if self.csv_path.exists():
            with self.csv_path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with self.csv_path.open("w", newline="") as f:  # rewrite: header plus the kept rows
            w = csv.DictWriter(f, CSV_COLUMNS)
            w.writeheader()
            w.writerows(rows)
        # TensorBoard hides earlier files' events at steps >= purge_step; the suffix keeps a
        # resume within the same second from overwriting the interrupted run's file.
        self.tensorboard = SummaryWriter(
            str(self.workdir / "tensorboard"),
            purge_step=resume_step + 1 if resume_step else None,
            filename_suffix=f".step{resume_step}",
        )

    def write(self, step: int, split: str, metrics: Mapping[str, float]) -> None:
        """One CSV row (known columns only) and TensorBoard scalars "<split>/<name>"."""
        row = {"step": step, "split": split}
        row.update({k: v for k, v in metrics.items() if k in CSV_COLUMNS})
        with self.csv_path.open("a", newline="") as f:
            csv.DictWriter(f, CSV_COLUMNS).writerow(row)
        for k, v in metrics.items():
            if k not in ("step", "epoch") and isinstance(v, int | float):
                self.tensorboard.add_scalar(f"{split}/{k}", float(v), step)
        self.tensorboard.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.tensorboard.close()


class NoWriter:
    """Stands in for `MetricsWriter` where nothing is written (hosts other than the first)."""

    def write(self, step, split, metrics) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""
