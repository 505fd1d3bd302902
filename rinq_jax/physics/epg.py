"""Extended phase graph (EPG) simulation of FISP MR fingerprinting in JAX.

The magnetisation is held as configuration states F+_k, F-_k and Z_k,
k = 0 .. n_states-1 (Weigel, JMRI 41:266, 2015, doi:10.1002/jmri.24619). Each
repetition n of a FISP-MRF train (Jiang et al., MRM 74:1621, 2015,
doi:10.1002/mrm.25559) applies, in order:

1. `rf`: a rotation by the flip angle B1 * alpha_n about an axis at phase phi_n;
2. `relax` for TE: transverse states decay by E2 = exp(-TE/T2), longitudinal
   states by E1 = exp(-TE/T1), and Z_0 recovers by (1 - E1) (M0 = 1);
3. the signal F+_0, demodulated by the receiver phase exp(-i phi_n);
4. `relax` for TR_n - TE;
5. `dephase`: the unbalanced FISP gradient shifts every F state by one order.

An optional ideal (adiabatic, B1-insensitive) inversion precedes the train by TI,
during which only longitudinal relaxation acts. States beyond ``n_states`` are
dropped; they carry magnetisation dephased by more than n_states gradient
moments, which returns to F_0 only through long chains of pulses, each damped by
T2 decay: with the default 50 states the relative error of a CSF-like fingerprint
(T1 4,000 ms, T2 2,000 ms, the worst case) is about 0.5 % (`tests/physics/test_epg.py`).

`simulate` runs the same steps rearranged for speed (`_simulate_chunk`: real arrays,
one relaxation per TR, the RF phase folded into a rotating frame, 256 atoms at a time,
one thread per CPU core); a scan of `fisp_repetition` is its reference
(`tests/physics/test_epg.py`); its speed is in `benchmarks/results.md`.

Everything is a pure function of arrays, so `jax.grad`, `jax.jit` and `jax.vmap`
apply, e.g. ``jax.grad(lambda t1: jnp.abs(simulate(seq, t1, 50.0)).sum())``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from rinq_jax.physics.sequence import FispSequence

DEFAULT_N_STATES = 50

# EPG state: (F+, F-, Z), each complex[..., n_states].
State = tuple[jax.Array, jax.Array, jax.Array]


def rf(state: State, alpha_rad: jax.Array, phase_rad: jax.Array) -> State:
    """Rotate every configuration state by flip ``alpha_rad`` about the axis at ``phase_rad``.

    Weigel 2015, Eq. 15. ``alpha_rad`` and ``phase_rad`` broadcast against the batch
    dimensions of the state (not its state axis).
    """
    fp, fm, z = state
    alpha = alpha_rad[..., None]
    e = jnp.exp(1j * phase_rad)[..., None]
    cos2 = jnp.cos(alpha / 2) ** 2
    sin2 = jnp.sin(alpha / 2) ** 2
    sin_a = jnp.sin(alpha)
    fp_new = cos2 * fp + e**2 * sin2 * fm - 1j * e * sin_a * z
    fm_new = jnp.conj(e) ** 2 * sin2 * fp + cos2 * fm + 1j * jnp.conj(e) * sin_a * z
    z_new = -0.5j * jnp.conj(e) * sin_a * fp + 0.5j * e * sin_a * fm + jnp.cos(alpha) * z
    return fp_new, fm_new, z_new


def relax(state: State, tau_ms: jax.Array, t1_ms: jax.Array, t2_ms: jax.Array) -> State:
    """Free relaxation for ``tau_ms``: decay with T1/T2 and recovery of Z_0 towards M0 = 1."""
    fp, fm, z = state
    e1 = jnp.exp(-tau_ms / t1_ms)[..., None]
    e2 = jnp.exp(-tau_ms / t2_ms)[..., None]
    recovery = jnp.zeros(z.shape[-1], z.real.dtype).at[0].set(1.0) * (1 - e1)
    return fp * e2, fm * e2, z * e1 + recovery


def dephase(state: State) -> State:
    """Shift all F states by one dephasing order (one unbalanced gradient moment per TR)."""
    fp, fm, z = state
    fm_shifted = jnp.concatenate([fm[..., 1:], jnp.zeros_like(fm[..., :1])], axis=-1)
    # F+_0 after the shift is the conjugate of the new F-_0, i.e. of the old F-_1.
    fp_shifted = jnp.concatenate([jnp.conj(fm[..., 1:2]), fp[..., :-1]], axis=-1)
    return fp_shifted, fm_shifted, z


def inversion(state: State) -> State:
    """Ideal inversion: Z -> -Z, transverse states spoiled (adiabatic, B1-insensitive)."""
    fp, fm, z = state
    return jnp.zeros_like(fp), jnp.zeros_like(fm), -z


def equilibrium(batch_shape: tuple[int, ...], n_states: int, dtype) -> State:
    """Fully relaxed magnetisation: Z_0 = 1, everything else 0."""
    zeros = jnp.zeros((*batch_shape, n_states), dtype)
    return zeros, zeros, zeros.at[..., 0].set(1.0)


def fisp_repetition(
    state: State, flip_rad, phase_rad, tr_ms, te_ms, t1_ms, t2_ms, b1
) -> tuple[State, jax.Array]:
    """One FISP repetition (steps 1-5 of the module docstring); returns the new state and the signal."""
    state = rf(state, b1 * flip_rad, phase_rad)
    state = relax(state, te_ms, t1_ms, t2_ms)
    signal = state[0][..., 0] * jnp.exp(-1j * phase_rad)
    state = relax(state, tr_ms - te_ms, t1_ms, t2_ms)
    return dephase(state), signal


# Atoms simulated together: the states of a few hundred atoms stay in the CPU caches.
ATOM_CHUNK = 256
# Fewest atoms worth a thread of their own (`_over_threads`).
MIN_SHARD_ATOMS = 32


@partial(jax.jit, static_argnames=("n_states", "inverted", "unroll", "real", "chunk"))
def _simulate_flat(
    flip_rad,
    phase_rad,
    tr_ms,
    te_ms,
    ti_ms,
    t1_ms,
    t2_ms,
    b1,
    n_states,
    inverted,
    unroll,
    real,
    chunk,
):
    """Signals complex[N, T] for flat parameter vectors t1_ms, t2_ms, b1: float[N].

    Runs `_simulate_chunk` on at most ``chunk`` atoms at a time: the fewest chunks that hold
    the N atoms, of equal size, the last padded (by less than one atom per chunk).
    """
    n = t1_ms.shape[0]
    n_chunks = -(-n // chunk)
    chunk = -(-n // n_chunks)

    def one_chunk(params):
        t1, t2, b1_ = params
        sequence = (flip_rad, phase_rad, tr_ms, te_ms, ti_ms)
        return _simulate_chunk(*sequence, t1, t2, b1_, n_states, inverted, unroll, real)

    if n_chunks == 1:
        return one_chunk((t1_ms, t2_ms, b1))
    padded = [
        jnp.pad(v, (0, n_chunks * chunk - n), constant_values=1).reshape(n_chunks, chunk)
        for v in (t1_ms, t2_ms, b1)
    ]
    signals = jax.lax.map(one_chunk, padded)
    return signals.reshape(n_chunks * chunk, -1)[:n]


def _simulate_chunk(
    flip_rad, phase_rad, tr_ms, te_ms, ti_ms, t1_ms, t2_ms, b1, n_states, inverted, unroll, real
):
    """Signals complex[N, T] for flat parameter vectors t1_ms, t2_ms, b1: float[N]; fast path.

    The same physics as a scan of `fisp_repetition`, rearranged for speed:

    * the states are real arrays [n_states, N] (state order first, atoms contiguous),
      F+ and F- as a = exp(-i phi_n) F+ and b = exp(i phi_n) F-, i.e. in the frame of
      the current pulse's phase, so the RF rotation has real coefficients; moving to the
      next pulse's frame multiplies a and b by exp(-+i (phi_{n+1} - phi_n)), and the
      demodulated signal is E2(TE) a_0 right after the pulse;
    * the two relaxations merge into one for TR (E(TE) E(TR - TE) = E(TR));
    * with ``real`` (every phase step a multiple of 180 deg, e.g. FISP's constant phase)
      F is purely imaginary and Z real, so only Im a, Im b and Re z are carried.

    Memory: the per-repetition factors, about a dozen float[T, N] arrays (37 MB for
    T = 3,000 and N = 256 in float32), besides the signals.
    """
    dtype = t1_ms.dtype
    first = (jnp.arange(n_states) == 0).astype(dtype)[:, None]  # selects order 0
    # Equilibrium Z_0 = 1, or after the inversion and TI of relaxation Z_0 = 1 - 2 E1(TI).
    z0 = 1 - 2 * jnp.exp(-ti_ms / t1_ms) if inverted else jnp.ones_like(t1_ms)
    z = first * z0[None, :]
    e2_te = jnp.exp(-te_ms / t2_ms)
    # Frame rotation after repetition n, from phase phi_n to phi_{n+1}.
    step_rad = jnp.concatenate([phase_rad[1:] - phase_rad[:-1], jnp.zeros_like(phase_rad[:1])])

    # Per-repetition, per-atom factors float[T, N], computed outside the scan: fused into
    # the [n_states, N] updates, XLA would recompute the cos/sin/exp for every state.
    alpha = flip_rad[:, None] * b1[None, :]
    cos_a, sin_a = jnp.cos(alpha), jnp.sin(alpha)
    e1 = jnp.exp(-tr_ms[:, None] / t1_ms[None, :])
    e2 = jnp.exp(-tr_ms[:, None] / t2_ms[None, :])

    e2_cos = e2 * jnp.cos(step_rad)[:, None]
    if real:
        return _scan_real(first, z, cos_a, sin_a, e1, e2_cos, e2_te, unroll)
    e2_sin = e2 * jnp.sin(step_rad)[:, None]
    return _scan_complex(first, z, cos_a, sin_a, e1, e2_cos, e2_sin, e2_te, unroll)


def _scan_real(first, z0, cos_a, sin_a, e1, e2_cos, e2_te, unroll):
    """`_simulate_chunk`'s scan when F is imaginary and Z real: Im a, Im b and Re z only.

    ``cos_a``, ``sin_a``, ``e1`` and ``e2_cos`` (E2(TR) times the cosine of the frame step,
    +-E2 here) are per-repetition factors float[T, N]; ``first`` float[n_states, 1] selects
    order 0, ``z0`` float[n_states, N] is the initial Z, ``e2_te`` float[N]. Returns the
    signals complex[N, T].
    """
    zeros, zero_row = jnp.zeros_like(z0), jnp.zeros_like(z0[:1])
    # Per-atom factors precomputed, in the order of operations of the reference.
    c2, s2 = (1 + cos_a) / 2, (1 - cos_a) / 2
    xs = (c2, s2, sin_a, cos_a, 0.5 * sin_a, e1, 1 - e1, e2_cos)

    def step(carry, rep):
        ai, bi, zr = carry
        c2, s2, sin_a, cos_a, half_sin_a, e1, recovery, e2_rot = rep
        ai_rf = c2 * ai + s2 * bi - sin_a * zr
        bi_rf = s2 * ai + c2 * bi + sin_a * zr
        zr_rf = cos_a * zr + half_sin_a * (ai - bi)
        ai_new = e2_rot * ai_rf
        bi_new = e2_rot * bi_rf
        zr_new = e1 * zr_rf + first * recovery
        ai_new = jnp.concatenate([-bi_new[1:2], ai_new[:-1]], axis=0)
        bi_new = jnp.concatenate([bi_new[1:], zero_row], axis=0)
        return (ai_new, bi_new, zr_new), ai_rf[0]

    _, im = jax.lax.scan(step, (zeros, zeros, z0), xs, unroll=unroll)
    return jax.lax.complex(jnp.zeros_like(im), im * e2_te).T


def _scan_complex(first, z0, cos_a, sin_a, e1, e2_cos, e2_sin, e2_te, unroll):
    """`_simulate_chunk`'s scan for any RF phases.

    Arguments as in `_scan_real`, plus ``e2_sin`` float[T, N], E2(TR) times the sine of
    the frame step.

    RF, relaxation and the frame rotation a *= E2 exp(-i step), b *= E2 exp(+i step) are
    folded into per-atom factors: a_new = (c - i s)(c2 a + s2 b - i sin z) etc.
    """
    zeros, zero_row = jnp.zeros_like(z0), jnp.zeros_like(z0[:1])
    c2, s2 = (1 + cos_a) / 2, (1 - cos_a) / 2
    c, s = e2_cos, e2_sin
    factors = (c * c2, c * s2, c * sin_a, s * c2, s * s2, s * sin_a)
    xs = (factors, (e1 * cos_a, 0.5 * e1 * sin_a, 1 - e1), (c2, s2, sin_a))

    def step(carry, rep):
        ar, ai, br, bi, zr, zi = carry
        (cc, cs, csin, sc, ss, ssin), (z_cos, z_sin, recovery), (c2, s2, sin_a) = rep
        ar_new = cc * ar + cs * br + csin * zi + sc * ai + ss * bi - ssin * zr
        ai_new = cc * ai + cs * bi - csin * zr - sc * ar - ss * br - ssin * zi
        br_new = cs * ar + cc * br - csin * zi - ss * ai - sc * bi - ssin * zr
        bi_new = cs * ai + cc * bi + csin * zr + ss * ar + sc * br - ssin * zi
        zr_new = z_cos * zr + z_sin * (ai - bi) + first * recovery
        zi_new = z_cos * zi + z_sin * (br - ar)
        ar_new = jnp.concatenate([br_new[1:2], ar_new[:-1]], axis=0)
        ai_new = jnp.concatenate([-bi_new[1:2], ai_new[:-1]], axis=0)
        br_new = jnp.concatenate([br_new[1:], zero_row], axis=0)
        bi_new = jnp.concatenate([bi_new[1:], zero_row], axis=0)
        signal_re = c2 * ar[0] + s2 * br[0] + sin_a * zi[0]
        signal_im = c2 * ai[0] + s2 * bi[0] - sin_a * zr[0]
        return (ar_new, ai_new, br_new, bi_new, zr_new, zi_new), (signal_re, signal_im)

    init = (zeros, zeros, zeros, zeros, z0, zeros)
    _, (re, im) = jax.lax.scan(step, init, xs, unroll=unroll)
    return jax.lax.complex(re * e2_te, im * e2_te).T


def _phase_steps_are_real(phase_deg) -> bool:
    """Whether every RF phase step is a multiple of 180 deg (then F is imaginary and Z real)."""
    steps = np.diff(np.asarray(phase_deg, np.float64))
    return bool(np.all(np.mod(steps, 180.0) == 0.0))


def _check_positive(name: str, value) -> None:
    if isinstance(value, jax.core.Tracer):
        return  # values unknown under jit/grad; checked on concrete inputs only
    if not np.all(np.asarray(value) > 0):
        raise ValueError(f"simulate: {name} must be > 0 everywhere (relaxation times in ms)")


def simulate(
    seq: FispSequence,
    t1_ms,
    t2_ms,
    b1=1.0,
    *,
    n_states: int = DEFAULT_N_STATES,
    dtype=jnp.float32,
    unroll: int = 1,
) -> jax.Array:
    """Simulate FISP-MRF fingerprints with the EPG formalism.

    Args:
        seq: the acquisition schedule (T repetitions).
        t1_ms: longitudinal relaxation time(s) in ms, any shape, > 0.
        t2_ms: transverse relaxation time(s) in ms, broadcastable with ``t1_ms``, > 0.
        b1: relative transmit field scaling every flip angle (1 = nominal).
        n_states: number of dephasing orders kept.
        dtype: real dtype of the computation, ``jnp.float32`` (default) or
            ``jnp.float64`` (needs ``jax.config.update("jax_enable_x64", True)``
            or the ``jax.enable_x64()`` context).
        unroll: repetitions unrolled per scan iteration (speed only).

    Returns:
        complex64 (or complex128) signals of shape ``broadcast(t1, t2, b1).shape + (T,)``
        for M0 = 1, read at TE after each pulse.
    """
    dtype = jnp.dtype(dtype)
    if dtype not in (jnp.float32, jnp.float64):
        raise ValueError(f"simulate: dtype must be float32 or float64, got {dtype}")
    if dtype == jnp.float64 and not jax.config.read("jax_enable_x64"):
        raise ValueError(
            "simulate: dtype=float64 needs 64-bit JAX (jax.config.update('jax_enable_x64', True))"
        )
    if n_states < 2:
        raise ValueError(f"simulate: n_states must be >= 2, got {n_states}")
    _check_positive("t1_ms", t1_ms)
    _check_positive("t2_ms", t2_ms)
    t1_ms, t2_ms, b1 = (jnp.asarray(v, dtype) for v in (t1_ms, t2_ms, b1))
    shape = jnp.broadcast_shapes(t1_ms.shape, t2_ms.shape, b1.shape)
    flat = [jnp.broadcast_to(v, shape).reshape(-1) for v in (t1_ms, t2_ms, b1)]
    sequence = (
        jnp.deg2rad(jnp.asarray(seq.flip_deg, dtype)),
        jnp.deg2rad(jnp.asarray(seq.phase_deg, dtype)),
        jnp.asarray(seq.tr_ms, dtype),
        jnp.asarray(seq.te_ms, dtype),
        jnp.asarray(seq.ti_ms or 0.0, dtype),
    )
    options = {
        "n_states": n_states,
        "inverted": seq.ti_ms is not None,
        "unroll": unroll,
        "real": _phase_steps_are_real(seq.phase_deg),
        "chunk": ATOM_CHUNK,
    }
    signals = _over_threads(lambda *atoms: _simulate_flat(*sequence, *atoms, **options), flat)
    return signals.reshape(*shape, seq.n_reps)


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _over_threads(run, atoms: list[jax.Array]) -> jax.Array:
    """``run(*atoms)`` for flat per-atom parameters float[N], the atoms split over threads.

    Why: XLA:CPU runs the EPG scan on one core (its [n_states, chunk] updates are too small
    for XLA's intra-op parallelism), and a computation runs on the thread that calls it.
    So on the CPU, outside of tracing, the atoms are cut into one equal shard per core (the
    last padded, so one compilation serves all), each of at least `MIN_SHARD_ATOMS`, and the
    shards run in threads. The values are the same either way: every atom is computed on its
    own. Timings: benchmarks/results.md.

    Args:
      run: a function of the flat parameters returning signals [N, T].
      atoms: the flat parameters, each float[N].
    """
    n = atoms[0].shape[0]
    n_threads = min(_cores(), n // MIN_SHARD_ATOMS)
    tracing = any(isinstance(v, jax.core.Tracer) for v in atoms)
    if n_threads < 2 or tracing or jax.default_backend() != "cpu":
        return run(*atoms)
    size = -(-n // n_threads)  # atoms per shard
    padded = [jnp.pad(v, (0, n_threads * size - n), constant_values=1) for v in atoms]
    x64 = jax.config.read("jax_enable_x64")  # thread-local where set by jax.enable_x64

    def shard(i):
        with jax.enable_x64(x64):
            return run(*(v[i * size : (i + 1) * size] for v in padded)).block_until_ready()

    with ThreadPoolExecutor(n_threads) as pool:
        return jnp.concatenate(list(pool.map(shard, range(n_threads))))[:n]
