"""Models: parameter counts against the paper and the README, shapes, parameter paths."""

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rinq_jax.models import get_model, model_spec
from rinq_jax.models.registry import parameter_count

ALL = [
    ("cnn1", "magnitude"),
    ("cnn1", "complex"),
    ("rnn1", "magnitude"),
    ("rnn1", "complex"),
    ("rnn3", "complex"),
    ("drone", "magnitude"),
    ("drone", "complex"),
]


def _n_params(tree):
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _abstract_variables(name, kind, n_time=3000, batch=2, **overrides):
    """Variables' shapes via eval_shape: full-size models without any init compute."""
    spec = model_spec(name, kind)
    model = get_model(name, kind, **overrides)
    x = jax.ShapeDtypeStruct(
        (batch, spec.patch_size, spec.patch_size, n_time, spec.channels), jnp.float32
    )
    return jax.eval_shape(lambda x: model.init({"params": jax.random.key(0)}, x, train=False), x)


def _dense(n_in, n_out):
    return n_in * n_out + n_out


def _lstm(n_in, hidden):
    return 4 * (n_in * hidden + hidden * hidden + hidden)


def _bn(*features):  # trainable scale and bias per feature
    return 2 * sum(features)


def _rnn_expected(n_in, hidden, fc4_in):
    return (
        _lstm(n_in, hidden)
        + _dense(hidden, 500)
        + _dense(500, 250)
        + _dense(30 * 250, 360)
        + _dense(fc4_in, 2)
        + _bn(hidden, 500, 250, 360)
    )


def _cnn_expected(channels):
    conv = 15 * channels * 30 + 30 + 10 * 30 * 60 + 60 + 5 * 60 * 120 + 120 + 3 * 120 * 240 + 240
    fc = _dense(23 * 240, 1000) + _dense(1000, 500) + _dense(500, 300) + _dense(300, 2)
    return conv + fc + _bn(30, 60, 120, 240, 1000, 500, 300)


# (name, kind) -> (hand-computed count, the paper's count in millions or None)
EXPECTED = {
    ("cnn1", "magnitude"): (_cnn_expected(1), 6.3),
    ("cnn1", "complex"): (_cnn_expected(2), 6.3),
    ("rnn1", "magnitude"): (_rnn_expected(100, 1000, 360), 7.7),
    ("rnn1", "complex"): (_rnn_expected(200, 1000, 360), 8.1),
    ("rnn3", "complex"): (_rnn_expected(1800, 500, 40), 7.7),
    ("drone", "magnitude"): (_dense(3000, 300) + _dense(300, 300) + _dense(300, 2), None),
    ("drone", "complex"): (_dense(6000, 300) + _dense(300, 300) + _dense(300, 2), None),
}


@pytest.mark.parametrize("name,kind", ALL)
def test_parameter_counts_match_hand_formula_and_paper(name, kind):
    variables = _abstract_variables(name, kind)
    expected, paper_millions = EXPECTED[(name, kind)]
    assert _n_params(variables["params"]) == expected
    if paper_millions is not None:
        assert abs(expected / 1e6 - paper_millions) / paper_millions < 0.02
        # the statement holds with or without counting BN's running statistics
        with_stats = expected + _n_params(variables["batch_stats"])
        assert abs(with_stats / 1e6 - paper_millions) / paper_millions < 0.02


