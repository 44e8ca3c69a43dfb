"""The training loop: Adam, gradient clipping, early stopping with the best weights restored.

Holds `TrainConfig` and `fit`. Progress is reported through a callback, one `EpochLog`
per epoch; this module never prints. Same seed, same data, same numbers on the CPU.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .errors import InputError
from .nn import Ensemble, GRURegressor
from .windows import Windows, gather, untransform_target

LOSSES = ("mae", "mse", "huber")
WINDOW_NORMS = ("seasonal", "last", "none")
WINDOW_SCALES = ("diff", "none")


@dataclass(frozen=True)
class TrainConfig:
    """Model size and optimisation settings. Stored in the model artifact."""

    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    epochs: int = 50
    batch_size: int = 64
    lr: float = 1e-3
    patience: int = 8
    clip: float = 1.0
    loss: str = "mae"
    window_norm: str = "seasonal"
    window_scale: str = "diff"
    base_seasons: int = 1  # the seasonal base is the mean of the window's last K seasons
    linear_path: bool = False  # a linear map from the window to the horizon beside the GRU
    second_season: int = 0  # a second seasonal naive (e.g. 168 hours) the GRU blends into its base
    by_season: bool = True  # the GRU reads the window a season per step (where a season fits)
    windows_per_epoch: int | None = None  # sample this many training windows per epoch
    ensemble: int = 1  # models trained side by side from different initial weights
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "epochs", "batch_size", "patience", "ensemble",
                     "base_seasons"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} ({getattr(self, name)}) must be >= 1")
        if not self.lr > 0:
            raise InputError(f"--lr ({self.lr}) must be > 0")
        if self.loss not in LOSSES:
            raise InputError(f"--loss {self.loss!r} is not known; use one of {', '.join(LOSSES)}")
        if self.window_norm not in WINDOW_NORMS:
            raise InputError(f"--window-norm {self.window_norm!r} is not known; use one of {', '.join(WINDOW_NORMS)}")
        if self.window_scale not in WINDOW_SCALES:
            raise InputError(f"--window-scale {self.window_scale!r} is not known; use one of {', '.join(WINDOW_SCALES)}")
        if self.second_season < 0 or self.second_season == 1:
            raise InputError(f"--second-season ({self.second_season}) must be 0 (none) or a season of at least 2")
        if self.second_season and self.window_norm != "seasonal":
            raise InputError(f"--second-season blends seasonal bases and needs --window-norm seasonal "
                             f"(now {self.window_norm}); drop one of them")
        if self.windows_per_epoch is not None and self.windows_per_epoch < 1:
            raise InputError(f"--windows-per-epoch ({self.windows_per_epoch}) must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"--dropout ({self.dropout}) must be in [0, 1)")


@dataclass
class EpochLog:
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float | None
    best_epoch: int
    seconds: float


@dataclass
class FitResult:
    history: list[EpochLog] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    stopped_early: bool = False


Model = GRURegressor | Ensemble


def build_model(n_inputs: int, lookback: int, horizon: int, cfg: TrainConfig, season: int = 1) -> Model:
    if cfg.second_season > lookback:
        raise InputError(f"--second-season ({cfg.second_season}) needs a lookback of at least "
                         f"{cfg.second_season} steps (now {lookback}); raise --lookback")
    members = [GRURegressor(n_inputs, cfg.hidden_size, cfg.num_layers, horizon, dropout=cfg.dropout,
                            window_norm=cfg.window_norm, season=season, window_scale=cfg.window_scale,
                            base_seasons=cfg.base_seasons, lookback=lookback if cfg.linear_path else None,
                            second_season=cfg.second_season, by_season=reads_by_season(cfg, season, lookback))
               for _ in range(cfg.ensemble)]
    return members[0] if cfg.ensemble == 1 else Ensemble(members)


def reads_by_season(cfg: TrainConfig, season: int, lookback: int) -> bool:
    """Whether the GRU reads by season: asked for, and a season of >= 2 steps that fits the
    window (otherwise it reads step by step, as without the option)."""
    return cfg.by_season and 2 <= season <= lookback


def _members(model: Model) -> list[GRURegressor]:
    return list(model.members) if isinstance(model, Ensemble) else [model]


def fit(model: Model, windows: Windows, cfg: TrainConfig, device: torch.device,
        on_epoch: Callable[[EpochLog], None] | None = None) -> FitResult:
    """Train `model` on the training windows; early-stop on the validation loss.

    Without validation windows (val_frac = 0) the training loss decides the best epoch.
    The model ends with the weights of the best epoch.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    values = torch.from_numpy(windows.values).to(device)
    train = torch.from_numpy(windows.train).to(device)
    val = torch.from_numpy(windows.val).to(device)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss_fn = {"mae": nn.L1Loss, "mse": nn.MSELoss, "huber": nn.HuberLoss}[cfg.loss]()
    result, best, best_state, since_best = FitResult(), math.inf, None, 0
    start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        order = torch.from_numpy(_epoch_order(rng, len(train), cfg.windows_per_epoch)).to(device)
        train_loss = _train_epoch(model, opt, loss_fn, values, train[order], windows, cfg, epoch)
        val_loss = evaluate_loss(model, values, val, windows, loss_fn) if len(val) else None
        score = val_loss if val_loss is not None else train_loss
        if score < best:
            best, result.best_epoch, since_best = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
        log = EpochLog(epoch, cfg.epochs, train_loss, val_loss, result.best_epoch,
                       time.perf_counter() - start)
        result.history.append(log)
        if on_epoch is not None:
            on_epoch(log)
        if since_best >= cfg.patience:
            result.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - start
    return result


