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

from dataclasses import dataclass, field, replace

import numpy as np

from . import spill
from .config import ModelConfig, TrainConfig, check_range, flag, option
from .data import Panel
from .errors import InputError
from .scaling import SCALERS, TRANSFORMS, Scaling
from .seasons import detect_season, season_of, second_season_of

SHORT_SERIES = ("pad", "fail", "skip")
VAL_FRAC = 0.1  # the validation share, unless it holds fewer than FEW_WINDOWS windows in all
FEW_WINDOWS = 10  # validation windows under which early stopping reads too little (`_validation_share`)
VAL_HORIZONS = (3, 2)  # what each series then holds out for validation, the first that fits
MIN_HISTORY = 1  # observed points a padded window needs before its origin
MAX_LOOKBACK = 100_000  # --lookback's limit (a default lookback stays within it too)


@dataclass(frozen=True)
class WindowConfig:
    """Window lengths, the season, split fractions, the target transform and the scaler.
    Stored in the model artifact, resolved (no `None` left)."""

    lookback: int | None = option(None, "input window L (default: 2 seasons, 2 horizons or the "
                                        "second season, whichever is longest)", least=1, most=MAX_LOOKBACK)
    horizon: int | None = option(None, "forecast horizon H (default: one season)", least=1, most=100_000)
    season: int | None = option(None, "season length (default: from the frequency; detected from "
                                      "the training data for integer steps)", least=1, most=100_000)
    scaler: str = option("standard", "standard, minmax, robust or none (fitted on train only)")
    transform: str = option(
        "auto", "log: model the log of the target (positive data; relative errors, "
        "multiplicative seasons), none, or auto: for positive data, train both and keep the "
        "one with the better validation MASE", absent="none")
    val_frac: float | None = option(
        None, "share of each series held out for validation (default: 0.1, or up to 3 horizons "
        "where 0.1 would hold fewer than 10 validation windows in all)", absent=0.1)
    test_frac: float = option(0.1, "share of each series held out for the test metrics")
    short_series: str = option(
        "pad", "a series shorter than lookback + horizon: pad (its windows are left-padded and "
        "the model sees a mask of the padding), fail, or skip it with a note", absent="fail")
    # Resolved, not an option: whether the model reads a mask channel (some series is padded).
    mask: bool = field(default=False, metadata={"absent": False})
    # Resolved: the window scale of a padded window is measured on its observed points
    # (`GRURegressor.window_scale_of`); files written before it measured the padding too.
    observed_scale: bool = field(default=True, metadata={"absent": False})
    # Resolved: the target is never below zero in the training parts (counts, sales,
    # demand), so forecasts and their bands are clipped at zero (`Forecaster._forecast`).
    non_negative: bool = field(default=False, metadata={"absent": False})

    def __post_init__(self) -> None:
        check_range(self)
        if self.scaler not in SCALERS:
            raise InputError(f"--scaler {self.scaler!r} is not known; use one of {', '.join(SCALERS)}")
        if self.transform not in ("auto", *TRANSFORMS):
            raise InputError(f"--transform {self.transform!r} is not known; use auto, {', '.join(TRANSFORMS)}")
        if self.short_series not in SHORT_SERIES:
            raise InputError(f"--short-series {self.short_series!r} is not known; use pad, fail or skip")
        for name, frac in (("val_frac", self.val_frac), ("test_frac", self.test_frac)):
            if frac is not None and not 0.0 <= frac < 0.5:
                raise InputError(f"{flag(name)} ({frac}) must be in [0, 0.5)")

    @property
    def padded(self) -> bool:
        return self.short_series == "pad"

    @property
    def scales_observed(self) -> bool:
        """Whether the model measures each window's scale on its observed points alone."""
        return self.mask and self.observed_scale

    def channels(self, n_values: int) -> int:
        """The model's input columns: the data's value columns (`DataSpec.n_values`: the
        target, covariates, calendar) and the mask if any."""
        return n_values + int(self.mask)

    def part_lengths(self, n: int) -> tuple[int, int, int]:
        """(n_train, n_val, n_test) target points for a series of n points.

        Each held-out part is max(H, its share of n). With padding, a series too short for
        that keeps its training windows first: its held-out parts shrink to H each, then
        the test part goes, then the validation part (the series is still forecast)."""
        H = self.horizon
        frac = VAL_FRAC if self.val_frac is None else self.val_frac  # unresolved: the usual share
        n_val = max(H, round(frac * n)) if frac > 0 else 0
        n_test = max(H, round(self.test_frac * n)) if self.test_frac > 0 else 0
        if self.padded:
            need = MIN_HISTORY + H  # the shortest training part that holds a window
            if n - n_val - n_test < need:
                n_val, n_test = min(n_val, H), min(n_test, H)
            if n - n_val - n_test < need:
                n_test = 0
            if n - n_val - n_test < need:
                n_val = 0
        return n - n_val - n_test, n_val, n_test

    def first_origin(self, n_train: int) -> int:
        """Where a series' windows start: after a full lookback, or (padding) after
        MIN_HISTORY points when its training part holds no full window."""
        if self.padded and n_train < self.lookback + self.horizon:
            return MIN_HISTORY
        return self.lookback

    def fits(self, n: int) -> bool:
        """Whether a series of n points holds at least one training window."""
        n_train = self.part_lengths(n)[0]
        return n_train >= self.first_origin(n_train) + self.horizon


