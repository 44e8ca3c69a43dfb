"""The `gruforecast` command line: a thin client over `forecaster`, `backtest` and `batch`.

This is the only place that turns errors into exit codes: 0 success, 2 bad input or
usage, 1 anything else. A `GruForecastError` prints one line; anything unexpected prints
one line too and the traceback only with `gruforecast --debug`. Progress bars appear on a
terminal only; in cron (stdout not a TTY) one plain log line per epoch goes to stderr.
The options of the configs (data, windows, model, training) are made from their fields
(`config.py`), once for `train`, `backtest` and `check`.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
from dataclasses import replace
from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .config import ModelConfig, TrainConfig, build_configs, with_config_options
from .data import DataSpec
from .errors import GruForecastError, InputError
from .windows import WindowConfig

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Time-series forecasting with a fused-gate GRU: train, predict, inspect.",
)


@functools.cache
def console(stderr: bool = False):
    """Rich's console for stdout (or stderr), made on first use: importing Rich costs a cold
    `predict` about 25 ms. Not a terminal (cron, a pipe): no colours (Rich's own rule), and
    wide enough that tables are not wrapped into an unreadable log. markup=False: paths, ids
    and column names are user strings, shown as written ("[/]" in a file name is not a tag)."""
    from rich.console import Console

    if stderr:
        return Console(stderr=True, highlight=False, markup=False)
    return Console(highlight=False, markup=False, width=None if sys.stdout.isatty() else 160)


def _table(**kwargs):
    from rich.table import Table

    return Table(**kwargs)


DEBUG = [False]  # set by the global --debug option, read by main()

Threads = Annotated[int, typer.Option(
    help="torch CPU threads. 1 is the measured-safe default: on a 2-core machine 2 threads "
         "trained 1.2x faster when idle but 2.3x slower while another process was busy "
         "(benchmarks/threads.py).")]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda")]
# readable=False: our own loader says "permission denied" in our one-line format.
Data = Annotated[Path, typer.Argument(help="CSV (.csv, .csv.gz) or Parquet file", show_default=False,
                                      readable=False)]
ReportDir = Annotated[Path | None, typer.Option(help="where metrics.json, report.md and report.html go")]
Future = Annotated[Path | None, typer.Option(
    help="the --future-features' values for the forecast steps: a CSV or Parquet file with the id, "
         "time and those columns, one row per series and step after the data's end", readable=False)]


def _version(value: bool) -> None:
    if value:
        print(f"gruforecast {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an unexpected error")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    DEBUG[0] = debug


def _setup(o: dict):
    """A command's options -> (panel, window, model and train configs), all validated and
    resolved against the data before any training."""
    from .data import load_panel
    from .train import pick_device
    from .windows import resolve

    spec, wcfg, mcfg, tcfg = build_configs(o, DataSpec, WindowConfig, ModelConfig, TrainConfig)
    _threads(o["threads"])
    pick_device(o["device"])
    panel, wcfg, mcfg = resolve(load_panel(o["data"], spec), wcfg, mcfg, tcfg=tcfg)
    for note in panel.notes:
        _log(note)
    _log(f"{len(panel.series)} series, {sum(len(s) for s in panel.series)} points, freq "
         f"{panel.freq or f'integer step {panel.step}'}, season {wcfg.season}, lookback "
         f"{wcfg.lookback}, horizon {wcfg.horizon}, {mcfg.describe(wcfg.season, wcfg.lookback)}")
    return panel, wcfg, mcfg, tcfg


@app.command()
@with_config_options(DataSpec, WindowConfig, ModelConfig, TrainConfig)
def train(
    data: Data,
    out_path: Annotated[Path, typer.Option("--out", help="model file to write", show_default=False)],
    device: Device = "auto", threads: Threads = 1, report_dir: ReportDir = None,
    forecast_out: Annotated[Path | None, typer.Option(help="forecast file (default: MODEL-forecast.csv beside the model)")] = None,
    future: Future = None,
    **config,
) -> None:
    """Train a GRU on DATA; write the model, a forecast and the reports. Under torchrun
    (`torchrun --nproc-per-node N -m gruforecast train ...`) one model is trained over
    the N processes and rank 0 alone writes (docs/scale.md)."""
    from . import parallel
    from .atomic import (
        FORECAST_SUFFIXES,
        MODEL_SUFFIXES,
        all_or_nothing,
        check_output_folder,
        check_output_path,
    )
    from .data import data_files
    from .train import pick_device

    inputs = tuple(data_files(data)) + ((future,) if future else ())
    model_path = check_output_path(out_path, MODEL_SUFFIXES, inputs=inputs)
    forecast_path = check_output_path(
        forecast_out or model_path.with_name(model_path.stem + "-forecast.csv"), FORECAST_SUFFIXES,
        inputs=(*inputs, model_path))
    check_output_folder(report_dir or model_path.parent)
    panel, wcfg, mcfg, tcfg = _setup({**config, "data": data, "device": device, "threads": threads})
    from . import artifact
    from .forecaster import check_future, few_windows_note, write_forecast
    from .forecaster import train as train_forecaster
    from .report import write_reports

    check_future(panel, wcfg, future)  # before the training: a bad file costs nothing
    with parallel.group(pick_device(device)), _EpochProgress(tcfg.epochs if parallel.is_main() else 0) as progress:
        run = train_forecaster(panel, wcfg, mcfg, tcfg, device=device,
                               on_epoch=progress.update if parallel.is_main() else None)
    if not parallel.is_main():
        return  # rank 0 writes the model, the forecast and the reports
    fc = run.forecaster.predict(future=future)
    losses = [("model", run.report["training"]["train_loss"], run.report["training"]["val_loss"])]
    with all_or_nothing():  # the model, the forecast and the reports, or none of them
        written = {"model": artifact.save(run.forecaster, model_path),
                   "forecast": write_forecast(fc, forecast_path)}
        written.update(write_reports(report_dir or model_path.parent, run.report, run.report["test"],
                                     run.records, panel, losses,
                                     f"gruforecast train: {model_path.name}, held-out test windows",
                                     future=fc.frame))
    _print_scores(run.report.get("test"))
    if note := few_windows_note(run.report["data"]["windows"]["val"]):
        _log(note)
    print(f"trained in {run.report['training']['total_seconds']:.1f}s (best epoch "
          f"{run.fit.best_epoch} of {len(run.fit.history)}"
          + (", then refit on every point)" if run.report["training"]["refit"] else ")")
          + (f" over {run.fit.processes}" if run.fit.processes else ""))
    for name, path in written.items():
        print(f"{name + ':':12}{path}")


@app.command()
@with_config_options(DataSpec, WindowConfig, ModelConfig, TrainConfig, exclude=("test_frac",))
def backtest(
    data: Data,
    report_dir: Annotated[Path, typer.Option(help="where metrics.json, report.md and report.html go", show_default=False)],
    folds: Annotated[int, typer.Option(help="forecast origins K")] = 3,
    step: Annotated[int | None, typer.Option(help="steps between origins (default: the horizon)")] = None,
    refit: Annotated[bool, typer.Option(help="train a model per fold, or one before the first origin")] = True,
    device: Device = "auto", threads: Threads = 1,
    **config,
) -> None:
    """Rolling-origin backtest of the model and the naive, seasonal naive and drift baselines."""
    from .atomic import all_or_nothing, check_output_folder
    from .backtest import BacktestConfig, run_backtest
    from .report import base_report, write_reports

    cfg = BacktestConfig(folds=folds, step=step, refit=refit)
    check_output_folder(report_dir)
    panel, wcfg, mcfg, tcfg = _setup({**config, "test_frac": 0.0, "data": data, "device": device,
                                      "threads": threads})
    progress = _EpochProgress(tcfg.epochs * (folds if refit else 1))
    with progress:
        result = run_backtest(panel, wcfg, mcfg, tcfg, cfg, device=device,
                              on_epoch=lambda k, log: progress.update(log, prefix=f"fold {k + 1}/{folds} "))
    report = base_report(panel, (wcfg, mcfg, tcfg), device)
    report["config"]["backtest"] = {"folds": folds, "step": cfg.step or wcfg.horizon, "refit": refit}
    report["seconds"] = round(result.seconds, 3)
    report["folds"] = [vars(f) for f in result.folds]
    report["backtest"] = result.summary
    losses = [(f"fold {f.fold + 1}", f.train_loss, f.val_loss) for f in result.folds]
    with all_or_nothing():
        written = write_reports(report_dir, report, result.summary, result.records, panel, losses,
                                f"gruforecast backtest: {Path(data).name}, {folds} folds")
    _print_scores({"windows": folds, "season": wcfg.season, **result.summary}, title="backtest")
    print(f"backtest in {result.seconds:.1f}s ({len(result.folds)} training runs)")
    for name, path in written.items():
        print(f"{name + ':':12}{path}")


@app.command()
@with_config_options(DataSpec, WindowConfig)
def check(
    data: Annotated[Path | None, typer.Argument(help="CSV (.csv, .csv.gz) or Parquet file (with --model: "
                                                "the history to forecast from; default the stored one)",
                                                show_default=False, readable=False)] = None,
    model: Annotated[Path | None, typer.Option(help="check --future against this model instead of DATA's training checks",
                                               readable=False)] = None,
    future: Future = None,
    **config,
) -> None:
    """Run every data check and report all problems at once; exit 0 when DATA would train.
    With --model M --future F: check that F holds what M needs to forecast."""
    from .data import check_file
    from .windows import resolve

    if model is not None:
        return _check_future(model, future, data)
    if data is None:
        raise InputError("check needs DATA, or --model M --future F to check a future file against a model")
    if future is not None:
        raise InputError("check --future needs --model M: a future file is checked against the model that reads it")

    spec, wcfg = build_configs(config, DataSpec, WindowConfig)
    problems, panel = check_file(data, spec)
    if panel is not None:
        try:
            panel, wcfg, mcfg = resolve(panel, wcfg)
        except InputError as exc:
            problems.append(str(exc))
    for problem in problems:
        print(f"gruforecast: problem: {problem}", file=sys.stderr)
    if problems:
        raise InputError(f"{len(problems)} problem(s) in {str(data)!r}; fix them and run check again")
    for note in panel.notes:
        _log(note)
    print(f"ok: {len(panel.series)} series, {sum(len(s) for s in panel.series)} points, "
          f"freq {panel.freq or f'integer step {panel.step}'}: would train as given")


def _check_future(model: Path, future: Path | None, data: Path | None) -> None:
    from . import artifact
    from .data import load_panel

    art = artifact.load(model)
    panel = load_panel(data, art.data_spec) if data is not None else None
    fc = art.predict(panel, future=future)  # reads and aligns the file: every problem is one line
    names = art.known_names
    print(f"ok: {len(fc.frame)} rows, {art.horizon} steps after each of {fc.frame.shape[0] // art.horizon} "
          f"series; known in advance: {', '.join(names) or 'nothing'}")


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="model file written by train", show_default=False, readable=False)],
    out_path: Annotated[Path, typer.Option("--out", help="forecast file, .csv or .parquet", show_default=False)],
    data: Annotated[Path | None, typer.Option(help="fresh data to forecast from (default: the data stored in the model)",
                                              readable=False)] = None,
    horizon: Annotated[int | None, typer.Option(help="steps to forecast (default: the trained horizon; more rolls forward recursively)")] = None,
    cutoffs: Annotated[int | None, typer.Option(help="forecast from the last N origins of --data instead of its end, with the actual values beside (a `cutoff` column)")] = None,
    step: Annotated[int | None, typer.Option(help="with --cutoffs: steps between origins (default: the horizon)")] = None,
    level: Annotated[str | None, typer.Option(help="none: the point forecast alone, which may go past the trained horizon (default: the model's intervals)")] = None,
    fill: Annotated[str | None, typer.Option(help="fill missing values and gaps of --data: interpolate, ffill or zero (default: as the model was trained)")] = None,
    short_series: Annotated[str, typer.Option(help="a series of --data with fewer points than the model reads: fail, or skip (forecast the others and name it)")] = "fail",
    future: Future = None,
    threads: Threads = 1,
) -> None:
    """Forecast from the end of the stored data, or of --data, to a CSV or Parquet file."""
    from .atomic import FORECAST_SUFFIXES, check_output_path
    from .data import data_files

    inputs = (model, *(data_files(data) if data else ()), *((future,) if future else ()))
    path = check_output_path(out_path, FORECAST_SUFFIXES, inputs=inputs)
    if cutoffs is not None and future is not None:
        raise InputError("--future is for forecasts after the data's end; with --cutoffs the future "
                         "features come from --data itself: drop --future")
    if cutoffs is None and step is not None:
        raise InputError("--step spaces the origins of --cutoffs; pass --cutoffs N too or drop --step")
    if cutoffs is not None and data is None:
        raise InputError("--cutoffs needs --data: the model stores only the last lookback points of each series")
    if fill is not None and data is None:
        raise InputError("--fill fills the gaps of --data; pass --data FILE (the stored history has none)")
    if short_series not in ("fail", "skip"):
        raise InputError(f"predict --short-series {short_series!r} is not known; use fail or skip")
    if short_series == "skip" and (data is None or cutoffs is not None):
        raise InputError("predict --short-series skip leaves out short series of --data at its end; pass --data "
                         "FILE, without --cutoffs")
    from . import artifact
    from .data import load_panel
    from .forecaster import write_forecast

    if level is not None and level.strip().lower() != "none":
        raise InputError(f"predict --level {level!r}: only none is known here (the levels are chosen "
                         "at training); drop it to get the model's intervals")
    _threads(threads)
    art = artifact.load(model)
    art = art.points_only() if level is not None else art
    bar = _PassProgress()
    art.on_progress = bar.update
    spec = art.data_spec if fill is None else replace(art.data_spec, fill=fill)
    panel = load_panel(data, spec) if data is not None else None
    if short_series == "skip":
        panel, note = art.without_short(panel)
        if note:
            _log(note)
    with bar:
        fc = (art.predict_at(panel, cutoffs, step, horizon) if cutoffs is not None
              else art.predict(panel, horizon, future=future))
    if fc.recursive:
        _log(f"horizon {horizon} > trained horizon {art.horizon}: rolled forward recursively")
    if fc.unseen:
        _log(f"{len(fc.unseen)} series not in training (first: {fc.unseen[0]!r}) forecast in units of their own "
             "history")
    write_forecast(fc, path)
    print(f"forecast: {path} ({len(fc.frame)} rows)")


@app.command()
def info(model: Annotated[Path, typer.Argument(help="model file", show_default=False, readable=False)]) -> None:
    """Show what a model file holds: its configurations, series and test scores."""
    from . import artifact
    from .config import describe

    art = artifact.load(model)
    w = art.window_cfg
    table = _table(title=str(model), show_header=False)
    rows = [
        ("gruforecast", art.package_version),
        ("data", describe(art.data_spec)),
        ("covariates", _covariates(art)),
        ("time", f"{art.time_dtype}, " + (art.freq or f"integer step {art.step}")),
        ("windows", describe(w)),
        ("model", describe(art.model_cfg) + f"; {art.model_cfg.describe(w.season, w.lookback)}"),
        ("training", describe(art.train_cfg)),
        ("series", f"{len(art.series_ids)}: {', '.join(art.series_ids[:5])}{' ...' if len(art.series_ids) > 5 else ''}"),
        ("data ends", ", ".join(str(x) for x in art.last_times[:3]) + (" ..." if len(art.last_times) > 3 else "")),
    ]
    rows += [(f"chose {key}", why) for key, why in art.metrics.get("choices", {}).items()]
    for key, value in rows:
        table.add_row(key, str(value))
    console().print(table)
    _print_scores(art.metrics.get("test"))


def _covariates(art) -> str:
    """What the model reads besides the target, by kind: for `info`."""
    spec = art.data_spec
    kinds = [("past-only", spec.features), ("known in advance", art.known_names), ("static", spec.static_features)]
    text = "; ".join(f"{kind}: {', '.join(cols)}" for kind, cols in kinds if cols) or "none"
    return text + (f" (calendar read in {spec.calendar_tz})" if spec.calendar_tz else "")


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
            future = f"; future {b.future_path(job)}" if job.future else ""
            print(f"{job.name}: {plan}; data {job.data}; model {job.model}{future}; output {b.output_path(job)}")
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
    table = _table(title=f"batch: {len(run.results)} jobs in {run.seconds:.1f}s")
    for col in ("job", "status", "rows", "MASE (validation)", "seconds", "note"):
        table.add_column(col)
    for r in run.results:
        note = r.error or r.kept_old or (r.output or "")
        mase = f"{r.mase:.4g}" if r.mase is not None else "-"
        table.add_row(r.name, r.status, str(r.rows), mase, f"{r.seconds:.2f}", note)
    console().print(table)


def _print_scores(test: dict | None, title: str = "held-out test") -> None:
    if not test:
        return
    unit = "folds" if title == "backtest" else "windows"
    table = _table(title=f"{title}: {test['windows']} {unit}, {test['series']} series, season {test['season']}")
    keys = {"MAE": "mae", "RMSE": "rmse", "sMAPE": "smape", "MASE": "mase"}
    model = test["scores"]["model"]  # interval scores, where the model has intervals
    names = {"coverage": "cov", "msis": "MSIS"}
    keys.update({f"{names[k.split('_')[0]]} {k.split('_')[1]}": k for k in model
                 if k.startswith(("coverage_", "msis_"))})
    for col in ("", *keys):
        table.add_column(col, justify="right" if col else "left")
    for name, s in test["scores"].items():
        table.add_row(name, *("" if k not in s else "n/a" if s[k] is None else f"{s[k]:.4g}" for k in keys.values()))
    console().print(table)
    _log_better_baselines(test["scores"], title)


def _log_better_baselines(scores: dict, title: str) -> None:
    """Say so when a baseline scores a lower MASE than the model: the table shows it, but a
    nightly log is read for lines like this one."""
    model = scores["model"]["mase"]
    better = [(name, s["mase"]) for name, s in scores.items()
              if name != "model" and model is not None and s["mase"] is not None and s["mase"] < model]
    if better:
        name, mase = min(better, key=lambda b: b[1])
        _log(f"{name} beats the model on the {title} (MASE {mase:.4g} against {model:.4g}); "
             "a backtest over more origins tells whether it does so in general")


class _EpochProgress:
    """A Rich progress bar on a terminal; plain log lines on stderr otherwise."""

    def __init__(self, epochs: int) -> None:
        self.epochs, self.bar, self.task = epochs, None, None

    def __enter__(self) -> _EpochProgress:
        if sys.stderr.isatty():
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("epochs {task.completed}/{task.total}"), BarColumn(),
                                TextColumn("{task.fields[losses]}"), TimeRemainingColumn(),
                                console=console(True), transient=True)
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


class _PassProgress:
    """`predict`'s bar over the network's passes (batches x roll-out steps): on a terminal
    only, and only once the work is long enough to watch; silent in cron."""

    def __init__(self) -> None:
        self.bar, self.task = None, None

    def __enter__(self) -> _PassProgress:
        return self

    def update(self, done: int, total: int) -> None:
        if self.bar is None and total >= 20 and sys.stderr.isatty():
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("forecast {task.completed}/{task.total} passes"), BarColumn(),
                                TimeRemainingColumn(), console=console(True), transient=True)
            self.task = self.bar.add_task("predict", total=total)
            self.bar.start()
        if self.bar is not None:
            self.bar.update(self.task, completed=done)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _log(message: str) -> None:
    # under torchrun, rank 0 speaks for all (parallel.is_main, without importing torch)
    if int(os.environ.get("WORLD_SIZE", "1")) < 2 or os.environ.get("RANK", "0") == "0":
        print(f"gruforecast: {message}", file=sys.stderr, flush=True)


def _threads(n: int) -> None:
    """Import torch and set its threads; then the collector runs again (`main` turned it
    off for the imports), with what they made frozen out of its view."""
    import torch

    if n < 1:
        raise InputError(f"--threads ({n}) must be >= 1")
    cores = os.cpu_count() or 1
    if n > cores:  # as batch refuses --jobs x --threads beyond the cores
        raise InputError(f"--threads {n} is more than the {cores} cores; oversubscribed torch threads "
                         f"slow a GRU step 100x: use --threads {cores} or fewer")
    torch.set_num_threads(n)
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def main() -> None:
    """Run the app and map errors to exit codes (the command's entry is `__main__.main`)."""
    debug = "--debug" in sys.argv[1:]
    # Nothing the imports make is garbage, and the cyclic collector, walking their objects
    # again at every pass as they grow, took 0.1-0.2 s of a 1.8 s cold `predict`
    # (benchmarks/results/startup.md): it is off until the command has imported torch
    # (`_threads`); `__main__.main` turns it off before this module's imports too.
    gc.disable()
    try:
        app()  # standalone: Typer prints usage errors itself and exits 2 (SystemExit)
    except SystemExit as exc:
        if exc.code == 130:  # Typer turns Ctrl-C into a silent exit 130: say so
            print("gruforecast: interrupted; outputs are written whole or not at all", file=sys.stderr)
        raise
    except GruForecastError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"gruforecast: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("gruforecast: interrupted; outputs are written whole or not at all", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # a bug or an environment failure: one line, exit 1
        if debug:
            import traceback

            traceback.print_exc()
        print(f"gruforecast: unexpected error: {type(exc).__name__}: {exc} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        sys.exit(1)
    finally:
        gc.unfreeze()  # for a caller in the same process (the tests): the collector on, nothing frozen
        gc.enable()
