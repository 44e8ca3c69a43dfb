"""Held-out evaluation: the model and the naive baselines on exactly the same windows.

Holds the baseline forecasters (naive, seasonal naive) for windows cut from one flat array,
and `holdout_report`, which scores them with `metrics`. MASE is computed per series
(scaled by that series' in-sample seasonal naive error on its training part) and then
averaged over series, as M4 does.
"""

from __future__ import annotations

import numpy as np

from . import metrics
from .windows import Windows


def naive_forecast(y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """(n, H): the last value before each origin, repeated."""
    return np.repeat(y[origins - 1][:, None], horizon, axis=1)


def seasonal_naive_forecast(y: np.ndarray, origins: np.ndarray, horizon: int, season: int,
                            starts: np.ndarray) -> np.ndarray:
    """(n, H): f[h] = y[o - m + (h mod m)], the last season repeated.

    `starts` is the flat index where each origin's series begins; where less than one
    season of history precedes an origin, the naive forecast is used instead.
    """
    h = np.arange(horizon)
    idx = origins[:, None] - season + (h % season)[None, :]
    ok = (origins - season) >= starts
    idx = np.where(ok[:, None], idx, (origins - 1)[:, None])
    return y[idx]


def score(y: np.ndarray, f: np.ndarray, series: np.ndarray, scales: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, sMAPE over all points; MASE per series, then averaged over series."""
    per_series = [metrics.mase(y[series == s], f[series == s], scales[s]) for s in np.unique(series)]
    finite = [v for v in per_series if np.isfinite(v)]
    return {
        "mae": metrics.mae(y, f),
        "rmse": metrics.rmse(y, f),
        "smape": metrics.smape(y, f),
        "mase": float(np.mean(finite)) if finite else float("nan"),
    }


def holdout_report(windows: Windows, y: np.ndarray, model_forecast: np.ndarray,
                   season: int) -> dict:
    """Score the model and the baselines on the test windows of `windows`.

    `y` is the target of all series in original units, flat like `windows.values`;
    `model_forecast` is (n_test, H) for `windows.test`, in original units.
    """
    origins, H = windows.test, windows.horizon
    series = windows.series_of(origins)
    starts = windows.offsets[series]
    scales = np.array([
        metrics.mase_scale(y[o: o + n], season)
        for o, n in zip(windows.offsets[:-1], windows.n_train)
    ])
    actual = y[origins[:, None] + np.arange(H)]
    rows = np.repeat(series[:, None], H, axis=1)
    forecasts = {
        "model": model_forecast,
        "naive": naive_forecast(y, origins, H),
        "seasonal_naive": seasonal_naive_forecast(y, origins, H, season, starts),
    }
    return {
        "windows": int(len(origins)),
        "series": int(len(np.unique(series))),
        "season": season,
        "scores": {k: score(actual, f, rows, scales) for k, f in forecasts.items()},
    }
