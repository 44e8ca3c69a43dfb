"""Covariates known in advance: the calendar and holiday columns derived from timestamps,
and the future file that gives the user's `--future-features` for the forecast steps.

A panel's value columns are, in this order (`DataSpec.value_columns` then `derived`):
the target, the past-only `--features`, the `--future-features`, the `--static-features`,
then the derived columns (calendar encodings, the holiday indicator and its ramps). The
known-future ones (`DataSpec.known`: future features and derived columns) are read by the
model over the lookback and over the forecast steps; past features only before the origin.

Calendar encodings are cyclic (a sine and a cosine), so 23:00 sits beside 00:00 and
Sunday beside Monday. `--calendar auto` takes each encoding whose cycle is longer than a
step and which the data covers at least twice (Prophet's rule for its seasonalities): the
hour of day for sub-daily data over two days, the day of the week for sub-weekly data
over two weeks, the day of the year for sub-yearly data over two years. A cycle seen once
names each of its days once, so the network can learn what happened on that date, not a
pattern (measured on pedestrians, both ways: docs/model.md, Covariates). Nothing for
integer steps.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

# encoding -> (its cycle, the position of a time in it, in units of the cycle)
CALENDAR = {
    "hour": (pd.Timedelta("1D"), lambda t: (t.hour + t.minute / 60 + t.second / 3600) / 24),
    "weekday": (pd.Timedelta("7D"), lambda t: (t.day_of_week + (t.hour + t.minute / 60) / 24) / 7),
    "yearday": (pd.Timedelta("365D"), lambda t: (t.day_of_year - 1 + t.hour / 24) / 365.25),
}


def parse_calendar(text: str) -> tuple[str, ...] | None:
    """`--calendar`: None for auto, () for none, else the encodings named."""
    words = [w.strip().lower() for w in str(text).split(",") if w.strip()]
    if words == ["auto"]:
        return None
    if words in (["none"], []):
        return ()
    unknown = [w for w in words if w not in CALENDAR]
    if unknown:
        raise InputError(f"--calendar {text!r}: {unknown[0]!r} is not known; use auto, none, or a list of "
                         f"{', '.join(CALENDAR)}")
    return tuple(dict.fromkeys(words))


def auto_calendar(step: pd.Timedelta, span: pd.Timedelta) -> tuple[str, ...]:
    """The encodings `--calendar auto` takes for data `step` apart covering `span`: those
    whose cycle is longer than a step and seen twice."""
    return tuple(name for name, (cycle, _) in CALENDAR.items() if step < cycle and 2 * cycle <= span + step)


def step_of(freq: str) -> pd.Timedelta:
    """A frequency's step as a duration (a month is about 30 days; a session its base)."""
    from .data import Session

    session = Session.parse(freq)
    if session is not None:
        return session.step
    offset = pd.tseries.frequencies.to_offset(freq)
    # from a date on the offset: from a Monday, W-SAT's next point is 5 days on, not a week
    start = offset.rollforward(pd.Timestamp("2001-01-01"))
    return (start + offset) - start


def unread_columns(spec, freq: str | None, season: int, by_season: bool) -> tuple[int, ...]:
    """The value columns the GRU does not read over the lookback with `--no-read-repeating`:
    the future features (their past overfit, always left out), and, when it reads a season
    per step, each calendar encoding whose cycle divides the season: the hour of day, read
    a day per step, is the same in every step and says only the window's phase
    (docs/model.md, Covariates)."""
    if not by_season or freq is None:
        return spec.future
    encodings = [name.rsplit("_", 1)[0] for name in spec.derived]  # hour_sin -> hour; holiday
    repeating = tuple(at for at, enc in zip(spec.derived_at, encodings)
                      if enc in CALENDAR and (c := cycle_steps(enc, freq)) and season % c == 0)
    return spec.future + repeating


def cycle_steps(encoding: str, freq: str) -> int | None:
    """Steps in one cycle of a calendar encoding (the hour of day: a day of steps), or None
    where the cycle is not a whole number of steps (the day of the year)."""
    from .data import Session

    session = Session.parse(freq)
    if session is not None:  # a business day, a business week
        return {"hour": session.steps_per_day, "weekday": session.steps_per_day * len(session.days)}.get(encoding)
    steps = CALENDAR[encoding][0] / step_of(freq)
    return int(steps) if steps == int(steps) else None


