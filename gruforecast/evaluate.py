"""Scoring forecasts against actuals: baselines, per-point records, metric summaries.

Data flows one way: forecasts from any origin (held-out windows of `train`, folds of
`backtest`) become one long table of records, one row per (series, fold, step), holding
the actual, the model's forecast and each baseline's forecast on exactly the same origin,
plus the MASE scale of that series' training part. `summarize` turns the records into
every number the reports show: overall, per series, per fold, per horizon step, and the
skill of the model against each baseline.

MASE (M4 convention): per (series, fold), mean |y - f| divided by the in-sample seasonal
naive MAE of the series' training part for that fold; then averaged.

Quantile forecasts (`quantiles` beyond the median) add a column per quantile for the model
(`model_q0.1`, ...) and for the seasonal naive, whose quantiles come from its own
in-sample residuals (`seasonal_naive_quantiles`), so interval skill is comparable: then
`scores` adds coverage and MSIS per level, pinball loss per quantile, its scaled mean and
the CRPS approximated from the quantiles.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from . import metrics
from .config import interval_pairs
from .data import Panel

BASELINES = ("naive", "seasonal_naive", "drift")
METHODS = ("model", *BASELINES)


def second_naive(m: int) -> str:
    """The name of the second season's naive forecast (`seasonal_naive_168` for the week of
    hourly data): a baseline wherever the model has a second season."""
    return f"seasonal_naive_{m}"


def methods_of(records: pd.DataFrame) -> tuple[str, ...]:
    """The model and the baselines the records hold: METHODS, and the second season's naive."""
    second = [c for c in records.columns if re.fullmatch(r"seasonal_naive_\d+", c)]
    return (*METHODS, *second)


def baselines_at(y: np.ndarray, origins: np.ndarray, horizon: int, season: int,
                 second_season: int = 0) -> dict[str, np.ndarray]:
    """Forecasts (n, H) of each baseline for the origins (positions of the first target)
    of one series y, from the values before each origin:

    naive: the last value. seasonal_naive: the last season repeated, f[h] = y[o - m + (h
    mod m)] (naive when less than a season precedes the origin). drift: the last value plus
    (h + 1) times the mean change over the history (naive for a history of one point).
    With a `second_season` M > 1, its naive too (`second_naive(M)`): on half-hourly demand
    last week's same half hour beats yesterday's by far, and a model that beats only the
    daily naive may still lose to it.
    """
    o = np.asarray(origins)[:, None]
    h = np.arange(horizon)[None, :]
    last = y[o - 1]
    naive = np.broadcast_to(last, (len(origins), horizon)).astype(float)

    def repeated(m: int) -> np.ndarray:
        return np.where(o >= m, y[np.maximum(o - m + h % m, 0)], naive).astype(float)

    span = np.maximum(o - 1, 1)
    drift = np.where(o > 1, last + (h + 1) * (last - y[0]) / span, naive)
    out = {"naive": naive, "seasonal_naive": repeated(season), "drift": drift.astype(float)}
    if second_season > 1:
        out[second_naive(second_season)] = repeated(second_season)
    return out


def baseline_forecasts(history: np.ndarray, horizon: int, season: int) -> dict[str, np.ndarray]:
    """Forecasts (H,) of each baseline from the values before one origin (see `baselines_at`)."""
    return {k: v[0] for k, v in baselines_at(np.asarray(history, float), np.array([len(history)]),
                                             horizon, season).items()}


