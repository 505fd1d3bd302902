"""Patch loader, signal normalisation and data splits for training and evaluation.

Input to the networks (``x: float32[B, P, P, T, C]``)
-----------------------------------------------------
* **Normalisation** (:func:`normalise_signals`, the one function training and evaluation both
  call): each pixel's complex time series ``s`` (length ``T``) becomes
  ``s / ||s||_2 * sqrt(T)``, so its entries are O(1) whatever the receive gain, and the mean of
  ``|s_t|^2`` is 1. The norm ``||s||_2`` is returned alongside; it is the M0 scale for
  evaluation (M0 ~ norm / norm of the matched dictionary atom). An all-zero signal stays zero
  (norm 0) instead of becoming NaN. Every signal of a patch is normalised by its own norm.
* **Channels**: ``input_kind="complex"`` gives ``C = 2`` (real, imaginary parts of the normalised
  series); ``"magnitude"`` gives ``C = 1`` (``|normalised|``).
* **Patches**: ``P = 1`` is the pixel itself; ``P = 3`` its 3x3 neighbourhood, ``x[:, 1, 1]``
  being the centre. Neighbours outside the image are handled by **edge replication**
  (``numpy.pad(mode="edge")``, equivalently clamping the neighbour's row and column to the
  image): a pixel on the top row sees its own row again above it. Neighbours inside the image
  but outside the mask are served as they are (they are real, measured signals); only the
  centre pixels are restricted to the mask.
* **Targets**: ``y_ms: float32[B, 2]`` = (T1, T2) in ms of the centre pixel, from ``t1_ms/t2_ms``
  (``target="true"``) or ``dm_t1_ms/dm_t2_ms`` (``target="dm"``).

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

Batches are prepared by a background thread (``prefetch`` batches ahead, bounded queue); closing
the iterator (``close()``, ``break`` from a ``for`` loop, or garbage collection) stops and joins it.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from rinq_jax.data.io import TARGET_PAIRS, MrfFormatError, SliceInfo, inspect, read_slice

PATCH_SIZES = (1, 3)
INPUT_KINDS = {"complex": 2, "magnitude": 1}  # number of channels C
PADDING_MODE = "edge"  # for neighbours outside the image; see the module docstring


# --------------------------------------------------------------------------- pure helpers


def normalise_signals(signals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale each complex time series to L2 norm ``sqrt(T)``.

    Args:
        signals: complex[..., T] time series (any leading shape).

    Returns:
        normalised: complex64[..., T], ``signals / norms * sqrt(T)`` (zero where the norm is 0).
        norms: float32[...] the L2 norm of each input series (the M0 scale for evaluation).

    """
    signals = np.asarray(signals)
    n_reps = signals.shape[-1]
    norms = np.linalg.norm(signals, axis=-1).astype(np.float32)
    # Guarded division: background pixels can be exactly zero and must not become NaN.
    scale = np.where(norms > 0, np.sqrt(np.float32(n_reps)) / np.where(norms > 0, norms, 1), 0)
    return (signals * scale[..., None]).astype(np.complex64), norms


def to_channels(normalised: np.ndarray, input_kind: str) -> np.ndarray:
    """Complex series -> network channels.

    Args:
        normalised: complex[..., T] (normally the output of :func:`normalise_signals`).
        input_kind: ``"complex"`` (C = 2: real, imaginary) or ``"magnitude"`` (C = 1).

    Returns:
        float32[..., T, C].

    """
    if input_kind == "complex":
        return np.stack([normalised.real, normalised.imag], axis=-1).astype(np.float32)
    if input_kind == "magnitude":
        return np.abs(normalised)[..., None].astype(np.float32)
    raise ValueError(f"input_kind must be one of {tuple(INPUT_KINDS)}, got {input_kind!r}")


def _gather(
    block: np.ndarray,
    row0: int,
    n_rows: int,
    rows: np.ndarray,
    cols: np.ndarray,
    patch_size: int,
) -> np.ndarray:
    """Patches from a block holding image rows ``row0 ...`` of an image with ``n_rows`` rows.

    Edge replication is clamping the neighbour coordinates to the image, so no padded copy of
    the block is made. The block must contain every clamped row.
    """
    half = patch_size // 2
    offsets = np.arange(-half, half + 1)
    n_cols = block.shape[1]
    rr = np.clip(np.asarray(rows)[:, None] + offsets, 0, n_rows - 1) - row0  # [N, P]
    cc = np.clip(np.asarray(cols)[:, None] + offsets, 0, n_cols - 1)  # [N, P]
    return block[rr[:, :, None], cc[:, None, :]]


