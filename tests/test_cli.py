"""Process set-up shared by the command-line entry points."""

import subprocess
import sys

import pytest

# In a fresh interpreter: malloc, touch and free a 64 MB block, then count the minor page
# faults of touching a second one (16,384 4-kB pages when the kernel maps it anew).
_FAULTS = """
import ctypes, resource, sys
from rinq_jax.cli import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 64 * 2**20
block = libc.malloc(size)
ctypes.memset(block, 1, size)
libc.free(block)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
ctypes.memset(libc.malloc(size), 1, size)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _second_touch_faults(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_keep_freed_memory_reuses_pages_instead_of_faulting_them_in_again():
    applied, kept = _second_touch_faults("keep")
    _, default = _second_touch_faults("default")
    assert applied == "True"
    assert default > 10_000  # glibc's default: the block is unmapped on free and mapped anew
    assert kept < 1_000
