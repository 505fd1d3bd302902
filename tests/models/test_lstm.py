import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rinq_jax.models.lstm import (
    ChunkedLSTM,
    LSTMConfig,
    _pad_time,
    _time_major,
    group_steps,
    lstm,
    steps_per_block,
)


def chunk_signal(x, n_steps):
    """Reference chunking: float32[B, P, P, T, C] -> [B, S, P*P*ceil(T/S)*C] (zero-padded T),
    within a step pixel-major, then time, then channel (the paper's alternated re/im)."""
    x = _pad_time(x, n_steps)
    batch, p0, p1, n_time, channels = x.shape
    step_len = n_time // n_steps
    x = x.reshape(batch, p0, p1, n_steps, step_len, channels)
    x = jnp.transpose(x, (0, 3, 1, 2, 4, 5))  # [B, S, P, P, T/S, C]
    return x.reshape(batch, n_steps, p0 * p1 * step_len * channels)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _reference_lstm(x, w_ih, w_hh, bias):
    """Naive float64 LSTM, one step and one gate at a time (gate order i, f, g, o)."""
    batch, steps, _ = x.shape
    hidden = w_hh.shape[0]
    h = np.zeros((batch, hidden))
    c = np.zeros((batch, hidden))
    out = np.zeros((batch, steps, hidden))
    for t in range(steps):
        gates = [
            x[:, t] @ w_ih[:, k * hidden : (k + 1) * hidden]
            + h @ w_hh[:, k * hidden : (k + 1) * hidden]
            + bias[k * hidden : (k + 1) * hidden]
            for k in range(4)
        ]
        i, f, g, o = _sigmoid(gates[0]), _sigmoid(gates[1]), np.tanh(gates[2]), _sigmoid(gates[3])
        c = f * c + i * g
        h = o * np.tanh(c)
        out[:, t] = h
    return out


@pytest.fixture(scope="module")
def small_lstm():
    batch, steps, features, hidden = 3, 6, 7, 5
    x = jax.random.normal(jax.random.key(0), (batch, steps, features), jnp.float32)
    lstm = ChunkedLSTM(hidden)
    params = lstm.init(jax.random.key(1), x)["params"]
    # a non-trivial bias, so that every gate's bias slice is exercised
    params = {**params, "bias": jax.random.normal(jax.random.key(2), (4 * hidden,)) * 0.5}
    return lstm, params, x


def test_matches_naive_step_by_step_reference(small_lstm):
    # None picks by width (here F > H: separate input projection); both paths must agree.
    lstm, params, x = small_lstm
    out = lstm.apply({"params": params}, x)
    ref = _reference_lstm(
        *(np.asarray(a, np.float64) for a in (x, params["w_ih"], params["w_hh"], params["bias"]))
    )
    assert out.shape == ref.shape == (3, 6, 5)
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rows", [1, 3, 6, 9, 1000])
def test_blocked_projection_matches_reference(small_lstm, rows):
    # batch 3, 6 steps: rows 1, 3, 6, 9, 1000 -> blocks of 1, 1, 2, 3 and 6 steps.
    lstm, params, x = small_lstm
    out = ChunkedLSTM(lstm.hidden, projection_rows=rows).apply({"params": params}, x)
    ref = _reference_lstm(
        *(np.asarray(a, np.float64) for a in (x, params["w_ih"], params["w_hh"], params["bias"]))
    )
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-5)


def test_steps_per_block_divides_the_sequence():
    assert steps_per_block(30, 32, 1024) == 30
    assert steps_per_block(30, 512, 1024) == 2
    assert steps_per_block(30, 300, 1024) == 3
    assert steps_per_block(30, 4096, 1024) == 1
    assert steps_per_block(7, 1, 6) == 1  # 7 is prime


