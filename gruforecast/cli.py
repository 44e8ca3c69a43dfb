"""The `gruforecast` command line: a thin client over `api`.

This is the only place that turns errors into exit codes: 0 success, 2 bad input or
usage, 1 anything else. A `GruForecastError` prints one line; anything unexpected prints
one line too and the traceback only with `--debug`. Progress bars appear on a terminal
only; in cron (stdout not a TTY) one plain log line per epoch goes to stderr.
"""

from __future__ import annotations

import sys
import traceback
from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .errors import GruForecastError, InputError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Time-series forecasting with a fused-gate GRU: train, predict, inspect.",
)
# Not a terminal (cron, a pipe): no colours (Rich's own rule), and wide enough that tables
# are not wrapped into an unreadable log.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)

Threads = Annotated[int, typer.Option(
    help="torch CPU threads. 1 is the measured-safe default: on a 2-core machine 2 threads "
         "trained 1.2x faster when idle but 2.3x slower while another process was busy "
         "(benchmarks/threads.py).")]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda")]
# The data and model options, shared word for word by train and backtest.
# readable=False: our own loader says "permission denied" in our one-line format.
Data = Annotated[Path, typer.Argument(help="CSV (.csv, .csv.gz) or Parquet file", show_default=False,
                                      readable=False)]
Target = Annotated[str | None, typer.Option(help="target column (default: the only numeric one)")]
TimeCol = Annotated[str | None, typer.Option(help="time column: dates or integer steps (default: detected)")]
IdCol = Annotated[str | None, typer.Option(help="series id column, for many series in long format")]
Features = Annotated[str | None, typer.Option(help="comma-separated covariate columns")]
Lookback = Annotated[int | None, typer.Option(help="input window L (default: 2 seasons or 2 horizons)")]
Horizon = Annotated[int | None, typer.Option(help="forecast horizon H (default: one season)")]
Season = Annotated[int | None, typer.Option(help="season length (default: from the frequency; 1 for integer steps)")]
Freq = Annotated[str | None, typer.Option(help="pandas frequency, when it cannot be inferred")]
Fill = Annotated[str | None, typer.Option(help="fill missing values and gaps: interpolate, ffill or zero")]
Scaler = Annotated[str, typer.Option(help="standard, minmax, robust or none (fitted on train only)")]
Hidden = Annotated[int, typer.Option(help="GRU hidden units")]
Layers = Annotated[int, typer.Option(help="GRU layers")]
Dropout = Annotated[float, typer.Option(help="dropout between GRU layers")]
Epochs = Annotated[int, typer.Option(help="maximum epochs")]
Batch = Annotated[int, typer.Option(help="windows per batch")]
Lr = Annotated[float, typer.Option(help="Adam learning rate")]
Patience = Annotated[int, typer.Option(help="early stopping: epochs without a better validation loss")]
Loss = Annotated[str, typer.Option(help="mae, mse or huber, in each window's own units (see --window-scale)")]
ValFrac = Annotated[float, typer.Option(help="share of each series held out for validation")]
Seed = Annotated[int, typer.Option(help="random seed: same seed, same numbers on CPU")]
ReportDir = Annotated[Path | None, typer.Option(help="where metrics.json, report.md and report.html go")]
Sep = Annotated[str, typer.Option(help="CSV field separator, e.g. ';'")]
Decimal = Annotated[str, typer.Option(help="CSV decimal mark, e.g. ','")]
Thousands = Annotated[str | None, typer.Option(help="CSV thousands separator, e.g. '.' or ','")]
WindowsPerEpoch = Annotated[int | None, typer.Option(help="train on this many randomly drawn windows per epoch (default: all); for long series and large panels")]
WindowNorm = Annotated[str, typer.Option(help="what the network forecasts: seasonal (a correction to the seasonal naive; the last value when the season is 1), last (the change from the last value) or none")]
EnsembleSize = Annotated[int, typer.Option("--ensemble", help="train K models side by side from different initial weights and forecast their median (K times the training time)")]
Transform = Annotated[str, typer.Option(help="log: model the log of the target (positive data; relative errors, multiplicative seasons) or none")]
WindowScale = Annotated[str, typer.Option(help="diff: divide each window by its mean absolute (seasonal) difference, so quiet and wild series weigh alike; none")]
BaseSeasons = Annotated[int, typer.Option(help="the seasonal base forecast is the mean of the window's last K seasons (1: the last season, seasonal naive)")]
LinearPath = Annotated[bool, typer.Option("--linear-path/--no-linear-path", help="add a linear map from the whole window to the horizon beside the GRU (DLinear's); helps long horizons")]
SecondSeason = Annotated[int, typer.Option(help="a second season M (e.g. 168 hours, a week; <= the lookback): the network blends its naive forecast into the base, window by window; 0: none")]
BySeason = Annotated[bool, typer.Option("--by-season/--no-by-season", help="the GRU reads the window a season per step (a week of hours: 7 steps of 24 values); 5-8x faster to train here; needs a season of 2 or more that fits the lookback, else it reads step by step")]
ShortSeries = Annotated[str, typer.Option(help="a series too short to train on: fail, or skip it with a note")]


