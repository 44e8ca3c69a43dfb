"""Metrics against hand-computed values, edge cases included."""

import math

import numpy as np
import pandas as pd
import pytest

from gruforecast import metrics
from gruforecast.data import Panel, Series
from gruforecast.evaluate import baseline_forecasts, records_at, summarize

nan = float("nan")
CASES = [
    # (metric, y, f, expected) computed by hand
    ("mae", [1, 2, 3], [2, 2, 5], 1.0),  # (1 + 0 + 2) / 3
    ("rmse", [1, 2, 3], [2, 2, 5], math.sqrt(5 / 3)),  # sqrt((1 + 0 + 4) / 3)
    ("smape", [100, 200], [110, 180], (200 * 10 / 210 + 200 * 20 / 380) / 2),
    ("smape", [0, 0], [0, 0], 0.0),  # 0/0 terms count as 0
    ("smape", [0], [5], 200.0),
    ("mae", [1, nan, 3], [1, 5, 4], 0.5),  # NaN pairs ignored
    ("mae", [nan], [1], nan),
    ("mape", [100, 200], [110, 180], (10 + 10) / 2),  # 100 |y - f| / |y|
    ("mape", [0, 50], [1, 25], 50.0),  # the zero actual is left out, never inf
    ("mape", [0, 0], [1, 2], nan),  # undefined everywhere: NaN (null in JSON)
    ("smape", [1, 2, nan], [1, 2, 3], 0.0),
]


@pytest.mark.parametrize("name,y,f,expected", CASES)
def test_metric_table(name, y, f, expected):
    got = getattr(metrics, name)(np.array(y, float), np.array(f, float))
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, rel=1e-12)


def test_mase_scale_and_mase():
    x = np.array([1, 2, 3, 1, 2, 4], float)
    assert metrics.mase_scale(x, 3) == pytest.approx((0 + 0 + 1) / 3)
    assert metrics.mase_scale(x, 1) == pytest.approx((1 + 1 + 2 + 1 + 2) / 5)
    assert metrics.mase_scale(x, 10) == metrics.mase_scale(x, 1)  # too short: m = 1
    assert metrics.mase([1, 2], [2, 4], 0.5) == pytest.approx(3.0)
    assert math.isnan(metrics.mase([1], [2], 0.0))  # constant training part: undefined
    assert metrics.mase_scale(np.ones(5), 1) == 0.0


def test_baseline_forecasts():
    history = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], float)
    f = baseline_forecasts(history, horizon=5, season=3)
    assert f["naive"].tolist() == [10] * 5
    assert f["seasonal_naive"].tolist() == [8, 9, 10, 8, 9]  # the last season repeated
    assert f["drift"].tolist() == [11, 12, 13, 14, 15]  # mean change (10 - 1) / 9 = 1 per step
    short = baseline_forecasts(np.array([4.0, 6.0]), horizon=2, season=3)
    assert short["seasonal_naive"].tolist() == [6, 6]  # less than a season: naive


def test_summary_of_records_by_hand():
    # one series, two origins, horizon 2, season 1; training part [0, 2, 4] -> scale 2
    y = np.array([0.0, 2.0, 4.0, 6.0, 8.0, 0.0])
    panel = Panel(spec=None, series=[Series("a", pd.RangeIndex(6), y[:, None])], freq=None)
    records = records_at(panel, [np.array([3, 4])], np.array([[5.0, 9.0], [8.0, 2.0]]), 1, train_ends=[3])
    assert records["actual"].tolist() == [6.0, 8.0, 8.0, 0.0] and records["fold"].tolist() == [0, 0, 1, 1]
    summary = summarize(records)
    model = summary["scores"]["model"]
    assert model["mae"] == pytest.approx((1 + 1 + 0 + 2) / 4)
    assert model["mase"] == pytest.approx(((1 + 1) / 2 / 2 + (0 + 2) / 2 / 2) / 2)
    assert model["mape"] == pytest.approx((100 / 6 + 100 / 8 + 0) / 3)  # y = 0 left out
    assert summary["mape_undefined_points"] == 1
    naive = summary["scores"]["naive"]  # forecasts 4, 4 then 6, 6
    assert naive["mae"] == pytest.approx((2 + 4 + 2 + 6) / 4)
    assert summary["skill"]["naive"]["mae"] == pytest.approx(1 - 1.0 / 3.5)
    assert summary["per_step"]["1"]["model"]["mae"] == pytest.approx(0.5)
    assert set(summary["per_fold"]) == {"0", "1"}


