"""Tests of the patch loader over tiny generated files: batches, order, prefetching, checks."""

import dataclasses
import gc
import threading

import numpy as np
import pytest

from rinq_jax.data.files import io
from rinq_jax.data.files.format import MrfFormatError
from rinq_jax.data.files.io import MrfSlice
from rinq_jax.data.pipeline import loader
from rinq_jax.data.pipeline.loader import PatchDataset, slice_patches
from rinq_jax.data.pipeline.transforms import normalise_signals
from tests.data.test_io import make_sequence, make_slice

SHAPE = (12, 10, 40)


def _write(tmp_path, name, **kwargs):
    path = tmp_path / f"{name}.h5"
    io.write_slice(path, make_slice(shape=kwargs.pop("shape", SHAPE), **kwargs))
    return str(path)


@pytest.fixture
def files(tmp_path):
    return [
        _write(tmp_path, "a", seed=1, subject_id="s0", slice_id="z0"),
        _write(tmp_path, "b", seed=2, subject_id="s0", slice_id="z1"),
        _write(tmp_path, "c", seed=3, subject_id="s1", slice_id="z0"),
    ]


def _expected_input(path, row, col, patch_size, input_kind):
    """Reference: pad the whole normalised slice by edge replication and slice by hand."""
    s = io.read_slice(path)
    normalised, _ = normalise_signals(s.signals)
    half = patch_size // 2
    padded = np.pad(normalised, ((half, half), (half, half), (0, 0)), mode="edge")
    patch = padded[row : row + patch_size, col : col + patch_size]
    if input_kind == "complex":
        return np.stack([patch.real, patch.imag], -1)
    return np.abs(patch)[..., None]


# ----------------------------------------------------------------------------- patches


@pytest.mark.parametrize("patch_size", [1, 3])
@pytest.mark.parametrize("input_kind", ["complex", "magnitude"])
def test_batch_shapes_dtypes_and_content(files, patch_size, input_kind):
    ds = PatchDataset(files, patch_size=patch_size, input_kind=input_kind, block_rows=4)
    assert ds.n_reps == 40
    n_channels = 2 if input_kind == "complex" else 1
    batch = next(ds.batches(7, seed=0, epoch=0))
    assert batch["x"].shape == (7, patch_size, patch_size, 40, n_channels)
    assert batch["x"].dtype == np.float32
    assert batch["y_ms"].shape == (7, 2) and batch["y_ms"].dtype == np.float32
    assert batch["index"].shape == (7,) and batch["index"].dtype == np.int64
    for k in range(7):
        f, row, col = ds.locate(batch["index"][k])
        want = _expected_input(files[f], row, col, patch_size, input_kind)
        np.testing.assert_allclose(batch["x"][k], want, rtol=1e-6, atol=1e-6)
        s = io.read_slice(files[f])
        np.testing.assert_array_equal(batch["y_ms"][k], [s.t1_ms[row, col], s.t2_ms[row, col]])


def test_magnitude_is_abs_of_normalised_complex(files):
    kwargs = {"patch_size": 3, "prefetch": 0}
    xc = next(PatchDataset(files, input_kind="complex", **kwargs).batches(5, 0, 0))["x"]
    xm = next(PatchDataset(files, input_kind="magnitude", **kwargs).batches(5, 0, 0))["x"]
    np.testing.assert_allclose(xm[..., 0], np.hypot(xc[..., 0], xc[..., 1]), rtol=1e-6)
    # Each signal in a patch has norm sqrt(T) (every neighbour normalised by its own norm).
    np.testing.assert_allclose(np.linalg.norm(xm[..., 0], axis=-1), np.sqrt(40), rtol=1e-5)


