import pytest

from rinq_jax.models import CNN1, DRONE, RNN1, RNN3, ModelSpec, get_model, model_spec


@pytest.mark.parametrize(
    "name,kind,patch,channels,lr,batch",
    [  # the paper's Table 5 (DRONE: our documented choice)
        ("cnn1", "magnitude", 1, 1, 5e-5, 128),
        ("cnn1", "complex", 1, 2, 5e-5, 128),
        ("rnn1", "magnitude", 1, 1, 5e-5, 128),
        ("rnn1", "complex", 1, 2, 1e-3, 128),
        ("rnn3", "complex", 3, 2, 1e-4, 32),
        ("drone", "magnitude", 1, 1, 1e-3, 128),
        ("drone", "complex", 1, 2, 1e-3, 128),
    ],
)
def test_specs_follow_table_5(name, kind, patch, channels, lr, batch):
    assert model_spec(name, kind) == ModelSpec(name, kind, patch, channels, lr, batch)


@pytest.mark.parametrize(
    "name,kind,cls,channels",
    [
        ("cnn1", "magnitude", CNN1, 1),
        ("rnn1", "complex", RNN1, 2),
        ("rnn3", "complex", RNN3, 2),
        ("drone", "magnitude", DRONE, 1),
    ],
)
def test_get_model_builds_the_right_module(name, kind, cls, channels):
    model = get_model(name, kind)
    assert type(model) is cls and model.channels == channels


def test_overrides_are_applied_and_checked():
    model = get_model("rnn3", "complex", lstm_unroll=5, output_relu=True, fast_gradients=True)
    assert (model.lstm_unroll, model.output_relu, model.fast_gradients) == (5, True, True)
    with pytest.raises(ValueError, match="unknown override.*lstm_hiden.*valid:.*lstm_hidden"):
        get_model("rnn1", "complex", lstm_hiden=10)
    with pytest.raises(ValueError, match="unknown override.*channels"):
        get_model("rnn1", "complex", channels=1)


def test_unknown_names_and_kinds_list_the_valid_ones():
    with pytest.raises(
        ValueError, match="unknown model 'rnn2'; valid names: cnn1, rnn1, rnn3, drone"
    ):
        model_spec("rnn2", "complex")
    with pytest.raises(
        ValueError, match="unknown input kind 'phase'; valid kinds: complex, magnitude"
    ):
        get_model("cnn1", "phase")


def test_rnn3_magnitude_is_refused():
    with pytest.raises(
        ValueError, match="not defined for 'magnitude'.*valid input kinds for 'rnn3': complex"
    ):
        get_model("rnn3", "magnitude")
