"""EPG simulation against closed forms, an isochromat simulation, and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rinq_jax.physics.epg import DEFAULT_N_STATES, simulate
from rinq_jax.physics.sequence import FispSequence, constant_sequence, paper_sequence


def test_steady_state_equals_ernst_formula_when_t2_much_shorter_than_tr():
    flip_deg, tr_ms, te_ms, t1_ms, t2_ms = 30.0, 15.0, 2.0, 800.0, 1.0
    signal = simulate(constant_sequence(600, flip_deg, tr_ms, te_ms), t1_ms, t2_ms)
    e1 = np.exp(-tr_ms / t1_ms)
    alpha = np.deg2rad(flip_deg)
    ernst = (1 - e1) / (1 - e1 * np.cos(alpha)) * np.sin(alpha) * np.exp(-te_ms / t2_ms)
    np.testing.assert_allclose(np.abs(signal[-50:]), ernst, rtol=1e-4)


def test_small_flip_inversion_recovery_follows_one_minus_two_exp():
    flip_deg, tr_ms, te_ms, ti_ms, t1_ms, t2_ms = 0.5, 10.0, 1.0, 15.0, 700.0, 5.0
    seq = constant_sequence(400, flip_deg, tr_ms, te_ms, ti_ms=ti_ms)
    signal = np.asarray(simulate(seq, t1_ms, t2_ms))
    # F+_0 = -i sin(alpha) Mz just after the pulse (phase 0); Mz is sampled at each pulse.
    pulse_times_ms = seq.times_ms() - te_ms
    mz = np.real(1j * signal) / (np.sin(np.deg2rad(flip_deg)) * np.exp(-te_ms / t2_ms))
    np.testing.assert_allclose(mz, 1 - 2 * np.exp(-pulse_times_ms / t1_ms), atol=3e-3)
    assert mz[0] < -0.9 and mz[-1] > 0.9


def test_zero_flip_gives_no_signal():
    seq = paper_sequence(200)
    zero = FispSequence(np.zeros(200), seq.tr_ms, seq.phase_deg, seq.te_ms, seq.ti_ms)
    assert np.abs(np.asarray(simulate(zero, 1000.0, 80.0))).max() == 0.0


def test_b1_scales_the_flip_angle():
    seq = paper_sequence(300)
    half = FispSequence(seq.flip_deg / 2, seq.tr_ms, seq.phase_deg, seq.te_ms, seq.ti_ms)
    np.testing.assert_allclose(
        simulate(seq, 900.0, 60.0, b1=0.5), simulate(half, 900.0, 60.0), atol=1e-6
    )


def _isochromat_fisp(seq: FispSequence, t1_ms: float, t2_ms: float, n_spins: int) -> np.ndarray:
    """Bloch simulation of spins dephased uniformly over 2 pi by each TR's gradient."""
    m = np.zeros((n_spins, 3))
    m[:, 2] = -1.0 if seq.ti_ms is not None else 1.0
    if seq.ti_ms is not None:
        m[:, 2] = 1 - 2 * np.exp(-seq.ti_ms / t1_ms)
    precession = 2 * np.pi * np.arange(n_spins) / n_spins
    signals = []

    def relax(m, tau):
        e1, e2 = np.exp(-tau / t1_ms), np.exp(-tau / t2_ms)
        return np.stack([m[:, 0] * e2, m[:, 1] * e2, m[:, 2] * e1 + 1 - e1], axis=1)

    for flip_deg, tr_ms in zip(seq.flip_deg, seq.tr_ms, strict=True):
        a = np.deg2rad(flip_deg)
        # Rotation about x taking Mz to -My: F+ = Mx + i My = -i sin(a) Mz, as in Weigel's T(a, 0).
        rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        m = m @ rot.T
        m = relax(m, seq.te_ms)
        signals.append(np.mean(m[:, 0] + 1j * m[:, 1]))
        m = relax(m, tr_ms - seq.te_ms)
        c, s = np.cos(precession), np.sin(precession)
        m = np.stack([c * m[:, 0] - s * m[:, 1], s * m[:, 0] + c * m[:, 1], m[:, 2]], axis=1)
    return np.array(signals)


@pytest.mark.parametrize("t1_ms,t2_ms", [(800.0, 60.0), (1300.0, 300.0)])
def test_epg_equals_isochromat_simulation(t1_ms, t2_ms):
    seq = paper_sequence(80, seed=3, lobe_length=40)
    epg_signal = np.asarray(simulate(seq, t1_ms, t2_ms, n_states=100))
    bloch_signal = _isochromat_fisp(seq, t1_ms, t2_ms, n_spins=360)
    np.testing.assert_allclose(epg_signal, bloch_signal, atol=2e-5)


