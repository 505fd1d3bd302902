"""A picture of one slice file: true maps, one aliased time frame, a fingerprint, matched maps.

``python -m rinq_jax.data.files.preview data/quick/sub-00_slice-01.h5 --out docs/acquisition.png``
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rinq_jax.atomic import atomic_path  # noqa: E402
from rinq_jax.data.files import io  # noqa: E402
from rinq_jax.errors import InputError

PROG = "python -m rinq_jax.data.files.preview"


def save_preview(
    slice_file: str | os.PathLike, out_png: str | os.PathLike, frame: int = 100
) -> None:
    """Save a 2 x 4 panel PNG of ``slice_file`` (atomically).

    Top row: true T1 (0-4,000 ms), true T2 (0-600 ms), |M0|, the magnitude of time frame
    ``frame`` (one interleaf: aliased and noisy). Bottom row: dictionary-matching T1 and
    T2 (same windows), the time-averaged magnitude (all interleaves together: little
    aliasing), and the normalised fingerprint of the centre-most brain pixel.
    """
    s = io.read_slice(slice_file)
    if not 0 <= frame < s.n_reps:
        raise ValueError(f"save_preview: frame must lie in [0, {s.n_reps}), got {frame}")
    background = np.where(s.mask, 0, np.nan)
    absent = np.full(s.mask.shape, np.nan, np.float32)  # optional maps a user file may lack
    t1_ms, t2_ms, dm_t1_ms, dm_t2_ms, m0 = (
        absent if getattr(s, name) is None else getattr(s, name)
        for name in ("t1_ms", "t2_ms", "dm_t1_ms", "dm_t2_ms", "m0")
    )
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.5))
    panels = [
        (t1_ms + background, "true T1 [ms]", (0, 4000)),
        (t2_ms + background, "true T2 [ms]", (0, 600)),
        (np.abs(m0), "|M0|", None),
        (np.abs(s.signals[..., frame]), f"|frame {frame}| (1 of 48 interleaves)", None),
        (dm_t1_ms + background, "dictionary matching T1 [ms]", (0, 4000)),
        (dm_t2_ms + background, "dictionary matching T2 [ms]", (0, 600)),
        (np.abs(s.signals.mean(axis=-1)), "|time average|", None),
    ]
    for ax, (image, title, window) in zip(axes.ravel(), panels, strict=False):
        shown = ax.imshow(image, cmap="gray" if window is None else "viridis", clim=window)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        fig.colorbar(shown, ax=ax, fraction=0.046)
    rows, cols = np.nonzero(s.mask)
    centre = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
    series = s.signals[rows[centre], cols[centre]]
    ax = axes[1, 3]
    ax.plot(np.abs(series) / np.abs(series).max(), linewidth=0.5)
    ax.set_title(
        f"fingerprint at ({rows[centre]}, {cols[centre]}): "
        f"T1 {t1_ms[rows[centre], cols[centre]]:.0f}, T2 {t2_ms[rows[centre], cols[centre]]:.0f} ms",
        fontsize=8,
    )
    ax.set_xlabel("repetition")
    fig.suptitle(
        f"{s.subject_id} {s.slice_id}: {s.signals.shape[0]}x{s.signals.shape[1]}x{s.n_reps}",
        fontsize=10,
    )
    fig.tight_layout()
    try:
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, dpi=80)
    finally:
        plt.close(fig)


def main(argv=None) -> int:
    """Command line: ``python -m rinq_jax.data.files.preview SLICE.h5 --out PNG [--frame N]``."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("slice_file", type=Path, help="HDF5 slice file (docs/data_format.md)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--frame", type=int, default=100, help="time frame to show (default 100)")
    args = parser.parse_args(argv)
    try:
        save_preview(args.slice_file, args.out, args.frame)
    except (InputError, OSError) as err:  # one line, no traceback
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