# Points an epoch may read across its members, by default: under twice the points cap
# (`TrainConfig.points_per_epoch`, 4,000,000), so data that reaches the cap (bank calls, a
# long lookback) keeps one member; M4 hourly and pedestrians get 2, M4 weekly 3, ETTh1 5.
ENSEMBLE_BUDGET = 7_000_000
MAX_MEMBERS = 5


def resolve(panel: Panel, cfg: WindowConfig, mcfg: ModelConfig | None = None,
            check: bool = True, tcfg: TrainConfig | None = None,
            ) -> tuple[Panel, WindowConfig, ModelConfig]:
    """Fill in what `cfg` and `mcfg` leave to the data, apply `short_series`, check lengths.

    The seasons follow the frequency, or for integer steps the pooled autocorrelation of
    the series' training parts (`seasons.detect_season`; the validation and test parts
    are never read). The horizon is one season (at least 1); the second season (the week
    of sub-daily data, the year of daily data) is used where the median series' training
    part holds two of them and the lookback (given, or within the shortest series) covers
    it; the lookback is the longest of 2 seasons, 2 horizons and the second season
    (without padding, shortened to fit the shortest series). A target that is never
    negative in the training parts is never forecast below zero (`non_negative`)."""
    mcfg, tcfg = mcfg or ModelConfig(), tcfg or TrainConfig()
    val_given = cfg.val_frac is not None
    cfg = cfg if val_given else replace(cfg, val_frac=VAL_FRAC)
    season, second = cfg.season, mcfg.second_season
    why = panel.choices
    if season is None or second is None:
        found, found2 = _seasons(panel, cfg)
        source = (f"from the frequency {panel.freq}" if panel.freq is not None else
                  "detected from the training parts' autocorrelation (integer steps)")
        if season is None:
            why["season"] = f"{found}: {source}"
            if panel.freq is None:
                panel.notes.append(f"season {found} detected from the training data's autocorrelation "
                                   f"(integer steps; --season sets it)")
        season = found if season is None else season
        if second is None:
            second = found2 if cfg.season is None or found2 % season == 0 else 0
            why["second_season"] = f"{second}: {source}" if second else "0: none found"
    longest = max(len(s) for s in panel.series)
    if cfg.season is not None and season > longest:  # its naive forecast would read padding alone
        raise InputError(f"--season {season} is longer than the longest series ({longest} points), so no "
                         f"window holds one season of it; lower --season")
    H = cfg.horizon if cfg.horizon is not None else max(season, 1)
    if cfg.horizon is None:
        why["horizon"] = f"{H}: one season (--horizon sets it)"
    cfg = replace(cfg, season=season, horizon=H)
    if mcfg.second_season is None and second:
        median = float(np.median([cfg.part_lengths(len(s))[0] for s in panel.series]))
        if median < 2 * second + H:
            why["second_season"] = (f"0: {second} found, but the median training part ({median:g} points) "
                                    f"holds fewer than two of it and a horizon")
            second = 0
    chosen = mcfg.second_season is None  # the defaults' second season, not the user's
    mcfg = replace(mcfg, second_season=second) if chosen else mcfg
    auto = cfg.lookback is None
    if auto:
        cfg = replace(cfg, lookback=_default_lookback(panel, cfg, mcfg.second_season))
        why["lookback"] = (f"{cfg.lookback}: the longest of 2 seasons, 2 horizons and the second season"
                           + ("" if cfg.padded else ", within the shortest series"))
    if cfg.short_series == "skip":
        panel = drop_short(panel, cfg)
        if auto:  # the shortest series left sets the room
            cfg = replace(cfg, lookback=_default_lookback(panel, cfg, mcfg.second_season))
    if chosen and cfg.lookback < mcfg.second_season:  # a window shorter than it cannot read it
        why["second_season"] = (f"0: {mcfg.second_season} found, but the lookback ({cfg.lookback}) is "
                                "shorter than it")
        mcfg = replace(mcfg, second_season=0)
    if not val_given:
        cfg = _validation_share(panel, cfg, why)
    padded = sum(cfg.first_origin(cfg.part_lengths(len(s))[0]) < cfg.lookback or len(s) < cfg.lookback
                 for s in panel.series) if cfg.padded else 0
    cfg = replace(cfg, mask=padded > 0)
    if all((s.values[:cfg.part_lengths(len(s))[0], 0] >= 0).all() for s in panel.series):
        cfg = replace(cfg, non_negative=True)
        why["non_negative"] = "forecasts and bands clipped at 0: the target is never negative in the training parts"
    if padded:
        why["short_series"] = (f"pad: {padded} of {len(panel.series)} series are shorter than lookback + "
                               "horizon after their held-out parts; their windows are padded, with a mask")
    if mcfg.ensemble is None:
        mcfg = replace(mcfg, ensemble=_members(panel, cfg, tcfg.epoch_windows(cfg.lookback), why))
    if check:
        check_lengths(panel, cfg)
    return panel, cfg, mcfg


