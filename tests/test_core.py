"""The forecaster core: one definition of every option, one forecasting path, --debug,
--version, literal user strings, batch through the shared loader, predict --cutoffs, and
a light cold start. In-process where a subprocess would only add the torch import."""

import subprocess
import sys
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import pytest
import typer
from conftest import ROOT, SAMPLE, run_main, train_run
from typer.testing import CliRunner

from gruforecast import artifact, cli
from gruforecast.batch import _TYPES, load_jobs, run_job
from gruforecast.config import (
    ModelConfig,
    TrainConfig,
    build_configs,
    from_stored,
    option,
    option_fields,
    with_config_options,
)
from gruforecast.data import DataSpec, build_panel, load_panel
from gruforecast.windows import WindowConfig

CONFIGS = (DataSpec, WindowConfig, ModelConfig, TrainConfig)


def _panel(ids=("a", "b"), n=120, id_col="id"):
    t = np.arange(n)
    frame = pd.concat([pd.DataFrame({id_col: i, "t": t, "y": 10 + k + np.sin(t / 3.0) + 0.01 * t})
                       for k, i in enumerate(ids)])
    return frame, build_panel(frame, DataSpec(target="y", time_col="t", id_col=id_col))


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("core")
    frame, panel = _panel()
    frame.to_csv(folder / "data.csv", index=False)
    run = train_run(panel, lookback=12, horizon=4, season=6, hidden_size=4, epochs=2)
    return folder, artifact.save(run.forecaster, folder / "m.gruf"), run.forecaster


def _commands():
    return {c.name: c for c in typer.main.get_command(cli.app).commands.values()}


def test_every_option_field_reaches_the_cli_batch_keys_and_the_docs():
    """A new option is one field: each config field is an option of train (and backtest,
    but for test_frac), a batch key, and listed in docs/cli.md."""
    commands = _commands()
    doc = (ROOT / "docs" / "cli.md").read_text()
    for cls in CONFIGS:
        for f in option_fields(cls):
            flag = "--" + f.name.replace("_", "-")
            for name in ("train", "backtest"):
                if name == "backtest" and f.name == "test_frac":
                    continue
                opts = {o for p in commands[name].params for o in p.opts}
                assert flag in opts, (name, flag)
            assert f.name == "test_frac" or f.name in _TYPES, f.name
            assert f"`{flag}`" in doc, f"docs/cli.md lacks {flag}"
            assert f.metadata["help"]


def test_docs_list_every_command_and_option():
    """docs/cli.md names every command and every option of the real Typer app."""
    doc = (ROOT / "docs" / "cli.md").read_text()
    for name, command in _commands().items():
        assert f"## gruforecast {name}" in doc, name
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    assert opt in doc, f"docs/cli.md: {name} {opt}"
    for opt in ("--debug", "--version"):
        assert opt in doc


def test_the_option_machinery_on_a_new_config():
    """What a new field gets without any other edit: a typed CLI option with its help,
    a value from flat keys, and its `absent` value when a stored config lacks it."""
    @dataclass(frozen=True)
    class Extra:
        width: int = option(3, "a new width")
        fancy: bool = option(True, "a new switch", absent=False)
        names: tuple[str, ...] = option((), "some names")

    app = typer.Typer()

    @app.command()
    @with_config_options(Extra)
    def go(**config) -> None:
        print(build_configs(config, Extra)[0])

    result = CliRunner().invoke(app, ["--width", "5", "--no-fancy", "--names", "a, b"])
    assert result.exit_code == 0, result.output
    assert "Extra(width=5, fancy=False, names=('a', 'b'))" in result.output
    assert "a new width" in CliRunner().invoke(app, ["--help"]).output
    assert from_stored(Extra, {"width": 7}) == Extra(width=7, fancy=False)
    assert from_stored(Extra, {"width": 7, "gone": 1, "fancy": True}) == Extra(width=7, fancy=True)


def test_info_prints_every_stored_field_literally(tmp_path, monkeypatch, capsys):
    """`info` lists the stored configs generically; an id like "[/]" is shown as written."""
    _, panel = _panel(ids=("[/]", "[bold]x"))
    run = train_run(panel, lookback=12, horizon=4, season=6, hidden_size=4, epochs=1)
    path = artifact.save(run.forecaster, tmp_path / "m.gruf")
    code, out, err = run_main(monkeypatch, capsys, "info", path)
    assert code == 0, err
    assert "[/]" in out and "[bold]x" in out
    for cls in (WindowConfig, ModelConfig, TrainConfig):
        for f in fields(cls):
            assert f.name in out, f.name


