"""The out-of-range brain test set: subjects whose tissues are not the training's tissues.

Training subjects and the held-out test subjects share one population (each tissue within a
4 % spread of its literature mean), so a network that recognises tissue and answers its
typical value scores well there without measuring anything. Here each held-out subject's
white matter, grey matter and lesion T1 are its population values times a factor of
`SCALE_BINS` (x0.5 to x2.0), T2 times another factor of the bins (T1 bin ``i``, T2 bin
``i + 2`` cyclically, so the two are not confounded); lesions (in every subject here) get
values of no tissue: T1 and T2 scaled by the bins ``i + 1`` and ``i + 3``. CSF keeps its value
(x2 would leave the dictionary's T1 range). Anatomy, B1, noise and acquisition are those of the
dataset (`rinq_jax.data.synthetic`); subjects are new (indices after the dataset's own).

``python -m rinq_jax.data.generate --preset brain --out data/brain --test-set out-of-range``
writes ``data/brain/out_of_range/*.h5``; score it with ``eval.py --ckpt RUN --data
data/brain/out_of_range/*.h5``. Each file records its ``t1_scale`` and ``t2_scale``.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rinq_jax.data import compartments, io, synthetic, tissues

SCALE_BINS = (0.5, 0.7, 1.0, 1.4, 2.0)
FOLDER = "out_of_range"
_SCALED = (tissues.WM, tissues.GM)
_SUBJECT_OFFSET = 100  # subject indices after any split of the dataset


def bin_scales(i: int) -> dict[str, float]:
    """Scale factors of bin ``i``: T1 and T2 of WM and GM, T1 and T2 of lesions."""
    n = len(SCALE_BINS)
    return {
        "t1_scale": SCALE_BINS[i % n],
        "t2_scale": SCALE_BINS[(i + 2) % n],
        "lesion_t1_scale": SCALE_BINS[(i + 1) % n],
        "lesion_t2_scale": SCALE_BINS[(i + 3) % n],
    }


def scaled_values(values: compartments.TissueValues, scales: dict[str, float]):
    """``values`` with WM and GM (and lesion) T1, T2 scaled (`bin_scales`), T2 <= T1."""
    t1_ms, t2_ms = values.t1_ms.copy(), values.t2_ms.copy()
    t1_ms[list(_SCALED)] *= scales["t1_scale"]
    t2_ms[list(_SCALED)] *= scales["t2_scale"]
    t1_ms[tissues.LESION] *= scales["lesion_t1_scale"]
    t2_ms[tissues.LESION] *= scales["lesion_t2_scale"]
    t2_ms = np.minimum(t2_ms, t1_ms)
    return dataclasses.replace(values, t1_ms=t1_ms, t2_ms=t2_ms)


def subject_index(config: synthetic.BrainDataConfig, i: int) -> int:
    """Subject index of bin ``i``: odd (with lesions), after the dataset's subjects."""
    first = config.n_train + config.n_val + config.n_test + _SUBJECT_OFFSET
    return first + 2 * i + 1


def generate(config: synthetic.BrainDataConfig, out_dir: Path, progress: bool = True) -> list[Path]:
    """Write the set into ``out_dir/out_of_range`` (one subject per bin, the dataset's slices).

    Complete files are kept, so an interrupted run resumes.
    """
    folder = Path(out_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(i, s) for i in range(len(SCALE_BINS)) for s in range(config.n_slices)]
    paths = [folder / f"{synthetic.slice_name(subject_index(config, i), s)}.h5" for i, s in jobs]
    dictionary = None
    todo = [
        (job, path)
        for job, path in zip(jobs, paths, strict=True)
        if not synthetic.is_complete(path)
    ]
    for (i, s), path in tqdm(todo, desc="out-of-range", unit="slice", disable=not progress):
        if dictionary is None:
            dictionary = synthetic.matching_dictionary(config, Path(out_dir))
        subject, scales = subject_index(config, i), bin_scales(i)
        slice_file = synthetic.make_slice_file(
            config,
            subject,
            s,
            dictionary,
            adjust_values=functools.partial(scaled_values, scales=scales),
            lesions=True,
        )
        generator = {**slice_file.generator, **scales, "test_set": FOLDER}
        io.write_slice(path, dataclasses.replace(slice_file, generator=generator))
    return paths
