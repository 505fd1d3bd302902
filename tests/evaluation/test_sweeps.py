"""Robustness sweep on simulated 32 x 32 slices with T = 30 and the tiny trained checkpoint."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rinq_jax.data.datasets import phantom_dataset
from rinq_jax.data.files import io
from rinq_jax.experiments import sweeps


def test_settings_vary_one_parameter():
    base = phantom_dataset.PRESETS["quick"]
    s = sweeps.settings(base, snrs=(10.0, None), undersamplings=(48, 12))
    assert [x.name for x in s] == ["snr-10", "snr-inf", "undersampling-48", "undersampling-12"]
    assert s[1].config.snr is None and s[1].config.undersampling == 48
    assert s[3].config.undersampling == 12 and s[3].config.snr == base.snr
    with pytest.raises(ValueError):
        sweeps.settings(base, snrs=(), undersamplings=(7,))  # 7 does not divide 48


def test_sweep_end_to_end(tiny_run, tmp_path):
    base = dataclasses.replace(phantom_dataset.PRESETS["quick"], matrix=32, n_reps=30, rank=20)
    rows = sweeps.run(
        tiny_run,
        tmp_path / "sweeps",
        base,
        snrs=(10.0, None),
        undersamplings=(12,),
        cache_dir=tmp_path / "cache",
        log=lambda *_: None,
    )
    assert [(r["parameter"], r["value"]) for r in rows] == [
        ("snr", 10.0),
        ("snr", None),
        ("undersampling", 12),
    ]
    noisy, clean = rows[0]["dictionary matching"], rows[1]["dictionary matching"]
    assert clean["loss_ms"] < noisy["loss_ms"]  # matching improves without noise
    info = io.inspect(tmp_path / "sweeps" / "slices" / "snr-inf.h5")
    assert info.subject_id == "sub-100" and info.n_reps == 30
    assert "| snr noiseless |" in (tmp_path / "sweeps" / "sweeps.md").read_text()
    assert json.loads((tmp_path / "sweeps" / "sweeps.json").read_text())["rows"][2]["value"] == 12
    assert (tmp_path / "sweeps" / "sweeps.png").read_bytes()[:4] == b"\x89PNG"
