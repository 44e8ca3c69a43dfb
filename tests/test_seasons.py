"""Seasons: from every pandas frequency, and detected from integer-step data."""

import numpy as np
import pandas as pd
import pytest

from gruforecast.data import DataSpec, build_panel
from gruforecast.seasons import detect_season, season_of, second_season_of
from gruforecast.windows import WindowConfig, resolve


@pytest.mark.parametrize("freq,season,second", [
    ("h", 24, 168), ("30min", 48, 336), ("15min", 96, 672), ("10min", 144, 1008), ("5min", 288, 2016),
    ("min", 1440, 0), ("2h", 12, 84), ("s", 60, 0), ("D", 7, 365), ("B", 5, 0), ("W-SUN", 52, 0),
    ("MS", 12, 0), ("ME", 12, 0), ("QS-OCT", 4, 0), ("YS", 1, 0), ("2D", 1, 0), (None, 1, 0),
])
def test_season_of_every_frequency(freq, season, second):
    assert (season_of(freq), second_season_of(freq)) == (season, second)


def _hourly_like(n_series=20, n=600, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    day = np.sin(2 * np.pi * t / 24)
    week = np.where((t // 24) % 7 >= 5, -1.5, 0.3)  # weekends low
    return [10 + day * rng.uniform(1, 3) + week + rng.normal(0, 0.3, n) for _ in range(n_series)]


def test_detect_season_finds_the_day_and_the_week():
    assert detect_season(_hourly_like()) == (24, 168)


def test_detect_season_of_noise_and_of_a_trend_is_none():
    rng = np.random.default_rng(1)
    assert detect_season([rng.normal(size=300) for _ in range(10)]) == (1, 0)
    assert detect_season([np.cumsum(rng.normal(size=300)) for _ in range(10)]) == (1, 0)


def test_a_weak_season_of_short_quarterly_series_is_found():
    # 300 series of 20 quarters, a season buried in noise: the pooled autocorrelation of the
    # differences peaks at lag 4 between 0.1 and 0.2, as M3 quarterly's does once its last
    # 8 points are held out (0.198); the 0.2 threshold called it season 1
    rng = np.random.default_rng(0)
    parts = [np.tile(rng.normal(size=4), 5) + np.cumsum(rng.normal(scale=0.3, size=20))
             + rng.normal(scale=2.0, size=20) for _ in range(300)]
    assert detect_season(parts) == (4, 0)


def test_integer_steps_get_the_detected_seasons_and_the_test_part_is_never_read():
    series = _hourly_like(n_series=3, n=1200)
    frame = pd.concat([pd.DataFrame({"id": str(k), "t": np.arange(len(v)), "y": v}) for k, v in enumerate(series)])
    panel = build_panel(frame, DataSpec(target="y", time_col="t", id_col="id"))
    _, wcfg, mcfg = resolve(panel, WindowConfig(horizon=24))
    assert (wcfg.season, mcfg.second_season, wcfg.lookback) == (24, 168, 168)
    assert any("season 24 detected" in note for note in panel.notes)
    # the last 20% (validation and test) replaced by noise: the same seasons
    for s in panel.series:
        s.values = s.values.copy()
        s.values[960:, 0] = np.random.default_rng(2).normal(size=len(s) - 960) * 100
    _, wcfg2, mcfg2 = resolve(panel, WindowConfig(horizon=24))
    assert (wcfg2.season, mcfg2.second_season) == (24, 168)
    # --season and --second-season win
    _, wcfg3, mcfg3 = resolve(panel, WindowConfig(season=12, horizon=24))
    assert wcfg3.season == 12 and mcfg3.second_season == 168  # 168 is a multiple of 12


def test_second_season_needs_the_history():
    t = pd.date_range("2024-01-01", periods=300, freq="h")  # under 2 weeks + a day
    frame = pd.DataFrame({"ds": t, "y": np.sin(np.arange(300) / 3.8)})
    _, wcfg, mcfg = resolve(build_panel(frame, DataSpec(target="y")), WindowConfig())
    assert (wcfg.season, mcfg.second_season, wcfg.lookback) == (24, 0, 48)


def test_a_given_lookback_shorter_than_the_default_second_season_drops_it():
    """`--lookback 48` on hourly data: the week the defaults would add cannot be read, so
    it is left out (and the choice says why) instead of refusing an option never given;
    a second season the user gives still needs the lookback (test_bad_input)."""
    t = pd.date_range("2024-01-01", periods=24 * 60, freq="h")
    panel = build_panel(pd.DataFrame({"ds": t, "y": np.sin(np.arange(len(t)) / 3.8)}), DataSpec(target="y"))
    _, wcfg, mcfg = resolve(panel, WindowConfig(lookback=48, horizon=24))
    assert (wcfg.lookback, mcfg.second_season) == (48, 0)
    assert panel.choices["second_season"] == "0: 168 found, but the lookback (48) is shorter than it"
    _, wcfg, mcfg = resolve(panel, WindowConfig(lookback=168, horizon=24))
    assert (wcfg.lookback, mcfg.second_season) == (168, 168)


def test_nixtla_long_format_and_a_lone_text_column_are_read_as_panels():
    t = np.tile(pd.date_range("2024-01-01", periods=30, freq="D").astype(str), 2)
    frame = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 30), "ds": t, "y": np.arange(60.0)})
    panel = build_panel(frame, DataSpec())
    assert panel.spec.id_col == "unique_id" and len(panel.series) == 2
    assert any("Nixtla" in n for n in panel.notes)
    shop = frame.rename(columns={"unique_id": "shop"})
    assert build_panel(shop, DataSpec()).spec.id_col == "shop"
    # statsforecast's M-competition loaders write ds as integer steps: still the time column
    steps = frame.assign(ds=np.tile(np.arange(1, 31), 2))
    panel = build_panel(steps, DataSpec())
    assert (panel.spec.time_col, panel.time_dtype, len(panel.series)) == ("ds", "integer", 2)