def seasonal_naive_quantiles(y: np.ndarray, end: int, horizon: int, season: int,
                             quantiles: tuple[float, ...]) -> np.ndarray:
    """(H, Q) offsets of the seasonal naive's quantiles from its forecast, from the
    series' values before `end`: the quantiles of its in-sample residuals y_t - y_{t-m},
    widened by sqrt(k + 1) at steps h of the k-th season ahead (k = floor(h / m), the
    random walk's growth, as statsforecast's seasonal naive intervals). NaN with fewer
    than two residuals."""
    x = np.asarray(y[:end], dtype=float)
    m = season if len(x) > season else 1
    resid = x[m:] - x[:-m]
    resid = resid[np.isfinite(resid)]
    if len(resid) < 2:
        return np.full((horizon, len(quantiles)), np.nan)
    base = np.quantile(resid, quantiles)  # (Q,)
    growth = np.sqrt(np.arange(horizon) // m + 1)  # (H,)
    return growth[:, None] * base[None, :]


def quantile_column(method: str, q: float) -> str:
    return f"{method}_q{q:g}"


def records_at(panel: Panel, positions: list[np.ndarray], forecasts: np.ndarray, season: int,
               train_ends: list[int] | None = None, folds: list[np.ndarray] | None = None,
               quantiles: tuple[float, ...] = (0.5,), second_season: int = 0) -> pd.DataFrame:
    """Records of forecasts from origins of a panel (`positions[i]`: the origins of series
    i, as `Forecaster.forecast_origins` takes them; `forecasts` (n, H) or (n, H, Q) of
    `quantiles`, in the same order). With the model's `second_season`, its naive is a
    baseline too (`baselines_at`).

    Each origin is one "fold" (`folds[i]`, default its running number). The MASE scale of
    an origin comes from the series' values before `train_ends[i]` (the training part of
    `train`), or, by default, before the origin itself (each backtest fold's own past).
    Built per series with array operations: a long series has 100,000 test windows.
    """
    forecasts = forecasts[..., None] if forecasts.ndim == 2 else forecasts
    H, med = forecasts.shape[1], quantiles.index(0.5)
    others = [(j, q) for j, q in enumerate(quantiles) if j != med]
    steps = np.arange(H)
    # Column by column, joined once: one small frame per series, concatenated, held about
    # 20 KB of pandas overhead each (360 MB over the 18,000 series of a 100,000-series panel).
    columns, ids, row = {}, [], 0
    for i, (s, pos) in enumerate(zip(panel.series, positions)):
        pos = np.asarray(pos, dtype=np.int64)
        if not len(pos):
            continue
        y = s.values[:, 0]
        rows = np.arange(row, row + len(pos))
        fold = np.asarray(folds[i]) if folds is not None else rows
        idx = pos[:, None] + steps[None, :]
        frame = {"fold": np.repeat(fold, H), "cutoff": np.repeat(s.time[pos - 1], H),
                 "step": np.tile(steps + 1, len(pos)), "time": s.time[idx.ravel()],
                 "actual": y[idx].ravel(), "model": forecasts[rows, :, med].ravel()}
        frame.update({quantile_column("model", q): forecasts[rows, :, j].ravel() for j, q in others})
        base = baselines_at(y, pos, H, season, second_season)
        frame.update({k: v.ravel() for k, v in base.items()})
        ends = np.full(len(pos), train_ends[i]) if train_ends is not None else pos
        if others:
            qs = tuple(q for _, q in others)
            offsets = {e: seasonal_naive_quantiles(y, e, H, season, qs) for e in np.unique(ends)}
            sn = base["seasonal_naive"][..., None] + np.stack([offsets[e] for e in ends])  # (n, H, Q-1)
            frame.update({quantile_column("seasonal_naive", q): sn[..., k].ravel() for k, q in enumerate(qs)})
        scale = {e: metrics.mase_scale(y[:e], season) for e in np.unique(ends)}
        frame["scale"] = np.repeat([scale[e] for e in ends], H)
        for name, values in frame.items():
            columns.setdefault(name, []).append(values)
        ids.append((s.id, len(pos) * H))
        row += len(pos)
    series = np.repeat(np.array([sid for sid, _ in ids], dtype=object), [n for _, n in ids])
    joined = {name: parts[0].append(parts[1:]) if isinstance(parts[0], pd.Index) else np.concatenate(parts)
              for name, parts in columns.items()}
    return pd.DataFrame({"series": series, **joined})


def scores(frame: pd.DataFrame, method: str) -> dict[str, float | int | None]:
    """Every metric of one method over a set of records."""
    return {k: v[0] for k, v in scores_by(frame, method, np.zeros(len(frame), dtype=np.int64), 1).items()}


def scores_by(frame: pd.DataFrame, method: str, keys: np.ndarray, n: int) -> dict[str, list]:
    """Every metric of one method for each group of records (`keys` (rows,) in [0, n)):
    metric -> n values (None where undefined). All groups in one pass of array sums: a
    panel's per-series table is 10^4-10^5 groups, which one by one took minutes.

    Point metrics are means over the valid points of each group (the formulas of
    metrics.py); MASE, MSIS and the scaled pinball are means over the group's origins of
    each origin's mean scaled by its `scale` (M4's convention), undefined origins left out."""
    y, f = frame["actual"].to_numpy(float), frame[method].to_numpy(float)
    ok = ~(np.isnan(y) | np.isnan(f))
    err = np.where(ok, y - f, 0.0)
    a = np.abs(err)
    denom = np.abs(y) + np.abs(f)
    origins = _origin_codes(frame, keys)
    scale = frame["scale"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "mae": _mean(keys, n, a, ok),
            "rmse": np.sqrt(_mean(keys, n, err ** 2, ok)),
            "mape": _mean(keys, n, 100.0 * a / np.abs(y), ok & (y != 0)),  # masked terms may be inf or NaN
            "smape": _mean(keys, n, np.where(denom > 0, 200.0 * a / denom, 0.0), ok),
            "mase": _origin_mean(keys, n, origins, np.where(ok, a, np.nan) / scale),
        }
        quantiles = {round(float(c[len(method) + 2:]), 10): frame[c].to_numpy(float) for c in frame.columns
                     if c.startswith(f"{method}_q")}
        if quantiles:
            out.update(_interval_scores(keys, n, origins, y, scale, {**quantiles, 0.5: f}))
    return {k: [None if not np.isfinite(v) else float(v) for v in values] for k, values in out.items()}


def _interval_scores(keys, n, origins, y, scale, quantiles: dict[float, np.ndarray]) -> dict:
    """Coverage and MSIS per level (each pair q, 1 - q), pinball per quantile, the mean
    pinball scaled per origin like MASE, and the CRPS approximated from the quantiles."""
    scale = np.where(scale > 0, scale, np.nan)  # a constant training part: undefined, as MASE
    out = {}
    for level, q_lo, q_hi in interval_pairs(quantiles):
        lo, hi = quantiles[q_lo], quantiles[q_hi]
        ok = ~(np.isnan(y) | np.isnan(lo) | np.isnan(hi))
        out[f"coverage_{level:g}"] = _mean(keys, n, ((y >= lo) & (y <= hi)).astype(float), ok)
        out[f"msis_{level:g}"] = _origin_mean(keys, n, origins, metrics.interval_score(y, lo, hi, level) / scale)
    loss = {q: np.maximum(q * (y - f), (q - 1) * (y - f)) for q, f in quantiles.items()}  # NaN where invalid
    pinball = {q: _mean(keys, n, v, ~np.isnan(v)) for q, v in loss.items()}
    out.update({f"pinball_{q:g}": pinball[q] for q in sorted(quantiles)})
    out["scaled_pinball"] = _origin_mean(keys, n, origins, np.mean(np.stack(list(loss.values())), axis=0) / scale)
    out["crps"] = 2 * np.mean(np.stack(list(pinball.values())), axis=0)
    return out


def _mean(keys: np.ndarray, n: int, term: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(n,) the mean of `term` over the valid rows of each group (NaN for none); what
    `term` holds in the other rows (NaN, inf) never counts."""
    count = np.bincount(keys, weights=valid.astype(float), minlength=n)
    total = np.bincount(keys, weights=np.where(valid, term, 0.0), minlength=n)
    return np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)


def _origin_codes(frame: pd.DataFrame, keys: np.ndarray) -> np.ndarray:
    """(rows,) a code per (group, series, fold): an origin's records within one group."""
    series, folds = pd.factorize(frame["series"])[0], pd.factorize(frame["fold"])[0]
    n_series, n_folds = int(series.max(initial=0)) + 1, int(folds.max(initial=0)) + 1
    return pd.factorize((keys.astype(np.int64) * n_series + series) * n_folds + folds)[0]  # integers hash fast


def _origin_mean(keys: np.ndarray, n: int, origins: np.ndarray, term: np.ndarray) -> np.ndarray:
    """(n,) the mean over each group's origins of the origin's mean `term` (NaN rows left
    out), origins whose mean is not finite left out."""
    m = int(origins.max()) + 1 if len(origins) else 0
    per = _mean(origins, m, term, ~np.isnan(term))
    key_of = np.zeros(m, dtype=np.int64)
    key_of[origins] = keys
    return _mean(key_of, n, per, np.isfinite(per))


def summarize(records: pd.DataFrame, groups: tuple[str, ...] = ("series", "fold", "step")) -> dict:
    """All the numbers of an evaluation, from its records (see the module docstring).

    `groups` picks the breakdowns (per series, per fold, per horizon step) to include.
    """
    methods = methods_of(records)
    overall = {m: scores(records, m) for m in methods}
    skill = {b: _clean({k: 1 - overall["model"][k] / overall[b][k]
                        if overall["model"][k] is not None and overall[b][k] else None
                        for k in ("mae", "rmse", "smape", "mase")}) for b in methods[1:]}
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
    keys, groups = pd.factorize(records[key], sort=True)
    by = {m: scores_by(records, m, keys, len(groups)) for m in methods_of(records)}
    return {str(k): {m: {name: v[i] for name, v in scored.items()} for m, scored in by.items()}
            for i, k in enumerate(groups)}


def _clean(d: dict) -> dict:
    """NaN and inf to None: undefined numbers are reported as such."""
    return {k: (float(v) if v is not None and np.isfinite(v) else None) for k, v in d.items()}