def _spec(o: dict):
    from .data import DataSpec

    feats = tuple(f.strip() for f in o["features"].split(",") if f.strip()) if o["features"] else ()
    return DataSpec(target=o["target"], time_col=o["time_col"], id_col=o["id_col"], features=feats,
                    fill=o["fill"], freq=o["freq"], sep=o["sep"], decimal=o["decimal"],
                    thousands=o["thousands"])


def _reads(tcfg, season: int, lookback: int) -> str:
    """', GRU reads 7 steps of 24' when the GRU reads the window by season."""
    from .train import reads_by_season

    return f", GRU reads {lookback // season} steps of {season}" * reads_by_season(tcfg, season, lookback)


def _setup(o: dict, test_frac: float):
    """A command's options -> (panel, window config, train config, season), all validated
    before any work. The data is read and checked before torch is imported, so a bad file
    fails in a fraction of a second."""
    from .data import load_panel, season_length

    if o["short_series"] not in ("fail", "skip"):
        raise InputError(f"--short-series {o['short_series']!r} is not known; use fail or skip")
    if o["threads"] < 1:
        raise InputError(f"--threads ({o['threads']}) must be >= 1")
    panel = load_panel(o["data"], _spec(o))
    season = o["season"] if o["season"] is not None else season_length(panel.freq)
    if season < 1:
        raise InputError(f"--season ({season}) must be >= 1")
    from dataclasses import fields

    from . import api
    from .train import TrainConfig

    # Every TrainConfig field with an option of the same name (all but `clip`).
    tcfg = TrainConfig(**{f.name: o[f.name] for f in fields(TrainConfig) if f.name in o})
    api.pick_device(o["device"])
    _threads(o["threads"])
    kwargs = dict(horizon=o["horizon"], lookback=o["lookback"], scaler=o["scaler"], transform=o["transform"],
                  val_frac=o["val_frac"], test_frac=test_frac)
    if o["short_series"] == "skip":
        panel = api.drop_short(panel, api.default_window(panel, season, check=False, **kwargs))
    wcfg = api.default_window(panel, season, **kwargs)
    for note in panel.notes:
        _log(note)
    _log(f"{len(panel.series)} series, {sum(len(s) for s in panel.series)} points, freq "
         f"{panel.freq or f'integer step {panel.step}'}, season {season}, lookback "
         f"{wcfg.lookback}, horizon {wcfg.horizon}{_reads(tcfg, season, wcfg.lookback)}")
    return panel, wcfg, tcfg, season


