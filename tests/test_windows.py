"""Windows, split and scalers: exact windows, no leakage, round trips, O(n) memory."""

import numpy as np
import pandas as pd
import pytest
import torch

from gruforecast.data import DataSpec, build_panel
from gruforecast.scaling import SCALERS, fit_scaler
from gruforecast.train import Flat, gather
from gruforecast.windows import WindowConfig, make_windows


def _panel(values_by_id: dict[str, np.ndarray]):
    rows = [pd.DataFrame({"id": k, "t": np.arange(len(v)), "y": v}) for k, v in values_by_id.items()]
    return build_panel(pd.concat(rows), DataSpec(target="y", time_col="t", id_col="id"))


def test_exact_windows_of_an_arange_series():
    panel = _panel({"a": np.arange(100, dtype=float)})
    w, sc = make_windows(panel, WindowConfig(lookback=5, horizon=3, scaler="none", transform="none"))
    x, y, future = gather(Flat.of(w), torch.from_numpy(w.train[:2]), 5, 3)
    assert future is None  # no column is known in advance
    assert x[:, :, 0].tolist() == [[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]]
    assert y.tolist() == [[5, 6, 7], [6, 7, 8]]


def test_targets_never_cross_the_split_points_nor_series():
    panel = _panel({"a": np.arange(100.0), "b": np.arange(60.0)})
    cfg = WindowConfig(lookback=4, horizon=3, scaler="none", val_frac=0.1, test_frac=0.2, transform="none")
    w, sc = make_windows(panel, cfg)
    for s, (lo, hi) in enumerate(zip(w.offsets[:-1], w.offsets[1:])):
        n_train, n_val, n_test = cfg.part_lengths(hi - lo)
        for part, (a, b) in [(w.train, (0, n_train)), (w.val, (n_train, n_train + n_val)),
                             (w.test, (hi - lo - n_test, hi - lo))]:
            o = part[w.series_of(part) == s] - lo
            assert len(o) and o.min() >= a and o.max() + cfg.horizon <= b  # all H targets inside
            assert o.min() - cfg.lookback >= 0  # inputs never reach into another series


def test_scaler_is_fitted_on_the_training_part_only():
    """Changing the validation and test values must not change the scaler or train windows."""
    base = np.sin(np.arange(200) / 5.0)
    leaked = base.copy()
    cfg = WindowConfig(lookback=10, horizon=5, val_frac=0.1, test_frac=0.1, transform="none")
    n_train = cfg.part_lengths(200)[0]
    leaked[n_train:] += 1000.0  # a wildly different future
    (w1, s1), (w2, s2) = make_windows(_panel({"a": base}), cfg), make_windows(_panel({"a": leaked}), cfg)
    np.testing.assert_array_equal(s1.loc, s2.loc)
    np.testing.assert_array_equal(s1.scale, s2.scale)
    np.testing.assert_array_equal(w1.values[:n_train], w2.values[:n_train])
    np.testing.assert_allclose(s1.loc[0, 0], base[:n_train].mean())


@pytest.mark.parametrize("kind", SCALERS)
def test_scaler_round_trip(kind):
    rng = np.random.default_rng(0)
    train = rng.normal(5, 3, size=(50, 2))
    loc, scale = fit_scaler(train, kind)
    x = rng.normal(5, 3, size=(20, 2))
    np.testing.assert_allclose((x - loc) / scale * scale + loc, x)
    if kind == "minmax":
        np.testing.assert_allclose(((train - loc) / scale).min(0), 0, atol=1e-12)
        np.testing.assert_allclose(((train - loc) / scale).max(0), 1)


def test_short_series_is_a_clear_error():
    from gruforecast.errors import InputError

    with pytest.raises(InputError, match="fewer than lookback 20 \\+ horizon 5"):
        make_windows(_panel({"a": np.arange(12.0)}), WindowConfig(lookback=20, horizon=5, short_series="fail", transform="none"))


def test_a_million_points_cost_o_n_memory_and_train():
    from gruforecast.config import ModelConfig, TrainConfig
    from gruforecast.model import build_model
    from gruforecast.train import fit

    n = 1_000_000
    panel = _panel({"a": np.sin(np.arange(n) / 24.0)})
    w, sc = make_windows(panel, WindowConfig(lookback=48, horizon=12, transform="none"))
    assert w.values.nbytes == n * 4  # the series once, float32; no (windows x L) matrix
    assert len(w.train) > 700_000
    cfg = TrainConfig(epochs=1, windows_per_epoch=2048, batch_size=256)
    result = fit(build_model(ModelConfig(hidden_size=8), 1, w.lookback, 12), w, cfg, torch.device("cpu"))
    assert np.isfinite(result.history[0].train_loss)


def test_log_transform_fits_the_scaler_on_the_log_and_inverts_exactly():
    from gruforecast.scaling import transform_target, untransform_target

    y = np.exp(np.linspace(0.0, 3.0, 60))[:, None]
    w, sc = make_windows(_panel({"a": y[:, 0]}), WindowConfig(lookback=6, horizon=3, transform="log", test_frac=0.0))
    n_train = w.n_train[0]
    logs = np.log(y[:n_train, 0])
    np.testing.assert_allclose(sc.loc[0, 0], logs.mean())
    np.testing.assert_allclose(w.values[:, 0], (np.log(y[:, 0]) - logs.mean()) / logs.std(), rtol=1e-5)
    np.testing.assert_allclose(untransform_target(transform_target(y, "log")[:, 0], "log"), y[:, 0])
    assert transform_target(y, "none") is y


