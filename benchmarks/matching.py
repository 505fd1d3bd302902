"""Full-slice template matching against the paper-grid dictionary, rinq_jax vs mrpro.

Rank-50 coefficients of a 256 x 256 slice with a ~60 % brain mask matched against the
paper grid compressed to rank 50 (`rinq_jax.physics.matching.match`, and mrpro's
``DictionaryMatchOp`` when installed), and the agreement of the two.
``python -m benchmarks.matching --pixels N`` matches one whole slice's full time series
in a fresh process and prints its peak resident memory (`benchmarks.memory`).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks.common import (
    N_REPS,
    OUT_DIR,
    RANK,
    interleaved,
    load_mrpro,
    median,
    torch_device,
    torch_sync,
)
from benchmarks.memory import print_peak_memory
from rinq_jax.physics.dictionary import cached, paper_grid
from rinq_jax.physics.matching import match
from rinq_jax.physics.sequence import paper_sequence


def paper_dictionary(cache: bool = True):
    """The paper-grid dictionary for ``paper_sequence(3000)``, compressed to rank 50 (cached)."""
    return cached(paper_sequence(N_REPS), paper_grid(), OUT_DIR, rank=RANK, progress=False)


def _mrpro_matcher(atoms: np.ndarray):
    """mrpro's DictionaryMatchOp over the same compressed atoms complex64[N, K] (index as 'parameter')."""
    import torch

    mrpro = load_mrpro()
    atoms_t = torch.from_numpy(np.ascontiguousarray(atoms.T)).to(torch_device())  # [K, N]
    op = mrpro.operators.DictionaryMatchOp(lambda idx: (atoms_t[:, idx.long()],))
    op.append(torch.arange(atoms.shape[0], dtype=torch.float32, device=atoms_t.device))
    return op


def bench_matching(n_pixels: int, rounds: int, with_mrpro: bool) -> dict:
    """Full-slice template matching of rank-50 coefficients [n_pixels, 50], ours vs mrpro."""
    import torch

    dic = paper_dictionary()
    rng = np.random.default_rng(0)
    coeffs = (
        rng.standard_normal((n_pixels, RANK)) + 1j * rng.standard_normal((n_pixels, RANK))
    ).astype(np.complex64)
    match(coeffs[:4096], dic)  # compile

    def ours():
        t = time.perf_counter()
        match(coeffs, dic)
        return time.perf_counter() - t

    fns = {"jax": ours}
    agree = None
    if with_mrpro and load_mrpro() is not None:
        op = _mrpro_matcher(dic.atoms)
        device = torch_device()
        signals_t = torch.from_numpy(np.ascontiguousarray(coeffs.T)).to(device)  # mrpro: (m, ...)

        def theirs():
            t = time.perf_counter()
            with torch.inference_mode():
                op(signals_t)
            torch_sync(device)
            return time.perf_counter() - t

        fns["mrpro"] = theirs
        with torch.inference_mode():
            (their_index,) = op(signals_t[:, :2048])
        their_index = their_index.cpu().numpy().astype(int)
        agree = float(np.mean(match(coeffs[:2048], dic).index == their_index))
    times = interleaved(fns, rounds)
    n_atoms = dic.atoms.shape[0]
    flops = 8.0 * n_pixels * n_atoms * RANK  # complex multiply-add = 8 real FLOPs
    out = {
        "pixels": n_pixels,
        "atoms": n_atoms,
        "rank": RANK,
        "slice_s": {k: median(v) for k, v in times.items()},
        "rounds_s": times,
        "index_agreement_with_mrpro": agree,
    }
    out["gflops"] = {k: flops / v / 1e9 for k, v in out["slice_s"].items()}
    if "mrpro" in out["slice_s"]:
        out["ratio_vs_mrpro"] = out["slice_s"]["mrpro"] / out["slice_s"]["jax"]
    return out


def match_slice(n_pixels: int, chunk: int) -> list[np.ndarray]:
    """Match ``n_pixels`` random full time series once: the memory benchmark's workload.

    The slice's full time series are projected in row blocks of ``chunk`` pixels, as a
    reconstruction would.
    """
    dic = paper_dictionary()
    rng = np.random.default_rng(0)
    result = []
    for start in range(0, n_pixels, chunk):
        n = min(chunk, n_pixels - start)
        sig = (rng.standard_normal((n, N_REPS)) + 1j * rng.standard_normal((n, N_REPS))).astype(
            np.complex64
        )
        result.append(match(sig, dic).index)
    return result


def main(argv=None) -> int:
    """Child process of `benchmarks.memory.bench_memory`: one whole slice, then its peak RSS."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, required=True)
    parser.add_argument("--chunk", type=int, default=1024)
    args = parser.parse_args(argv)
    print_peak_memory(lambda: match_slice(args.pixels, args.chunk))
    return 0


if __name__ == "__main__":
    sys.exit(main())
