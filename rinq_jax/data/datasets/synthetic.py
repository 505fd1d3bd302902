"""The default dataset: real brain anatomy, training data drawn fresh, held-out subjects on disk.

``python -m rinq_jax.generate --preset brain --out data/brain`` (what ``train.py`` uses
without ``--data``) writes::

    DIR/manifest.json          the BrainDataConfig and the file lists of each split
    DIR/train/*.npz            per training slice: gridded compartment maps (`brain_slices.SliceCompartments`)
    DIR/train/noise_bank.npy   gridded unit noise images, per interleaf group
    DIR/val/*.h5, DIR/test/*.h5  complete slices (docs/data_format.md) of held-out subjects
    DIR/cache/                 the dictionary-matching dictionary (B1 axis)

Subjects are disjoint between the splits. Every slice comes from `rinq_jax.data.subjects.anatomy`
(the ICBM 2009a template, deformed per subject) through the compartment model of
`rinq_jax.data.acquisition.compartments` (`rinq_jax.data.datasets.brain_slices`). Validation and test slices get one fixed draw of the
subject's tissue values (`tissue_values.population_values`), B1 amplitude and phase, exact k-space
noise (`acquisition.acquire_noise`), dictionary-matching maps and both truths (rate-weighted and
single-compartment, `brain_slices.make_slice_file`); training slices keep only what the
stream (`rinq_jax.data.pipeline.stream`) needs to draw new tissue values, B1 and noise for every
batch.

Every file is reproducible from (seed, subject, slice) and written atomically; complete files
are kept, so an interrupted run resumes (and files written by an older version without the
fields this one adds are made again).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rinq_jax.atomic import atomic_path
from rinq_jax.configs.data import (
    BRAIN_PRESETS,
    DICTIONARY_RANK,
    PAPER_FOV_MM,
    PAPER_N_REPS,
    PAPER_UNDERSAMPLING,
)
from rinq_jax.data.acquisition import compartments, spiral
from rinq_jax.data.acquisition.trajectory import Trajectory
from rinq_jax.data.datasets.brain_slices import (
    NUFFT_THREADS,
    SliceCompartments,
    make_slice_file,
    make_training_slice,
    slice_name,
)
from rinq_jax.data.files import io, protocol
from rinq_jax.errors import InputError, InputNotFoundError
from rinq_jax.physics import dictionary as dictionary_lib
from rinq_jax.physics.sequence import FispSequence, paper_sequence

MANIFEST = "manifest.json"
NOISE_BANK = "noise_bank.npy"
SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class BrainDataConfig:
    """What to generate; subjects 0.. train, then validation, then test subjects.

    Attributes:
        n_train, n_val, n_test: subjects per split.
        n_slices: axial slices per subject (`anatomy.slice_positions`).
        matrix, fov_mm: image grid (128 at 300 mm: 2.3 mm pixels; the paper's is 256).
        n_reps, sequence_seed: `paper_sequence(n_reps, sequence_seed)`.
        undersampling: spiral undersampling (48: one interleaf of 48 per repetition).
        snr: SNR of the fully sampled reconstruction (`spiral.AcquisitionConfig`): the RMS of
            the noiseless series over the whole FOV, air included, over the noise s.d. The
            literature's SNR, on white matter, is ~1.5x higher; each slice file records it as
            ``acquisition/snr_wm`` (`brain_slices.wm_snr_factor`).
        max_b1_amplitude: B1 = 1 + a * pattern with a uniform in [0, max] per slice and draw.
        lesions: give slices 1-4 small white-matter lesions.
        noise_bank: gridded noise images per interleaf group for the training stream.
        rank: SVD rank of the matching dictionary.
        seed: seed of anatomies, tissue values and noise.
        schedule: a given schedule (a scanner protocol's) instead of `paper_sequence`;
            ``n_reps`` must be its length (`with_protocol`).
        trajectory: a given trajectory (`rinq_jax.data.acquisition.trajectory.Trajectory`)
            instead of the generator's spiral; ``undersampling`` must be its interleaf count. Both are
            stored in the dataset folder (`rinq_jax.data.files.protocol`), their hashes in the
            manifest.
        n_coils: receive coils. 1: one ideal coil. More: every slice is acquired with
            ``n_coils`` coils and combined as the importer combines a scan (Walsh weights
            from the noisy data; `rinq_jax.data.acquisition.multicoil`): the test and validation
            series are the importer's, the training maps are combined with the weights the importer
            estimates for the slice's population draw.
    """

    n_train: int = 16
    n_val: int = 2
    n_test: int = 2
    n_slices: int = 3
    matrix: int = 128
    fov_mm: float = PAPER_FOV_MM
    n_reps: int = PAPER_N_REPS
    sequence_seed: int = 0
    undersampling: int = PAPER_UNDERSAMPLING
    snr: float = 30.0
    max_b1_amplitude: float = 0.15
    lesions: bool = True
    noise_bank: int = 8
    rank: int = DICTIONARY_RANK
    seed: int = 0
    schedule: FispSequence | None = None
    trajectory: Trajectory | None = None
    n_coils: int = 1

    def __post_init__(self):
        for name in ("n_train", "n_val", "n_test", "n_slices", "noise_bank", "rank", "n_coils"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.max_b1_amplitude < 0.5:
            raise ValueError(f"max_b1_amplitude must lie in [0, 0.5), got {self.max_b1_amplitude}")
        if self.trajectory is not None and self.undersampling != self.trajectory.n_interleaves:
            raise ValueError(
                f"undersampling is {self.undersampling}, the given trajectory has "
                f"{self.trajectory.n_interleaves} interleaves (one per repetition)"
            )
        for given in (self.schedule, self.trajectory):
            if given is not None and given.n_reps != self.n_reps:
                raise ValueError(
                    f"n_reps is {self.n_reps}, the given {type(given).__name__} has {given.n_reps}"
                )

    def with_protocol(
        self, schedule: FispSequence | None, trajectory: Trajectory | None = None, **changes
    ) -> BrainDataConfig:
        """This config simulating a given schedule and/or trajectory, with other ``changes``.

        ``n_reps`` (and ``undersampling``, the trajectory's interleaves) follow what is given.
        """
        if schedule is not None:
            changes["n_reps"] = schedule.n_reps
        if trajectory is not None:
            changes.update(n_reps=trajectory.n_reps, undersampling=trajectory.n_interleaves)
        return dataclasses.replace(self, schedule=schedule, trajectory=trajectory, **changes)

    def sequence(self) -> FispSequence:
        """The acquisition schedule of every slice."""
        if self.schedule is not None:
            return self.schedule
        return paper_sequence(self.n_reps, self.sequence_seed)

    def acquisition(self) -> spiral.AcquisitionConfig:
        """The spiral acquisition of every slice."""
        geometry = {"matrix": self.matrix, "fov_mm": self.fov_mm, "snr": self.snr}
        if self.trajectory is not None:
            return spiral.AcquisitionConfig.for_trajectory(self.trajectory, **geometry)
        return spiral.AcquisitionConfig(undersampling=self.undersampling, **geometry)

    def subjects(self, split: str) -> range:
        """Subject indices of a split."""
        first = {"train": 0, "val": self.n_train, "test": self.n_train + self.n_val}[split]
        count = {"train": self.n_train, "val": self.n_val, "test": self.n_test}[split]
        return range(first, first + count)

    def to_dict(self) -> dict:
        """Plain fields; a given schedule and trajectory as their hashes (omitted when None)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("schedule", "trajectory"):
            fields[name] = None if fields[name] is None else fields[name].hash
        return {name: value for name, value in fields.items() if value is not None}

    def to_json(self) -> str:
        """The config as JSON (kept in the manifest and the slice files)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


PRESETS = {name: BrainDataConfig(**fields) for name, fields in BRAIN_PRESETS.items()}


def file_lists(config: BrainDataConfig) -> dict[str, list[str]]:
    """Split -> file names relative to the dataset folder."""
    suffix = {"train": ".npz", "val": ".h5", "test": ".h5"}
    return {
        split: [
            f"{split}/{slice_name(subject, s)}{suffix[split]}"
            for subject in config.subjects(split)
            for s in range(config.n_slices)
        ]
        for split in SPLITS
    }


def read_manifest(out_dir: Path) -> BrainDataConfig | None:
    """The config of a generated dataset folder (its protocol file read), or None if none."""
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return None
    fields = json.loads(path.read_text())["config"]
    if "schedule" in fields or "trajectory" in fields:
        fields["schedule"], fields["trajectory"] = protocol.load(
            out_dir, fields.get("schedule"), fields.get("trajectory")
        )
    return BrainDataConfig(**fields)


def generate(
    config: BrainDataConfig, out_dir: Path, progress: bool = True
) -> dict[str, list[Path]]:
    """Generate (or complete) the dataset in ``out_dir``; returns split -> paths."""
    out_dir = Path(out_dir)
    existing = read_manifest(out_dir)
    if existing is not None and existing != config:
        raise ValueError(
            f"{out_dir} holds a dataset of another configuration ({out_dir / MANIFEST}); "
            "use a new --out folder"
        )
    for split in SPLITS:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
    if config.schedule is not None or config.trajectory is not None:
        protocol.save(out_dir, config.schedule, config.trajectory)
    lists = file_lists(config)
    with atomic_path(out_dir / MANIFEST) as tmp:
        tmp.write_text(json.dumps({"config": config.to_dict(), "files": lists}, indent=2))
    bank_path = out_dir / "train" / NOISE_BANK
    if not bank_path.exists():
        bank = compartments.noise_bank(
            config.acquisition(),
            config.noise_bank,
            np.random.default_rng([config.seed, 2**20]),
            NUFFT_THREADS,
        )
        with atomic_path(bank_path) as tmp:
            np.save(tmp, bank)
    todo = [
        (split, name)
        for split in SPLITS
        for name in lists[split]
        if not _is_current(out_dir / name, split)
    ]
    dictionary = None
    for split, name in tqdm(todo, desc="slices", unit="slice", disable=not progress):
        subject, slice_index = (int(part.split("-")[1]) for part in Path(name).stem.split("_"))
        if split == "train":
            make_training_slice(config, subject, slice_index).save(out_dir / name)
            continue
        if dictionary is None:
            dictionary = matching_dictionary(config, out_dir, progress)
        truth = "exact" if split == "test" else "grid"  # validation: the stream's targets
        slice_file = make_slice_file(config, subject, slice_index, dictionary, truth)
        io.write_slice(out_dir / name, slice_file)
    return {split: [out_dir / name for name in lists[split]] for split in SPLITS}


def _is_current(path: Path, split: str) -> bool:
    """Whether ``path`` is complete and holds what this version writes.

    Older files are made again: training slices without the B1 pattern, held-out slices
    without the single-compartment truth.
    """
    if not io.is_complete(path):
        return False
    if split == "train":
        with np.load(path) as data:
            return "b1_shape" in data.files
    return io.inspect(path).has_target("single")


def matching_dictionary(
    config: BrainDataConfig, out_dir: Path, progress: bool = True
) -> dictionary_lib.Dictionary:
    """The matching dictionary with its B1 axis, cached in ``out_dir/cache``.

    Built with a progress bar if ``progress``.
    """
    cache = Path(out_dir) / "cache"
    return dictionary_lib.matching_dictionary(
        config.sequence(), cache, config.rank, b1_axis=True, progress=progress
    )


@dataclasses.dataclass(frozen=True)
class BrainData:
    """A generated dataset, loaded: the training slices in memory, the others as paths."""

    config: BrainDataConfig
    train: list[SliceCompartments]
    noise_bank: np.ndarray
    val: list[Path]
    test: list[Path]
    files: dict[str, list[str]]


def load(out_dir: Path, train_subjects: int | None = None) -> BrainData:
    """Load a dataset folder written by `generate` (refusing an incomplete one).

    Args:
        out_dir: the dataset folder.
        train_subjects: keep only the first N training subjects (all when None), e.g. the
            paper's small set of 4 subjects in `rinq_jax.experiments.table1`.
    """
    out_dir = Path(out_dir)
    config = read_manifest(out_dir)
    if config is None:
        raise InputNotFoundError(f"{out_dir / MANIFEST} not found: not a generated brain dataset")
    lists = file_lists(config)
    if train_subjects is not None:
        if not 1 <= train_subjects <= config.n_train:
            raise InputError(
                f"{out_dir}: train_subjects must lie in [1, {config.n_train}] (the dataset's "
                f"training subjects), got {train_subjects}"
            )
        lists["train"] = lists["train"][: train_subjects * config.n_slices]
    missing = [
        name for names in lists.values() for name in names if not io.is_complete(out_dir / name)
    ]
    if missing or not (out_dir / "train" / NOISE_BANK).exists():
        raise InputNotFoundError(
            f"{out_dir}: the dataset is incomplete ({len(missing)} files missing, e.g. "
            f"{(missing or [NOISE_BANK])[0]}); run python -m rinq_jax.generate --out {out_dir} "
            "again to complete it"
        )
    return BrainData(
        config=config,
        train=[SliceCompartments.load(out_dir / name) for name in lists["train"]],
        noise_bank=np.load(out_dir / "train" / NOISE_BANK),
        val=[out_dir / name for name in lists["val"]],
        test=[out_dir / name for name in lists["test"]],
        files=lists,
    )
