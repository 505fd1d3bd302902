"""Peak resident memory of a whole-slice workload, each run in a fresh interpreter.

`bench_memory` runs ``python -m benchmarks.inference MODEL`` or ``python -m
benchmarks.matching`` (their ``main``), which calls `print_peak_memory` on the workload: a
fresh process imports only that workload's modules, so its high-water mark is the
workload's own.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _peak_rss_bytes() -> int:
    """This process's resident high-water mark: VmHWM, which exec resets (ru_maxrss does not:
    Linux carries the parent's maximum into an exec'd child), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def print_peak_memory(workload: Callable[[], object]) -> None:
    """In a child process: run a whole-slice ``workload`` once, print peak RSS in bytes as JSON.

    Prints ``{"peak_rss_bytes", "import_rss_bytes" (before the workload), "seconds"}``.
    """
    base = _peak_rss_bytes()
    t = time.perf_counter()
    workload()
    peak = _peak_rss_bytes()
    print(
        json.dumps(
            {"peak_rss_bytes": peak, "import_rss_bytes": base, "seconds": time.perf_counter() - t}
        )
    )


def bench_memory(kind: str, n_pixels: int, chunk: int) -> dict:
    """Peak RSS of the whole-slice workload ``kind`` ("rnn1", "rnn3", "match") in a fresh interpreter."""
    workload = ["benchmarks.matching"] if kind == "match" else ["benchmarks.inference", kind]
    cmd = [sys.executable, "-m", *workload, "--pixels", str(n_pixels), "--chunk", str(chunk)]
    done = subprocess.run(
        cmd, capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1]
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["peak_rss_gib"] = out["peak_rss_bytes"] / 2**30
    out["pixels"] = n_pixels
    out["chunk"] = chunk
    return out
