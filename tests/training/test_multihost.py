"""Two processes joined by jax.distributed (CPU, gloo) train exactly like one with 2 devices."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    n_procs, pid, port, workdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={2 // n_procs}"
    import jax
    if n_procs > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"localhost:{port}", num_processes=n_procs, process_id=pid)
    from tests.training.conftest import TinyNet, ToyPatches
    from rinq_jax.training.config import TrainConfig
    from rinq_jax.training.input_pipeline import Datasets
    from rinq_jax.training.loop import train_and_evaluate
    ds = Datasets(train=ToyPatches(64, seed=0), val=ToyPatches(24, seed=1), files={"train": ["a"]})
    c = TrainConfig(model="rnn1", workdir=workdir, epochs=2, batch_size=8, learning_rate=1e-2,
                    progress=False, checkpoint_every_steps=3)
    s = train_and_evaluate(c, datasets=ds, model=TinyNet())
    print("RESULT", json.dumps([jax.device_count(), s.best_val_loss_ms, s.final_val]))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("XLA_FLAGS", None)
    return env


def _result(out: str):
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


@pytest.mark.slow  # three JAX processes and a local TCP port: 16-40 s on 2 shared cores
def test_two_processes_match_one_process_with_two_devices(tmp_path):
    port = str(_free_port())
    cmd = [sys.executable, "-c", SCRIPT]
    procs = [
        subprocess.Popen([*cmd, "2", str(i), port, str(tmp_path / "multi")], env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        for i in range(2)
    ]  # fmt: skip
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    single = subprocess.run([*cmd, "1", "0", port, str(tmp_path / "single")], env=_env(),
                            capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    multi0, multi1, one = _result(outs[0]), _result(outs[1]), _result(single.stdout)
    assert multi0[0] == multi1[0] == one[0] == 2
    assert multi0[1:] == multi1[1:] == one[1:]
    # Only the first process writes metrics: one TensorBoard file, one CSV.
    assert len(list((tmp_path / "multi" / "tensorboard").iterdir())) == 1
