"""The template-matching baseline on the same slices: maps, errors and a timed matching run.

Dictionary matching (DM) is what the paper's networks replace; its maps were the paper's ground
truth. Our slices carry the true T1/T2, so DM is scored against the truth like the networks.
The maps scored are the ``dm_t1_ms``/``dm_t2_ms`` stored in the file by the generator when
present (else the ones matched here); the time is always that of an actual matching run here
(read the signals, project onto the rank-K SVD basis, match against the cached rank-K paper-grid
dictionary), so it compares fairly with the networks' time per slice, which also includes
reading and normalising the signals.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from rinq_jax.configs.data import DICTIONARY_RANK
from rinq_jax.data.datasets import synthetic
from rinq_jax.data.files import io
from rinq_jax.physics import dictionary as dictionary_lib
from rinq_jax.physics.matching import match, match_with_b1

# B1 values of the matching dictionary when a slice has a B1 field (as `GenerateConfig`).
# How matching gets B1 (FISP-MRF's T2 is coupled to it): searched as a free dictionary
# dimension, taken from the file's measured ``b1_map``, or fixed at the nominal 1.
B1_MODES = ("free", "map", "nominal")


def default_cache_dir(path: str | Path) -> Path:
    """The generator's dictionary cache of a slice.

    ``<folder>/cache``, or the dataset's ``cache/`` for a slice inside a generated brain dataset
    (``<dataset>/test/x.h5``).
    """
    folder = Path(path).parent
    if (folder.parent / synthetic.MANIFEST).exists():
        return folder.parent / "cache"
    return folder / "cache"


def matching_dictionary(file: str | Path | io.SliceInfo, cache_dir: str | Path | None = None):
    """The rank-K paper-grid dictionary for a slice file's sequence, loaded from or built into a cache.

    The rank is the file's ``generator/dm_rank`` (default `configs.data.DICTIONARY_RANK`, at most T - 1); a B1 axis
    (`dictionary.MATCHING_B1_VALUES`) is used when the file has a measured ``b1_map`` or its true B1 is not 1
    everywhere inside the mask, as the generator does.
    """
    info = io.as_slice_info(file)
    path = Path(info.path)
    fields = ["b1"] if "b1" in info.fields else []
    s = io.read_slice(path, fields=fields)
    has_b1 = "b1_map" in info.fields or (s.b1 is not None and not np.allclose(s.b1[s.mask], 1.0))
    # Below T: `matching.match` tells coefficients from time series by their length, so a
    # rank equal to T would have the already projected coefficients projected again.
    rank = min(int(info.generator.get("dm_rank", DICTIONARY_RANK)), info.n_reps - 1)
    cache = cache_dir or default_cache_dir(path)
    return dictionary_lib.matching_dictionary(s.sequence, cache, rank, b1_axis=has_b1)


@dataclasses.dataclass(frozen=True)
class DmPrediction:
    """Dictionary-matching maps of one slice.

    Attributes:
        path: the slice file.
        t1_ms, t2_ms: float32[H, W] maps scored (stored in the file if present, else matched).
        mask: bool[H, W].
        seconds: wall time of the matching run (read, project, match; compilation excluded).
        source: "file" (stored maps) or "matched".
        agreement: fraction of masked pixels where the matched (T1, T2) equal the stored maps
            (None without stored maps): a check that the timed run is the same matching.
        m0: complex64[H, W] the matched proton density `MatchResult.m0` of the timed run
            (0 outside the mask; arbitrary units times receive phase).

    """

    path: str
    t1_ms: np.ndarray
    t2_ms: np.ndarray
    mask: np.ndarray
    seconds: float
    source: str
    agreement: float | None
    m0: np.ndarray | None = None


def match_slice(
    file: str | Path | io.SliceInfo, dictionary, *, b1_mode: str = "free", chunk_rows: int = 8
) -> DmPrediction:
    """Time dictionary matching of every masked pixel of a slice (memory: ``chunk_rows`` rows).

    ``b1_mode`` (`B1_MODES`): ``free`` searches the dictionary's B1 axis (the maps stored by
    the generator, when present, are scored); ``map`` matches each pixel at the file's
    measured ``b1_map``, ``nominal`` at B1 = 1 (`matching.match_with_b1`).

    Raises:
        MrfFormatError: the file is malformed.
        ValueError: the dictionary was simulated for another sequence or T.

    """
    info = io.as_slice_info(file)
    path = info.path
    if dictionary.n_reps != info.n_reps:
        raise ValueError(
            f"{path}: the matching dictionary has T = {dictionary.n_reps}, the file T = {info.n_reps}"
        )
    if dictionary.sequence_hash != info.sequence_hash:
        raise ValueError(
            f"{path}: the matching dictionary was simulated for sequence {dictionary.sequence_hash}, "
            f"the file was acquired with {info.sequence_hash}"
        )
    if b1_mode not in B1_MODES:
        raise ValueError(f"b1_mode must be one of {B1_MODES}, got {b1_mode!r}")
    k = dictionary.atoms.shape[1]
    match(np.zeros((1, k), np.complex64), dictionary)  # compile before timing
    mask = io.read_slice(path, fields=["mask"]).mask
    b1 = 1.0
    if b1_mode == "map":
        b1 = io.read_slice(path, fields=["b1_map"]).b1_map[mask]
    start = time.perf_counter()
    coefficients = []
    for r0 in range(0, info.n_rows, chunk_rows):
        block_mask = mask[r0 : r0 + chunk_rows]
        if block_mask.any():
            block = io.read_slice(path, fields=["signals"], rows=(r0, r0 + chunk_rows)).signals
            coefficients.append(dictionary.project(block[block_mask]))
    coefficients = np.concatenate(coefficients)
    if b1_mode == "free":
        result = match(coefficients, dictionary)
    else:
        result = match_with_b1(coefficients, dictionary, b1)
    seconds = time.perf_counter() - start
    t1_ms = np.zeros(mask.shape, np.float32)
    t2_ms = np.zeros(mask.shape, np.float32)
    m0 = np.zeros(mask.shape, np.complex64)
    t1_ms[mask], t2_ms[mask], m0[mask] = result.t1_ms, result.t2_ms, result.m0
    if b1_mode == "free" and info.has_target("dm"):
        stored = io.read_slice(path, fields=["dm_t1_ms", "dm_t2_ms"])
        same = (stored.dm_t1_ms[mask] == result.t1_ms) & (stored.dm_t2_ms[mask] == result.t2_ms)
        return DmPrediction(
            path, stored.dm_t1_ms, stored.dm_t2_ms, mask, seconds, "file", float(np.mean(same)), m0
        )
    return DmPrediction(path, t1_ms, t2_ms, mask, seconds, "matched", None, m0)
