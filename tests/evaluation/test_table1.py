"""Table 1 experiment: a smoke run on tiny slices (tiny networks, 2 steps a row)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rinq_jax.data.generate import GenerateConfig
from rinq_jax.experiments import table1

from .conftest import TINY_OVERRIDES, write_eval_slices


def _tiny_preset(tmp_path):
    small, more = tmp_path / "small", tmp_path / "more"
    write_eval_slices(small, n_files=6)  # sub-00..02, 2 slices each
    write_eval_slices(more, n_files=8)  # the same 6 plus sub-03
    data = GenerateConfig(n_subjects=3, n_slices=2, matrix=12, n_reps=30)
    return table1.Preset(
        "tiny",
        data,
        dataclasses.replace(data, n_subjects=4),
        str(small),
        str(more),
        steps=dict.fromkeys(table1.QUICK_STEPS, 2),
        model_overrides={"rnn1": TINY_OVERRIDES, "rnn3": TINY_OVERRIDES},
        batch_size=16,
    )


@pytest.mark.slow  # ~50 s: three tiny trainings, dictionary matching, figures
def test_table1_smoke_and_resume(tmp_path):
    preset = _tiny_preset(tmp_path)
    rows = ["drone-complex", "rnn3-complex", "rnn3-complex-more"]
    results = table1.run(preset, tmp_path / "runs", rows=rows, log=lambda *_: None)
    out = tmp_path / "runs" / "random"
    assert set(results) == {*rows, "dictionary-matching"}
    assert results["rnn3-complex"]["paper_val_loss_ms"] == 221.52
    assert results["rnn3-complex-more"]["steps"] == 2
    text = (out / "table1.md").read_text()
    assert "| S_c (complex) |" in text and "(paper 221.52)" in text and "(paper 195.34)" in text
    assert "Dictionary matching" in text
    assert (out / "fig2.png").stat().st_size > 0
    saved = json.loads((out / "table1.json").read_text())
    assert saved["drone-complex"]["test_loss_ms"] == pytest.approx(
        results["drone-complex"]["test_loss_ms"]
    )
    # Every row is scored on the same test slice, the small split's; RNN3* trained on more.
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert len(metrics["files"]) == 1
    from rinq_jax.evaluation import inference

    small_meta = inference.load_checkpoint(out / "rnn3-complex").metadata["data_files"]
    more_meta = inference.load_checkpoint(out / "rnn3-complex-more").metadata["data_files"]
    assert small_meta["test"] == more_meta["test"]
    assert [len(small_meta[k]) for k in ("train", "val", "test")] == [4, 1, 1]
    # 7 of 8 slices left: 7 * 7 / 26 -> 2 validation, 5 training
    assert [len(more_meta[k]) for k in ("train", "val", "test")] == [5, 2, 1]
    # Re-running skips finished rows (their done.json) and gives the same table.
    again = table1.run(preset, tmp_path / "runs", rows=rows, compare_dm=False, log=lambda *_: None)
    assert again["rnn3-complex"]["best_val_loss_ms"] == results["rnn3-complex"]["best_val_loss_ms"]
    # Asking for more steps continues the finished runs from their checkpoints.
    longer = dataclasses.replace(preset, steps=dict.fromkeys(table1.QUICK_STEPS, 4))
    more = table1.run(
        longer, tmp_path / "runs", rows=["drone-complex"], compare_dm=False, log=lambda *_: None
    )
    assert more["drone-complex"]["steps"] == 4
    assert json.loads((out / "drone-complex" / "done.json").read_text())["final_step"] == 4


def test_loso_split_and_unknown_rows(tmp_path):
    preset = _tiny_preset(tmp_path)
    small = sorted((tmp_path / "small").glob("*.h5"))
    more = sorted((tmp_path / "more").glob("*.h5"))
    s = table1.loso_splits(small, more)
    subject = lambda paths: {p.split("/")[-1][:6] for p in paths}  # noqa: E731
    assert subject(s.small.test) == {"sub-02"} and subject(s.small.val) == {"sub-01"}
    assert subject(s.small.train) == {"sub-00"}
    assert subject(s.more.train) == {"sub-00", "sub-03"}
    with pytest.raises(ValueError, match="unknown row.*valid: rnn3-complex, rnn3-complex-more"):
        table1.run(
            preset, tmp_path / "runs", split="loso", rows=["cnn1-complex"], log=lambda *_: None
        )
