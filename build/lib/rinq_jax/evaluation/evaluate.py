"""Evaluate checkpoints (and dictionary matching) on slice files: metrics.json, figures, NIfTI.

`evaluate` is what ``eval.py`` and the experiments call. For each slice it predicts the maps of
every checkpoint (`inference.predict_slice`), optionally matches the dictionary
(`compare.match_slice`), scores everything against the slice's true T1/T2 (`metrics`), and
writes, under ``out_dir``:

* ``metrics.json``: per model, per slice and pooled over the slices: the paper's validation loss
  (sqrt of the MSE over T1 and T2, ms), RMSE, MAE, bias, RME +- std per parameter, the same per
  tissue, the inference time per slice; written atomically;
* ``figures/<slice>.png``: Fig. 2-style grid (truth, models, dictionary matching);
* ``nifti/<slice>_<model>_{t1,t2}_ms.nii.gz`` with ``nifti=True``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rinq_jax.data import DEFAULT_DATA_DIR, io
from rinq_jax.data.format import MrfFormatError
from rinq_jax.evaluation import compare, export, figures, inference, metrics

DM_LABEL = "dictionary matching"
MEAN_LABEL = "training mean"


def split_test_files(checkpoint: inference.Checkpoint) -> list[Path]:
    """The test-split slice files recorded in a checkpoint, as paths.

    The metadata holds file names (``data_files["test"]``), the config's ``data_dir`` (None:
    the quick dataset in ``data/quick``), taken from the current directory when relative, and
    that folder's absolute path at training time, tried when the first has not the files.

    Raises:
        ValueError: the checkpoint records no test files.
        FileNotFoundError: a recorded file is missing (the message suggests --data).

    """
    meta = checkpoint.metadata
    names = (meta.get("data_files") or {}).get("test") or []
    if not names:
        raise ValueError(
            f"{checkpoint.run_dir}: the checkpoint records no test-split files; pass --data FILE ..."
        )
    data_dir = Path(meta["config"].get("data_dir") or DEFAULT_DATA_DIR)
    paths = [data_dir / name for name in names]
    if not all(p.exists() for p in paths) and meta.get("data_dir_abs"):
        data_dir = Path(meta["data_dir_abs"])
        paths = [data_dir / name for name in names]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"{checkpoint.run_dir}: test-split files not found: {', '.join(missing)} "
            f"(data_dir {data_dir} as recorded in the checkpoint; pass --data FILE ... instead)"
        )
    return paths


def labels_for(checkpoints: Sequence[inference.Checkpoint]) -> list[str]:
    """Row labels: the model name ("rnn3 complex"), with the run folder when names repeat."""
    names = [c.name for c in checkpoints]
    return [
        f"{n} [{Path(c.run_dir).name}]" if names.count(n) > 1 else n
        for n, c in zip(names, checkpoints, strict=True)
    ]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def _write_maps(folder: Path, path: Path, label: str, t1_ms, t2_ms) -> None:
    """NIfTI files ``<slice>_<label>_{t1,t2}_ms.nii.gz`` with the slice's pixel size."""
    folder.mkdir(parents=True, exist_ok=True)
    pixel_mm = export.pixel_size_mm(io.inspect(path))
    for name, values in (("t1_ms", t1_ms), ("t2_ms", t2_ms)):
        export.write_nifti(folder / f"{path.stem}_{_slug(label)}_{name}.nii.gz", values, pixel_mm)


def _score(
    pred_t1_ms, pred_t2_ms, truth: io.MrfSlice, mask
) -> tuple[dict[str, Any], np.ndarray, np.ndarray | None]:
    """Per-slice metrics and the masked predicted pixels float[N, 2] (+ tissue labels)."""
    tissue = truth.tissue
    m = metrics.map_metrics(pred_t1_ms, pred_t2_ms, truth.t1_ms, truth.t2_ms, mask, tissue)
    pixels = metrics.masked_pixels(pred_t1_ms, pred_t2_ms, mask)
    return m, pixels, None if tissue is None else tissue[mask]