def extract_patches(
    image: np.ndarray, rows: np.ndarray, cols: np.ndarray, patch_size: int
) -> np.ndarray:
    """``patch_size`` x ``patch_size`` neighbourhoods of pixels, edges replicated.

    Args:
        image: [H, W, ...] any dtype.
        rows: int[N] centre pixel rows.
        cols: int[N] centre pixel columns.
        patch_size: odd P (1 or 3 in this project).

    Returns:
        [N, P, P, ...]; ``out[n, P // 2, P // 2] == image[rows[n], cols[n]]``.

    """
    if patch_size < 1 or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be a positive odd number, got {patch_size}")
    return _gather(image, 0, image.shape[0], rows, cols, patch_size)


def _load_block(path: str, row0: int, row1: int, input_kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``[row0, row1)`` of a file's signals as network channels, with their norms.

    Returns:
        float32[row1 - row0, W, T, C] normalised channels, float32[row1 - row0, W] norms.

    """
    signals = read_slice(path, fields=["signals"], rows=(row0, row1)).signals
    normalised, norms = normalise_signals(signals)
    return to_channels(normalised, input_kind), norms


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


# --------------------------------------------------------------------------- prefetching


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put unless the consumer has gone; returns whether the item was queued."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def n_batches(n_patches: int, batch_size: int, drop_remainder: bool = True) -> int:
    """Batches of ``batch_size`` in an epoch of ``n_patches`` (the last, short one kept or not)."""
    full, rest = divmod(n_patches, batch_size)
    return full + (0 if drop_remainder or rest == 0 else 1)


def prefetched(make_items: Callable[[], Iterator], prefetch: int) -> Iterator:
    """Run ``make_items()`` in a background thread, ``prefetch`` items ahead.

    Errors in the thread are re-raised in the consumer. When the consumer stops (exhausted,
    ``close()``, ``break``, garbage collection) the thread is told to stop and joined.
    """
    if prefetch <= 0:
        yield from make_items()
        return
    q: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def work():
        items = make_items()
        try:
            for item in items:
                if not _put(q, ("item", item), stop):
                    return
            _put(q, ("done", None), stop)
        except BaseException as err:  # forwarded to the consumer, which re-raises it
            _put(q, ("error", err), stop)
        finally:
            items.close()

    thread = threading.Thread(target=work, name="rinq-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "done":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=30)


# --------------------------------------------------------------------------- the dataset


class PatchDataset:
    """Masked-pixel patches of a set of slice files, streamed in shuffled batches.

    Construction reads only metadata, the masks and the target maps. See the module docstring
    for the normalisation, edge handling, shuffle and memory bound.

    Args:
        files: slice files (paths or :class:`SliceInfo`); all must share T and the sequence hash.
        patch_size: 1 or 3.
        input_kind: ``"complex"`` (C = 2) or ``"magnitude"`` (C = 1).
        target: ``"true"`` (``t1_ms/t2_ms``) or ``"dm"`` (``dm_t1_ms/dm_t2_ms``).
        block_rows: image rows per shard (the unit read from disk).
        shuffle_shards: shards per shuffle buffer (more: better mixing, more memory).
        prefetch: batches prepared ahead by the background thread (0: no thread).

    Raises:
        MrfFormatError: a file is malformed, lacks the target maps, or differs from the first
            file in T or sequence hash (the message names the odd file).

    """

    def __init__(
        self,
        files: Sequence[str | os.PathLike | SliceInfo],
        patch_size: int = 1,
        input_kind: str = "complex",
        target: str = "true",
        *,
        block_rows: int = 8,
        shuffle_shards: int = 8,
        prefetch: int = 2,
    ):
        _check_choice("patch_size", patch_size, PATCH_SIZES)
        _check_choice("input_kind", input_kind, INPUT_KINDS)
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
        self.infos = tuple(_info(f) for f in files)
        self.files = tuple(info.path for info in self.infos)
        self._check_consistent()
        self._index_pixels()

    # ---- construction

    def _check_consistent(self) -> None:
        _check_consistent(self.infos, self.target)

    def _index_pixels(self) -> None:
        """Masked pixels (file, row, col, targets), row-major per file, and their shards."""
        pair = TARGET_PAIRS[self.target]
        files, rows, cols, y_ms, tissue, shard_keys = [], [], [], [], [], []
        shard_base = 0
        for i, path in enumerate(self.files):
            has_tissue = "tissue" in self.infos[i].fields
            s = read_slice(path, fields=list(pair) + (["tissue"] if has_tissue else []))
            r, c = np.nonzero(s.mask)
            tissue.append(s.tissue[r, c] if has_tissue else np.zeros(r.size, np.uint8))
            files.append(np.full(r.size, i, np.int32))
            rows.append(r.astype(np.int32))
            cols.append(c.astype(np.int32))
            y_ms.append(np.stack([getattr(s, pair[0])[r, c], getattr(s, pair[1])[r, c]], -1))
            shard_keys.append(shard_base + r // self.block_rows)
            shard_base += -(-self.infos[i].n_rows // self.block_rows)
        self._file = np.concatenate(files)
        self._row = np.concatenate(rows)
        self._col = np.concatenate(cols)
        self._y_ms = np.concatenate(y_ms).astype(np.float32)
        self._tissue = np.concatenate(tissue).astype(np.int32)
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
    def n_reps(self) -> int:
        """Number of repetitions T."""
        return self.infos[0].n_reps

    @property
    def channels(self) -> int:
        """Channels C of ``x``: 2 for complex, 1 for magnitude."""
        return INPUT_KINDS[self.input_kind]

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
                x[sel] = _gather(
                    block,
                    row0,
                    self.infos[f].n_rows,
                    self._row[ids[sel]],
                    self._col[ids[sel]],
                    self.patch_size,
                )
                if last_batch[s] <= b:
                    del blocks[s]
            yield {"x": x, "y_ms": self._y_ms[ids], "tissue": self._tissue[ids], "index": ids}

    def _load_shard(self, shard: int) -> tuple[int, np.ndarray]:
        """(first row, float32[rows, W, T, C]) of a shard's rows plus the patch halo."""
        first = self._shard_start[shard]
        f = self._file[first]
        block_row0 = (self._row[first] // self.block_rows) * self.block_rows
        half = self.patch_size // 2
        row0 = max(0, block_row0 - half)
        row1 = min(self.infos[f].n_rows, block_row0 + self.block_rows + half)
        return row0, _load_block(self.files[f], row0, row1, self.input_kind)[0]


def _info(f: str | os.PathLike | SliceInfo) -> SliceInfo:
    return f if isinstance(f, SliceInfo) else inspect(f)


def _check_consistent(infos: Sequence[SliceInfo], target: str | None) -> None:
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
        if target is not None and not info.has_target(target):
            pair = TARGET_PAIRS[target]
            raise MrfFormatError(info.path, pair[0], f"missing; target={target!r} needs {pair}")


def check_files(
    files: Iterable[str | os.PathLike | SliceInfo], target: str | None = None
) -> list[SliceInfo]:
    """Check a set of slice files before training on (or evaluating) them, cheaply.

    Every file's metadata (:func:`~rinq_jax.data.io.inspect`) and every value of its 2-D maps
    (mask, T1/T2 in ms, M0, B1, ...) are checked, and all files must share the number of
    repetitions T and the sequence hash, and hold ``target``'s map pair when ``target`` is given.
    The signals are not read here (a paper-size slice holds 1.5 GB of them): their values are
    checked block by block as the loader reads them, so a NaN/Inf signal raises
    :class:`MrfFormatError` naming the file before it can reach a model (never masked).

    Returns:
        The files' SliceInfos, in the given order.

    Raises:
        MrfFormatError: the first problem found, naming the file and the field.
        ValueError: no files given.

    """
    infos = [_info(f) for f in files]
    if not infos:
        raise ValueError("check_files needs at least one file")
    _check_consistent(infos, target)
    for info in infos:
        maps = [name for name in info.fields if name != "signals"]
        read_slice(info.path, fields=maps)  # raises on NaN/Inf, units, ranges, empty mask
    return infos


# --------------------------------------------------------------------------- evaluation


def slice_patches(
    path: str | os.PathLike,
    patch_size: int = 1,
    input_kind: str = "complex",
    chunk_rows: int = 8,
    max_patches: int = 1024,
    return_norms: bool = False,
) -> Iterator[tuple[np.ndarray, ...]]:
    """Every masked pixel of one slice, in row-major order and bounded-memory chunks.

    Reads ``chunk_rows`` rows (plus the patch halo) at a time and yields at most
    ``max_patches`` patches per item: at paper size with P = 3, complex, ~60 MB of rows and
    ~220 MB of patches.

    Yields:
        ``(x, pixels)`` or, with ``return_norms``, ``(x, pixels, norms)``:
        x: float32[N, P, P, T, C] (normalised as for training),
        pixels: int64[N, 2] (row, column) of the centre pixels,
        norms: float32[N] L2 norm of each centre signal (M0 scale).

    """
    _check_choice("patch_size", patch_size, PATCH_SIZES)
    _check_choice("input_kind", input_kind, INPUT_KINDS)
    path = os.fspath(path)
    info = inspect(path)
    mask = read_slice(path, fields=["mask"]).mask
    half = patch_size // 2
    for r0 in range(0, info.n_rows, chunk_rows):
        rows, cols = np.nonzero(mask[r0 : r0 + chunk_rows])
        if rows.size == 0:
            continue
        rows = rows + r0
        row0, row1 = max(0, r0 - half), min(info.n_rows, r0 + chunk_rows + half)
        block, norms = _load_block(path, row0, row1, input_kind)
        for k in range(0, rows.size, max_patches):
            r, c = rows[k : k + max_patches], cols[k : k + max_patches]
            x = _gather(block, row0, info.n_rows, r, c, patch_size)
            pixels = np.stack([r, c], axis=-1).astype(np.int64)
            yield (x, pixels, norms[r - row0, c]) if return_norms else (x, pixels)


# --------------------------------------------------------------------------- splits


@dataclasses.dataclass(frozen=True)
class Split:
    """Disjoint train / validation / test files (paths)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]


def _unique_infos(files_or_infos: Iterable[str | os.PathLike | SliceInfo]) -> list[SliceInfo]:
    """SliceInfos sorted by (subject, slice, path); refuses two files of the same slice."""
    infos = sorted(
        (_info(f) for f in files_or_infos), key=lambda i: (i.subject_id, i.slice_id, i.path)
    )
    seen: dict[tuple[str, str], str] = {}
    for info in infos:
        key = (info.subject_id, info.slice_id)
        if key in seen:
            raise ValueError(
                f"{info.path} and {seen[key]} are the same slice (subject {key[0]!r}, "
                f"slice {key[1]!r}); splits must be disjoint by slice"
            )
        seen[key] = info.path
    return infos


def random_slice_split(
    files_or_infos: Iterable[str | os.PathLike | SliceInfo],
    n_train: int,
    n_val: int,
    n_test: int,
    seed: int,
) -> Split:
    """Random split by slice (the paper's 8/2/2 and 19/7/2), deterministic from ``seed``.

    Slices left over when ``n_train + n_val + n_test`` is below the number available are unused.
    The result does not depend on the order of ``files_or_infos``.

    Raises:
        ValueError: negative counts, more slices requested than available, duplicate slices.

    """
    infos = _unique_infos(files_or_infos)
    counts = (n_train, n_val, n_test)
    if min(counts) < 0:
        raise ValueError(f"split sizes must be >= 0, got {counts}")
    if sum(counts) > len(infos):
        raise ValueError(
            f"split {n_train}/{n_val}/{n_test} needs {sum(counts)} slices, only {len(infos)} given"
        )
    perm = np.random.default_rng(seed).permutation(len(infos))
    paths = [infos[i].path for i in perm]
    return Split(
        train=tuple(paths[:n_train]),
        val=tuple(paths[n_train : n_train + n_val]),
        test=tuple(paths[n_train + n_val : sum(counts)]),
    )


def leave_one_subject_out(
    files_or_infos: Iterable[str | os.PathLike | SliceInfo],
    test_subject: str,
    val_subject: str | None = None,
) -> Split:
    """All slices of ``test_subject`` for testing, of ``val_subject`` for validation, rest training.

    Raises:
        ValueError: unknown subject (the message lists the known ones), the same subject for
            test and validation, duplicate slices, or no subject left for training.

    """
    infos = _unique_infos(files_or_infos)
    subjects = sorted({info.subject_id for info in infos})
    for name, subject in (("test_subject", test_subject), ("val_subject", val_subject)):
        if subject is not None and subject not in subjects:
            raise ValueError(f"{name} {subject!r} not among the subjects {subjects}")
    if test_subject == val_subject:
        raise ValueError(f"test and validation subject must differ, both are {test_subject!r}")
    split = Split(
        train=tuple(i.path for i in infos if i.subject_id not in (test_subject, val_subject)),
        val=tuple(i.path for i in infos if i.subject_id == val_subject),
        test=tuple(i.path for i in infos if i.subject_id == test_subject),
    )
    if not split.train:
        raise ValueError(f"no subject left for training among {subjects}")
    return split
