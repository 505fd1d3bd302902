"""Template matching of MRF signals against a `Dictionary`: best atom, score and M0.

Template matching (Ma et al., Nature 495:187, 2013) assigns each measured
fingerprint s the parameters of the dictionary atom d that maximises
|<d, s>| / (||d|| ||s||). With a compressed dictionary (`dictionary.compress`) the
signals are matched by their subspace coefficients, which scores exactly like
matching the projected full time series.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from rinq_jax.physics.dictionary import Dictionary, Grid


@dataclasses.dataclass(frozen=True)
class MatchResult:
    """Template-matching result per signal; every field has the signals' batch shape.

    Attributes:
        t1_ms, t2_ms: matched relaxation times in ms (float32).
        b1: matched relative B1 (float32; ones for a nominal-B1 dictionary).
        m0: complex64 proton density such that signal ~ m0 * simulate(seq, t1, t2, b1).
        score: float32 |<d, s>| / (||d|| ||s||) in [0, 1].
        index: int32 matched dictionary entry.
    """

    t1_ms: np.ndarray
    t2_ms: np.ndarray
    b1: np.ndarray
    m0: np.ndarray
    score: np.ndarray
    index: np.ndarray


# Atoms per block of the two-level maximum in `_match_chunk` (the operators are padded to it).
_MATCH_BLOCK = 16


def _real_operators(atoms: np.ndarray) -> tuple[jax.Array, jax.Array]:
    """Real matrices (w_re, w_im), float32[2K, N'] each, for atoms complex64[N, K].

    With x = [Re s | Im s] (float32[B, 2K]) the inner products <d, s> = s @ conj(D)^T are
    ``x @ w_re + 1j * (x @ w_im)``: writing A = conj(D)^T, Re = Re s Re A - Im s Im A and
    Im = Re s Im A + Im s Re A. XLA's CPU complex64 matmul is several times slower than
    these two real ones (benchmarks/results.md). N' pads N with zero atoms to a multiple
    of ``_MATCH_BLOCK``; a zero atom scores 0 and never beats a real one (first index wins ties).
    """
    a = np.asarray(atoms).conj().T  # [K, N]
    a = np.pad(a, ((0, 0), (0, -a.shape[1] % _MATCH_BLOCK)))
    w_re = np.concatenate([a.real, -a.imag], axis=0).astype(np.float32)
    w_im = np.concatenate([a.imag, a.real], axis=0).astype(np.float32)
    return jnp.asarray(w_re), jnp.asarray(w_im)


@jax.jit
def _match_chunk(signals, w_re, w_im):
    """Best atom per signal: signals complex64[B, K], operators from `_real_operators`.

    Returns (index int32[B], best complex64[B] = <d_index, s>, ambiguous bool[B]).
    ``ambiguous`` marks signals whose runner-up scores within float32 rounding of the best
    (|<d, s>|^2 closer than 2 sqrt(2K) ulp, about the float32 rounding of a length-2K dot product): there the float32 choice is arbitrary and
    `match` re-decides in float64.
    """
    x = jnp.concatenate([signals.real, signals.imag], axis=-1)  # [B, 2K]
    re, im = x @ w_re, x @ w_im  # [B, N'] each
    power = re * re + im * im  # |<d, s>|^2: same argmax as |.|, no square root
    batch, n = power.shape
    blocks = power.reshape(batch, n // _MATCH_BLOCK, _MATCH_BLOCK)
    block_peak = jnp.max(blocks, axis=-1)  # [B, N'/16]
    peak = jnp.max(block_peak, axis=-1, keepdims=True)  # [B, 1]
    # argmax as max, then the first index attaining it: cheap reductions instead of XLA's
    # slower (value, index) pair reduction; same first maximum, the clip keeps NaN rows in range.
    positions = jnp.arange(n, dtype=jnp.int32)
    index = jnp.minimum(jnp.min(jnp.where(power >= peak, positions, n), axis=-1), n - 1)
    close = peak * (1 - 2 * np.sqrt(x.shape[-1]) * np.finfo(np.float32).eps)
    in_block = jnp.take_along_axis(blocks, (index // _MATCH_BLOCK)[:, None, None], axis=1)[:, 0]
    ambiguous = (jnp.sum(block_peak >= close, axis=-1) > 1) | (
        jnp.sum(in_block >= close, axis=-1) > 1
    )
    take = functools.partial(jnp.take_along_axis, indices=index[:, None], axis=-1)
    best = jax.lax.complex(take(re)[:, 0], take(im)[:, 0])
    return index, best, ambiguous


def _rematch_exactly(signals: np.ndarray, atoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 argmax |<d, s>| for a few signals complex[M, K]: (index int32[M], best complex64[M])."""
    atoms_h = atoms.astype(np.complex128).conj().T  # [K, N]
    index = np.empty(len(signals), np.int32)
    best = np.empty(len(signals), np.complex64)
    for start in range(0, len(signals), 256):  # bounded [256, N] temporaries
        inner = signals[start : start + 256].astype(np.complex128) @ atoms_h
        rows = np.argmax(inner.real**2 + inner.imag**2, axis=-1)
        index[start : start + 256] = rows
        best[start : start + 256] = inner[np.arange(len(rows)), rows]
    return index, best


def match(signals, dictionary: Dictionary, *, chunk_size: int = 256) -> MatchResult:
    """Template matching: the entry maximising |<d, s>| for normalised d and s.

    Args:
        signals: complex[..., T] time series, or complex[..., K] subspace coefficients
            if ``dictionary`` is compressed (K = its rank).
        dictionary: a full or compressed `Dictionary`.
        chunk_size: signals matched per jitted call (bounds the B x N inner products;
            256 keeps them near the cache; timings in benchmarks/results.md).

    Returns:
        `MatchResult` with the signals' batch shape.
    """
    signals = np.asarray(signals)
    length = signals.shape[-1] if signals.ndim else 0
    if dictionary.basis is not None and length == dictionary.n_reps:
        signals = dictionary.project(signals)
    elif length != dictionary.atoms.shape[1]:
        expected = f"{dictionary.n_reps} time points" + (
            f" or {dictionary.rank} coefficients" if dictionary.rank else ""
        )
        raise ValueError(
            f"match: signals have {length} values in their last axis, expected {expected}"
        )
    batch_shape = signals.shape[:-1]
    flat = signals.reshape(-1, signals.shape[-1]).astype(np.complex64)
    w_re, w_im = _real_operators(dictionary.atoms)
    n = flat.shape[0]
    index = np.empty(n, np.int32)
    best = np.empty(n, np.complex64)
    # Dispatch every chunk before reading any back, so that the host copies overlap
    # with the next chunk's compute.
    pending = []
    for start in range(0, n, chunk_size):
        chunk = flat[start : start + chunk_size]
        if len(chunk) < chunk_size:
            chunk = np.concatenate(
                [chunk, np.zeros((chunk_size - len(chunk), flat.shape[1]), np.complex64)]
            )
        pending.append((start, _match_chunk(chunk, w_re, w_im)))
    ambiguous = np.empty(n, bool)
    for start, (chunk_index, chunk_best, chunk_ambiguous) in pending:
        stop = min(start + chunk_size, n)
        index[start:stop] = np.asarray(chunk_index)[: stop - start]
        best[start:stop] = np.asarray(chunk_best)[: stop - start]
        ambiguous[start:stop] = np.asarray(chunk_ambiguous)[: stop - start]
    # Near-ties (e.g. T2 = 2..10 ms at T1 = 10 ms, correlations 1 - 1e-7) are decided in
    # float64 on the host, so the result does not depend on the matmul's rounding.
    rows = np.flatnonzero(ambiguous)
    if rows.size:
        index[rows], best[rows] = _rematch_exactly(flat[rows], dictionary.atoms)
    signal_norms = np.linalg.norm(flat, axis=-1)
    score = np.abs(best) / np.where(signal_norms > 0, signal_norms, 1)
    grid = dictionary.grid
    b1 = grid.b1[index] if grid.b1 is not None else np.ones(n, np.float32)
    # <d, s> with unit d gives s's component along d; dividing by the atom's norm at
    # M0 = 1 converts it to M0.
    m0 = best / dictionary.norms[index]
    fields = (
        grid.t1_ms[index],
        grid.t2_ms[index],
        b1,
        m0.astype(np.complex64),
        score.astype(np.float32),
        index,
    )
    return MatchResult(*(np.reshape(f, batch_shape) for f in fields))


def at_b1(dictionary: Dictionary, b1: float) -> Dictionary:
    """The dictionary's (T1, T2) entries at one B1, interpolated linearly along its B1 axis.

    ``dictionary`` must hold every (T1, T2) pair at each of its B1 values, B1 fastest (as
    `dictionary.paper_grid` with ``b1_values``). The fingerprints ``norm * atom`` of the two
    B1 values around ``b1`` (clipped to the axis) are interpolated and normalised again.
    """
    grid = dictionary.grid
    if grid.b1 is None:
        raise ValueError("at_b1: the dictionary has no B1 axis (build it with b1_values)")
    b1_values = np.unique(grid.b1)
    n_b1 = b1_values.size
    if len(grid) % n_b1 or not np.array_equal(grid.b1[:n_b1], b1_values):
        raise ValueError("at_b1: the dictionary's B1 values must repeat fastest (paper_grid)")
    fingerprints = (dictionary.atoms * dictionary.norms[:, None]).reshape(
        -1, n_b1, dictionary.atoms.shape[1]
    )
    position = np.interp(b1, b1_values, np.arange(n_b1))
    lo = min(int(position), n_b1 - 2) if n_b1 > 1 else 0
    weight = position - lo
    mixed = fingerprints[:, lo] * (1 - weight) + fingerprints[:, min(lo + 1, n_b1 - 1)] * weight
    norms = np.linalg.norm(mixed, axis=-1)
    t1_ms, t2_ms = grid.t1_ms[::n_b1], grid.t2_ms[::n_b1]
    return dataclasses.replace(
        dictionary,
        atoms=(mixed / norms[:, None]).astype(np.complex64),
        norms=norms.astype(np.float32),
        grid=Grid(t1_ms, t2_ms, np.full(t1_ms.shape, b1, np.float32)),
    )


B1_MAP_STEP = 0.005
"""`match_with_b1` rounds the B1 map to this step (0.25 % at most, well below a map's noise)."""


def match_with_b1(signals, dictionary: Dictionary, b1) -> MatchResult:
    """Template matching at a known B1 per signal (a measured B1 map, or 1 for nominal B1).

    Each signal is matched against the (T1, T2) entries at its B1 (`at_b1`, B1 rounded to
    `B1_MAP_STEP`), the way B1-corrected FISP-MRF uses a separately measured map.

    Args:
        signals: complex[N, T] or complex[N, K] (K = the dictionary's rank).
        dictionary: a dictionary with a B1 axis.
        b1: float[N] relative B1 of each signal (or a scalar).

    Returns:
        `MatchResult` of the N signals (``b1`` the rounded B1 used).
    """
    signals = np.asarray(signals)
    n = signals.shape[0]
    rounded = np.round(np.broadcast_to(np.asarray(b1, np.float64), (n,)) / B1_MAP_STEP)
    fields = {f.name: None for f in dataclasses.fields(MatchResult)}
    for key in np.unique(rounded):
        rows = np.flatnonzero(rounded == key)
        part = match(signals[rows], at_b1(dictionary, float(key * B1_MAP_STEP)))
        for name in fields:
            value = getattr(part, name)
            if fields[name] is None:
                fields[name] = np.zeros(n, value.dtype)
            fields[name][rows] = value
    return MatchResult(**fields)
