"""What ``train.py`` and ``eval.py`` share: argparse value types (imports nothing heavy)."""

from __future__ import annotations

import argparse

__all__ = ["positive_int", "non_negative_int", "positive_float"]


def positive_int(text: str) -> int:
    """An integer > 0, else argparse's one-line error."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0, else argparse's one-line error."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0, else argparse's one-line error."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    if value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value
