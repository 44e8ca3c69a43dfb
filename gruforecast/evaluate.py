"""Scoring forecasts against actuals: baselines, per-point records, metric summaries.

Data flows one way: forecasts from any origin (held-out windows of `train`, folds of
`backtest`) become one long table of records, one row per (series, fold, step), holding
the actual, the model's forecast and each baseline's forecast on exactly the same origin,
plus the MASE scale of that series' training part. `summarize` turns the records into
every number the reports show: overall, per series, per fold, per horizon step, and the
skill of the model against each baseline.

MASE (M4 convention): per (series, fold), mean |y - f| divided by the in-sample seasonal
naive MAE of the series' training part for that fold; then averaged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import metrics
from .data import Panel

BASELINES = ("naive", "seasonal_naive", "drift")
METHODS = ("model", *BASELINES)


def baselines_at(y: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> dict[str, np.ndarray]:
    """Forecasts (n, H) of each baseline for the origins (positions of the first target)
    of one series y, from the values before each origin:

    naive: the last value. seasonal_naive: the last season repeated, f[h] = y[o - m + (h
    mod m)] (naive when less than a season precedes the origin). drift: the last value plus
    (h + 1) times the mean change over the history (naive for a history of one point).
    """
    o = np.asarray(origins)[:, None]
    h = np.arange(horizon)[None, :]
    last = y[o - 1]
    naive = np.broadcast_to(last, (len(origins), horizon)).astype(float)
    seasonal = np.where(o >= season, y[np.maximum(o - season + h % season, 0)], naive)
    span = np.maximum(o - 1, 1)
    drift = np.where(o > 1, last + (h + 1) * (last - y[0]) / span, naive)
    return {"naive": naive, "seasonal_naive": seasonal.astype(float), "drift": drift.astype(float)}


def baseline_forecasts(history: np.ndarray, horizon: int, season: int) -> dict[str, np.ndarray]:
    """Forecasts (H,) of each baseline from the values before one origin (see `baselines_at`)."""
    return {k: v[0] for k, v in baselines_at(np.asarray(history, float), np.array([len(history)]),
                                             horizon, season).items()}


def records_at(panel: Panel, positions: list[np.ndarray], forecasts: np.ndarray, season: int,
               train_ends: list[int] | None = None, folds: list[np.ndarray] | None = None) -> pd.DataFrame:
    """Records of forecasts from origins of a panel (`positions[i]`: the origins of series
    i, as `Forecaster.forecast_origins` takes them; `forecasts` in the same order).

    Each origin is one "fold" (`folds[i]`, default its running number). The MASE scale of
    an origin comes from the series' values before `train_ends[i]` (the training part of
    `train`), or, by default, before the origin itself (each backtest fold's own past).
    Built per series with array operations: a long series has 100,000 test windows.
    """
    H = forecasts.shape[1]
    steps = np.arange(H)
    frames, row = [], 0
    for i, (s, pos) in enumerate(zip(panel.series, positions)):
        pos = np.asarray(pos, dtype=np.int64)
        if not len(pos):
            continue
        y = s.values[:, 0]
        rows = np.arange(row, row + len(pos))
        fold = np.asarray(folds[i]) if folds is not None else rows
        idx = pos[:, None] + steps[None, :]
        frame = {"series": s.id, "fold": np.repeat(fold, H), "cutoff": np.repeat(s.time[pos - 1], H),
                 "step": np.tile(steps + 1, len(pos)), "time": s.time[idx.ravel()],
                 "actual": y[idx].ravel(), "model": forecasts[rows].ravel()}
        frame.update({k: v.ravel() for k, v in baselines_at(y, pos, H, season).items()})
        ends = np.full(len(pos), train_ends[i]) if train_ends is not None else pos
        scale = {e: metrics.mase_scale(y[:e], season) for e in np.unique(ends)}
        frame["scale"] = np.repeat([scale[e] for e in ends], H)
        frames.append(pd.DataFrame(frame))
        row += len(pos)
    return pd.concat(frames, ignore_index=True)


def scores(frame: pd.DataFrame, method: str) -> dict[str, float | int | None]:
    """Every metric of one method over a set of records."""
    y, f = frame["actual"].to_numpy(), frame[method].to_numpy()
    err = np.abs(y - f)
    by_origin = frame.assign(err=err).groupby(["series", "fold"], sort=False)
    per_origin = by_origin["err"].mean() / by_origin["scale"].first()
    finite = per_origin[np.isfinite(per_origin)]
    return _clean({
        "mae": metrics.mae(y, f), "rmse": metrics.rmse(y, f), "mape": metrics.mape(y, f),
        "smape": metrics.smape(y, f), "mase": float(finite.mean()) if len(finite) else np.nan,
    })


def summarize(records: pd.DataFrame, groups: tuple[str, ...] = ("series", "fold", "step")) -> dict:
    """All the numbers of an evaluation, from its records (see the module docstring).

    `groups` picks the breakdowns (per series, per fold, per horizon step) to include.
    """
    overall = {m: scores(records, m) for m in METHODS}
    skill = {b: _clean({k: 1 - overall["model"][k] / overall[b][k]
                        if overall["model"][k] is not None and overall[b][k] else None
                        for k in ("mae", "rmse", "smape", "mase")}) for b in BASELINES}
    return {
        "series": int(records["series"].nunique()),
        "folds": int(records["fold"].nunique()),
        "points": int(len(records)),
        "mape_undefined_points": metrics.zero_actuals(records["actual"].to_numpy()),
        "scores": overall,
        "skill": skill,
        **{f"per_{key}": _grouped(records, key) for key in groups},
    }


def _grouped(records: pd.DataFrame, key: str) -> dict:
    return {str(k): {m: scores(g, m) for m in METHODS} for k, g in records.groupby(key, sort=True)}


def _clean(d: dict) -> dict:
    """NaN and inf to None: undefined numbers are reported as such."""
    return {k: (float(v) if v is not None and np.isfinite(v) else None) for k, v in d.items()}
