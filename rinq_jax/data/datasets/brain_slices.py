"""One slice of the brain dataset, simulated (`rinq_jax.data.datasets.synthetic` writes them).

A slice is cut from a subject's warped template (`rinq_jax.data.subjects.anatomy`), given the
subject's tissue values (`tissue_values.population_values`) and acquired through the compartment
model (`rinq_jax.data.acquisition.compartments`): a training slice keeps its gridded compartment
maps (`make_training_slice`, what the training stream draws new values, B1 and noise from), a
validation or test slice is acquired once with exact k-space noise and matched against the
dictionary (`make_slice_file`). Everything random follows from (seed, subject, slice).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rinq_jax.atomic import atomic_path
from rinq_jax.data.acquisition import acquisition, compartments, multicoil, spiral
from rinq_jax.data.acquisition.coils import coil_sensitivities
from rinq_jax.data.files import io
from rinq_jax.data.subjects import anatomy, tissue_values, tissues
from rinq_jax.data.subjects.b1_map import blurred, measured_b1_map
from rinq_jax.errors import MrfFormatError
from rinq_jax.physics import dictionary as dictionary_lib
from rinq_jax.physics import slice_profile
from rinq_jax.physics.fit import GridFit, grid_started_fit
from rinq_jax.physics.matching import match

if TYPE_CHECKING:  # the config's module writes these slices: imported for annotations only
    from rinq_jax.data.datasets.synthetic import BrainDataConfig

# finufft threads of the generator's NUFFTs: one per core.
NUFFT_THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


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
        b1_shape: float32[M] the slice's B1 pattern ``beta`` at the centres: a draw of
            amplitude ``a`` has the true B1 ``1 + a beta`` there.
        b1_blurred: float32[N] the slice's B1 pattern ``beta`` at the stored pixels, blurred to a
            B1 map's resolution (`b1_map.blurred`): a draw of amplitude ``a`` is measured as
            ``(1 + a b1_blurred) (1 + e)`` (`rinq_jax.data.subjects.b1_map`).
        noise_rms: RMS of the subject's noiseless series over the FOV (sets the noise level).
        name: ``sub-XX_slice-YY``.
    """

    gridded: np.ndarray
    pixels: np.ndarray
    centres: np.ndarray
    neighbours: np.ndarray
    fractions: np.ndarray
    tissue: np.ndarray
    b1_shape: np.ndarray
    b1_blurred: np.ndarray
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
            missing = [f.name for f in dataclasses.fields(cls) if f.name not in data]
            if missing:
                raise MrfFormatError(
                    path,
                    missing[0],
                    f"missing: written by an older version of the generator; delete "
                    f"{path.parent} and run again to regenerate it",
                )
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
        b1_shape=slc.b1_shape[rows, cols].astype(np.float32),
        b1_blurred=blurred(slc.b1_shape, config.fov_mm / config.matrix)
        .ravel()[stored]
        .astype(np.float32),
        noise_rms=compartments.signal_rms(maps, coef),
        name=slice_name(subject, slice_index),
    )


def make_slice_file(
    config: BrainDataConfig,
    subject: int,
    slice_index: int,
    dictionary: dictionary_lib.Dictionary,
    single_truth: str | None = "exact",
    adjust_values: Callable[[tissue_values.TissueValues], tissue_values.TissueValues] | None = None,
    lesions: bool | None = None,
    profile: slice_profile.SliceProfile | None = None,
) -> io.MrfSlice:
    """One complete slice: fast-path series, exact noise, true and dictionary-matching maps.

    Also its compartment fractions, a measured B1 map (`rinq_jax.data.subjects.b1_map`) and the
    single-compartment truth (`compartments.single_compartment_maps`): with ``single_truth``
    "exact" the exact fit of each mixed pixel (test slices; started from the grid fit,
    `rinq_jax.physics.fit.grid_started_fit`), "grid" the fast `GridFit` of
    ``dictionary`` that makes the training stream's targets (validation slices), None none.
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
    truth = "t1_ms/t2_ms: proton-density-weighted mean relaxation rate of the pixel's compartments"
    single = {}
    if single_truth is not None:
        single = _single_truth(seq, slc, values, mask, dictionary, single_truth)
        truth += f"; {SINGLE_TRUTH} at the true B1 ({single_truth} fit)"
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
            "truth": truth,
        },
    )


SINGLE_TRUTH = "t1_single_ms/t2_single_ms: single-compartment fit of the noiseless unaliased signal"


def _single_truth(seq, slc, values, mask, dictionary, method: str) -> dict[str, np.ndarray]:
    """``t1_single_ms``, ``t2_single_ms`` maps of a slice, by the exact or the grid fit."""
    grid = GridFit.from_dictionary(dictionary)
    fit = grid if method == "grid" else grid_started_fit(seq, grid)
    fitted = compartments.single_compartment_maps(
        seq, slc.fractions[:, mask], values, slc.b1_shape[mask], fit
    )
    return dict(zip(("t1_single_ms", "t2_single_ms"), _on_mask(mask, *fitted), strict=True))


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
