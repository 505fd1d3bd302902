"""A scan's output when it has no true maps: NIfTI files (`write_maps`), medians (`map_summary`).

`write_maps` also writes the maps of scored slices on request (``eval.py --nifti``).
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