def test_edge_pixel_patch_uses_edge_replication(tmp_path):
    rng = np.random.default_rng(5)
    s = make_slice(shape=SHAPE)
    mask = np.zeros(SHAPE[:2], bool)
    mask[0, 0] = mask[11, 4] = True  # a corner and a bottom-edge pixel
    path = tmp_path / "edge.h5"
    io.write_slice(
        path,
        MrfSlice(
            **{
                **s.__dict__,
                "mask": mask,
                "t1_ms": rng.uniform(500, 900, mask.shape).astype(np.float32),
                "t2_ms": rng.uniform(50, 90, mask.shape).astype(np.float32),
                "dm_t1_ms": None,
                "dm_t2_ms": None,
                "t1_single_ms": None,
                "t2_single_ms": None,
            }
        ),
    )
    chunks = list(slice_patches(path, patch_size=3, input_kind="complex"))
    xs = np.concatenate([c[0] for c in chunks])
    pixels = np.concatenate([c[1] for c in chunks])
    np.testing.assert_array_equal(pixels, [[0, 0], [11, 4]])
    normalised, _ = normalise_signals(s.signals)
    corner = normalised[[0, 0, 1]][:, [0, 0, 1]]  # rows/cols -1 -> 0 (replicated edge)
    np.testing.assert_allclose(xs[0, ..., 0] + 1j * xs[0, ..., 1], corner, rtol=1e-6, atol=1e-6)
    bottom = normalised[[10, 11, 11]][:, [3, 4, 5]]
    np.testing.assert_allclose(xs[1, ..., 0] + 1j * xs[1, ..., 1], bottom, rtol=1e-6, atol=1e-6)


def test_slice_patches_covers_mask_in_chunks(files):
    s = io.read_slice(files[0])
    chunks = list(
        slice_patches(files[0], patch_size=3, chunk_rows=3, max_patches=5, return_norms=True)
    )
    pixels = np.concatenate([c[1] for c in chunks])
    assert all(c[0].shape[0] <= 5 for c in chunks)
    np.testing.assert_array_equal(pixels, np.argwhere(s.mask))
    norms = np.concatenate([c[2] for c in chunks])
    np.testing.assert_allclose(norms, np.linalg.norm(s.signals[s.mask], axis=-1), rtol=1e-5)


# ----------------------------------------------------------------------------- order


def _epoch_ids(ds, batch_size, seed, epoch, **kwargs):
    return np.concatenate([b["index"] for b in ds.batches(batch_size, seed, epoch, **kwargs)])


