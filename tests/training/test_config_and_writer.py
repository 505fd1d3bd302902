"""TrainConfig validation and JSON round trip; the TensorBoard/CSV writer's encoding."""

from __future__ import annotations

import struct

import pytest

from rinq_jax.training.config import TrainConfig
from rinq_jax.training.metrics_writer import MetricsWriter, crc32c, encode_event, read_records


def test_config_json_round_trip():
    c = TrainConfig(model="rnn1", steps=5, learning_rate=1e-3, model_overrides=(("n_steps", 5),))
    assert TrainConfig.from_json(c.to_json()) == c
    with pytest.raises(ValueError, match="not resolved"):
        c.target_norm_ms  # noqa: B018 - None offsets/scales are filled from the training data
    c = c.replace(t1_offset_ms=0.0, t2_offset_ms=0.0, t1_scale_ms=4000.0, t2_scale_ms=600.0)
    assert c.target_norm_ms == ((0.0, 0.0), (4000.0, 600.0))
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


def test_crc32c_known_value():
    assert crc32c(b"123456789") == 0xE3069283


def test_event_file_records(tmp_path):
    w = MetricsWriter(tmp_path)
    w.write(7, "val", {"val_loss_ms": 123.5, "epoch": 1})
    (path,) = (tmp_path / "tensorboard").iterdir()
    header, event = read_records(path)
    assert b"brain.Event:2" in header
    assert event == encode_event(
        struct.unpack("<d", event[1:9])[0], 7, scalars={"val/val_loss_ms": 123.5}
    )
    assert b"val/val_loss_ms" in event and struct.pack("<f", 123.5) in event


def test_metrics_csv_drops_rows_after_resume_step(tmp_path):
    w = MetricsWriter(tmp_path)
    for s in (1, 2, 3, 4):
        w.write(s, "train", {"loss": float(s)})
    MetricsWriter(tmp_path, resume_step=2)
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["step", "1", "2"]
