"""Covariates: known-future features (used, aligned, never a leak), past features never
read at or after an origin, calendar and holidays, static features, the future file's
errors, the artifact's schema, check --model --future and batch's `future` key."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import run_main, train_run

from gruforecast import artifact
from gruforecast.covariates import auto_calendar, derived_values, holiday_calendar
from gruforecast.data import DataSpec, build_panel
from gruforecast.errors import InputError

H = 6


def _frame(n=360, ids=("a", "b"), seed=0):
    """Hourly series whose target follows a known-in-advance driver and a past-only one."""
    rng = np.random.default_rng(seed)
    out = []
    for k, sid in enumerate(ids):
        t = np.arange(n)
        driver = rng.normal(size=n).cumsum() * 0.3
        past = rng.normal(size=n)
        y = 20 + k + 2 * np.sin(2 * np.pi * t / 24) + 3 * driver + 0.1 * rng.normal(size=n)
        out.append(pd.DataFrame({"id": sid, "time": pd.date_range("2024-01-01", periods=n, freq="h"),
                                 "y": y, "driver": driver, "past": past, "size": 5.0 + 10 * k}))
    return pd.concat(out, ignore_index=True)


# The calendar given, not chosen: `--calendar auto` would weigh it against none on the
# validation windows (forecaster._candidates), and these tests are about its layout.
SPEC = DataSpec(target="y", time_col="time", id_col="id", features=("past",), future_features=("driver",),
                static_features=("size",), calendar="hour,weekday")


@pytest.fixture(scope="module")
def trained():
    frame = _frame()
    panel = build_panel(frame, SPEC)
    run = train_run(panel, horizon=H, lookback=24, epochs=4, hidden_size=8, seed=0, level=(), ensemble=1,
                    known_map="step")
    return frame, panel, run.forecaster


SPEC_KNOWN = (2, 4, 5, 6, 7)  # the future feature, then the four calendar columns


def test_columns_are_laid_out_and_the_calendar_is_chosen_from_the_data(trained):
    _, panel, fc = trained
    spec = panel.spec
    auto = build_panel(_frame(), DataSpec(target="y", time_col="time", id_col="id"))
    assert auto.spec.calendar == "hour,weekday"  # 15 days of hours: no day of year
    assert auto.choices["calendar"] == "hour,weekday: from the step and the span of the data"
    assert "calendar" not in panel.choices  # given, not chosen
    assert spec.value_columns == ("y", "past", "driver", "size")
    assert spec.derived == ("hour_sin", "hour_cos", "weekday_sin", "weekday_cos")
    assert spec.known == (2, 4, 5, 6, 7) and spec.future == (2,) and spec.static == (3,)
    assert panel.series[0].values.shape == (360, 4) and panel.series[0].rows().shape == (360, 8)
    assert all(s.calendar is panel.series[0].calendar for s in panel.series)  # one table for the grid
    assert fc.model.read == [0, 1, 3, 4, 5, 6, 7]  # the GRU does not read the future feature's past
    # static features are scaled across the series (a per-series scaler would zero them)
    scaled = [fc.scaling.apply(s.values[:1], k)[0, 3] for k, s in enumerate(panel.series)]
    assert scaled == pytest.approx([-1.0, 1.0])
    assert (fc.scaling.loc[:, 4:] == 0).all() and (fc.scaling.scale[:, 4:] == 1).all()  # calendar as is



def test_training_windows_carry_the_same_rows_as_the_forecast_path():
    """Training cuts the derived columns from one table per grid (`train.gather`); the
    forecast path joins them per series (`Series.rows`): the same scaled inputs and
    known-future columns, series starting at different places on the grid included."""
    import torch

    from gruforecast.train import Flat, gather
    from gruforecast.windows import WindowConfig, make_windows, window_rows

    frame = _frame()
    frame = frame[~((frame.id == "b") & (frame.time < "2024-01-03"))]  # b starts 48 steps later
    panel = build_panel(frame, SPEC)
    assert panel.series[1].start == 48 and panel.series[1].calendar is panel.series[0].calendar
    windows, scaling = make_windows(panel, WindowConfig(lookback=24, horizon=H))
    assert windows.values.shape[1] == 4 and windows.calendar.shape == (360, 4)
    origins = np.array([10, 100, 360 + 5, 360 + 200])  # the first of each padded
    x, y, future = gather(Flat.of(windows), torch.from_numpy(origins), 24, H)
    for k, s in enumerate(panel.series):
        pos = origins[k * 2: k * 2 + 2] - windows.offsets[k]
        rows, _ = window_rows(s.rows(), pos, 24)
        ahead = s.rows()[pos[:, None] + np.arange(H)]
        np.testing.assert_array_equal(x[k * 2: k * 2 + 2].numpy(), scaling.apply(rows, k))
        np.testing.assert_array_equal(future[k * 2: k * 2 + 2].numpy(), scaling.apply(ahead, k)[..., list(SPEC_KNOWN)])
        np.testing.assert_array_equal(y[k * 2: k * 2 + 2].numpy(), scaling.apply(ahead, k)[..., 0])
    # with `--series-embedding`, each window's series index after the other columns
    indexed = make_windows(panel, WindowConfig(lookback=24, horizon=H), series_index=True)[0]
    x_indexed = gather(Flat.of(indexed), torch.from_numpy(origins), 24, H)[0]
    np.testing.assert_array_equal(x_indexed[..., :-1], x)
    np.testing.assert_array_equal(x_indexed[..., -1], np.repeat([[0.0], [0.0], [1.0], [1.0]], 24, axis=1))

def test_no_past_feature_or_target_is_read_at_or_after_an_origin(trained):
    frame, panel, fc = trained
    pos = [np.array([200]), np.array([220])]  # one per series: a later origin may read the earlier's future
    before = fc.forecast_origins(panel, pos)
    poisoned = []
    for k, s in enumerate(panel.series):
        v = s.values.copy()
        first = pos[k].min()
        v[first:, 0] = 1e6  # the target from the first origin on
        v[first:, 1] = -1e6  # the past feature
        v[first + H:, 2] = 1e6  # the known feature beyond every horizon
        poisoned.append(replace(s, values=v))
    leaked = type(panel)(panel.spec, poisoned, panel.freq)
    np.testing.assert_array_equal(fc.forecast_origins(leaked, pos), before)


def test_known_future_values_inside_the_horizon_are_used(trained):
    _, panel, fc = trained
    assert fc.model.known_path.weight.abs().sum() > 0  # trained away from its zero start
    pos = [np.array([200]), np.array([220])]
    before = fc.forecast_origins(panel, pos)
    moved = []
    for k, s in enumerate(panel.series):
        v = s.values.copy()
        v[pos[k][0]:pos[k][0] + H, 2] += 5.0
        moved.append(replace(s, values=v))
    after = fc.forecast_origins(type(panel)(panel.spec, moved, panel.freq), pos)
    assert not np.allclose(after, before)


def test_the_known_path_starts_at_zero_and_learns_a_real_driver():
    """Trained on series driven by the future feature, the model with it beats the one
    without on the held-out windows (the same seed and budget)."""
    frame = _frame(n=480, ids=("a", "b", "c"))
    scores = {}
    for name, spec in (("with", DataSpec(target="y", time_col="time", id_col="id", future_features=("driver",),
                                         calendar="none")),
                       ("without", DataSpec(target="y", time_col="time", id_col="id", calendar="none"))):
        run = train_run(build_panel(frame, spec), horizon=H, lookback=24, epochs=20, lr=1e-2, hidden_size=8, seed=0,
                        level=(), full_refit=False, second_season=0)
        scores[name] = run.report["test"]["scores"]["model"]["mae"]
    assert scores["with"] < 0.8 * scores["without"], scores


@pytest.mark.parametrize("known_map", ["step", "horizon"])
@pytest.mark.parametrize("column", ["future feature", "calendar"])
def test_the_known_map_reads_its_own_step_or_the_whole_horizon(known_map, column):
    """`--known-map step` corrects a step from that step's known values alone; `horizon`
    corrects every step from every step's future-feature values (a day's whole load
    profile sets each hour), the calendar still step by step. Both start at zero."""
    import torch

    from gruforecast.config import ModelConfig
    from gruforecast.model import GRURegressor

    torch.manual_seed(0)
    cfg = ModelConfig(hidden_size=4, known_map=known_map, second_season=0, level=())
    # column 1 a future feature, column 2 a calendar column
    model = GRURegressor(cfg, n_inputs=4, lookback=24, horizon=H, season=24, known=(1, 2), ahead_only=(1,),
                         wide=(1,))
    x, future = torch.randn(2, 24, 4), torch.randn(2, H, 2)
    moved = future.clone()
    moved[:, 0, 0 if column == "future feature" else 1] += 1.0  # the first step's value only
    with torch.no_grad():
        assert torch.equal(model(x, future), model(x, moved))  # zero at the start
        for path in (model.known_path, model.wide_path):
            if path is not None:
                torch.nn.init.normal_(path.weight)
        change = (model(x, moved) - model(x, future)).abs()[..., 0]
    assert (change[:, 0] > 0).all()
    later = change[:, 1:]
    if known_map == "horizon" and column == "future feature":
        assert (later > 0).all()
    else:
        assert torch.equal(later, torch.zeros_like(later))


@pytest.mark.parametrize("known_map", ["step", "horizon"])
@pytest.mark.parametrize("units", ["series", "window"])
def test_the_future_features_correct_in_the_series_units_or_the_windows(units, known_map):
    """`--known-units series` adds the future features' correction in the series' scaled
    units: the same change of a covariate moves the forecast by the same
    amount whether the window is calm or wild. `window` multiplies it by the window's
    amplitude, as the GRU's own correction; the calendar's correction is always so."""
    import torch

    from gruforecast.config import ModelConfig
    from gruforecast.model import GRURegressor

    assert ModelConfig().known_units is None  # chosen by validation where there are future features
    torch.manual_seed(0)
    cfg = ModelConfig(hidden_size=4, known_units=units, known_map=known_map, second_season=0, level=())
    # column 1 a future feature, column 2 a calendar column
    model = GRURegressor(cfg, n_inputs=3, lookback=24, horizon=H, season=24, known=(1, 2), ahead_only=(1,),
                         wide=(1,))
    x = torch.randn(1, 24, 3)
    wild = x.clone()
    wild[..., 0] = x[..., 0] * 3  # three times the amplitude, the same known columns
    future = torch.zeros(1, H, 2)
    with torch.no_grad():
        for path in (model.known_path, model.wide_path):
            if path is not None:
                torch.nn.init.normal_(path.weight)
        ratio = (model.window_scale_of(wild) / model.window_scale_of(x)).item()
        assert ratio == pytest.approx(3.0, rel=1e-5)
        for column in (0, 1):  # the future feature, the calendar
            moved = future.clone()
            moved[..., column] = 1.0
            effect = [(model(w, moved) - model(w, future))[0, :, 0] for w in (x, wild)]
            assert effect[0].abs().min() > 1e-3
            expected = effect[0] if units == "series" and column == 0 else effect[0] * ratio
            torch.testing.assert_close(effect[1], expected, rtol=1e-5, atol=1e-6)


def test_the_known_map_and_units_are_chosen_by_validation_where_there_are_future_features():
    """Unset, `--known-map` and `--known-units` are candidate choices (like `--transform
    auto`): a fit with each, the better validation MASE kept, the reason in the choices;
    given, they are kept; without future features there is nothing to choose (step and
    series, no fit more)."""
    import re

    panel = build_panel(_frame(), SPEC)
    options = dict(horizon=H, lookback=24, epochs=2, hidden_size=8, seed=0, level=(), ensemble=1, transform="none")
    run = train_run(panel, **options)
    why = run.report["choices"]["known_map"]
    found = re.fullmatch(r"(step|horizon): validation MASE ([\d.]+), against ([\d.]+) with (step|horizon)", why)
    assert found, why
    chosen, best, other, loser = found.groups()
    assert {chosen, loser} == {"step", "horizon"} and float(best) <= float(other)
    assert run.forecaster.model_cfg.known_map == chosen
    assert (run.forecaster.model.wide_path is not None) == (chosen == "horizon")
    # the units, chosen after the map, the same way
    why = run.report["choices"]["known_units"]
    found = re.fullmatch(r"(series|window): validation MASE ([\d.]+), against ([\d.]+) with (series|window)", why)
    assert found, why
    assert run.forecaster.model_cfg.known_units == found.group(1) and float(found.group(2)) <= float(found.group(3))
    given = train_run(build_panel(_frame(), SPEC), **options, known_map="step", known_units="window")
    assert not {"known_map", "known_units"} & set(given.report["choices"])
    assert given.forecaster.model.wide_path is None and given.forecaster.model_cfg.known_units == "window"
    plain = train_run(build_panel(_frame(), DataSpec(target="y", time_col="time", id_col="id")), **options)
    assert not {"known_map", "known_units"} & set(plain.report["choices"])
    assert plain.forecaster.model_cfg.known_map == "step" and plain.forecaster.model_cfg.known_units == "series"


def test_a_choice_is_made_again_when_a_later_one_moves(monkeypatch):
    """The choices are made one after another, each with the later ones at their first
    candidate; where a later one moves (here the map, to step), the earlier ones are made
    again under the final picks. The validation MASE of each candidate is set here (the fits
    are real): under the horizon map no transform wins, under the step map the log does."""
    from gruforecast import evaluate, forecaster

    fitted, real_fit, real_scores = [], forecaster.Forecaster.fit, evaluate.scores
    table = {("none", "horizon", "series"): 1.0, ("log", "horizon", "series"): 1.1,
             ("none", "step", "series"): 0.9, ("none", "step", "window"): 0.95, ("log", "step", "series"): 0.8}

    def fit(self, *args, **kwargs):
        fitted.append((self.window_cfg.transform, self.model_cfg.known_map, self.model_cfg.known_units))
        return real_fit(self, *args, **kwargs)

    def scores(records, name):
        return {**real_scores(records, name), "mase": table.get(fitted[-1], 2.0)}

    monkeypatch.setattr(forecaster.Forecaster, "fit", fit)
    monkeypatch.setattr(evaluate, "scores", scores)
    frame = _frame().assign(y=lambda f: f["y"] + 100.0)  # positive: the log is a candidate
    spec = replace(SPEC, calendar="none")
    run = train_run(build_panel(frame, spec), horizon=H, lookback=24, epochs=1, hidden_size=4, seed=0, level=(),
                    ensemble=1, full_refit=False)
    assert fitted == [("none", "horizon", "series"), ("log", "horizon", "series"), ("none", "step", "series"),
                      ("none", "step", "window"), ("log", "step", "series")]
    assert run.report["choices"]["transform"] == "log: validation MASE 0.8, against 0.9 with none"
    assert run.forecaster.window_cfg.transform == "log" and run.forecaster.model_cfg.known_map == "step"


def test_a_calendar_the_defaults_chose_is_weighed_against_none_and_the_panel_conforms():
    """`--calendar auto`'s encodings are a candidate choice (against none) on the
    validation windows; the model stores the chosen calendar and reads a panel built with
    the data's full calendar (`conform`: the columns it was fitted on, views, no copy)."""
    import re

    from gruforecast.data import conform

    spec = DataSpec(target="y", time_col="time", id_col="id", future_features=("driver",))
    panel = build_panel(_frame(), spec)
    run = train_run(panel, horizon=H, lookback=24, epochs=2, hidden_size=8, seed=0, level=(), ensemble=1,
                    transform="none", known_map="step")
    why = run.report["choices"]["calendar"]
    found = re.fullmatch(r"(hour,weekday|none): validation MASE ([\d.]+), against ([\d.]+) with (none|hour,weekday)", why)
    assert found, why
    chosen, best, other, loser = found.groups()
    assert {chosen, loser} == {"hour,weekday", "none"} and float(best) <= float(other)
    fc = run.forecaster
    assert fc.data_spec.calendar == chosen and run.report["config"]["data"]["calendar"] == chosen
    bare = conform(panel, replace(panel.spec, calendar="none"))
    assert bare.spec.derived == () and bare.series[0].rows().shape == (360, 2)
    assert bare.series[0].values is panel.series[0].values and bare.series[0].calendar is None
    assert conform(panel, panel.spec) is panel
    weekday = conform(panel, replace(panel.spec, calendar="weekday"))  # the last two of the four columns
    assert weekday.spec.derived == ("weekday_sin", "weekday_cos")
    assert weekday.series[0].calendar is weekday.series[1].calendar  # the grid's table cut once
    np.testing.assert_array_equal(weekday.series[1].rows(), panel.series[1].rows()[:, [0, 1, 4, 5]])
    pos = [np.array([200]), np.array([220])]
    np.testing.assert_array_equal(fc.forecast_origins(panel, pos), fc.forecast_origins(conform(panel, fc.data_spec), pos))


