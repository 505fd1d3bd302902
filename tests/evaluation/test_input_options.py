"""The networks' input options: a measured B1 map, series projected on the dictionary subspace.

Each is trained, saved, and applied by `inference.predict_slice` as in training.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rinq_jax.data.files import io
from rinq_jax.data.pipeline import transforms
from rinq_jax.errors import MrfFormatError
from rinq_jax.evaluation import inference
from rinq_jax.training.config import TrainConfig

from .conftest import train_tiny, write_eval_slices


@pytest.fixture(scope="module")
def b1_run(tmp_path_factory):
    data = write_eval_slices(tmp_path_factory.mktemp("b1_data"), b1_map=True)
    run = train_tiny(data[0].parent, tmp_path_factory.mktemp("b1_runs") / "rnn3", b1_input=True)
    return data, run


def test_a_b1_checkpoint_maps_a_slice_with_its_measured_b1(b1_run, tmp_path):
    data, run = b1_run
    checkpoint = inference.load_checkpoint(run)
    assert checkpoint.metadata.config.b1_input and checkpoint.model.b1_input
    assert "measured B1" in checkpoint.name
    maps = inference.predict_slice(checkpoint, data[0])
    assert maps.mask.any() and np.isfinite(maps.t1_ms[maps.mask]).all()

    # the same signals with another B1 map give other maps: the network reads it
    other = tmp_path / "other_b1.h5"
    s = io.read_slice(data[0])
    io.write_slice(other, dataclasses.replace(s, b1_map=s.b1_map * 1.1))
    changed = inference.predict_slice(checkpoint, other)
    assert not np.allclose(changed.t1_ms[maps.mask], maps.t1_ms[maps.mask])

    # a scan without a B1 map is refused, naming the file and the field
    bare = tmp_path / "no_b1_map.h5"
    io.write_slice(bare, dataclasses.replace(s, b1_map=None))
    with pytest.raises(MrfFormatError, match=r"no_b1_map\.h5: field 'b1_map'"):
        inference.predict_slice(checkpoint, bare)


def test_b1_input_is_a_config_field_of_the_recurrent_models_only():
    config = TrainConfig(model="rnn3", b1_input=True)
    assert config.model_kwargs["b1_input"] is True
    assert TrainConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="only rnn1, rnn3 read a measured B1 map"):
        TrainConfig(model="cnn1", input_kind="magnitude", b1_input=True)
    with pytest.raises(ValueError, match="config field"):
        TrainConfig(model="rnn3", model_overrides=(("b1_input", True),))


def test_a_subspace_checkpoint_projects_every_slice_it_maps(tiny_data, tmp_path):
    """Inference applies the training's projection: a slice whose series were already
    projected (P P = P) gets the same maps; the checkpoint records the projection, and a
    checkpoint that does not is refused for it."""
    run = train_tiny(tiny_data, tmp_path / "rnn3", subspace_input=True)
    checkpoint = inference.load_checkpoint(run)
    assert checkpoint.metadata.signal_normalisation == transforms.signal_normalisation(True)
    path = sorted(tiny_data.glob("*.h5"))[0]
    maps = inference.predict_slice(checkpoint, path, cache_dir=tmp_path / "cache")
    s = io.read_slice(path)
    basis = transforms.input_subspace(s.sequence, tmp_path / "cache")
    projected = tmp_path / "projected.h5"
    io.write_slice(projected, dataclasses.replace(s, signals=transforms.project(s.signals, basis)))
    again = inference.predict_slice(checkpoint, projected, cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(again.t1_ms, maps.t1_ms, rtol=1e-4)
    np.testing.assert_allclose(again.t2_ms, maps.t2_ms, rtol=1e-4)

    plain = dataclasses.replace(
        checkpoint.metadata, signal_normalisation=transforms.SIGNAL_NORMALISATION
    )
    with pytest.raises(inference.IncompatibleCheckpointError, match="input normalisation"):
        inference.check_compatible(plain, io.as_slice_info(path))