@pytest.mark.parametrize("rows", [4, 100])
def test_grouped_layout_reads_the_chunked_steps(rows):
    # group_steps is a free reshape; the LSTM must see exactly chunk_signal's steps.
    x = jax.random.normal(jax.random.key(4), (4, 3, 3, 12, 2), jnp.float32)
    lstm = ChunkedLSTM(5, projection_rows=rows)
    chunked = chunk_signal(x, 4)  # [4, 4, 54]
    params = lstm.init(jax.random.key(5), chunked)
    np.testing.assert_allclose(
        lstm.apply(params, group_steps(x, 4)), lstm.apply(params, chunked), atol=1e-6
    )
    # 5 steps do not divide T = 12: zeros after the last point fill the fifth step
    padded = jnp.concatenate([x, jnp.zeros((4, 3, 3, 3, 2))], axis=3)
    np.testing.assert_array_equal(group_steps(x, 5), group_steps(padded, 5))


@pytest.mark.parametrize("unroll", [2, 6])
def test_unroll_does_not_change_results(small_lstm, unroll):
    lstm, params, x = small_lstm
    out = ChunkedLSTM(lstm.hidden, unroll=unroll).apply({"params": params}, x)
    np.testing.assert_allclose(out, lstm.apply({"params": params}, x), atol=1e-6)


def test_parameter_count_and_init():
    features, hidden = 11, 4
    x = jnp.zeros((2, 3, features))
    params = ChunkedLSTM(hidden).init(jax.random.key(0), x)["params"]
    assert {k: v.shape for k, v in params.items()} == {
        "w_ih": (features, 4 * hidden),
        "w_hh": (hidden, 4 * hidden),
        "bias": (4 * hidden,),
    }
    # single bias (Keras): 4 * (in*hid + hid*hid + hid)
    assert sum(v.size for v in params.values()) == 4 * (11 * 4 + 4 * 4 + 4) == 256
    # forget gate (second quarter) starts at 1, the others at 0
    np.testing.assert_array_equal(params["bias"], np.repeat([0.0, 1.0, 0.0, 0.0], hidden))
    # orthogonal recurrent kernel: rows orthonormal
    w_hh = np.asarray(params["w_hh"])
    np.testing.assert_allclose(w_hh @ w_hh.T, np.eye(hidden), atol=1e-5)


def test_gradient_matches_reference_finite_difference(small_lstm):
    lstm, params, x = small_lstm

    def loss(w_hh):
        return jnp.sum(lstm.apply({"params": {**params, "w_hh": w_hh}}, x) ** 2)

    grad = jax.grad(loss)(params["w_hh"])
    direction = jax.random.normal(jax.random.key(3), params["w_hh"].shape)
    args = [np.asarray(a, np.float64) for a in (x, params["w_ih"], params["w_hh"], params["bias"])]
    eps = 1e-4

    def ref_loss(w_hh):
        return np.sum(_reference_lstm(args[0], args[1], w_hh, args[3]) ** 2)

    d = np.asarray(direction, np.float64)
    fd = (ref_loss(args[2] + eps * d) - ref_loss(args[2] - eps * d)) / (2 * eps)
    np.testing.assert_allclose(float(jnp.sum(grad * direction)), fd, rtol=1e-4)


def test_chunk_signal_interleaves_real_and_imaginary():
    n_time, n_steps = 12, 3
    t = np.arange(n_time, dtype=np.float32)
    # value = 10 * t + channel, so the layout can be read off
    x = jnp.asarray(10 * t[:, None] + np.array([0.0, 1.0]))[None, None, None]  # [1,1,1,12,2]
    steps = chunk_signal(x, n_steps)
    assert steps.shape == (1, 3, 8)
    np.testing.assert_array_equal(steps[0, 1], [40, 41, 50, 51, 60, 61, 70, 71])


def _lstm_steps(x, n_steps):
    """The steps [B, S, F] the LSTM reads from ``group_steps`` (its time-major layout)."""
    return jnp.swapaxes(_time_major(group_steps(x, n_steps)), 0, 1)


