"""Simulated raw multi-coil spiral k-space, written as an ISMRMRD dataset (what a scanner exports).

`simulate_raw` is the acquisition of `rinq_jax.data.acquisition.acquisition.acquire` stopped before
the gridding: per repetition ``t`` and coil ``c`` the k-space samples of the repetition's interleaf,

    y_{c,t} = A_I(t) (S_c x_t) + n_{c,t},    x_t = sum_k coefficients[k] basis[k, t],

``A`` the NUFFT (`rinq_jax.data.acquisition.nufft.forward`), ``S_c`` the coil sensitivities
(`rinq_jax.data.acquisition.coils`), ``n_{c,t}`` white complex Gaussian noise, independent per coil
and sample, with the per-sample ``sigma`` of ``gridding.noise_std`` (the SNR of
``AcquisitionConfig``, defined on the single-coil image; with ``sum_c |S_c|^2 = 1`` the
coil-combined image has that SNR again). The noise is drawn in the order of
``gridding.grid_repetitions`` (block, interleaf group, chunk), as ``(b, C, samples, 2)`` normals, so
with one coil and the same ``rng`` the file holds exactly the k-space behind ``acquire``'s
series: gridding it (`rinq_jax.data.raw.ismrmrd_import`) gives the generator's own series.

ISMRMRD layout written (`ismrmrd.File`, group ``dataset``):

* ``xml`` header: ``encoding/encodedSpace`` (and ``reconSpace``) ``matrixSize`` (matrix, matrix,
  1) and ``fieldOfView_mm`` (fov, fov, 5); ``trajectory`` ``spiral``;
  ``encodingLimits/repetition`` 0 .. T-1 and ``kspace_encoding_step_1`` 0 .. n_interleaves-1;
  ``acquisitionSystemInformation/receiverChannels`` C; ``sequenceParameters`` TE (and TI).
* ``data``: one noise measurement (flag ``ACQ_IS_NOISE_MEASUREMENT``, C x samples of noise)
  followed by one acquisition per repetition in time order: ``data`` complex64[C, samples],
  ``traj`` float32[samples, 2] in cycles/pixel (``[-0.5, 0.5)``, the Gadgetron convention;
  ``traj[:, 0]`` along image rows, ``traj[:, 1]`` along columns), ``idx.repetition`` = t,
  ``idx.kspace_encode_step_1`` = the interleaf index.

The schedule travels beside it as CSV (`rinq_jax.physics.schedule_files.write_schedule_csv`), the importer's ``--sequence``.
Memory is bounded by the k-space of the coefficient images (``C x K x n_interleaves x
samples`` complex64, 443 MB for 8 coils, rank 50 at paper size) and one block of repetitions;
it does not grow with T.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import ismrmrd
import ismrmrd.xsd as xsd
import numpy as np

from rinq_jax.atomic import atomic_path
from rinq_jax.data.acquisition import compartments
from rinq_jax.data.acquisition.acquisition import checked_subspace, series_rms
from rinq_jax.data.acquisition.coils import coil_sensitivities
from rinq_jax.data.acquisition.gridding import DEFAULT_BATCH, noise_std, progress_bar
from rinq_jax.data.acquisition.multicoil import coil_kspace, kspace_blocks
from rinq_jax.data.acquisition.spiral import (
    AcquisitionConfig,
    density_compensation,
    interleaf_schedule,
    spiral_trajectory,
)
from rinq_jax.data.datasets import brain_slices, phantom_dataset, synthetic
from rinq_jax.physics import schedule_files
from rinq_jax.physics.sequence import FispSequence

__all__ = [
    "SLICE_THICKNESS_MM",
    "export_generated",
    "ismrmrd_header",
    "raw_dir",
    "simulate_raw",
]

#: Slice thickness written to the header (the paper's 5 mm); nothing depends on it.
SLICE_THICKNESS_MM = 5.0
_LARMOR_3T_HZ = 127_740_000


def ismrmrd_header(cfg: AcquisitionConfig, n_reps: int, n_coils: int, seq: FispSequence):
    """The ISMRMRD XML header (``ismrmrd.xsd.ismrmrdHeader``) of a simulated acquisition."""
    m, fov = cfg.matrix, float(cfg.fov_mm)

    def space():
        return xsd.encodingSpaceType(
            matrixSize=xsd.matrixSizeType(x=m, y=m, z=1),
            fieldOfView_mm=xsd.fieldOfViewMm(x=fov, y=fov, z=SLICE_THICKNESS_MM),
        )

    encoding = xsd.encodingType(
        encodedSpace=space(),
        reconSpace=space(),
        encodingLimits=xsd.encodingLimitsType(
            kspace_encoding_step_1=xsd.limitType(
                minimum=0, maximum=cfg.n_interleaves - 1, center=0
            ),
            repetition=xsd.limitType(minimum=0, maximum=n_reps - 1, center=0),
        ),
        trajectory=xsd.trajectoryType.SPIRAL,
        trajectoryDescription=xsd.trajectoryDescriptionType(
            identifier="rinq_jax variable-density spiral (rinq_jax.data.acquisition.spiral)",
            userParameterLong=[
                xsd.userParameterLongType(name="n_interleaves", value=cfg.n_interleaves)
            ],
            comment="traj in cycles/pixel, [-0.5, 0.5); traj[:, 0] along rows, [:, 1] along columns",
        ),
    )
    return xsd.ismrmrdHeader(
        experimentalConditions=xsd.experimentalConditionsType(
            H1resonanceFrequency_Hz=_LARMOR_3T_HZ
        ),
        acquisitionSystemInformation=xsd.acquisitionSystemInformationType(
            systemFieldStrength_T=3.0, receiverChannels=n_coils
        ),
        encoding=[encoding],
        sequenceParameters=xsd.sequenceParametersType(
            TE=[seq.te_ms],
            TI=[] if seq.ti_ms is None else [seq.ti_ms],
            sequence_type="FISP-MRF",
        ),
    )


def _acquisition(data: np.ndarray, traj_cycles: np.ndarray, **fields) -> ismrmrd.Acquisition:
    acq = ismrmrd.Acquisition.from_array(data, traj_cycles)
    for name, value in fields.items():
        if name in ("repetition", "kspace_encode_step_1"):
            setattr(acq.idx, name, value)
        else:
            setattr(acq, name, value)
    return acq


def simulate_raw(
    path: str | os.PathLike,
    coefficients: np.ndarray,
    basis: np.ndarray,
    cfg: AcquisitionConfig,
    sequence: FispSequence,
    *,
    n_coils: int = 1,
    sensitivities: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    batch: int = DEFAULT_BATCH,
    nthreads: int = 1,
    progress: bool = False,
) -> Path:
    """Simulate the raw multi-coil k-space of a low-rank series and write it as ISMRMRD.

    Repetitions are simulated and appended block by block (``batch`` repetitions), so memory
    does not grow with T; the file is written atomically (temporary name, then rename).

    Args:
        path: the ISMRMRD file to write.
        coefficients: complex[K, H, W] subspace coefficient images (H = W = cfg.matrix).
        basis: complex[K, T] temporal basis (T = ``sequence.n_reps``).
        cfg: acquisition with one interleaf per repetition (``undersampling ==
            n_interleaves``, not fully sampled).
        sequence: the schedule (its TE and TI go into the header).
        n_coils: number of coils C (``coil_sensitivities``); 1 is the uniform coil.
        sensitivities: complex[C, H, W] sensitivities instead of ``coil_sensitivities``.
        rng: noise generator; required when ``cfg.snr`` is set. With one coil the same rng
            state as ``acquire``'s gives the same noise.
        batch: repetitions per block (as in ``acquire``; sets the order of the noise draws).
        nthreads: finufft threads.
        progress: show a progress bar.

    Returns:
        ``path``.

    """
    m = cfg.matrix
    coefficients, basis = checked_subspace(coefficients, basis, m)
    n_reps = basis.shape[-1]
    _check_exportable(cfg, sequence, n_reps)
    sens = coil_sensitivities(m, n_coils) if sensitivities is None else np.asarray(sensitivities)
    if sens.ndim != 3 or sens.shape[1:] != (m, m):
        raise ValueError(f"sensitivities must have shape (C, {m}, {m}), got {sens.shape}")
    traj = spiral_trajectory(cfg)
    sigma = noise_std(series_rms(coefficients, basis), cfg, density_compensation(traj))
    if sigma > 0.0 and not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator when snr is set, got {rng!r}")
    kspace = coil_kspace(coefficients, sens.astype(np.complex64), cfg, traj, nthreads)
    traj_cycles = traj / np.float32(2.0 * math.pi)
    schedule = interleaf_schedule(cfg, n_reps)[:, 0]
    n_coil, n_samples = sens.shape[0], traj.shape[1]

    path = Path(path)
    with atomic_path(path, keep_suffixes=False, fsync=True) as tmp:
        with ismrmrd.File(tmp, "w") as f:
            container = f["dataset"]
            container.header = ismrmrd_header(cfg, n_reps, n_coil, sequence)
            container.acquisitions = [_noise_scan(rng, sigma, n_coil, n_samples)]
            bar = progress_bar(n_reps, progress)
            for t0, data in kspace_blocks(kspace, basis, cfg, sigma, rng, batch):
                container.acquisitions.extend(
                    _acquisition(
                        data[t - t0],
                        traj_cycles[schedule[t]],
                        repetition=t,
                        kspace_encode_step_1=int(schedule[t]),
                        scan_counter=t + 1,
                    )
                    for t in range(t0, t0 + data.shape[0])
                )
                if bar is not None:
                    bar.update(data.shape[0])
            if bar is not None:
                bar.close()
    return path


def _check_exportable(cfg: AcquisitionConfig, sequence: FispSequence, n_reps: int) -> None:
    """A ValueError unless the schedule has the basis's T and one interleaf per repetition."""
    if sequence.n_reps != n_reps:
        raise ValueError(f"sequence has {sequence.n_reps} repetitions, basis {n_reps}")
    if cfg.interleaves_per_repetition != 1:
        raise ValueError(
            "ISMRMRD export writes one interleaf per repetition: needs undersampling == "
            f"n_interleaves and not fully_sampled, got {cfg.interleaves_per_repetition} per rep"
        )


