"""The training loop: loss falls, a sine is learnt, seeds reproduce, best weights restored."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import train_run

from gruforecast.config import ModelConfig
from gruforecast.data import DataSpec, build_panel
from gruforecast.model import build_model


def _sine_panel(n=600, period=24):
    t = np.arange(n)
    frame = pd.DataFrame({"t": t, "y": np.sin(2 * np.pi * t / period)})
    return build_panel(frame, DataSpec(target="y", time_col="t"))


def _train(panel, **overrides):
    return train_run(panel, **{"lookback": 48, "horizon": 12, "season": 24, "hidden_size": 16, "epochs": 8,
                               "batch_size": 32, **overrides})


def test_a_sine_wave_is_learnt_and_beats_naive():
    run = _train(_sine_panel(), epochs=30)
    losses = [h.train_loss for h in run.fit.history]
    assert losses[-1] < 0.2 * losses[0]
    scores = run.report["test"]["scores"]
    assert scores["model"]["mae"] < 0.5 * scores["naive"]["mae"]


def test_same_seed_same_numbers():
    a, b = _train(_sine_panel()), _train(_sine_panel())
    assert a.report["test"] == b.report["test"]
    assert a.report["training"]["train_loss"] == b.report["training"]["train_loss"]
    c = _train(_sine_panel(), seed=1)
    assert c.report["training"]["train_loss"] != a.report["training"]["train_loss"]


def test_best_weights_are_restored():
    panel = _sine_panel()
    run = _train(panel, epochs=12, lr=0.05, patience=12, full_refit=False)  # a high lr: a bumpy curve
    val = [h.val_loss for h in run.fit.history]
    best = int(np.argmin(val)) + 1
    assert run.fit.best_epoch == best
    # the returned model scores the best epoch's validation loss, not the last one's
    from gruforecast.train import Flat, evaluate_loss
    from gruforecast.windows import make_windows

    w, sc = make_windows(panel, run.forecaster.window_cfg)
    got = evaluate_loss(run.forecaster.model, Flat.of(w), torch.from_numpy(w.val),
                        w, torch.nn.L1Loss())  # the default loss, mae
    assert got == np.float64(min(val)) or abs(got - min(val)) < 1e-6


def test_early_stopping_stops():
    run = _train(_sine_panel(), epochs=200, patience=2, lr=0.05)
    assert run.fit.stopped_early and len(run.fit.history) < 200


def test_ensemble_members_learn_as_if_alone():
    """Members train side by side on the same batches, but each exactly as it would alone:
    member 0 of an ensemble ends with the weights of the single model from the same seed."""
    panel = _sine_panel()
    single = _train(panel, epochs=1, ensemble=1).forecaster.model
    ens = _train(panel, epochs=1, ensemble=3, lookback_spread=1.0).forecaster.model  # all read the whole window
    for name, p in single.state_dict().items():
        torch.testing.assert_close(ens.members[0].state_dict()[name], p, rtol=0, atol=1e-6)
    w0, w1 = (m.gru.weight_hh_l0 for m in ens.members[:2])
    assert not torch.allclose(w0, w1)  # the others started elsewhere


def test_by_season_applies_only_where_a_season_fits_the_window():
    """--by-season (the default) reads a season per step when the season is >= 2 and fits
    the lookback; otherwise the GRU reads step by step (the log line and `info` say which)."""
    cfg = ModelConfig(hidden_size=4)
    assert build_model(cfg, 1, 48, 6, season=24).gru.input_size == 24
    assert build_model(cfg, 1, 48, 6, season=1).gru.input_size == 1
    assert build_model(cfg, 1, 20, 6, season=52).gru.input_size == 1
    assert build_model(ModelConfig(hidden_size=4, by_season=False), 1, 48, 6, season=24).gru.input_size == 1


def test_lookback_spread_members_read_the_last_part_of_the_window():
    """--lookback-spread f: member j of K reads the last round(f_j L) steps, f_j from f to 1,
    never fewer than the season; each member is the single model of that lookback fed the
    window's last steps (the longer history before them changes nothing)."""
    cfg = ModelConfig(hidden_size=4, ensemble=5, lookback_spread=0.5, second_season=0, linear_path=True)
    ens = build_model(cfg, 2, 16, 8, season=4)
    assert [m.reads for m in ens.members] == [8, 10, 12, 14, 16]
    assert cfg.describe(4, 16) == "GRU reads 4 steps of 4; members read the last 8, 10, 12, 14, 16 steps"
    assert replace(cfg, ensemble=1).describe(4, 16) == "GRU reads 4 steps of 4"  # the log and `info`
    assert [m.reads for m in build_model(cfg, 2, 16, 8, season=6).members] == [12, 12, 12, 14, 16]
    assert [m.reads for m in build_model(replace(cfg, second_season=14), 2, 16, 8, season=4).members] == [
        14, 14, 14, 14, 16]
    x = torch.randn(3, 16, 2)
    poisoned = x.clone()
    poisoned[:, :8] = 1e6  # before the shortest member's steps
    for m in ens.members:
        alone = build_model(replace(cfg, ensemble=1), 2, m.reads, 8, season=4)
        alone.load_state_dict(m.state_dict())
        torch.testing.assert_close(m(x), alone(x[:, -m.reads:]), rtol=0, atol=0)
    assert not torch.equal(ens.members[4](x), ens.members[4](poisoned))  # the longest reads it all
    torch.testing.assert_close(ens.members[0](x), ens.members[0](poisoned), rtol=0, atol=0)


