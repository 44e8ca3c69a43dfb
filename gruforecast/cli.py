"""The `gruforecast` command line: a thin client over `api`.

This is the only place that turns errors into exit codes: 0 success, 2 bad input or
usage, 1 anything else. A `GruForecastError` prints one line; anything unexpected prints
one line too and the traceback only with `--debug`. Progress bars appear on a terminal
only; in cron (stdout not a TTY) one plain log line per epoch goes to stderr.
"""

from __future__ import annotations

import sys
import traceback
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
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

Threads = Annotated[int, typer.Option(
    help="torch CPU threads. 1 is the measured-safe default: a second thread never sped up a "
         "64-unit GRU on 2 cores and slowed it 100x when another process was busy.")]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda")]


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False) -> None:
    """Time-series forecasting with a fused-gate GRU."""


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="CSV (.csv, .csv.gz) or Parquet file", show_default=False)],
    out_path: Annotated[Path, typer.Option("--out", help="model file to write", show_default=False)],
    target: Annotated[str | None, typer.Option(help="target column (default: the only numeric one)")] = None,
    time_col: Annotated[str | None, typer.Option(help="time column: dates or integer steps (default: detected)")] = None,
    id_col: Annotated[str | None, typer.Option(help="series id column, for many series in long format")] = None,
    features: Annotated[str | None, typer.Option(help="comma-separated covariate columns")] = None,
    lookback: Annotated[int | None, typer.Option(help="input window L (default: 2 seasons or 2 horizons)")] = None,
    horizon: Annotated[int | None, typer.Option(help="forecast horizon H (default: one season)")] = None,
    season: Annotated[int | None, typer.Option(help="season length (default: from the frequency; 1 for integer steps)")] = None,
    freq: Annotated[str | None, typer.Option(help="pandas frequency, when it cannot be inferred")] = None,
    fill: Annotated[str | None, typer.Option(help="fill missing values and gaps: interpolate, ffill or zero")] = None,
    scaler: Annotated[str, typer.Option(help="standard, minmax, robust or none (fitted on train only)")] = "standard",
    hidden_size: Annotated[int, typer.Option(help="GRU hidden units")] = 64,
    num_layers: Annotated[int, typer.Option(help="GRU layers")] = 1,
    dropout: Annotated[float, typer.Option(help="dropout between GRU layers")] = 0.0,
    epochs: Annotated[int, typer.Option(help="maximum epochs")] = 50,
    batch_size: Annotated[int, typer.Option(help="windows per batch")] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    patience: Annotated[int, typer.Option(help="early stopping: epochs without a better validation loss")] = 8,
    loss: Annotated[str, typer.Option(help="mse or huber")] = "mse",
    val_frac: Annotated[float, typer.Option(help="share of each series held out for validation")] = 0.1,
    test_frac: Annotated[float, typer.Option(help="share of each series held out for the test metrics")] = 0.1,
    seed: Annotated[int, typer.Option(help="random seed: same seed, same numbers on CPU")] = 0,
    device: Device = "auto",
    threads: Threads = 1,
    report_dir: Annotated[Path | None, typer.Option(help="where metrics.json goes (default: the model's folder)")] = None,
    forecast_out: Annotated[Path | None, typer.Option(help="forecast file (default: MODEL-forecast.csv beside the model)")] = None,
) -> None:
    """Train a GRU on DATA; write the model, metrics.json and a forecast."""
    from . import api
    from .data import DataSpec, load_panel, season_length
    from .train import TrainConfig

    _threads(threads)
    model_path = api.check_output_path(out_path, (".gruf", ".pt"))
    forecast_path = api.check_output_path(
        forecast_out or model_path.with_name(model_path.stem + "-forecast.csv"), (".csv", ".parquet"))
    feats = tuple(f.strip() for f in features.split(",") if f.strip()) if features else ()
    spec = DataSpec(target=target, time_col=time_col, id_col=id_col, features=feats, fill=fill, freq=freq)
    tcfg = TrainConfig(hidden_size=hidden_size, num_layers=num_layers, dropout=dropout, epochs=epochs,
                       batch_size=batch_size, lr=lr, patience=patience, loss=loss, seed=seed)
    api.pick_device(device)
    panel = load_panel(data, spec)
    season = season if season is not None else season_length(panel.freq)
    if season < 1:
        raise InputError(f"--season ({season}) must be >= 1")
    wcfg = api.default_window(panel, season, horizon=horizon, lookback=lookback, scaler=scaler,
                              val_frac=val_frac, test_frac=test_frac)
    _log(f"{len(panel.series)} series, {sum(len(s) for s in panel.series)} points, freq "
         f"{panel.freq or f'integer step {panel.step}'}, season {season}, lookback "
         f"{wcfg.lookback}, horizon {wcfg.horizon}")
    with _EpochProgress(epochs) as progress:
        run = api.train(panel, wcfg, tcfg, season, device=device, on_epoch=progress.update)
    written = api.save_outputs(run, model_path, report_dir or model_path.parent, forecast_path)
    _print_scores(run.report.get("test"))
    out.print(f"trained in {run.fit.seconds:.1f}s (best epoch {run.fit.best_epoch} of "
              f"{len(run.fit.history)})")
    for name, path in written.items():
        out.print(f"{name + ':':10}{path}")


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="model file written by train", show_default=False)],
    out_path: Annotated[Path, typer.Option("--out", help="forecast file, .csv or .parquet", show_default=False)],
    data: Annotated[Path | None, typer.Option(help="fresh data to forecast from (default: the data stored in the model)")] = None,
    horizon: Annotated[int | None, typer.Option(help="steps to forecast (default: the trained horizon; more rolls forward recursively)")] = None,
    threads: Threads = 1,
) -> None:
    """Forecast from the end of the stored data, or of --data, to a CSV or Parquet file."""
    from . import api, artifact
    from .data import load_panel
    from .forecast import forecast

    _threads(threads)
    path = api.check_output_path(out_path, (".csv", ".parquet"))
    art = artifact.load(model)
    panel = load_panel(data, art.data_spec) if data is not None else None
    fc = forecast(art, horizon=horizon, panel=panel)
    if fc.recursive:
        _log(f"horizon {horizon} > trained horizon {art.window_cfg.horizon}: rolled forward recursively")
    api.write_forecast(fc, path)
    out.print(f"forecast: {path} ({len(fc.frame)} rows)")


