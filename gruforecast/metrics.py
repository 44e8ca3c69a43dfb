"""Forecast error metrics: small pure numpy functions, each with its formula.

Conventions: `y` actuals, `f` forecasts, same shape; NaNs in either are ignored (a metric
over no valid points is NaN). sMAPE is in percent on the 0-200 scale (M4's definition).
"""

from __future__ import annotations

import numpy as np


def _valid(y: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, f = np.asarray(y, dtype=float).ravel(), np.asarray(f, dtype=float).ravel()
    keep = ~(np.isnan(y) | np.isnan(f))
    return y[keep], f[keep]


def mae(y: np.ndarray, f: np.ndarray) -> float:
    """MAE = mean |y - f|."""
    y, f = _valid(y, f)
    return float(np.mean(np.abs(y - f))) if len(y) else float("nan")


def rmse(y: np.ndarray, f: np.ndarray) -> float:
    """RMSE = sqrt(mean (y - f)^2)."""
    y, f = _valid(y, f)
    return float(np.sqrt(np.mean((y - f) ** 2))) if len(y) else float("nan")


def smape(y: np.ndarray, f: np.ndarray) -> float:
    """sMAPE = mean 200 |y - f| / (|y| + |f|), a term with y = f = 0 counting as 0."""
    y, f = _valid(y, f)
    if not len(y):
        return float("nan")
    denom = np.abs(y) + np.abs(f)
    terms = np.divide(200.0 * np.abs(y - f), denom, out=np.zeros_like(y), where=denom > 0)
    return float(np.mean(terms))


def mase_scale(train: np.ndarray, season: int) -> float:
    """In-sample seasonal naive MAE: mean |x_t - x_{t-m}| over the training part.

    Falls back to m = 1 when the training part is not longer than one season. NaN when
    fewer than two points; 0 for a constant series (MASE is then undefined: inf or NaN).
    """
    x = np.asarray(train, dtype=float)
    m = season if len(x) > season else 1
    if len(x) <= m:
        return float("nan")
    return float(np.nanmean(np.abs(x[m:] - x[:-m])))


def mase(y: np.ndarray, f: np.ndarray, scale: float) -> float:
    """MASE = mean |y - f| / scale, with scale from `mase_scale` (M4 convention).

    NaN when the scale is 0 or NaN (a constant training part gives no yardstick).
    """
    if not scale > 0:
        return float("nan")
    return mae(y, f) / scale


def mape(y: np.ndarray, f: np.ndarray) -> float:
    """MAPE = mean 100 |y - f| / |y| over the points where y != 0.

    Undefined where the actual is 0: those points are left out (count them with
    `zero_actuals`); NaN when no point is left. Never inf.
    """
    y, f = _valid(y, f)
    keep = y != 0
    if not keep.any():
        return float("nan")
    return float(np.mean(100.0 * np.abs(y[keep] - f[keep]) / np.abs(y[keep])))


def zero_actuals(y: np.ndarray) -> int:
    """How many actuals are exactly 0 (where MAPE is undefined)."""
    return int(np.sum(np.asarray(y, dtype=float) == 0))


def pinball(y: np.ndarray, f: np.ndarray, q: float) -> float:
    """Pinball (quantile) loss of the q-quantile forecast f: mean max(q e, (q - 1) e),
    e = y - f. At q = 0.5 it is half the MAE."""
    y, f = _valid(y, f)
    e = y - f
    return float(np.mean(np.maximum(q * e, (q - 1) * e))) if len(y) else float("nan")


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """The share of actuals inside [lo, hi] (NaN-free points only)."""
    y, lo, hi = (np.asarray(a, dtype=float).ravel() for a in (y, lo, hi))
    keep = ~(np.isnan(y) | np.isnan(lo) | np.isnan(hi))
    return float(np.mean((y[keep] >= lo[keep]) & (y[keep] <= hi[keep]))) if keep.any() else float("nan")


def interval_score(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: float) -> np.ndarray:
    """The interval score of each point (M4's MSIS before scaling), a = 1 - level / 100:
    (hi - lo) + 2 / a (lo - y) [y < lo] + 2 / a (y - hi) [y > hi]."""
    a = 1 - level / 100
    y, lo, hi = (np.asarray(v, dtype=float) for v in (y, lo, hi))
    return (hi - lo) + 2 / a * np.maximum(lo - y, 0) + 2 / a * np.maximum(y - hi, 0)


def crps_from_quantiles(y: np.ndarray, quantiles: dict[float, np.ndarray]) -> float:
    """CRPS approximated from forecast quantiles: twice the mean pinball loss over them
    (exact in the limit of many evenly spread quantiles; a coarse sketch with five)."""
    return 2 * float(np.mean([pinball(y, f, q) for q, f in quantiles.items()]))