def _noise_scan(rng, sigma: float, n_coil: int, n_samples: int) -> ismrmrd.Acquisition:
    """The noise measurement: one readout per coil.

    Drawn from a child stream of ``rng``, so that the repetitions' noise stays that of `acquire`.
    """
    noise_rng = rng.spawn(1)[0] if rng is not None else np.random.default_rng(0)
    noise = noise_rng.standard_normal((n_coil, n_samples, 2), dtype=np.float32)
    noise = (max(sigma, 1e-30) / math.sqrt(2.0)) * noise.view(np.complex64)[..., 0]
    scan = _acquisition(noise, np.zeros((n_samples, 2), np.float32))
    scan.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
    return scan


def raw_dir(out_dir: str | os.PathLike, n_coils: int) -> Path:
    """Folder of a generated dataset's raw files: ``OUT/ismrmrd-<n>coil`` (not globbed as slices)."""
    return Path(out_dir) / f"ismrmrd-{n_coils}coil"


def _prepared_raw_dir(out_dir: str | os.PathLike, n_coils: int, seq: FispSequence) -> Path:
    """`raw_dir`, created, without killed writers' leftovers, with ``schedule.csv`` in it."""
    folder = raw_dir(out_dir, n_coils)
    folder.mkdir(parents=True, exist_ok=True)
    phantom_dataset.remove_stale_temp_files(folder)
    schedule_files.write_schedule_csv(folder / "schedule.csv", seq)
    return folder


