"""Probabilistic forecasts: quantiles that never cross, the point forecast unchanged by
them, conformal coverage, and the interval metrics against hand-computed cases."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT, run_main, train_run

from gruforecast import artifact, metrics
from gruforecast.config import ModelConfig, build_configs
from gruforecast.data import DataSpec, build_panel
from gruforecast.evaluate import records_at, scores, seasonal_naive_quantiles
from gruforecast.model import build_model
from gruforecast.train import conformal_shifts, transfer_shifts


@pytest.mark.parametrize("options", [
    {}, {"quantiles": (0.01, 0.3, 0.5, 0.7, 0.99)}, {"quantiles": (0.2, 0.9)},
    {"ensemble": 3}, {"window_norm": "none"}, {"second_season": 12, "base_seasons": 2},
])
def test_quantiles_never_cross_for_random_weights_and_inputs(options):
    """Property: whatever the weights and the input, every quantile is at or above the
    one below it. Weights are drawn wide (the quantile head's too) and inputs wild."""
    cfg = ModelConfig(**{"ensemble": 1, **options})
    gen = torch.Generator().manual_seed(0)
    for trial in range(20):
        model = build_model(cfg, 2, 24, 5, season=6)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 3)
        x = torch.randn(16, 24, 2, generator=gen, dtype=torch.float32) * 10 ** (trial % 4)
        out = model(x)
        assert out.shape == (16, 5, len(cfg.output_quantiles))
        assert (out.diff(dim=-1) >= 0).all(), trial
        assert torch.isfinite(out).all()


def _panel(n=300, ids=("a", "b", "c"), seed=0):
    """Seasonal series with Gaussian noise: their forecast errors are exchangeable."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    frame = pd.concat([pd.DataFrame({"id": i, "t": t, "y": 10 * (k + 1) + 3 * np.sin(2 * np.pi * t / 12)
                                     + rng.normal(0, 1 + k, n)}) for k, i in enumerate(ids)])
    return build_panel(frame, DataSpec(target="y", time_col="t", id_col="id"))


SMALL = dict(lookback=24, horizon=6, hidden_size=8, epochs=3, ensemble=1, transform="none",
             full_refit=False)


def test_quantiles_leave_the_point_forecast_exactly_as_without():
    """The quantile head trains on the GRU's detached state and its own clipping, and
    draws no random numbers: the same seed gives the same point forecasts, to the bit."""
    with_q = train_run(_panel(), **SMALL, intervals="model")
    without = train_run(_panel(), **SMALL, level=())
    a, b = with_q.forecaster.predict().frame, without.forecaster.predict().frame
    assert list(b.columns) == ["id", "t", "forecast"]
    assert list(a.columns) == ["id", "t", "forecast", "lo-80", "hi-80", "lo-95", "hi-95"]
    np.testing.assert_array_equal(a["forecast"], b["forecast"])
    assert with_q.report["training"]["val_loss"] == without.report["training"]["val_loss"]


def test_conformal_shifts_by_hand():
    """CQR: each quantile moves by the k-th smallest of its one-sided scores."""
    q = (0.1, 0.5, 0.9)
    scores = np.repeat((np.arange(1, 20, dtype=float) - 10)[:, None, None], 3, axis=2)  # -9 .. 9, n = 19
    # k = ceil(0.9 * 20) = 18: the 18th smallest is 8; the low quantile moves down by it
    np.testing.assert_array_equal(conformal_shifts(scores, q), [[-8.0, 0.0, 8.0]])
    # a head that looks too wide (every y well inside: scores negative) is not narrowed
    np.testing.assert_array_equal(conformal_shifts(scores - 20, q), [[0.0, 0.0, 0.0]])


def test_the_refit_shifts_are_lowered_by_its_wider_head_by_hand():
    """The refit's shifts: the early-stopped fit's, less how much wider the refit's head
    already is on the validation windows, down to none; kept where the refit's head is not
    wider; never inward of the refit's head; the median never moves."""
    q = (0.1, 0.5, 0.9)
    shifts = np.array([[-0.5, 0.0, 0.5], [-0.2, 0.0, 0.0]])
    held_out = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    refit = np.array([[1.2, 0.0, 1.8], [0.7, 0.0, 1.1]])
    # step 1: 0.5 - 0.2 below, 0.5 - 0.8 < 0 above; step 2: kept below (the refit's head is
    # narrower there), 0 - 0.1 < 0 above
    np.testing.assert_allclose(transfer_shifts(shifts, held_out, refit, q), [[-0.3, 0.0, 0.0], [-0.2, 0.0, 0.0]])
    np.testing.assert_array_equal(transfer_shifts(shifts, held_out, held_out, q), shifts)  # same head, same shifts


