"""The real command line, run as a subprocess: happy paths, exit codes, messages."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE, run_cli


def test_train_then_predict_on_the_sample_series(co2_model, tmp_path):
    out, proc = co2_model
    assert {"co2.gruf", "co2-forecast.csv", "metrics.json", "report.md", "report.html"} <= {
        p.name for p in out.iterdir()}
    assert "Traceback" not in proc.stderr
    forecast = pd.read_csv(out / "co2-forecast.csv", parse_dates=["week"])
    assert list(forecast.columns) == ["week", "forecast", "lo-80", "hi-80", "lo-95", "hi-95"]
    assert len(forecast) == 52
    bands = forecast[["lo-95", "lo-80", "forecast", "hi-80", "hi-95"]].to_numpy()
    assert (np.diff(bands, axis=1) > 0).all()  # nested, never crossing
    page = (out / "report.html").read_text()
    assert page.index("<h2>The forecast</h2>") < page.index("<h2>Forecasts against actuals</h2>")  # the fan chart first
    assert "## Intervals" in (out / "report.md").read_text()
    # the future continues the weekly (W-SAT) index right after the last observation
    expected = pd.date_range("2002-01-05", periods=52, freq="W-SAT")
    assert (forecast["week"] == expected).all()
    assert forecast["forecast"].between(360, 390).all()  # ppm, around the 2001 level

    # intervals are calibrated on the trained horizon: past it, points only, when asked
    pred = run_cli("predict", out / "co2.gruf", "--horizon", "80", "--out", tmp_path / "f.parquet")
    assert pred.returncode == 2 and "--level none" in pred.stderr and not (tmp_path / "f.parquet").exists()
    pred = run_cli("predict", out / "co2.gruf", "--horizon", "80", "--level", "none", "--out", tmp_path / "f.parquet")
    assert pred.returncode == 0, pred.stderr
    assert "recursively" in pred.stderr
    longer = pd.read_parquet(tmp_path / "f.parquet")
    assert len(longer) == 80
    np.testing.assert_allclose(longer["forecast"][:52], forecast["forecast"], rtol=1e-6)


def test_model_beats_seasonal_naive_on_the_sample_series(co2_model):
    out, proc = co2_model
    assert "season 52, lookback 104, horizon 52, GRU reads 2 steps of 52" in proc.stderr  # by season
    report = json.loads((out / "metrics.json").read_text())
    scores = report["test"]["scores"]
    assert scores["model"]["mase"] < scores["seasonal_naive"]["mase"]
    # Golden figures of the README's demo (seed 0, 1 thread; docs/model.md): a change to the
    # model, the defaults or the data path that moves them must update them knowingly.
    # (--calendar auto, the default since the covariates issue, adds the day of the year:
    # MASE 0.5435 -> 0.5290, MSIS 95 3.835 -> 2.936. Then 0.5243 / 3.250 once weekly data no
    # longer got a constant day-of-week column as well, W-SAT's step having been 5 days.
    # Then 0.5323 / 3.023 with the moving average of the weights, --ema-epochs 1.)
    assert scores["model"]["mase"] == pytest.approx(0.5323, abs=2e-3)
    assert scores["seasonal_naive"]["mase"] == pytest.approx(1.45988, abs=1e-5)
    # intervals: the quantile head widened where the validation windows say (CQR outward; seed 0, 1 thread)
    assert scores["model"]["coverage_95"] == pytest.approx(0.970, abs=0.01)
    assert scores["model"]["coverage_80"] == pytest.approx(0.814, abs=0.02)
    assert scores["model"]["msis_95"] == pytest.approx(3.023, abs=0.05)
    assert scores["model"]["msis_95"] < scores["seasonal_naive"]["msis_95"]
    # the seasonal naive's intervals need no training: exact
    assert scores["seasonal_naive"]["msis_95"] == pytest.approx(6.354822, abs=1e-5)
    assert scores["seasonal_naive"]["coverage_95"] == pytest.approx(0.769231, abs=1e-5)
    assert scores["model"]["mase"] < scores["naive"]["mase"]
    for key in ("gruforecast_version", "data", "config", "seed", "training", "test", "versions"):
        assert key in report
    assert set(scores) == {"model", "naive", "seasonal_naive", "drift"}
    assert {"per_series", "per_step", "skill", "windows"} <= set(report["test"])
    assert report["training"]["seconds"] > 0


def test_panel_with_id_column_and_fresh_data(tmp_path):
    model = tmp_path / "macro.gruf"
    proc = run_cli("train", SAMPLE / "us_macro_quarterly.csv", "--target", "value", "--id-col", "series",
                   "--horizon", "4", "--epochs", "3", "--windows-per-epoch", "200", "--out", model)
    assert proc.returncode == 0, proc.stderr
    data = pd.read_csv(SAMPLE / "us_macro_quarterly.csv")
    data[data["quarter"] < "2008-01-01"].to_csv(tmp_path / "older.csv", index=False)
    pred = run_cli("predict", model, "--data", tmp_path / "older.csv", "--out", tmp_path / "f.csv")
    assert pred.returncode == 0, pred.stderr
    fc = pd.read_csv(tmp_path / "f.csv")
    assert list(fc.columns) == ["series", "quarter", "forecast", "lo-80", "hi-80", "lo-95", "hi-95"]
    assert sorted(fc["series"].unique()) == sorted(data["series"].unique())
    assert (fc.groupby("series")["quarter"].first() == "2008-01-01").all()
    info = run_cli("info", model)
    assert info.returncode == 0 and "realgdp" in info.stdout and "QS-JAN" in info.stdout
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["config"]["train"]["windows_per_epoch"] == 200


def test_integer_steps_continue_the_steps(tmp_path):
    t = np.arange(10, 10 + 3 * 300, 3)
    pd.DataFrame({"t": t, "y": np.sin(t / 7.0)}).to_csv(tmp_path / "steps.csv", index=False)
    proc = run_cli("train", tmp_path / "steps.csv", "--time-col", "t", "--horizon", "6", "--epochs", "2",
                   "--out", tmp_path / "m.gruf")
    assert proc.returncode == 0, proc.stderr
    # integer steps: the season found in the data (sin(t / 7) every 3: 14.7 steps)
    assert "season 15 detected" in proc.stderr and "season 15," in proc.stderr
    fc = pd.read_csv(tmp_path / "m-forecast.csv")
    assert fc["t"].tolist() == [t[-1] + 3 * k for k in range(1, 7)]


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _series_csv(n=200, **overrides):
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=n, freq="D"),
                          "y": np.sin(np.arange(n) / 3.0)})
    for fn in overrides.values():
        frame = fn(frame)
    return frame.to_csv(index=False)


BAD = [
    ("duplicate timestamps", lambda: _series_csv(fn=lambda f: pd.concat([f, f.iloc[[5]]])),
     [], "1 duplicate timestamps, first at 2020-01-06 00:00:00; remove or aggregate them"),
    ("non-numeric target", lambda: _series_csv(fn=lambda f: f.assign(y=f["y"].astype(object)).replace({f["y"].iloc[3]: "abc"})),
     ["--target", "y"], "column 'y' is not numeric: row 5 holds 'abc'; clean the column or choose another"),
    ("too short", lambda: _series_csv(n=20), ["--horizon", "7", "--short-series", "fail"],
     "fewer than lookback"),
    ("empty file", lambda: "", [], "is empty; give a file with a header and rows"),
    ("header only", lambda: "date,y\n", [], "has no rows; give a file with data under the header"),
    ("missing column", lambda: _series_csv(), ["--target", "sales"],
     "column 'sales' (--target) is not in the file; its columns are date, y"),
    ("missing values", lambda: _series_csv(fn=lambda f: f.assign(y=f["y"].where(f.index % 50 != 7))),
     [], "4 missing values or gaps in the time index, first at 2020-01-08 00:00:00; pass --fill interpolate|ffill|zero"),
    ("gap in the index", lambda: _series_csv(fn=lambda f: f.drop(index=[30, 31])),
     [], "2 missing values or gaps in the time index, first at 2020-01-31 00:00:00; pass --fill interpolate|ffill|zero"),
    ("bad fill", lambda: _series_csv(), ["--fill", "mean"], "--fill 'mean' is not known; use one of interpolate, ffill, zero"),
    ("bad horizon", lambda: _series_csv(), ["--horizon", "0"], "--horizon (0) must be >= 1"),
]


@pytest.mark.parametrize("case,content,args,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_exit_2_one_line_no_output(tmp_path, case, content, args, message):
    data = _write(tmp_path, "data.csv", content())
    (tmp_path / "out").mkdir()
    model = tmp_path / "out" / "m.gruf"
    proc = run_cli("train", data, *args, "--out", model)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gruforecast: error: "), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr
    assert not any((tmp_path / "out").iterdir())


def test_gaps_are_filled_when_asked(tmp_path):
    data = _write(tmp_path, "data.csv", _series_csv(fn=lambda f: f.drop(index=[30, 31])))
    proc = run_cli("train", data, "--fill", "interpolate", "--epochs", "1", "--out", tmp_path / "m.gruf")
    assert proc.returncode == 0, proc.stderr


def test_missing_data_file_and_bad_model_file(tmp_path):
    proc = run_cli("train", tmp_path / "nope.csv", "--out", tmp_path / "m.gruf")
    assert proc.returncode == 2 and "does not exist; check the path" in proc.stderr
    fake = _write(tmp_path, "fake.gruf", "date,y\n1,2\n")
    proc = run_cli("predict", fake, "--out", tmp_path / "f.csv")
    assert proc.returncode == 2
    assert "is not a readable gruforecast model" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "f.csv").exists()


def test_usage_error_exits_2():
    proc = run_cli("train")
    assert proc.returncode == 2


def test_every_command_has_help_and_is_documented():
    from pathlib import Path

    docs = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    for command in ("train", "predict", "info", "backtest", "batch", "check"):
        proc = run_cli(command, "--help")
        assert proc.returncode == 0 and "Usage" in proc.stdout
        assert f"gruforecast {command}" in docs


def test_features_are_used_and_limit_the_horizon(tmp_path):
    n = 300
    t = np.arange(n)
    frame = pd.DataFrame({"date": pd.date_range("2022-01-01", periods=n, freq="h"),
                          "temp": np.cos(t / 6.0), "load": np.sin(t / 6.0) + 0.1 * np.cos(t / 6.0)})
    frame.to_csv(tmp_path / "d.csv", index=False)
    model = tmp_path / "m.gruf"
    proc = run_cli("train", tmp_path / "d.csv", "--target", "load", "--features", "temp",
                   "--horizon", "6", "--epochs", "2", "--out", model)
    assert proc.returncode == 0, proc.stderr
    info = run_cli("info", model)
    assert "temp" in info.stdout
    proc = run_cli("predict", model, "--horizon", "12", "--out", tmp_path / "f.csv")
    assert proc.returncode == 2
    assert "beyond the trained horizon 6 and the model uses past features" in proc.stderr
    assert not (tmp_path / "f.csv").exists()
    proc = run_cli("train", tmp_path / "d.csv", "--target", "load", "--features", "humidity",
                   "--out", tmp_path / "m2.gruf")
    assert proc.returncode == 2 and "column 'humidity' (--features) is not in the file" in proc.stderr


def test_cuda_requested_without_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    data = _write(tmp_path, "data.csv", _series_csv())
    proc = run_cli("train", data, "--device", "cuda", "--out", tmp_path / "m.gruf")
    assert proc.returncode == 2
    assert "--device cuda but no CUDA GPU is visible; use --device cpu or auto" in proc.stderr


def test_a_baseline_that_beats_the_model_is_named_in_the_log(capsys):
    """The scores table shows it; a nightly log is read for one line."""
    from gruforecast.cli import _log_better_baselines

    scores = {"model": {"mase": 0.6846}, "naive": {"mase": 3.457}, "seasonal_naive": {"mase": 2.418},
              "seasonal_naive_336": {"mase": 0.5598}, "drift": {"mase": None}}
    _log_better_baselines(scores, "held-out test")
    assert capsys.readouterr().err.strip() == (
        "gruforecast: seasonal_naive_336 beats the model on the held-out test (MASE 0.5598 against 0.6846); "
        "a backtest over more origins tells whether it does so in general")
    _log_better_baselines({**scores, "seasonal_naive_336": {"mase": 0.7}}, "backtest")
    _log_better_baselines({"model": {"mase": None}, "naive": {"mase": 1.0}}, "backtest")  # undefined: silent
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("n, horizon, extra, line", [
    (120, 14, ["--val-frac", "0.1"], "the validation part holds 1 window: early stopping"),  # max(14, 12): one
    (120, 7, ["--val-frac", "0.1"], "the validation part holds 6 windows: early stopping"),  # max(7, 12): 6
    (120, 14, [], None),  # the defaults hold out 3 horizons instead: 29 windows
    (60, 14, [], "the validation part holds 1 window: early stopping"),  # too short to hold out more
    (400, 7, [], None),  # 40 points: 34 windows, nothing said
])
def test_the_log_says_when_validation_reads_few_windows(tmp_path, monkeypatch, capsys, n, horizon, extra, line):
    """One series with a long horizon: where its early stopping and choices still read a
    window or two (--val-frac given, or a series too short to hold out more), the nightly
    log says so (Taylor's demand: one validation week stopped at epoch 3 and lost to last
    week's values)."""
    from conftest import run_main

    data = _write(tmp_path, "d.csv", _series_csv(n=n))
    code, _, err = run_main(monkeypatch, capsys, "train", data, "--horizon", horizon, "--epochs", "1",
                            "--ensemble", "1", "--transform", "none", "--calendar", "none", *extra,
                            "--out", tmp_path / "m.gruf")
    assert code == 0, err
    said = [x for x in err.splitlines() if "the validation part holds" in x]
    if line is None:
        assert said == [], err
    else:
        assert len(said) == 1 and line in said[0], err
