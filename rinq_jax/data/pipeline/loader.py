"""Patch loader over slice files: masked-pixel batches for training, patches of a slice.

:class:`PatchDataset` streams shuffled training batches of the masked pixels of a set of slice
files; :func:`slice_patches` yields every masked pixel of one slice for evaluation;
``rinq_jax.data.files.pixels.check_files`` checks a set of files before either, in one pass that
also returns each file's masked pixels and targets for the datasets to index. The input ``x: float32[B, P, P, T, C]``
is built by ``rinq_jax.data.pipeline.transforms`` (normalisation, channels, edge-replicated
patches).

* **Targets**: ``y_ms: float32[B, 2]`` = (T1, T2) in ms of the centre pixel, from ``t1_ms/t2_ms``
  (``target="true"``), ``t1_single_ms/t2_single_ms`` (``"single"``) or ``dm_t1_ms/dm_t2_ms``
  (``target="dm"``).
* **Measured B1** (``b1_input``, for a network that reads it): ``b1: float32[B, P, P]``, the
  file's ``b1_map`` at the patch pixels (`b1_patches`).

Streaming and shuffling
-----------------------
The dataset never holds the signals of a whole file, let alone of all files. Masked pixels are
grouped into **shards**: the masked pixels of ``block_rows`` consecutive image rows of one file.
An epoch's order is a two-level shuffle, deterministic in ``(seed, epoch)``: a generator
``numpy.random.Generator(PCG64(SeedSequence(seed, spawn_key=(epoch,))))`` (the ``epoch``-th
spawned child of ``seed``) permutes the shards, cuts the permuted list into buffers of
``shuffle_shards`` shards, and permutes the patches within each buffer. Batches are consecutive
slices of that order; each buffer's shards are read (their rows plus a ``P // 2`` row halo) when
its first batch is made and dropped after its last, so resuming at ``start_batch`` recomputes
the order (indices only) and reads nothing for the skipped batches.

Memory bound: about ``2 * shuffle_shards`` shards are held at once (a batch may straddle two
buffers), each ``(block_rows + P - 1) * W * T * C * 4`` bytes, plus ``prefetch`` ready batches of
``B * P * P * T * C * 4`` bytes. Paper size (W = 256, T = 3000, complex, P = 3) with the defaults
(``block_rows=8, shuffle_shards=8``): 16 * 61 MB ~ 1 GB, plus 2 * 55 MB for two batches of 256.
The pixel index (file, row, column, targets) of every masked pixel is kept: 20 bytes a pixel.

Batches are prepared by a background thread (``prefetch`` batches ahead, bounded queue,
``rinq_jax.data.pipeline.batching.prefetched``); closing the iterator (``close()``, ``break`` from a
``for`` loop, or garbage collection) stops and joins it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np

from rinq_jax.configs.models import INPUT_CHANNELS
from rinq_jax.data.files.format import TARGET_PAIRS
from rinq_jax.data.files.io import SliceInfo, as_slice_info, read_slice
from rinq_jax.data.files.pixels import SlicePixels, check_consistent, read_pixels
from rinq_jax.data.pipeline.batching import n_batches, prefetched
from rinq_jax.data.pipeline.transforms import (
    PATCH_SIZES,
    gather_patches,
    normalise_signals,
    project,
    to_channels,
)


def _load_block(
    path: str, row0: int, row1: int, input_kind: str, basis: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``[row0, row1)`` of a file's signals as network channels, with their norms.

    With a ``basis``, the series are first projected onto it (`transforms.project`); the norms
    are then the projections'.

    Returns:
        float32[row1 - row0, W, T, C] normalised channels, float32[row1 - row0, W] norms.

    """
    signals = read_slice(path, fields=["signals"], rows=(row0, row1)).signals
    if basis is not None:
        signals = project(signals, basis)
    normalised, norms = normalise_signals(signals)
    return to_channels(normalised, input_kind), norms


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


# --------------------------------------------------------------------------- the dataset


