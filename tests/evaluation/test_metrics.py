"""Metrics against values worked out by hand on 2 x 2 maps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rinq_jax.evaluation import metrics

# Three masked pixels; the fourth (bottom right) holds values that must not count.
MASK = np.array([[True, True], [True, False]])
TRUE_T1 = np.array([[1000.0, 2000.0], [500.0, 9999.0]])
PRED_T1 = np.array([[1100.0, 1800.0], [500.0, 0.0]])  # errors +100, -200, 0
TRUE_T2 = np.array([[100.0, 50.0], [40.0, 9999.0]])
PRED_T2 = np.array([[110.0, 50.0], [20.0, 0.0]])  # errors +10, 0, -20
TISSUE = np.array([[1, 1], [2, 3]], np.uint8)  # wm, wm, gm; the csf pixel is outside the mask


def test_map_metrics_by_hand():
    m = metrics.map_metrics(PRED_T1, PRED_T2, TRUE_T1, TRUE_T2, MASK)
    assert m["n_pixels"] == 3
    # sqrt((100^2 + 200^2 + 0 + 10^2 + 0 + 20^2) / 6)
    assert m["val_loss_ms"] == pytest.approx(math.sqrt(50500 / 6))
    t1, t2 = m["t1"], m["t2"]
    assert t1["rmse_ms"] == pytest.approx(math.sqrt(50000 / 3))
    assert t1["mae_ms"] == pytest.approx(100.0)
    assert t1["bias_ms"] == pytest.approx(-100 / 3)
    # relative errors 10 %, 10 %, 0 %
    assert t1["rme_pct"] == pytest.approx(20 / 3)
    assert t1["rme_std_pct"] == pytest.approx(math.sqrt(((10 / 3) ** 2 * 2 + (20 / 3) ** 2) / 3))
    assert t2["rmse_ms"] == pytest.approx(math.sqrt(500 / 3))
    assert t2["mae_ms"] == pytest.approx(10.0)
    # relative errors 10 %, 0 %, 50 %: mean 20, deviations -10, -20, +30
    assert t2["rme_pct"] == pytest.approx(20.0)
    assert t2["rme_std_pct"] == pytest.approx(math.sqrt(1400 / 3))
    assert "tissues" not in m


def test_per_tissue_grouping():
    m = metrics.map_metrics(PRED_T1, PRED_T2, TRUE_T1, TRUE_T2, MASK, TISSUE)
    wm, gm, csf = (m["tissues"][k] for k in ("wm", "gm", "csf"))
    assert (wm["n_pixels"], gm["n_pixels"], csf["n_pixels"]) == (2, 1, 0)
    assert wm["t1"]["rmse_ms"] == pytest.approx(math.sqrt((100**2 + 200**2) / 2))
    assert wm["t2"]["rme_pct"] == pytest.approx(5.0)  # 10 % and 0 %
    assert wm["val_loss_ms"] == pytest.approx(math.sqrt((100**2 + 200**2 + 10**2) / 4))
    assert gm["t1"]["rmse_ms"] == 0.0 and gm["t2"]["rme_pct"] == pytest.approx(50.0)
    assert math.isnan(csf["val_loss_ms"]) and math.isnan(csf["t1"]["rme_pct"])


def test_pooled_equals_metrics_of_concatenated_pixels():
    a = metrics.masked_pixels(PRED_T1, PRED_T2, MASK)
    b = metrics.masked_pixels(TRUE_T1, TRUE_T2, MASK)
    # Second "slice": one pixel with errors 300 and 30 ms.
    pooled = metrics.pooled_metrics(
        [a, np.array([[1300.0, 130.0]])], [b, np.array([[1000.0, 100.0]])]
    )
    assert pooled["n_pixels"] == 4
    assert pooled["val_loss_ms"] == pytest.approx(math.sqrt((50500 + 300**2 + 30**2) / 8))
    assert pooled["t1"]["rme_pct"] == pytest.approx((10 + 10 + 0 + 30) / 4)


def test_relative_error_needs_positive_truth():
    bad = TRUE_T1.copy()
    bad[0, 0] = 0.0
    with pytest.raises(ValueError, match="must be > 0 ms inside the mask.*1 of 3"):
        metrics.map_metrics(PRED_T1, PRED_T2, bad, TRUE_T2, MASK)
    # ... but zeros outside the mask are fine
    ok = TRUE_T1.copy()
    ok[1, 1] = 0.0
    assert metrics.map_metrics(PRED_T1, PRED_T2, ok, TRUE_T2, MASK)["n_pixels"] == 3


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="one shape"):
        metrics.map_metrics(PRED_T1[:1], PRED_T2, TRUE_T1, TRUE_T2, MASK)


def test_jsonable_turns_nan_into_null():
    m = metrics.map_metrics(PRED_T1, PRED_T2, TRUE_T1, TRUE_T2, MASK, TISSUE)
    text = json.dumps(metrics.jsonable(m), allow_nan=False)
    assert json.loads(text)["tissues"]["csf"]["val_loss_ms"] is None
    assert metrics.jsonable({"x": np.float32(1.5), "y": [np.int64(2)]}) == {"x": 1.5, "y": [2]}


def test_figure_layout_and_titles(tmp_path):
    from rinq_jax.evaluation import figures

    rows = [
        figures.MapRow("rnn3 complex", PRED_T1, PRED_T2),
        figures.MapRow("dictionary matching", TRUE_T1, TRUE_T2),
    ]
    fig = figures.map_grid(rows, TRUE_T1, TRUE_T2, MASK, title="slice")
    titles = figures.panel_titles(fig)
    # truth row (2 maps, 2 empty panels) + 2 rows of 4 panels
    assert len(titles) == 12
    assert titles[0] == "ground truth: T1" and titles[1] == "" and titles[3] == ""
    assert titles[4] == "rnn3 complex: T1"
    # the by-hand numbers of test_map_metrics_by_hand: T1 RME 6.67 +- 4.71 %, T2 20.0 +- 21.6 %
    assert titles[5] == "T1 RME 6.7 ± 4.7 %" and titles[7] == "T2 RME 20.0 ± 21.6 %"
    assert titles[9] == "T1 RME 0.0 ± 0.0 %"
    path = figures.save_figure(fig, tmp_path / "grid.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_display_and_error_maps():
    from rinq_jax.evaluation import figures

    shown = figures.display_map(PRED_T1, MASK)
    assert shown[1, 1] == -200.0 and shown[0, 0] == 1100.0
    err = figures.relative_error_pct(
        np.array([[1500.0, 3000.0]]), np.array([[1000.0, 1000.0]]), np.array([[True, True]])
    )
    assert err.tolist() == [[50.0, 100.0]]  # 200 % clipped at 100 %


def test_crop_box_keeps_mask_and_margin():
    from rinq_jax.evaluation import figures

    mask = np.zeros((10, 12), bool)
    mask[4:6, 3:5] = True
    rows, cols = figures.crop_box(mask, margin=2)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (2, 8, 1, 7)
    mask[0, 11] = True  # margins stop at the image border
    rows, cols = figures.crop_box(mask, margin=2)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (0, 8, 1, 12)


def _fractions(rows):
    """float[N, N_CLASSES] from {label: fraction} per pixel."""
    from rinq_jax.data.subjects import tissues

    out = np.zeros((len(rows), tissues.N_CLASSES))
    for i, row in enumerate(rows):
        for label, value in row.items():
            out[i, label] = value
    return out


def test_pixel_classes_split_pure_boundary_and_non_brain_pixels():
    from rinq_jax.data.subjects.tissues import BONE, CSF, FAT, GM, WM

    f = _fractions(
        [
            {WM: 1.0},  # pure, pure99
            {WM: 0.95, GM: 0.05},  # pure
            {WM: 0.6, GM: 0.4},  # boundary
            {CSF: 0.9, BONE: 0.1},  # bone: not brain
            {GM: 0.97, FAT: 0.015},  # 1.5 % fat is tolerated; pure
        ]
    )
    c = metrics.pixel_classes(f)
    np.testing.assert_array_equal(c["pure"], [1, 1, 0, 0, 1])
    np.testing.assert_array_equal(c["pure99"], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(c["boundary"], [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(c["non_brain"], [0, 0, 0, 1, 0])


def test_relative_error_statistics_by_hand():
    true = np.array([100.0, 100.0, 200.0, 50.0])
    pred = np.array([110.0, 95.0, 200.0, 40.0])  # +10 %, -5 %, 0 %, -20 %
    s = metrics.relative_error_stats(pred, true)
    assert s["median_pct"] == pytest.approx(7.5)
    assert s["mean_pct"] == pytest.approx(8.75)
    assert s["p25_pct"] == pytest.approx(3.75) and s["p75_pct"] == pytest.approx(12.5)
    assert s["bias_pct"] == pytest.approx(-2.5)
    assert all(math.isnan(v) for v in metrics.relative_error_stats([], []).values())


def test_region_metrics_score_each_class_and_tissue_apart():
    from rinq_jax.data.subjects.tissues import BONE, CSF, GM, WM

    f = _fractions([{WM: 1.0}, {WM: 1.0}, {GM: 0.5, WM: 0.5}, {CSF: 0.5, BONE: 0.5}])
    tissue = np.array([WM, WM, GM, CSF])
    true = np.array([[800.0, 60.0], [800.0, 60.0], [1000.0, 70.0], [3000.0, 1000.0]])
    pred = true * np.array([[1.1, 1.0], [0.8, 1.0], [1.0, 1.5], [2.0, 2.0]])
    r = metrics.region_metrics(pred, true, tissue, f)
    wm = r["classes"]["pure"]["wm"]
    assert wm["n_pixels"] == 2
    assert wm["t1"]["median_pct"] == pytest.approx(15.0) and wm["t2"]["median_pct"] == 0.0
    assert r["classes"]["boundary"]["gm"]["t2"]["median_pct"] == pytest.approx(50.0)
    assert r["classes"]["non_brain"]["csf"]["n_pixels"] == 1
    assert r["classes"]["pure"]["csf"]["n_pixels"] == 0
    assert r["loss_ms"]["pure"] == pytest.approx(math.sqrt((80.0**2 + 160.0**2) / 4))
    assert r["loss_ms"]["no_csf"] == pytest.approx(math.sqrt((80.0**2 + 160.0**2 + 35.0**2) / 6))
