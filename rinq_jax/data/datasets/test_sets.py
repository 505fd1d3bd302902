"""Test sets that demand measurement: held-out brain subjects under conditions training never had.

Training subjects and the held-out test subjects share one population (each tissue within a
4 % spread of its literature mean) and one noise level, so a network that recognises tissue
and answers its typical value scores well there without measuring anything. Each set here is
a list of *conditions*, one new subject (indices after the dataset's own) with the dataset's
slices each, anatomy, B1 and acquisition as in `rinq_jax.data.datasets.synthetic`:

* ``out-of-range``: white matter, grey matter and lesion T1 are the subject's population
  values times a factor of `SCALE_BINS` (x0.5 to x2.0), T2 times another factor of the bins
  (T1 bin ``i``, T2 bin ``i + 2`` cyclically, so the two are not confounded); lesions (in
  every subject here) get values of no tissue: T1 and T2 scaled by the bins ``i + 1`` and
  ``i + 3``. CSF keeps its value (x2 would leave the dictionary's T1 range).
* ``snr``: one subject with population values at the noise levels `SNR_LEVELS` (the
  dataset's ``snr``, defined on the whole field of view, times each factor), the same noise
  realisation scaled; every file records its white-matter SNR ``acquisition/snr_wm``
  (`brain_slices.wm_snr_factor`), the literature's definition.
* ``slice-profile``: model mismatch in the test data only: one subject with population values
  acquired with an ideal slice and with the profiles of Hann-windowed sinc pulses of
  time-bandwidth products `PROFILE_TBWS` (`rinq_jax.physics.slice_profile`), which neither the
  training data nor the matching dictionary model; the truths stay the tissues' values.

``python -m rinq_jax.generate --out data/brain --test-set out-of-range`` (or ``snr``,
``slice-profile``) writes ``data/brain/<folder>/*.h5``; ``python -m
rinq_jax.experiments.test_sets --set NAME --ckpt RUN`` scores it per condition. Each file's generator attributes record its condition
(``condition``, and ``t1_scale``, ``t2_scale``, ..., ``snr_factor`` or ``profile_tbw``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rinq_jax.data.datasets import brain_slices, synthetic
from rinq_jax.data.files import io
from rinq_jax.data.subjects import tissue_values, tissues
from rinq_jax.physics import slice_profile

SCALE_BINS = (0.5, 0.7, 1.0, 1.4, 2.0)
SNR_LEVELS = (0.25, 0.5, 1.0, 2.0, 4.0)  # factors on the dataset's SNR
PROFILE_TBWS = (None, 8.0, 4.0, 2.0)  # None: the ideal slice of training and dictionary
TEST_SETS = ("out-of-range", "snr", "slice-profile")
_SCALED = (tissues.WM, tissues.GM)
_SUBJECT_OFFSET = {"out-of-range": 100, "snr": 200, "slice-profile": 300}


@dataclasses.dataclass(frozen=True)
class Condition:
    """One subject of a test set.

    Attributes:
        name: label of the condition, e.g. ``T1 x0.5, T2 x1`` or ``SNR x0.25``.
        subject: subject index (odd: with lesions).
        tag: file-name suffix telling conditions of one subject apart ("" for none).
        fields: what the slice files record of it (generator attributes).
        snr_factor: factor on the dataset's SNR.
        adjust_values: the subject's tissue values -> the slices' (None: unchanged).
        profile: the slice profile of the signals (None: ideal).
    """

    name: str
    subject: int
    fields: dict[str, float]
    tag: str = ""
    snr_factor: float = 1.0
    adjust_values: Callable[[tissue_values.TissueValues], tissue_values.TissueValues] | None = None
    profile: slice_profile.SliceProfile | None = None


def bin_scales(i: int) -> dict[str, float]:
    """Scale factors of bin ``i``: T1 and T2 of WM and GM, T1 and T2 of lesions."""
    n = len(SCALE_BINS)
    return {
        "t1_scale": SCALE_BINS[i % n],
        "t2_scale": SCALE_BINS[(i + 2) % n],
        "lesion_t1_scale": SCALE_BINS[(i + 1) % n],
        "lesion_t2_scale": SCALE_BINS[(i + 3) % n],
    }


def scaled_values(values: tissue_values.TissueValues, scales: dict[str, float]):
    """``values`` with WM and GM (and lesion) T1, T2 scaled (`bin_scales`), T2 <= T1."""
    t1_ms, t2_ms = values.t1_ms.copy(), values.t2_ms.copy()
    t1_ms[list(_SCALED)] *= scales["t1_scale"]
    t2_ms[list(_SCALED)] *= scales["t2_scale"]
    t1_ms[tissues.LESION] *= scales["lesion_t1_scale"]
    t2_ms[tissues.LESION] *= scales["lesion_t2_scale"]
    t2_ms = np.minimum(t2_ms, t1_ms)
    return dataclasses.replace(values, t1_ms=t1_ms, t2_ms=t2_ms)


def _first_subject(config: synthetic.BrainDataConfig, test_set: str) -> int:
    """An odd subject index (with lesions) after the dataset's subjects."""
    return config.n_train + config.n_val + config.n_test + _SUBJECT_OFFSET[test_set] + 1


