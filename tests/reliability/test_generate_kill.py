"""The generator killed with SIGKILL mid-run leaves only valid files and resumes to completion."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rinq_jax import generate
from rinq_jax.data.datasets import phantom_dataset
from rinq_jax.data.files import io

ROOT = Path(__file__).resolve().parents[2]
FLAGS = [
    "--preset",
    "quick",
    "--matrix",
    "32",
    "--n-reps",
    "300",
    "--subjects",
    "1",
    "--slices",
    "3",
    "--rank",
    "10",
]
NAMES = [f"sub-00_slice-0{i}.h5" for i in range(3)]


def _dead_pid() -> int:
    """The pid of a process that has exited (not reused within this test, in practice)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_remove_stale_temp_files_keeps_those_of_running_processes(tmp_path):
    dead = tmp_path / f"a.h5.tmp-{_dead_pid()}"
    live = tmp_path / f"b.h5.tmp-{os.getpid()}"
    other = tmp_path / "c.tmp-notapid"
    for path in (dead, live, other):
        path.write_bytes(b"partial")
    assert phantom_dataset.remove_stale_temp_files(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])


def test_cli_refuses_bad_counts(capsys):
    for flags, message in ((["--rank", "0"], "rank must be >= 1"), (["--slices", "0"], "n_slices")):
        with pytest.raises(SystemExit) as exc:
            generate.main(["--out", "unused", *flags])
        assert exc.value.code == 2 and message in capsys.readouterr().err


# Run in a child process: the generator, whose slice writer kills its own process (SIGKILL)
# in the middle of writing the second slice, the HDF5 file open and its temporary on disk.
_KILLED_MID_WRITE = """
import os, signal, sys
from rinq_jax import generate
from rinq_jax.data.files import io

write, calls = io._write_contents, []

def write_then_die(f, s):
    calls.append(s)
    write(f, s)
    if len(calls) == 2:
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

io._write_contents = write_then_die
sys.exit(generate.main(sys.argv[1:]))
"""


@pytest.mark.slow  # a killed and a resumed tiny generation: about 35 s on 2 shared cores
def test_sigkill_mid_write_then_rerun_completes(tmp_path):
    out, cache = tmp_path / "data", tmp_path / "cache"
    out.mkdir()
    # A temporary file a killed writer left behind, and one of a running writer (this test).
    stale = out / f"{NAMES[2]}.tmp-{_dead_pid()}"
    live = out / f"other.h5.tmp-{os.getpid()}"
    stale.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(1000))
    live.write_bytes(b"in progress")

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-c", _KILLED_MID_WRITE, "--out", str(out), "--cache", str(cache),
               *FLAGS, "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    _, stderr = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    assert (out / f"{NAMES[1]}.tmp-{proc.pid}").is_file()  # the half-written second slice

    done = sorted(p.name for p in out.glob("*.h5"))
    assert done == NAMES[:1], done
    for name in done:  # every file present is complete and valid
        io.validate(out / name)
    first = (out / NAMES[0]).read_bytes()

    assert generate.main(["--out", str(out), "--cache", str(cache), *FLAGS, "--no-progress"]) == 0
    assert sorted(p.name for p in out.glob("*.h5")) == NAMES
    infos = [io.validate(out / name) for name in NAMES]
    assert all(info.shape == (32, 32, 300) for info in infos)
    assert (out / NAMES[0]).read_bytes() == first  # kept, not regenerated
    leftovers = sorted(p.name for p in out.glob("*.tmp-*"))
    assert leftovers == [live.name]  # the stale one removed, the running writer's kept
    # The resumed files equal an uninterrupted generation's (reproducible per slice).
    again = tmp_path / "again"
    generate.main(["--out", str(again), "--cache", str(cache), *FLAGS, "--no-progress"])
    for name in NAMES:
        np.testing.assert_array_equal(
            io.read_slice(out / name).signals, io.read_slice(again / name).signals
        )
