"""Data presets: what `python -m rinq_jax.generate --preset NAME` and `train.py` phantom_dataset.

Each preset is a set of field overrides of a data config: ``BRAIN_PRESETS`` of
`rinq_jax.data.datasets.synthetic.BrainDataConfig` (anatomy from the ICBM 2009a template, training
drawn fresh every batch), ``PHANTOM_PRESETS`` of
`rinq_jax.data.datasets.phantom_dataset.GenerateConfig` (every slice on disk, the older procedural
phantoms). The defaults of those dataclasses are the paper's acquisition (Hoppe, Thamm et al. 2019,
Sect. 3.1): FOV 300 mm, 3,000 repetitions, 48x spiral undersampling.
"""

from __future__ import annotations

from pathlib import Path

# The paper's acquisition (Hoppe, Thamm et al. 2019, Sect. 3.1): the defaults of the spiral, the
# generators, the schedule, the matching dictionary and the models' parameter counts.
PAPER_FOV_MM = 300.0
PAPER_MATRIX = 256
PAPER_N_REPS = 3000
PAPER_UNDERSAMPLING = 48  # spiral interleaves, one per repetition
# SVD rank of the matching dictionary's subspace (McGivney et al., IEEE TMI 33:2311, 2014).
DICTIONARY_RANK = 50

# Where `train.py` without --data-dir generates (once) and finds the default brain dataset.
DEFAULT_DATA_DIR = Path("data/brain")
# Where the quick phantom dataset of the tests and sweeps is generated (once).
QUICK_DATA_DIR = Path("data/quick")

BRAIN_PRESETS = {
    # The README's main job: 16 training subjects x 3 slices at 128 x 128 (155,579 brain
    # pixels, each redrawn every batch), 2 + 2 held-out subjects on disk.
    "brain": {},
    # Longer CPU runs: more anatomy (32 training subjects x 4 slices).
    "standard": {"n_train": 32, "n_val": 3, "n_test": 3, "n_slices": 4},
}

PHANTOM_PRESETS = {
    # 12 slices of 4 subjects like the paper's small set, at 64 x 64 (4.7 mm) for short
    # generation and training; 3,000 repetitions and 48x undersampling kept.
    "quick": {"n_subjects": 4, "n_slices": 3, "matrix": 64},
    # The paper's extended set: 28 slices of 8 subjects at 256 x 256 (4 slices each here).
    "paper": {"n_subjects": 8, "n_slices": 4, "matrix": 256, "b1_field": True, "lesions": True},
}

# What the training stream draws (`rinq_jax.data.subjects.tissue_values.ValueDistribution`
# fields), by `TrainConfig.values`. "wide" (the default): three draws in four give the brain
# compartments values anywhere in T1 50-4,500 ms, T2 5-2,500 ms, so that a network must measure
# rather than recognise tissue (issue 23), with B1 over 0.8-1.2 and the SNR halved to doubled, 16
# draws per batch (3,000 RNN3 steps: validation WM/GM RME 7.5/9.1, 8.2/11.6 % against 8.4/13.1,
# 9.7/15.4 % with 4, one seed each). "brain": values within 0.70-1.42x of each tissue's population
# mean, nominal SNR, 4 draws per batch (the earlier default).
VALUE_DISTRIBUTIONS = {
    "wide": {
        "wide_fraction": 0.75,
        "max_b1_amplitude": 0.2,
        "snr_factor_range": (0.5, 2.0),
        "draws_per_batch": 16,
    },
    "brain": {},
}
