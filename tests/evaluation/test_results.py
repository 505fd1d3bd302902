"""The typed evaluation result: metrics.json's layout, the headline it prints, its lookups."""

from __future__ import annotations

import math

import pytest

from rinq_jax.evaluation.results import EvaluationResult, MethodResult


def _pure(wm_t1, wm_t2, gm_t1, gm_t2):
    def cell(t1, t2):
        return {"t1": {"median_pct": t1}, "t2": {"median_pct": t2}}

    return {"classes": {"pure": {"wm": cell(wm_t1, wm_t2), "gm": cell(gm_t1, gm_t2)}}}


AGGREGATE = {
    "val_loss_ms": 120.5,
    "t1": {"rme_pct": 6.25, "rme_std_pct": 4.0},
    "t2": {"rme_pct": 9.5, "rme_std_pct": 7.0},
    "tissues": {"wm": {"t1": {"rme_pct": 5.0}, "t2": {"rme_pct": 8.0}}},
}


def _method(regions, about=None):
    slices = {
        "a.h5": {"val_loss_ms": 120.5},
        "scan.h5": {"t1_median_ms": 900.0, "t2_median_ms": 70.0},
    }
    return MethodResult(AGGREGATE, regions, 0.25, slices, about or {})


def test_the_headline_reads_the_single_truth_when_it_was_scored():
    both = _method({"rate": _pure(9, 9, 9, 9), "single": _pure(6.04, 8.16, 7.5, 15.2)})
    assert both.pure_truth() == "single"
    assert both.pure_median_pct("gm", "t2") == 15.2
    assert both.pure_median_pct("gm", "t2", "rate") == 9
    assert _method({"rate": _pure(1, 2, 3, 4)}).pure_truth() == "rate"
    assert _method(None).pure_truth() is None
    result = EvaluationResult(["a.h5", "scan.h5"], ["scan.h5"], {}, {"rnn3 complex": both})
    first, second, third = result.summary_lines()
    assert first.endswith("(single truth): WM   6.0 /   8.2 % | GM   7.5 /  15.2 %")
    assert "val loss   120.50 ms | T1 RME   6.25 ±   4.00 % | T2 RME   9.50 ±   7.00 %" in second
    assert "1 slice(s) without true maps): median T1 900 ms, T2 70 ms" in third


def test_lookups_and_the_json_layout_of_metrics_json():
    m = _method(None, {"model": "rnn3", "step": 3000})
    assert m.tissue_rme_pct("wm", "t2") == 8.0 and math.isnan(m.tissue_rme_pct("csf", "t1"))
    assert m.headline() == {
        "loss_ms": 120.5,
        "t1_rme_pct": 6.25,
        "t1_rme_std_pct": 4.0,
        "t2_rme_pct": 9.5,
        "t2_rme_std_pct": 7.0,
        "seconds_per_slice": 0.25,
    }
    entry = m.to_json()
    assert list(entry) == ["aggregate", "regions", "seconds_per_slice", "slices", "model", "step"]
    result = EvaluationResult(["a.h5"], [], {"pure": "..."}, {"rnn3 complex": m}).to_json()
    assert list(result) == ["files", "files_without_truth", "pixel_classes", "models"]
    assert result["models"]["rnn3 complex"] == entry
    unscored = MethodResult(None, None, 0.1, {}, {})
    with pytest.raises(ValueError, match="no slice with true maps"):
        unscored.headline()
