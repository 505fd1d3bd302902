"""Table 1 experiment: a smoke run on a tiny brain dataset, and its ordering verdicts."""

from __future__ import annotations

import json

import pytest

from rinq_jax.configs.experiments import SMALL_SUBJECTS, Table1Setup
from rinq_jax.data.datasets import synthetic
from rinq_jax.evaluation import inference
from rinq_jax.experiments import table1

from .conftest import TINY_OVERRIDES

TINY = synthetic.BrainDataConfig(
    n_train=5, n_val=1, n_test=1, n_slices=1, matrix=32, n_reps=60, noise_bank=2, rank=8
)


@pytest.mark.slow  # ~1 min: a tiny dataset, four tiny trainings, dictionary matching, figures
def test_table1_two_seeds_small_and_more_data_and_resume(tmp_path):
    synthetic.generate(TINY, tmp_path / "data", progress=False)
    setup = Table1Setup(
        data_dir=str(tmp_path / "data"),
        max_steps=2,
        model_overrides={"rnn3": TINY_OVERRIDES},
    )
    rows = ["rnn3-complex", "rnn3-complex-more"]
    results = table1.run(setup, tmp_path / "runs", rows=rows, log=lambda *_: None)
    assert set(results) == {*rows, "dictionary-matching"}
    for key in rows:  # one score per seed
        assert len(results[key]["test_loss_ms"]) == 2
        assert len(results[key]["rme_t1_wm_pct"]) == 2
    assert results["rnn3-complex"]["train_subjects"] == SMALL_SUBJECTS
    assert results["rnn3-complex-more"]["train_subjects"] == 5
    # the small set trains on the first 4 subjects, RNN3* on all 5; both test on sub-06
    small = inference.load_checkpoint(tmp_path / "runs" / "rnn3-complex-seed0").metadata
    more = inference.load_checkpoint(tmp_path / "runs" / "rnn3-complex-more-seed1").metadata
    assert len(small.data_files["train"]) == 4 and len(more.data_files["train"]) == 5
    assert small.data_files["test"] == more.data_files["test"] == ["test/sub-06_slice-00.h5"]
    # seeds differ, so do their runs
    assert results["rnn3-complex"]["test_loss_ms"][0] != results["rnn3-complex"]["test_loss_ms"][1]
    text = (tmp_path / "runs" / "table1.md").read_text()
    assert "| RNN3 complex | 2 | 4 |" in text and "| more data over less |" in text
    assert (tmp_path / "runs" / "fig2.png").stat().st_size > 0
    saved = json.loads((tmp_path / "runs" / "table1.json").read_text())
    assert saved["ordering"][0]["claim"] == "more data over less"
    # Re-running skips the finished runs and gives the same table.
    again = table1.run(setup, tmp_path / "runs", rows=rows, compare_dm=False, log=lambda *_: None)
    assert again["rnn3-complex"]["test_loss_ms"] == results["rnn3-complex"]["test_loss_ms"]


def test_ordering_verdicts_need_the_seeds_ranges_apart():
    def rows(better, worse):
        return {
            "rnn3-complex-more": {"test_loss_ms": better},
            "rnn3-complex": {"test_loss_ms": worse},
        }

    verdict = lambda b, w: table1.ordering_checks(rows(b, w))[0]["verdict"]  # noqa: E731
    assert verdict([90, 95], [100, 110]) == "holds"
    assert verdict([90, 105], [100, 110]) == "within seed noise"
    assert verdict([120, 130], [100, 110]) == "reversed"


def test_unknown_rows_and_a_folder_without_a_dataset_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown row"):
        table1.run(Table1Setup(data_dir=str(tmp_path)), tmp_path, rows=["rnn9-complex"])
    with pytest.raises(FileNotFoundError, match="not a generated brain dataset"):
        table1.run(Table1Setup(data_dir=str(tmp_path)), tmp_path, rows=["rnn3-complex"])