def test_rows_sharing_timestamps_name_the_column_that_separates_them():
    from gruforecast.errors import InputError

    t = np.tile(pd.date_range("2024-01-01", periods=30, freq="D").astype(str), 2)
    frame = pd.DataFrame({"ds": t, "y": np.arange(60.0), "shop": np.repeat(["a", "b"], 30),
                          "region": np.repeat(["x", "y"], 30)})  # two text columns: no guess
    with pytest.raises(InputError, match="pass --id-col shop"):
        build_panel(frame, DataSpec(target="y"))


def _business_hours_frame(days=30, closed=("2024-01-17",)):
    """5-minute steps 09:00-17:00 on weekdays, one weekday closed (a holiday)."""
    t = pd.date_range("2024-01-01", periods=days * 288, freq="5min")
    tod = t - t.normalize()
    keep = (t.day_of_week < 5) & (tod >= pd.Timedelta("9h")) & (tod <= pd.Timedelta("17h"))
    keep &= ~t.normalize().isin(pd.DatetimeIndex(closed))
    t = t[keep]
    return pd.DataFrame({"ds": t, "y": np.sin(np.arange(len(t)) * 2 * np.pi / 97) + 5})


def test_a_business_hours_grid_is_detected_and_continued():
    from gruforecast.data import Session

    panel = build_panel(_business_hours_frame(), DataSpec(target="y"))
    assert panel.freq == "5min Mon-Fri 09:00-17:00"
    assert any("1 days of the session hold no data" in n for n in panel.notes)
    assert len(panel.series[0]) == 21 * 97  # 22 weekdays in 30 days, one closed
    _, wcfg, mcfg = resolve(panel, WindowConfig())
    assert (wcfg.season, mcfg.second_season) == (97, 485)
    session = Session.parse(panel.freq)
    nxt = session.after(pd.Timestamp("2024-01-26 17:00"), 98)  # a Friday's close
    assert nxt[0] == pd.Timestamp("2024-01-29 09:00") and nxt[96] == pd.Timestamp("2024-01-29 17:00")
    assert nxt[97] == pd.Timestamp("2024-01-30 09:00")
    # the session as --freq reads the same panel; a malformed one is a clear error
    again = build_panel(_business_hours_frame(), DataSpec(target="y", freq="5min Mon-Fri 09:00-17:00"))
    assert again.freq == panel.freq and len(again.series[0]) == len(panel.series[0])
    from gruforecast.errors import InputError

    with pytest.raises(InputError, match="write it like '5min Mon-Fri 07:00-21:00'"):
        Session.parse("5min Mon-Fri 9-17")