@app.command()
def info(model: Annotated[Path, typer.Argument(help="model file", show_default=False)]) -> None:
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
        ("GRU", f"{t.num_layers} layer(s) x {t.hidden_size} units, window norm {t.window_norm}"),
        ("training", f"epochs {t.epochs}, batch {t.batch_size}, lr {t.lr}, loss {t.loss}, seed {t.seed}"),
        ("series", f"{len(art.series_ids)}: {', '.join(art.series_ids[:5])}{' ...' if len(art.series_ids) > 5 else ''}"),
        ("data ends", ", ".join(str(x) for x in art.last_times[:3]) + (" ..." if len(art.last_times) > 3 else "")),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    out.print(table)
    _print_scores(art.metrics.get("test"))


def _print_scores(test: dict | None) -> None:
    if not test:
        return
    table = Table(title=f"held-out test: {test['windows']} windows, {test['series']} series, season {test['season']}")
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

            self.bar = Progress(TextColumn("epoch {task.completed}/{task.total}"), BarColumn(),
                                TextColumn("{task.fields[losses]}"), TimeRemainingColumn(),
                                console=err, transient=True)
            self.task = self.bar.add_task("train", total=self.epochs, losses="")
            self.bar.start()
        return self

    def update(self, log) -> None:
        val = f" val {log.val_loss:.4f}" if log.val_loss is not None else ""
        text = f"train {log.train_loss:.4f}{val} best {log.best_epoch}"
        if self.bar is not None:
            self.bar.update(self.task, completed=log.epoch, losses=text)
        else:
            _log(f"epoch {log.epoch}/{log.epochs} {text} ({log.seconds:.1f}s)")

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
