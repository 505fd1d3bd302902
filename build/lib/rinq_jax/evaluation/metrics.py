"""Error metrics of T1/T2 maps against the truth, inside a mask, as plain JSON-ready dicts.

The paper's figures (Hoppe et al., MICCAI 2019, Sect. 2.2 and Table 1):

* validation loss ``sqrt(MSE)`` over T1 and T2 in ms: the square root of the mean, over the
  masked pixels *and* both parameters, of the squared error,
  ``sqrt((sum_i (dT1_i)^2 + sum_i (dT2_i)^2) / (2 N))``;
* relative mean error ``RME = mean_i |pred_i - true_i| / true_i`` and its standard deviation
  over the pixels, per parameter (reported here in percent).

We add RMSE, MAE and the mean signed error (bias) per parameter, and all of them per tissue
(WM, GM, CSF) when a tissue label map is given.
Every function is pure numpy; aggregated metrics over several slices pool their pixels
(`pixel_metrics` on the concatenated pixel vectors), so a slice with more brain counts more,
as in the paper's single number per test set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Tissues reported separately (labels of `rinq_jax.data.tissues.TISSUES`).
TISSUE_LABELS: Mapping[str, int] = {"wm": 1, "gm": 2, "csf": 3}
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
    """The paper's validation loss: sqrt of the mean over pixels and (T1, T2) of squared errors.

    Args:
        pred_ms: float[N, 2] predicted (T1, T2) in ms.
        true_ms: float[N, 2] true (T1, T2) in ms.

    Returns:
        sqrt(mean((pred - true)^2)) in ms; NaN for N = 0.

    """
    pred_ms, true_ms = np.asarray(pred_ms, np.float64), np.asarray(true_ms, np.float64)
    if pred_ms.shape != true_ms.shape or pred_ms.ndim != 2 or pred_ms.shape[1] != 2:
        raise ValueError(f"expected two float[N, 2] arrays, got {pred_ms.shape}, {true_ms.shape}")
    if pred_ms.size == 0:
        return math.nan
    return float(np.sqrt(np.mean((pred_ms - true_ms) ** 2)))


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
            for label_name, label in TISSUE_LABELS.items()
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