def test_conformal_coverage_on_gaussian_errors_within_a_binomial_tolerance():
    """A head whose band is far too narrow (+-0.5 for N(0, 1) errors) is widened to cover."""
    rng = np.random.default_rng(1)
    q = (0.025, 0.1, 0.5, 0.9, 0.975)
    head = np.array([-0.5, -0.25, 0.0, 0.25, 0.5])
    side = np.array([-1, -1, 0, 1, 1])
    y = rng.normal(size=(2000, 3))
    shifts = conformal_shifts((y[..., None] - head) * side, q)
    bands = head + shifts  # (H, Q)
    new = rng.normal(size=(20000, 3))
    for lo, hi, level in ((1, 3, 0.8), (0, 4, 0.95)):
        covered = ((new >= bands[:, lo]) & (new <= bands[:, hi])).mean()
        # the shifts' own sampling error (n = 2000) dominates: 4 standard errors
        assert abs(covered - level) < 4 * np.sqrt(level * (1 - level) / 2000), (level, covered)


def test_trained_conformal_intervals_cover_on_held_out_windows():
    """End to end on exchangeable noise: the test windows' coverage is near nominal (a
    binomial tolerance on the windows, which are correlated within a window's steps)."""
    run = train_run(_panel(n=600, seed=2), **SMALL, val_frac=0.3, test_frac=0.3)
    model = run.report["test"]["scores"]["model"]
    windows = run.report["test"]["windows"]
    for level in (80, 95):
        p = level / 100
        assert abs(model[f"coverage_{level}"] - p) < 4 * np.sqrt(p * (1 - p) / windows) + 0.02, model
    assert run.report["choices"]["intervals"].startswith("conformal")


def test_a_flat_window_takes_its_series_scale_and_old_models_the_floor():
    """A window whose observed values are all equal has no amplitude of its own: scale 1,
    its series' own (values are scaled per series); files written before this used the
    floor (`flat_scale` absent: False) and keep it. Nearly flat windows keep the floor."""
    from gruforecast.config import from_stored
    from gruforecast.model import GRURegressor

    cfg = ModelConfig(hidden_size=4, by_season=False)
    x = torch.full((3, 14, 1), -0.3, dtype=torch.float64)  # a run of zeros, standardised
    x[1, 5, 0] += 1e-6  # nearly flat: the floor, 1e-3, as before
    x[2, :4, 0] = 2.0  # padded: these rows are padding, and the observed ones are flat
    mask = torch.ones(3, 14, 1, dtype=torch.float64)
    mask[2, :4] = 0.0
    new = GRURegressor(cfg, 2, 14, 7, season=7, observed_scale=True).double()
    assert new.window_scale_of(torch.cat([x, mask], -1)).flatten().tolist() == pytest.approx([1.0, 1e-3, 1.0])
    stored = {k: v for k, v in vars(cfg).items() if k != "flat_scale"}
    old = GRURegressor(from_stored(ModelConfig, stored), 2, 14, 7, season=7, observed_scale=True).double()
    assert old.window_scale_of(torch.cat([x, mask], -1)).flatten().tolist() == pytest.approx([1e-3, 1e-3, 1e-3])


def test_intermittent_counts_get_bands_of_their_own_size():
    """Counts that are mostly zero: windows of zeros once took the floor's scale, so their
    conformal scores were a thousandfold and the 95% shift made from them gave every
    other window a band of hundreds (an upper 95% bound of 2,109 on counts of rate 0.1)."""
    rng = np.random.default_rng(0)
    frame = pd.concat([pd.DataFrame({"id": f"s{k}", "t": np.arange(300), "y": rng.poisson(0.1, 300).astype(float)})
                       for k in range(8)])
    run = train_run(build_panel(frame, DataSpec(target="y", time_col="t", id_col="id")), lookback=14, horizon=7,
                    season=7, hidden_size=8, epochs=3, ensemble=1, transform="none", full_refit=False)
    fc = run.forecaster.predict().frame
    assert fc["hi-95"].max() < 10 and fc["hi-80"].max() < 5, fc.describe()
    assert run.report["test"]["scores"]["model"]["msis_95"] < 50
    # counts never went below zero, so neither do their forecasts and bands
    assert run.forecaster.window_cfg.non_negative and "clipped at 0" in run.report["choices"]["non_negative"]
    assert (fc[["forecast", "lo-95", "lo-80"]] >= 0).all().all() and (fc["lo-95"] == 0).any()


