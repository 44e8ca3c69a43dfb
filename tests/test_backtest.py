"""Rolling-origin backtests: no leakage across an origin, baselines on the same origins,
the CLI's reports (JSON, Markdown, HTML) agree, the HTML renders in a real browser, and
the M4 hourly baselines reproduce the official scores."""

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, SAMPLE, run_cli

from gruforecast.backtest import BacktestConfig, run_backtest
from gruforecast.config import ModelConfig, TrainConfig
from gruforecast.data import DataSpec, Series, build_panel
from gruforecast.evaluate import baseline_forecasts, records_at, summarize
from gruforecast.forecaster import cutoff_positions
from gruforecast.report import fmt
from gruforecast.windows import WindowConfig

M4 = ROOT.parent / "shared" / "data" / "m4_hourly.csv"


def _panel(y):
    frame = pd.DataFrame({"t": np.arange(len(y)), "y": y})
    return build_panel(frame, DataSpec(target="y", time_col="t"))


def _run(y, refit=True):
    return run_backtest(_panel(y), WindowConfig(lookback=24, horizon=6, season=12), ModelConfig(hidden_size=8),
                        TrainConfig(epochs=3), cfg=BacktestConfig(folds=3, refit=refit))


@pytest.mark.parametrize("refit", [True, False])
def test_no_value_at_or_after_an_origin_reaches_its_fold(refit):
    """Replace everything from a fold's origin on with garbage: that fold's forecasts (and
    those of the earlier folds) must not move by a bit; the actuals do."""
    y = np.sin(np.arange(300) / 4.0) + np.arange(300) / 100.0
    base = _run(y, refit).records
    first, last = cutoff_positions(_panel(y), 3, 6, 6)[0, [0, -1]]
    for origin, folds_unchanged in ((last, [0, 1, 2]), (first, [0])):
        poisoned = y.copy()
        poisoned[origin:] = 1e6
        rec = _run(poisoned, refit).records
        for k in folds_unchanged:
            np.testing.assert_array_equal(rec[rec.fold == k]["model"], base[base.fold == k]["model"])
            np.testing.assert_array_equal(rec[rec.fold == k]["seasonal_naive"], base[base.fold == k]["seasonal_naive"])
        assert (rec[rec.fold == folds_unchanged[-1]]["actual"] == 1e6).all()


def test_origins_end_at_the_end_of_the_data_step_apart():
    panel = _panel(np.arange(100.0))
    assert cutoff_positions(panel, 3, 6, 6).tolist() == [[82, 88, 94]]
    assert cutoff_positions(panel, 3, 2, 6).tolist() == [[90, 92, 94]]


def test_too_many_folds_is_a_clear_error():
    from gruforecast.errors import InputError

    with pytest.raises(InputError, match="lower --folds or --step"):
        run_backtest(_panel(np.arange(60.0)), WindowConfig(lookback=24, horizon=6, season=12), ModelConfig(),
                     TrainConfig(epochs=1), BacktestConfig(folds=9))  # 6 points before the first


def test_a_series_too_short_for_the_folds_is_named_not_cut_from_its_end():
    """A 12-point series with 3 folds of 6: its first origin is -6. It was cut with
    values[:-6] (its first 6 points, as if from origin 6) and then failed with "-6 points
    before a forecast origin"; now the series is named with the fix."""
    from gruforecast.errors import InputError

    frame = pd.concat([pd.DataFrame({"id": i, "t": np.arange(n), "y": np.sin(np.arange(n) / 2.0)})
                       for i, n in (("long", 200), ("short", 12))])
    panel = build_panel(frame, DataSpec(target="y", time_col="t", id_col="id"))
    with pytest.raises(InputError, match=r"series 'short' has 12 points, too few for 3 folds 6 steps apart with "
                                         r"horizon 6 \(1 such series\); lower --folds or --step"):
        run_backtest(panel, WindowConfig(horizon=6, season=1), ModelConfig(hidden_size=4), TrainConfig(epochs=1),
                     BacktestConfig(folds=3))