@app.command()
def train(
    data: Data,
    out_path: Annotated[Path, typer.Option("--out", help="model file to write", show_default=False)],
    target: Target = None, time_col: TimeCol = None, id_col: IdCol = None, features: Features = None,
    lookback: Lookback = None, horizon: Horizon = None, season: Season = None, freq: Freq = None,
    fill: Fill = None, scaler: Scaler = "standard", hidden_size: Hidden = 64, num_layers: Layers = 1,
    dropout: Dropout = 0.0, epochs: Epochs = 50, batch_size: Batch = 64, lr: Lr = 1e-3,
    patience: Patience = 8, loss: Loss = "mae", val_frac: ValFrac = 0.1,
    test_frac: Annotated[float, typer.Option(help="share of each series held out for the test metrics")] = 0.1,
    seed: Seed = 0, device: Device = "auto", threads: Threads = 1, report_dir: ReportDir = None,
    sep: Sep = ",", decimal: Decimal = ".", thousands: Thousands = None,
    short_series: ShortSeries = "fail", window_norm: WindowNorm = "seasonal",
    window_scale: WindowScale = "diff", transform: Transform = "none", ensemble: EnsembleSize = 1,
    base_seasons: BaseSeasons = 1, linear_path: LinearPath = False, second_season: SecondSeason = 0,
    by_season: BySeason = True, windows_per_epoch: WindowsPerEpoch = None,
    forecast_out: Annotated[Path | None, typer.Option(help="forecast file (default: MODEL-forecast.csv beside the model)")] = None,
) -> None:
    """Train a GRU on DATA; write the model, a forecast and the reports."""
    from .atomic import check_output_path

    model_path = check_output_path(out_path, (".gruf", ".pt"))
    forecast_path = check_output_path(
        forecast_out or model_path.with_name(model_path.stem + "-forecast.csv"), (".csv", ".parquet"))
    panel, wcfg, tcfg, season = _setup(locals(), test_frac)
    from . import api

    with _EpochProgress(epochs) as progress:
        run = api.train(panel, wcfg, tcfg, season, device=device, on_epoch=progress.update)
    written = api.save_outputs(run, panel, model_path, report_dir or model_path.parent, forecast_path)
    _print_scores(run.report.get("test"))
    out.print(f"trained in {run.fit.seconds:.1f}s (best epoch {run.fit.best_epoch} of "
              f"{len(run.fit.history)})")
    for name, path in written.items():
        out.print(f"{name + ':':12}{path}")


@app.command()
def backtest(
    data: Data,
    report_dir: Annotated[Path, typer.Option(help="where metrics.json, report.md and report.html go", show_default=False)],
    folds: Annotated[int, typer.Option(help="forecast origins K")] = 3,
    step: Annotated[int | None, typer.Option(help="steps between origins (default: the horizon)")] = None,
    refit: Annotated[bool, typer.Option(help="train a model per fold, or one before the first origin")] = True,
    target: Target = None, time_col: TimeCol = None, id_col: IdCol = None, features: Features = None,
    lookback: Lookback = None, horizon: Horizon = None, season: Season = None, freq: Freq = None,
    fill: Fill = None, scaler: Scaler = "standard", hidden_size: Hidden = 64, num_layers: Layers = 1,
    dropout: Dropout = 0.0, epochs: Epochs = 50, batch_size: Batch = 64, lr: Lr = 1e-3,
    patience: Patience = 8, loss: Loss = "mae", val_frac: ValFrac = 0.1,
    seed: Seed = 0, device: Device = "auto", threads: Threads = 1,
    sep: Sep = ",", decimal: Decimal = ".", thousands: Thousands = None,
    short_series: ShortSeries = "fail", window_norm: WindowNorm = "seasonal",
    window_scale: WindowScale = "diff", transform: Transform = "none", ensemble: EnsembleSize = 1,
    base_seasons: BaseSeasons = 1, linear_path: LinearPath = False, second_season: SecondSeason = 0,
    by_season: BySeason = True, windows_per_epoch: WindowsPerEpoch = None,
) -> None:
    """Rolling-origin backtest of the model and the naive, seasonal naive and drift baselines."""
    from . import api
    from .backtest import BacktestConfig, run_backtest
    from .report import write_reports

    cfg = BacktestConfig(folds=folds, step=step, refit=refit)
    panel, wcfg, tcfg, season = _setup(locals(), 0.0)
    progress = _EpochProgress(epochs * (folds if refit else 1))
    with progress:
        result = run_backtest(panel, wcfg, tcfg, season, cfg, device=device,
                              on_epoch=lambda k, log: progress.update(log, prefix=f"fold {k + 1}/{folds} "))
    report = api.base_report(panel, wcfg, tcfg, season, device)
    report["config"]["backtest"] = {"folds": folds, "step": cfg.step or wcfg.horizon, "refit": refit}
    report["seconds"] = round(result.seconds, 3)
    report["folds"] = [vars(f) for f in result.folds]
    report["backtest"] = result.summary
    losses = [(f"fold {f.fold + 1}", f.train_loss, f.val_loss) for f in result.folds]
    written = write_reports(report_dir, report, result.summary, result.records, panel, losses,
                            f"gruforecast backtest: {Path(data).name}, {folds} folds")
    _print_scores({"windows": folds, "season": season, **result.summary}, title="backtest")
    out.print(f"backtest in {result.seconds:.1f}s ({len(result.folds)} training runs)")
    for name, path in written.items():
        out.print(f"{name + ':':12}{path}")


