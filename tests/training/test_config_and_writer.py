"""TrainConfig validation and JSON round trip; the TensorBoard/CSV writer's encoding."""

from __future__ import annotations

import pytest

from rinq_jax.training.config import TrainConfig
from rinq_jax.training.metrics_writer import MetricsWriter
from rinq_jax.training.targets import TargetNorm

from .conftest import tensorboard_scalars


def test_config_json_round_trip():
    c = TrainConfig(model="rnn1", steps=5, learning_rate=1e-3, model_overrides=(("n_steps", 5),))
    assert TrainConfig.from_json(c.to_json()) == c
    with pytest.raises(ValueError, match="not resolved"):
        c.target_norm  # noqa: B018 - None offsets/scales are filled from the training data
    c = c.replace(t1_offset_ms=0.0, t2_offset_ms=0.0, t1_scale_ms=4000.0, t2_scale_ms=600.0)
    assert c.target_norm == TargetNorm((0.0, 0.0), (4000.0, 600.0), "linear")
    assert TrainConfig.from_json(c.to_json()) == c


@pytest.mark.parametrize(
    "kw",
    [
        {"model": "vgg"},
        {"input_kind": "phase"},
        {"target": "fake"},
        {"learning_rate": -1e-3},
        {"learning_rate": 0.0},
        {"batch_size": 0},
        {"steps": 0},
        {"t1_scale_ms": 0.0},
    ],
)
def test_config_refuses_bad_values(kw):
    with pytest.raises(ValueError):
        TrainConfig(**kw)


def test_config_refuses_unknown_json_fields():
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"model": "rnn3", "colour": "red"})


def test_tensorboard_reads_the_scalars_back(tmp_path):
    w = MetricsWriter(tmp_path)
    w.write(7, "val", {"val_loss_ms": 123.5, "epoch": 1})
    w.write(8, "train", {"loss": 0.25})
    w.close()
    assert tensorboard_scalars(tmp_path / "tensorboard") == {
        "val/val_loss_ms": [(7, 123.5)],
        "train/loss": [(8, 0.25)],
    }


def test_tensorboard_drops_the_steps_an_interrupted_run_logged_after_its_checkpoint(tmp_path):
    w = MetricsWriter(tmp_path)
    for s in (1, 2, 3, 4):
        w.write(s, "train", {"loss": float(s)})
    w.close()
    w = MetricsWriter(tmp_path, resume_step=2)
    w.write(3, "train", {"loss": 30.0})
    w.close()
    assert tensorboard_scalars(tmp_path / "tensorboard")["train/loss"] == [
        (1, 1.0),
        (2, 2.0),
        (3, 30.0),
    ]


def test_metrics_csv_drops_rows_after_resume_step(tmp_path):
    w = MetricsWriter(tmp_path)
    for s in (1, 2, 3, 4):
        w.write(s, "train", {"loss": float(s)})
    MetricsWriter(tmp_path, resume_step=2)
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["step", "1", "2"]
