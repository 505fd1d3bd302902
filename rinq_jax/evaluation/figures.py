"""Fig. 2-style map grids: one row per model (and ground truth / dictionary matching).

Columns as in the paper's Fig. 2: T1 map (window 0-4000 ms), T1 relative error (%, clipped
at 100 %), T2 map (0-600 ms), T2 relative error. The background of the T1/T2 maps is set to
-200 ms (below the window, so it shows as the colormap's lowest colour) and the relative mean
error +- std inside the mask is written in each error panel's title.
A slice without true maps gets `prediction_grid` instead: T1, T2 and |M0| per method, no errors.
Figures are built with `matplotlib.figure.Figure` (no pyplot state, works with the Agg backend)
and saved atomically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from rinq_jax.atomic import atomic_path
from rinq_jax.evaluation.metrics import parameter_metrics

T1_WINDOW_MS = (0.0, 4000.0)
T2_WINDOW_MS = (0.0, 600.0)
ERROR_CLIP_PCT = 100.0
BACKGROUND_MS = -200.0
M0_WINDOW_PERCENTILE = 99.0  # |M0| panels: 0 to this percentile of |M0| inside the mask


@dataclasses.dataclass(frozen=True)
class MapRow:
    """One row of the grid: a label, its float[H, W] T1 and T2 maps in ms and optional M0.

    ``m0`` (complex or real [H, W], arbitrary units) is drawn as |M0| by `prediction_grid`.
    """

    label: str
    t1_ms: np.ndarray
    t2_ms: np.ndarray
    m0: np.ndarray | None = None


def display_map(map_ms: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The map with the background (outside ``mask``) set to `BACKGROUND_MS`."""
    return np.where(mask, map_ms, BACKGROUND_MS).astype(np.float32)


