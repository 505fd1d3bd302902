"""Train / validation / test splits of slice files, disjoint by slice.

:func:`random_slice_split` draws a random split by slice (the paper's 8/2/2 and 19/7/2) from a
seed. Files are identified by their
``subject_id`` and ``slice_id`` attributes (``rinq_jax.data.files.io.inspect``); two files of the
same slice are refused.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

import numpy as np

from rinq_jax.data.files.io import SliceInfo, as_slice_info
from rinq_jax.errors import InputError


@dataclasses.dataclass(frozen=True)
class Split:
    """Disjoint train / validation / test files (paths)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]


def _unique_infos(files_or_infos: Iterable[str | os.PathLike | SliceInfo]) -> list[SliceInfo]:
    """SliceInfos sorted by (subject, slice, path); refuses two files of the same slice."""
    infos = sorted(
        (as_slice_info(f) for f in files_or_infos), key=lambda i: (i.subject_id, i.slice_id, i.path)
    )
    seen: dict[tuple[str, str], str] = {}
    for info in infos:
        key = (info.subject_id, info.slice_id)
        if key in seen:
            raise InputError(
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
