"""What an evaluation reports besides its scores: the maps of a slice without truth, the lines it prints.

`write_maps` and `map_summary` are a scan's output when it has no true maps (NIfTI files and
medians in the mask); `entry_summary` and `summary_lines` condense a method's entry of
metrics.json (`rinq_jax.evaluation.evaluate`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from rinq_jax.data.files import io
from rinq_jax.data.files.nifti import pixel_size_mm, write_nifti


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def write_maps(
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
    """Human-readable lines per method of an `evaluate` result.

    The headline first: median relative T1 / T2 errors of pure white and grey matter
    (single-compartment truth when scored), then the paper's loss and RME over all pixels.
    """
    lines = []
    unscored = {Path(f).name for f in result.get("files_without_truth", [])}
    for name, entry in result["models"].items():
        a = entry["aggregate"]
        regions = entry.get("regions")
        if regions:
            truth = "single" if "single" in regions else "rate"
            pure = regions[truth]["classes"]["pure"]
            medians = " | ".join(
                f"{t.upper()} {pure[t]['t1']['median_pct']:5.1f} / {pure[t]['t2']['median_pct']:5.1f} %"
                for t in ("wm", "gm")
            )
            lines.append(f"{name:36s} pure pixels, median T1 / T2 error ({truth} truth): {medians}")
        if a is not None:
            lines.append(
                f"{name:36s} val loss {a['val_loss_ms']:8.2f} ms | "
                f"T1 RME {a['t1']['rme_pct']:6.2f} ± {a['t1']['rme_std_pct']:6.2f} % | "
                f"T2 RME {a['t2']['rme_pct']:6.2f} ± {a['t2']['rme_std_pct']:6.2f} % | "
                f"{entry['seconds_per_slice']:.3f} s/slice"
            )
        maps_only = [s for n, s in entry["slices"].items() if n in unscored]
        if maps_only:
            t1 = np.median([s["t1_median_ms"] for s in maps_only])
            t2 = np.median([s["t2_median_ms"] for s in maps_only])
            lines.append(
                f"{name:36s} maps only ({len(maps_only)} slice(s) without true maps): "
                f"median T1 {t1:.0f} ms, T2 {t2:.0f} ms | "
                f"{entry['seconds_per_slice']:.3f} s/slice"
            )
    return lines