@pytest.mark.parametrize("freq, calendar, season, by_season, unread", [
    ("h", "hour,weekday", 24, True, ("hour",)),  # a day per step: the hour repeats
    ("h", "hour,weekday", 168, True, ("hour", "weekday")),  # a week per step: both repeat
    ("h", "hour,weekday,yearday", 24, False, ()),  # step by step: each hour differs
    ("D", "weekday,yearday", 7, True, ("weekday",)),
    ("W-SUN", "yearday", 52, True, ()),  # 365.25 days are no whole number of weeks
    ("5min Mon-Fri 07:00-21:00", "hour,weekday", 169, True, ("hour",)),  # a business day per step
])
def test_the_gru_does_not_read_calendar_columns_that_repeat_in_each_of_its_steps(freq, calendar, season, by_season,
                                                                                  unread):
    from gruforecast.covariates import unread_columns

    spec = DataSpec(target="y", future_features=("load",), calendar=calendar, holidays="FR")
    skipped = unread_columns(spec, freq, season, by_season)
    names = dict(zip(spec.derived_at, spec.derived))
    assert skipped[:1] == spec.future  # never the future features' past
    assert [names[c] for c in skipped[1:]] == [f"{e}_{f}" for e in unread for f in ("sin", "cos")]


def test_no_read_repeating_leaves_the_hour_to_the_forecast_steps_and_round_trips(trained, tmp_path):
    """`--no-read-repeating`: the GRU skips the hour of day over the lookback (a day per
    step); the file stores it and rebuilds the same model. Files written before the option
    existed read every calendar column, as they did."""
    from dataclasses import replace

    from gruforecast.config import ModelConfig, from_stored
    from gruforecast.forecaster import unread

    _, panel, fc = trained
    stored = {k: v for k, v in vars(fc.model_cfg).items() if k != "read_repeating"}
    assert unread(from_stored(ModelConfig, stored), panel.spec, panel.freq, fc.window_cfg) == panel.spec.future
    skipping = replace(fc.model_cfg, read_repeating=False)
    assert unread(skipping, panel.spec, panel.freq, fc.window_cfg) == (2, 4, 5)
    run = train_run(panel, horizon=H, lookback=24, epochs=1, hidden_size=8, seed=0, level=(), ensemble=1,
                    read_repeating=False)
    assert run.forecaster.model.read == [0, 1, 3, 6, 7]
    path = artifact.save(run.forecaster, tmp_path / "m.gruf")
    loaded = artifact.load(path)
    assert loaded.model.read == [0, 1, 3, 6, 7]
    pos = [np.array([200]), np.array([220])]
    np.testing.assert_array_equal(loaded.forecast_origins(panel, pos), run.forecaster.forecast_origins(panel, pos))