def export_generated(
    config: phantom_dataset.GenerateConfig,
    out_dir: str | os.PathLike,
    n_coils: int,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[Path]:
    """Write the raw k-space of every slice of a phantom dataset (``generate --write-ismrmrd``).

    Slice ``(subject, s)`` of ``config`` (presets ``quick``, ``paper``) is simulated as in
    ``phantom_dataset.generate_slice`` (same phantom, subspace and noise seed ``[seed, subject, s]``)
    and written to ``raw_dir(out_dir, n_coils) / sub-XX_slice-YY.h5`` by `simulate_raw`, with
    the schedule as ``schedule.csv`` beside it. With one coil, importing a file gives the slice
    file's signals. Existing files are kept (they are written atomically, so complete).

    Returns:
        The raw files, sorted by subject then slice.

    """
    seq, acq = config.sequence(), config.acquisition()
    folder = _prepared_raw_dir(out_dir, n_coils, seq)
    cache_dir = Path(cache_dir or Path(out_dir) / "cache")
    dictionary, paths = None, []
    for subject in range(config.n_subjects):
        for s in range(config.n_slices):
            path = phantom_dataset.slice_path(folder, subject, s)
            paths.append(path)
            if path.exists():
                continue
            dictionary = dictionary or phantom_dataset.matching_dictionary(config, cache_dir)
            ph, _ = phantom_dataset.slice_phantom(config, subject, s)
            coefficients = phantom_dataset.phantom_coefficients(ph, seq, dictionary.basis)
            rng = np.random.default_rng([config.seed, subject, s])
            simulate_raw(
                path,
                coefficients,
                dictionary.basis,
                acq,
                seq,
                n_coils=n_coils,
                rng=rng,
                progress=progress,
            )
    return paths


def export_brain_test(
    config: synthetic.BrainDataConfig,
    out_dir: str | os.PathLike,
    n_coils: int,
    progress: bool = True,
) -> list[Path]:
    """Write the raw k-space of a brain dataset's test slices (``generate --write-ismrmrd``).

    The test subjects are held out of training and their slice files hold the true maps.

    Slice ``(subject, s)`` is the series of `brain_slices.make_slice_file`, written exactly as a
    sum over its tissue compartments (coefficients: the compartments' spatial maps, basis:
    their fingerprints, `rinq_jax.data.acquisition.compartments`), with noise from the slice's own
    noise seed (not the same draws as the slice file's image-space noise: a new acquisition of the
    same subject). Files go to ``raw_dir(out_dir, n_coils) / sub-XX_slice-YY.h5`` with
    ``schedule.csv``; existing files are kept.

    Returns:
        The raw files, sorted by subject then slice.

    """
    seq, acq = config.sequence(), config.acquisition()
    folder = _prepared_raw_dir(out_dir, n_coils, seq)
    paths = []
    for subject in config.subjects("test"):
        for s in range(config.n_slices):
            path = folder / f"{brain_slices.slice_name(subject, s)}.h5"
            paths.append(path)
            if path.exists():
                continue
            _, values, maps = brain_slices.slice_model(config, subject, s)
            fingerprints = compartments.fingerprint_coefficients(seq, values)
            rng = np.random.default_rng([config.seed, subject, s, 1])
            simulate_raw(
                path, maps, fingerprints, acq, seq, n_coils=n_coils, rng=rng, progress=progress
            )
    return paths