def derived_names(calendar: tuple[str, ...], holidays: str | None, window: int = 0) -> tuple[str, ...]:
    names = tuple(f"{c}_{f}" for c in calendar for f in ("sin", "cos"))
    if not holidays:
        return names
    return names + ("holiday",) + (("holiday_ahead", "holiday_behind") if window else ())


def derived_values(times: pd.Index, calendar: tuple[str, ...], holidays: str | None,
                   tz: str | None = None, window: int = 0) -> np.ndarray:
    """(n, D) the derived columns at `times`: cyclic calendar encodings, then 1.0 on a
    holiday of `holidays` (COUNTRY or COUNTRY-SUBDIVISION) and 0.0 elsewhere, and with a
    `window` of days, how near the next holiday and the last one are (`holiday_ramps`).
    With `tz` the timestamps are UTC and read in that zone (a Melbourne holiday starts at
    13:00 UTC)."""
    times = pd.DatetimeIndex(times)
    if tz:
        times = times.tz_localize("UTC").tz_convert(tz).tz_localize(None)
    cols = []
    for name in calendar:
        angle = 2 * np.pi * np.asarray(CALENDAR[name][1](times), dtype=np.float64)
        cols += [np.sin(angle), np.cos(angle)]
    if holidays:
        # a year either side: the data's first days see the holiday before them, its last the one after
        years = tuple(range(times.year.min() - bool(window), times.year.max() + 1 + bool(window)))
        days, dates = holiday_calendar(holidays, years), times.normalize()
        cols.append(np.asarray(dates.isin(days), dtype=np.float64))
        if window:
            cols += holiday_ramps(dates, days, window)
    return np.stack(cols, axis=1) if cols else np.zeros((len(times), 0))


def holiday_ramps(dates: pd.DatetimeIndex, days: pd.DatetimeIndex, window: int) -> list[np.ndarray]:
    """Two columns: 1 - (days to the next holiday) / window and 1 - (days since the last
    one) / window, floored at 0 (1 on a holiday, 0 a window or more away). The indicator
    marks the day; these mark the days around it, which a holiday moves too (the week
    between Christmas and New Year, the Friday after a Thursday holiday)."""
    d = dates.values.astype("datetime64[D]").astype(np.int64)
    h = days.values.astype("datetime64[D]").astype(np.int64)
    if len(h) == 0:
        return [np.zeros(len(d)), np.zeros(len(d))]
    at = np.searchsorted(h, d)  # the first holiday on or after each date
    to_next = np.where(at < len(h), h[np.minimum(at, len(h) - 1)] - d, window)
    after = np.searchsorted(h, d, side="right") - 1  # the last holiday on or before
    since = np.where(after >= 0, d - h[np.maximum(after, 0)], window)
    return [np.clip(1 - to_next / window, 0, 1), np.clip(1 - since / window, 0, 1)]


@functools.lru_cache(maxsize=64)
def holiday_calendar(code: str, years: tuple[int, ...]) -> pd.DatetimeIndex:
    """The public holidays of COUNTRY[-SUBDIVISION] in `years` (the `holidays` package)."""
    import holidays as hol

    country, _, subdiv = code.partition("-")
    try:
        days = hol.country_holidays(country.upper(), subdiv=subdiv.upper() or None, years=list(years))
    except NotImplementedError:
        raise InputError(f"--holidays {code!r}: {country!r} is not a country the holidays package knows; "
                         "use an ISO 3166 code such as FR, US or AU-VIC") from None
    except ValueError as exc:
        raise InputError(f"--holidays {code!r}: {str(exc).splitlines()[0][:120]}; use COUNTRY or "
                         "COUNTRY-SUBDIVISION, e.g. AU-VIC") from None
    return pd.DatetimeIndex(sorted(pd.Timestamp(d) for d in days))


