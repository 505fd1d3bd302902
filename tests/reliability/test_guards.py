"""Non-finite inputs never reach a model; train.py refuses invalid values while parsing flags."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from rinq_jax.data.files import io, pixels, preview
from rinq_jax.data.files.format import MrfFormatError
from rinq_jax.data.pipeline import loader, transforms
from tests.scripts import load_script

from .corpus import SHAPE, make_slice, write_valid


def _poison_signals(path: Path, row: int, value=np.nan) -> None:
    with h5py.File(path, "r+") as f:
        f["signals"][row, 4, 7] = value


@pytest.fixture
def files(tmp_path):
    # 8 rows, block_rows=2: four shards per file, so batches from clean shards come first
    return [write_valid(tmp_path / f"a{i}.h5", slice_id=f"a{i}") for i in range(2)]


@pytest.mark.parametrize("value", [np.nan, np.inf, complex(1.0, -np.inf)])
def test_patch_dataset_rejects_non_finite_signals_when_read(files, value):
    """Rejected (not masked): the shard's read raises, naming the file, field and pixel."""
    _poison_signals(files[1], row=5, value=value)
    ds = loader.PatchDataset(files, patch_size=3, block_rows=2, shuffle_shards=1, prefetch=2)
    seen = 0
    with pytest.raises(MrfFormatError) as err:
        for batch in ds.batches(4, seed=0, epoch=0):
            assert np.isfinite(batch["x"]).all()  # nothing non-finite was ever yielded
            seen += len(batch["x"])
    assert err.value.path == str(files[1]) and err.value.field == "signals"
    assert "(5, 4, 7)" in str(err.value)
    assert seen < ds.n_patches


def test_slice_patches_rejects_non_finite_signals(files):
    _poison_signals(files[0], row=2)
    with pytest.raises(MrfFormatError, match=r"field 'signals'.*NaN/Inf") as err:
        list(loader.slice_patches(files[0], patch_size=3, chunk_rows=4))
    assert err.value.path == str(files[0])


def test_non_finite_target_is_rejected_at_construction(files):
    with h5py.File(files[0], "r+") as f:
        f["t2_ms"][4, 5] = np.nan
    with pytest.raises(MrfFormatError, match="field 't2_ms'.*NaN/Inf"):
        loader.PatchDataset(files)
    with pytest.raises(MrfFormatError, match="field 't2_ms'"):
        pixels.check_files(files)


def test_all_zero_signal_stays_finite():
    x, norms = transforms.normalise_signals(np.zeros((2, 3, SHAPE[2]), np.complex64))
    assert np.all(x == 0) and np.all(norms == 0)


def test_preview_of_a_user_file_without_maps(tmp_path):
    s = make_slice()
    user = io.MrfSlice(
        subject_id="u", slice_id="1", sequence=s.sequence, signals=s.signals, mask=s.mask
    )
    io.write_slice(tmp_path / "u.h5", user)
    assert (
        preview.main([str(tmp_path / "u.h5"), "--out", str(tmp_path / "u.png"), "--frame", "3"])
        == 0
    )
    assert (tmp_path / "u.png").read_bytes()[:4] == b"\x89PNG"


# ----------------------------------------------------------------------------- train.py flags


@pytest.fixture(scope="module")
def cli():
    return load_script("train.py")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--learning-rate", "inf"], "learning_rate must be > 0 and finite"),
        (["--learning-rate", "nan"], "learning_rate must be > 0 and finite"),
        (["--learning-rate", "abc"], "expected float, got 'abc'"),
        (["--seed=-1"], "seed must be >= 0"),
        (["--checkpoint-every-steps=-5"], "checkpoint_every_steps must be >= 0"),
        (["--steps", "-3"], "steps must be >= 1"),
        (["--epochs", "0"], "epochs must be >= 1"),
        (["--warmup-fraction", "0.9"], "warmup_fraction must lie in [0.0, 0.5]"),
    ],
)
def test_train_flags_refused_while_parsing(cli, capsys, extra, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--model", "rnn3", *extra])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_train_flags_accepted_at_the_boundaries(cli):
    args = ["--model", "drone", "--seed", "0", "--checkpoint-every-steps", "0"]
    config = cli.config_from_args(cli.build_parser().parse_args([*args, "--learning-rate", "1e-9"]))
    assert (config.seed, config.checkpoint_every_steps, config.learning_rate) == (0, 0, 1e-9)


def test_a_batch_the_devices_cannot_split_is_one_line_before_any_work(cli, capsys, tmp_path):
    run = tmp_path / "run"
    assert cli.main(["--model", "rnn3", "--batch-size", "7", "--workdir", str(run)]) == 1
    assert "not divisible by the 2 devices" in capsys.readouterr().err
    assert not run.exists()
