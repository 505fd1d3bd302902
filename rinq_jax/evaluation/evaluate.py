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

A slice without true maps (a researcher's own scan) cannot be scored: its maps are the output.
For it every method's T1, T2 and M0 are always written as NIfTI
(``nifti/<slice>_<model>_{t1_ms,t2_ms,m0}.nii.gz``, M0 as its magnitude: dictionary matching's
matched scale, for a network the least-squares fit `inference.m0_map`), its figure shows the
predicted maps without error panels (`figures.prediction_grid`), and its entry in
``metrics.json`` holds a summary of the predicted maps (`map_summary`) instead of errors. The
pooled ``aggregate`` covers the slices with true maps only (None when there are none),
``seconds_per_slice`` every slice, and ``files_without_truth`` lists the slices without.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rinq_jax.data import DEFAULT_DATA_DIR, io
from rinq_jax.data.nifti import pixel_size_mm, write_nifti
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


def _write_maps(
    folder: Path, info: io.SliceInfo, label: str, t1_ms, t2_ms, m0=None
) -> dict[str, str]:
    """NIfTI files ``<slice>_<label>_{t1_ms,t2_ms[,m0]}.nii.gz`` with the slice's pixel size.

    Returns:
        The paths written, by map name (``m0`` holds |M0|).

    """
    folder.mkdir(parents=True, exist_ok=True)
    pixel_mm = pixel_size_mm(info)
    stem = Path(info.path).stem
    maps = {"t1_ms": t1_ms, "t2_ms": t2_ms}
    if m0 is not None:
        maps["m0"] = np.abs(m0)
    return {
        name: str(write_nifti(folder / f"{stem}_{_slug(label)}_{name}.nii.gz", values, pixel_mm))
        for name, values in maps.items()
    }


def map_summary(t1_ms, t2_ms, m0, mask) -> dict[str, Any]:
    """Summary of predicted maps of a slice without truth: pixel count and medians in the mask.

    Args:
        t1_ms: float[H, W] predicted T1 in ms.
        t2_ms: float[H, W] predicted T2 in ms.
        m0: complex or real [H, W] predicted proton density (arbitrary units).
        mask: bool[H, W].

    Returns:
        {"n_pixels", "t1_median_ms", "t2_median_ms", "m0_median" (of |M0|)}.

    """
    mask = np.asarray(mask, bool)
    return {
        "n_pixels": int(mask.sum()),
        "t1_median_ms": float(np.median(t1_ms[mask])),
        "t2_median_ms": float(np.median(t2_ms[mask])),
        "m0_median": float(np.median(np.abs(m0[mask]))),
    }


def _score(
    pred_t1_ms, pred_t2_ms, truth: io.MrfSlice, mask
) -> tuple[dict[str, Any], np.ndarray, np.ndarray | None]:
    """Per-slice metrics and the masked predicted pixels float[N, 2] (+ tissue labels)."""
    tissue = truth.tissue
    m = metrics.map_metrics(pred_t1_ms, pred_t2_ms, truth.t1_ms, truth.t2_ms, mask, tissue)
    pixels = metrics.masked_pixels(pred_t1_ms, pred_t2_ms, mask)
    return m, pixels, None if tissue is None else tissue[mask]


def _predictions(checkpoints, labels, forwards, info, batch_size, dm, m0_for_networks):
    """Yield ``(label, t1_ms, t2_ms, m0 or None, seconds, extra entry fields)`` per method.

    ``dm`` is the matching dictionary (None: no dictionary matching); network M0 maps are
    fitted (`inference.m0_map`, not timed) only when ``m0_for_networks``.
    """
    for label, c, forward in zip(labels, checkpoints, forwards, strict=True):
        p = inference.predict_slice(c, info, batch_size=batch_size, forward=forward)
        m0 = inference.m0_map(info.path, p.t1_ms, p.t2_ms) if m0_for_networks else None
        yield label, p.t1_ms, p.t2_ms, m0, p.seconds, {}
    if dm is not None:
        d = compare.match_slice(info, dm)
        extra = {"maps_from": d.source, "agreement_with_stored": d.agreement}
        yield DM_LABEL, d.t1_ms, d.t2_ms, d.m0, d.seconds, extra


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
        files: slice files with a mask; those with true ``t1_ms``/``t2_ms`` maps are scored,
            those without get their maps written (see the module docstring).
        out_dir: output folder (created).
        labels: one label per checkpoint (default `labels_for`).
        compare_dm: also score and time dictionary matching.
        dm_cache: dictionary cache folder (default: ``cache/`` next to each slice).
        make_figures: write one Fig. 2-style PNG per slice.
        nifti: write the predicted maps of the slices with truth as NIfTI (always written for
            the slices without).
        batch_size: patches per forward call.
        mean_ms: (T1, T2) in ms of the mean predictor to score as a baseline (the training
            targets' mean, `inference.Checkpoint.train_target_mean_ms`), or None.
        log: where progress lines go (``print``; a no-op to silence).

    Returns:
        The dict written to ``out_dir/metrics.json`` (see the module docstring).

    Raises:
        inference.IncompatibleCheckpointError: a checkpoint does not fit a file (checked for
            every file before any work).
        MrfFormatError: a malformed file.
        ValueError: a file without true maps lacks ``acquisition/fov_mm`` (its NIfTI pixel
            size; checked before any work).

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
            pixel_size_mm(info)  # its maps are its output: they need a pixel size
        for c in checkpoints:
            inference.check_compatible(c.metadata, info)
    has_truth = [info.has_target("true") for info in infos]
    out_dir.mkdir(parents=True, exist_ok=True)
    forwards = [inference.make_forward(c) for c in checkpoints]
    use_mean = bool(mean_ms) and any(has_truth)
    names = labels + ([DM_LABEL] if compare_dm else []) + ([MEAN_LABEL] if use_mean else [])
    per_slice: dict[str, dict[str, Any]] = {n: {} for n in names}
    pooled: dict[str, list] = {n: [] for n in names}  # pixels of the slices with truth
    seconds: dict[str, list[float]] = {n: [] for n in names}  # of every slice
    truths, tissues = [], []
    dm_info: dict[str, Any] = {}
    dictionary = None
    for path, info, scored in zip(files, infos, has_truth, strict=True):
        fields = [n for n in ("t1_ms", "t2_ms", "tissue") if n in info.fields]
        truth = io.read_slice(path, fields=fields)
        if compare_dm and dictionary is None:
            dictionary = compare.matching_dictionary(info, dm_cache)
            dm_info = {
                "atoms": int(dictionary.atoms.shape[0]),
                "rank": dictionary.rank,
                "sequence_hash": dictionary.sequence_hash,
            }
        rows: list[figures.MapRow] = []
        methods = _predictions(
            checkpoints, labels, forwards, info, batch_size, dictionary, not scored
        )
        for label, t1_ms, t2_ms, m0, time_s, extra in methods:
            seconds[label].append(time_s)
            if scored:
                m, pixels, _ = _score(t1_ms, t2_ms, truth, truth.mask)
                per_slice[label][path.name] = {**m, "seconds": time_s, **extra}
                pooled[label].append(pixels)
                rows.append(figures.MapRow(label, t1_ms, t2_ms))
                if nifti:
                    _write_maps(out_dir / "nifti", info, label, t1_ms, t2_ms)
                log(f"{path.name} {label}: val loss {m['val_loss_ms']:.1f} ms, {time_s:.2f} s")
            else:
                written = _write_maps(out_dir / "nifti", info, label, t1_ms, t2_ms, m0)
                summary = map_summary(t1_ms, t2_ms, m0, truth.mask)
                per_slice[label][path.name] = {
                    **summary,
                    "seconds": time_s,
                    **extra,
                    "nifti": written,
                }
                rows.append(figures.MapRow(label, t1_ms, t2_ms, m0))
                log(
                    f"{path.name} {label}: no true maps; median T1 {summary['t1_median_ms']:.0f} "
                    f"ms, T2 {summary['t2_median_ms']:.0f} ms, {time_s:.2f} s"
                )
        if scored and use_mean:
            constant = [np.where(truth.mask, v, 0.0).astype(np.float32) for v in mean_ms]
            m, pixels, _ = _score(*constant, truth, truth.mask)
            per_slice[MEAN_LABEL][path.name] = {**m, "seconds": 0.0}
            pooled[MEAN_LABEL].append(pixels)
            seconds[MEAN_LABEL].append(0.0)
        if scored:
            truths.append(metrics.masked_pixels(truth.t1_ms, truth.t2_ms, truth.mask))
            tissues.append(None if truth.tissue is None else truth.tissue[truth.mask])
        if make_figures:
            (out_dir / "figures").mkdir(exist_ok=True)
            if scored:
                fig = figures.map_grid(rows, truth.t1_ms, truth.t2_ms, truth.mask, title=path.name)
            else:
                fig = figures.prediction_grid(rows, truth.mask, title=f"{path.name} (no true maps)")
            figures.save_figure(fig, out_dir / "figures" / f"{path.stem}.png")
    all_tissues = None if any(t is None for t in tissues) else tissues
    result: dict[str, Any] = {
        "files": [str(f) for f in files],
        "files_without_truth": [str(f) for f, t in zip(files, has_truth, strict=True) if not t],
        "models": {},
    }
    for name in names:
        entry: dict[str, Any] = {
            "aggregate": (
                metrics.pooled_metrics(pooled[name], truths, all_tissues) if truths else None
            ),
            "seconds_per_slice": float(np.mean(seconds[name])),
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
    """The headline figures of one model's `evaluate` entry: loss, RME ± std per parameter, time.

    Raises:
        ValueError: the entry has no aggregate (none of its slices had true maps).

    """
    a = entry["aggregate"]
    if a is None:
        raise ValueError("entry_summary: no slice with true maps was scored")
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
    unscored = {Path(f).name for f in result.get("files_without_truth", [])}
    for name, entry in result["models"].items():
        a = entry["aggregate"]
        if a is not None:
            lines.append(
                f"{name:28s} val loss {a['val_loss_ms']:8.2f} ms | "
                f"T1 RME {a['t1']['rme_pct']:6.2f} ± {a['t1']['rme_std_pct']:6.2f} % | "
                f"T2 RME {a['t2']['rme_pct']:6.2f} ± {a['t2']['rme_std_pct']:6.2f} % | "
                f"{entry['seconds_per_slice']:.3f} s/slice"
            )
        maps_only = [s for n, s in entry["slices"].items() if n in unscored]
        if maps_only:
            t1 = np.median([s["t1_median_ms"] for s in maps_only])
            t2 = np.median([s["t2_median_ms"] for s in maps_only])
            lines.append(
                f"{name:28s} maps only ({len(maps_only)} slice(s) without true maps): "
                f"median T1 {t1:.0f} ms, T2 {t2:.0f} ms | "
                f"{entry['seconds_per_slice']:.3f} s/slice"
            )
    return lines