def test_sample_by_series_draws_every_series_alike():
    """--sample-by series: a series, then one of its windows. A series of 900 windows and one
    of 10 are drawn about equally often (by window, 90 to 1); series with no windows never;
    where every series holds as many windows the draw is the by-window one, number for number."""
    from gruforecast.train import _epoch_order, _series_order
    from gruforecast.windows import Origins

    origins = Origins(np.array([0, 1000, 2000]), np.array([900, 0, 10]))
    drawn = np.asarray(origins)[_series_order(np.random.default_rng(0), origins, 2000)]
    assert len(drawn) == 910  # as many as the epoch would draw by window
    short = np.mean(drawn >= 2000)
    assert 0.45 < short < 0.55 and not np.any((drawn >= 900) & (drawn < 2000))
    assert set(drawn[drawn >= 2000]) == set(range(2000, 2010))  # every window of the short one
    even = Origins(np.array([0, 100]), np.array([50, 50]))
    np.testing.assert_array_equal(_series_order(np.random.default_rng(3), even, 60),
                                  _epoch_order(np.random.default_rng(3), 100, 60))


def test_the_moving_average_of_the_weights():
    """`_Average` against hand-computed figures: it starts at the initial weights, each update
    moves it toward the weights by 1 - decay, the decay ramping up as (1 + t) / (10 + t) to
    1 - 1 / steps; `swap` exchanges the two sets in place, and twice is as before."""
    from gruforecast.train import _Average

    p = torch.zeros(2)
    avg = _Average([p], steps=2)  # decay 0.5 once the ramp passes it (from the 8th update)
    seen = []
    for t in range(1, 13):
        p.fill_(float(2 ** (t % 5)))
        avg.update()
        seen.append(avg.average[0][0].item())
    assert seen[0] == pytest.approx(2 * 9 / 11)  # 0 + (1 - 2/11) (2 - 0)
    assert seen[7] == pytest.approx(5.905697, abs=1e-6)  # the first update at the full decay
    assert seen[11] == pytest.approx(3.994106, abs=1e-6)
    avg.swap()
    assert p.tolist() == pytest.approx([seen[-1]] * 2) and avg.average[0].tolist() == [4.0, 4.0]
    avg.swap()
    assert p.tolist() == [4.0, 4.0] and avg.average[0].tolist() == pytest.approx([seen[-1]] * 2)


def test_the_average_is_scored_and_kept_while_the_weights_train_on():
    """--ema-epochs changes what is scored and kept, never the training itself: the training
    losses, measured on the trained weights as they go, are the same to the digit with and
    without it (so each epoch goes on from the trained weights, not from their average), the
    validation losses and the kept weights are not."""
    panel = _sine_panel()
    options = {"epochs": 3, "patience": 3, "full_refit": False, "lr": 0.01}
    plain, averaged = _train(panel, ema_epochs=0.0, **options), _train(panel, ema_epochs=1.0, **options)
    assert [h.train_loss for h in averaged.fit.history] == [h.train_loss for h in plain.fit.history]
    assert [h.val_loss for h in averaged.fit.history] != [h.val_loss for h in plain.fit.history]
    kept = [r.forecaster.model.state_dict() for r in (plain, averaged)]
    assert not any(torch.allclose(kept[0][k], kept[1][k]) for k in kept[0] if "weight" in k)


