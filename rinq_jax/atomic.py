"""Atomic file writing: write under a temporary name beside the target, then rename.

A reader never sees a half-written file, and a writer that fails (or is killed) leaves the
target as it was. The temporary name is ``<name>.tmp-<pid><suffixes>``: it keeps the target's
suffixes because matplotlib, nibabel and numpy pick the format from the file name, and its pid
lets `rinq_jax.data.generate` remove the leftovers of killed writers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed onto ``path``, on error removed."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}{''.join(path.suffixes)}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