@pytest.fixture(scope="module")
def cli_backtest(tmp_path_factory):
    out = tmp_path_factory.mktemp("bt")
    proc = run_cli("backtest", SAMPLE / "us_macro_quarterly.csv", "--target", "value", "--id-col", "series",
                   "--horizon", "4", "--folds", "3", "--epochs", "5", "--report-dir", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_metrics_json_keys_are_stable(cli_backtest):
    report = json.loads((cli_backtest / "metrics.json").read_text())
    assert {"gruforecast_version", "created", "data", "config", "seed", "seconds", "folds", "backtest",
            "versions", "threads"} <= set(report)
    bt = report["backtest"]
    assert {"series", "folds", "points", "mape_undefined_points", "scores", "skill", "per_series",
            "per_fold", "per_step"} <= set(bt)
    assert set(bt["scores"]) == {"model", "naive", "seasonal_naive", "drift"}
    intervals = {"coverage_80", "coverage_95", "msis_80", "msis_95", "scaled_pinball", "crps",
                 *(f"pinball_{q}" for q in (0.025, 0.1, 0.5, 0.9, 0.975))}
    assert set(bt["scores"]["model"]) == {"mae", "rmse", "mape", "smape", "mase", *intervals}
    assert set(bt["scores"]["seasonal_naive"]) == set(bt["scores"]["model"])
    assert set(bt["scores"]["naive"]) == {"mae", "rmse", "mape", "smape", "mase"}
    assert bt["folds"] == 3 and bt["series"] == 5 and len(report["folds"]) == 3
    assert set(bt["per_step"]) == {"1", "2", "3", "4"}
    assert report["data"]["fingerprint_sha256"] and report["config"]["backtest"]["step"] == 4


def test_markdown_report_shows_the_json_numbers(cli_backtest):
    report = json.loads((cli_backtest / "metrics.json").read_text())["backtest"]
    md = (cli_backtest / "report.md").read_text()
    for method, s in report["scores"].items():
        row = f"| {method} | " + " | ".join(fmt(s[k]) for k in ("mae", "rmse", "mape", "smape", "mase")) + " |"
        assert row in md
    for fold, by in report["per_fold"].items():
        assert f"| {fold} | {fmt(by['model']['mae'])} |" in md


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") is None:
        return None
    subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], capture_output=True, timeout=600)
    return shutil.which("chromium")


def test_html_report_renders_in_headless_chromium(cli_backtest, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("Debian chromium is not installed and could not be installed here")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    page = (cli_backtest / "report.html").resolve().as_uri()
    dom = subprocess.run([browser, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert len(re.findall(r"<img [^>]*src=\"data:image/png;base64,", dom.stdout)) == 3
    assert dom.stdout.count("<table>") >= 4 and "seasonal_naive" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,2400", page],
                   capture_output=True, timeout=120)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.std() > 0.05  # plots drawn: far from a blank page
    assert (pixels[..., 2] - pixels[..., 0] > 0.3).any()  # the model's blue lines are on screen


@pytest.mark.skipif(not M4.exists(), reason="../shared/data/m4_hourly.csv is not beside the checkout")
def test_m4_hourly_baselines_reproduce_the_official_scores():
    """Official M4 hourly: seasonal naive sMAPE 13.912 / MASE 1.193; naive 43.003 / 11.608."""
    data = pd.read_csv(M4)
    series, positions, actuals = [], [], []
    for sid, g in data.groupby("unique_id", sort=False):
        y = g["y"].to_numpy()
        n_train = int((g.split == "train").sum())
        series.append(Series(sid, pd.RangeIndex(len(y)), y[:, None]))
        positions.append(np.array([n_train]))
        actuals.append(y[n_train: n_train + 48])
    panel = build_panel(pd.DataFrame({"t": [0, 1, 2], "y": [1.0, 2, 3]}), DataSpec(target="y", time_col="t"))
    panel.series = series
    records = records_at(panel, positions, np.stack(actuals), 24)  # the "model" is the actuals
    summary = summarize(records, groups=())
    snaive, naive = summary["scores"]["seasonal_naive"], summary["scores"]["naive"]
    assert snaive["smape"] == pytest.approx(13.912, abs=5e-4) and snaive["mase"] == pytest.approx(1.193, abs=5e-4)
    assert naive["smape"] == pytest.approx(43.003, abs=5e-4) and naive["mase"] == pytest.approx(11.608, abs=5e-4)
    assert baseline_forecasts(np.arange(30.0), 2, 24)["seasonal_naive"].tolist() == [6, 7]
