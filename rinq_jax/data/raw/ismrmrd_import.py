"""Import a scanner's raw spiral MRF k-space (ISMRMRD) as a slice file of docs/data_format.md.

Run ``python -m rinq_jax.data.raw.ismrmrd_import RAW.h5 --sequence SCHEDULE.csv --out slice.h5``
(options: ``--matrix``, ``--fov-mm`` override the header; ``--repetition-counter repetition|
contrast``; ``--trajectory TRAJ.npy`` when the file stores none; ``--traj-units``; see
``--help`` and docs/ismrmrd.md). What it does:

1. reads the schedule CSV (`rinq_jax.physics.schedule_files`) and the ISMRMRD layout
   (`rinq_jax.data.raw.ismrmrd_read`): one spiral interleaf per repetition, any number of coils;
2. pass 1: the coil images averaged over up to 16 time segments (each covering every
   interleaf), ``(1/|F|) sum_{t in F} A_t^H (w_t y_{c,t})``, gridded block by block (``A_t``
   the NUFFT on repetition t's interleaf, `rinq_jax.data.acquisition.nufft`; ``w_t`` its density
   compensation, `rinq_jax.data.acquisition.spiral.density_compensation`), and from them the Walsh
   coil-combination weights (`rinq_jax.data.acquisition.coils`). Segments rather than one overall
   mean: a tissue whose signal changes sign after the inversion nearly cancels in the overall mean;
3. pass 2: each repetition gridded per coil, ``x_{c,t} = A_t^H (w_t y_{c,t})`` (the
   generator's frame reconstruction), and combined with the one set of weights,
   ``s_t = sum_c conj(w_c) x_{c,t}``, so the combined phase is the same at every t;
4. a mask from the combined segment averages' root-sum-of-squares (Otsu threshold, holes
   filled): the object's support;
5. the slice written atomically with `rinq_jax.data.files.io.write_slice` (signals, mask, the
   schedule as ``FispSequence``; no true maps; with ``--dm-maps`` the scanner's own
   dictionary-matching maps, the targets of ``train.py --target dm``; with ``--b1-map`` its
   measured B1 map, for networks trained with ``--b1-input``).

Memory: the combined series complex64[H, W, T] (1.6 GB at 256 x 256 x 3000, what the slice
file holds) plus one block of raw acquisitions and one repetition's coil images; never all
coils' k-space or images. With one coil the combination weights are exactly 1, so the import is
the generator's gridding of the same k-space (`rinq_jax.data.raw.ismrmrd_export`).

Every malformed input raises ``MrfFormatError`` naming file and field; the command prints it
as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from rinq_jax.data.acquisition.coils import DEFAULT_WINDOW, combine, walsh_weights
from rinq_jax.data.acquisition.nufft import DEFAULT_EPS, adjoint, make_plan
from rinq_jax.data.files import io, nifti
from rinq_jax.data.files.format import MrfFormatError
from rinq_jax.data.raw.ismrmrd_read import (
    RawLayout,
)
from rinq_jax.data.raw.ismrmrd_scan import (
    RawScan,
    ScanOptions,
    add_scan_flags,
    open_scan,
    scan_options,
)

__all__ = ["combined_series", "import_ismrmrd", "main", "otsu_mask", "segment_averages"]

PROG = "python -m rinq_jax.data.raw.ismrmrd_import"
#: Acquisitions read per block (8 coils x 2,882 samples x 64 = 12 MB at paper size).
BLOCK = 64
#: Most time segments whose averages estimate the coil sensitivities (`segment_averages`).
MAX_SEGMENTS = 16


def _blocks(n_reps: int, block: int):
    for t0 in range(0, n_reps, block):
        yield np.arange(t0, min(t0 + block, n_reps))


def segment_averages(layout: RawLayout, read, matrix, eps, nthreads, bar) -> np.ndarray:
    """complex64[C, H, W, F]: gridded coil images averaged over F time segments (pass 1).

    Segment ``f`` holds repetitions ``f L .. (f + 1) L - 1`` (the last also the remainder),
    ``L = max(ceil(T / 16), interleaves)`` (the distinct ``idx.kspace_encode_step_1``), so each
    segment covers every interleaf (sequential or golden-step order) and its average is nearly
    alias-free.
    """
    n_interleaves = int(np.unique(layout.interleaf).size)
    length = max(-(-layout.n_reps // MAX_SEGMENTS), n_interleaves)
    # The remainder joins the last segment: a short one would be strongly aliased.
    segment = np.minimum(np.arange(layout.n_reps) // length, max(layout.n_reps // length, 1) - 1)
    sums = np.zeros((layout.n_coils, matrix, matrix, segment[-1] + 1), np.complex64)
    for reps in _blocks(layout.n_reps, BLOCK):
        data, traj, weights = read(reps)
        y = data * weights[:, None, :]
        for f in np.unique(segment[reps]):
            sel = segment[reps] == f
            kdata = y[sel].transpose(1, 0, 2).reshape(layout.n_coils, -1)
            points = traj[sel].reshape(-1, 2)
            sums[..., f] += adjoint(kdata, points, (matrix, matrix), eps=eps, nthreads=nthreads)
        if bar is not None:
            bar.update(reps.size)
    return sums / np.bincount(segment).astype(np.float32)


def combined_series(layout: RawLayout, read, weights, matrix, eps, nthreads, bar) -> np.ndarray:
    """complex64[H, W, T]: each repetition gridded per coil and combined (pass 2)."""
    out = np.empty((matrix, matrix, layout.n_reps), np.complex64)
    plan = None
    for reps in _blocks(layout.n_reps, BLOCK):
        data, traj, dcf = read(reps)
        frames = np.empty((reps.size, matrix, matrix), np.complex64)
        for b in range(reps.size):
            x, y = np.ascontiguousarray(traj[b, :, 0]), np.ascontiguousarray(traj[b, :, 1])
            if plan is None:
                plan = make_plan(1, (matrix, matrix), traj[b], layout.n_coils, eps, nthreads)
            else:
                plan.setpts(x, y)
            coil_images = plan.execute(np.ascontiguousarray(data[b] * dcf[b]))
            frames[b] = combine(weights, coil_images.reshape(-1, matrix, matrix))
        for h in range(0, matrix, 8):  # row tiles: the time-last output is strided by T
            out[h : h + 8, :, reps[0] : reps[-1] + 1] = frames[:, h : h + 8].transpose(1, 2, 0)
        if bar is not None:
            bar.update(reps.size)
    return out


def otsu_mask(image: np.ndarray, bins: int = 256) -> np.ndarray:
    """bool[H, W]: ``|image|`` above Otsu's threshold (max. between-class variance), filled.

    Otsu, IEEE Trans. SMC 9:62 (1979), doi:10.1109/TSMC.1979.4310076; interior holes (dark
    CSF or lesions surrounded by tissue) are filled with ``scipy.ndimage.binary_fill_holes``.
    """
    magnitude = np.abs(image).astype(np.float64)
    hist, edges = np.histogram(magnitude, bins=bins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    threshold = centres[int(np.argmax((w0 * w1 * (mu0 - mu1) ** 2)[:-1]))]
    return ndimage.binary_fill_holes(magnitude > threshold)


def _grid_and_combine(opened: RawScan, raw: Path, window: int, eps, nthreads, progress: bool):
    """The import's two passes over the repetitions; returns (averages, weights, signals).

    Segment averages -> Walsh weights -> the coil-combined series.
    """
    layout, read, matrix = opened.layout, opened.read, opened.matrix
    # leave=False erases the bar and disable=None hides it when stderr is not a terminal, so
    # an error stays one line.
    bar = None
    if progress:
        bar = tqdm(total=2 * layout.n_reps, desc="import", unit="rep", leave=False, disable=None)
    try:
        averages = segment_averages(layout, read, matrix, eps, nthreads, bar)
        if not np.any(np.abs(averages) > 0):
            raise MrfFormatError(raw, layout.field(None, "data"), "all samples are zero")
        weights = walsh_weights(averages, window=window)
        signals = combined_series(layout, read, weights, matrix, eps, nthreads, bar)
    finally:
        if bar is not None:
            bar.close()
    return averages, weights, signals


def _acquisition_attrs(opened: RawScan, raw: Path) -> dict[str, Any]:
    """The slice file's ``acquisition`` attributes of the scan (`rinq_jax.data.files.format`)."""
    return {
        "matrix": opened.matrix,
        "fov_mm": opened.fov_mm,
        "n_coils": opened.layout.n_coils,
        "n_interleaves": opened.trajectory.n_interleaves,
        "trajectory": json.dumps(opened.trajectory.signature()),
        "source": str(raw),
    }