@app.command()
def check(
    data: Data, target: Target = None, time_col: TimeCol = None, id_col: IdCol = None,
    features: Features = None, fill: Fill = None, freq: Freq = None, sep: Sep = ",",
    decimal: Decimal = ".", thousands: Thousands = None, lookback: Lookback = None,
    horizon: Horizon = None, season: Season = None,
) -> None:
    """Run every data check and report all problems at once; exit 0 when DATA would train."""
    from . import api
    from .data import check_file, season_length
    from .windows import check_lengths

    problems, panel = check_file(data, _spec(locals()))
    if panel is not None:
        m = season if season is not None else season_length(panel.freq)
        try:
            check_lengths(panel, api.default_window(panel, m, horizon=horizon, lookback=lookback, check=False))
        except InputError as exc:
            problems.append(str(exc))
    for problem in problems:
        print(f"gruforecast: problem: {problem}", file=sys.stderr)
    if problems:
        raise InputError(f"{len(problems)} problem(s) in {str(data)!r}; fix them and run check again")
    for note in panel.notes:
        _log(note)
    out.print(f"ok: {len(panel.series)} series, {sum(len(s) for s in panel.series)} points, "
              f"freq {panel.freq or f'integer step {panel.step}'}: would train as given")


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="model file written by train", show_default=False, readable=False)],
    out_path: Annotated[Path, typer.Option("--out", help="forecast file, .csv or .parquet", show_default=False)],
    data: Annotated[Path | None, typer.Option(help="fresh data to forecast from (default: the data stored in the model)",
                                              readable=False)] = None,
    horizon: Annotated[int | None, typer.Option(help="steps to forecast (default: the trained horizon; more rolls forward recursively)")] = None,
    threads: Threads = 1,
) -> None:
    """Forecast from the end of the stored data, or of --data, to a CSV or Parquet file."""
    from .atomic import check_output_path

    path = check_output_path(out_path, (".csv", ".parquet"))
    from . import api, artifact
    from .data import load_panel
    from .forecast import forecast

    _threads(threads)
    art = artifact.load(model)
    panel = load_panel(data, art.data_spec) if data is not None else None
    fc = forecast(art, horizon=horizon, panel=panel)
    if fc.recursive:
        _log(f"horizon {horizon} > trained horizon {art.window_cfg.horizon}: rolled forward recursively")
    api.write_forecast(fc, path)
    out.print(f"forecast: {path} ({len(fc.frame)} rows)")


