"""What ``train.py`` and ``eval.py`` share: argparse value types, process set-up (imports nothing heavy)."""

from __future__ import annotations

import argparse
import ctypes
import sys

__all__ = ["positive_int", "non_negative_int", "positive_float", "keep_freed_memory"]

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


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


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of returning it to the kernel.

    Why: XLA:CPU allocates a step's temporaries afresh, and with glibc's defaults the large
    ones are mapped anew each time, so every page faults in again. Measured per training step
    on 2 CPU cores: RNN1 69,900 -> 34,700 minor page faults, kernel time 0.157 -> 0.086 s,
    step 0.647 -> 0.618 s; RNN3 17,300 -> 4,300 faults, step 0.165 -> 0.153 s. How: one malloc
    arena, no mmap for large blocks, no trimming. The price: the process holds on to its peak
    memory until it exits.

    Process-wide, so only the command-line entry points call it, first thing (threads that
    already exist keep their arenas). Returns whether it applied (glibc on Linux only).
    """
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
    return all(mallopt(option, value) == 1 for option, value in settings)
