"""The chronological split, the scalers fitted on the training part only, and sliding windows.

Holds: `WindowConfig` (window lengths, season, split, scaler; `None` means "from the
data", resolved once by `resolve`), the per-series split into train / validation / test,
and the window origins of each part. Windows are never materialised (`train.gather` cuts
a batch out of one flat array by index arithmetic): a series of n points costs O(n)
memory whatever the lookback. No torch here, so `check` stays light.

Split rule (per series of n points, targets never shared across a split point):
    train targets [0, n_train), validation targets [n_train, n_train + n_val),
    test targets [n - n_test, n); a window belongs to the part holding all H targets;
    its inputs may reach back into earlier parts (they are the past, known at that time).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .config import option
from .data import Panel, season_length
from .errors import InputError
from .scaling import SCALERS, TRANSFORMS, Scaling

SHORT_SERIES = ("fail", "skip")


@dataclass(frozen=True)
class WindowConfig:
    """Window lengths, the season, split fractions, the target transform and the scaler.
    Stored in the model artifact, resolved (no `None` left)."""

    lookback: int | None = option(None, "input window L (default: 2 seasons or 2 horizons)")
    horizon: int | None = option(None, "forecast horizon H (default: one season)")
    season: int | None = option(None, "season length (default: from the frequency; 1 for integer steps)")
    scaler: str = option("standard", "standard, minmax, robust or none (fitted on train only)")
    transform: str = option("none", "log: model the log of the target (positive data; relative "
                                    "errors, multiplicative seasons) or none")
    val_frac: float = option(0.1, "share of each series held out for validation")
    test_frac: float = option(0.1, "share of each series held out for the test metrics")
    short_series: str = option("fail", "a series too short to train on: fail, or skip it with a note")

    def __post_init__(self) -> None:
        for name in ("horizon", "lookback", "season"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"--{name} ({value}) must be >= 1")
        if self.scaler not in SCALERS:
            raise InputError(f"--scaler {self.scaler!r} is not known; use one of {', '.join(SCALERS)}")
        if self.transform not in TRANSFORMS:
            raise InputError(f"--transform {self.transform!r} is not known; use one of {', '.join(TRANSFORMS)}")
        if self.short_series not in SHORT_SERIES:
            raise InputError(f"--short-series {self.short_series!r} is not known; use fail or skip")
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


def resolve(panel: Panel, cfg: WindowConfig, check: bool = True) -> tuple[Panel, WindowConfig]:
    """Fill in what `cfg` leaves to the data, apply `short_series`, check the lengths.

    The season follows the frequency; the horizon is one season (at least 1); the
    lookback two seasons or two horizons, whichever is longer, shortened to fit the
    shortest series."""
    season = cfg.season if cfg.season is not None else season_length(panel.freq)
    H = cfg.horizon if cfg.horizon is not None else max(season, 1)
    auto = cfg.lookback is None
    cfg = replace(cfg, season=season, horizon=H)
    if auto:
        cfg = replace(cfg, lookback=_default_lookback(panel, cfg))
    if cfg.short_series == "skip":
        panel = drop_short(panel, cfg)
        if auto:  # the shortest series left sets the room
            cfg = replace(cfg, lookback=_default_lookback(panel, cfg))
    if check:
        check_lengths(panel, cfg)
    return panel, cfg


def _default_lookback(panel: Panel, cfg: WindowConfig) -> int:
    H, m = cfg.horizon, cfg.season
    probe = replace(cfg, lookback=1)
    room = min(probe.part_lengths(len(s))[0] - H for s in panel.series)
    wanted = max(2 * m, 2 * H)
    return max(1, min(wanted, room)) if room >= 1 else wanted


def drop_short(panel: Panel, cfg: WindowConfig) -> Panel:
    """`--short-series skip`: leave out the series too short to train on, with a note."""
    keep, dropped = [], []
    for s in panel.series:
        (keep if cfg.fits(len(s)) else dropped).append(s)
    if not keep:
        raise InputError(f"every series is shorter than lookback {cfg.lookback} + horizon "
                         f"{cfg.horizon} plus the held-out parts; lower --lookback or --horizon")
    if dropped:
        panel.notes.append(f"skipped {len(dropped)} series too short to train on "
                           f"(first: {dropped[0].id!r}, {len(dropped[0])} points)")
    return replace(panel, series=keep)


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


@dataclass
class Windows:
    """All series scaled into one flat array, and the window origins of each part.

    An origin is the flat index of a window's first target; its inputs are the `lookback`
    rows before it and its targets the `horizon` rows from it on (column 0).
    """

    values: np.ndarray  # (N, C) float32, scaled, series concatenated
    offsets: np.ndarray  # (S + 1,) start of each series in `values`
    n_train: np.ndarray  # (S,) training points of each series
    train: np.ndarray  # origins, int64
    val: np.ndarray
    test: np.ndarray
    lookback: int
    horizon: int

    def series_of(self, origins: np.ndarray) -> np.ndarray:
        """Index of the series each origin belongs to."""
        return np.searchsorted(self.offsets, origins, side="right") - 1

    def positions(self, part: np.ndarray) -> list[np.ndarray]:
        """A part's origins as positions within each series (the per-series form)."""
        sid = self.series_of(part)
        return [part[sid == k] - self.offsets[k] for k in range(len(self.offsets) - 1)]


def make_windows(panel: Panel, cfg: WindowConfig) -> tuple[Windows, Scaling]:
    """Split each series by time, fit its scaler on its training part, list the windows."""
    check_lengths(panel, cfg)
    L, H = cfg.lookback, cfg.horizon
    lengths = [cfg.part_lengths(len(s)) for s in panel.series]
    ids = [s.id if panel.spec.id_col else None for s in panel.series]
    scaling = Scaling.fit([s.values[:n_train] for s, (n_train, _, _) in zip(panel.series, lengths)],
                          cfg.scaler, cfg.transform, ids)
    parts, chunks, offset = ([], [], []), [], 0
    for k, (s, (n_train, n_val, n_test)) in enumerate(zip(panel.series, lengths)):
        n = len(s)
        chunks.append(scaling.apply(s.values, k, ids[k]))
        bounds = [(L, n_train), (n_train, n_train + n_val), (n - n_test, n)]
        for part, (lo, hi) in zip(parts, bounds):
            part.append(offset + np.arange(max(lo, L), hi - H + 1, dtype=np.int64))
        offset += n
    windows = Windows(
        values=np.concatenate(chunks),
        offsets=np.concatenate([[0], np.cumsum([len(s) for s in panel.series])]),
        n_train=np.array([n for n, _, _ in lengths]), train=np.concatenate(parts[0]),
        val=np.concatenate(parts[1]), test=np.concatenate(parts[2]), lookback=L, horizon=H,
    )
    return windows, scaling