def _validation_share(panel: Panel, cfg: WindowConfig, why: dict) -> WindowConfig:
    """The validation share where 10% holds fewer than FEW_WINDOWS windows in all (one
    series, a long horizon): the least that holds 3 horizons of every series (else 2), if
    every series still keeps a full training window. Early stopping, the choices and the
    conformal shifts otherwise read one horizon: on Taylor's half-hourly demand (h = 336)
    one validation week stopped the training at epoch 3 of 50, and the forecast lost to
    last week's values; holding out three weeks, it did not (docs/model.md, "One series").
    Not where validation holds more windows: single M4 hourly series (23-49 windows, 1.5-2
    horizons of points) lost with three horizons held out."""
    H, L = cfg.horizon, cfg.lookback

    def held(c: WindowConfig) -> int:  # validation windows in all, counted up to FEW_WINDOWS
        n = 0  # a panel reaches it within a few series: no extra pass over all of them
        for s in panel.series:
            n += max(0, c.part_lengths(len(s))[1] - H + 1)
            if n >= FEW_WINDOWS:
                break
        return n

    before = held(cfg)
    if not 0 < before < FEW_WINDOWS:
        return cfg
    shortest = min(len(s) for s in panel.series)
    for k in VAL_HORIZONS:
        share = k * H / shortest
        if share >= 0.5:
            continue
        wider = replace(cfg, val_frac=share)
        if held(wider) > before and all(wider.part_lengths(len(s))[0] >= L + H for s in panel.series):
            why["val_frac"] = (f"{share:.3g}: at {cfg.val_frac:g} the validation parts would hold {before} "
                               f"window{'s' if before > 1 else ''} in all; {k} horizons of each series "
                               "are held out instead, so early stopping reads more than one (--val-frac sets it)")
            return wider
    return cfg


def _lower_horizon(panel: Panel) -> str:
    """The hint for a horizon too long for the data: a horizon the user did not give came
    from the season, and "lower --horizon" would not say so."""
    return "pass a shorter --horizon (it defaults to one season)" if "horizon" in panel.choices else "lower --horizon"