def test_truncated_states_converge_for_long_t2():
    # CSF-like T2 keeps high dephasing orders alive longest: the worst case for truncation.
    seq = paper_sequence(1000)
    reference = simulate(seq, 4000.0, 2000.0, n_states=400)
    errors = [
        float(
            jnp.linalg.norm(simulate(seq, 4000.0, 2000.0, n_states=n) - reference)
            / jnp.linalg.norm(reference)
        )
        for n in (20, DEFAULT_N_STATES, 150)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[1] < 1e-2


def test_gradient_matches_finite_differences():
    seq = paper_sequence(200)
    with jax.enable_x64(True):

        def loss(t1_ms, t2_ms, b1):
            return jnp.sum(jnp.abs(simulate(seq, t1_ms, t2_ms, b1, dtype=jnp.float64)) ** 2)

        params = (1100.0, 70.0, 0.9)
        grads = jax.grad(loss, argnums=(0, 1, 2))(*params)
        for i, grad in enumerate(grads):
            step = 1e-4 * params[i]
            up = list(params)
            down = list(params)
            up[i] += step
            down[i] -= step
            finite_difference = (loss(*up) - loss(*down)) / (2 * step)
            np.testing.assert_allclose(grad, finite_difference, rtol=1e-6)


def test_float64_needs_x64():
    with pytest.raises(ValueError, match="x64"):
        simulate(paper_sequence(10), 1000.0, 50.0, dtype=jnp.float64)


def test_batched_equals_loop_and_broadcasts():
    seq = paper_sequence(150)
    t1_ms = np.array([[300.0, 800.0, 1500.0], [2000.0, 3000.0, 4000.0]])
    t2_ms = np.array([40.0, 80.0, 200.0])
    b1 = np.array([[0.9], [1.1]])
    batched = np.asarray(simulate(seq, t1_ms, t2_ms, b1))
    assert batched.shape == (2, 3, 150) and batched.dtype == np.complex64
    for i in range(2):
        for j in range(3):
            single = simulate(seq, t1_ms[i, j], t2_ms[j], b1[i, 0])
            np.testing.assert_allclose(batched[i, j], single, atol=1e-6)


def test_rejects_non_positive_relaxation_times():
    with pytest.raises(ValueError, match="t2_ms"):
        simulate(paper_sequence(10), 1000.0, 0.0)


def _reference_signals(seq: FispSequence, t1_ms, t2_ms, b1, dtype):
    """A plain scan of the documented building block `fisp_repetition`."""
    from rinq_jax.physics import epg

    t1_ms, t2_ms, b1 = (jnp.asarray(v, dtype) for v in (t1_ms, t2_ms, b1))
    state = epg.equilibrium(t1_ms.shape, DEFAULT_N_STATES, jnp.result_type(dtype, jnp.complex64))
    if seq.ti_ms is not None:
        state = epg.relax(epg.inversion(state), jnp.asarray(seq.ti_ms, dtype), t1_ms, t2_ms)

    def step(state, rep):
        flip, phase, tr = rep
        return epg.fisp_repetition(
            state, flip, phase, tr, jnp.asarray(seq.te_ms, dtype), t1_ms, t2_ms, b1
        )

    flip, phase = (jnp.deg2rad(jnp.asarray(v, dtype)) for v in (seq.flip_deg, seq.phase_deg))
    reps = (flip, phase, jnp.asarray(seq.tr_ms, dtype))
    return np.asarray(jax.lax.scan(step, state, reps)[1].T)


@pytest.mark.parametrize("phases", ["zero", "zero_or_180", "random"])
def test_fast_path_equals_scan_of_fisp_repetition(phases, monkeypatch):
    from rinq_jax.physics import epg

    monkeypatch.setattr(epg, "ATOM_CHUNK", 128)  # 300 atoms: three chunks of 100
    rng = np.random.default_rng(7)
    base = paper_sequence(400)
    phase_deg = {
        "zero": np.zeros(400),
        "zero_or_180": 180.0 * rng.integers(0, 2, 400),
        "random": rng.uniform(-180.0, 180.0, 400),
    }[phases]
    seq = FispSequence(base.flip_deg, base.tr_ms, phase_deg, base.te_ms, base.ti_ms)
    n = 300
    t1_ms = rng.uniform(100.0, 4000.0, n)
    t2_ms = t1_ms * rng.uniform(0.005, 0.5, n) + 5.0
    b1 = rng.uniform(0.6, 1.4, n)
    fast = np.asarray(simulate(seq, t1_ms, t2_ms, b1))
    reference = _reference_signals(seq, t1_ms, t2_ms, b1, jnp.float32)
    scale = np.abs(reference).max(axis=-1, keepdims=True)
    np.testing.assert_allclose(fast / scale, reference / scale, rtol=0, atol=2e-5)
    with jax.enable_x64(True):
        fast = np.asarray(simulate(seq, t1_ms, t2_ms, b1, dtype=jnp.float64))
        reference = _reference_signals(seq, t1_ms, t2_ms, b1, jnp.float64)
    assert fast.dtype == np.complex128
    np.testing.assert_allclose(fast / scale, reference / scale, rtol=0, atol=1e-12)


def test_atoms_split_over_threads_give_the_one_thread_signals(monkeypatch):
    # Outside of tracing, simulate cuts the atoms into one padded shard per core and runs
    # the shards in threads; every atom is computed on its own, so nothing may change.
    from rinq_jax.physics import epg

    rng = np.random.default_rng(3)
    seq = paper_sequence(200)
    t1_ms = rng.uniform(100.0, 4000.0, 333)
    t2_ms = t1_ms * rng.uniform(0.005, 0.5, 333) + 5.0
    b1 = rng.uniform(0.6, 1.4, 333)
    one = np.asarray(jax.jit(lambda *p: simulate(seq, *p))(t1_ms, t2_ms, b1))  # traced: one call
    monkeypatch.setattr(epg, "ATOM_CHUNK", 64)
    monkeypatch.setattr(epg, "_cores", lambda: 3)
    shards = []
    flat = epg._simulate_flat
    monkeypatch.setattr(
        epg, "_simulate_flat", lambda *a, **k: shards.append(a[5].shape) or flat(*a, **k)
    )
    split = np.asarray(simulate(seq, t1_ms, t2_ms, b1))
    assert shards == [(111,)] * 3  # 333 atoms -> 3 shards, each 2 chunks of 56, padded
    np.testing.assert_array_equal(split, one)