def conditions(config: synthetic.BrainDataConfig, test_set: str) -> list[Condition]:
    """The conditions of ``test_set`` (a key of `TEST_SETS`) for a dataset's config."""
    first = _first_subject(config, test_set)
    if test_set == "out-of-range":
        return [
            Condition(
                f"T1 x{s['t1_scale']:g}, T2 x{s['t2_scale']:g}",
                first + 2 * i,
                s,
                adjust_values=functools.partial(scaled_values, scales=s),
            )
            for i, s in enumerate(map(bin_scales, range(len(SCALE_BINS))))
        ]
    if test_set == "snr":
        return [
            Condition(f"SNR x{f:g}", first, {"snr_factor": f}, f"snr-x{f:g}", snr_factor=f)
            for f in SNR_LEVELS
        ]
    if test_set == "slice-profile":
        return [
            Condition("ideal slice", first, {"profile_tbw": 0.0}, "ideal")
            if tbw is None
            else Condition(
                f"profile TBW {tbw:g}",
                first,
                {"profile_tbw": tbw},
                f"tbw-{tbw:g}",
                profile=slice_profile.sinc_profile(tbw),
            )
            for tbw in PROFILE_TBWS
        ]
    raise ValueError(f"test set must be one of {TEST_SETS}, got {test_set!r}")


def folder(out_dir: Path, test_set: str) -> Path:
    """Where ``test_set``'s files of the dataset in ``out_dir`` go."""
    return Path(out_dir) / test_set.replace("-", "_")


def generate(
    config: synthetic.BrainDataConfig, out_dir: Path, test_set: str, progress: bool = True
) -> dict[str, list[Path]]:
    """Write ``test_set`` into `folder` (each condition's subject, the dataset's slices).

    Complete files are kept, so an interrupted run resumes.

    Returns:
        condition name -> its slice files, in the order of `conditions`.
    """
    target = folder(out_dir, test_set)
    target.mkdir(parents=True, exist_ok=True)
    jobs = []
    for c in conditions(config, test_set):
        for s in range(config.n_slices):
            name = brain_slices.slice_name(c.subject, s) + (f"_{c.tag}" if c.tag else "")
            jobs.append((c, s, target / f"{name}.h5"))
    todo = [job for job in jobs if not io.is_complete(job[2])]
    dictionary = None
    for condition, s, path in tqdm(todo, desc=test_set, unit="slice", disable=not progress):
        if dictionary is None:
            dictionary = synthetic.matching_dictionary(config, Path(out_dir))
        slice_file = brain_slices.make_slice_file(
            dataclasses.replace(config, snr=config.snr * condition.snr_factor),
            condition.subject,
            s,
            dictionary,
            adjust_values=condition.adjust_values,
            lesions=True,
            profile=condition.profile,
        )
        generator = {
            **slice_file.generator,
            **condition.fields,
            "condition": condition.name,
            "test_set": test_set,
        }
        io.write_slice(path, dataclasses.replace(slice_file, generator=generator))
    paths: dict[str, list[Path]] = {}
    for condition, _, path in jobs:
        paths.setdefault(condition.name, []).append(path)
    return paths
