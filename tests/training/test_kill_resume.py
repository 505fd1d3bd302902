"""train.py killed with SIGKILL mid-run and restarted ends exactly like an uninterrupted run."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from rinq_jax.training import checkpoints as ckpt

from .conftest import write_tiny_slices

ROOT = Path(__file__).resolve().parents[2]
# Full-size RNN3 on tiny files (T = 30): 3 training slices, batch 16 -> 6 steps an epoch.
ARGS = ["--model", "rnn3", "--steps", "15", "--batch-size", "16", "--checkpoint-every-steps", "2"]
ARGS += ["--target", "true"]  # the slice files hold the rate-weighted truth


def _command(data: Path, run: Path) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *ARGS, "--data-dir", str(data), "--workdir",
            str(run), "--no-progress"]  # fmt: skip


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _rows(run: Path):
    with (run / "metrics.csv").open(newline="") as f:
        drop = ("wall_s", "patches_per_s")  # timings differ between runs
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


@pytest.mark.slow  # three subprocess runs: about 60 s on 2 shared cores
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_tiny_slices(data)
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(_command(data, full), check=True, env=_env(), capture_output=True)

    proc = subprocess.Popen(_command(data, killed), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    # Kill once checkpoint 8 (mid-epoch 1) is complete, before the run can finish.
    while not (killed / ckpt.LATEST_DIR / "8").is_dir():
        assert proc.poll() is None, "run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    steps_done = max(int(p.name) for p in (killed / ckpt.LATEST_DIR).iterdir() if p.name.isdigit())
    assert steps_done < 15

    out = subprocess.run(_command(data, killed), check=True, env=_env(), capture_output=True,
                         text=True)  # fmt: skip
    assert "resuming" in out.stdout
    a, _ = ckpt.restore_latest(ckpt.make_manager(full / ckpt.LATEST_DIR, 10))
    b, _ = ckpt.restore_latest(ckpt.make_manager(killed / ckpt.LATEST_DIR, 10))
    assert int(a["step"]) == int(b["step"]) == 15
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert _rows(full) == _rows(killed)
