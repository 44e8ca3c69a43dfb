"""The library's front door: train on a panel, forecast from a model file.

The CLI, the batch runner and the benchmarks all call these functions, so every path
trains and forecasts with the same code. Nothing here prints or writes files except
`save_outputs`, which writes atomically.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import __version__, artifact
from .artifact import Artifact
from .atomic import atomic_write, atomic_write_text
from .data import Panel
from .errors import InputError
from .evaluate import holdout_report
from .forecast import Forecast, forecast
from .train import EpochLog, FitResult, TrainConfig, build_model, fit, predict_origins
from .windows import WindowConfig, check_lengths, make_windows


@dataclass
class TrainRun:
    artifact: Artifact
    fit: FitResult
    report: dict  # the content of metrics.json


def default_window(panel: Panel, season: int, horizon: int | None = None,
                   lookback: int | None = None, **kwargs) -> WindowConfig:
    """Fill in the horizon (one season, at least 1) and the lookback (two seasons or two
    horizons, whichever is longer, shortened to fit the shortest series)."""
    H = horizon if horizon is not None else max(season, 1)
    if lookback is None:
        probe = WindowConfig(lookback=1, horizon=H, **kwargs)
        room = min(probe.part_lengths(len(s))[0] - H for s in panel.series)
        wanted = max(2 * season, 2 * H)
        lookback = max(1, min(wanted, room)) if room >= 1 else wanted
    cfg = WindowConfig(lookback=lookback, horizon=H, **kwargs)
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
    model = build_model(1 + len(panel.spec.features), wcfg.horizon, tcfg)
    result = fit(model, windows, tcfg, dev, on_epoch)
    model.cpu().eval()
    test = None
    if len(windows.test):
        y = np.concatenate([s.values[:, 0] for s in panel.series])
        preds = predict_origins(model, windows, windows.test, torch.device("cpu"))
        test = holdout_report(windows, y, preds, season)
    L = wcfg.lookback
    art = Artifact(
        model=model, data_spec=panel.spec, window_cfg=wcfg, train_cfg=tcfg, freq=panel.freq,
        step=panel.step, time_dtype=panel.time_dtype, season=season,
        series_ids=[s.id for s in panel.series], last_times=[s.time[-1] for s in panel.series],
        loc=windows.loc, scale=windows.scale, tail=np.stack([s.values[-L:] for s in panel.series]),
    )
    report = {
        "gruforecast_version": __version__,
        "created": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "data": {
            "fingerprint_sha256": panel.fingerprint, "series": len(panel.series),
            "points": int(sum(len(s) for s in panel.series)), "freq": panel.freq,
            "windows": {"train": len(windows.train), "val": len(windows.val), "test": len(windows.test)},
        },
        "config": {"data": asdict(panel.spec), "windows": asdict(wcfg), "train": asdict(tcfg),
                   "season": season, "device": str(dev)},
        "seed": tcfg.seed,
        "training": {
            "seconds": round(result.seconds, 3), "epochs_run": len(result.history),
            "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
            "train_loss": [h.train_loss for h in result.history],
            "val_loss": [h.val_loss for h in result.history],
        },
        "test": test,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__},
        "threads": torch.get_num_threads(),
    }
    art.metrics = {"test": test} if test else {}
    return TrainRun(art, result, report)


def write_forecast(fc: Forecast, path: str | Path) -> Path:
    """Write a forecast frame atomically as CSV or Parquet (by the extension)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return atomic_write(path, lambda p: fc.frame.to_parquet(p, index=False, engine="pyarrow"))
    if suffix == ".csv":
        return atomic_write(path, lambda p: fc.frame.to_csv(p, index=False))
    raise InputError(f"output {path.name!r} has an unknown extension; use .csv or .parquet")


def check_output_path(path: str | Path, suffixes: tuple[str, ...]) -> Path:
    """Fail before any work when an output path cannot be written."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise InputError(f"output {path.name!r} has an unknown extension; use {' or '.join(suffixes)}")
    if path.is_dir():
        raise InputError(f"output {str(path)!r} is a folder; give a file path")
    return path


def save_outputs(run: TrainRun, model_path: Path, report_dir: Path,
                 forecast_path: Path) -> dict[str, Path]:
    """Write the model, metrics.json and the forecast from the end of the data."""
    fc = forecast(run.artifact)
    written = {"model": artifact.save(run.artifact, model_path)}
    written["forecast"] = write_forecast(fc, forecast_path)
    text = json.dumps(_jsonable(run.report), indent=2, allow_nan=False) + "\n"
    written["metrics"] = atomic_write_text(report_dir / "metrics.json", text)
    return written


def _jsonable(obj):
    """numpy scalars to Python numbers; NaN and inf to None (JSON has neither)."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj
