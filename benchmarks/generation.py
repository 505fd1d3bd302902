"""Seconds to produce one paper-size slice: the old generator against the fast path.

    python -m benchmarks.generation [--matrix 256] [--cache data/brain/cache]

Measured in the same run, each once (the old path takes minutes), 3,000 repetitions, 48x
spiral, SNR 30, the same B1-axis matching dictionary (76,833 atoms, loaded from ``--cache``
or built there first, outside the timing):

* **old**: `rinq_jax.data.datasets.phantom_dataset.generate_slice` of the procedural phantom (EPG of every head
  pixel projected on the rank-50 subspace, `acquisition.acquire` of the 50 coefficient images:
  50 forward NUFFTs, then per repetition a 50-term combination in k-space, noise and one
  adjoint), dictionary matching;
* **fast, training slice**: `brain_slices.make_training_slice`, all the training stream needs to
  draw any number of series of the slice (anatomy, 48 x 21 gridded compartment maps);
* **fast, complete slice**: `brain_slices.make_slice_file`, a validation or test slice: the same
  maps, one draw's series, exact k-space noise (one adjoint NUFFT per repetition, as the old
  path) and dictionary matching.

Prints seconds and the ratio old / fast. Writing the HDF5 file (the same for both) is not
timed.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from rinq_jax.data.datasets import brain_slices, phantom_dataset, synthetic
from rinq_jax.physics import dictionary as dictionary_lib


def main(argv=None) -> int:
    """Command line; see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--matrix", type=int, default=256)
    p.add_argument("--cache", type=Path, default=Path("data/brain/cache"))
    args = p.parse_args(argv)
    fast = synthetic.BrainDataConfig(matrix=args.matrix)
    old = dataclasses.replace(phantom_dataset.PRESETS["paper"], matrix=args.matrix)
    dictionary = dictionary_lib.matching_dictionary(
        fast.sequence(), args.cache, fast.rank, b1_axis=True
    )
    assert old.sequence().hash == fast.sequence().hash and old.b1_field
    brain_slices.make_training_slice(dataclasses.replace(fast, matrix=32), 0, 0)  # compile the EPG

    def timed(fn):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    seconds = {
        "old: phantom, EPG per pixel, rank-50 NUFFT path, matching": timed(
            lambda: phantom_dataset.generate_slice(old, 0, 1, dictionary)
        ),
        "fast, training slice (gridded compartment maps)": timed(
            lambda: brain_slices.make_training_slice(fast, 0, 1)
        ),
        "fast, complete slice (one draw, exact noise, matching)": timed(
            lambda: brain_slices.make_slice_file(fast, 0, 1, dictionary)
        ),
    }
    reference = next(iter(seconds.values()))
    print(f"| {args.matrix} x {args.matrix} x {fast.n_reps}, 48x | seconds | old / this |")
    print("|---|---|---|")
    for name, s in seconds.items():
        print(f"| {name} | {s:.1f} | {reference / s:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