@pytest.mark.parametrize("n_time", [500, 1000, 1024, 5000])
@pytest.mark.parametrize(
    "name,kind,pixels,channels,hidden,fc4_in",
    [("rnn1", "complex", 1, 2, 1000, 360), ("rnn3", "complex", 9, 2, 500, 40)],
)
def test_rnns_keep_30_steps_whose_width_follows_the_schedule_length(
    name, kind, pixels, channels, hidden, fc4_in, n_time
):
    """Another schedule length: still 30 LSTM steps (FC 7,500 -> 360 unchanged), each
    ceil(T / 30) points wide (the last zero-padded), so only the LSTM's input weights change;
    the README's table of counts per length is `parameter_count`'s."""
    n_in = pixels * -(-n_time // 30) * channels
    assert parameter_count(name, kind, n_time) == _rnn_expected(n_in, hidden, fc4_in)


def test_readme_states_the_counts_per_schedule_length():
    lines = (Path(__file__).parents[2] / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| repetitions T |"))
    lengths = [int(c.split()[0].replace(",", "")) for c in lines[start].strip("|").split("|")[1:]]
    rows = {"RNN1 complex": ("rnn1", "complex"), "RNN3": ("rnn3", "complex")}
    for line in lines[start + 2 : start + 4]:
        label, *counts = (c.strip() for c in line.strip("|").split("|"))
        for n_reps, count in zip(lengths, counts, strict=True):
            assert int(count.replace(",", "")) == parameter_count(*rows[label], n_reps)


def test_readme_states_the_models_parameter_counts():
    """The README's model table gives each model's count as the code builds it."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0].lower() in {"cnn1", "rnn1", "rnn3", "drone"}:
            kinds = ["magnitude", "complex"] if "/" in cells[1] else [cells[1].split()[0]]
            counts = [int(c.replace(",", "")) for c in cells[2].split("/")]
            rows.update({(cells[0].lower(), k): n for k, n in zip(kinds, counts, strict=True)})
    assert sorted(rows) == sorted(ALL)
    for name, kind in ALL:
        assert rows[(name, kind)] == _n_params(_abstract_variables(name, kind)["params"])


def test_stable_parameter_paths():
    rnn3 = _abstract_variables("rnn3", "complex")["params"]
    assert sorted(rnn3) == [
        "bn_fc1",
        "bn_fc2",
        "bn_fc3",
        "bn_lstm",
        "fc1",
        "fc2",
        "fc3",
        "fc4",
        "lstm",
    ]
    assert rnn3["lstm"]["w_ih"].shape == (1800, 2000)
    assert rnn3["fc3"]["kernel"].shape == (7500, 360)
    assert rnn3["fc4"]["kernel"].shape == (40, 2)
    cnn = _abstract_variables("cnn1", "complex")["params"]
    assert cnn["conv1"]["kernel"].shape == (15, 2, 30)
    assert cnn["fc1"]["kernel"].shape == (5520, 1000)
    drone = _abstract_variables("drone", "complex")["params"]
    assert sorted(drone) == ["fc1", "fc2", "fc3"]


@pytest.mark.parametrize("name,kind", ALL)
def test_output_shapes_full_size(name, kind):
    # eval_shape traces the whole forward pass at T = 3000 (flatten 7500 / 5520 included)
    spec = model_spec(name, kind)
    model = get_model(name, kind)
    x = jax.ShapeDtypeStruct(
        (4, spec.patch_size, spec.patch_size, 3000, spec.channels), jnp.float32
    )
    variables = _abstract_variables(name, kind, batch=4)
    y = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
    assert (y.shape, y.dtype) == ((4, 2), jnp.float32)
    y_train, updates = jax.eval_shape(
        lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]), variables, x
    )
    assert y_train.shape == (4, 2)
    assert jax.tree.structure(updates.get("batch_stats", {})) == jax.tree.structure(
        variables.get("batch_stats", {})
    )


# Small concrete models (T = 300 as 30 steps of 10; LSTM 32 units): real numbers in
# seconds. Everything is jitted: eager Flax dispatches (and compiles) op by op.
N_TIME = 300


@functools.cache
def _small(name, kind, **overrides):
    spec = model_spec(name, kind)
    if name in ("rnn1", "rnn3"):
        overrides.setdefault("lstm_hidden", 32)
    model = get_model(name, kind, **overrides)
    x = jax.random.normal(
        jax.random.key(1), (4, spec.patch_size, spec.patch_size, N_TIME, spec.channels), jnp.float32
    )
    variables = jax.jit(lambda x: model.init({"params": jax.random.key(0)}, x, train=False))(x)
    apply = jax.jit(model.apply, static_argnames=("train", "mutable", "capture_intermediates"))
    return model, apply, variables, x


@pytest.mark.parametrize(
    "name,kind", [("cnn1", "complex"), ("rnn1", "magnitude"), ("rnn3", "complex")]
)
def test_batch_stats_update_in_train_mode_only(name, kind):
    _, apply, variables, x = _small(name, kind)
    y_eval = apply(variables, x, train=False)
    y_train, updates = apply(variables, x, train=True, mutable=("batch_stats",))
    assert y_eval.shape == y_train.shape == (4, 2)
    assert np.all(np.isfinite(y_train))
    old, new = variables["batch_stats"], updates["batch_stats"]
    for layer in old:
        # momentum 0.99: new mean = 0.99 * 0 + 0.01 * batch mean, so it must move
        assert not np.allclose(old[layer]["mean"], new[layer]["mean"]), layer
        assert not np.allclose(old[layer]["var"], new[layer]["var"]), layer
    # batch statistics (train) and running statistics (eval) normalise differently
    assert not np.allclose(y_eval, y_train)


def test_bn_mean_update_equals_momentum_formula():
    _, apply, variables, x = _small("cnn1", "complex")
    _, updates = apply(variables, x, train=True, mutable=("batch_stats",))
    _, state = apply(
        variables,
        x,
        train=True,
        mutable=("batch_stats", "intermediates"),
        capture_intermediates=lambda mdl, _: mdl.name == "conv1",
    )
    conv1_out = state["intermediates"]["conv1"]["__call__"][0]  # [B, L, 30]
    expected = 0.01 * np.mean(np.asarray(conv1_out), axis=(0, 1))
    np.testing.assert_allclose(
        updates["batch_stats"]["bn_conv1"]["mean"], expected, rtol=1e-4, atol=1e-7
    )


def test_rnn3_output_is_the_median_of_the_nine_neighbour_predictions():
    _, apply, variables, x = _small("rnn3", "complex")
    y, state = apply(
        variables,
        x,
        train=False,
        mutable=("intermediates",),
        capture_intermediates=lambda mdl, _: mdl.name == "fc4",
    )
    per_neighbour = state["intermediates"]["fc4"]["__call__"][0]  # [B, 3, 3, 2]
    assert per_neighbour.shape == (4, 3, 3, 2)
    np.testing.assert_array_equal(y, jnp.median(per_neighbour.reshape(4, 9, 2), axis=1))


def test_rnn3_gradients_are_finite_and_reach_every_layer():
    _, apply, variables, x = _small("rnn3", "complex")

    def loss(params):
        y, _ = apply(
            {"params": params, "batch_stats": variables["batch_stats"]},
            x,
            train=True,
            mutable=("batch_stats",),
        )
        return jnp.mean((y - 0.5) ** 2)

    grads = jax.jit(jax.grad(loss))(variables["params"])
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        assert np.all(np.isfinite(g)), path
        assert np.any(g != 0), path


@pytest.mark.parametrize(
    "name,kind", [("cnn1", "magnitude"), ("drone", "complex"), ("rnn1", "complex")]
)
def test_output_relu_option(name, kind):
    key = "output_sigmoid" if name == "drone" else "output_relu"
    _, apply, variables, x = _small(name, kind, **{key: True})
    y = apply(variables, x, train=False)
    assert np.all(y >= 0) if name != "drone" else np.all((y > 0) & (y < 1))


@pytest.mark.parametrize(
    "name,kind,shape,match",
    [
        ("rnn3", "complex", (2, 1, 1, 300, 2), "3x3 patches"),
        ("rnn1", "complex", (2, 1, 1, 300, 1), "2 channel"),
        ("cnn1", "magnitude", (2, 300, 1), "5 dimensions|got 3 dimensions"),
        ("cnn1", "complex", (2, 1, 1, 60, 2), "needs more time points"),
        ("drone", "magnitude", (2, 3, 3, 300, 1), "1x1 patches"),
    ],
)
def test_bad_inputs_raise(name, kind, shape, match):
    model = get_model(name, kind)
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    with pytest.raises(ValueError, match=match):
        jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


@pytest.mark.parametrize("name", ["rnn1", "rnn3"])
def test_measured_b1_enters_only_through_its_lstm_input_weights(name):
    """A b1_input model is the paper's model plus one LSTM input per pixel and step.

    With those weights removed, the paper's model on the remaining parameters gives the same
    output; with them, the output depends on B1, and gradients w.r.t. B1 match finite
    differences.
    """
    plain, apply, _, x = _small(name, "complex")
    with_b1 = get_model(name, "complex", lstm_hidden=32, b1_input=True)
    p = model_spec(name, "complex").patch_size
    b1 = jax.random.uniform(jax.random.key(2), (4, p, p), minval=0.8, maxval=1.2)
    variables = with_b1.init({"params": jax.random.key(0)}, x, train=False, b1=b1)
    w_ih = variables["params"]["lstm"]["w_ih"]  # [P*P * (L + 1), 4H], pixel-major steps
    step_width = w_ih.shape[0] // p**2
    is_b1_row = np.arange(w_ih.shape[0]) % step_width == step_width - 1

    def with_w_ih(w):
        lstm = dict(variables["params"]["lstm"], w_ih=w)
        return {**variables, "params": dict(variables["params"], lstm=lstm)}

    expected = apply(with_w_ih(w_ih[~is_b1_row]), x, train=False)
    got = with_b1.apply(with_w_ih(w_ih.at[is_b1_row].set(0)), x, train=False, b1=b1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

    y = with_b1.apply(variables, x, train=False, b1=b1)
    assert not np.allclose(y, with_b1.apply(variables, x, train=False, b1=b1 + 0.1))
    with pytest.raises(ValueError, match="needs b1 of shape"):
        with_b1.apply(variables, x, train=False)
    with pytest.raises(ValueError, match="without b1_input"):
        plain.apply(_small(name, "complex")[2], x, train=False, b1=b1)
    if name == "rnn3":  # the median's kinks: its gradient is tested in test_quantile.py
        return
    with jax.enable_x64(True):  # the matmuls stay float32: a directional difference, 1 %
        as64 = functools.partial(jax.tree.map, lambda a: jnp.asarray(a, jnp.float64))
        variables64, x64, b1_64 = as64(variables), as64(x) * 0.02, as64(b1)

        def total(b):
            return with_b1.apply(variables64, x64, train=False, b1=b).sum()

        direction = jax.random.normal(jax.random.key(5), b1.shape, jnp.float64)
        eps = 1e-4
        difference = (total(b1_64 + eps * direction) - total(b1_64 - eps * direction)) / (2 * eps)
        derivative = jnp.vdot(jax.grad(total)(b1_64), direction)
        assert derivative == pytest.approx(float(difference), rel=1e-2)