def _scanner_maps(mask: np.ndarray, dm_maps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scanner's (T1, T2) NIfTI maps in ms; returns (mask, t1_ms, t2_ms).

    The mask keeps only the pixels where both are finite and positive, the maps are 0 outside.
    """
    t1_ms, t2_ms = (nifti.read_map(p, mask.shape) for p in dm_maps)
    mask = mask & np.isfinite(t1_ms) & np.isfinite(t2_ms) & (t1_ms > 0) & (t2_ms > 0)
    return mask, *(np.where(mask, m, 0.0).astype(np.float32) for m in (t1_ms, t2_ms))


def _traj_units_note(options: ScanOptions) -> str:
    units = options.traj_units
    return units if options.trajectory is None else f"{units} ({options.trajectory})"


_COIL_COMBINATION = "Walsh (MRM 43:682, 2000), window {window} px, time-segment averages"


def import_ismrmrd(
    raw: str | os.PathLike,
    sequence_csv: str | os.PathLike,
    out: str | os.PathLike,
    options: ScanOptions = ScanOptions(),
    *,
    subject_id: str | None = None,
    slice_id: str = "slice-00",
    window: int = DEFAULT_WINDOW,
    eps: float = DEFAULT_EPS,
    nthreads: int = 1,
    progress: bool = False,
    dm_maps: tuple[str | os.PathLike, str | os.PathLike] | None = None,
) -> Path:
    """Grid, coil-combine and write one ISMRMRD scan as a slice file (steps in the module doc).

    Args:
        raw: the ISMRMRD file.
        sequence_csv: the schedule (`rinq_jax.physics.schedule_files`), one row per repetition.
        out: the slice file to write (atomically; its folder is created).
        options: how to read the scan (matrix, FOV, counter, trajectory, TE, TI, ...).
        subject_id: the slice's subject id (default the raw file's stem).
        slice_id: the slice's id.
        window: Walsh window in pixels.
        eps: finufft tolerance.
        nthreads: finufft threads.
        progress: show progress bars.
        dm_maps: the scanner's own dictionary-matching (T1, T2) maps in ms as single-slice
            NIfTI files on this matrix (orientation of `rinq_jax.data.files.nifti`), stored as
            ``dm_t1_ms``/``dm_t2_ms`` so that ``train.py --target dm`` can learn from them; the
            mask then keeps only pixels where both are finite and positive.

    Returns ``out``; raises MrfFormatError on a malformed input, naming the file and field.
    """
    raw, out = Path(raw), Path(out)
    with open_scan(raw, sequence_csv, options) as opened:
        averages, weights, signals = _grid_and_combine(opened, raw, window, eps, nthreads, progress)
    mask = otsu_mask(np.linalg.norm(combine(weights, averages), axis=-1))
    dm_t1_ms = dm_t2_ms = None
    if dm_maps is not None:
        mask, dm_t1_ms, dm_t2_ms = _scanner_maps(mask, dm_maps)
    slice_ = io.MrfSlice(
        subject_id=subject_id or raw.stem,
        slice_id=slice_id,
        sequence=opened.sequence,
        signals=signals,
        mask=mask,
        dm_t1_ms=dm_t1_ms,
        dm_t2_ms=dm_t2_ms,
        b1_map=None if options.b1_map is None else nifti.read_map(options.b1_map, mask.shape),
        acquisition=_acquisition_attrs(opened, raw),
        generator={
            "program": PROG,
            "source": str(raw),
            "sequence_csv": str(sequence_csv),
            "repetition_counter": options.counter,
            "traj_units": _traj_units_note(options),
            "skipped_acquisitions": opened.layout.n_skipped,
            "coil_combination": _COIL_COMBINATION.format(window=window),
        },
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    io.write_slice(out, slice_)
    return out


def main(argv=None) -> int:
    """Command line (module docstring); one error line and status 2 for a malformed input."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Import raw spiral MRF k-space (ISMRMRD) as a slice file."
    )
    parser.add_argument("raw", type=Path, help="ISMRMRD file (HDF5)")
    parser.add_argument("--sequence", type=Path, required=True, help="schedule CSV")
    parser.add_argument("--out", type=Path, required=True, help="slice file to write")
    add_scan_flags(parser)
    parser.add_argument("--subject-id", help="subject id (default: the raw file's stem)")
    parser.add_argument("--slice-id", default="slice-00", help="slice id")
    parser.add_argument("--threads", type=int, default=1, help="finufft threads")
    parser.add_argument(
        "--dm-maps",
        nargs=2,
        type=Path,
        metavar=("T1.nii.gz", "T2.nii.gz"),
        help="the scanner's dictionary-matching T1 and T2 maps in ms (for train.py --target dm)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    try:
        path = import_ismrmrd(
            args.raw,
            args.sequence,
            args.out,
            scan_options(args),
            subject_id=args.subject_id,
            slice_id=args.slice_id,
            nthreads=max(1, args.threads),
            progress=not args.no_progress,
            dm_maps=args.dm_maps,
        )
    except MrfFormatError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # writing the output (disk full, read-only folder)
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
