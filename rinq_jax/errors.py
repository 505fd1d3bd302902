"""The project's input errors: what the command-line tools report in one line.

:class:`InputError` is input the project refuses (a data folder, a checkpoint that does not
fit the data, a run that cannot resume); the command-line tools catch it and nothing else, so
that an internal bug still shows its traceback. Malformed files are the subclass
:class:`MrfFormatError`, naming the file and the field at fault: slice files
(`rinq_jax.data.files.format`), raw ISMRMRD scans (`rinq_jax.data.raw.ismrmrd_import`) and schedule
files (`rinq_jax.physics.schedule_files`).
"""

from __future__ import annotations

import os


class InputError(ValueError):
    """Input the project refuses; the message says what and what was expected."""


class InputNotFoundError(InputError, FileNotFoundError):
    """A folder, run or file the input names does not exist."""


class MrfFormatError(InputError):
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


class MrfFileNotFoundError(MrfFormatError, InputNotFoundError):
    """The input file does not exist (field ``file``).

    Both an :class:`MrfFormatError` (one type for every problem with an input file) and a
    ``FileNotFoundError`` (what callers checking for a missing file expect).
    """