def test_debug_shows_the_traceback_of_an_unexpected_error(small_model, monkeypatch, capsys):
    _, model, _ = small_model

    def broken(path):
        raise RuntimeError("boom")

    monkeypatch.setattr(artifact, "load", broken)
    code, _, err = run_main(monkeypatch, capsys, "info", model)
    assert code == 1 and "Traceback" not in err
    assert err.strip() == "gruforecast: unexpected error: RuntimeError: boom (rerun with --debug for the traceback)"
    code, _, err = run_main(monkeypatch, capsys, "--debug", "info", model)
    assert code == 1 and "Traceback (most recent call last)" in err and 'raise RuntimeError("boom")' in err


def test_version(monkeypatch, capsys):
    from gruforecast import __version__

    code, out, _ = run_main(monkeypatch, capsys, "--version")
    assert code == 0 and out.strip() == f"gruforecast {__version__}"


def test_main_hands_the_collector_back_as_it_found_it(small_model, tmp_path, monkeypatch, capsys):
    """`main` turns the cyclic collector off for the imports and `_threads` freezes what
    they made; a caller in the same process gets it back on, with nothing frozen, after a
    command that imports torch, one that does not, and one that fails."""
    import gc

    _, model, _ = small_model
    for argv in (("predict", model, "--out", tmp_path / "f.csv"), ("--version",), ("info", tmp_path / "none.gruf")):
        run_main(monkeypatch, capsys, *argv)
        assert gc.isenabled() and gc.get_freeze_count() == 0, argv


def test_an_output_path_with_markup_is_written_and_printed_literally(small_model, tmp_path, monkeypatch, capsys):
    _, model, _ = small_model
    target = tmp_path / "o[b]p[red].csv"
    code, out, err = run_main(monkeypatch, capsys, "predict", model, "--out", target)
    assert code == 0, err
    assert str(target) in out and target.exists()


