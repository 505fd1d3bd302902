"""The trainer's input: training and validation data of a run, and the target statistics.

One pass over the data folder builds a `Datasets`: a generated brain dataset
(`rinq_jax.data.datasets.synthetic`; training drawn fresh by `rinq_jax.data.pipeline.stream`,
validation subjects on disk) or a folder of slice files, checked once
(`rinq_jax.data.files.pixels.check_files`, whose masked pixels and targets the datasets index
without reading the maps again) and split by slice: `round(n * val_fraction)` validation and
`round(n * test_fraction)` test slices (at least one each; `TrainConfig`'s defaults are the
paper's 8 : 2 : 2 of 12 slices), the rest for training. The split
depends only on the slices and the seed. The training targets' mean and standard deviation (in ms,
or of ln ms) set the target normalisation (`rinq_jax.training.config`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from rinq_jax.configs.data import VALUE_DISTRIBUTIONS
from rinq_jax.data.acquisition import spiral
from rinq_jax.data.datasets import synthetic
from rinq_jax.data.files import pixels
from rinq_jax.data.pipeline import loader, splits, stream, transforms
from rinq_jax.data.subjects import tissue_values
from rinq_jax.errors import InputError, InputNotFoundError
from rinq_jax.physics.fit import GridFit
from rinq_jax.training.config import TrainConfig
from rinq_jax.training.targets import transformed


class PatchSource(Protocol):
    """What the trainer needs of a dataset (`rinq_jax.data.pipeline.loader.PatchDataset` fits)."""

    n_patches: int
    n_reps: int

    def batches(
        self, batch_size: int, seed: int, epoch: int, start_batch: int, drop_remainder: bool
    ) -> Iterator[dict[str, np.ndarray]]:
        """Yield {"x": f32[B,P,P,T,C], "y_ms": f32[B,2], "index"}; order set by (seed, epoch)."""


@dataclass(frozen=True)
class Datasets:
    """Training and validation data of one run, and what to record about them.

    Attributes:
      train, val: PatchSource objects.
      files: {"train", "val", "test"} -> slice file names (recorded in the checkpoint).
      sequence_hash: hash of the acquisition sequence all files share, or None.
      trajectory: signature of the k-space trajectory (`trajectory.Trajectory.signature`), or None
        when the files do not record it.
      signal_normalisation: the name of the per-signal normalisation.
      target_samples_ms: float[N, 2] (T1, T2) in ms of the training targets (all of them, or a
        sample of a stream), or None (then collected by one pass over `train`'s batches, fine
        for small in-memory data); their statistics set the target normalisation.
      streamed: training batches are drawn fresh (a generated dataset), so a run's default
        length is `recipes.default_steps` rather than epochs (`TrainConfig.steps`).

    """

    train: PatchSource
    val: PatchSource
    files: dict[str, list[str]] = field(default_factory=dict)
    sequence_hash: str | None = None
    trajectory: dict | None = None
    signal_normalisation: str = "unknown"
    target_samples_ms: np.ndarray | None = None
    streamed: bool = False


def build_datasets(config: TrainConfig, patch_size: int) -> Datasets:
    """The run's training and validation data.

    A generated brain dataset (`rinq_jax.data.datasets.synthetic`: training drawn fresh by
    `rinq_jax.data.pipeline.stream`, validation subjects on disk) when the folder holds one's
    manifest (the default, generated on first use), else the folder's slice files split by slice
    (module doc).
    """
    data_dir = config.data_path
    if config.data_dir is None:
        synthetic.generate(synthetic.PRESETS["brain"], data_dir, progress=config.progress)
    if synthetic.read_manifest(data_dir) is not None:
        return stream_datasets(
            data_dir,
            patch_size,
            config.input_kind,
            config.target,
            config.train_subjects,
            config.values,
            config.b1_input,
            config.subspace_input,
            config.progress,
            neighbour_targets=config.neighbour_loss > 0,
        )
    for name, default in (("train_subjects", None), ("neighbour_loss", 0.0)):
        if getattr(config, name) != default:
            raise InputError(
                f"{data_dir}: {name} needs a generated brain dataset (its training stream); "
                "a folder of slice files is split by slice"
            )
    files = sorted(data_dir.glob("*.h5"))
    if not files:
        raise InputNotFoundError(f"no slice files (*.h5) in {config.data_dir}")
    # Every file's metadata and maps, and agreement on T and the sequence, before the split: a
    # malformed file fails here with one MrfFormatError naming it, even one bound for the test
    # split. Signals are checked as they are read (pixels.check_files).
    checked = pixels.check_files(files, config.target)
    n_val, n_test = (
        max(1, round(len(files) * f)) for f in (config.val_fraction, config.test_fraction)
    )
    n_train = len(files) - n_val - n_test
    if n_train < 1:
        raise InputError(
            f"{len(files)} slice files cannot be split into train/val/test "
            f"({n_train}/{n_val}/{n_test}); at least 3 are needed"
        )
    split = splits.random_slice_split(
        [c.info for c in checked], n_train, n_val, n_test, seed=config.seed
    )
    basis = (
        transforms.input_subspace(checked[0].info.sequence, data_dir / "cache", config.progress)
        if config.subspace_input
        else None
    )
    return datasets_from_split(
        split, patch_size, config.input_kind, config.target, checked, config.b1_input, basis
    )


def stream_datasets(
    data_dir: Path,
    patch_size: int,
    input_kind: str,
    target: str,
    train_subjects: int | None = None,
    values: str = "wide",
    b1_input: bool = False,
    subspace_input: bool = False,
    progress: bool = True,
    neighbour_targets: bool = False,
) -> Datasets:
    """A generated brain dataset's training stream and validation files.

    `SyntheticStream` over its training slices (of the first `train_subjects` subjects, all
    when None) drawing from the value distribution ``values`` (`configs.data.VALUE_DISTRIBUTIONS`),
    its validation subjects' files as a `PatchDataset`, with the rate-weighted (``target``
    "true") or the single-compartment truth ("single"); both with measured B1 for ``b1_input``
    and series projected on the matching dictionary's subspace for ``subspace_input`` (built
    with a progress bar if ``progress``); the training batches also hold every patch pixel's
    target with ``neighbour_targets``.
    """
    distribution = tissue_values.ValueDistribution(**VALUE_DISTRIBUTIONS[values])
    if target not in ("true", "single"):
        raise InputError(
            f"{data_dir}: training slices of a generated dataset are drawn fresh and have only "
            "true maps; --target dm needs slice files"
        )
    data = synthetic.load(data_dir, train_subjects)
    seq = data.config.sequence()
    basis = transforms.input_subspace(seq, data_dir / "cache", progress) if subspace_input else None
    single_fit = None
    if target == "single":  # the fit of the validation slices' truth (`synthetic.generate`)
        built = synthetic.matching_dictionary(data.config, data_dir, progress)
        single_fit = GridFit.from_dictionary(built)
    train = stream.SyntheticStream(
        data.train,
        data.noise_bank,
        seq,
        data.config.acquisition(),
        patch_size,
        input_kind,
        distribution=distribution,
        b1_input=b1_input,
        basis=basis,
        single_fit=single_fit,
        neighbour_targets=neighbour_targets,
    )
    val = loader.PatchDataset(
        data.val,
        patch_size=patch_size,
        input_kind=input_kind,
        target=target,
        b1_input=b1_input,
        basis=basis,
    )
    return Datasets(
        train=train,
        val=val,
        files=data.files,
        sequence_hash=val.infos[0].sequence_hash,
        trajectory=spiral.trajectory_signature(data.config.acquisition(), train.n_reps),
        signal_normalisation=transforms.signal_normalisation(subspace_input),
        target_samples_ms=train.sample_targets(65536, seed=0),
        streamed=True,
    )


def datasets_from_split(
    split: splits.Split,
    patch_size: int,
    input_kind: str,
    target: str = "true",
    checked: Sequence[pixels.SlicePixels] = (),
    b1_input: bool = False,
    basis: np.ndarray | None = None,
) -> Datasets:
    """Wrap an explicit `splits.Split` in PatchDatasets, with the training targets' samples.

    ``checked``: `pixels.check_files` of (some of) the files, indexed without reading again;
    ``b1_input``: the batches carry the files' measured B1 maps; ``basis``: the series are
    projected on it (`transforms.project`, ``subspace_input``).
    """
    by_path = {c.info.path: c for c in checked}

    def make(fs):
        return loader.PatchDataset(
            [by_path.get(f, f) for f in fs],
            patch_size=patch_size,
            input_kind=input_kind,
            target=target,
            b1_input=b1_input,
            basis=basis,
        )

    train, val = make(split.train), make(split.val)
    return Datasets(
        train=train,
        val=val,
        files={k: [Path(f).name for f in getattr(split, k)] for k in ("train", "val", "test")},
        sequence_hash=train.infos[0].sequence_hash,
        trajectory=train.infos[0].trajectory,
        signal_normalisation=transforms.signal_normalisation(basis is not None),
        target_samples_ms=train.targets_ms,
    )


def target_stats(
    datasets: Datasets, transform: str = "linear"
) -> tuple[tuple[float, float], tuple[float, float]]:
    """((T1, T2) mean, (T1, T2) std) of the training targets: in ms, or of ln(ms) for "log"."""
    y = datasets.target_samples_ms
    if y is None:
        train = datasets.train
        batches = train.batches(4096, seed=0, epoch=0, start_batch=0, drop_remainder=False)
        with closing(batches) as it:
            y = np.concatenate([np.asarray(b["y_ms"], np.float64) for b in it])
    y = transformed(np.asarray(y, np.float64), transform)
    return tuple(y.mean(0).tolist()), tuple(y.std(0).tolist())


def resolve_target_norm(config: TrainConfig, datasets: Datasets) -> TrainConfig:
    """Fill offsets and scales left at None with the training targets' mean and std."""
    fields = ("t1_offset_ms", "t2_offset_ms", "t1_scale_ms", "t2_scale_ms")
    if all(getattr(config, f) is not None for f in fields):
        return config
    (m1, m2), (s1, s2) = target_stats(datasets, config.target_transform)
    if not (s1 > 0 and s2 > 0):
        raise ValueError(f"training targets have zero spread (std T1 {s1} ms, T2 {s2} ms)")
    stats = dict(zip(fields, (m1, m2, s1, s2), strict=True))
    return config.replace(**{f: stats[f] for f in fields if getattr(config, f) is None})


def data_hash(datasets: Datasets) -> str:
    """Short stable hash of the split's file names and the sequence hash."""
    text = repr((sorted(datasets.files.items()), datasets.sequence_hash))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.contextmanager
def closing(batches):
    """Close a batch iterator on exit (stops the loader's prefetch thread), if it can be."""
    try:
        yield batches
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()
