"""Rolling-origin backtests: K forecast origins, S steps apart, ending at the end of the data.

For fold k each series is cut at its origin o_k = n - H - (K - 1 - k) * S (the cutoffs of
`predict --cutoffs`); the model of that fold is trained (scalers included) on the cut
panel only, through the same `forecaster.train` as the `train` command, so no value at or
after an origin can reach its training or scaling. With `refit=False` one model, trained
before the first origin, forecasts from every origin (its inputs are the actual values
before each origin). Either way the forecasts come from `Forecaster.forecast_origins`,
and the baselines forecast from exactly the same origins.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .config import ModelConfig, TrainConfig
from .data import Panel
from .errors import InputError
from .evaluate import records_at, summarize
from .forecaster import cutoff_positions, train
from .train import EpochLog
from .windows import MIN_HISTORY, WindowConfig, check_lengths


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


def cut(panel: Panel, lengths) -> Panel:
    """The panel with series i cut to its first lengths[i] points."""
    series = [replace(s, values=s.values[:n]) for s, n in zip(panel.series, lengths)]
    return replace(panel, series=series)


def run_backtest(panel: Panel, wcfg: WindowConfig, mcfg: ModelConfig, tcfg: TrainConfig,
                 cfg: BacktestConfig, device: str = "cpu",
                 on_epoch: Callable[[int, EpochLog], None] | None = None) -> BacktestResult:
    """Train per fold (or once) and score the model and baselines at every origin."""
    H = wcfg.horizon
    fold_wcfg = replace(wcfg, test_frac=0.0)
    starts = cutoff_positions(panel, cfg.folds, cfg.step or H, H)  # (S, K)
    short = np.flatnonzero(starts[:, 0] < MIN_HISTORY)  # the first origin leaves it no history
    if len(short):
        s = panel.series[short[0]]
        raise InputError(f"series {s.id!r} has {len(s)} points, too few for {cfg.folds} folds {cfg.step or H} steps "
                         f"apart with horizon {H} ({len(short)} such series); lower --folds or --step, or leave "
                         "them out")
    try:
        check_lengths(cut(panel, starts[:, 0]), fold_wcfg)
    except InputError as exc:
        raise InputError(f"before the first origin, {exc}; or lower --folds or --step") from None
    start, logs = time.perf_counter(), []
    preds = np.zeros((len(panel.series), cfg.folds, H, len(mcfg.output_quantiles)))
    for k in range(cfg.folds if cfg.refit else 1):
        t0 = time.perf_counter()
        callback = (lambda log, k=k: on_epoch(k, log)) if on_epoch else None
        run = train(cut(panel, starts[:, k]), fold_wcfg, mcfg, tcfg, device=device, on_epoch=callback)
        logs.append(FoldLog(k, time.perf_counter() - t0, [h.train_loss for h in run.fit.history],
                            [h.val_loss for h in run.fit.history], run.fit.best_epoch))
        folds = [k] if cfg.refit else list(range(cfg.folds))  # without refit: every origin
        made = run.forecaster.forecast_origins(panel, list(starts[:, folds]))
        preds[:, folds] = made.reshape(len(panel.series), len(folds), H, -1)
    records = records_at(panel, list(starts), preds.reshape(-1, H, preds.shape[-1]), wcfg.season,
                         folds=[np.arange(cfg.folds)] * len(panel.series), quantiles=mcfg.output_quantiles,
                         second_season=run.forecaster.model_cfg.second_season or 0)
    return BacktestResult(records, summarize(records), logs, time.perf_counter() - start)
