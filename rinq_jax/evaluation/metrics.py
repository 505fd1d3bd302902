"""Error metrics of T1/T2 maps against the truth, inside a mask, as plain JSON-ready dicts.

The paper's figures (Hoppe et al., MICCAI 2019, Sect. 2.2 and Table 1):

* validation loss ``sqrt(MSE)`` over T1 and T2 in ms: the square root of the mean, over the
  masked pixels *and* both parameters, of the squared error,
  ``sqrt((sum_i (dT1_i)^2 + sum_i (dT2_i)^2) / (2 N))``;
* relative mean error ``RME = mean_i |pred_i - true_i| / true_i`` and its standard deviation
  over the pixels, per parameter (reported here in percent).

We add RMSE, MAE and the mean signed error (bias) per parameter, and all of them per tissue
(WM, GM, CSF) when a tissue label map is given.

Measurement quality is judged per pixel class (`pixel_classes`), since most brain pixels at
2.3 mm are partial-volume mixtures whose single "true" value no one-tissue method can hit:
*pure* pixels (one brain compartment covers >= 90 % of the area, `pure99`: >= 99 %),
*boundary* pixels (mixtures of brain compartments), and pixels with more than 2 % bone, fat or
skin, reported apart (their signal is not brain). `region_metrics` gives per class and tissue
the median and mean absolute relative error, its quartiles and the median signed error.
Every function is pure numpy; aggregated metrics over several slices pool their pixels
(`pixel_metrics` on the concatenated pixel vectors), so a slice with more brain counts more,
as in the paper's single number per test set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rinq_jax.data.subjects import tissues
from rinq_jax.training.steps import paper_loss_ms

# Per pixel class, lesions are reported too.
REGION_TISSUES: Mapping[str, int] = {**tissues.SCORED_TISSUES, "lesion": tissues.LESION}
PURE_FRACTION = 0.9
VERY_PURE_FRACTION = 0.99
MAX_NON_BRAIN_FRACTION = 0.02
PARAMETERS = ("t1", "t2")


def _check_pixels(name: str, pred_ms: np.ndarray, true_ms: np.ndarray) -> None:
    if pred_ms.shape != true_ms.shape or pred_ms.ndim != 1:
        raise ValueError(
            f"{name}: prediction and truth must be 1-D of the same length, got "
            f"{pred_ms.shape} and {true_ms.shape}"
        )
    if true_ms.size and not np.all(true_ms > 0):
        bad = int(np.sum(~(true_ms > 0)))
        raise ValueError(
            f"{name}: the true values must be > 0 ms inside the mask for the relative error; "
            f"{bad} of {true_ms.size} pixels are not"
        )


def parameter_metrics(pred_ms: np.ndarray, true_ms: np.ndarray, name: str = "t1") -> dict:
    """RMSE, MAE, bias and relative mean error +- std of one parameter over pixel vectors.

    Args:
        pred_ms: float[N] predicted values in ms.
        true_ms: float[N] true values in ms (> 0).
        name: parameter name for error messages.

    Returns:
        {"rmse_ms", "mae_ms", "bias_ms" (mean of pred - true), "rme_pct", "rme_std_pct"
        (mean and population std of 100 |pred - true| / true)}; NaN for N = 0.

    """
    pred_ms = np.asarray(pred_ms, np.float64)
    true_ms = np.asarray(true_ms, np.float64)
    _check_pixels(name, pred_ms, true_ms)
    if pred_ms.size == 0:
        return dict.fromkeys(("rmse_ms", "mae_ms", "bias_ms", "rme_pct", "rme_std_pct"), math.nan)
    error = pred_ms - true_ms
    relative_pct = 100.0 * np.abs(error) / true_ms
    return {
        "rmse_ms": float(np.sqrt(np.mean(error**2))),
        "mae_ms": float(np.mean(np.abs(error))),
        "bias_ms": float(np.mean(error)),
        "rme_pct": float(np.mean(relative_pct)),
        "rme_std_pct": float(np.std(relative_pct)),
    }


def validation_loss_ms(pred_ms: np.ndarray, true_ms: np.ndarray) -> float:
    """The paper's validation loss (`training.steps.paper_loss_ms`) of predicted maps.

    Args:
        pred_ms: float[N, 2] predicted (T1, T2) in ms.
        true_ms: float[N, 2] true (T1, T2) in ms.

    Returns:
        sqrt(mean((pred - true)^2)) over pixels and (T1, T2), in ms; NaN for N = 0.

    """
    pred_ms, true_ms = np.asarray(pred_ms, np.float64), np.asarray(true_ms, np.float64)
    if pred_ms.shape != true_ms.shape or pred_ms.ndim != 2 or pred_ms.shape[1] != 2:
        raise ValueError(f"expected two float[N, 2] arrays, got {pred_ms.shape}, {true_ms.shape}")
    if pred_ms.size == 0:
        return math.nan
    return float(paper_loss_ms(np.sum((pred_ms - true_ms) ** 2), len(pred_ms)))


def pixel_metrics(
    pred_ms: np.ndarray, true_ms: np.ndarray, tissue: np.ndarray | None = None
) -> dict[str, Any]:
    """All metrics of pixel vectors, overall and per tissue.

    Args:
        pred_ms: float[N, 2] predicted (T1, T2) in ms.
        true_ms: float[N, 2] true (T1, T2) in ms (> 0).
        tissue: uint8[N] tissue labels, or None.

    Returns:
        {"n_pixels", "val_loss_ms", "t1": parameter_metrics, "t2": parameter_metrics,
        "tissues": {"wm"|"gm"|"csf": {"n_pixels", "val_loss_ms", "t1", "t2"}}} ("tissues" only
        with labels; a tissue without pixels has n_pixels 0 and NaN metrics).

    """
    pred_ms, true_ms = np.asarray(pred_ms), np.asarray(true_ms)
    out: dict[str, Any] = {
        "n_pixels": int(pred_ms.shape[0]),
        "val_loss_ms": validation_loss_ms(pred_ms, true_ms),
    }
    for k, name in enumerate(PARAMETERS):
        out[name] = parameter_metrics(pred_ms[:, k], true_ms[:, k], name)
    if tissue is not None:
        tissue = np.asarray(tissue)
        if tissue.shape != pred_ms.shape[:1]:
            raise ValueError(
                f"tissue labels: expected shape {pred_ms.shape[:1]}, got {tissue.shape}"
            )
        out["tissues"] = {
            label_name: pixel_metrics(pred_ms[tissue == label], true_ms[tissue == label])
            for label_name, label in tissues.SCORED_TISSUES.items()
        }
    return out


def masked_pixels(t1_ms: np.ndarray, t2_ms: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """float[N, 2] (T1, T2) of the masked pixels of two [H, W] maps, in row-major order."""
    t1_ms, t2_ms, mask = np.asarray(t1_ms), np.asarray(t2_ms), np.asarray(mask, bool)
    if not (t1_ms.shape == t2_ms.shape == mask.shape) or mask.ndim != 2:
        raise ValueError(
            f"maps and mask must be [H, W] of one shape, got {t1_ms.shape}, {t2_ms.shape}, "
            f"{mask.shape}"
        )
    return np.stack([t1_ms[mask], t2_ms[mask]], axis=-1)


def map_metrics(
    pred_t1_ms: np.ndarray,
    pred_t2_ms: np.ndarray,
    true_t1_ms: np.ndarray,
    true_t2_ms: np.ndarray,
    mask: np.ndarray,
    tissue: np.ndarray | None = None,
) -> dict[str, Any]:
    """`pixel_metrics` of [H, W] maps inside ``mask`` (bool[H, W]); tissue uint8[H, W] or None."""
    mask = np.asarray(mask, bool)
    labels = None if tissue is None else np.asarray(tissue)[mask]
    return pixel_metrics(
        masked_pixels(pred_t1_ms, pred_t2_ms, mask),
        masked_pixels(true_t1_ms, true_t2_ms, mask),
        labels,
    )


def pooled_metrics(
    preds_ms: Sequence[np.ndarray],
    trues_ms: Sequence[np.ndarray],
    tissues: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Metrics over several slices' pixels pooled together.

    Args:
        preds_ms: per slice float[N_s, 2] predicted (T1, T2) in ms.
        trues_ms: per slice float[N_s, 2] true (T1, T2) in ms.
        tissues: per slice uint8[N_s] labels, or None.

    """
    if not preds_ms:
        raise ValueError("pooled_metrics needs at least one slice")
    labels = None if tissues is None else np.concatenate(tissues)
    return pixel_metrics(np.concatenate(preds_ms), np.concatenate(trues_ms), labels)


