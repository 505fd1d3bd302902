"""The default dataset: real brain anatomy, training data drawn fresh, held-out subjects on disk.

``python -m rinq_jax.generate --preset brain --out data/brain`` (what ``train.py`` uses
without ``--data``) writes::

    DIR/manifest.json          the BrainDataConfig and the file lists of each split
    DIR/train/*.npz            per training slice: gridded compartment maps (`SliceCompartments`)
    DIR/train/noise_bank.npy   gridded unit noise images, per interleaf group
    DIR/val/*.h5, DIR/test/*.h5  complete slices (docs/data_format.md) of held-out subjects
    DIR/cache/                 the dictionary-matching dictionary (B1 axis)

Subjects are disjoint between the splits. Every slice comes from `rinq_jax.data.subjects.anatomy`
(the ICBM 2009a template, deformed per subject) through the compartment model of
`rinq_jax.data.acquisition.compartments`. Validation and test slices get one fixed draw of the
subject's tissue values (`tissue_values.population_values`), B1 amplitude and phase, exact k-space
noise (`acquisition.acquire_noise`) and dictionary-matching maps; training slices keep only what the
stream (`rinq_jax.data.pipeline.stream`) needs to draw new tissue values, B1 and noise for every
batch.

Every file is reproducible from (seed, subject, slice) and written atomically; complete files
are kept, so an interrupted run resumes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
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
from rinq_jax.data.acquisition import acquisition, compartments, multicoil, spiral
from rinq_jax.data.acquisition.coils import coil_sensitivities
from rinq_jax.data.acquisition.trajectory import Trajectory
from rinq_jax.data.files import io, protocol
from rinq_jax.data.subjects import anatomy, tissue_values, tissues
from rinq_jax.data.subjects.b1_map import measured_b1_map
from rinq_jax.errors import InputError, InputNotFoundError
from rinq_jax.physics import dictionary as dictionary_lib
from rinq_jax.physics import slice_profile
from rinq_jax.physics.matching import match
from rinq_jax.physics.sequence import FispSequence, paper_sequence

# finufft threads of the generator's NUFFTs: one per core.
NUFFT_THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
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
            ``acquisition/snr_wm`` (`wm_snr_factor`).
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


@dataclasses.dataclass(frozen=True, eq=False)
class SliceCompartments:
    """What the training stream needs of one slice.

    Attributes:
        gridded: complex64[R, K, N] gridded compartment maps ``G_g M_k`` at N stored pixels.
        pixels: int32[N, 2] (row, column) of the stored pixels: the brain mask and a 1-pixel rim.
        centres: int32[M] stored-pixel index of each brain-mask pixel (a training target).
        neighbours: int32[M, 3, 3] stored-pixel indices of each centre's 3x3 neighbourhood
            (edges replicated, as `transforms.gather_patches`).
        fractions: float32[N_CLASSES, M] compartment fractions of the centres.
        tissue: uint8[M] dominant tissue label of the centres.
        noise_rms: RMS of the subject's noiseless series over the FOV (sets the noise level).
        name: ``sub-XX_slice-YY``.
    """

    gridded: np.ndarray
    pixels: np.ndarray
    centres: np.ndarray
    neighbours: np.ndarray
    fractions: np.ndarray
    tissue: np.ndarray
    noise_rms: float
    name: str

    def save(self, path: Path) -> None:
        """Write as an uncompressed .npz, atomically."""
        with atomic_path(path) as tmp:
            np.savez(tmp, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @classmethod
    def load(cls, path: Path) -> SliceCompartments:
        """Read a file written by `save`."""
        with np.load(path) as data:
            values = {f.name: data[f.name] for f in dataclasses.fields(cls)}
        values["noise_rms"] = float(values["noise_rms"])
        values["name"] = str(values["name"])
        return cls(**values)


def slice_name(subject: int, slice_index: int) -> str:
    """``sub-XX_slice-YY``."""
    return f"sub-{subject:02d}_slice-{slice_index:02d}"


def _subject_rng(config: BrainDataConfig, subject: int, slice_index: int, stream: int):
    return np.random.default_rng([config.seed, subject, slice_index, stream])


def slice_model(
    config: BrainDataConfig, subject: int, slice_index: int, lesions: bool | None = None
):
    """(anatomy, the subject's tissue values, basis maps) of one slice.

    ``lesions`` None: half the subjects (odd indices) carry lesions when the config has them.
    """
    position = float(anatomy.slice_positions(config.n_slices)[slice_index])
    if lesions is None:
        lesions = config.lesions and subject % 2 == 1
    slc = anatomy.make_slice(
        subject,
        position,
        matrix=config.matrix,
        fov_mm=config.fov_mm,
        seed=config.seed,
        lesions=lesions,
    )
    rng = _subject_rng(config, subject, 0, 0)  # tissue values are the subject's, all slices
    amplitude = float(rng.uniform(0.5, 1.0)) * config.max_b1_amplitude
    values = tissue_values.population_values(rng, amplitude)
    maps = compartments.basis_maps(slc.fractions, slc.phase_rad, slc.b1_shape)
    return slc, values, maps


def make_training_slice(
    config: BrainDataConfig, subject: int, slice_index: int
) -> SliceCompartments:
    """Grid one slice's compartment maps and keep them at the brain pixels and their rim."""
    slc, values, maps = slice_model(config, subject, slice_index)
    cfg = config.acquisition()
    coef = compartments.fingerprint_coefficients(config.sequence(), values)
    coils = None
    if config.n_coils > 1:  # the weights the importer would find for this draw
        raw = multicoil.raw_kspace(
            maps, coef, cfg, config.n_coils, _subject_rng(config, subject, slice_index, 4)
        )
        weights = multicoil.scan_weights(raw, cfg, nthreads=NUFFT_THREADS)
        coils = (coil_sensitivities(config.matrix, config.n_coils), weights)
    gridded = compartments.grid_maps(maps, cfg, NUFFT_THREADS, coils)
    tissue, mask = tissues.dominant_tissue(slc.fractions)
    rows, cols = np.nonzero(mask)
    offsets = np.arange(-1, 2)
    rr = np.clip(rows[:, None] + offsets, 0, config.matrix - 1)[:, :, None]
    cc = np.clip(cols[:, None] + offsets, 0, config.matrix - 1)[:, None, :]
    flat = (rr * config.matrix + cc).reshape(len(rows), 9)  # [M, 9] neighbourhood pixels
    stored, inverse = np.unique(flat, return_inverse=True)
    return SliceCompartments(
        gridded=np.ascontiguousarray(gridded.reshape(*gridded.shape[:2], -1)[:, :, stored]),
        pixels=np.stack(np.divmod(stored, config.matrix), -1).astype(np.int32),
        centres=inverse.reshape(-1, 9)[:, 4].astype(np.int32),
        neighbours=inverse.reshape(-1, 3, 3).astype(np.int32),
        fractions=slc.fractions[:, rows, cols].astype(np.float32),
        tissue=tissue[rows, cols],
        noise_rms=compartments.signal_rms(maps, coef),
        name=slice_name(subject, slice_index),
    )


def make_slice_file(
    config: BrainDataConfig,
    subject: int,
    slice_index: int,
    dictionary: dictionary_lib.Dictionary,
    single_truth: bool = True,
    adjust_values: Callable[[tissue_values.TissueValues], tissue_values.TissueValues] | None = None,
    lesions: bool | None = None,
    profile: slice_profile.SliceProfile | None = None,
) -> io.MrfSlice:
    """One complete slice: fast-path series, exact noise, true and dictionary-matching maps.

    Also its compartment fractions, a measured B1 map (`rinq_jax.data.subjects.b1_map`) and, with
    ``single_truth``, the single-compartment truth (`compartments.single_compartment_maps`,
    a fit per pixel: test slices only, validation needs the rate truth alone).
    ``adjust_values`` maps the subject's tissue values to the slice's
    (`rinq_jax.data.datasets.test_sets`); ``lesions`` is as in `slice_model`; a slice ``profile``
    (`rinq_jax.physics.slice_profile`) shapes the signals only, not the truths.
    """
    slc, values, maps = slice_model(config, subject, slice_index, lesions)
    if adjust_values is not None:
        values = adjust_values(values)
    cfg, seq = config.acquisition(), config.sequence()
    coef = compartments.fingerprint_coefficients(seq, values, profile)
    m = config.matrix
    noise_rng = _subject_rng(config, subject, slice_index, 1)
    fov_rms = compartments.signal_rms(maps, coef)
    signals = _acquire(config, maps, coef, fov_rms, noise_rng)
    tissue, mask = tissues.dominant_tissue(slc.fractions)
    t1_ms, t2_ms = compartments.true_maps(slc.fractions, values)
    matched = match(dictionary.project(signals[mask]), dictionary)
    dm_t1_ms, dm_t2_ms = _on_mask(mask, matched.t1_ms, matched.t2_ms)
    pd = np.tensordot(values.pd, slc.fractions, axes=1)
    phase = slc.phase_rad + values.phase_rad
    b1 = (1.0 + values.b1_amplitude * slc.b1_shape).astype(np.float32)
    single = {}
    if single_truth:
        fit = compartments.single_compartment_maps(
            seq, slc.fractions[:, mask], values, slc.b1_shape[mask]
        )
        single = dict(zip(("t1_single_ms", "t2_single_ms"), _on_mask(mask, *fit), strict=True))
    b1_rng = _subject_rng(config, subject, slice_index, 3)
    return io.MrfSlice(
        subject_id=f"sub-{subject:02d}",
        slice_id=f"slice-{slice_index:02d}",
        sequence=seq,
        signals=signals,
        mask=mask,
        t1_ms=np.where(mask, t1_ms, 0).astype(np.float32),
        t2_ms=np.where(mask, t2_ms, 0).astype(np.float32),
        m0=(pd * np.exp(1j * phase)).astype(np.complex64),
        b1=b1,
        tissue=tissue,
        dm_t1_ms=dm_t1_ms,
        dm_t2_ms=dm_t2_ms,
        **single,
        b1_map=measured_b1_map(b1, config.fov_mm / m, b1_rng),
        fractions=np.ascontiguousarray(slc.fractions.transpose(1, 2, 0), np.float32),
        acquisition={
            "undersampling": cfg.effective_undersampling,
            "snr": config.snr,
            "snr_wm": config.snr * wm_snr_factor(maps, coef, slc.fractions, fov_rms),
            "n_interleaves": cfg.n_interleaves,
            "n_coils": config.n_coils,
            "trajectory": json.dumps(spiral.trajectory_signature(cfg, config.n_reps)),
            "matrix": m,
            "fov_mm": config.fov_mm,
        },
        generator={
            "config": config.to_json(),
            "anatomy": "ICBM 2009a nonlinear symmetric (nilearn), deformed per subject",
            "slice_position": slc.slice_position,
            "dm_rank": config.rank,
            "tissue_labels": repr(dict(tissues.TISSUES)),
            "truth": "t1_ms/t2_ms: proton-density-weighted mean relaxation rate of the "
            "pixel's compartments; t1_single_ms/t2_single_ms: single-compartment fit of the "
            "noiseless unaliased signal at the true B1",
        },
    )


def _on_mask(mask: np.ndarray, *values: np.ndarray) -> list[np.ndarray]:
    """float32 maps of the values float[N] of the pixels in ``mask``, 0 outside."""
    maps = [np.zeros(mask.shape, np.float32) for _ in values]
    for out, inside in zip(maps, values, strict=True):
        out[mask] = inside
    return maps


def _acquire(config: BrainDataConfig, maps, coef, fov_rms: float, rng) -> np.ndarray:
    """complex64[H, W, T]: the slice's series with exact k-space noise.

    One ideal coil: the fast compartment path plus gridded noise. Several: the importer's
    series of the simulated multi-coil raw data (`rinq_jax.data.acquisition.multicoil`).
    """
    cfg = config.acquisition()
    if config.n_coils > 1:
        raw = multicoil.raw_kspace(maps, coef, cfg, config.n_coils, rng, NUFFT_THREADS)
        return multicoil.imported_series(raw, cfg, nthreads=NUFFT_THREADS)[0]
    gridded = compartments.grid_maps(maps, cfg, NUFFT_THREADS)
    signals = acquisition.acquire_noise(cfg, config.n_reps, fov_rms, rng, nthreads=NUFFT_THREADS)
    compartments.gridded_series(
        gridded.reshape(*gridded.shape[:2], -1),
        coef,
        spiral.interleaf_pattern(cfg, config.n_reps),
        out=signals.reshape(config.matrix**2, -1),
    )
    return signals


def wm_snr_factor(maps, coef, fractions, fov_rms: float) -> float:
    """SNR_WM / SNR: the literature's SNR over the configured one (`BrainDataConfig.snr`).

    The configured SNR divides the RMS of the noiseless series over the whole FOV (air
    included) by the noise s.d. of a fully sampled frame; the literature's is the signal of
    white matter. SNR_WM = SNR * rms_WM / rms_FOV, rms_WM over pixels of >= 90 % white matter.
    """
    wm = fractions[tissues.WM] >= 0.9
    return compartments.signal_rms(maps[:, wm], coef) / fov_rms if wm.any() else float("nan")


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
        if not io.is_complete(out_dir / name)
    ]
    dictionary = None
    for split, name in tqdm(todo, desc="slices", unit="slice", disable=not progress):
        subject, slice_index = (int(part.split("-")[1]) for part in Path(name).stem.split("_"))
        if split == "train":
            make_training_slice(config, subject, slice_index).save(out_dir / name)
            continue
        if dictionary is None:
            dictionary = matching_dictionary(config, out_dir)
        slice_file = make_slice_file(config, subject, slice_index, dictionary, split == "test")
        io.write_slice(out_dir / name, slice_file)
    return {split: [out_dir / name for name in lists[split]] for split in SPLITS}


def matching_dictionary(config: BrainDataConfig, out_dir: Path) -> dictionary_lib.Dictionary:
    """The matching dictionary with its B1 axis, cached in ``out_dir/cache``."""
    cache = Path(out_dir) / "cache"
    return dictionary_lib.matching_dictionary(config.sequence(), cache, config.rank, b1_axis=True)


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
