"""The default brain dataset: generation, resume, loading, and the fresh training stream."""

import dataclasses
import hashlib

import numpy as np
import pytest

from rinq_jax.data.acquisition import compartments, spiral
from rinq_jax.data.acquisition.trajectory import Trajectory
from rinq_jax.data.datasets import brain_slices, synthetic
from rinq_jax.data.files import io, protocol
from rinq_jax.data.pipeline import stream, transforms
from rinq_jax.data.raw import ismrmrd_export, ismrmrd_import
from rinq_jax.data.subjects import b1_map, tissue_values, tissues
from rinq_jax.errors import MrfFormatError
from rinq_jax.physics import dictionary as dic
from rinq_jax.physics.fit import GridFit
from rinq_jax.physics.sequence import FispSequence

TINY = synthetic.BrainDataConfig(
    n_train=2, n_val=1, n_test=1, n_slices=2, matrix=48, n_reps=120, noise_bank=3, rank=8
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("brain")
    synthetic.generate(TINY, out, progress=False)
    return out, synthetic.load(out)


def _stream(data, **kwargs):
    cfg = data.config
    return stream.SyntheticStream(
        data.train, data.noise_bank, cfg.sequence(), cfg.acquisition(), **kwargs
    )


def test_generate_writes_every_split_with_disjoint_subjects(dataset):
    out, data = dataset
    assert len(data.train) == 4 and len(data.val) == 2 and len(data.test) == 2
    subjects = {
        split: {name.split("/")[1].split("_")[0] for name in data.files[split]}
        for split in synthetic.SPLITS
    }
    assert not subjects["train"] & subjects["val"] and not subjects["val"] & subjects["test"]
    info = io.validate(data.test[0])
    assert info.shape == (48, 48, 120) and info.has_target("true") and info.has_target("dm")
    s = io.read_slice(data.test[0])
    brain = s.t1_ms[s.mask]
    assert brain.min() > 300 and brain.max() < 4500
    assert set(np.unique(s.tissue[s.mask])) <= set(tissues.BRAIN_LABELS)
    assert data.noise_bank.shape == (48, 3, 48, 48)


def test_generate_is_reproducible_and_resumes(dataset, tmp_path):
    out, data = dataset
    again = synthetic.generate(TINY, tmp_path, progress=False)
    first = io.read_slice(data.val[0]).signals
    np.testing.assert_array_equal(io.read_slice(again["val"][0]).signals, first)
    loaded = brain_slices.SliceCompartments.load(again["train"][1])
    np.testing.assert_array_equal(loaded.gridded, data.train[1].gridded)
    stamp = again["val"][0].stat().st_mtime_ns
    synthetic.generate(TINY, tmp_path, progress=False)  # complete files are kept
    assert again["val"][0].stat().st_mtime_ns == stamp

    # files of an older version, without the fields this one adds, are made again
    old = io.read_slice(again["val"][0])
    io.write_slice(again["val"][0], dataclasses.replace(old, t1_single_ms=None, t2_single_ms=None))
    train = dict(np.load(again["train"][1]))
    del train["b1_shape"]
    np.savez(again["train"][1], **train)
    synthetic.generate(TINY, tmp_path, progress=False)
    remade = io.read_slice(again["val"][0])
    np.testing.assert_array_equal(remade.t1_single_ms, old.t1_single_ms)
    np.testing.assert_array_equal(remade.signals, first)
    loaded = brain_slices.SliceCompartments.load(again["train"][1])
    np.testing.assert_array_equal(loaded.b1_shape, data.train[1].b1_shape)


def test_generate_refuses_another_configuration_in_the_same_folder(dataset):
    out, _ = dataset
    with pytest.raises(ValueError, match="another configuration"):
        synthetic.generate(dataclasses.replace(TINY, snr=10.0), out, progress=False)


def test_load_refuses_an_incomplete_dataset(dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest"):
        synthetic.load(tmp_path)
    synthetic.generate(TINY, tmp_path, progress=False)
    (tmp_path / "test" / "sub-03_slice-01.h5").unlink()
    with pytest.raises(FileNotFoundError, match="incomplete"):
        synthetic.load(tmp_path)


def test_load_keeps_the_first_training_subjects(dataset):
    out, data = dataset
    first = synthetic.load(out, train_subjects=1)
    assert first.files["train"] == ["train/sub-00_slice-00.npz", "train/sub-00_slice-01.npz"]
    assert [s.name for s in first.train] == ["sub-00_slice-00", "sub-00_slice-01"]
    assert first.files["val"] == data.files["val"] and first.files["test"] == data.files["test"]
    with pytest.raises(ValueError, match=r"train_subjects must lie in \[1, 2\]"):
        synthetic.load(out, train_subjects=3)


def test_training_slice_holds_every_brain_pixel_and_its_neighbours(dataset):
    _, data = dataset
    sl = data.train[0]
    slc, _, _ = brain_slices.slice_model(TINY, 0, 0)
    tissue, mask = tissues.dominant_tissue(slc.fractions)
    assert sl.centres.size == mask.sum()
    rows, cols = sl.pixels[sl.centres].T
    assert mask[rows, cols].all()
    # the neighbourhood of each centre is the clamped 3 x 3 window around it
    r, c = sl.pixels[sl.neighbours[:, 0, 2]].T
    np.testing.assert_array_equal(r, np.clip(rows - 1, 0, 47))
    np.testing.assert_array_equal(c, np.clip(cols + 1, 0, 47))
    np.testing.assert_array_equal(sl.tissue, tissue[rows, cols])


def test_stream_batches_are_deterministic_and_resumable(dataset):
    _, data = dataset
    s = _stream(data, patch_size=3, prefetch=0)
    first = list(s.batches(16, seed=1, epoch=2))
    resumed = list(s.batches(16, seed=1, epoch=2, start_batch=2))
    assert len(first) == s.n_patches // 16
    for a, b in zip(first[2:], resumed, strict=True):
        np.testing.assert_array_equal(a["x"], b["x"])
        np.testing.assert_array_equal(a["y_ms"], b["y_ms"])
    x, y = first[0]["x"], first[0]["y_ms"]
    assert x.shape == (16, 3, 3, 120, 2) and x.dtype == np.float32
    # each signal is normalised to mean |s_t|^2 = 1
    power = (x**2).sum(-1).mean(-1)
    np.testing.assert_allclose(power, 1.0, rtol=1e-4)
    assert np.all((y[:, 0] > 300) & (y[:, 0] < 4500) & (y[:, 1] <= y[:, 0]))


def test_stream_targets_are_the_draws_true_maps(dataset):
    _, data = dataset
    s = _stream(
        data,
        patch_size=1,
        distribution=tissue_values.ValueDistribution(draws_per_batch=2),
        prefetch=0,
    )
    ids = np.arange(10)
    batch = s.make_batch(ids, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    draws = [tissue_values.training_values(rng, s.distribution) for _ in range(2)]
    for i in ids:
        sl = data.train[s._slice_of[i]]
        t1, t2 = compartments.true_maps(sl.fractions[:, s._centre_of[i]], draws[i % 2])
        np.testing.assert_allclose(batch["y_ms"][i], [t1, t2], rtol=1e-6)


def test_stream_neighbour_targets_are_each_patch_pixels_true_maps(dataset):
    """With neighbour_targets, every brain pixel of a patch gets its own truth under the patch's
    draw (from the slice's anatomy, image space), weight 1; rim pixels weight 0 and the centre's
    target. The rest of the batch is the same as without them."""
    _, data = dataset
    dist = tissue_values.ValueDistribution(draws_per_batch=3, wide_fraction=0.5)
    kwargs = {"patch_size": 3, "distribution": dist, "prefetch": 0}
    plain, s = _stream(data, **kwargs), _stream(data, neighbour_targets=True, **kwargs)
    ids = np.arange(0, s.n_patches, 37)[:40]
    batch = s.make_batch(ids, np.random.default_rng(3))
    reference = plain.make_batch(ids, np.random.default_rng(3))
    for key, value in reference.items():
        np.testing.assert_array_equal(batch[key], value)
    rng = np.random.default_rng(3)
    draws = [tissue_values.training_values(rng, dist) for _ in range(3)]
    y_patch, weight = batch["y_patch_ms"].reshape(-1, 9, 2), batch["patch_weight"].reshape(-1, 9)
    np.testing.assert_array_equal(y_patch[:, 4], batch["y_ms"])
    for n, i in enumerate(ids):
        sl = data.train[s._slice_of[i]]
        subject, index = (int(part.split("-")[1]) for part in sl.name.split("_"))
        slc = brain_slices.slice_model(data.config, subject, index)[0]
        brain = tissues.dominant_tissue(slc.fractions)[1]  # the slice's brain mask
        for j, stored in enumerate(sl.neighbours[s._centre_of[i]].ravel()):
            row, col = sl.pixels[stored]
            assert weight[n, j] == brain[row, col]
            if brain[row, col]:
                want = compartments.true_maps(slc.fractions[:, row, col], draws[n % 3])
                np.testing.assert_allclose(y_patch[n, j], want, rtol=1e-5)
            else:
                np.testing.assert_array_equal(y_patch[n, j], batch["y_ms"][n])
    assert 0 < weight.mean() < 1


def test_stream_single_targets_are_each_centres_fit_at_its_true_b1(dataset):
    """With a single_fit, each target is the single-compartment truth of the centre under its
    draw, at the B1 of the slice's anatomy; a pure centre gets its compartment's values."""
    _, data = dataset
    seq = data.config.sequence()
    grid = dic.paper_grid(b1_values=dic.MATCHING_B1_VALUES)
    fit = GridFit.from_dictionary(dic.compress(dic.build(seq, grid, progress=False), 50))
    s = _stream(
        data,
        patch_size=1,
        distribution=tissue_values.ValueDistribution(draws_per_batch=2, wide_fraction=0.5),
        prefetch=0,
        single_fit=fit,
    )
    purity = np.concatenate([sl.fractions[1:].max(axis=0) for sl in data.train])
    ids = np.concatenate([np.argsort(purity)[-8:], np.arange(0, s.n_patches, 97)[:16]])
    batch = s.make_batch(ids, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    draws = [tissue_values.training_values(rng, s.distribution) for _ in range(2)]
    pure, errors = 0, []
    for n, i in enumerate(ids):
        sl, c = data.train[s._slice_of[i]], s._centre_of[i]
        subject, index = (int(part.split("-")[1]) for part in sl.name.split("_"))
        slc = brain_slices.slice_model(data.config, subject, index)[0]
        row, col = sl.pixels[sl.centres[c]]
        f = sl.fractions[:, c : c + 1]
        want = compartments.single_compartment_maps(
            seq, f, draws[n % 2], slc.b1_shape[row, col][None], fit
        )
        errors.append(np.abs(batch["y_ms"][n] / np.ravel(want) - 1))  # float32 rounding only
        weight = f[:, 0] * draws[n % 2].pd
        if weight.max() >= compartments.PURE_WEIGHT * weight.sum():
            label = weight.argmax()
            want = [draws[n % 2].t1_ms[label], draws[n % 2].t2_ms[label]]
            np.testing.assert_allclose(batch["y_ms"][n], want, rtol=1e-6)
            pure += 1
    assert np.median(errors) < 1e-4 and np.max(errors) < 1e-2
    assert 0 < pure < len(ids)


def test_stream_signal_is_the_gridded_compartment_series_plus_noise(dataset):
    """Without noise, a 1x1 patch's signal is the slice's gridded series at that pixel."""
    _, data = dataset
    s = _stream(
        data,
        patch_size=1,
        distribution=tissue_values.ValueDistribution(draws_per_batch=1),
        prefetch=0,
    )
    s._sigma[:] = 0.0
    batch = s.make_batch(np.array([3]), np.random.default_rng(9))
    draw = tissue_values.training_values(np.random.default_rng(9), s.distribution)
    coef = compartments.fingerprint_coefficients(TINY.sequence(), draw)
    sl = data.train[0]
    pattern = spiral.interleaf_pattern(TINY.acquisition(), TINY.n_reps)
    series = compartments.gridded_series(sl.gridded[:, :, sl.centres[3:4]], coef, pattern)[0]
    expected = series / np.linalg.norm(series) * np.sqrt(TINY.n_reps)
    expected *= transforms.phase_factor(series)
    got = batch["x"][0, 0, 0, :, 0] + 1j * batch["x"][0, 0, 0, :, 1]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_stream_measures_b1_as_a_scanners_map_of_the_draws_field(dataset):
    """With b1_input a patch's B1 is the blurred true field of its draw times 3 % map noise.

    Reference: the slice's B1 pattern from the anatomy, ``1 + a beta``, blurred as a whole
    image (`b1_map.blurred`); the ratio of the stream's B1 to it has mean 1 and s.d. 0.03.
    Everything else in the batch is what the stream gives without B1.
    """
    _, data = dataset
    distribution = tissue_values.ValueDistribution(draws_per_batch=3, max_b1_amplitude=0.3)
    kwargs = {"patch_size": 3, "distribution": distribution, "prefetch": 0}
    plain, measured = _stream(data, **kwargs), _stream(data, b1_input=True, **kwargs)
    ids = np.flatnonzero(plain._slice_of == 0)
    batch = measured.make_batch(ids, np.random.default_rng(4))
    for key, value in plain.make_batch(ids, np.random.default_rng(4)).items():
        np.testing.assert_array_equal(batch[key], value)
    rng = np.random.default_rng(4)
    draws = [tissue_values.training_values(rng, distribution) for _ in range(3)]
    amplitude = np.array([draws[i % 3].b1_amplitude for i in range(ids.size)])
    slc, _, _ = brain_slices.slice_model(TINY, 0, 0)
    pattern = b1_map.blurred(slc.b1_shape, TINY.fov_mm / TINY.matrix)
    sl = data.train[0]
    rows, cols = sl.pixels[sl.neighbours[plain._centre_of[ids]]].transpose(3, 0, 1, 2)
    ratio = batch["b1"] / (1.0 + amplitude[:, None, None] * pattern[rows, cols])
    assert ratio.mean() == pytest.approx(1.0, abs=0.003)
    assert ratio.std() == pytest.approx(0.03, rel=0.1)


def test_a_subspace_stream_projects_the_noisy_aliased_series_before_normalising(dataset):
    """With the matching dictionary's subspace, every input lies in the span, and a noiseless
    1x1 patch is the normalised projection of the slice's gridded (aliased) series."""
    out, data = dataset
    basis = transforms.input_subspace(TINY.sequence(), out / "cache")
    distribution = tissue_values.ValueDistribution(draws_per_batch=1)
    s = _stream(data, patch_size=1, distribution=distribution, basis=basis, prefetch=0)
    noisy = s.make_batch(np.arange(0, s.n_patches, 7), np.random.default_rng(3))["x"]
    z = noisy[..., 0] + 1j * noisy[..., 1]
    np.testing.assert_allclose(transforms.project(z, basis), z, atol=1e-4)

    s._sigma[:] = 0.0
    got = s.make_batch(np.array([3]), np.random.default_rng(9))["x"][0, 0, 0]
    draw = tissue_values.training_values(np.random.default_rng(9), distribution)
    coef = compartments.fingerprint_coefficients(TINY.sequence(), draw)
    sl = data.train[0]
    pattern = spiral.interleaf_pattern(TINY.acquisition(), TINY.n_reps)
    series = compartments.gridded_series(sl.gridded[:, :, sl.centres[3:4]], coef, pattern)
    expected, _ = transforms.normalise_signals(transforms.project(series, basis))
    np.testing.assert_allclose(got[:, 0] + 1j * got[:, 1], expected[0], rtol=1e-4, atol=1e-4)


def test_a_streamed_epoch_never_repeats_a_noise_draw(dataset):
    _, data = dataset
    s = _stream(data, patch_size=3, prefetch=0)
    digests = set()
    n_batches = s.n_patches // 8
    for b in range(n_batches):
        noise = s._noise(np.random.default_rng([stream._STREAM_KEY, 0, 0, b]), 8)
        for row in noise:
            digests.add(hashlib.sha256(row.tobytes()).hexdigest())
    assert len(digests) == 8 * n_batches


def test_target_sample_matches_the_stream(dataset):
    _, data = dataset
    s = _stream(data, patch_size=3, prefetch=0)
    sample = s.sample_targets(2048)
    streamed = np.concatenate([b["y_ms"] for b in s.batches(32, seed=0, epoch=0)])
    assert np.log(sample).mean(0) == pytest.approx(np.log(streamed).mean(0), abs=0.1)


def test_raw_export_of_a_test_slice_imports_as_its_series(tmp_path):
    """generate --preset brain --write-ismrmrd: a test subject's raw 1-coil k-space, imported,
    is the slice's series of the fast compartment path (noiseless here, so equal to NUFFT
    accuracy)."""
    config = dataclasses.replace(TINY, snr=None)
    (raw, *_) = ismrmrd_export.export_brain_test(config, tmp_path, n_coils=1, progress=False)
    out = tmp_path / "imported.h5"
    schedule = raw.parent / "schedule.csv"
    assert ismrmrd_import.main([str(raw), "--sequence", str(schedule), "--out", str(out)]) == 0
    subject = config.subjects("test")[0]
    assert raw.name == f"{brain_slices.slice_name(subject, 0)}.h5"
    _, values, maps = brain_slices.slice_model(config, subject, 0)
    cfg, m = config.acquisition(), config.matrix
    expected = np.zeros((m * m, config.n_reps), np.complex64)
    gridded = compartments.grid_maps(maps, cfg, 1)
    compartments.gridded_series(
        gridded.reshape(*gridded.shape[:2], -1),
        compartments.fingerprint_coefficients(config.sequence(), values),
        spiral.interleaf_pattern(cfg, config.n_reps),
        out=expected,
    )
    imported = io.read_slice(out).signals.reshape(m * m, -1)
    error = np.linalg.norm(imported - expected) / np.linalg.norm(expected)
    assert error < 1e-4, error


def test_test_slices_carry_fractions_a_measured_b1_map_and_the_reachable_truth(dataset):
    out, data = dataset
    s = io.read_slice(data.test[0])
    assert s.fractions.shape == (48, 48, tissues.N_CLASSES)
    f = np.moveaxis(s.fractions, -1, 0)
    np.testing.assert_array_equal(tissues.dominant_tissue(f)[1], s.mask)
    # where one compartment carries 99 % of the magnetisation the truths nearly agree (6 mm
    # pixels are never pure; tests/data/test_compartments.py checks pure pixels exactly)
    subject = int(s.subject_id.split("-")[1])
    _, values, _ = brain_slices.slice_model(TINY, subject, 0)
    weight = s.fractions * values.pd
    pure = s.mask & (weight.max(-1) >= 0.99 * weight.sum(-1))
    assert pure.sum() > 5
    np.testing.assert_allclose(s.t1_single_ms[pure], s.t1_ms[pure], rtol=0.02)
    np.testing.assert_allclose(s.t2_single_ms[pure], s.t2_ms[pure], rtol=0.02)
    # elsewhere the fit stays near the rate truth
    mixed = s.mask & ~pure
    assert np.median(np.abs(s.t1_single_ms[mixed] / s.t1_ms[mixed] - 1)) < 0.2
    # the measured map follows the true B1 within its noise
    ratio = s.b1_map[s.mask] / s.b1[s.mask]
    assert abs(np.median(ratio) - 1) < 0.01 and 0.01 < ratio.std() < 0.06
    # validation slices: the grid fit of the training stream's targets
    val = io.read_slice(data.val[0])
    pure = val.mask & (val.fractions.max(axis=-1) >= 0.999)
    np.testing.assert_allclose(val.t1_single_ms[pure], val.t1_ms[pure], rtol=1e-5)


@pytest.mark.slow  # ~45 s: five tiny out-of-range subjects generated
def test_out_of_range_subjects_have_their_bins_values(dataset):
    from rinq_jax.data.datasets import test_sets

    out, _ = dataset
    groups = test_sets.generate(TINY, out, "out-of-range", progress=False)
    assert len(groups) == len(test_sets.SCALE_BINS)
    assert {len(paths) for paths in groups.values()} == {TINY.n_slices}
    seen = set()
    for name, paths in groups.items():
        path = paths[0]
        s = io.read_slice(path)
        subject = int(s.subject_id.split("-")[1])
        assert subject not in {k for split in synthetic.SPLITS for k in TINY.subjects(split)}
        _, values, _ = brain_slices.slice_model(TINY, subject, 0, lesions=True)
        scale = s.generator["t1_scale"], s.generator["t2_scale"]
        assert name == s.generator["condition"] == f"T1 x{scale[0]:g}, T2 x{scale[1]:g}"
        seen.add(scale[0])
        for label in (tissues.WM, tissues.GM):
            pure = s.mask & (s.fractions[..., label] > 0.9999)
            np.testing.assert_allclose(s.t1_ms[pure], values.t1_ms[label] * scale[0], rtol=1e-5)
            expected_t2 = min(values.t2_ms[label] * scale[1], values.t1_ms[label] * scale[0])
            np.testing.assert_allclose(s.t2_ms[pure], expected_t2, rtol=1e-5)
    assert seen == set(test_sets.SCALE_BINS)


@pytest.mark.slow  # ~45 s: a tiny subject acquired at five noise levels
def test_snr_set_scales_one_noise_realisation_by_its_factor(dataset):
    """Same subject, values and noise draw at every level: the noise is sigma = rms / SNR, so
    s(x0.25) - s(x1) = 3 n / SNR and s(x1) - s(x4) = 0.75 n / SNR, a ratio of exactly 4."""
    from rinq_jax.data.datasets import test_sets

    out, _ = dataset
    groups = test_sets.generate(TINY, out, "snr", progress=False)
    assert len(groups) == len(test_sets.SNR_LEVELS)
    level = {name: io.read_slice(paths[0]) for name, paths in groups.items()}
    low, mid, high = level["SNR x0.25"], level["SNR x1"], level["SNR x4"]
    np.testing.assert_array_equal(low.t1_ms, high.t1_ms)
    np.testing.assert_allclose(
        low.signals - mid.signals, 4 * (mid.signals - high.signals), atol=2e-6
    )
    for name, s in level.items():
        factor = s.generator["snr_factor"]
        assert name == s.generator["condition"] == f"SNR x{factor:g}"
        assert s.acquisition["snr"] == pytest.approx(TINY.snr * factor)
        assert s.acquisition["snr_wm"] / s.acquisition["snr"] == pytest.approx(
            mid.acquisition["snr_wm"] / mid.acquisition["snr"]
        )


@pytest.mark.slow  # ~40 s: a tiny subject simulated with four slice profiles
def test_slice_profile_set_changes_the_signals_not_the_truths(dataset):
    from rinq_jax.data.datasets import test_sets

    out, _ = dataset
    groups = test_sets.generate(TINY, out, "slice-profile", progress=False)
    level = {name: io.read_slice(paths[0]) for name, paths in groups.items()}
    ideal = level.pop("ideal slice")
    # the ideal condition is the dataset's acquisition: its signals equal a plain slice file's
    subject, dictionary = int(ideal.subject_id[4:]), synthetic.matching_dictionary(TINY, out)
    plain = brain_slices.make_slice_file(TINY, subject, 0, dictionary, None, lesions=True)
    np.testing.assert_array_equal(ideal.signals, plain.signals)
    assert set(level) == {f"profile TBW {t:g}" for t in test_sets.PROFILE_TBWS if t}
    for name, s in level.items():
        assert name == f"profile TBW {s.generator['profile_tbw']:g}"
        np.testing.assert_array_equal(s.t1_ms, ideal.t1_ms)
        np.testing.assert_array_equal(s.t2_single_ms, ideal.t2_single_ms)
        assert not np.allclose(s.signals[s.mask], ideal.signals[s.mask])


@pytest.mark.slow  # ~90 s: three kinds of dictionary matching on 4 slices
def test_evaluation_scores_matching_variants_and_recognition_per_pixel_class(dataset, tmp_path):
    """On a x2 out-of-range subject, recognition misses white matter T1 by half; matching
    with the measured B1 map measures it."""
    from rinq_jax.data.datasets import test_sets
    from rinq_jax.evaluation import evaluate

    out, data = dataset
    groups = test_sets.generate(TINY, out, "out-of-range", progress=False)
    doubled = next(paths for name, paths in groups.items() if name.startswith("T1 x2,"))
    result = evaluate.evaluate([], [data.test[0], *doubled], tmp_path, compare_dm=True)
    models = result.methods
    assert set(evaluate.DM_LABELS.values()) | {evaluate.RECOGNITION_LABEL} <= set(models)
    regions = {name: models[name].regions for name in models}
    assert set(regions[evaluate.RECOGNITION_LABEL]) == {"rate", "single"}
    # recognition answers the population value: T1 0.5x the truth in every white matter pixel
    result = evaluate.evaluate([], doubled, tmp_path / "x2", compare_dm=True, make_figures=False)
    rec = result.methods[evaluate.RECOGNITION_LABEL].regions["rate"]["classes"]
    matched = result.methods[evaluate.DM_LABELS["map"]].regions["rate"]["classes"]
    for pixels in ("pure", "boundary"):
        if rec[pixels]["wm"]["n_pixels"]:
            assert rec[pixels]["wm"]["t1"]["median_pct"] == pytest.approx(50.0, abs=5.0)
            assert matched[pixels]["wm"]["t1"]["median_pct"] < 25.0


def test_white_matter_snr_of_a_quarter_filled_field_of_view_is_twice_the_fov_snr():
    """SNR_WM = SNR * rms_WM / rms_FOV: with white matter in a quarter of the pixels and
    nothing elsewhere, rms_FOV = rms_WM / 2 for any fingerprint."""
    fractions = np.zeros((tissues.N_CLASSES, 8, 8))
    fractions[tissues.WM, :4, :4] = 1.0
    maps = compartments.basis_maps(fractions, np.zeros((8, 8)), np.zeros((8, 8)))
    values = tissue_values.population_values(np.random.default_rng(0))
    coef = compartments.fingerprint_coefficients(TINY.sequence(), values)
    fov_rms = compartments.signal_rms(maps, coef)
    assert brain_slices.wm_snr_factor(maps, coef, fractions, fov_rms) == pytest.approx(
        2.0, rel=1e-6
    )


def test_a_dataset_of_a_given_protocol_simulates_and_records_it(tmp_path):
    """A scanner's schedule (90 repetitions, no inversion, its own flip pattern) and
    trajectory (24 interleaves, golden order): the slice files carry the schedule, the stream
    follows the trajectory's order, and the folder refuses a changed protocol file."""
    t = np.arange(90)
    schedule = FispSequence(
        flip_deg=20 + 15 * np.sin(t / 9), tr_ms=10 + (t % 7), phase_deg=np.zeros(90), te_ms=2.0
    )
    acq = spiral.AcquisitionConfig(
        matrix=48, n_interleaves=24, undersampling=24, interleaf_order="golden"
    )
    config = TINY.with_protocol(schedule, spiral.played_trajectory(acq, 90), noise_bank=2)
    paths = synthetic.generate(config, tmp_path, progress=False)
    assert synthetic.read_manifest(tmp_path) == config
    info = io.inspect(paths["test"][0])
    assert info.sequence_hash == schedule.hash and info.n_reps == 90
    data = synthetic.load(tmp_path)
    assert data.noise_bank.shape[0] == 24 and data.train[0].gridded.shape[0] == 24
    x = _stream(data).make_batch(np.arange(4), np.random.default_rng(0))["x"]
    assert x.shape[3] == 90
    reordered = Trajectory(spiral.spiral_trajectory(acq), np.zeros(90, np.int64))
    protocol.save(tmp_path, schedule, reordered)
    with pytest.raises(MrfFormatError, match="field 'trajectory': hash"):
        synthetic.read_manifest(tmp_path)


def test_a_protocol_file_holds_what_is_given_and_checks_the_manifests_hashes(tmp_path):
    """A dataset of a given schedule with the default spiral (generate --sequence alone)."""
    schedule = dataclasses.replace(TINY.sequence(), ti_ms=None)
    protocol.save(tmp_path, schedule, None)
    assert protocol.load(tmp_path, schedule.hash, None) == (schedule, None)
    with pytest.raises(MrfFormatError, match="field 'schedule': hash"):
        protocol.load(tmp_path, TINY.sequence().hash, None)
    config = dataclasses.replace(TINY, n_train=2).with_protocol(schedule)
    assert config.n_reps == TINY.n_reps and config.acquisition().trajectory is None