def test_weight_decay_shrinks_the_point_weights_and_spares_the_quantile_head():
    """--weight-decay is AdamW's decoupled decay: zero leaves training exactly as Adam's
    (the default's losses to the digit); a strong decay shrinks the point forecast's
    weights (towards the base forecast) but not the quantile head's, whose gradient never
    reaches the point weights."""
    panel = _sine_panel()
    options = {"epochs": 4, "patience": 4, "full_refit": False, "lr": 0.01, "ema_epochs": 0.0, "ensemble": 1}
    default, zero, decayed = (_train(panel, **options), _train(panel, weight_decay=0.0, **options),
                              _train(panel, weight_decay=5.0, **options))
    assert [h.train_loss for h in zero.fit.history] == [h.train_loss for h in default.fit.history]

    def norms(run):
        model = run.forecaster.model
        spread = {id(p) for p in model.spread.parameters()}
        point = torch.cat([p.detach().flatten() for p in model.point_parameters()]).norm().item()
        head = torch.cat([p.detach().flatten() for p in model.parameters() if id(p) in spread]).norm().item()
        return point, head

    (point0, head0), (point5, head5) = norms(zero), norms(decayed)
    assert point5 < 0.7 * point0
    assert head5 > 0.7 * head0


def test_an_epoch_reads_at_most_points_per_epoch():
    """--points-per-epoch bounds windows x lookback: fewer windows than --windows-per-epoch
    where the lookback is long; 0 (or a model file written before it) leaves the window cap
    alone, and the ensemble's budget counts the windows an epoch really draws."""
    from gruforecast.config import TrainConfig
    from gruforecast.windows import WindowConfig, resolve

    default = TrainConfig()
    assert default.epoch_windows(845) == 4_733 and default.epoch_windows(168) == 20_000
    assert TrainConfig(points_per_epoch=0).epoch_windows(845) == 20_000
    assert TrainConfig(points_per_epoch=None, windows_per_epoch=None).epoch_windows(845) is None
    assert TrainConfig(points_per_epoch=10).epoch_windows(845) == 1
    panel = _sine_panel()
    resolve(panel, WindowConfig(lookback=48, horizon=12, season=24), tcfg=TrainConfig(points_per_epoch=480))
    assert "(10 windows x lookback 48)" in panel.choices["ensemble"]


def test_keep_fit_writes_the_refits_members_then_the_early_stopped_fits(tmp_path):
    """`--keep-fit`: the model written is the refit's members followed by the held-out
    fit's, each exactly as trained alone (the same seed), and it saves and loads as such."""
    from gruforecast.artifact import load, save
    from gruforecast.model import members_of

    def states(model):
        return [m.state_dict() for m in members_of(model)]

    opts = {"epochs": 3, "ensemble": 2, "transform": "none"}
    fit = _train(_sine_panel(), full_refit=False, **opts).forecaster.model
    refit = _train(_sine_panel(), **opts).forecaster.model
    both = _train(_sine_panel(), keep_fit=True, **opts).forecaster
    assert both.model_cfg.fit_members and both.model_cfg.member_lookbacks(48, 24) == [48] * 4
    for got, want in zip(states(both.model), states(refit) + states(fit), strict=True):
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
    x = torch.randn(5, 48, 1)
    assert torch.allclose(both.model(x), torch.stack([m(x) for m in members_of(both.model)]).quantile(0.5, dim=0))
    save(both, tmp_path / "m.gruf")
    again = load(tmp_path / "m.gruf")
    assert again.model_cfg.fit_members and len(members_of(again.model)) == 4
    assert torch.equal(again.model(x), both.model(x))


def test_the_refit_trains_the_best_epoch_scaled_by_the_windows_it_adds():
    """The refit's epochs: early stopping's best, times the windows an epoch of the refit
    draws over the early-stopped fit's (each capped at the epoch's draw), at least one."""
    from gruforecast.train import refit_epochs

    assert refit_epochs(4, 100, 150, None) == 6  # a short panel: the held-out parts add half
    assert refit_epochs(4, 100, 150, 120) == 5  # the refit's epoch capped at 120 windows
    assert refit_epochs(4, 30_000, 40_000, 20_000) == 4  # both draw a full epoch: the same
    assert refit_epochs(1, 100, 110, None) == 1 and refit_epochs(1, 100, 10, None) == 1  # at least one
    run = _train(_sine_panel(), epochs=6, patience=6)  # 600 points: 10% validation and test parts
    fit_windows = run.report["data"]["windows"]["train"]
    refit_windows = 600 - 48 - 12 + 1  # every window of the series
    expected = refit_epochs(run.fit.best_epoch, fit_windows, refit_windows, None)
    assert expected > run.fit.best_epoch  # the parts add 120 points of 600
    assert run.report["training"]["refit"]["epochs"] == expected
