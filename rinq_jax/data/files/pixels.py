"""The masked pixels of a set of slice files, checked in one pass before training.

:func:`check_files` checks a set of slice files (metadata, every 2-D map's values, agreement on
T, the sequence and the target maps) and returns each file's :class:`SlicePixels`: the masked
pixels' coordinates, target (T1, T2) in ms and tissue labels, which
``rinq_jax.data.pipeline.loader.PatchDataset`` indexes and the training targets' statistics come
from, so no file's maps are read twice.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence

import numpy as np

from rinq_jax.data.files.format import TARGET_PAIRS, MrfFormatError
from rinq_jax.data.files.io import SliceInfo, as_slice_info, read_slice


@dataclasses.dataclass(frozen=True, eq=False)
class SlicePixels:
    """A checked slice file's masked pixels and their targets: what a dataset indexes.

    Attributes:
        info: the file's metadata.
        target: ``"true"`` or ``"dm"``: which map pair ``y_ms`` holds.
        rows, cols: int32[N] image row and column of each masked pixel, row-major.
        y_ms: float32[N, 2] the target (T1, T2) in ms at those pixels.
        tissue: uint8[N] tissue labels there (0 when the file has no tissue map).

    """

    info: SliceInfo
    target: str
    rows: np.ndarray
    cols: np.ndarray
    y_ms: np.ndarray
    tissue: np.ndarray


def read_pixels(
    file: str | os.PathLike | SliceInfo, target: str, all_maps: bool = False
) -> SlicePixels:
    """Read (and check) a file's mask, target maps and tissue map into :class:`SlicePixels`.

    With ``all_maps`` every 2-D field is read, so every map's values are checked (units, ranges,
    NaN/Inf), not only the ones kept.
    """
    info = as_slice_info(file)
    pair = TARGET_PAIRS[target]
    has_tissue = "tissue" in info.fields
    if all_maps:
        fields = [name for name in info.fields if name != "signals"]
    else:
        fields = [*pair, *(["tissue"] if has_tissue else [])]
    s = read_slice(info.path, fields=fields)
    r, c = np.nonzero(s.mask)
    return SlicePixels(
        info=info,
        target=target,
        rows=r.astype(np.int32),
        cols=c.astype(np.int32),
        y_ms=np.stack([getattr(s, pair[0])[r, c], getattr(s, pair[1])[r, c]], -1).astype(
            np.float32
        ),
        tissue=s.tissue[r, c] if has_tissue else np.zeros(r.size, np.uint8),
    )


def check_consistent(infos: Sequence[SliceInfo], target: str) -> None:
    """Raise unless every file shares the first one's T and sequence hash and has the target."""
    first = infos[0]
    for info in infos:
        if info.n_reps != first.n_reps:
            raise MrfFormatError(
                info.path,
                "signals",
                f"expected T = {first.n_reps} repetitions like {first.path}, got {info.n_reps}",
            )
        if info.sequence_hash != first.sequence_hash:
            raise MrfFormatError(
                info.path,
                "attrs/sequence_hash",
                f"expected the sequence of {first.path} ({first.sequence_hash}), "
                f"got {info.sequence_hash}",
            )
        if not info.has_target(target):
            pair = TARGET_PAIRS[target]
            held = [t for t in TARGET_PAIRS if info.has_target(t)]
            raise MrfFormatError(
                info.path,
                pair[0],
                f"missing; target={target!r} needs {pair}; the file holds the targets {held} "
                "(train.py --target)",
            )


def check_files(
    files: Iterable[str | os.PathLike | SliceInfo], target: str = "true"
) -> list[SlicePixels]:
    """Check a set of slice files before training on them, in one pass over their 2-D maps.

    Every file's metadata (:func:`~rinq_jax.data.files.io.inspect`) and every value of its 2-D maps
    (mask, T1/T2 in ms, M0, B1, ...) are checked, and all files must share the number of
    repetitions T and the sequence hash, and hold ``target``'s map pair. The signals are not
    read here (a paper-size slice holds 1.5 GB of them): their values are checked block by block
    as the loader reads them, so a NaN/Inf signal raises :class:`MrfFormatError` naming the file
    before it can reach a model (never masked).

    Returns:
        The files' :class:`SlicePixels` (metadata, masked pixels, targets), in the given order:
        :class:`PatchDataset` indexes them without reading the files again.

    Raises:
        MrfFormatError: the first problem found, naming the file and the field.
        ValueError: no files given.

    """
    infos = [as_slice_info(f) for f in files]
    if not infos:
        raise ValueError("check_files needs at least one file")
    check_consistent(infos, target)
    return [read_pixels(info, target, all_maps=True) for info in infos]
