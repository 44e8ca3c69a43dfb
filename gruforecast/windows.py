"""Scalers fitted on the training part only, the chronological split, and sliding windows.

Holds: `WindowConfig`, the per-series split into train / validation / test, the per-series
scalers (fitted with scikit-learn, stored as an affine map), and `gather`, which cuts the
windows of a batch out of one flat array by index arithmetic. Windows are never
materialised: a series of n points costs O(n) memory whatever the lookback.

Split rule (per series of n points, targets never shared across a split point):
    train targets [0, n_train), validation targets [n_train, n_train + n_val),
    test targets [n - n_test, n); a window belongs to the part holding all H targets;
    its inputs may reach back into earlier parts (they are the past, known at that time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from .data import Panel
from .errors import InputError

SCALERS = ("standard", "minmax", "robust", "none")
TRANSFORMS = ("none", "log")


@dataclass(frozen=True)
class WindowConfig:
    """Window lengths, split fractions, the target transform and the scaler. Stored in the
    model artifact."""

    lookback: int
    horizon: int
    scaler: str = "standard"
    transform: str = "none"  # "log": model log(target), forecast exp(.); positive targets only
    val_frac: float = 0.1
    test_frac: float = 0.1

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise InputError(f"--horizon ({self.horizon}) must be >= 1")
        if self.lookback < 1:
            raise InputError(f"--lookback ({self.lookback}) must be >= 1")
        if self.scaler not in SCALERS:
            raise InputError(f"--scaler {self.scaler!r} is not known; use one of {', '.join(SCALERS)}")
        if self.transform not in TRANSFORMS:
            raise InputError(f"--transform {self.transform!r} is not known; use one of {', '.join(TRANSFORMS)}")
        for name, frac in (("val_frac", self.val_frac), ("test_frac", self.test_frac)):
            if not 0.0 <= frac < 0.5:
                raise InputError(f"{name} ({frac}) must be in [0, 0.5)")

    def part_lengths(self, n: int) -> tuple[int, int, int]:
        """(n_train, n_val, n_test) target points for a series of n points."""
        n_val = max(self.horizon, round(self.val_frac * n)) if self.val_frac > 0 else 0
        n_test = max(self.horizon, round(self.test_frac * n)) if self.test_frac > 0 else 0
        return n - n_val - n_test, n_val, n_test

    def fits(self, n: int) -> bool:
        """Whether a series of n points holds at least one training window."""
        return self.part_lengths(n)[0] >= self.lookback + self.horizon


@dataclass
class Windows:
    """All series scaled into one flat array, and the window origins of each part.

    An origin is the flat index of a window's first target; its inputs are the `lookback`
    rows before it and its targets the `horizon` rows from it on (column 0).
    """

    values: np.ndarray  # (N, C) float32, scaled, series concatenated
    offsets: np.ndarray  # (S + 1,) start of each series in `values`
    loc: np.ndarray  # (S, C) scaler: scaled = (x - loc) / scale
    scale: np.ndarray  # (S, C)
    n_train: np.ndarray  # (S,) training points of each series
    train: np.ndarray  # origins, int64
    val: np.ndarray
    test: np.ndarray
    lookback: int
    horizon: int
    transform: str = "none"  # of the target, before the scaler (see `transform_target`)

    def series_of(self, origins: np.ndarray) -> np.ndarray:
        """Index of the series each origin belongs to."""
        return np.searchsorted(self.offsets, origins, side="right") - 1


def make_windows(panel: Panel, cfg: WindowConfig) -> Windows:
    """Split each series by time, fit its scaler on its training part, list the windows."""
    check_lengths(panel, cfg)
    L, H = cfg.lookback, cfg.horizon
    parts, locs, scales, n_trains, chunks = ([], [], []), [], [], [], []
    offset = 0
    for s in panel.series:
        n = len(s)
        n_train, n_val, n_test = cfg.part_lengths(n)
        values = transform_target(s.values, cfg.transform, s.id if panel.spec.id_col else None)
        loc, scale = fit_scaler(values[:n_train], cfg.scaler)
        chunks.append(((values - loc) / scale).astype(np.float32))
        bounds = [(L, n_train), (n_train, n_train + n_val), (n - n_test, n)]
        for part, (lo, hi) in zip(parts, bounds):
            part.append(offset + np.arange(max(lo, L), hi - H + 1, dtype=np.int64))
        locs.append(loc)
        scales.append(scale)
        n_trains.append(n_train)
        offset += n
    lengths = [len(s) for s in panel.series]
    return Windows(
        values=np.concatenate(chunks), offsets=np.concatenate([[0], np.cumsum(lengths)]),
        loc=np.stack(locs), scale=np.stack(scales), n_train=np.array(n_trains),
        train=np.concatenate(parts[0]), val=np.concatenate(parts[1]),
        test=np.concatenate(parts[2]), lookback=L, horizon=H, transform=cfg.transform,
    )


def check_lengths(panel: Panel, cfg: WindowConfig) -> None:
    """Every series must hold at least one training window after the held-out parts."""
    L, H = cfg.lookback, cfg.horizon
    for s in panel.series:
        n = len(s)
        name = f"series {s.id!r}" if panel.spec.id_col else "the series"
        if n < L + H:
            raise InputError(
                f"{name} has {n} points, fewer than lookback {L} + horizon {H}; "
                "lower --lookback or --horizon, or give more data"
            )
        if not cfg.fits(n):
            n_train, n_val, n_test = cfg.part_lengths(n)
            raise InputError(
                f"{name} has {n} points: after {n_val} validation and {n_test} test points, "
                f"{n_train} remain for training, fewer than lookback {L} + horizon {H}; "
                "lower --lookback or --horizon, or give more data"
            )


def transform_target(values: np.ndarray, transform: str, series_id: str | None = None) -> np.ndarray:
    """(n, C) values -> the same with the target (column 0) in model units (`--transform`).

    The log turns multiplicative patterns (a daily cycle whose size follows the level)
    additive and makes the loss relative, which is what sMAPE and MAPE measure.
    """
    if transform == "none":
        return values
    target = values[:, 0]
    if not (target > 0).all():
        row = int(np.argmax(~(target > 0)))
        where = f"series {series_id!r}" if series_id is not None else "the series"
        raise InputError(f"--transform log needs a target above 0, but {where} has {target[row]:g} at "
                         f"row {row + 1}; use --transform none")
    return np.column_stack([np.log(target), values[:, 1:]])


def untransform_target(target: np.ndarray, transform: str) -> np.ndarray:
    """Forecasts in model units -> the data's units (the inverse of `transform_target`)."""
    return np.exp(target) if transform == "log" else target


def fit_scaler(train_values: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Fit a scikit-learn scaler on (n, C) training values; return it as (loc, scale).

    Every scaler offered is affine per column, so it is stored as scaled = (x - loc) / scale
    (JSON-able, no pickled estimator in the artifact).
    """
    C = train_values.shape[1]
    if kind == "none":
        return np.zeros(C), np.ones(C)
    if kind == "standard":
        sk = StandardScaler().fit(train_values)
        return sk.mean_, sk.scale_
    if kind == "robust":
        sk = RobustScaler().fit(train_values)
        return sk.center_, sk.scale_
    sk = MinMaxScaler().fit(train_values)  # x * scale_ + min_  ==  (x - (-min_/scale_)) / (1/scale_)
    return -sk.min_ / sk.scale_, 1.0 / sk.scale_


def gather(values: torch.Tensor, origins: torch.Tensor, lookback: int,
           horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut the windows of a batch: inputs (B, L, C) and targets (B, H) of column 0."""
    steps_in = torch.arange(-lookback, 0, device=origins.device)
    steps_out = torch.arange(0, horizon, device=origins.device)
    x = values[origins[:, None] + steps_in]  # (B, L, C)
    y = values[origins[:, None] + steps_out, 0]  # (B, H)
    return x, y