def _write(tmp_path, frame, future_rows=H):
    """The history (all but the last `future_rows` hours of each series) and the future file."""
    hist = frame.groupby("id").head(len(frame) // 2 - future_rows)
    fut = frame.drop(hist.index).groupby("id").head(future_rows)[["id", "time", "driver"]]
    hist.to_csv(tmp_path / "h.csv", index=False)
    fut.to_csv(tmp_path / "f.csv", index=False)
    return hist, fut


TRAIN = ("--target", "y", "--time-col", "time", "--id-col", "id", "--future-features", "driver",
         "--horizon", str(H), "--lookback", "24", "--epochs", "2", "--hidden-size", "8")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cov")
    _write(tmp, _frame())
    from typer.testing import CliRunner

    from gruforecast import cli

    result = CliRunner().invoke(cli.app, ["train", str(tmp / "h.csv"), *TRAIN, "--future", str(tmp / "f.csv"),
                                          "--out", str(tmp / "m.gruf")])
    assert result.exit_code == 0, result.output
    return tmp


def test_train_needs_the_future_file_before_any_work(tmp_path, monkeypatch, capsys):
    _write(tmp_path, _frame())
    code, _, err = run_main(monkeypatch, capsys, "train", tmp_path / "h.csv", *TRAIN, "--out", tmp_path / "m.gruf")
    assert code == 2 and "pass --future FILE" in err and "Traceback" not in err
    assert not list(tmp_path.glob("m*"))  # nothing written


def test_predict_from_the_stored_data_with_the_future_file(model_dir, monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, "predict", model_dir / "m.gruf", "--future", model_dir / "f.csv",
                            "--out", model_dir / "p.csv")
    assert code == 0, err
    fc = pd.read_csv(model_dir / "p.csv", dtype={"id": str})
    fut = pd.read_csv(model_dir / "f.csv", dtype={"id": str})
    assert len(fc) == 2 * H and (fc[["id", "time"]].to_numpy() == fut[["id", "time"]].to_numpy()).all()
    code, _, err = run_main(monkeypatch, capsys, "predict", model_dir / "m.gruf", "--out", model_dir / "q.csv")
    assert code == 2 and "future features driver" in err and not (model_dir / "q.csv").exists()


@pytest.mark.parametrize("freq, step, written, on_grid", [
    ("D", "2024-10-27 00:00", "2024-10-27T00:00:00+0200", True),  # a local date, as the data's
    ("h", "2024-01-15 20:00", "2024-01-15T21:00:00+0100", True),  # an hour: UTC, as the data's
    ("h", "2024-01-15 00:00", "2024-01-15T00:00:00+0100", False),  # midnight on an hourly grid is UTC too
    ("D", "2024-10-27 00:00", "2024-10-26T22:00:00Z", False),  # a daily grid's UTC time is not its date
])
def test_a_zoned_future_file_of_one_step_is_read_as_its_models_data(tmp_path, freq, step, written, on_grid):
    """One row cannot say whether the file is daily or hourly, so the model's frequency
    does: zoned daily data is read as local dates (`data._naive`), hourly data in UTC."""
    from gruforecast.covariates import read_future
    from gruforecast.seasons import at_least_daily

    (tmp_path / "f.csv").write_text(f"date,x\n{written},1.5\n")
    spec, times = DataSpec(time_col="date", target="y", future_features=("x",)), [pd.DatetimeIndex([step])]
    daily = at_least_daily(freq)
    if on_grid:
        assert read_future(tmp_path / "f.csv", spec, [""], times, daily).tolist() == [[[1.5]]]
    else:
        with pytest.raises(InputError, match="lacks 1 of the 1 rows the forecast needs"):  # its row is elsewhere
            read_future(tmp_path / "f.csv", spec, [""], times, daily)
    assert [at_least_daily(f) for f in ("D", "B", "W-MON", "MS", "h", "30min", None)] == [True] * 4 + [False] * 3


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.drop(index=f.index[3]), "lacks 1 of the 12 rows the forecast needs (or has empty cells in them); "
                                          "the first is series 'a' at 2024-01-15 21:00:00"),
    (lambda f: f.assign(driver=f.driver.where(f.index != f.index[7])), "lacks 1 of the 12 rows"),
    (lambda f: pd.concat([f, f.iloc[[2]]]), "has two rows for series 'a' at 2024-01-15 20:00:00"),
    (lambda f: pd.concat([f, f.iloc[[2]].assign(id="zz")]), "series 'zz', which is not forecast"),
    (lambda f: pd.concat([f, f.iloc[[2]].assign(time="2024-01-15 20:30:00")]), "which is not a forecast step"),
    (lambda f: f.drop(columns="driver"), "column 'driver' (--future) is not in the file"),
])
def test_a_bad_future_file_is_one_line_and_writes_nothing(model_dir, monkeypatch, capsys, damage, message):
    fut = pd.read_csv(model_dir / "f.csv", dtype={"id": str})
    bad = model_dir / "bad.csv"
    damage(fut).to_csv(bad, index=False)
    out = model_dir / "bad-out.csv"
    code, _, err = run_main(monkeypatch, capsys, "predict", model_dir / "m.gruf", "--future", bad, "--out", out)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    code, _, err = run_main(monkeypatch, capsys, "check", "--model", model_dir / "m.gruf", "--future", bad)
    assert code == 2 and message in err