def test_predict_at_cutoffs(small_model, tmp_path, monkeypatch, capsys):
    """predict --cutoffs N --step S: one row per (id, cutoff, time), the last window ending
    at the end of the data, the actual beside; forecasts from forecast_origins itself, and
    no value at or after a cutoff reaches its forecast."""
    folder, model, fc = small_model
    out = tmp_path / "cv.csv"
    code, _, err = run_main(monkeypatch, capsys, "predict", model, "--data", folder / "data.csv",
                            "--cutoffs", 5, "--step", 2, "--out", out)
    assert code == 0, err
    cv = pd.read_csv(out)
    assert list(cv.columns) == ["id", "t", "cutoff", "forecast", "lo-80", "hi-80", "lo-95", "hi-95", "actual"]
    assert (cv["lo-95"] <= cv["lo-80"]).all() and (cv["hi-80"] <= cv["hi-95"]).all()
    assert len(cv) == 2 * 5 * 4
    a = cv[cv.id == "a"]
    assert sorted(a.cutoff.unique()) == [107, 109, 111, 113, 115]  # n - H - k S - 1, n = 120
    assert (a.groupby("cutoff").t.min() == a.groupby("cutoff").t.min().index + 1).all()
    frame, panel = _panel()
    y = frame[frame.id == "a"].set_index("t")["y"]
    np.testing.assert_allclose(a.actual, y.loc[a.t].to_numpy())
    direct = fc.forecast_origins(panel, [np.array([108, 110, 112, 114, 116])] * 2)  # (n, H, Q)
    np.testing.assert_allclose(cv.forecast.to_numpy(), direct[..., fc.median].ravel(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(cv["hi-95"].to_numpy(), direct[..., -1].ravel(), rtol=0, atol=1e-9)
    poisoned = panel.series[0].values.copy()
    poisoned[112:] = 1e6
    panel.series[0].values = poisoned
    again = fc.predict_at(panel, 5, 2).frame
    np.testing.assert_allclose(again.forecast.to_numpy()[:3 * 4], cv.forecast.to_numpy()[:3 * 4], rtol=1e-12)
    assert not np.allclose(again.forecast.to_numpy()[3 * 4: 5 * 4], cv.forecast.to_numpy()[3 * 4: 5 * 4])
    code, _, err = run_main(monkeypatch, capsys, "predict", model, "--cutoffs", 3, "--out", out)
    assert code == 2 and "--cutoffs needs --data" in err
    code, _, err = run_main(monkeypatch, capsys, "predict", model, "--data", folder / "data.csv",
                            "--cutoffs", 100, "--out", out)
    assert code == 2 and "too few for 100 cutoffs 4 steps apart" in err
    out.unlink()
    code, _, err = run_main(monkeypatch, capsys, "predict", model, "--data", folder / "data.csv",
                            "--cutoffs", 2, "--step", 0, "--out", out)  # once read as "the horizon"
    assert code == 2 and "--cutoffs (2) and --step (0) must be >= 1" in err and not out.exists()


def test_predict_fills_the_gaps_of_fresh_data_when_asked(small_model, tmp_path, monkeypatch, capsys):
    """The gaps message names --fill, and predict takes it (it did not: the hint named an
    option only train had); --fill ffill forecasts as if the last value had been repeated."""
    folder, model, fc = small_model
    frame = pd.read_csv(folder / "data.csv")
    gappy = frame.assign(y=frame.y.where(frame.t < 118))  # each series' last two values missing
    gappy.to_csv(tmp_path / "gappy.csv", index=False)
    out = tmp_path / "p.csv"
    code, _, err = run_main(monkeypatch, capsys, "predict", model, "--data", tmp_path / "gappy.csv", "--out", out)
    assert code == 2 and "pass --fill interpolate|ffill|zero" in err and not out.exists()
    code, _, err = run_main(monkeypatch, capsys, "predict", model, "--data", tmp_path / "gappy.csv",
                            "--fill", "ffill", "--out", out)
    assert code == 0, err
    filled = frame.assign(y=frame.y.where(frame.t < 118, frame.groupby("id").y.transform(lambda v: v.iloc[117])))
    filled.to_csv(tmp_path / "filled.csv", index=False)
    code, _, err = run_main(monkeypatch, capsys, "predict", model, "--data", tmp_path / "filled.csv",
                            "--out", tmp_path / "q.csv")
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(tmp_path / "q.csv"))
    code, _, err = run_main(monkeypatch, capsys, "predict", model, "--fill", "zero", "--out", out)
    assert code == 2 and "--fill fills the gaps of --data" in err


def test_predict_forecasts_series_it_was_not_trained_on_in_their_own_units(small_model, tmp_path, monkeypatch,
                                                                            capsys):
    """A new series in --data (a store opened since training) is forecast, scaled on its
    own history, where it was refused: c, a copy of a under a new name, and d, three times
    it, get forecasts in the ratio 3 (scaling is per series, and 3x is a shift after the
    log too); the trained series forecast as without them. At cutoffs it is refused."""
    folder, model, fc = small_model
    frame = pd.read_csv(folder / "data.csv", dtype={"id": str})
    a = frame[frame.id == "a"]
    pd.concat([frame, a.assign(id="c"), a.assign(id="d", y=3 * a.y)]).to_csv(tmp_path / "new.csv", index=False)
    code, _, err = run_main(monkeypatch, capsys, "predict", model, "--data", tmp_path / "new.csv",
                            "--out", tmp_path / "p.csv")
    assert code == 0 and "2 series not in training (first: 'c') forecast in units of their own history" in err
    p = pd.read_csv(tmp_path / "p.csv", dtype={"id": str})
    c, d = p[p.id == "c"], p[p.id == "d"]
    for col in ("forecast", "lo-95", "hi-80"):
        np.testing.assert_allclose(d[col].to_numpy(), 3 * c[col].to_numpy(), rtol=1e-5)
    known = fc.predict(build_panel(frame, fc.data_spec)).frame
    pd.testing.assert_frame_equal(p[p.id.isin(["a", "b"])].reset_index(drop=True),
                                  known.assign(t=known.t.astype("int64")).reset_index(drop=True), check_dtype=False)
    code, _, err = run_main(monkeypatch, capsys, "predict", model, "--data", tmp_path / "new.csv", "--cutoffs", 2,
                            "--out", tmp_path / "q.csv")
    assert code == 2 and "series 'c' is not in the model, and forecasts at cutoffs take only trained series" in err
    pd.concat([frame, a.assign(id="e", y=-a.y)]).to_csv(tmp_path / "neg.csv", index=False)  # the model clips at 0
    code, _, err = run_main(monkeypatch, capsys, "predict", model, "--data", tmp_path / "neg.csv",
                            "--out", tmp_path / "q.csv")
    assert code == 2 and "series 'e' is not in the model and goes below zero" in err


def test_predict_skips_a_series_too_short_to_forecast_when_asked(small_model, tmp_path, monkeypatch, capsys):
    """A new store with a week of history stopped the whole night's forecast (exit 2).
    With --short-series skip it is named on stderr and the others are forecast, exactly
    as without it; by default it is still refused."""
    folder, model, fc = small_model
    frame = pd.read_csv(folder / "data.csv", dtype={"id": str})
    new = frame[frame.id == "a"].tail(5).assign(id="new")  # the model reads 12
    pd.concat([frame, new]).to_csv(tmp_path / "new.csv", index=False)
    code, _, err = run_main(monkeypatch, capsys, "predict", model, "--data", tmp_path / "new.csv", "--out", tmp_path / "p.csv")
    assert code == 2 and "series 'new' has 5 points before a forecast origin, fewer than the 12" in err
    assert not (tmp_path / "p.csv").exists()
    code, _, err = run_main(monkeypatch, capsys, "predict", model, "--data", tmp_path / "new.csv", "--out", tmp_path / "p.csv",
                            "--short-series", "skip")
    assert code == 0 and "skipped 1 series too short to forecast (first: 'new', 5 points; the model needs 12)" in err
    p = pd.read_csv(tmp_path / "p.csv", dtype={"id": str})
    known = fc.predict(build_panel(frame, fc.data_spec)).frame
    pd.testing.assert_frame_equal(p.reset_index(drop=True), known.assign(t=known.t.astype("int64")).reset_index(drop=True),
                                  check_dtype=False)
    code, _, err = run_main(monkeypatch, capsys, "predict", model, "--data", tmp_path / "new.csv", "--out", tmp_path / "q.csv",
                            "--short-series", "skip", "--cutoffs", 2)
    assert code == 2 and "pass --data FILE, without --cutoffs" in err


def test_a_trained_series_gone_below_zero_is_refused_where_the_model_clips_at_zero():
    """Its forecasts were all 0, with bands of no width, written with exit 0."""
    from gruforecast.errors import InputError

    frame, panel = _panel()
    fc = train_run(panel, lookback=12, horizon=4, season=6, hidden_size=4, epochs=1, transform="none").forecaster
    assert fc.window_cfg.non_negative
    moved = frame.reset_index(drop=True)
    moved.loc[moved.id == "a", "y"] -= 50.0  # about -40
    first = moved.index[moved.id == "a"][-12]  # the first row of the last window
    with pytest.raises(InputError, match=f"series 'a' has {moved.loc[first, 'y']:g} at {moved.loc[first, 't']}, and "
                                         "the model clips its forecasts at zero"):
        fc.predict(build_panel(moved, fc.data_spec))
    fc.predict(build_panel(frame, fc.data_spec))  # the data it was trained on: no refusal


def test_a_new_series_the_models_log_cannot_read_is_refused_with_its_name():
    """A log model meets a new series with a zero: one line naming it, not the training
    hint '--transform none', which predict has no use for."""
    from gruforecast.errors import InputError

    frame, panel = _panel()
    fc = train_run(panel, lookback=12, horizon=4, season=6, hidden_size=4, epochs=1, transform="log").forecaster
    new = frame[frame.id == "a"].assign(id="z")
    new.loc[new.index[3], "y"] = 0.0
    with pytest.raises(InputError, match="series 'z' is not in the model and is not above zero everywhere"):
        fc.predict(build_panel(pd.concat([frame, new]), fc.data_spec))
    # a trained series with a zero in the rows it reads: named with its time, and no
    # "use --transform none" at row 12 of a window (the scaler's words, for train)
    seen = frame.reset_index(drop=True)
    last_a = seen.index[seen.id == "a"][-2]
    seen.loc[last_a, "y"] = 0.0
    with pytest.raises(InputError, match=f"series 'a' has 0 at {seen.loc[last_a, 't']}, and the model reads the log"):
        fc.predict(build_panel(seen, fc.data_spec))


def test_forecasts_at_origins_are_made_in_blocks_of_exactly_the_batch(small_model, monkeypatch):
    """forecast_origins cuts its inputs into blocks of BATCH rows across series (the
    forward batches of one big block), each row in place: the same forecasts with blocks of
    5 rows as with one block."""
    from gruforecast import forecaster

    pieces = [(np.arange(a, b)[:, None], -np.arange(a, b)[:, None]) for a, b in [(0, 3), (3, 4), (4, 16), (16, 18)]]
    blocks = list(forecaster._blocks(iter(pieces), 5))
    assert [len(x) for x, _ in blocks] == [5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in blocks]).ravel(), np.arange(18))
    np.testing.assert_array_equal(np.concatenate([a for _, a in blocks]).ravel(), -np.arange(18))
    _, _, fc = small_model
    _, panel = _panel()
    positions = [np.arange(60, 113, 4), np.arange(50, 117, 3)]  # 14 and 23 origins
    whole = fc.forecast_origins(panel, positions)
    monkeypatch.setattr(forecaster, "BATCH", 5)
    cut = fc.forecast_origins(panel, positions)
    assert cut.shape == whole.shape == (37, fc.horizon, len(fc.quantiles))
    np.testing.assert_allclose(cut, whole, rtol=1e-6, atol=1e-9)


