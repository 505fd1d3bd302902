"""Evaluate checkpoints (and dictionary matching) on slice files: metrics.json, figures, NIfTI.

`evaluate` is what ``eval.py`` and the experiments call. For each slice it predicts the maps of
every checkpoint (`inference.predict_slice`), optionally matches the dictionary
(`compare.match_slice`), scores everything against the slice's true T1/T2 (`metrics`), and
writes, under ``out_dir``:

* ``metrics.json``: per method, per slice and pooled over the slices: the paper's validation
  loss (sqrt of the MSE over T1 and T2, ms), RMSE, MAE, bias, RME +- std per parameter, the
  same per tissue, the inference time per slice; and under ``regions``, per truth (``rate``:
  the rate-weighted mean of the compartments; ``single``: the single-compartment fit a
  one-tissue method can reach), per pixel class (pure, pure99, boundary, non-brain:
  `metrics.pixel_classes`) and tissue, the median and mean relative errors with quartiles
  (`metrics.region_metrics`), and the losses over all, non-CSF and pure pixels; written
  atomically;
* ``figures/<slice>.png``: Fig. 2-style grid (truth, models, dictionary matching);
* ``nifti/<slice>_<model>_{t1,t2}_ms.nii.gz`` with ``nifti=True``.

Methods besides the checkpoints (``compare_dm``): dictionary matching with B1 free (the
generator's stored maps), at the file's measured ``b1_map``, and at nominal B1 = 1
(`compare.match_slice`); and two signal-free baselines: the training mean, and recognition
(each tissue's population value, mixed by the pixel's true fractions: `recognition_maps`).
A network measures only where it beats recognition.

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

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rinq_jax.data.acquisition import compartments
from rinq_jax.data.files import io
from rinq_jax.data.files.nifti import pixel_size_mm
from rinq_jax.data.subjects import tissue_values, tissues
from rinq_jax.errors import InputError, InputNotFoundError
from rinq_jax.evaluation import compare, export, figures, inference, metrics
from rinq_jax.evaluation.results import EvaluationResult, MethodResult
from rinq_jax.evaluation.summary import map_summary, write_maps

DM_LABEL = "dictionary matching (B1 free)"
DM_LABELS = {
    "free": DM_LABEL,
    "map": "dictionary matching (measured B1)",
    "nominal": "dictionary matching (B1 = 1)",
}
MEAN_LABEL = "training mean"
RECOGNITION_LABEL = "recognition (population values)"
# The truths scored: the rate-weighted mean of the compartments (every slice with true maps)
# and the single-compartment fit (slices that carry it), `docs/data_format.md`.
TRUTHS = {"rate": ("t1_ms", "t2_ms"), "single": ("t1_single_ms", "t2_single_ms")}


def split_test_files(checkpoint: inference.Checkpoint) -> list[Path]:
    """The test-split slice files recorded in a checkpoint, as paths.

    The metadata holds file names (``data_files["test"]``), the config's ``data_dir`` (None:
    the default dataset, ``configs.data.DEFAULT_DATA_DIR``), taken from the current directory when relative, and
    that folder's absolute path at training time, tried when the first has not the files.

    Raises:
        ValueError: the checkpoint records no test files.
        FileNotFoundError: a recorded file is missing (the message suggests --data).

    """
    meta = checkpoint.metadata
    names = meta.data_files.get("test") or []
    if not names:
        raise InputError(
            f"{checkpoint.run_dir}: the checkpoint records no test-split files; pass --data FILE ..."
        )
    data_dir = meta.config.data_path
    paths = [data_dir / name for name in names]
    if not all(p.exists() for p in paths):
        data_dir = Path(meta.data_dir_abs)
        paths = [data_dir / name for name in names]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InputNotFoundError(
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


def _score(pred_t1_ms, pred_t2_ms, truth: io.MrfSlice, mask) -> tuple[dict[str, Any], np.ndarray]:
    """Per-slice metrics and the masked predicted pixels float[N, 2]."""
    m = metrics.map_metrics(pred_t1_ms, pred_t2_ms, truth.t1_ms, truth.t2_ms, mask, truth.tissue)
    return m, metrics.masked_pixels(pred_t1_ms, pred_t2_ms, mask)


def _predictions(checkpoints, labels, forwards, info, batch_size, dm, m0_for_networks, cache):
    """Yield ``(label, t1_ms, t2_ms, m0 or None, seconds, extra entry fields)`` per method.

    ``dm`` is the matching dictionary (None: no dictionary matching); network M0 maps are
    fitted (`inference.m0_map`, not timed) only when ``m0_for_networks``; ``cache``: the
    dictionary cache (`inference.predict_slice`'s ``cache_dir``).
    """
    for label, c, forward in zip(labels, checkpoints, forwards, strict=True):
        p = inference.predict_slice(
            c, info, batch_size=batch_size, forward=forward, cache_dir=cache
        )
        m0 = inference.m0_map(info.path, p.t1_ms, p.t2_ms) if m0_for_networks else None
        yield label, p.t1_ms, p.t2_ms, m0, p.seconds, {}
    for mode in dm_modes(info, dm):
        d = compare.match_slice(info, dm, b1_mode=mode)
        extra = {"maps_from": d.source, "agreement_with_stored": d.agreement}
        yield DM_LABELS[mode], d.t1_ms, d.t2_ms, d.m0, d.seconds, extra


def dm_modes(info: io.SliceInfo, dm) -> list[str]:
    """The B1 modes of dictionary matching a slice gets (`compare.B1_MODES`).

    B1 free always; with a B1 axis in the dictionary also nominal B1, and a measured map when
    the file has one.
    """
    if dm is None:
        return []
    if dm.grid.b1 is None:
        return ["free"]
    return ["free", "map", "nominal"] if "b1_map" in info.fields else ["free", "nominal"]


def recognition_maps(truth: io.MrfSlice) -> tuple[np.ndarray, np.ndarray]:
    """The recognition baseline: each tissue's population value, mixed by the pixel's fractions.

    No signal is used: a pixel gets the rate-weighted mean (`compartments.true_maps`) of the
    population means the training draws centre on (`tissue_values.population_means`) over its
    true compartment fractions. A network measures only where it beats this.
    """
    fractions = np.moveaxis(truth.fractions, -1, 0)
    t1_ms, t2_ms = compartments.true_maps(fractions, tissue_values.population_means())
    return np.where(truth.mask, t1_ms, 0.0), np.where(truth.mask, t2_ms, 0.0)


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
    batch_size: int = inference.BATCH_SIZE,
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
            targets' mean, ``CheckpointMetadata.train_target_mean_ms``), or None.
        log: where progress lines go (``print``; a no-op to silence).

    Returns:
        The `EvaluationResult`, also written as ``out_dir/metrics.json`` (module docstring).

    Raises:
        inference.IncompatibleCheckpointError: a checkpoint does not fit a file (checked for
            every file before any work).
        MrfFormatError: a malformed file.
        MrfFormatError: a file without true maps lacks ``acquisition/fov_mm`` (its NIfTI
            pixel size; checked before any work).

    """
    out_dir = Path(out_dir)
    files = [Path(f) for f in files]
    labels = list(labels or labels_for(checkpoints))
    infos = _check_inputs(checkpoints, files, labels)
    out_dir.mkdir(parents=True, exist_ok=True)
    forwards = [inference.make_forward(c) for c in checkpoints]
    scores = _Scores()
    dictionary = None
    for path, info in zip(files, infos, strict=True):
        scored = info.has_target("true")
        wanted = ("t1_ms", "t2_ms", "tissue", "fractions", *TRUTHS["single"])
        truth = io.read_slice(path, fields=[n for n in wanted if n in info.fields])
        if compare_dm and dictionary is None:
            dictionary = compare.matching_dictionary(info, dm_cache)
        methods = list(
            _predictions(
                checkpoints, labels, forwards, info, batch_size, dictionary, not scored, dm_cache
            )
        )
        if scored:
            methods += list(_baselines(truth, mean_ms))
            scores.slices.append(truth)
        nifti_dir = out_dir / "nifti" if nifti or not scored else None
        rows = [scores.record(m, path, info, truth, nifti_dir, log) for m in methods]
        rows = [row for row in rows if row is not None]
        if make_figures:
            _slice_figure(out_dir / "figures", path, rows, truth if scored else None, truth.mask)
    result = _result(files, infos, scores, checkpoints, labels, dictionary, mean_ms)
    export.write_json(out_dir / "metrics.json", result.to_json())
    return result


def _check_inputs(checkpoints, files: list[Path], labels: list[str]) -> list[io.SliceInfo]:
    """Every file's metadata, after checking everything up front.

    Labels, each checkpoint against each file, the pixel size of each file without truth (its
    NIfTI maps): a misfit fails in a second, not after an hour.
    """
    if not files:
        raise InputError("evaluate: no slice files given")
    if len(labels) != len(checkpoints) or len(set(labels)) != len(labels):
        raise InputError(f"evaluate: need one distinct label per checkpoint, got {labels}")
    infos = [io.inspect(f) for f in files]
    for info in infos:
        if not info.has_target("true"):
            pixel_size_mm(info)  # its maps are its output: they need a pixel size
        for c in checkpoints:
            inference.check_compatible(c.metadata, info)
    return infos


@dataclasses.dataclass
class _Scores:
    """What `evaluate` collects over the slices, per method label."""

    per_slice: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    pooled: dict[str, list] = dataclasses.field(default_factory=dict)  # scored slices' pixels
    seconds: dict[str, list[float]] = dataclasses.field(default_factory=dict)  # every slice's
    slices: list[io.MrfSlice] = dataclasses.field(default_factory=list)  # the scored ones

    def record(self, method, path: Path, info, read: io.MrfSlice, nifti_dir, log):
        """One method's maps of a slice; returns the slice figure's row, or None.

        Scored against the slice's truth, or for a slice without true maps summarised and
        written as NIfTI (its output).
        """
        label, t1_ms, t2_ms, m0, time_s, extra = method
        self.seconds.setdefault(label, []).append(time_s)
        if not info.has_target("true"):
            written = write_maps(nifti_dir, info, label, t1_ms, t2_ms, m0)
            summary = map_summary(t1_ms, t2_ms, m0, read.mask)
            entry = {**summary, "seconds": time_s, **extra, "nifti": written}
            self.per_slice.setdefault(label, {})[path.name] = entry
            log(
                f"{path.name} {label}: no true maps; median T1 {summary['t1_median_ms']:.0f} "
                f"ms, T2 {summary['t2_median_ms']:.0f} ms, {time_s:.2f} s"
            )
            return figures.MapRow(label, t1_ms, t2_ms, m0)
        m, pixels = _score(t1_ms, t2_ms, read, read.mask)
        self.per_slice.setdefault(label, {})[path.name] = {**m, "seconds": time_s, **extra}
        self.pooled.setdefault(label, []).append(pixels)
        if nifti_dir is not None:
            write_maps(nifti_dir, info, label, t1_ms, t2_ms)
        log(f"{path.name} {label}: val loss {m['val_loss_ms']:.1f} ms, {time_s:.2f} s")
        shown = label not in (MEAN_LABEL, DM_LABELS["nominal"])
        return figures.MapRow(label, t1_ms, t2_ms) if shown else None


def _slice_figure(folder: Path, path: Path, rows, truth: io.MrfSlice | None, mask) -> None:
    """The slice's Fig. 2-style grid: errors against its truth, or the maps alone."""
    folder.mkdir(exist_ok=True)
    if truth is not None:
        truth_name = "single" if truth.t1_single_ms is not None else "rate"
        t1_true, t2_true = (getattr(truth, n) for n in TRUTHS[truth_name])
        title = f"{path.name}: errors against the {truth_name} truth"
        fig = figures.map_grid(rows, t1_true, t2_true, mask, title=title)
    else:
        fig = figures.prediction_grid(rows, mask, title=f"{path.name} (no true maps)")
    figures.save_figure(fig, folder / f"{path.stem}.png")


def _result(files, infos, scores: _Scores, checkpoints, labels, dictionary, mean_ms):
    """Per method its pooled scores, timing and slices (module docstring)."""
    methods = {}
    for name in scores.per_slice:
        # pooled over the scored slices only when the method scored every one of them (the
        # measured-B1 matching and recognition need fields that a user's file may lack)
        pixels = scores.pooled.get(name, [])
        every = len(pixels) == len(scores.slices)
        about: dict[str, Any] = {}
        if name in labels:
            c = checkpoints[labels.index(name)]
            about = {
                "run_dir": str(c.run_dir),
                "step": c.metadata.step,
                "model": c.metadata.model,
                "input_kind": c.metadata.input_kind,
            }
        elif name in DM_LABELS.values():
            about["dictionary"] = {
                "atoms": int(dictionary.atoms.shape[0]),
                "rank": dictionary.rank,
                "sequence_hash": dictionary.sequence_hash,
            }
        elif name == MEAN_LABEL:
            about["constant_ms"] = list(mean_ms)
        methods[name] = MethodResult(
            aggregate=_aggregate(pixels, scores.slices) if every else None,
            regions=_regions(pixels, scores.slices) if every else None,
            seconds_per_slice=float(np.mean(scores.seconds[name])),
            slices=scores.per_slice[name],
            about=about,
        )
    return EvaluationResult(
        files=[str(f) for f in files],
        files_without_truth=[
            str(f) for f, i in zip(files, infos, strict=True) if not i.has_target("true")
        ],
        pixel_classes={
            "pure": f"one brain compartment covers >= {metrics.PURE_FRACTION:.0%} of the pixel",
            "pure99": f"... >= {metrics.VERY_PURE_FRACTION:.0%}",
            "boundary": "a mixture of brain compartments",
            "non_brain": f"more than {metrics.MAX_NON_BRAIN_FRACTION:.0%} bone, fat or skin",
            "truths": {
                "rate": "proton-density-weighted mean relaxation rate of the compartments",
                "single": "single-compartment fit of the noiseless unaliased signal at true B1",
            },
        },
        methods=methods,
    )


def _baselines(truth: io.MrfSlice, mean_ms):
    """Yield the signal-free baselines of a scored slice, as `_predictions` (zero time)."""
    if mean_ms:
        constant = [np.where(truth.mask, v, 0.0).astype(np.float32) for v in mean_ms]
        yield MEAN_LABEL, *constant, None, 0.0, {}
    if truth.fractions is not None and truth.fractions.shape[-1] == tissues.N_CLASSES:
        yield RECOGNITION_LABEL, *recognition_maps(truth), None, 0.0, {}


def _aggregate(pixels: list[np.ndarray], slices: list[io.MrfSlice]) -> dict[str, Any] | None:
    """`metrics.pooled_metrics` against the rate truth over the scored slices (None: none)."""
    if not slices:
        return None
    truths = [metrics.masked_pixels(s.t1_ms, s.t2_ms, s.mask) for s in slices]
    labels = None if any(s.tissue is None for s in slices) else [s.tissue[s.mask] for s in slices]
    return metrics.pooled_metrics(pixels, truths, labels)


def _regions(pixels: list[np.ndarray], slices: list[io.MrfSlice]) -> dict[str, Any] | None:
    """Per truth, `metrics.region_metrics` of the pooled pixels (None without fractions).

    Needs tissue labels and the project's compartment fractions in every scored slice; the
    single-compartment truth is scored when every slice carries it.
    """
    if not slices or any(
        s.tissue is None or s.fractions is None or s.fractions.shape[-1] != tissues.N_CLASSES
        for s in slices
    ):
        return None
    pred = np.concatenate(pixels)
    tissue = np.concatenate([s.tissue[s.mask] for s in slices])
    fractions = np.concatenate([s.fractions[s.mask] for s in slices])
    out = {}
    for truth_name, (t1_name, t2_name) in TRUTHS.items():
        if all(getattr(s, t1_name) is not None for s in slices):
            true = np.concatenate(
                [
                    metrics.masked_pixels(getattr(s, t1_name), getattr(s, t2_name), s.mask)
                    for s in slices
                ]
            )
            out[truth_name] = metrics.region_metrics(pred, true, tissue, fractions)
    return out