def test_rows_outside_the_forecast_are_ignored_and_check_says_ok(model_dir, monkeypatch, capsys):
    frame = _frame()
    longer = frame[frame.time >= frame.time.iloc[100]][["id", "time", "driver"]]  # history and beyond too
    longer.to_csv(model_dir / "long.csv", index=False)
    code, out, err = run_main(monkeypatch, capsys, "check", "--model", model_dir / "m.gruf", "--future",
                              model_dir / "long.csv")
    assert code == 0 and "ok: 12 rows" in out and "driver, hour_sin" in out, err


def test_info_lists_the_covariates_and_the_model_round_trips(model_dir, monkeypatch, capsys):
    code, out, _ = run_main(monkeypatch, capsys, "info", model_dir / "m.gruf")
    assert code == 0 and "known in advance: driver, hour_sin, hour_cos, weekday_sin, weekday_cos" in out
    art = artifact.load(model_dir / "m.gruf")
    assert art.data_spec.future_features == ("driver",) and art.data_spec.calendar == "hour,weekday"


def test_cutoffs_take_the_future_from_the_data_and_refuse_a_future_file(model_dir, monkeypatch, capsys):
    _frame().to_csv(model_dir / "full.csv", index=False)
    code, _, err = run_main(monkeypatch, capsys, "predict", model_dir / "m.gruf", "--data", model_dir / "full.csv",
                            "--cutoffs", "3", "--out", model_dir / "cv.csv")
    assert code == 0, err
    assert len(pd.read_csv(model_dir / "cv.csv")) == 2 * 3 * H
    code, _, err = run_main(monkeypatch, capsys, "predict", model_dir / "m.gruf", "--data", model_dir / "full.csv",
                            "--cutoffs", "3", "--future", model_dir / "f.csv", "--out", model_dir / "cv2.csv")
    assert code == 2 and "drop --future" in err


