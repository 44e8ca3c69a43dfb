"""The only place that scales data for the network and inverts its forecasts.

Two maps, applied in this order and inverted in the reverse one:
- the target transform (`--transform log`: model log(target), forecast exp(.));
- a per-series affine scaler, scaled = (x - loc) / scale per column, fitted on each
  series' training part only with scikit-learn (`--scaler`). Two kinds of column are
  not scaled per series: the calendar and holiday columns (already in [-1, 1]) are left
  as they are, and static features (constant within a series, so a per-series scaler
  would zero them) are scaled across the series. Every scaler offered is
  affine, so it is stored as (loc, scale) arrays: JSON-free, no pickled estimator, and
  forecasting needs neither scikit-learn nor scipy (imported only to fit).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .data import FLOAT32_SAFE
from .errors import InputError

SCALERS = ("standard", "minmax", "robust", "none")
TRANSFORMS = ("none", "log")


@dataclass
class Scaling:
    """Per-series scalers (S, C) and the target transform: fit, apply, invert."""

    loc: np.ndarray  # (S, C)
    scale: np.ndarray  # (S, C)
    transform: str = "none"

    @classmethod
    def fit(cls, train_parts: list[np.ndarray], scaler: str, transform: str, ids: list[str | None],
            derived: int = 0, pooled: tuple[int, ...] = (),
            whole: list[np.ndarray] | None = None) -> Scaling:
        """Fit one scaler per series on its training values (n_i, C), after the transform;
        `derived` more columns (the calendar's, after those) keep their values, columns
        `pooled` share one scaler fitted on each series' value (their first row). `whole`
        (each series' every value) only bounds the scale from below, so that no value scales beyond float32's range: a
        training part of 0 and 1e-55 before a 1.0 once gave a scale of 8e-56 and an
        infinite target (found by tests/test_fuzz.py); the bound never binds otherwise."""
        for v, i in zip(train_parts, ids):  # the transform's domain, where a series can be named
            check_domain(v, transform, i)
        # Transformed a series, or a block of series, at a time: a transformed copy of every
        # part at once was the panel again (680 MB of M4 hourly tiled to 100,000 series).
        prepare = functools.partial(_transformed, transform=transform)  # the domain checked above
        if scaler == "standard" and all(len(v) for v in train_parts):
            loc, scale = standard_by_series(train_parts, prepare=prepare)
        else:
            fitted = [fit_scaler(prepare(v), scaler) for v in train_parts]
            loc, scale = np.stack([f[0] for f in fitted]), np.stack([f[1] for f in fitted])
        if whole is not None and scaler != "none":
            with np.errstate(invalid="ignore"):  # an all-NaN column: no bound
                size = np.stack([np.nanmax(np.abs(transform_target(v, transform, i)), axis=0, initial=0.0)
                                 for v, i in zip(whole, ids)])
            scale = np.maximum(scale, np.nan_to_num(size) / FLOAT32_SAFE)
        if pooled:
            first = np.stack([v[0, list(pooled)] for v in train_parts])  # (S, F): one value per series
            ploc, pscale = fit_scaler(first, scaler)
            loc[:, list(pooled)], scale[:, list(pooled)] = ploc, pscale
        S = len(loc)
        return cls(np.hstack([loc, np.zeros((S, derived))]), np.hstack([scale, np.ones((S, derived))]), transform)

    def apply(self, values: np.ndarray, index: np.ndarray | int, series_id: str | None = None) -> np.ndarray:
        """Values in data units -> float32 in model units: (n, C) or (B, L, C) of one series
        (`index` an int), or (B, L, C) windows of the series `index` (B,). C may stop
        before the derived columns (the training copy keeps them apart)."""
        C = values.shape[-1]
        loc, scale = self.loc[index, ..., :C], self.scale[index, ..., :C]
        if values.ndim == 3 and loc.ndim == 2:  # one scaler per window
            loc, scale = loc[:, None, :], scale[:, None, :]
        values = transform_target(values, self.transform, series_id)
        return ((values - loc) / scale).astype(np.float32)

    def invert(self, target: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Target forecasts (B, K) in model units of series `index` -> data units (float64)."""
        target = np.asarray(target, dtype=np.float64)
        return untransform_target(target * self.scale[index, :1] + self.loc[index, :1], self.transform)


def transform_target(values: np.ndarray, transform: str, series_id: str | None = None) -> np.ndarray:
    """(n, C) values -> the same with the target (column 0) in model units (`--transform`).

    The log turns multiplicative patterns (a daily cycle whose size follows the level)
    additive and makes the loss relative, which is what sMAPE and MAPE measure.
    """
    check_domain(values, transform, series_id)
    return _transformed(values, transform)


def _transformed(values: np.ndarray, transform: str) -> np.ndarray:
    """`transform_target` of values already inside the transform's domain."""
    if transform == "none":
        return values
    out = values.copy()
    out[..., 0] = np.log(values[..., 0])
    return out


def check_domain(values: np.ndarray, transform: str, series_id: str | None = None) -> None:
    """Raise when the target of `values` is outside `transform`'s domain (the log's: > 0)."""
    if transform == "none":
        return
    target = values[..., 0]
    if not (target > 0).all():
        row = int(np.argmax(~(target > 0).ravel()))
        where = f"series {series_id!r}" if series_id is not None else "the series"
        raise InputError(f"--transform log needs a target above 0, but {where} has {target.ravel()[row]:g} at "
                         f"row {row + 1}; use --transform none")


def untransform_target(target: np.ndarray, transform: str) -> np.ndarray:
    """Forecasts in model units -> the data's units (the inverse of `transform_target`).
    A diverged fit's exp overflows to inf without a warning: the candidate choice scores
    it as losing, and `write_forecast` refuses to write it."""
    if transform != "log":
        return target
    with np.errstate(over="ignore"):
        return np.exp(target)


def fit_scaler(train_values: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Fit a scikit-learn scaler on (n, C) training values; return it as (loc, scale)."""
    C = train_values.shape[1]
    if kind == "none":
        return np.zeros(C), np.ones(C)
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler  # fit time only

    if kind == "standard":
        sk = StandardScaler().fit(train_values)
        return sk.mean_, sk.scale_
    if kind == "robust":
        sk = RobustScaler().fit(train_values)
        return sk.center_, sk.scale_
    sk = MinMaxScaler().fit(train_values)  # x * scale_ + min_  ==  (x - (-min_/scale_)) / (1/scale_)
    return -sk.min_ / sk.scale_, 1.0 / sk.scale_


def standard_by_series(parts: list[np.ndarray], rows: int = 1 << 22,
                       prepare: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(S, C) loc and scale of scikit-learn's StandardScaler fitted on each part (n_i, C),
    for all parts in one pass of array sums: one StandardScaler per series costs 0.7 ms,
    70 s for a 100,000-series panel, and scikit-learn has no per-group fit. The same
    numbers (tests/test_windows.py checks them against StandardScaler): the mean and the
    population standard deviation of the non-NaN values, two-pass, and a scale of 1 for
    a column scikit-learn deems constant (`_is_constant_feature`'s bound). The parts are
    summed in groups of about `rows` rows: the work arrays are bounded by that, not by
    the panel (a 46-million-point panel took 1 GB more); `prepare` (the transform) is
    applied to each group's rows."""
    lengths = np.array([len(v) for v in parts])
    ends = np.cumsum(lengths)
    cuts = [0, *np.flatnonzero(np.diff(ends // rows)) + 1, len(parts)]
    fitted = [_standard(parts[a:b], lengths[a:b], prepare) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
    return np.concatenate([f[0] for f in fitted]), np.concatenate([f[1] for f in fitted])


def _standard(parts: list[np.ndarray], lengths: np.ndarray,
              prepare: Callable[[np.ndarray], np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    x = np.concatenate(parts).astype(np.float64, copy=False)  # our copy: worked on in place
    if prepare is not None:
        x = prepare(x)
    missing = np.isnan(x)
    count = np.add.reduceat((~missing).astype(np.float64), starts, axis=0)
    x[missing] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.add.reduceat(x, starts, axis=0) / count
        x -= np.repeat(mean, lengths, axis=0)
        x[missing] = 0.0
        x *= x
        var = np.add.reduceat(x, starts, axis=0) / count
    eps = np.finfo(np.float64).eps
    constant = var <= count * eps * var + (count * mean * eps) ** 2
    return mean, np.where(constant, 1.0, np.sqrt(var))