def test_a_rolled_forecast_feeds_back_the_clipped_median():
    """Past the horizon (points only) the forecast is fed back as data: on data that never
    goes below zero it is fed back clipped, as it is written (zero in the model's units),
    not as the negative median the network gave."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"t": np.arange(200), "y": rng.poisson(3.0, 200).astype(float)})
    run = train_run(build_panel(frame, DataSpec(target="y", time_col="t")), lookback=14, horizon=7, season=7,
                    hidden_size=4, epochs=1, ensemble=1, transform="none", full_refit=False, level=())
    fc, seen = run.forecaster, []
    with torch.no_grad():
        fc.model.head.bias.fill_(-50.0)  # every step far below zero before clipping
    network = fc.model.forward
    fc.model.forward = lambda x, future=None: seen.append(x.clone()) or network(x, future)
    full = fc.predict(horizon=14).frame
    assert (full.forecast == 0).all() and len(seen) == 2
    zero = -fc.scaling.loc[0, 0] / fc.scaling.scale[0, 0]
    np.testing.assert_allclose(seen[1][0, -7:, 0].numpy(), zero, rtol=1e-6)  # the second pass read zeros


def test_only_data_that_never_went_below_zero_is_clipped_and_old_files_are_not():
    from gruforecast.config import from_stored
    from gruforecast.windows import WindowConfig

    signed = train_run(_signed_panel(), season=12, second_season=0, **SMALL)
    assert not signed.forecaster.window_cfg.non_negative and "non_negative" not in signed.report["choices"]
    assert (signed.forecaster.predict().frame["lo-95"] < 0).any()  # a band may go below zero here
    stored = {k: v for k, v in vars(WindowConfig(lookback=24, horizon=6, season=12)).items() if k != "non_negative"}
    assert not from_stored(WindowConfig, stored).non_negative  # files written before: no clipping


def _signed_panel():
    """Series around zero: the target goes below zero in the training parts."""
    rng = np.random.default_rng(3)
    t = np.arange(200)
    frame = pd.concat([pd.DataFrame({"id": i, "t": t, "y": np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, 200)})
                       for i in ("a", "b")])
    return build_panel(frame, DataSpec(target="y", time_col="t", id_col="id"))


def test_pinball_and_interval_score_by_hand():
    y, f = np.array([10.0, 10.0]), np.array([8.0, 13.0])
    # q = 0.9: e = 2 -> 0.9 * 2 = 1.8; e = -3 -> 0.1 * 3 = 0.3; mean 1.05
    assert metrics.pinball(y, f, 0.9) == pytest.approx(1.05)
    assert metrics.pinball(y, f, 0.5) == pytest.approx(0.5 * metrics.mae(y, f))
    # 95%: a = 0.05, 2 / a = 40. Inside: width 4. Below lo by 1: width 4 + 40.
    score = metrics.interval_score(np.array([10.0, 7.0]), np.array([8.0, 8.0]), np.array([12.0, 12.0]), 95)
    np.testing.assert_allclose(score, [4.0, 44.0])
    assert metrics.coverage(np.array([10.0, 7.0, 12.0]), np.full(3, 8.0), np.full(3, 12.0)) == pytest.approx(2 / 3)
    # CRPS from one quantile pair and the median: twice the mean pinball
    qs = {0.1: np.array([8.0]), 0.5: np.array([10.0]), 0.9: np.array([12.0])}
    assert metrics.crps_from_quantiles(np.array([11.0]), qs) == pytest.approx(2 * (0.3 + 0.5 + 0.1) / 3)


def test_msis_in_scores_is_the_m4_definition():
    """Records of one series, one origin, two steps: MSIS = mean interval score / scale."""
    frame = pd.DataFrame({"series": "a", "fold": 0, "step": [1, 2], "actual": [10.0, 7.0],
                          "model": [10.0, 10.0], "model_q0.025": [8.0, 8.0], "model_q0.975": [12.0, 12.0],
                          "scale": 2.0})
    s = scores(frame, "model")
    assert s["msis_95"] == pytest.approx((4.0 + 44.0) / 2 / 2.0)
    assert s["coverage_95"] == pytest.approx(0.5)
    assert s["pinball_0.975"] == pytest.approx(np.mean([0.025 * 2, 0.025 * 5]))  # both below f
    # scaled mean pinball: per point the mean over the three quantiles, over the scale
    per_point = [(0.025 * 2 + 0 + 0.025 * 2) / 3, (0.975 * 1 + 0.5 * 3 + 0.025 * 5) / 3]
    assert s["scaled_pinball"] == pytest.approx(np.mean(per_point) / 2.0)


def test_seasonal_naive_quantiles_from_in_sample_residuals():
    y = np.array([0, 1, 0, 2, 0, 4, 0, 8.0])  # m = 2: residuals 0, 1, 0, 2, 0, 4
    out = seasonal_naive_quantiles(y, len(y), 4, 2, (0.5, 1.0))
    np.testing.assert_allclose(out[:, 1], [4, 4, 4 * np.sqrt(2), 4 * np.sqrt(2)])
    np.testing.assert_allclose(out[:, 0], [0.5, 0.5, 0.5 * np.sqrt(2), 0.5 * np.sqrt(2)])
    # the baseline's quantile columns reach the records and its own interval scores
    panel = _panel(n=60, ids=("a",))
    fc = np.repeat(np.zeros((1, 3))[..., None], 3, axis=-1)
    rec = records_at(panel, [np.array([50])], fc, 12, quantiles=(0.1, 0.5, 0.9))
    assert {"seasonal_naive_q0.1", "seasonal_naive_q0.9", "model_q0.9"} <= set(rec.columns)
    assert (rec["seasonal_naive_q0.1"] <= rec["seasonal_naive"]).all()
    assert "coverage_80" in scores(rec, "seasonal_naive") and "coverage_80" not in scores(rec, "naive")


def test_level_quantile_and_interval_options_are_checked():
    assert ModelConfig(level=(90,)).columns == [("lo-90", 0.05), ("hi-90", 0.95)]
    assert ModelConfig(quantiles=(0.05, 0.95)).output_quantiles == (0.05, 0.5, 0.95)
    assert build_configs({"level": "none"}, ModelConfig)[0].output_quantiles == (0.5,)
    for bad, message in [({"level": "80,100"}, "strictly between 0 and 100"),
                         ({"quantiles": "0.5,1.5"}, "strictly between 0 and 1"),
                         ({"level": "eighty"}, "not a list of floats"),
                         ({"intervals": "bootstrap"}, "--intervals 'bootstrap' is not known")]:
        with pytest.raises(Exception, match=message):
            build_configs(bad, ModelConfig)


def test_old_point_models_load_and_forecast_without_intervals():
    art = artifact.load(ROOT / "tests" / "data" / "model_v1.gruf")
    assert art.quantiles == (0.5,) and art.calibration is None
    frame = art.predict().frame
    assert "lo-80" not in frame.columns and np.isfinite(frame["forecast"]).all()


def test_quantile_columns_round_trip_and_info_shows_the_levels(tmp_path, monkeypatch, capsys):
    run = train_run(_panel(n=120), **{**SMALL, "epochs": 1}, quantiles=(0.05, 0.5, 0.95))
    path = artifact.save(run.forecaster, tmp_path / "m.gruf")
    again = artifact.load(path)
    np.testing.assert_array_equal(again.calibration, run.forecaster.calibration)
    frame = again.predict().frame
    assert list(frame.columns) == ["id", "t", "forecast", "q0.05", "q0.5", "q0.95"]
    np.testing.assert_array_equal(frame["q0.5"], frame["forecast"])
    pd.testing.assert_frame_equal(frame, run.forecaster.predict().frame)
    code, out, _ = run_main(monkeypatch, capsys, "info", path)
    text = " ".join(out.replace("│", " ").split())  # the table's cells rejoined where a long one wraps
    assert code == 0 and "quantiles 0.05, 0.5, 0.95" in text and "chose intervals" in text
    stored = json.loads(torch.load(path, weights_only=True)["meta"])["calibration"]
    assert np.array(stored).shape == (6, 3)


def test_batch_keys_set_the_intervals(tmp_path):
    """`level`, `quantiles` and `intervals` are batch keys (lists in TOML, or "none"),
    and reach the model and the batch forecast."""
    from gruforecast.batch import load_jobs, run_job
    from gruforecast.errors import ConfigError

    frame = pd.DataFrame({"t": np.arange(80), "y": np.sin(np.arange(80) / 2.0) + 5})
    frame.to_csv(tmp_path / "s.csv", index=False)
    head = ('[[jobs]]\nname = "s"\ndata = "s.csv"\ntarget = "y"\ntime_col = "t"\nhorizon = 3\n'
            'lookback = 8\nepochs = 1\nhidden_size = 4\nensemble = 1\ntransform = "none"\n'
            'model = "m.gruf"\noutput = "out/{job}.csv"\n')
    (tmp_path / "jobs.toml").write_text(head + 'quantiles = [0.1, 0.9]\nintervals = "model"\n')
    [job] = load_jobs(tmp_path / "jobs.toml")
    assert run_job(job, lambda *a: None).status == "ok"
    assert list(pd.read_csv(tmp_path / "out" / "s.csv").columns) == ["t", "forecast", "q0.1", "q0.9"]
    art = artifact.load(tmp_path / "m.gruf")
    assert art.model_cfg.intervals == "model" and art.calibration is None
    (tmp_path / "jobs.toml").write_text(head + 'level = "none"\nretrain = "always"\n')
    [job] = load_jobs(tmp_path / "jobs.toml")
    assert run_job(job, lambda *a: None).status == "ok"
    assert list(pd.read_csv(tmp_path / "out" / "s.csv").columns) == ["t", "forecast"]
    (tmp_path / "jobs.toml").write_text(head + 'level = [true]\n')
    with pytest.raises(ConfigError, match="level = \\[True\\] .* wrong type"):
        load_jobs(tmp_path / "jobs.toml")


def test_calibrated_quantiles_stay_nested_whatever_the_shifts():
    """Shifts that pull a band inside its inner neighbour (or past the median) are held
    at it: the calibrated quantiles never cross either."""
    from gruforecast.forecaster import Forecaster
    from gruforecast.windows import WindowConfig

    gen = torch.Generator().manual_seed(3)
    cfg = ModelConfig(ensemble=1)
    model = build_model(cfg, 1, 24, 5, season=6)
    rng = np.random.default_rng(3)
    for _ in range(20):
        fc = Forecaster(window_cfg=WindowConfig(lookback=24, horizon=5, season=6), model_cfg=cfg, model=model,
                        calibration=rng.normal(0, 5, size=(5, 5)) * [1, 1, 0, 1, 1])  # the median's is 0
        x = torch.randn(8, 24, 1, generator=gen)
        out = fc._quantiles(x)
        assert (out.diff(dim=-1) >= 0).all()
        torch.testing.assert_close(out[..., 2], model(x)[..., 2], rtol=0, atol=0)  # the median stays


def test_predict_reports_its_passes_for_a_progress_bar():
    """`on_progress(done, total)` after each network pass (batches x roll-out steps of H),
    ending at total: what predict's terminal bar shows (silent in cron)."""
    run = train_run(_panel(n=120), **{**SMALL, "epochs": 1}, level=())
    fc = run.forecaster
    calls = []
    fc.on_progress = lambda done, total: calls.append((done, total))
    fc.predict(horizon=6 * 5)  # 3 series in one batch, 5 passes of H = 6
    assert calls == [(k, 5) for k in range(1, 6)]