def test_only_masked_pixels_each_exactly_once(files):
    ds = PatchDataset(files, patch_size=3, block_rows=3, shuffle_shards=2)
    masks = [io.read_slice(f).mask for f in files]
    assert ds.n_patches == sum(int(m.sum()) for m in masks)
    ids = _epoch_ids(ds, 16, seed=0, epoch=0, drop_remainder=False)
    assert ids.size == ds.n_patches and np.array_equal(np.sort(ids), np.arange(ds.n_patches))
    f, row, col = ds.locate(ids)
    assert all(masks[fi][r, c] for fi, r, c in zip(f, row, col, strict=True))
    dropped = _epoch_ids(ds, 16, seed=0, epoch=0)
    assert dropped.size == (ds.n_patches // 16) * 16
    np.testing.assert_array_equal(dropped, ids[: dropped.size])


def test_deterministic_order_and_epochs_differ(files):
    ds = PatchDataset(files, block_rows=4, shuffle_shards=2)
    a = _epoch_ids(ds, 8, seed=3, epoch=0)
    np.testing.assert_array_equal(a, _epoch_ids(ds, 8, seed=3, epoch=0))
    np.testing.assert_array_equal(
        a, _epoch_ids(PatchDataset(files, block_rows=4, shuffle_shards=2, prefetch=0), 8, 3, 0)
    )
    assert not np.array_equal(a, _epoch_ids(ds, 8, seed=3, epoch=1))
    assert not np.array_equal(a, _epoch_ids(ds, 8, seed=4, epoch=0))


def test_start_batch_resumes_the_same_stream(files, monkeypatch):
    ds = PatchDataset(files, patch_size=3, block_rows=4, shuffle_shards=2, prefetch=0)
    full = list(ds.batches(8, seed=1, epoch=2))
    reads = []
    original = loader._load_block
    monkeypatch.setattr(loader, "_load_block", lambda *a: reads.append(a) or original(*a))
    resumed = list(ds.batches(8, seed=1, epoch=2, start_batch=5))
    assert len(resumed) == len(full) - 5
    for got, want in zip(resumed, full[5:], strict=True):
        for key in ("x", "y_ms", "index"):
            np.testing.assert_array_equal(got[key], want[key])
    # Skipped batches are not read: only shards of the remaining batches are loaded.
    assert len(reads) <= ds.n_shards


def test_shards_are_loaded_once_per_epoch(files, monkeypatch):
    ds = PatchDataset(files, patch_size=3, block_rows=2, shuffle_shards=3, prefetch=0)
    reads = []
    original = loader._load_block
    monkeypatch.setattr(loader, "_load_block", lambda *a: reads.append(a) or original(*a))
    _epoch_ids(ds, 5, 0, 0, drop_remainder=False)
    assert len(reads) == ds.n_shards


def test_prefetch_thread_stops_on_close_and_gc(files):
    def alive():
        return [t for t in threading.enumerate() if t.name == "rinq-prefetch"]

    ds = PatchDataset(files, block_rows=2, prefetch=2)
    it = ds.batches(4, seed=0, epoch=0)
    next(it)
    assert alive()
    it.close()
    assert not alive()
    it = ds.batches(4, seed=0, epoch=0)
    next(it)
    del it
    gc.collect()
    assert not alive()


def test_errors_in_the_thread_reach_the_consumer(files, monkeypatch):
    def boom(*args):
        raise MrfFormatError(args[0], "signals", "broken")

    monkeypatch.setattr(loader, "_load_block", boom)
    with pytest.raises(MrfFormatError, match="broken"):
        next(PatchDataset(files, prefetch=2).batches(4, 0, 0))


# ----------------------------------------------------------------------------- consistency


def test_files_must_share_sequence_and_length(files, tmp_path):
    odd = _write(tmp_path, "odd", sequence=make_sequence(40, seed=9), subject_id="s9")
    with pytest.raises(MrfFormatError, match="odd.h5.*sequence_hash"):
        PatchDataset([*files, odd])
    short = _write(tmp_path, "short", shape=(12, 10, 30), subject_id="s8")
    with pytest.raises(MrfFormatError, match=r"short.h5.*'signals'.*T = 40"):
        PatchDataset([*files, short])


def test_dm_target_and_missing_target(files, tmp_path):
    ds = PatchDataset(files, target="dm", prefetch=0)
    batch = next(ds.batches(4, 0, 0))
    f, row, col = ds.locate(batch["index"])
    s = io.read_slice(files[f[0]])
    assert batch["y_ms"][0, 0] == s.dm_t1_ms[row[0], col[0]]
    s = make_slice(shape=SHAPE)
    user = tmp_path / "user.h5"
    io.write_slice(
        user,
        MrfSlice(subject_id="u", slice_id="1", sequence=s.sequence, signals=s.signals, mask=s.mask),
    )
    with pytest.raises(MrfFormatError, match="user.h5.*'t1_ms'.*target='true'"):
        PatchDataset([*files, user])


def test_bad_arguments(files):
    for kwargs in ({"patch_size": 2}, {"input_kind": "phase"}, {"target": "fit"}):
        with pytest.raises(ValueError):
            PatchDataset(files, **kwargs)


def test_measured_b1_patches_are_the_files_map_at_the_patch_pixels(files, tmp_path):
    """A network reading B1 gets each file's b1_map around the patch, edges replicated as x."""
    ds = PatchDataset(files, patch_size=3, b1_input=True, prefetch=0)
    maps = [io.read_slice(f).b1_map for f in files]
    for batch in ds.batches(16, seed=0, epoch=0, drop_remainder=False):
        file_ids, rows, cols = ds.locate(batch["index"])
        for b1, f, r, c in zip(batch["b1"], file_ids, rows, cols, strict=True):
            padded = np.pad(maps[f], 1, mode="edge")
            np.testing.assert_array_equal(b1, padded[r : r + 3, c : c + 3])
    assert "b1" not in next(iter(PatchDataset(files, prefetch=0).batches(4, 0, 0)))

    bare = tmp_path / "no_b1_map.h5"
    io.write_slice(bare, dataclasses.replace(make_slice(shape=SHAPE), b1_map=None))
    with pytest.raises(MrfFormatError, match=r"no_b1_map\.h5: field 'b1_map'"):
        PatchDataset([bare], b1_input=True)