def _epoch_order(rng: np.random.Generator, n: int, cap: int | None) -> np.ndarray:
    if cap is not None and cap < n:
        return rng.choice(n, size=cap, replace=False)
    return rng.permutation(n)


def _train_epoch(model: Model, opt: torch.optim.Optimizer, loss_fn: nn.Module,
                 values: torch.Tensor, origins: torch.Tensor, windows: Windows,
                 cfg: TrainConfig, epoch: int) -> float:
    model.train()
    total, count = 0.0, 0
    # Each member learns on its own: the sum of their losses gives each (disjoint)
    # parameter set exactly its own gradient. Validation scores the ensemble's median.
    members = _members(model)
    for batch in origins.split(cfg.batch_size):
        x, y = gather(values, batch, windows.lookback, windows.horizon)
        opt.zero_grad(set_to_none=True)
        loss = sum(window_loss(m, loss_fn, x, y) for m in members)
        if not torch.isfinite(loss):
            raise InputError(
                f"training diverged at epoch {epoch}: the loss became {loss.item()}; lower --lr "
                f"(now {cfg.lr}) or scale the data (--scaler standard); no model was written")
        loss.backward()
        for m in members:
            nn.utils.clip_grad_norm_(m.parameters(), cfg.clip)
        opt.step()
        total += loss.item() / len(members) * len(batch)
        count += len(batch)
    return total / max(count, 1)


def window_loss(model: Model, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss in each window's own units (see `GRURegressor.window_scale_of`), so every
    window counts alike whatever its amplitude: with MAE, a MASE-like training objective."""
    scale = model.window_scale_of(x)
    return loss_fn(model(x) / scale, y / scale)


@torch.no_grad()
def evaluate_loss(model: Model, values: torch.Tensor, origins: torch.Tensor,
                  windows: Windows, loss_fn: nn.Module, batch_size: int = 1024) -> float:
    model.eval()
    total = 0.0
    for batch in origins.split(batch_size):
        x, y = gather(values, batch, windows.lookback, windows.horizon)
        total += window_loss(model, loss_fn, x, y).item() * len(batch)
    return total / len(origins)


@torch.no_grad()
def predict_origins(model: Model, windows: Windows, origins: np.ndarray,
                    device: torch.device, batch_size: int = 1024) -> np.ndarray:
    """Forecasts (n, H) in original units for windows starting at `origins`."""
    model.eval()
    values = torch.from_numpy(windows.values).to(device)
    idx = torch.from_numpy(origins).to(device)
    preds = [model(gather(values, b, windows.lookback, windows.horizon)[0]).cpu()
             for b in idx.split(batch_size)]
    scaled = torch.cat(preds).double().numpy() if preds else np.zeros((0, windows.horizon))
    sid = windows.series_of(origins)
    return untransform_target(scaled * windows.scale[sid, :1] + windows.loc[sid, :1], windows.transform)