def read_future(path: str | Path, spec, ids: list[str], times: list[pd.Index], daily: bool = False) -> np.ndarray:
    """(S, K, F) the `--future-features` of series `ids` at the forecast times `times[i]`
    from a future file (id, time and those columns). Every (series, time) must be there
    once; rows of the file before or after the forecast steps are ignored, rows between
    them off the forecast's grid or of series not forecast are refused, each with one line.
    `daily`: the data steps a day or more, so zoned times are read as local dates."""
    from .data import _missing_column, _numeric, _parse_time, read_table

    path = Path(path)
    frame = read_table(path, spec)
    need = [c for c in (spec.id_col, spec.time_col, *spec.future_features) if c is not None]
    for col in need:
        if col not in frame.columns:
            raise _missing_column(col, "--future", list(frame.columns))
    frame = frame[need].copy()
    # Zoned times as the data's were read (`data._naive`), which a file of one step cannot tell
    frame[spec.time_col] = _parse_time(frame[spec.time_col], spec.time_col, spec.dayfirst, daily)[0]
    for col in spec.future_features:
        frame[col] = _numeric(frame[col], col)
    key = frame[spec.id_col].astype(str) if spec.id_col else pd.Series("", index=frame.index)
    frame["_id"] = key.to_numpy()
    known = set(ids) if spec.id_col else {""}
    strangers = frame.loc[~frame["_id"].isin(known), "_id"]
    if len(strangers):
        raise InputError(f"--future {str(path)!r} has rows of series {strangers.iloc[0]!r}, which is not "
                         "forecast; drop them or add the series to the data")
    want = pd.DataFrame({"_id": np.repeat(np.array(ids if spec.id_col else [""] * len(ids), dtype=object),
                                          [len(t) for t in times]),
                         spec.time_col: np.concatenate([np.asarray(t) for t in times]) if times else []})
    span = want.groupby("_id")[spec.time_col]
    first, last = span.min(), span.max()
    frame = frame[(frame[spec.time_col] >= frame["_id"].map(first))
                  & (frame[spec.time_col] <= frame["_id"].map(last))]  # the forecast's span only
    dup = frame.duplicated(["_id", spec.time_col])
    if dup.any():
        row = frame[dup].iloc[0]
        raise InputError(f"--future {str(path)!r} has two rows for {_where(row['_id'], row[spec.time_col])}; "
                         "keep one per series and time")
    merged = want.merge(frame, on=["_id", spec.time_col], how="left", indicator=True)
    off_grid = len(frame) - int((merged["_merge"] == "both").sum())
    if off_grid:
        extra = frame.merge(want, on=["_id", spec.time_col], how="left", indicator=True)
        row = extra[extra["_merge"] == "left_only"].iloc[0]
        raise InputError(f"--future {str(path)!r} has a row for {_where(row['_id'], row[spec.time_col])}, "
                         f"which is not a forecast step ({off_grid} such rows); align its times with the data's")
    values = merged[list(spec.future_features)].to_numpy(dtype=np.float64)
    missing = ~np.isfinite(values).all(axis=1)
    if missing.any():
        row = merged[missing].iloc[0]
        raise InputError(
            f"--future {str(path)!r} lacks {int(missing.sum())} of the {len(merged)} rows the forecast needs "
            f"(or has empty cells in them); the first is {_where(row['_id'], row[spec.time_col])}; give "
            f"{', '.join(spec.future_features)} for each of the {len(times[0]) if times else 0} steps after "
            "each series' end")
    return values.reshape(len(ids), -1, len(spec.future_features))


def _where(sid: str, time) -> str:
    shown = pd.Timestamp(time).isoformat(sep=" ") if not isinstance(time, (int, np.integer)) else str(time)
    return f"series {sid!r} at {shown}" if sid else f"time {shown}"


def check_static(series, names: tuple[str, ...], columns: slice) -> None:
    """Refuse a static feature that changes within a series: one line with the first."""
    for s in series:
        block = s.values[:, columns]
        varies = (block != block[:1]).any(axis=0)
        if varies.any():
            j = int(np.argmax(varies))
            raise InputError(f"static feature {names[j]!r} changes within series {s.id!r}; give it one "
                             "value per series, or pass it as --features or --future-features")