def test_naive_weight_combines_the_forecast_with_the_seasonal_naive_and_the_bands_move_with_it():
    """--naive-weight w: the forecast is (1 - w) x the network's + w x the seasonal naive
    (linear scaling, no transform: the same in the data's units), and every quantile moves
    with the median, so the bands keep their widths."""
    from dataclasses import replace

    run = train_run(_signed_panel(), season=12, second_season=0, naive_weight=0.0, **SMALL)
    assert "naive_weight" not in run.report["choices"]  # given, so not chosen
    fc = run.forecaster
    alone = fc.predict().frame
    fc.model_cfg = replace(fc.model_cfg, naive_weight=0.5)
    both = fc.predict().frame
    naive = np.concatenate([s.values[-12:-6, 0] for s in _signed_panel().series])  # last season, 6 steps
    np.testing.assert_allclose(both.forecast, 0.5 * alone.forecast + 0.5 * naive, rtol=1e-5, atol=1e-5)
    assert not np.allclose(both.forecast, alone.forecast)
    for col in ("lo-95", "lo-80", "hi-80", "hi-95"):
        np.testing.assert_allclose(both[col] - both.forecast, alone[col] - alone.forecast, atol=1e-4)


def test_an_unset_naive_weight_is_the_candidate_with_the_best_validation_mase():
    from gruforecast.forecaster import NAIVE_WEIGHT_SERIES

    few = train_run(_signed_panel(), season=12, second_season=0, **SMALL)  # 2 series
    assert few.forecaster.model_cfg.naive_weight == 0.0
    assert few.report["choices"]["naive_weight"].startswith("0: the validation windows come from 2 series, fewer than")
    ids = [f"s{k}" for k in range(NAIVE_WEIGHT_SERIES)]
    run = train_run(_panel(n=120, ids=ids), season=12, second_season=0, **{**SMALL, "lookback": 12})
    why = run.report["choices"]["naive_weight"]
    chosen, rest = why.split(": validation MASE ")
    score = {float(w): float(m) for m, w in (part.split(" with ") for part in rest.split(", "))}
    assert sorted(score) == [0.0, 0.25, 0.5]
    assert float(chosen) == run.forecaster.model_cfg.naive_weight == min(score, key=score.get)