def _members(panel: Panel, cfg: WindowConfig, windows_per_epoch: int | None, why: dict) -> int:
    """Ensemble members within a time budget, from the data alone (so the same data gives
    the same model): an epoch reads (training windows, capped per epoch) x lookback
    points per member, and the members together may read ENSEMBLE_BUDGET."""
    windows = 0
    for s in panel.series:
        n_train = cfg.part_lengths(len(s))[0]
        windows += max(0, n_train - cfg.first_origin(n_train) - cfg.horizon + 1)
    if windows_per_epoch is not None:
        windows = min(windows, windows_per_epoch)
    cost = max(1, windows * cfg.lookback)
    members = max(1, min(MAX_MEMBERS, ENSEMBLE_BUDGET // cost))
    why["ensemble"] = (f"{members}: an epoch reads {cost:,} points per member ({windows:,} windows x "
                       f"lookback {cfg.lookback}); the members may read {ENSEMBLE_BUDGET:,}")
    return members


def _seasons(panel: Panel, cfg: WindowConfig) -> tuple[int, int]:
    """(season, second season) from the frequency, or detected on the training parts."""
    if panel.freq is not None:
        return season_of(panel.freq), second_season_of(panel.freq)
    share = 1.0 - cfg.val_frac - cfg.test_frac  # the horizon may not be known yet
    return detect_season([s.values[: int(share * len(s)), 0] for s in panel.series])


def _default_lookback(panel: Panel, cfg: WindowConfig, second: int) -> int:
    H, m = cfg.horizon, cfg.season
    wanted = min(max(2 * m, 2 * H, second), MAX_LOOKBACK)  # beyond it check_lengths names the horizon
    if cfg.padded:
        return wanted
    probe = replace(cfg, lookback=1)
    room = min(probe.part_lengths(len(s))[0] - H for s in panel.series)
    return max(1, min(wanted, room)) if room >= 1 else wanted


def drop_short(panel: Panel, cfg: WindowConfig) -> Panel:
    """`--short-series skip`: leave out the series too short to train on, with a note."""
    keep, dropped = [], []
    for s in panel.series:
        (keep if cfg.fits(len(s)) else dropped).append(s)
    if not keep:
        raise InputError(f"every series is shorter than lookback {cfg.lookback} + horizon "
                         f"{cfg.horizon} plus the held-out parts; use --short-series pad, lower --lookback, "
                         f"or {_lower_horizon(panel)}")
    if dropped:
        panel.notes.append(f"skipped {len(dropped)} series too short to train on "
                           f"(first: {dropped[0].id!r}, {len(dropped[0])} points)")
    return replace(panel, series=keep)


def check_lengths(panel: Panel, cfg: WindowConfig) -> None:
    """Without padding every series must hold a training window after the held-out parts;
    with padding, some series must (the others are still forecast)."""
    L, H = cfg.lookback, cfg.horizon
    if cfg.padded:
        if not any(cfg.fits(len(s)) for s in panel.series):
            longest = max(len(s) for s in panel.series)
            raise InputError(
                f"no series holds a training window: the longest has {longest} points, and "
                f"horizon {H} needs at least {MIN_HISTORY + H} before the held-out parts; "
                f"{_lower_horizon(panel)}, or --val-frac / --test-frac, or give more data")
        return
    for s in panel.series:
        n = len(s)
        name = f"series {s.id!r}" if panel.spec.id_col else "the series"
        if n < L + H:
            raise InputError(
                f"{name} has {n} points, fewer than lookback {L} + horizon {H}; "
                f"use --short-series pad, lower --lookback, {_lower_horizon(panel)}, or give more data"
            )
        if not cfg.fits(n):
            n_train, n_val, n_test = cfg.part_lengths(n)
            raise InputError(
                f"{name} has {n} points: after {n_val} validation and {n_test} test points, "
                f"{n_train} remain for training, fewer than lookback {L} + horizon {H}; "
                f"use --short-series pad, lower --lookback, {_lower_horizon(panel)}, or give more data"
            )


def window_rows(values: np.ndarray, positions: np.ndarray, lookback: int) -> tuple[np.ndarray, np.ndarray]:
    """The inputs (n, L, C) of one series' windows with origins `positions`, and (n, L)
    whether each row was observed. Rows before the series' start repeat its first value:
    the padding `train.gather` applies to training windows too."""
    idx = np.asarray(positions, dtype=np.int64)[:, None] - lookback + np.arange(lookback)[None, :]
    return values[np.maximum(idx, 0)], idx >= 0


def with_mask(rows: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(n, L, C) -> (n, L, C + 1): the mask channel (1 observed, 0 padding) appended."""
    return np.concatenate([rows, observed[..., None].astype(rows.dtype)], axis=-1)


class Origins:
    """Window origins as one run per series: `first[k]`, `first[k] + 1`, ..., `count[k]`
    of them, in flat order. The training origins of a large panel are tens of millions
    (340 MB as an int64 array at 100,000 series x 500 points) and are only ever drawn
    from, so they stay runs: a draw of indices maps to origins (`origins[idx]`), and
    `np.asarray(origins)` lists them all."""

    def __init__(self, first: np.ndarray, count: np.ndarray) -> None:
        self.first, self.count = first.astype(np.int64), count.astype(np.int64)
        self._ends = np.cumsum(self.count)

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def __getitem__(self, index: np.ndarray | slice | int) -> np.ndarray:
        if isinstance(index, slice):
            index = np.arange(*index.indices(len(self)), dtype=np.int64)
        k = np.asarray(index)
        k = np.flatnonzero(k) if k.dtype == bool else np.where(k < 0, k + len(self), k).astype(np.int64)
        run = np.searchsorted(self._ends, k, side="right")
        return self.first[run] + k - (self._ends[run] - self.count[run])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self[np.arange(len(self), dtype=np.int64)].astype(dtype or np.int64, copy=False)


@dataclass
class Windows:
    """All series scaled into one flat array, and the window origins of each part.

    An origin is the flat index of a window's first target; its inputs are the `lookback`
    rows before it and its targets the `horizon` rows from it on (column 0). Inputs
    before the start of the origin's series are padding (`train.gather`, `window_rows`).
    """

    values: np.ndarray  # (N, len(value_columns)) float32, scaled, series concatenated
    offsets: np.ndarray  # (S + 1,) start of each series in `values`
    n_train: np.ndarray  # (S,) training points of each series
    train: Origins  # drawn from each epoch
    val: np.ndarray
    test: np.ndarray
    lookback: int
    horizon: int
    mask: bool = False  # windows reaching before their series' start are padded, with a mask
    series_index: bool = False  # windows carry their series' index last (`--series-embedding`)
    known: tuple[int, ...] = ()  # columns known in advance, read over the horizon too
    # The derived columns, after `values`' (all known in advance): the grids' tables
    # (G, D) float32, and the table's row of each series' first value (S,).
    calendar: np.ndarray | None = None
    calendar_at: np.ndarray | None = None

    def series_of(self, origins: np.ndarray) -> np.ndarray:
        """Index of the series each origin belongs to."""
        return np.searchsorted(self.offsets, origins, side="right") - 1

    def positions(self, part: np.ndarray) -> list[np.ndarray]:
        """A part's origins as positions within each series (the per-series form)."""
        part = np.asarray(part)
        sid = self.series_of(part)
        order = np.argsort(sid, kind="stable")  # one pass, not a scan of the part per series
        cuts = np.searchsorted(sid[order], np.arange(1, len(self.offsets) - 1))
        return [p - self.offsets[k] for k, p in enumerate(np.split(part[order], cuts))]


def make_windows(panel: Panel, cfg: WindowConfig, series_index: bool = False) -> tuple[Windows, Scaling]:
    """Split each series by time, fit its scaler on its training part, list the windows
    (`series_index`: they carry their series' index, for `--series-embedding`)."""
    check_lengths(panel, cfg)
    L, H = cfg.lookback, cfg.horizon
    lengths = [cfg.part_lengths(len(s)) for s in panel.series]
    ids = [s.id if panel.spec.id_col else None for s in panel.series]
    spec = panel.spec
    scaling = Scaling.fit([s.values[:n_train] for s, (n_train, _, _) in zip(panel.series, lengths)],
                          cfg.scaler, cfg.transform, ids, derived=len(spec.derived),
                          pooled=spec.static, whole=[s.values for s in panel.series])
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in panel.series])])
    # Filled in place: a list of per-series chunks concatenated would hold the panel twice;
    # a file mapped when large (`spill`), since training reads a batch of it at a time.
    values = spill.empty((int(offsets[-1]), panel.series[0].values.shape[1]), np.float32)
    parts, offset = ([], [], []), 0
    for k, (s, (n_train, n_val, n_test)) in enumerate(zip(panel.series, lengths)):
        n = len(s)
        values[offset: offset + n] = scaling.apply(s.values, k, ids[k])
        first = cfg.first_origin(n_train)  # L, or MIN_HISTORY for a padded series
        bounds = [(first, n_train), (n_train, n_train + n_val), (n - n_test, n)]
        for part, (lo, hi) in zip(parts, bounds):
            part.append((offset + max(lo, first), max(0, hi - H + 1 - max(lo, first))))
        offset += n
    train, val, test = (Origins(*np.array(r, dtype=np.int64).reshape(-1, 2).T) for r in parts)
    windows = Windows(
        values=values, offsets=offsets,
        n_train=np.array([n for n, _, _ in lengths]), train=train,
        val=np.asarray(val), test=np.asarray(test), lookback=L, horizon=H,
        mask=cfg.mask, series_index=series_index, known=spec.known, **_calendars(panel),
    )
    return windows, scaling


def _calendars(panel: Panel) -> dict:
    """The derived columns of `panel` for `Windows`: each grid's table once (float32, as
    the scaled values; unscaled, `Scaling.fit`), and where each series starts in them."""
    if not panel.spec.derived:
        return {}
    tables, base, at, rows = [], {}, [], 0
    for s in panel.series:
        if id(s.calendar) not in base:
            base[id(s.calendar)], rows = rows, rows + len(s.calendar)
            tables.append(s.calendar)
        at.append(base[id(s.calendar)] + s.start)
    return {"calendar": np.concatenate(tables).astype(np.float32), "calendar_at": np.array(at, dtype=np.int64)}
