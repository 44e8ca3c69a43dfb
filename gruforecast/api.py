"""The library's front door: train on a panel, forecast from a model file.

The CLI, the batch runner and the benchmarks all call these functions, so every path
trains and forecasts with the same code. Nothing here prints or writes files except
`save_outputs`, which writes atomically.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import __version__, artifact
from .artifact import Artifact
from .atomic import atomic_write
from .data import Panel
from .errors import InputError
from .evaluate import holdout_records, summarize
from .forecast import Forecast, forecast
from .report import write_reports
from .train import EpochLog, FitResult, TrainConfig, build_model, fit, predict_origins
from .windows import WindowConfig, check_lengths, make_windows


@dataclass
class TrainRun:
    artifact: Artifact
    fit: FitResult
    report: dict  # the content of metrics.json
    records: pd.DataFrame | None  # one row per (test window, step): see evaluate.py


def drop_short(panel: Panel, cfg: WindowConfig) -> Panel:
    """`--short-series skip`: leave out the series too short to train on, with a note."""
    keep, dropped = [], []
    for s in panel.series:
        (keep if cfg.fits(len(s)) else dropped).append(s)
    if not keep:
        raise InputError(f"every series is shorter than lookback {cfg.lookback} + horizon "
                         f"{cfg.horizon} plus the held-out parts; lower --lookback or --horizon")
    if dropped:
        panel.notes.append(f"skipped {len(dropped)} series too short to train on "
                           f"(first: {dropped[0].id!r}, {len(dropped[0])} points)")
    return replace(panel, series=keep)


def default_window(panel: Panel, season: int, horizon: int | None = None,
                   lookback: int | None = None, check: bool = True, **kwargs) -> WindowConfig:
    """Fill in the horizon (one season, at least 1) and the lookback (two seasons or two
    horizons, whichever is longer, shortened to fit the shortest series)."""
    H = horizon if horizon is not None else max(season, 1)
    if lookback is None:
        probe = WindowConfig(lookback=1, horizon=H, **kwargs)
        room = min(probe.part_lengths(len(s))[0] - H for s in panel.series)
        wanted = max(2 * season, 2 * H)
        lookback = max(1, min(wanted, room)) if room >= 1 else wanted
    cfg = WindowConfig(lookback=lookback, horizon=H, **kwargs)
    if check:
        check_lengths(panel, cfg)
    return cfg


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda but no CUDA GPU is visible; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise InputError(f"--device {name!r} is not known; use auto, cpu or cuda")
    return torch.device(name)


def train(panel: Panel, wcfg: WindowConfig, tcfg: TrainConfig, season: int,
          device: str = "cpu", on_epoch: Callable[[EpochLog], None] | None = None) -> TrainRun:
    """Window, scale, train and evaluate on held-out test windows; return the artifact."""
    dev = pick_device(device)
    windows = make_windows(panel, wcfg)
    torch.manual_seed(tcfg.seed)  # weight init is part of the seeded run
    model = build_model(1 + len(panel.spec.features), wcfg.lookback, wcfg.horizon, tcfg, season)
    result = fit(model, windows, tcfg, dev, on_epoch)
    model.cpu().eval()
    test, records = None, None
    if len(windows.test):
        preds = predict_origins(model, windows, windows.test, torch.device("cpu"))
        records = holdout_records(panel, windows, preds, season)
        test = {"windows": len(windows.test), "season": season,
                **summarize(records, groups=("series", "step"))}
    L = wcfg.lookback
    art = Artifact(
        model=model, data_spec=panel.spec, window_cfg=wcfg, train_cfg=tcfg, freq=panel.freq,
        step=panel.step, time_dtype=panel.time_dtype, season=season,
        series_ids=[s.id for s in panel.series], last_times=[s.time[-1] for s in panel.series],
        loc=windows.loc, scale=windows.scale, tail=np.stack([s.values[-L:] for s in panel.series]),
    )
    report = base_report(panel, wcfg, tcfg, season, str(dev))
    report["training"] = {
        "seconds": round(result.seconds, 3), "epochs_run": len(result.history),
        "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
        "train_loss": [h.train_loss for h in result.history],
        "val_loss": [h.val_loss for h in result.history],
    }
    report["data"]["windows"] = {"train": len(windows.train), "val": len(windows.val),
                                 "test": len(windows.test)}
    report["test"] = test
    art.metrics = {"test": {k: test[k] for k in ("windows", "season", "series", "scores")}} if test else {}
    return TrainRun(art, result, report, records)


def base_report(panel: Panel, wcfg: WindowConfig, tcfg: TrainConfig, season: int,
                device: str) -> dict:
    """The keys every metrics.json shares: versions, data fingerprint, configuration, seed."""
    return {
        "gruforecast_version": __version__,
        "created": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "data": {
            "fingerprint_sha256": panel.fingerprint, "series": len(panel.series),
            "points": int(sum(len(s) for s in panel.series)), "freq": panel.freq,
        },
        "config": {"data": asdict(panel.spec), "windows": asdict(wcfg), "train": asdict(tcfg),
                   "season": season, "device": device},
        "seed": tcfg.seed,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__},
        "threads": torch.get_num_threads(),
    }


def write_forecast(fc: Forecast, path: str | Path) -> Path:
    """Write a forecast frame atomically as CSV or Parquet (by the extension)."""
    path = Path(path)
    if not np.isfinite(fc.frame["forecast"].to_numpy(dtype=float)).all():
        raise InputError("the forecast holds NaN or infinity; nothing written; check the data's scale and retrain")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return atomic_write(path, lambda p: fc.frame.to_parquet(p, index=False, engine="pyarrow"))
    if suffix == ".csv":
        return atomic_write(path, lambda p: fc.frame.to_csv(p, index=False))
    raise InputError(f"output {path.name!r} has an unknown extension; use .csv or .parquet")


def save_outputs(run: TrainRun, panel: Panel, model_path: Path, report_dir: Path,
                 forecast_path: Path) -> dict[str, Path]:
    """Write the model, the forecast from the end of the data, and the reports."""
    fc = forecast(run.artifact)
    written = {"model": artifact.save(run.artifact, model_path)}
    written["forecast"] = write_forecast(fc, forecast_path)
    losses = [("model", run.report["training"]["train_loss"], run.report["training"]["val_loss"])]
    title = f"gruforecast train: {model_path.name}, held-out test windows"
    written.update(write_reports(report_dir, run.report, run.report["test"], run.records, panel,
                                 losses, title))
    return written