def test_the_calendar_rule():
    hour, day = pd.Timedelta("1h"), pd.Timedelta("1D")
    # each cycle covered twice (Prophet's rule): once is a date to remember, not a pattern
    assert auto_calendar(hour, pd.Timedelta("40h")) == ()
    assert auto_calendar(hour, pd.Timedelta("47h")) == ("hour",)  # 48 hourly points: two days
    assert auto_calendar(hour, pd.Timedelta("13D")) == ("hour",)
    assert auto_calendar(hour, pd.Timedelta("400D")) == ("hour", "weekday")
    assert auto_calendar(hour, pd.Timedelta("730D")) == ("hour", "weekday", "yearday")
    assert auto_calendar(day, pd.Timedelta("30D")) == ("weekday",)
    assert auto_calendar(day, pd.Timedelta("728D")) == ("weekday",)
    assert auto_calendar(pd.Timedelta("7D"), pd.Timedelta("3000D")) == ("yearday",)
    # an anchored week is a week from any start (W-SAT from a Monday was 5 days: weekly data
    # got a day-of-week encoding that never changes)
    from gruforecast.covariates import step_of

    assert [step_of(f) for f in ("W-SAT", "W", "h", "D", "QS-OCT")] == [
        pd.Timedelta("7D"), pd.Timedelta("7D"), hour, day, pd.Timedelta("90D")]
    enc = derived_values(pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 06:00", "2024-01-01 23:00"]), ("hour",), None)
    np.testing.assert_allclose(enc[:, 0], [0.0, 1.0, np.sin(2 * np.pi * 23 / 24)], atol=1e-12)  # sin
    np.testing.assert_allclose(enc[:, 1], [1.0, 0.0, np.cos(2 * np.pi * 23 / 24)], atol=1e-12)  # cos


def test_holidays_by_country_and_subdivision_in_local_time():
    days = holiday_calendar("AU-VIC", (2015,))
    assert pd.Timestamp("2015-01-26") in days  # Australia Day
    assert pd.Timestamp("2015-11-03") in days  # Melbourne Cup: Victoria only
    assert pd.Timestamp("2015-11-03") not in holiday_calendar("AU-NSW", (2015,))
    utc = pd.DatetimeIndex(["2015-01-25 12:00", "2015-01-25 14:00", "2015-01-26 14:00"])  # +11:00 in January
    assert derived_values(utc, (), "AU-VIC", "Australia/Melbourne")[:, 0].tolist() == [0.0, 1.0, 0.0]
    assert derived_values(utc, (), "AU-VIC")[:, 0].tolist() == [0.0, 0.0, 1.0]  # read as written


def test_holiday_ramps_count_the_days_to_the_next_holiday_and_since_the_last():
    # AU-VIC 2015: Christmas Day (Fri 25), Boxing Day (Sat 26) and its substitute (Mon 28);
    # New Year's Day 2016 (Fri 1). Hourly, in local time: each day's hours share its values.
    times = pd.date_range("2015-12-20", "2016-01-02 23:00", freq="h")
    values = derived_values(times, (), "AU-VIC", window=4)
    day = {str(t.date()): v for t, v in zip(times[::24], values[::24])}
    assert values.shape == (len(times), 3) and (values[::24] == values[23::24]).all()
    ahead, behind = {d: v[1] for d, v in day.items()}, {d: v[2] for d, v in day.items()}
    assert [ahead[f"2015-12-{d}"] for d in (20, 21, 22, 23, 24, 25)] == [0, 0, 0.25, 0.5, 0.75, 1]
    assert [behind[f"2015-12-{d}"] for d in (25, 26, 27, 28, 29, 30, 31)] == [1, 1, 0.75, 1, 0.75, 0.5, 0.25]
    assert ahead["2015-12-29"] == 0.25 and ahead["2015-12-31"] == 0.75 and behind["2016-01-02"] == 0.75
    assert day["2015-12-27"][0] == 0 and day["2015-12-28"][0] == 1  # the indicator: the days themselves
    # a holiday of the year after the data counts: New Year's Day 2016 seen from 31 December alone
    assert derived_values(pd.DatetimeIndex(["2015-12-31"]), (), "AU-VIC", window=4)[0, 1] == 0.75
    spec = DataSpec(target="y", time_col="time", id_col="id", holidays="AU-VIC")
    assert spec.derived[-3:] == ("holiday", "holiday_ahead", "holiday_behind")
    assert replace(spec, holiday_window=0).derived[-1] == "holiday"


def test_holiday_ramps_at_predict_time_are_the_ones_training_saw():
    """Forecasting from the end of the data (the columns of the steps made from their
    timestamps, `Forecaster._ahead`) gives what forecasting from the same origin inside a
    longer panel gives (the columns as the panel holds them): no skew between the two."""
    frame = _frame().assign(time=lambda d: d.time + (pd.Timestamp("2024-04-20") - pd.Timestamp("2024-01-01")))
    spec = DataSpec(target="y", time_col="time", id_col="id", calendar="none", holidays="FR")
    full, cut = build_panel(frame, spec), 309  # 2 May 21:00: the steps cross midnight, May Day behind
    head = build_panel(frame.groupby("id").head(cut), spec)
    fc = train_run(head, horizon=H, lookback=24, epochs=1, hidden_size=8, seed=0, level=(), ensemble=1).forecaster
    assert fc.known_names == ("holiday", "holiday_ahead", "holiday_behind")
    steps = full.series[0].rows()[cut:cut + H, -3:]
    assert (steps[:, 1:] > 0).all() and len(np.unique(steps, axis=0)) == 2  # two days' ramps, no holiday
    np.testing.assert_allclose(fc.predict(head).frame.forecast.to_numpy(),
                               fc.forecast_origins(full, [np.array([cut])] * 2)[..., 0].ravel(), rtol=1e-6)


@pytest.mark.parametrize("options, message", [
    ({"holidays": "XX"}, "'XX' is not a country the holidays package knows"),
    ({"holidays": "AU-ZZZ"}, "--holidays 'AU-ZZZ'"),
    ({"calendar": "hours"}, "'hours' is not known; use auto, none, or a list of hour, weekday, yearday"),
    ({"calendar_tz": "Mars/Base"}, "--calendar-tz 'Mars/Base' is not a time zone"),
    ({"holidays": "FR", "holiday_window": -1}, "--holiday-window (-1) must be >= 0"),
    ({"static_features": ("past",)}, "static feature 'past' changes within series 'a'"),
    ({"future_features": ("past",), "features": ("past",)}, "by --features and --future-features"),
])
def test_bad_covariate_options_are_one_line(options, message):
    with pytest.raises(InputError, match=None) as exc:
        build_panel(_frame(), DataSpec(**{"target": "y", "time_col": "time", "id_col": "id", **options}))
    assert message in str(exc.value)


def test_integer_steps_have_no_calendar_and_refuse_holidays():
    frame = _frame().assign(time=lambda d: d.groupby("id").cumcount())
    assert build_panel(frame, DataSpec(target="y", time_col="time", id_col="id")).spec.calendar == "none"
    with pytest.raises(InputError, match="--holidays needs dates"):
        build_panel(frame, DataSpec(target="y", time_col="time", id_col="id", holidays="FR"))


def test_a_calendar_model_rolls_past_its_horizon_with_the_calendar_of_each_step(tmp_path):
    frame = _frame()
    panel = build_panel(frame, DataSpec(target="y", time_col="time", id_col="id"))
    fc = train_run(panel, horizon=H, lookback=24, epochs=2, hidden_size=8, seed=0, level=(), ensemble=1).forecaster
    long = fc.predict(horizon=3 * H)
    assert len(long.frame) == 2 * 3 * H and long.recursive and np.isfinite(long.frame.forecast).all()
    np.testing.assert_allclose(long.frame.forecast.to_numpy().reshape(2, -1)[:, :H],
                               fc.predict().frame.forecast.to_numpy().reshape(2, -1))
    saved = artifact.load(artifact.save(fc, tmp_path / "c.gruf"))
    np.testing.assert_allclose(saved.predict(horizon=3 * H).frame.forecast, long.frame.forecast)


def test_old_models_without_covariates_still_rebuild():
    spec = DataSpec(target="y", time_col="t")
    from gruforecast.config import from_stored

    stored = {k: v for k, v in vars(spec).items() if k not in ("future_features", "static_features", "calendar",
                                                                 "holidays", "calendar_tz")}
    old = from_stored(DataSpec, stored)
    assert old.calendar == "none" and old.known == () and old.n_values == 1 and old.derived == ()
    # a model with holidays saved before their ramps reads the indicator alone, as it was trained
    older = from_stored(DataSpec, {k: v for k, v in vars(replace(spec, holidays="FR")).items()
                                   if k != "holiday_window"})
    assert older.holiday_window == 0 and older.derived == ("holiday",)


def test_batch_reads_the_future_key_with_its_date(tmp_path):
    from datetime import date

    from gruforecast.batch import load_jobs, run_job

    _write(tmp_path, _frame())
    (tmp_path / "f.csv").rename(tmp_path / "f-2026-12-02.csv")
    (tmp_path / "jobs.toml").write_text(
        'defaults = {}\n[[jobs]]\nname = "p"\ndata = "h.csv"\ntarget = "y"\ntime_col = "time"\nid_col = "id"\n'
        'future_features = ["driver"]\nfuture = "f-{date}.csv"\nhorizon = 6\nlookback = 24\nepochs = 1\n'
        'hidden_size = 4\nmodel = "m.gruf"\noutput = "out-{date}.csv"\n')
    job = load_jobs(tmp_path / "jobs.toml")[0]
    result = run_job(job, lambda *a: None, today=date(2026, 12, 2))
    assert result.status == "ok", result.error
    assert len(pd.read_csv(tmp_path / "out-2026-12-02.csv")) == 2 * H
    result = run_job(job, lambda *a: None, today=date(2026, 12, 3))  # no future file for that day
    assert result.status == "failed" and "f-2026-12-03.csv" in result.error


def test_a_series_embedding_starts_as_the_model_without_and_learns_each_series_own_state():
    import torch

    from gruforecast.config import ModelConfig
    from gruforecast.model import build_model

    x = torch.randn(4, 24, 1, dtype=torch.float64)
    series = torch.tensor([0.0, 2.0, 2.0, 1.0], dtype=torch.float64)[:, None, None].expand(-1, 24, 1)
    torch.manual_seed(0)
    without = build_model(ModelConfig(level=()), 1, 24, H, season=6).double()
    torch.manual_seed(0)
    with_states = build_model(ModelConfig(level=(), series_embedding=True), 1, 24, H, season=6, n_series=3).double()
    # the other layers draw as without it, and the states start at zero: the same function
    torch.testing.assert_close(with_states(torch.cat([x, series], -1)), without(x), atol=0, rtol=0)
    torch.testing.assert_close(with_states.window_scale_of(torch.cat([x, series], -1)), without.window_scale_of(x))
    with_states(torch.cat([x, series], -1)).sum().backward()
    moved = with_states.series_state.weight.grad.abs().sum(1)
    assert moved[0] > 0 and moved[1] > 0 and moved[2] > 0
    with_states.series_state.weight.grad = None
    with_states(torch.cat([x[1:3], series[1:3]], -1)).sum().backward()  # series 2 alone
    moved = with_states.series_state.weight.grad.abs().sum(1)
    assert moved[0] == 0 and moved[1] == 0 and moved[2] > 0
    with torch.device("meta"), pytest.raises(InputError, match="exact up to 16,777,216 series"):
        build_model(ModelConfig(series_embedding=True), 1, 24, H, n_series=2 ** 24 + 1)
    with torch.device("meta"):
        build_model(ModelConfig(series_embedding=True), 1, 24, H, n_series=2 ** 24)


def test_a_series_embedding_forecasts_each_series_from_its_own_state(tmp_path):
    frame = _frame(ids=("a", "b", "c"))
    panel = build_panel(frame, DataSpec(target="y", time_col="time", id_col="id", calendar="none"))
    fc = train_run(panel, horizon=H, lookback=24, epochs=3, hidden_size=8, seed=0, level=(), ensemble=2,
                   series_embedding=True).forecaster
    states = [m.series_state.weight.detach() for m in fc.model.members]
    assert all(s.shape == (3, 8) and (s.abs().sum(1) > 0).all() for s in states)
    full = fc.predict(horizon=2 * H).frame  # the second H steps rolled on the first
    # one series given alone is forecast with its own state (its index in the model, not
    # in the data given): the same numbers as among the others
    c = frame.loc[frame.id == "c", ["id", "time", "y"]]
    alone = fc.predict(build_panel(c, fc.data_spec), horizon=2 * H).frame
    np.testing.assert_allclose(alone.forecast, full[full.id == "c"].forecast, rtol=1e-6)
    with pytest.raises(InputError, match="learned a state for each series it was trained on"):  # no state for it
        fc.predict(build_panel(c.assign(id="new"), fc.data_spec))
    # the rolled steps too: the first H forecasts taken as data, the next H from them
    first = full[full.id == "c"].head(H).rename(columns={"forecast": "y"})
    rolled = fc.predict(build_panel(pd.concat([c, first]), fc.data_spec)).frame
    np.testing.assert_allclose(rolled.forecast, full[full.id == "c"].forecast[H:], rtol=1e-5)
    saved = artifact.load(artifact.save(fc, tmp_path / "e.gruf"))
    np.testing.assert_allclose(saved.predict(horizon=2 * H).frame.forecast, full.forecast, rtol=1e-6)
    # each series reads its own state: a's zeroed, a's forecasts move and no other's
    for m in fc.model.members:
        m.series_state.weight.data[0] = 0.0
    moved = fc.predict(horizon=2 * H).frame
    assert not np.allclose(moved[moved.id == "a"].forecast, full[full.id == "a"].forecast, rtol=1e-4)
    np.testing.assert_allclose(moved[moved.id != "a"].forecast, full[full.id != "a"].forecast, rtol=1e-6)