def evaluate(
    checkpoints: Sequence[inference.Checkpoint],
    files: Sequence[str | Path],
    out_dir: str | Path,
    *,
    labels: Sequence[str] | None = None,
    compare_dm: bool = False,
    dm_cache: str | Path | None = None,
    make_figures: bool = True,
    nifti: bool = False,
    batch_size: int = 256,
    mean_ms: tuple[float, float] | None = None,
    log=print,
) -> dict[str, Any]:
    """Score checkpoints (and optionally dictionary matching) on slice files.

    Args:
        checkpoints: loaded with `inference.load_checkpoint`.
        files: slice files with true ``t1_ms``/``t2_ms`` maps and a mask.
        out_dir: output folder (created).
        labels: one label per checkpoint (default `labels_for`).
        compare_dm: also score and time dictionary matching.
        dm_cache: dictionary cache folder (default: ``cache/`` next to each slice).
        make_figures: write one Fig. 2-style PNG per slice.
        nifti: write the predicted maps as NIfTI.
        batch_size: patches per forward call.
        mean_ms: (T1, T2) in ms of the mean predictor to score as a baseline (the training
            targets' mean, `inference.Checkpoint.train_target_mean_ms`), or None.
        log: where progress lines go (``print``; a no-op to silence).

    Returns:
        The dict written to ``out_dir/metrics.json`` (see the module docstring).

    Raises:
        inference.IncompatibleCheckpointError: a checkpoint does not fit a file (checked for
            every file before any work).
        MrfFormatError: a malformed file, or one without the true maps.

    """
    out_dir = Path(out_dir)
    files = [Path(f) for f in files]
    if not files:
        raise ValueError("evaluate: no slice files given")
    labels = list(labels or labels_for(checkpoints))
    if len(labels) != len(checkpoints) or len(set(labels)) != len(labels):
        raise ValueError(f"evaluate: need one distinct label per checkpoint, got {labels}")
    # Check everything up front: a misfit should fail in a second, not after an hour.
    infos = [io.inspect(f) for f in files]
    for info in infos:
        if not info.has_target("true"):
            raise MrfFormatError(info.path, "t1_ms", "missing; evaluation needs the true maps")
        for c in checkpoints:
            inference.check_compatible(c.metadata, info)
    out_dir.mkdir(parents=True, exist_ok=True)
    forwards = [inference.make_forward(c) for c in checkpoints]
    names = labels + ([DM_LABEL] if compare_dm else []) + ([MEAN_LABEL] if mean_ms else [])
    per_slice: dict[str, dict[str, Any]] = {n: {} for n in names}
    pooled: dict[str, list] = {n: [] for n in names}
    truths, tissues = [], []
    dm_info: dict[str, Any] = {}
    dictionary = None
    for path in files:
        fields = [n for n in ("t1_ms", "t2_ms", "tissue") if n in io.inspect(path).fields]
        truth = io.read_slice(path, fields=fields)
        rows: list[figures.MapRow] = []
        for label, c, forward in zip(labels, checkpoints, forwards, strict=True):
            p = inference.predict_slice(c, path, batch_size=batch_size, forward=forward)
            m, pixels, _ = _score(p.t1_ms, p.t2_ms, truth, truth.mask)
            per_slice[label][path.name] = {**m, "seconds": p.seconds}
            pooled[label].append((pixels, p.seconds))
            rows.append(figures.MapRow(label, p.t1_ms, p.t2_ms))
            if nifti:
                _write_maps(out_dir / "nifti", path, label, p.t1_ms, p.t2_ms)
            log(f"{path.name} {label}: val loss {m['val_loss_ms']:.1f} ms, {p.seconds:.2f} s")
        if compare_dm:
            if dictionary is None:
                dictionary = compare.matching_dictionary(path, dm_cache)
                dm_info = {
                    "atoms": int(dictionary.atoms.shape[0]),
                    "rank": dictionary.rank,
                    "seq_hash": dictionary.seq_hash,
                }
            d = compare.match_slice(path, dictionary)
            m, pixels, _ = _score(d.t1_ms, d.t2_ms, truth, truth.mask)
            per_slice[DM_LABEL][path.name] = {
                **m,
                "seconds": d.seconds,
                "maps_from": d.source,
                "agreement_with_stored": d.agreement,
            }
            pooled[DM_LABEL].append((pixels, d.seconds))
            rows.append(figures.MapRow(DM_LABEL, d.t1_ms, d.t2_ms))
            if nifti:
                _write_maps(out_dir / "nifti", path, DM_LABEL, d.t1_ms, d.t2_ms)
            log(f"{path.name} {DM_LABEL}: val loss {m['val_loss_ms']:.1f} ms, {d.seconds:.2f} s")
        if mean_ms:
            constant = [np.where(truth.mask, v, 0.0).astype(np.float32) for v in mean_ms]
            m, pixels, _ = _score(*constant, truth, truth.mask)
            per_slice[MEAN_LABEL][path.name] = {**m, "seconds": 0.0}
            pooled[MEAN_LABEL].append((pixels, 0.0))
        truths.append(metrics.masked_pixels(truth.t1_ms, truth.t2_ms, truth.mask))
        tissues.append(None if truth.tissue is None else truth.tissue[truth.mask])
        if make_figures:
            (out_dir / "figures").mkdir(exist_ok=True)
            fig = figures.map_grid(rows, truth.t1_ms, truth.t2_ms, truth.mask, title=f"{path.name}")
            figures.save_figure(fig, out_dir / "figures" / f"{path.stem}.png")
    all_tissues = None if any(t is None for t in tissues) else tissues
    result: dict[str, Any] = {"files": [str(f) for f in files], "models": {}}
    for name in names:
        seconds = [s for _, s in pooled[name]]
        entry: dict[str, Any] = {
            "aggregate": metrics.pooled_metrics([p for p, _ in pooled[name]], truths, all_tissues),
            "seconds_per_slice": float(np.mean(seconds)),
            "slices": per_slice[name],
        }
        if name in labels:
            c = checkpoints[labels.index(name)]
            entry.update(
                run_dir=str(c.run_dir),
                step=c.step,
                model=c.metadata["model"],
                input_kind=c.metadata["input_kind"],
            )
        elif name == DM_LABEL:
            entry["dictionary"] = dm_info
        else:
            entry["constant_ms"] = list(mean_ms)
        result["models"][name] = entry
    export.write_json(out_dir / "metrics.json", result)
    return result


def entry_summary(entry: dict[str, Any]) -> dict[str, float]:
    """The headline figures of one model's `evaluate` entry: loss, RME ± std per parameter, time."""
    a = entry["aggregate"]
    return {
        "loss_ms": a["val_loss_ms"],
        "t1_rme_pct": a["t1"]["rme_pct"],
        "t1_rme_std_pct": a["t1"]["rme_std_pct"],
        "t2_rme_pct": a["t2"]["rme_pct"],
        "t2_rme_std_pct": a["t2"]["rme_std_pct"],
        "seconds_per_slice": entry["seconds_per_slice"],
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    """Human-readable one line per model of an `evaluate` result."""
    lines = []
    for name, entry in result["models"].items():
        a = entry["aggregate"]
        lines.append(
            f"{name:28s} val loss {a['val_loss_ms']:8.2f} ms | "
            f"T1 RME {a['t1']['rme_pct']:6.2f} ± {a['t1']['rme_std_pct']:6.2f} % | "
            f"T2 RME {a['t2']['rme_pct']:6.2f} ± {a['t2']['rme_std_pct']:6.2f} % | "
            f"{entry['seconds_per_slice']:.3f} s/slice"
        )
    return lines