def test_lstm_steps_of_a_patch_keep_the_time_window_per_step():
    p, n_time, n_steps = 3, 6, 2
    pixel = np.arange(p * p, dtype=np.float32).reshape(p, p)
    t = np.arange(n_time, dtype=np.float32)
    # value = 100 * pixel + 10 * t + channel
    x = 100 * pixel[:, :, None, None] + 10 * t[None, None, :, None] + np.array([0.0, 1.0])
    steps = np.asarray(_lstm_steps(jnp.asarray(x)[None], n_steps))
    assert steps.shape == (1, 2, 9 * 3 * 2)
    # step 1 = time points 3..5 of every pixel; pixel-major, then time, then channel
    block = steps[0, 1].reshape(9, 3, 2)
    np.testing.assert_array_equal(block[4, :, 0], 400 + 10 * np.array([3, 4, 5]))
    np.testing.assert_array_equal(block[:, 0, 1], 100 * np.arange(9) + 31)


def test_lstm_steps_pad_a_length_the_steps_do_not_divide_and_rejects_bad_shapes():
    t = jnp.arange(1, 101, dtype=jnp.float32)  # T = 100 in S = 30 steps: 4 points each
    steps = _lstm_steps(t[None, None, None, :, None], 30)
    assert steps.shape == (1, 30, 4)
    np.testing.assert_array_equal(steps[0, 0], [1, 2, 3, 4])
    np.testing.assert_array_equal(steps[0, 24], [97, 98, 99, 100])
    np.testing.assert_array_equal(steps[0, 25:], 0.0)
    with pytest.raises(ValueError, match=r"\[batch, P, P, T, C\]"):
        group_steps(jnp.zeros((1, 100, 2)), 10)


def _autodiff_lstm(x, w_ih, w_hh, bias):
    """The textbook LSTM in jnp, differentiated by JAX: the reference for ``lstm``'s VJP."""
    hidden = w_hh.shape[0]
    h = c = jnp.zeros((x.shape[0], hidden))
    out = []
    for t in range(x.shape[2]):
        z = x[:, :, t].reshape(x.shape[0], -1) @ w_ih + h @ w_hh + bias
        i, f, g, o = (z[:, k * hidden : (k + 1) * hidden] for k in range(4))
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        out.append(h)
    return jnp.stack(out)  # [S, B, H]


@pytest.mark.parametrize(
    "cfg",
    [
        LSTMConfig(projection_rows=4, manual_gradient=True),
        LSTMConfig(8, manual_gradient=True),
        LSTMConfig(100, unroll=2, manual_gradient=True),
        LSTMConfig(8),
    ],
    ids=["manual-blocks-of-1", "manual-blocks-of-2", "manual-one-block", "autodiff"],
)
def test_gradient_equals_autodiff_of_the_textbook_lstm(cfg):
    # x: batch 4, 2 groups, 6 steps, 3 values per group (F = 6); H = 5.
    keys = jax.random.split(jax.random.key(6), 6)
    x = jax.random.normal(keys[0], (4, 2, 6, 3))
    w_ih = jax.random.normal(keys[1], (6, 20)) * 0.5
    w_hh = jax.random.normal(keys[2], (5, 20)) * 0.5
    bias = jax.random.normal(keys[3], (20,)) * 0.5
    d_out = jax.random.normal(keys[4], (6, 4, 5))  # a random cotangent of all hidden states
    args = (x, w_ih, w_hh, bias)

    def loss(fn):
        return lambda *a: jnp.sum(fn(*a) * d_out)

    ours = jax.grad(loss(lambda *a: lstm(cfg, *a)), argnums=(0, 1, 2, 3))(*args)
    ref = jax.grad(loss(_autodiff_lstm), argnums=(0, 1, 2, 3))(*args)
    np.testing.assert_allclose(lstm(cfg, *args), _autodiff_lstm(*args), atol=1e-5)
    for name, a, b in zip(("x", "w_ih", "w_hh", "bias"), ours, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)
