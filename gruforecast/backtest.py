"""Rolling-origin backtests: K forecast origins, S steps apart, ending at the end of the data.

For fold k each series is cut at its origin o_k = n - H - (K - 1 - k) * S; the model of that
fold is trained (scalers included) on the cut panel only, through the same `api.train` as
the `train` command, so no value at or after an origin can reach its training or scaling.
With `refit=False` one model, trained before the first origin, forecasts from every origin
(its inputs are the actual values before each origin). One global model per fold for a
panel, never one per series. The baselines forecast from exactly the same origins.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from . import api
from .data import Panel, Series
from .errors import InputError
from .evaluate import origin_records, summarize
from .forecast import predict_tails
from .train import EpochLog, TrainConfig
from .windows import WindowConfig, check_lengths


@dataclass(frozen=True)
class BacktestConfig:
    folds: int = 3
    step: int | None = None  # steps between origins; default: the horizon
    refit: bool = True

    def __post_init__(self) -> None:
        if self.folds < 1:
            raise InputError(f"--folds ({self.folds}) must be >= 1")
        if self.step is not None and self.step < 1:
            raise InputError(f"--step ({self.step}) must be >= 1")


@dataclass
class FoldLog:
    fold: int
    seconds: float
    train_loss: list[float]
    val_loss: list[float | None]
    best_epoch: int


@dataclass
class BacktestResult:
    records: pd.DataFrame
    summary: dict
    folds: list[FoldLog]
    seconds: float


def cut(panel: Panel, lengths: list[int]) -> Panel:
    """The panel with series i cut to its first lengths[i] points."""
    series = [Series(s.id, s.time[:n], s.values[:n]) for s, n in zip(panel.series, lengths)]
    return replace(panel, series=series)


def origins(panel: Panel, horizon: int, cfg: BacktestConfig) -> np.ndarray:
    """(S, K) origin of every fold in every series: the position of the first target."""
    step = cfg.step or horizon
    n = np.array([len(s) for s in panel.series])[:, None]
    return n - horizon - (cfg.folds - 1 - np.arange(cfg.folds))[None, :] * step


def run_backtest(panel: Panel, wcfg: WindowConfig, tcfg: TrainConfig, season: int,
                 cfg: BacktestConfig, device: str = "cpu",
                 on_epoch: Callable[[int, EpochLog], None] | None = None) -> BacktestResult:
    """Train per fold (or once) and score the model and baselines at every origin."""
    H = wcfg.horizon
    fold_wcfg = replace(wcfg, test_frac=0.0)
    starts = origins(panel, H, cfg)
    first = cut(panel, list(starts[:, 0]))
    try:
        check_lengths(first, fold_wcfg)
    except InputError as exc:
        raise InputError(f"before the first origin, {exc}; or lower --folds or --step") from None
    start, frames, logs, art = time.perf_counter(), [], [], None
    for k in range(cfg.folds):
        train_panel = cut(panel, list(starts[:, k]))
        if cfg.refit or art is None:
            t0 = time.perf_counter()
            callback = (lambda log, k=k: on_epoch(k, log)) if on_epoch else None
            run = api.train(train_panel, fold_wcfg, tcfg, season, device=device, on_epoch=callback)
            art = run.artifact
            logs.append(FoldLog(k, time.perf_counter() - t0, [h.train_loss for h in run.fit.history],
                                [h.val_loss for h in run.fit.history], run.fit.best_epoch))
        L = wcfg.lookback
        tails = np.stack([s.values[-L:] for s in train_panel.series])
        preds = predict_tails(art, [s.id for s in train_panel.series], tails, H)
        for s, o, f in zip(panel.series, starts[:, k], preds):
            y = s.values[:, 0]
            frames.append(origin_records(s.id, k, y[:o], y[o: o + H], f, s.time[o: o + H],
                                         s.time[o - 1], season, y[:o]))
    records = pd.concat(frames, ignore_index=True)
    return BacktestResult(records, summarize(records), logs, time.perf_counter() - start)
