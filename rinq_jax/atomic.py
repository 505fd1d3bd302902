"""Atomic file writing: write under a temporary name beside the target, then rename.

A reader never sees a half-written file, and a writer that fails (or is killed) leaves the
target as it was. The temporary name is ``<name>.tmp-<pid><suffixes>``: it keeps the target's
suffixes because matplotlib, nibabel and numpy pick the format from the file name, and its pid
lets `rinq_jax.data.datasets.phantom_dataset` remove the leftovers of killed writers. Data files are
written without the suffixes (``<name>.tmp-<pid>``), so that a reader globbing ``*.h5`` in the same
folder never picks up a file being written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, *, keep_suffixes: bool = True, fsync: bool = False
) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed onto ``path``, on error removed.

    Args:
      path: the target.
      keep_suffixes: end the temporary name with the target's suffixes (see the module doc).
      fsync: flush the written file to disk before the rename, so that a crash just after it
        cannot leave an empty target (for data files, which are expensive to make again).

    """
    path = Path(path)
    suffixes = "".join(path.suffixes) if keep_suffixes else ""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}{suffixes}")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