@app.command()
def info(model: Annotated[Path, typer.Argument(help="model file", show_default=False, readable=False)]) -> None:
    """Show what a model file holds: configuration, data schema, series and test scores."""
    from . import artifact

    art = artifact.load(model)
    spec, w, t = art.data_spec, art.window_cfg, art.train_cfg
    table = Table(title=str(model), show_header=False)
    rows = [
        ("gruforecast", art.package_version),
        ("target", spec.target), ("time column", f"{spec.time_col} ({art.time_dtype})"),
        ("id column", spec.id_col or "-"), ("features", ", ".join(spec.features) or "-"),
        ("frequency", art.freq or f"integer step {art.step}"), ("season", art.season),
        ("lookback / horizon", f"{w.lookback} / {w.horizon}"), ("scaler", w.scaler),
        ("fill", spec.fill or "-"),
        ("GRU", f"{t.ensemble} x " * (t.ensemble > 1) + f"{t.num_layers} layer(s) x {t.hidden_size} units, window norm {t.window_norm}, window scale {t.window_scale}"
                + f", base of {t.base_seasons} seasons" * (t.base_seasons > 1) + ", linear path" * t.linear_path
                + f", second season {t.second_season}" * (t.second_season > 0) + _reads(t, art.season, w.lookback)),
        ("training", f"epochs {t.epochs}, batch {t.batch_size}, lr {t.lr}, loss {t.loss}, seed {t.seed}"),
        ("series", f"{len(art.series_ids)}: {', '.join(art.series_ids[:5])}{' ...' if len(art.series_ids) > 5 else ''}"),
        ("data ends", ", ".join(str(x) for x in art.last_times[:3]) + (" ..." if len(art.last_times) > 3 else "")),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    out.print(table)
    _print_scores(art.metrics.get("test"))


@app.command()
def batch(
    config: Annotated[Path, typer.Argument(help="TOML file of jobs (see docs/cron.md)", show_default=False,
                                           readable=False)],
    only: Annotated[list[str] | None, typer.Option(help="run only this job (repeatable)")] = None,
    dry_run: Annotated[bool, typer.Option(help="check the file and show what would run, run nothing")] = False,
    jobs: Annotated[int, typer.Option("--jobs", help="jobs run in parallel processes")] = 1,
    threads: Annotated[int | None, typer.Option(help="torch threads per job (default: cores // jobs, at least 1)")] = None,
    wait: Annotated[float | None, typer.Option(help="wait up to SECONDS for another run of this file to finish")] = None,
    quiet: Annotated[bool, typer.Option(help="print only failures")] = False,
    log_json: Annotated[bool, typer.Option(help="log events to stderr as JSON lines")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE overriding every job (TOML value)")] = None,
) -> None:
    """Run the forecasting jobs of a TOML file; exit 0 only if every job succeeded."""
    import json
    import os

    from . import batch as b
    from .report import jsonable

    cores = os.cpu_count() or 1
    if jobs < 1:
        raise InputError(f"--jobs ({jobs}) must be >= 1")
    threads = threads if threads is not None else max(1, cores // jobs)
    if threads < 1 or jobs * threads > cores:
        raise InputError(f"--jobs {jobs} x --threads {threads} is more than the {cores} cores; "
                         "oversubscribed torch threads slow a GRU step 100x: lower one of them")
    job_list = b.load_jobs(config, _overrides(set_ or []), only)
    if dry_run:
        for job in job_list:
            plan = "retrain" if b.needs_retrain(job) else "predict with the existing model"
            out.print(f"{job.name}: {plan}; data {job.data}; model {job.model}; output {b.output_path(job)}")
        return
    log = _event_logger(quiet, log_json)
    with b.config_lock(config, wait):
        _threads(threads)
        run = b.run_batch(job_list, jobs, threads, log)
    summary = {"config": str(config.resolve()), "seconds": run.seconds, "exit_code": run.exit_code,
               "jobs": [vars(r) for r in run.results]}
    atomic_text = json.dumps(jsonable(summary), indent=2, allow_nan=False) + "\n"
    from .atomic import atomic_write_text

    atomic_write_text(config.parent / "batch-summary.json", atomic_text)
    if not quiet or run.exit_code:
        _print_batch(run)
    raise typer.Exit(run.exit_code)


def _overrides(pairs: list[str]) -> dict:
    import tomllib

    out_: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InputError(f"--set {pair!r} is not KEY=VALUE; write e.g. --set epochs=20")
        try:
            out_[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out_[key.strip()] = value  # a bare word: a string
    return out_


def _event_logger(quiet: bool, as_json: bool):
    import json
    from datetime import datetime

    def log(job: str, event: str, info: dict) -> None:
        if quiet and event != "failed":
            return
        info = {k: v for k, v in info.items() if v is not None}
        if as_json:
            line = json.dumps({"time": datetime.now(UTC).isoformat(timespec="seconds"),
                               "job": job, "event": event, **info}, default=str)
        else:
            line = f"gruforecast batch: {job}: {event}" + "".join(
                f" {k}={v:.4g}" if isinstance(v, float) else f" {k}={v}" for k, v in info.items())
        print(line, file=sys.stderr, flush=True)

    return log


def _print_batch(run) -> None:
    table = Table(title=f"batch: {len(run.results)} jobs in {run.seconds:.1f}s")
    for col in ("job", "status", "rows", "MASE (validation)", "seconds", "note"):
        table.add_column(col)
    for r in run.results:
        note = r.error or r.kept_old or (r.output or "")
        mase = f"{r.mase:.4g}" if r.mase is not None else "-"
        table.add_row(r.name, r.status, str(r.rows), mase, f"{r.seconds:.2f}", note)
    out.print(table)


def _print_scores(test: dict | None, title: str = "held-out test") -> None:
    if not test:
        return
    unit = "folds" if title == "backtest" else "windows"
    table = Table(title=f"{title}: {test['windows']} {unit}, {test['series']} series, season {test['season']}")
    for col in ("", "MAE", "RMSE", "sMAPE", "MASE"):
        table.add_column(col, justify="right" if col else "left")
    for name, s in test["scores"].items():
        table.add_row(name, *(f"{s[k]:.4g}" if s[k] is not None else "n/a" for k in ("mae", "rmse", "smape", "mase")))
    out.print(table)


class _EpochProgress:
    """A Rich progress bar on a terminal; plain log lines on stderr otherwise."""

    def __init__(self, epochs: int) -> None:
        self.epochs, self.bar, self.task = epochs, None, None

    def __enter__(self) -> _EpochProgress:
        if sys.stderr.isatty():
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("epochs {task.completed}/{task.total}"), BarColumn(),
                                TextColumn("{task.fields[losses]}"), TimeRemainingColumn(),
                                console=err, transient=True)
            self.task = self.bar.add_task("train", total=self.epochs, losses="")
            self.bar.start()
        return self

    def update(self, log, prefix: str = "") -> None:
        val = f" val {log.val_loss:.4f}" if log.val_loss is not None else ""
        text = f"train {log.train_loss:.4f}{val} best {log.best_epoch}"
        if self.bar is not None:
            self.bar.update(self.task, advance=1, losses=prefix + text)
        else:
            _log(f"{prefix}epoch {log.epoch}/{log.epochs} {text} ({log.seconds:.1f}s)")

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _log(message: str) -> None:
    print(f"gruforecast: {message}", file=sys.stderr, flush=True)


def _threads(n: int) -> None:
    import torch

    if n < 1:
        raise InputError(f"--threads ({n}) must be >= 1")
    torch.set_num_threads(n)


def main() -> None:
    """Console entry point: run the app and map errors to exit codes."""
    debug = "--debug" in sys.argv[1:]
    try:
        app()  # standalone: Typer prints usage errors itself and exits 2 (SystemExit)
    except GruForecastError as exc:
        if debug:
            traceback.print_exc()
        print(f"gruforecast: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("gruforecast: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # a bug or an environment failure: one line, exit 1
        if debug:
            traceback.print_exc()
        print(f"gruforecast: unexpected error: {type(exc).__name__}: {exc} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        sys.exit(1)
