"""T1/T2/M0 maps as NIfTI-1 files (nibabel): the orientation, writing and reading.

Orientation: a slice's map ``m[row, col]`` (row 0 at the top of the displayed image) is stored
as NIfTI voxel ``(i, j, 0) = m[H - 1 - j, i]``: i runs along the columns, j upwards, so viewers
that draw +j up show the image as our figures do. The affine is diagonal with the in-plane pixel
size ``fov_mm / matrix`` from the file's acquisition attributes (the paper's 1.17 mm at 300 mm
and 256) and the slice thickness (the paper's 5 mm). `eval.py` writes maps this way;
`read_map` reads maps in the same orientation (e.g. a scanner's dictionary-matching maps for
`rinq_jax.data.raw.ismrmrd_import --dm-maps`).
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from rinq_jax.atomic import atomic_path
from rinq_jax.data.files.io import SliceInfo
from rinq_jax.errors import MrfFileNotFoundError, MrfFormatError

SLICE_THICKNESS_MM = 5.0  # the paper's 1.17 x 1.17 x 5.0 mm^3 voxels


def pixel_size_mm(info: SliceInfo) -> float:
    """In-plane pixel size ``fov_mm / matrix`` of a slice file.

    Raises:
        MrfFormatError: the file's acquisition attributes lack ``fov_mm``; ``matrix`` defaults
            to the image width.

    """
    acquisition = info.acquisition
    if "fov_mm" not in acquisition:
        raise MrfFormatError(
            info.path, "acquisition/fov_mm", "missing; needed for the NIfTI pixel size"
        )
    matrix = float(acquisition.get("matrix", info.n_cols))
    fov_mm = float(acquisition["fov_mm"])
    if not (fov_mm > 0 and matrix > 0):
        raise MrfFormatError(
            info.path,
            "acquisition/fov_mm",
            f"expected fov_mm > 0 and matrix > 0, got {fov_mm}, {matrix}",
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


def from_nifti_array(volume: np.ndarray) -> np.ndarray:
    """float32[H, W] map of a [W, H] or [W, H, 1] voxel array (inverse of `to_nifti_array`)."""
    return np.ascontiguousarray(np.asarray(volume, np.float32)[:, :, 0].T[::-1, :])


def read_map(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
    """Read a single-slice NIfTI map (orientation of the module docstring) as float32[H, W].

    Args:
        path: ``.nii`` or ``.nii.gz`` file holding one slice, voxel array [W, H] or [W, H, 1].
        shape: the expected ``(H, W)`` (the slice it belongs to).

    Raises:
        MrfFormatError: missing or unreadable file, or a voxel array of another shape
            (field ``data``).

    """
    path = Path(path)
    if not path.exists():
        raise MrfFileNotFoundError(path, "file", "no such NIfTI file")
    try:
        volume = np.asanyarray(nib.load(path).dataobj)
    except Exception as error:  # noqa: BLE001 -- nibabel raises many types for a bad file
        raise MrfFormatError(path, "file", f"cannot read as NIfTI: {error}") from error
    if volume.ndim == 2:
        volume = volume[:, :, None]
    height, width = shape
    if volume.shape != (width, height, 1):
        raise MrfFormatError(
            path,
            "data",
            f"expected one slice of {width} x {height} voxels (the [W, H, 1] of an H x W = "
            f"{height} x {width} slice), got shape {volume.shape}",
        )
    return from_nifti_array(volume)