def test_a_semicolon_job_reads_through_the_shared_loader(tmp_path):
    """A job's data keys (sep, decimal) reach the loader `train` uses."""
    frame, _ = _panel()
    frame.to_csv(tmp_path / "semi.csv", sep=";", decimal=",", index=False)
    (tmp_path / "jobs.toml").write_text(
        'defaults = {}\n[[jobs]]\nname = "semi"\ndata = "semi.csv"\nsep = ";"\ndecimal = ","\n'
        'target = "y"\ntime_col = "t"\nid_col = "id"\nhorizon = 4\nlookback = 12\nseason = 6\n'
        'epochs = 1\nhidden_size = 4\nmodel = "m.gruf"\noutput = "out/{job}.csv"\n')
    [job] = load_jobs(tmp_path / "jobs.toml")
    result = run_job(job, lambda *a: None)
    assert result.status == "ok", result.error
    assert len(pd.read_csv(tmp_path / "out" / "semi.csv")) == 2 * 4
    assert artifact.load(tmp_path / "m.gruf").model_cfg.hidden_size == 4


def test_a_meta_that_claims_a_huge_model_is_refused_before_allocating(small_model, tmp_path):
    import json

    import torch

    _, model, _ = small_model
    payload = torch.load(model, weights_only=True)
    meta = json.loads(payload["meta"])
    meta["model_cfg"]["hidden_size"] = 12_000  # 1.7e9 weights if built
    payload["meta"] = json.dumps(meta)
    payload["checksum"] = artifact.checksum(payload)
    torch.save(payload, tmp_path / "huge.gruf")
    with pytest.raises(artifact.ArtifactError, match="is damaged"):
        artifact.load(tmp_path / "huge.gruf")


