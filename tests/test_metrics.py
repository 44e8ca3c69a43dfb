"""Metrics against hand-computed values, edge cases included."""

import math

import numpy as np
import pytest

from gruforecast import metrics
from gruforecast.evaluate import naive_forecast, seasonal_naive_forecast

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
    y = np.arange(20, dtype=float)
    origins = np.array([10, 12])
    assert naive_forecast(y, origins, 3).tolist() == [[9, 9, 9], [11, 11, 11]]
    snaive = seasonal_naive_forecast(y, origins, 5, season=3, starts=np.array([0, 0]))
    assert snaive.tolist() == [[7, 8, 9, 7, 8], [9, 10, 11, 9, 10]]
    # less than a season of history before the origin: naive instead
    assert seasonal_naive_forecast(y, np.array([2]), 2, 3, np.array([0])).tolist() == [[1, 1]]
