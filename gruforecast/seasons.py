"""Season lengths: from the frequency of dated data, from the data itself for integer steps.

`season_of(freq)` is the first season (the one seasonal naive, MASE and the default
lookback use): a day of steps for sub-daily data (30 min: 48, 5 min: 288, hours: 24), a
week for daily data, a year for weekly, monthly and quarterly data. `second_season_of`
is the longer rhythm beside it: the week for sub-daily data, the year for daily data.
A business-hours grid (`data.Session`) counts the steps of its own trading day and week.

`detect_season(series)` finds the season of integer-step data (no dates) from the pooled
autocorrelation of the series' first differences: the first clear peak, then the first
clear peak at a multiple of it as the second season. Only the values given are read; the
caller passes the training parts. No torch, no pandas beyond the frequency alias.
"""

from __future__ import annotations

import numpy as np

# Seasons of the calendar offsets (pandas base codes), per step of n = 1.
_CALENDAR = {"D": 7, "B": 5, "W": 52, "M": 12, "Q": 4, "Y": 1}
_SECOND = {"D": 365}  # daily data: the year beside the week
_MAX_SEASON = 1440  # a day of minutes; seconds data takes the hour (or the minute)
_MAX_LAG = 400  # the longest season detect_season looks for
# Pooled autocorrelation a season must reach. Measured on the training parts of the suite's
# integer-step panels: seasonal ones peak at 0.16-0.37 (M3 quarterly 0.198 once its last 8
# points are held out, so 0.2 lost its season), non-seasonal ones stay under 0.05.
_MIN_PEAK = 0.1
_COVERAGE = 0.8  # share of the panel's points that must reach a lag for it to count
_MIN_BUMP = 0.01  # how far a second season's autocorrelation must rise above its neighbours
_MAX_SECOND = 2016  # a week of 5-minute steps; longer windows cost more than they give


def _parts(freq: str) -> tuple[str, int, float | None]:
    """(base code, multiple n, step in seconds for fixed offsets, else None)."""
    import pandas as pd

    offset = pd.tseries.frequencies.to_offset(freq)
    code = offset.rule_code.split("-")[0]  # "W-SAT" -> "W", "QS-OCT" -> "QS"
    base = code if code in ("s", "B") else code.rstrip("SE")  # "MS", "ME", "QS" -> "M", "Q"
    try:
        seconds = pd.Timedelta(offset).total_seconds()
    except (ValueError, TypeError):  # calendar offsets (months, weeks...) have no fixed length
        seconds = None
    return base, offset.n, seconds


def _session(freq: str):
    from .data import Session

    return Session.parse(freq)


def at_least_daily(freq: str | None) -> bool:
    """Whether a step of `freq` spans a day or more (its timestamps share a time of day)."""
    if freq is None or _session(freq) is not None:
        return False
    seconds = _parts(freq)[2]
    return seconds is None or seconds >= 86400


def season_of(freq: str | None) -> int:
    """The season implied by a pandas frequency alias; 1 for integer steps or no rhythm."""
    if freq is None:
        return 1
    session = _session(freq)
    if session is not None:  # a business day of steps
        return session.steps_per_day
    base, n, seconds = _parts(freq)
    if seconds is not None and seconds < 86400:
        for period in (86400, 3600, 60):  # a day of steps; for seconds data an hour, a minute
            steps = period / seconds
            if steps == int(steps) and 2 <= steps <= _MAX_SEASON:
                return int(steps)
        return 1
    season = _CALENDAR.get(base, 1)
    return season // n if season % n == 0 else 1  # "2D" data has no whole week: none


def second_season_of(freq: str | None) -> int:
    """The longer season beside `season_of` (0: none): a week for sub-daily data, a year
    for daily data."""
    if freq is None:
        return 0
    session = _session(freq)
    if session is not None:  # a business week of steps
        week = session.steps_per_day * len(session.days)
        return week if len(session.days) > 1 and week <= _MAX_SECOND else 0
    base, n, seconds = _parts(freq)
    if seconds is not None and seconds < 86400:
        day = 86400 / seconds
        week = 7 * int(day)
        return week if day == int(day) and season_of(freq) == day and week <= _MAX_SECOND else 0
    year = _SECOND.get(base, 0)
    return year if n == 1 else 0


def detect_season(parts: list[np.ndarray]) -> tuple[int, int]:
    """(season, second season) of integer-step data from its pooled autocorrelation.

    Each part's first differences are autocorrelated up to half its length (and
    `_MAX_LAG`); the panel's curve is the mean over the parts that reach each lag, weighted
    by their length, over the lags that most of the panel reaches. The season is the smallest local peak within 90% of the highest one
    and above `_MIN_PEAK` (1 when there is none); the second season see `_second_peak`.
    (1, 0) when nothing repeats."""
    total, weight = np.zeros(_MAX_LAG + 1), np.zeros(_MAX_LAG + 1)
    for values in parts:
        d = np.diff(np.asarray(values, dtype=np.float64))
        d = d[np.isfinite(d)]
        max_lag = min(_MAX_LAG, len(d) // 2)
        if max_lag < 2:
            continue
        d = d - d.mean()
        var = float(d @ d)
        if var <= 0:
            continue
        acf = np.array([d[k:] @ d[:-k] for k in range(1, max_lag + 1)]) / var
        total[1: max_lag + 1] += acf * len(d)
        weight[1: max_lag + 1] += len(d)
    # A lag only counts where most of the panel reaches it: a few long series alone
    # make noisy peaks at long lags.
    acf = np.where(weight >= _COVERAGE * weight[1], total / np.maximum(weight, 1), np.nan)
    # From lag 3: noise makes the lag-1 autocorrelation of differences negative, so lag 2
    # of any smooth cycle looks like a peak (a season of 2 must be given with --season).
    peaks = [k for k in range(3, _MAX_LAG) if np.isfinite(acf[k - 1: k + 2]).all()
             and acf[k] >= acf[k - 1] and acf[k] > acf[k + 1] and acf[k] >= _MIN_PEAK]
    if not peaks:
        return 1, 0
    best = max(acf[k] for k in peaks)
    season = min(k for k in peaks if acf[k] >= 0.9 * best)
    return season, _second_peak(acf, season)


def _second_peak(acf: np.ndarray, season: int) -> int:
    """The multiple of `season` whose autocorrelation stands out most above its two
    neighbouring multiples (hourly data: 168 above 144 and 192), if by _MIN_BUMP; else 0.
    Every multiple of a season peaks; a second rhythm shows as a bump among them."""
    bumps = {}
    for k in range(2 * season, _MAX_LAG + 1 - season, season):
        near = acf[[k - season, k, k + season]]
        if np.isfinite(near).all() and near[1] > 0:
            bumps[k] = near[1] - (near[0] + near[2]) / 2
    best = max(bumps, key=bumps.get, default=0)
    return best if best and bumps[best] >= _MIN_BUMP else 0