def test_the_network_returns_horizon_by_quantiles():
    import torch

    from gruforecast.model import build_model

    for ensemble in (1, 3):
        model = build_model(ModelConfig(hidden_size=4, ensemble=ensemble), 1, 12, 5, 6)
        assert model(torch.randn(7, 12, 1)).shape == (7, 5, 5)  # 80% and 95% and the median
        model = build_model(ModelConfig(hidden_size=4, ensemble=ensemble, level=()), 1, 12, 5, 6)
        assert model(torch.randn(7, 12, 1)).shape == (7, 5, 1)


def test_predict_info_and_check_stay_light(small_model):
    """Cold start: predict, info and check import neither scikit-learn, scipy nor
    matplotlib (one real process runs all three, then reads sys.modules)."""
    folder, model, _ = small_model
    script = f"""
import sys
from gruforecast import cli
for args in (["check", {str(folder / 'data.csv')!r}, "--target", "y", "--time-col", "t", "--id-col", "id"],
             ["predict", {str(model)!r}, "--out", {str(folder / 'light.csv')!r}],
             ["info", {str(model)!r}]):
    sys.argv = ["gruforecast", *args]
    try:
        cli.main()
    except SystemExit as exc:
        assert not exc.code, (args, exc.code)
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & {{'sklearn', 'scipy', 'matplotlib'}})
print('HEAVY', heavy)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout


def test_load_panel_reads_a_glob_as_one_table(tmp_path):
    frame, _ = _panel(ids=("a", "b", "c"))
    for i in ("a", "b", "c"):
        frame[frame.id == i].to_csv(tmp_path / f"part-{i}.csv", index=False)
    panel = load_panel(tmp_path / "part-*.csv", DataSpec(target="y", time_col="t", id_col="id"))
    assert [s.id for s in panel.series] == ["a", "b", "c"] and len(panel.fingerprint) == 64
    assert SAMPLE.exists()


def test_the_generated_options_table_is_current(tmp_path):
    import shutil

    from gruforecast.config import update_options_doc

    copy = tmp_path / "cli.md"
    shutil.copy(ROOT / "docs" / "cli.md", copy)
    assert not update_options_doc(copy), "docs/cli.md's options table is stale: run `make docs`"
