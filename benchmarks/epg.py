"""EPG dictionary generation for the paper grid x 3,000 repetitions, rinq_jax vs mrpro.

A subset of the grid is simulated (512 atoms in ``--quick``, 2,048 otherwise) and the time
scaled to the whole grid; mrpro's EPG runs the same atoms when installed, and the two
signals are compared.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import N_REPS, interleaved, load_mrpro, median, torch_device, torch_sync
from rinq_jax.physics import epg
from rinq_jax.physics.dictionary import paper_grid
from rinq_jax.physics.sequence import paper_sequence


def epg_flops_per_atom_rep(n_states: int) -> float:
    """Nominal real FLOPs of one EPG repetition per atom: the textbook complex algorithm.

    (rf 3x3 complex mix + 2 relaxations.) rinq_jax's fast path does fewer (real arrays for
    constant-phase sequences, one relaxation per TR), so its GFLOP/s are "textbook-EPG
    equivalent", comparable across implementations, not counted operations.
    """
    # rf: 9 complex multiply-adds per state (8 FLOPs each); relax twice: 3 complex*real (2 each).
    return n_states * (9 * 8 + 2 * 3 * 2)


def bench_epg(n_atoms: int, rounds: int, with_mrpro: bool, n_states: int = 50) -> dict:
    """EPG generation of ``n_atoms`` paper-grid atoms x 3000 repetitions, scaled to the whole grid."""
    seq = paper_sequence(N_REPS)
    grid = paper_grid()
    pick = np.linspace(0, len(grid) - 1, n_atoms).astype(int)
    t1, t2 = grid.t1_ms[pick], grid.t2_ms[pick]
    epg.simulate(seq, t1, t2, n_states=n_states).block_until_ready()  # compile

    def ours():
        t = time.perf_counter()
        epg.simulate(seq, t1, t2, n_states=n_states).block_until_ready()
        return time.perf_counter() - t

    fns = {"jax": ours}
    max_rel_err = None
    if with_mrpro and load_mrpro() is not None:
        import torch
        from mrpro.operators.models import EPG

        mrpro_seq = EPG.EPGSequence(
            [
                EPG.InversionBlock(seq.ti_ms / 1000),
                EPG.FispBlock(
                    torch.deg2rad(torch.from_numpy(seq.flip_deg)),
                    torch.deg2rad(torch.from_numpy(seq.phase_deg)),
                    seq.te_ms / 1000,
                    torch.from_numpy(seq.tr_ms) / 1000,
                ),
            ]
        )
        params = EPG.Parameters(
            m0=torch.ones(n_atoms, dtype=torch.complex64),
            t1=torch.from_numpy(t1) / 1000,
            t2=torch.from_numpy(t2) / 1000,
            relative_b1=None,
        )
        device = torch_device()
        mrpro_seq, params = mrpro_seq.to(device), params.to(device)

        def theirs_signal():
            with torch.inference_mode():
                _, signals = mrpro_seq(params, n_states)
            return torch.stack(signals, -1)

        def theirs():
            t = time.perf_counter()
            theirs_signal()
            torch_sync(device)
            return time.perf_counter() - t

        fns["mrpro"] = theirs
        ref_sig = theirs_signal().cpu().numpy()
        our_sig = np.asarray(epg.simulate(seq, t1, t2, n_states=n_states))
        max_rel_err = float(
            np.max(np.linalg.norm(our_sig - ref_sig, axis=-1) / np.linalg.norm(ref_sig, axis=-1))
        )
    times = interleaved(fns, rounds)
    per_atom = {k: median(v) / n_atoms for k, v in times.items()}
    flops = epg_flops_per_atom_rep(n_states) * N_REPS
    out = {
        "atoms_measured": n_atoms,
        "grid_atoms": len(grid),
        "n_states": n_states,
        "grid_s": {k: v * len(grid) for k, v in per_atom.items()},
        "atoms_per_s": {k: 1 / v for k, v in per_atom.items()},
        "gflops_estimate": {k: flops / v / 1e9 for k, v in per_atom.items()},
        "rounds_s": times,
        "max_rel_diff_vs_mrpro": max_rel_err,
    }
    if "mrpro" in per_atom:
        out["ratio_vs_mrpro"] = per_atom["mrpro"] / per_atom["jax"]
    return out