def relative_error_pct(pred_ms: np.ndarray, true_ms: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """100 |pred - true| / true inside the mask, clipped at `ERROR_CLIP_PCT`; 0 outside."""
    safe = np.where(mask & (true_ms > 0), true_ms, 1.0)
    error = 100.0 * np.abs(pred_ms - true_ms) / safe
    return np.where(mask, np.minimum(error, ERROR_CLIP_PCT), 0.0).astype(np.float32)


def crop_box(mask: np.ndarray, margin: int = 2) -> tuple[slice, slice]:
    """Rows and columns of the mask's bounding box plus ``margin`` pixels (the whole image if empty).

    The brain fills a fraction of the field of view; cropping shows it larger in every panel.
    """
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return slice(None), slice(None)
    h, w = mask.shape
    return (
        slice(max(0, rows.min() - margin), min(h, rows.max() + margin + 1)),
        slice(max(0, cols.min() - margin), min(w, cols.max() + margin + 1)),
    )


def _panel(ax, image, vmin, vmax, cmap, title, colorbar_label=None):
    im = ax.imshow(image, vmin=vmin, vmax=vmax, cmap=cmap, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    cbar = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    cbar.ax.tick_params(labelsize=6)
    if colorbar_label:
        cbar.set_label(colorbar_label, fontsize=6)


def map_grid(
    rows: Sequence[MapRow],
    true_t1_ms: np.ndarray,
    true_t2_ms: np.ndarray,
    mask: np.ndarray,
    *,
    show_truth: bool = True,
    title: str | None = None,
) -> Figure:
    """Build the grid: optional ground-truth row, then one row per entry of ``rows``.

    Args:
        rows: predictions (models, dictionary matching), maps float[H, W] in ms.
        true_t1_ms: float[H, W] the true T1 (error maps and RME are against it).
        true_t2_ms: float[H, W] the true T2.
        mask: bool[H, W] pixels scored; the rest is background. Panels show the mask's
            bounding box plus 2 pixels (`crop_box`).
        show_truth: add a first row with the true maps (its error panels are left empty).
        title: figure title.

    Returns:
        The figure; axes row-major, 4 per row.

    """
    mask = np.asarray(mask, bool)
    box = crop_box(mask)
    mask, true_t1_ms, true_t2_ms = (
        mask[box],
        np.asarray(true_t1_ms)[box],
        np.asarray(true_t2_ms)[box],
    )
    rows = [MapRow(r.label, np.asarray(r.t1_ms)[box], np.asarray(r.t2_ms)[box]) for r in rows]
    n_rows = len(rows) + int(show_truth)
    if n_rows == 0:
        raise ValueError("map_grid needs at least one row")
    fig = Figure(figsize=(11, 2.4 * n_rows + (0.4 if title else 0)), layout="constrained")
    axes = fig.subplots(n_rows, 4, squeeze=False)
    if show_truth:
        for c, (true, window, name) in enumerate(
            ((true_t1_ms, T1_WINDOW_MS, "T1"), (true_t2_ms, T2_WINDOW_MS, "T2"))
        ):
            maps = display_map(true, mask)
            _panel(axes[0, 2 * c], maps, *window, "viridis", f"ground truth: {name}", "ms")
            axes[0, 2 * c + 1].set_axis_off()
    for r, row in enumerate(rows, start=int(show_truth)):
        for c, (pred, true, window, name) in enumerate(
            (
                (row.t1_ms, true_t1_ms, T1_WINDOW_MS, "T1"),
                (row.t2_ms, true_t2_ms, T2_WINDOW_MS, "T2"),
            )
        ):
            m = parameter_metrics(pred[mask], true[mask], name)
            maps = display_map(pred, mask)
            _panel(axes[r, 2 * c], maps, *window, "viridis", f"{row.label}: {name}", "ms")
            _panel(
                axes[r, 2 * c + 1],
                relative_error_pct(pred, true, mask),
                0.0,
                ERROR_CLIP_PCT,
                "magma",
                f"{name} RME {m['rme_pct']:.1f} ± {m['rme_std_pct']:.1f} %",
                "%",
            )
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def prediction_grid(
    rows: Sequence[MapRow], mask: np.ndarray, *, title: str | None = None
) -> Figure:
    """Predicted maps of a slice without true maps: one row per method, no error panels.

    Columns: T1 (window 0-4000 ms), T2 (0-600 ms) and, when any row has ``m0``, |M0|
    (arbitrary units, window 0 to the `M0_WINDOW_PERCENTILE` of that row's |M0| in the mask;
    left empty for a row without M0).

    Args:
        rows: predictions (models, dictionary matching), maps float[H, W] in ms.
        mask: bool[H, W] the predicted pixels; the rest is background. Panels show the mask's
            bounding box plus 2 pixels (`crop_box`).
        title: figure title.

    Returns:
        The figure; axes row-major, 2 or 3 per row.

    """
    if not rows:
        raise ValueError("prediction_grid needs at least one row")
    mask = np.asarray(mask, bool)
    box = crop_box(mask)
    crop = mask[box]
    n_cols = 3 if any(r.m0 is not None for r in rows) else 2
    fig = Figure(
        figsize=(3.0 * n_cols, 2.4 * len(rows) + (0.4 if title else 0)), layout="constrained"
    )
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    for r, row in enumerate(rows):
        for c, (values, window, name) in enumerate(
            ((row.t1_ms, T1_WINDOW_MS, "T1"), (row.t2_ms, T2_WINDOW_MS, "T2"))
        ):
            image = display_map(np.asarray(values)[box], crop)
            _panel(axes[r, c], image, *window, "viridis", f"{row.label}: {name}", "ms")
        if n_cols == 3 and row.m0 is None:
            axes[r, 2].set_axis_off()
        elif n_cols == 3:
            magnitude = np.where(crop, np.abs(np.asarray(row.m0)[box]), 0.0).astype(np.float32)
            top = float(np.percentile(magnitude[crop], M0_WINDOW_PERCENTILE)) if crop.any() else 0
            _panel(axes[r, 2], magnitude, 0.0, top or 1.0, "gray", f"{row.label}: |M0|", "a.u.")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def panel_titles(fig: Figure) -> list[str]:
    """Titles of the figure's image panels (colorbars excluded), row-major."""
    return [ax.get_title() for ax in fig.axes if ax.get_label() != "<colorbar>"]


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Save as PNG atomically (temp name, then rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path
