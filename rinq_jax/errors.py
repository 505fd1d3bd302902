"""The one exception type for malformed input files, naming the file and the field at fault.

Slice files (`rinq_jax.data.format`), raw ISMRMRD scans (`rinq_jax.data.ismrmrd_import`) and
schedule files (`rinq_jax.physics.schedule_files`) all report problems as
:class:`MrfFormatError`, so the command-line tools print one line instead of a traceback.
"""

from __future__ import annotations

import os


class MrfFormatError(ValueError):
    """An input file (a slice, a raw scan, a schedule), or a slice about to be written, is malformed.

    Attributes:
        path: the file concerned.
        field: the dataset, attribute or group at fault (e.g. ``"t1_ms"``, ``"sequence/tr_ms"``,
            ``"attrs/format_version"``, or ``"file"`` for an unreadable file).

    """

    def __init__(self, path: str | os.PathLike, field: str, message: str):
        self.path = os.fspath(path)
        self.field = field
        super().__init__(f"{self.path}: field '{field}': {message}")


class MrfFileNotFoundError(MrfFormatError, FileNotFoundError):
    """The input file does not exist (field ``file``).

    Both an :class:`MrfFormatError` (one type for every problem with an input file) and a
    ``FileNotFoundError`` (what callers checking for a missing file expect).
    """