def test_the_second_seasons_naive_is_a_baseline_where_the_model_has_one():
    """Half-hourly demand (Taylor's England and Wales series, 2000): last week's same half
    hour beat the model by far while the report compared it with yesterday's alone. With
    a second season M the records, scores, skill and report carry its naive too."""
    from gruforecast.report import markdown

    # season 2, second season 4: the week (4 steps) repeats, the day (2 steps) does not
    y = np.array([1.0, 5.0, 2.0, 8.0] * 4)
    panel = Panel(spec=None, series=[Series("a", pd.RangeIndex(16), y[:, None])], freq=None)
    forecasts = np.array([[1.5, 5.0, 2.0], [5.0, 2.0, 8.0]])  # origins 12 and 13, horizon 3
    plain = records_at(panel, [np.array([12, 13])], forecasts, 2, train_ends=[12])
    assert "seasonal_naive_4" not in plain.columns and set(summarize(plain)["scores"]) == {
        "model", "naive", "seasonal_naive", "drift"}
    records = records_at(panel, [np.array([12, 13])], forecasts, 2, train_ends=[12], second_season=4)
    assert records["seasonal_naive_4"].tolist() == [1, 5, 2, 5, 2, 8]  # y[o - 4 + h]: exact here
    assert records["seasonal_naive"].tolist() == [2, 8, 2, 8, 1, 8]  # y[o - 2 + h % 2]
    summary = summarize(records)
    assert summary["scores"]["seasonal_naive_4"]["mae"] == 0.0
    assert summary["scores"]["model"]["mae"] == pytest.approx(0.5 / 6)
    assert summary["skill"]["seasonal_naive_4"]["mae"] is None  # 1 - model / 0: undefined
    assert summary["skill"]["seasonal_naive"]["mae"] == pytest.approx(1 - (0.5 / 6) / (8 / 6))
    assert summary["per_step"]["1"]["seasonal_naive_4"]["mae"] == 0.0
    text = markdown("t", {"data": {}}, {"windows": 2, **summary})
    assert "| seasonal_naive_4 | 0 | 0 |" in text


def test_grouped_scores_equal_the_scores_of_each_group_alone():
    """summarize's per-series, per-fold and per-step tables (one pass of array sums)
    hold what `scores` gives each group's records alone, None where it is undefined:
    NaN actuals and forecasts, zero actuals, a zero and a NaN MASE scale, quantiles."""
    from gruforecast.evaluate import METHODS, scores

    rng = np.random.default_rng(0)
    keys = [(f"s{s}", fold, step) for s in range(12) for fold in range(3) for step in (1, 2, 3)]
    records = pd.DataFrame(keys, columns=["series", "fold", "step"])
    n = len(records)
    records["scale"] = records["series"].map(lambda s: {"s1": 0.0, "s2": nan}.get(s, 1.5))
    records["actual"] = np.where(rng.random(n) < 0.1, nan, np.where(rng.random(n) < 0.05, 0.0, rng.normal(9, 3, n)))
    for m in METHODS:
        records[m] = np.where(rng.random(n) < 0.05, nan, 9 + rng.normal(0, 2, n))
        records[f"{m}_q0.1"], records[f"{m}_q0.9"] = records[m] - 2, np.where(rng.random(n) < 0.05, nan, records[m] + 2)
    records.loc[records.series == "s3", "model"] = records.loc[records.series == "s3", "actual"]  # MASE 0
    summary = summarize(records)
    for key in ("series", "fold", "step"):
        for k, g in records.groupby(key):
            for m in METHODS:
                alone, grouped = scores(g, m), summary[f"per_{key}"][str(k)][m]
                assert alone.keys() == grouped.keys()
                for name, v in alone.items():
                    assert (v is None) == (grouped[name] is None), (key, k, m, name)
                    assert v is None or grouped[name] == pytest.approx(v, rel=1e-12, abs=1e-12)
    for m in METHODS:  # and the formulas are metrics.py's
        y, f = records["actual"].to_numpy(), records[m].to_numpy()
        got = summary["scores"][m]
        for name in ("mae", "rmse", "smape", "mape"):
            assert got[name] == pytest.approx(getattr(metrics, name)(y, f), rel=1e-12)
        assert got["coverage_80"] == pytest.approx(metrics.coverage(y, records[f"{m}_q0.1"], records[f"{m}_q0.9"]))
        assert got["pinball_0.9"] == pytest.approx(metrics.pinball(y, records[f"{m}_q0.9"].to_numpy(), 0.9))
    assert summary["per_series"]["s1"]["model"]["mase"] is None  # a zero scale: undefined
    assert summary["per_series"]["s3"]["model"]["mase"] == 0.0