def jsonable(value: Any) -> Any:
    """Copy of nested dicts/lists with numpy scalars as Python numbers and NaN/Inf as None.

    Strict JSON has no NaN; None (null) marks a metric that could not be computed.
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def pixel_classes(fractions: np.ndarray) -> dict[str, np.ndarray]:
    """Pixel classes from area fractions (module docstring).

    Args:
        fractions: float[N, N_CLASSES] compartment area fractions
          (`rinq_jax.data.subjects.tissues`).

    Returns:
        {"pure", "pure99", "boundary", "non_brain"}: bool[N] each. ``pure`` and ``boundary``
        partition the pixels with at most `MAX_NON_BRAIN_FRACTION` of bone, fat or skin;
        ``pure99`` is a subset of ``pure``; ``non_brain`` holds the rest.
    """
    f = np.asarray(fractions, np.float64)
    if f.ndim != 2 or f.shape[1] != tissues.N_CLASSES:
        raise ValueError(f"fractions: expected float[N, {tissues.N_CLASSES}], got {f.shape}")
    brain = list(tissues.BRAIN_LABELS)
    other = [k for k in range(tissues.N_CLASSES) if k not in brain and k != tissues.BACKGROUND]
    clean = f[:, other].sum(axis=1) <= MAX_NON_BRAIN_FRACTION
    dominant = f[:, brain].max(axis=1)
    return {
        "pure": clean & (dominant >= PURE_FRACTION),
        "pure99": clean & (dominant >= VERY_PURE_FRACTION),
        "boundary": clean & (dominant < PURE_FRACTION),
        "non_brain": ~clean,
    }


def relative_error_stats(pred_ms: np.ndarray, true_ms: np.ndarray) -> dict[str, float]:
    """Statistics of the relative error ``e = (pred - true) / true`` in percent.

    Returns:
        {"median_pct", "mean_pct", "p25_pct", "p75_pct"} of |e|, "bias_pct" the median of e
        (signed); NaN for no pixels.
    """
    pred_ms, true_ms = np.asarray(pred_ms, np.float64), np.asarray(true_ms, np.float64)
    _check_pixels("relative error", pred_ms, true_ms)
    keys = ("median_pct", "mean_pct", "p25_pct", "p75_pct", "bias_pct")
    if pred_ms.size == 0:
        return dict.fromkeys(keys, math.nan)
    signed = 100.0 * (pred_ms - true_ms) / true_ms
    error = np.abs(signed)
    p25, median, p75 = np.percentile(error, [25, 50, 75])
    values = (median, np.mean(error), p25, p75, np.median(signed))
    return {key: float(value) for key, value in zip(keys, values, strict=True)}


def region_metrics(
    pred_ms: np.ndarray, true_ms: np.ndarray, tissue: np.ndarray, fractions: np.ndarray
) -> dict[str, Any]:
    """Per pixel class and tissue: relative error statistics of T1 and T2; losses in ms.

    Args:
        pred_ms: float[N, 2] predicted (T1, T2) in ms.
        true_ms: float[N, 2] the truth scored against, ms.
        tissue: uint8[N] dominant tissue labels.
        fractions: float[N, N_CLASSES] area fractions (`pixel_classes`).

    Returns:
        {"loss_ms": {"all", "no_csf", "pure"}, "classes": {class: {tissue: {"n_pixels",
        "t1": relative_error_stats, "t2": ...}}}} (the loss is the paper's, sqrt of the MSE
        over T1 and T2, over all pixels, those not labelled CSF, and the pure ones).
    """
    pred_ms, true_ms, tissue = np.asarray(pred_ms), np.asarray(true_ms), np.asarray(tissue)
    classes = pixel_classes(fractions)
    out: dict[str, Any] = {
        "loss_ms": {
            "all": validation_loss_ms(pred_ms, true_ms),
            "no_csf": validation_loss_ms(
                pred_ms[tissue != tissues.CSF], true_ms[tissue != tissues.CSF]
            ),
            "pure": validation_loss_ms(pred_ms[classes["pure"]], true_ms[classes["pure"]]),
        },
        "classes": {},
    }
    for name, in_class in classes.items():
        out["classes"][name] = {}
        for tissue_name, label in REGION_TISSUES.items():
            keep = in_class & (tissue == label)
            out["classes"][name][tissue_name] = {
                "n_pixels": int(keep.sum()),
                **{
                    p: relative_error_stats(pred_ms[keep, k], true_ms[keep, k])
                    for k, p in enumerate(PARAMETERS)
                },
            }
    return out
