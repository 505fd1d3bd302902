"""Results written atomically: JSON (strict, NaN as null) and text.

The predicted maps as NIfTI are `rinq_jax.data.files.nifti`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rinq_jax.atomic import atomic_path
from rinq_jax.evaluation.metrics import jsonable


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented strict JSON (NaN -> null) atomically: temp name, then rename."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(jsonable(data), f, indent=2, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file (e.g. a markdown table) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