class PatchDataset:
    """Masked-pixel patches of a set of slice files, streamed in shuffled batches.

    Construction reads only metadata, the masks and the target maps (nothing for files given
    as :class:`SlicePixels` of the same target, as :func:`check_files` returns them). See
    ``rinq_jax.data.pipeline.transforms`` for the normalisation and edge handling, the module
    docstring for the shuffle and memory bound.

    Args:
        files: slice files (paths, :class:`SliceInfo` or :class:`SlicePixels`); all must share T
            and the sequence hash.
        patch_size: 1 or 3.
        input_kind: ``"complex"`` (C = 2) or ``"magnitude"`` (C = 1).
        target: ``"true"`` (``t1_ms/t2_ms``), ``"single"`` (``t1_single_ms/t2_single_ms``) or
            ``"dm"`` (``dm_t1_ms/dm_t2_ms``).
        block_rows: image rows per shard (the unit read from disk).
        shuffle_shards: shards per shuffle buffer (more: better mixing, more memory).
        prefetch: batches prepared ahead by the background thread (0: no thread).
        b1_input: also yield the patches' measured B1 (``b1_map``, read once per file).
        basis: complex64[r, T]: project the series onto it first (``subspace_input``).

    Raises:
        MrfFormatError: a file is malformed, lacks the target maps (or the ``b1_map`` asked
            for), or differs from the first file in T or sequence hash (the message names the
            odd file).

    """

    def __init__(
        self,
        files: Sequence[str | os.PathLike | SliceInfo | SlicePixels],
        patch_size: int = 1,
        input_kind: str = "complex",
        target: str = "true",
        *,
        block_rows: int = 8,
        shuffle_shards: int = 8,
        prefetch: int = 2,
        b1_input: bool = False,
        basis: np.ndarray | None = None,
    ):
        _check_choice("patch_size", patch_size, PATCH_SIZES)
        _check_choice("input_kind", input_kind, INPUT_CHANNELS)
        _check_choice("target", target, TARGET_PAIRS)
        files = list(files)
        if not files:
            raise ValueError("PatchDataset needs at least one file")
        if block_rows < 1 or shuffle_shards < 1:
            raise ValueError(
                f"block_rows, shuffle_shards must be >= 1: {block_rows, shuffle_shards}"
            )
        self.patch_size = patch_size
        self.input_kind = input_kind
        self.target = target
        self.block_rows = block_rows
        self.shuffle_shards = shuffle_shards
        self.prefetch = prefetch
        self.basis = basis
        self.infos = tuple(
            f.info if isinstance(f, SlicePixels) else as_slice_info(f) for f in files
        )
        self.files = tuple(info.path for info in self.infos)
        check_consistent(self.infos, self.target)
        self._b1_maps = [read_b1_map(f) for f in self.files] if b1_input else None
        self._index_pixels(
            [
                f if isinstance(f, SlicePixels) and f.target == target else read_pixels(i, target)
                for f, i in zip(files, self.infos, strict=True)
            ]
        )

    # ---- construction

    def _index_pixels(self, pixels: Sequence[SlicePixels]) -> None:
        """Masked pixels (file, row, col, targets), row-major per file, and their shards."""
        shard_keys, shard_base = [], 0
        for p in pixels:
            shard_keys.append(shard_base + p.rows // self.block_rows)
            shard_base += -(-p.info.n_rows // self.block_rows)
        self._file = np.concatenate(
            [np.full(p.rows.size, i, np.int32) for i, p in enumerate(pixels)]
        )
        self._row = np.concatenate([p.rows for p in pixels])
        self._col = np.concatenate([p.cols for p in pixels])
        self._y_ms = np.concatenate([p.y_ms for p in pixels])
        self._tissue = np.concatenate([p.tissue for p in pixels]).astype(np.int32)
        keys = np.concatenate(shard_keys)
        # keys are non-decreasing (files in order, rows ascending), so each shard is a
        # contiguous range of patch ids.
        _, starts, counts = np.unique(keys, return_index=True, return_counts=True)
        self._shard_start = starts.astype(np.int64)
        self._shard_stop = (starts + counts).astype(np.int64)
        self._shard_of_patch = np.repeat(np.arange(starts.size), counts)

    # ---- sizes

    @property
    def n_patches(self) -> int:
        """Number of masked pixels over all files (patches per epoch)."""
        return int(self._row.size)

    @property
    def targets_ms(self) -> np.ndarray:
        """float32[n_patches, 2]: the target (T1, T2) in ms of every masked pixel (read-only)."""
        view = self._y_ms.view()
        view.flags.writeable = False
        return view

    @property
    def n_reps(self) -> int:
        """Number of repetitions T."""
        return self.infos[0].n_reps

    @property
    def channels(self) -> int:
        """Channels C of ``x``: 2 for complex, 1 for magnitude."""
        return INPUT_CHANNELS[self.input_kind]

    @property
    def n_shards(self) -> int:
        """Number of (file, row-block) shards holding at least one masked pixel."""
        return int(self._shard_start.size)

    def n_batches(self, batch_size: int, drop_remainder: bool = True) -> int:
        """Batches per epoch."""
        return n_batches(self.n_patches, batch_size, drop_remainder)

    def locate(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Global patch ids -> (file index into ``files``, row, column) of the centre pixels."""
        index = np.asarray(index)
        return self._file[index], self._row[index], self._col[index]

    # ---- order and batches

    def epoch_order(self, seed: int, epoch: int) -> np.ndarray:
        """int64[n_patches]: the epoch's permutation of patch ids (two-level shuffle)."""
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(epoch,))))
        shards = rng.permutation(self.n_shards)
        parts = []
        for g in range(0, self.n_shards, self.shuffle_shards):
            group = shards[g : g + self.shuffle_shards]
            ids = np.concatenate(
                [np.arange(self._shard_start[s], self._shard_stop[s]) for s in group]
            )
            parts.append(rng.permutation(ids))
        return np.concatenate(parts).astype(np.int64)

    def batches(
        self,
        batch_size: int,
        seed: int,
        epoch: int,
        start_batch: int = 0,
        drop_remainder: bool = True,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Yield the epoch's batches, from ``start_batch`` on.

        Args:
            batch_size: B.
            seed: non-negative int; with ``epoch`` determines the order (same arguments,
                same batches).
            epoch: epoch number (each epoch has its own order).
            start_batch: skip this many batches without reading their data (resume).
            drop_remainder: drop the last, smaller batch.

        Yields:
            ``{"x": float32[B, P, P, T, C], "y_ms": float32[B, 2], "tissue": int32[B],
            "index": int64[B]}``; ``tissue`` is the centre's label (0 if the file has none),
            ``index`` the global patch id (see :meth:`locate`).

        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if start_batch < 0:
            raise ValueError(f"start_batch must be >= 0, got {start_batch}")
        order = self.epoch_order(seed, epoch)
        n_batches = self.n_batches(batch_size, drop_remainder)
        return prefetched(
            lambda: self._produce(order, batch_size, start_batch, n_batches), self.prefetch
        )

    def _produce(
        self, order: np.ndarray, batch_size: int, start_batch: int, n_batches: int
    ) -> Iterator[dict[str, np.ndarray]]:
        shard_of = self._shard_of_patch[order]
        # The last batch that needs each shard: its block is dropped right after that batch.
        last_batch = np.full(self.n_shards, -1)
        np.maximum.at(last_batch, shard_of, np.arange(order.size) // batch_size)
        blocks: dict[int, np.ndarray] = {}
        for b in range(start_batch, n_batches):
            ids = order[b * batch_size : (b + 1) * batch_size]
            shards = shard_of[b * batch_size : (b + 1) * batch_size]
            x = np.empty(
                (ids.size, self.patch_size, self.patch_size, self.n_reps, self.channels),
                np.float32,
            )
            for s in np.unique(shards):
                if s not in blocks:
                    blocks[s] = self._load_shard(s)
                row0, block = blocks[s]
                sel = shards == s
                f = self._file[ids[sel][0]]
                x[sel] = gather_patches(
                    block,
                    row0,
                    self.infos[f].n_rows,
                    self._row[ids[sel]],
                    self._col[ids[sel]],
                    self.patch_size,
                )
                if last_batch[s] <= b:
                    del blocks[s]
            batch = {"x": x, "y_ms": self._y_ms[ids], "tissue": self._tissue[ids], "index": ids}
            if self._b1_maps is not None:
                batch["b1"] = self._b1_patches(ids)
            yield batch

    def _b1_patches(self, ids: np.ndarray) -> np.ndarray:
        """float32[N, P, P] measured B1 of patches ``ids``."""
        out = np.empty((ids.size, self.patch_size, self.patch_size), np.float32)
        files = self._file[ids]
        for f in np.unique(files):
            sel = files == f
            out[sel] = b1_patches(
                self._b1_maps[f], self._row[ids[sel]], self._col[ids[sel]], self.patch_size
            )
        return out

    def _load_shard(self, shard: int) -> tuple[int, np.ndarray]:
        """(first row, float32[rows, W, T, C]) of a shard's rows plus the patch halo."""
        first = self._shard_start[shard]
        f = self._file[first]
        block_row0 = (self._row[first] // self.block_rows) * self.block_rows
        half = self.patch_size // 2
        row0 = max(0, block_row0 - half)
        row1 = min(self.infos[f].n_rows, block_row0 + self.block_rows + half)
        return row0, _load_block(self.files[f], row0, row1, self.input_kind, self.basis)[0]


# --------------------------------------------------------------------------- evaluation


def read_b1_map(file: str | os.PathLike | SliceInfo) -> np.ndarray:
    """float32[H, W] a slice's measured B1 map; MrfFormatError naming the file if it has none."""
    path = file.path if isinstance(file, SliceInfo) else file
    return read_slice(path, fields=["b1_map"]).b1_map


def b1_patches(b1_map: np.ndarray, rows: np.ndarray, cols: np.ndarray, patch_size: int):
    """float32[N, P, P]: ``b1_map`` float32[H, W] around (rows, cols).

    Edges are replicated as in the signals' patches (`transforms.gather_patches`).
    """
    return gather_patches(b1_map, 0, b1_map.shape[0], rows, cols, patch_size)


def slice_patches(
    file: str | os.PathLike | SliceInfo,
    patch_size: int = 1,
    input_kind: str = "complex",
    chunk_rows: int = 8,
    max_patches: int = 1024,
    return_norms: bool = False,
    basis: np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, ...]]:
    """Every masked pixel of one slice, in row-major order and bounded-memory chunks.

    Reads ``chunk_rows`` rows (plus the patch halo) at a time and yields at most
    ``max_patches`` patches per item: at paper size with P = 3, complex, ~60 MB of rows and
    ~220 MB of patches. With a ``basis`` the series are projected onto it first (`_load_block`).

    Yields:
        ``(x, pixels)`` or, with ``return_norms``, ``(x, pixels, norms)``:
        x: float32[N, P, P, T, C] (normalised as for training),
        pixels: int64[N, 2] (row, column) of the centre pixels,
        norms: float32[N] L2 norm of each centre signal (M0 scale).

    """
    _check_choice("patch_size", patch_size, PATCH_SIZES)
    _check_choice("input_kind", input_kind, INPUT_CHANNELS)
    info = as_slice_info(file)
    path = info.path
    mask = read_slice(path, fields=["mask"]).mask
    half = patch_size // 2
    for r0 in range(0, info.n_rows, chunk_rows):
        rows, cols = np.nonzero(mask[r0 : r0 + chunk_rows])
        if rows.size == 0:
            continue
        rows = rows + r0
        row0, row1 = max(0, r0 - half), min(info.n_rows, r0 + chunk_rows + half)
        block, norms = _load_block(path, row0, row1, input_kind, basis)
        for k in range(0, rows.size, max_patches):
            r, c = rows[k : k + max_patches], cols[k : k + max_patches]
            x = gather_patches(block, row0, info.n_rows, r, c, patch_size)
            pixels = np.stack([r, c], axis=-1).astype(np.int64)
            yield (x, pixels, norms[r - row0, c]) if return_norms else (x, pixels)