def test_short_series_are_padded_with_a_mask_and_every_series_is_forecast():
    """--short-series pad (the default): a panel of 67-, 14- and 3-point series trains; the
    short ones' windows are padded (first value repeated, mask 0), their held-out parts
    shrink before their training part does, and every series gets a forecast."""
    from conftest import train_run

    rng = np.random.default_rng(0)
    panel = _panel({"long": 10 + np.sin(np.arange(67) / 2) + rng.normal(0, 0.1, 67),
                    "short": 5 + np.arange(14.0), "tiny": np.array([1.0, 2.0, 3.0])})
    run = train_run(panel, horizon=6, lookback=24, epochs=2)
    wcfg = run.forecaster.window_cfg
    assert wcfg.mask and wcfg.short_series == "pad"
    assert wcfg.part_lengths(67) == (53, 7, 7)  # a full window: the usual parts (10%)
    assert wcfg.part_lengths(14) == (8, 6, 0)  # too short for both: the test part goes first
    assert wcfg.part_lengths(12) == (12, 0, 0)  # then the validation part
    assert wcfg.part_lengths(3) == (3, 0, 0)  # no window at all: still forecast
    frame = run.forecaster.predict().frame
    assert sorted(frame["id"].unique()) == ["long", "short", "tiny"]
    assert np.isfinite(frame["forecast"]).all() and len(frame) == 3 * 6
    # the stored tail of the 3-point series: NaN before its first point, the mask says so
    tail = run.forecaster.tail[2, :, 0]
    assert np.isnan(tail[:-3]).all() and tail[-3:].tolist() == [1.0, 2.0, 3.0]
    # predict from fresh data pads the same way: identical to the stored tail's forecast
    again = run.forecaster.predict(panel).frame
    np.testing.assert_allclose(again["forecast"], frame["forecast"], rtol=1e-6)


def test_a_padded_window_is_the_series_start_repeated():
    from gruforecast.windows import window_rows

    values = np.arange(1.0, 6.0)[:, None]
    rows, observed = window_rows(values, np.array([2, 5]), 4)
    assert rows[..., 0].tolist() == [[1, 1, 1, 2], [2, 3, 4, 5]]
    assert observed.tolist() == [[False, False, True, True], [True, True, True, True]]


def test_standard_scaling_of_every_series_at_once_is_scikit_learns():
    """Scaling.fit's one-pass standard scaler gives StandardScaler's numbers per series:
    NaNs left out, a constant column and a single point scaled by 1."""
    from sklearn.preprocessing import StandardScaler

    from gruforecast.scaling import standard_by_series

    rng = np.random.default_rng(1)
    parts = [rng.normal(rng.uniform(-1e3, 1e3), rng.uniform(1e-3, 1e3), size=(n, 3)) for n in (1, 2, 7, 50, 400)]
    parts[2][:, 1] = 4.2  # constant
    parts[3][[3, 9], 0] = np.nan
    parts[4][:, 2] = 1e6 + 1e-10 * np.arange(400)  # constant within rounding
    loc, scale = standard_by_series(parts)
    for k, v in enumerate(parts):
        sk = StandardScaler().fit(v)
        np.testing.assert_allclose(loc[k], sk.mean_, rtol=1e-12)
        np.testing.assert_allclose(scale[k], sk.scale_, rtol=1e-9)


@pytest.mark.parametrize("n_series, n, given, val_frac, parts", [
    (1, 120, None, 0.35, (64, 42, 14)),  # 10% is one window of 14: three horizons instead
    (1, 120, 0.1, 0.1, (92, 14, 14)),  # --val-frac given: kept
    (12, 120, None, 0.1, (92, 14, 14)),  # a window from each of 12 series: enough
    (1, 60, None, 0.1, (32, 14, 14)),  # 2 horizons would leave no full training window: kept
])
def test_one_series_with_a_long_horizon_holds_out_more_than_one_validation_window(
        n_series, n, given, val_frac, parts):
    """Early stopping on a single validation window stopped Taylor's demand at epoch 3;
    where 10% holds fewer than 10 windows in all, the defaults hold out 3 horizons (or 2)
    of each series, as long as every series keeps a full training window."""
    from gruforecast.windows import resolve

    t = np.arange(n)
    panel = _panel({f"s{k}": 10 + np.sin(2 * np.pi * t / 7) + 0.01 * k * t for k in range(n_series)})
    panel, cfg, _ = resolve(panel, WindowConfig(horizon=14, season=7, val_frac=given, transform="none"))
    assert cfg.lookback == 28 and cfg.val_frac == pytest.approx(val_frac)
    assert ("val_frac" in panel.choices) == (given is None and val_frac != 0.1)
    if "val_frac" in panel.choices:
        assert panel.choices["val_frac"].startswith("0.35: at 0.1 the validation parts would hold 1 window in all; "
                                                    "3 horizons of each series are held out")
    assert cfg.part_lengths(n) == parts
    windows, _ = make_windows(panel, cfg)
    assert len(windows.val) == n_series * (parts[1] - 14 + 1)
