"""The top-level command-line scripts (train.py, eval.py), importable by tests."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(filename: str):
    """Import a top-level script as a module, so that tests can call its ``main(argv)``."""
    spec = importlib.util.spec_from_file_location(f"{Path(filename).stem}_cli", ROOT / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
