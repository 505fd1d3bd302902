"""Predicted maps as NIfTI-1 files for common viewers (nibabel), and atomic JSON output.

Orientation: a slice's map ``m[row, col]`` (row 0 at the top of the displayed image) is stored
as NIfTI voxel ``(i, j, 0) = m[H - 1 - j, i]``: i runs along the columns, j upwards, so viewers
that draw +j up show the image as our figures do. The affine is diagonal with the in-plane pixel
size ``fov_mm / matrix`` from the file's acquisition attributes (the paper's 1.17 mm at 300 mm
and 256) and the slice thickness (the paper's 5 mm).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from rinq_jax.atomic import atomic_path
from rinq_jax.data import io
from rinq_jax.evaluation.metrics import jsonable

SLICE_THICKNESS_MM = 5.0  # the paper's 1.17 x 1.17 x 5.0 mm^3 voxels


def pixel_size_mm(info: io.SliceInfo) -> float:
    """In-plane pixel size ``fov_mm / matrix`` of a slice file.

    Raises:
        ValueError: the file's acquisition attributes lack ``fov_mm`` (naming the file);
            ``matrix`` defaults to the image width.

    """
    acquisition = info.acquisition
    if "fov_mm" not in acquisition:
        raise ValueError(
            f"{info.path}: field 'acquisition/fov_mm': missing; needed for the NIfTI pixel size"
        )
    matrix = float(acquisition.get("matrix", info.n_cols))
    fov_mm = float(acquisition["fov_mm"])
    if not (fov_mm > 0 and matrix > 0):
        raise ValueError(
            f"{info.path}: field 'acquisition/fov_mm': expected fov_mm > 0 and matrix > 0, "
            f"got {fov_mm}, {matrix}"
        )
    return fov_mm / matrix


def to_nifti_array(map_2d: np.ndarray) -> np.ndarray:
    """float32[W, H, 1] voxel array of an [H, W] map (see the module docstring's orientation)."""
    return np.ascontiguousarray(np.asarray(map_2d, np.float32)[::-1, :].T[:, :, None])


def write_nifti(
    path: str | Path,
    map_2d: np.ndarray,
    pixel_mm: float,
    slice_thickness_mm: float = SLICE_THICKNESS_MM,
) -> Path:
    """Write one map (float[H, W], e.g. T1 in ms) as a NIfTI-1 file, atomically.

    Args:
        path: target, ending in ``.nii`` or ``.nii.gz``.
        map_2d: float[H, W].
        pixel_mm: in-plane pixel size in mm.
        slice_thickness_mm: through-plane size in mm.

    Returns:
        The path written.

    """
    path = Path(path)
    suffix = ".nii.gz" if path.name.endswith(".nii.gz") else ".nii"
    if not path.name.endswith(suffix):
        raise ValueError(f"{path}: a NIfTI file name must end in .nii or .nii.gz")
    affine = np.diag([pixel_mm, pixel_mm, slice_thickness_mm, 1.0])
    image = nib.Nifti1Image(to_nifti_array(map_2d), affine)
    image.header.set_xyzt_units(xyz="mm")
    with atomic_path(path) as tmp:
        nib.save(image, tmp)
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented strict JSON (NaN -> null) atomically: temp name, then rename."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(jsonable(data), f, indent=2, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file (e.g. a markdown table) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
