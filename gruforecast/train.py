"""The training loop: Adam (AdamW with --weight-decay), gradient clipping, a moving average of the weights, early stopping
with the best weights restored.

Holds `TrainConfig` (the optimiser settings) and `fit`. Progress is reported through a callback, one `EpochLog`
per epoch; this module never prints. Same seed, same data, same numbers on the CPU.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from . import parallel
from .config import TrainConfig
from .errors import InputError
from .model import Ensemble, GRURegressor, members_of
from .windows import Origins, Windows

if TYPE_CHECKING:
    from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager


@dataclass
class EpochLog:
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float | None
    best_epoch: int
    seconds: float
    phase: str = "fit"  # "refit": the final training on every point


@dataclass
class FitResult:
    history: list[EpochLog] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
    processes: str | None = None  # how training went over torchrun's processes; None in one


Model = GRURegressor | Ensemble
CALIBRATION_WINDOWS = 20_000  # validation windows the conformal shifts are drawn from, at most
# Validation windows early stopping scores each epoch, at most: one seeded sample, the same
# every epoch, so an epoch costs the windows drawn, not the panel (2.3 M validation windows
# at 100,000 series would cost 100x the 20,000 trained on).
VALIDATION_WINDOWS = 20_000


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda but no CUDA GPU is visible; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise InputError(f"--device {name!r} is not known; use auto, cpu or cuda")
    return torch.device(name)


def fit(model: Model, windows: Windows, cfg: TrainConfig, device: torch.device,
        on_epoch: Callable[[EpochLog], None] | None = None, phase: str = "fit") -> FitResult:
    """Train `model` on the training windows; early-stop on the validation loss.

    Without validation windows (val_frac = 0) the training loss decides the best epoch.
    What is scored and kept each epoch is the moving average of the weights (`_Average`,
    `--ema-epochs`; the trained weights with 0). The model ends with the weights of the
    best epoch. Under torchrun (`parallel.py`)
    an ensemble of at least as many members as ranks is spread over them: member k
    trains on rank k mod N, on every window, with nothing exchanged but its weights at
    each epoch's end (the members are independent, so this is the one-process training,
    N times fewer members per process). A smaller ensemble trains data-parallel: each
    rank on its share of every epoch's windows, at N times the learning rate, the
    weights averaged over the ranks every `average_every` steps and at each epoch's end
    (post-local SGD), or with 1 the gradients at every step by DistributedDataParallel.
    Either way rank 0's scores decide for all.
    """
    rank, ranks = (parallel.rank(), parallel.world_size()) if parallel.active() else (0, 1)
    torch.manual_seed(cfg.seed + rank)  # a seed per rank (dropout); the weights are rank 0's
    rng = np.random.default_rng(cfg.seed)  # the same on every rank: one order
    values = Flat.of(windows, device)
    val = torch.from_numpy(sample_origins(windows.val, VALIDATION_WINDOWS, cfg.seed)).to(device)
    model.to(device)
    members = members_of(model)
    by_member = ranks > 1 and len(members) >= ranks
    mine = members[rank::ranks] if by_member else members
    loss_fn = {"mae": nn.L1Loss, "mse": nn.MSELoss, "huber": nn.HuberLoss}[cfg.loss]()
    data_parallel = ranks > 1 and not by_member
    parallel.share_members(members, source=0)  # every rank starts from rank 0's weights
    step = _Losses(mine, loss_fn)
    average = None
    if data_parallel and cfg.average_every == 1:
        step = parallel.wrap(step, device)  # DistributedDataParallel: gradients averaged every step
    elif data_parallel:
        average = parallel.averager(cfg.average_every)
    # The linear scaling rule (Goyal et al. 2017): a step of data-parallel training sees
    # `ranks` batches; at the single process's rate the same epochs trained less (benchmarks/scale.py).
    params = [p for m in mine for p in m.parameters()]
    # Decay shrinks the point forecast's weights towards zero, the base forecast; the
    # quantile head's towards zero would pull every band to its initial width instead.
    point = {id(p) for m in mine for p in m.point_parameters()}
    groups = [{"params": [p for p in params if id(p) in point], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if id(p) not in point], "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr * ranks if data_parallel else cfg.lr)
    result, best, best_state, since_best, ema = FitResult(), math.inf, None, 0, None
    if ranks > 1:
        sync = ("the gradients averaged at every step (DistributedDataParallel)" if cfg.average_every == 1
                else f"the weights averaged every {cfg.average_every} steps and at each epoch's end")
        result.processes = (f"{ranks} processes, {len(members)} members spread over them" if by_member else
                            f"{ranks} processes, data-parallel: learning rate {ranks} x {cfg.lr:g}, {sync}")
    start = time.perf_counter()
    drawn = cfg.epoch_windows(windows.lookback)  # windows an epoch draws at most
    for epoch in range(1, cfg.epochs + 1):
        order = (_series_order(rng, windows.train, drawn) if cfg.sample_by == "series"
                 else _epoch_order(rng, len(windows.train), drawn))
        if not by_member:  # dealt out, as many windows on every rank (at most ranks - 1 left
            # out): the same number of batches, so no rank waits in an all-reduce its peers never join
            order = order[: len(order) // ranks * ranks][rank::ranks]
        if ema is None and cfg.ema_epochs:  # from the initial weights; one epoch is this rank's batches
            ema = _Average(params, cfg.ema_epochs * -(-len(order) // cfg.batch_size))
        train_loss = _train_epoch(mine, step, opt, values, torch.from_numpy(windows.train[order]).to(device),
                                  windows, cfg, epoch, average, ema)
        if average is not None:  # the trained weights the same on every rank again, as the method has them
            parallel.average(model)
        if ema is not None:  # the averaged weights in the model, until the epoch ends
            ema.swap()
            if average is not None:  # each rank averaged its own steps
                parallel.average(model)
        if by_member:  # the mean over all members, then every member's weights on every rank
            train_loss = parallel.mean(train_loss * len(mine), device) * ranks / len(members)
            parallel.share_members(members)
        else:
            train_loss = parallel.mean(train_loss, device)
        val_loss = _val_loss(model, values, val, windows, loss_fn, rank, ranks, device) if len(val) else None
        score = parallel.from_main(val_loss if val_loss is not None else train_loss, device)
        if score < best:
            best, result.best_epoch, since_best = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
        log = EpochLog(epoch, cfg.epochs, train_loss, val_loss, result.best_epoch,
                       time.perf_counter() - start, phase)
        result.history.append(log)
        if on_epoch is not None:
            on_epoch(log)
        if ema is not None:  # the trained weights back, to go on training
            ema.swap()
        if since_best >= cfg.patience:
            result.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - start
    return result


def refit_epochs(best_epoch: int, fit_windows: int, refit_windows: int, cap: int | None) -> int:
    """The refit's epochs: the early-stopped fit's best epoch, times how many more windows
    an epoch of the refit draws than an epoch of that fit (each at most `cap`, the windows
    an epoch draws). The refit trains on the held-out parts too: on a panel of short series
    2H points more of 10-40, and an epoch of them then holds up to twice the steps. Epochs
    scaled down to the fit's steps lost on four development sets; scaled up, the refit
    trains longer still, which measured better (docs/model.md, "The model written has seen
    the latest data"). Where both fits draw a full epoch (`cap`), the epochs stay."""
    def drawn(n: int) -> int:
        return n if cap is None else min(n, cap)

    return max(1, round(best_epoch * drawn(refit_windows) / max(drawn(fit_windows), 1)))


def _val_loss(model: Model, values: Flat, val: torch.Tensor, windows: Windows, loss_fn: nn.Module,
              rank: int, ranks: int, device: torch.device) -> float:
    """The validation loss; over processes each rank scores its share of the windows and
    the shares' losses are pooled (weighted by their windows): the loss of them all."""
    if ranks == 1:
        return evaluate_loss(model, values, val, windows, loss_fn)
    share = val[rank::ranks].contiguous()  # searchsorted warns on a strided tensor
    loss = evaluate_loss(model, values, share, windows, loss_fn) if len(share) else 0.0
    return parallel.mean(loss * len(share), device) * ranks / len(val)


def sample_origins(origins: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """At most `cap` of `origins`, drawn with `seed`, in their order (all when fewer)."""
    if len(origins) <= cap:
        return origins
    return np.sort(np.random.default_rng(seed).choice(origins, size=cap, replace=False))


def _series_order(rng: np.random.Generator, origins: Origins, cap: int | None) -> np.ndarray:
    """`--sample-by series`: as many draws as `_epoch_order` makes, each a series (uniform
    over those with windows), then one of its windows (uniform). Where every series holds
    as many windows, that is every window alike: `_epoch_order`'s draw, kept as it is."""
    count = origins.count
    if len(np.unique(count[count > 0])) <= 1:
        return _epoch_order(rng, len(origins), cap)
    n = len(origins) if cap is None else min(cap, len(origins))
    has = np.flatnonzero(count > 0)
    series = has[rng.integers(0, len(has), size=n)]
    starts = np.cumsum(count) - count  # each series' first place in the flat order
    return starts[series] + (rng.random(n) * count[series]).astype(np.int64)


def _epoch_order(rng: np.random.Generator, n: int, cap: int | None) -> np.ndarray:
    if cap is not None and cap < n:
        return rng.choice(n, size=cap, replace=False)
    return rng.permutation(n)


class _Average:
    """Polyak averaging: an exponential moving average of the trained weights `params`,
    updated after every optimiser step, with a time constant of `steps` steps (about
    `--ema-epochs` epochs). The average starts at the initial weights and, as TensorFlow's
    `ExponentialMovingAverage` with `num_updates`, its decay ramps up from 2/11 over the
    first steps, so an early epoch is not scored on weights that are mostly the initial ones.

    `swap` exchanges the trained and the averaged weights in place: the averaged weights
    are then the model's own, so every path that shares weights over processes, scores the
    model and keeps its state works on them unchanged (torch's `swa_utils.AveragedModel`
    keeps them in a second module instead), and a second `swap` puts the trained weights
    back with the average as those paths left it."""

    def __init__(self, params: list[torch.Tensor], steps: float) -> None:
        self.params = params
        self.average = [p.detach().clone() for p in params]
        self.decay = 1.0 - 1.0 / max(1.0, steps)
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.average, self.params, 1.0 - decay)

    @torch.no_grad()
    def swap(self) -> None:
        for p, a in zip(self.params, self.average):
            trained = p.detach().clone()
            p.copy_(a)
            a.copy_(trained)


class _Losses(nn.Module):
    """The training losses of a batch as a module's forward, so DistributedDataParallel
    can wrap it: (the members' summed point loss, their summed pinball loss). Each member
    learns on its own: the sum of their losses gives each (disjoint) parameter set exactly
    its own gradient. Validation scores the ensemble's median."""

    def __init__(self, members: list[GRURegressor], loss_fn: nn.Module) -> None:
        super().__init__()
        self.members, self.loss_fn = nn.ModuleList(members), loss_fn

    def forward(self, x: torch.Tensor, y: torch.Tensor, future: torch.Tensor | None):
        losses = [window_losses(m, self.loss_fn, x, y, future) for m in self.members]
        return sum(p for p, _ in losses), sum(q for _, q in losses)


def _train_epoch(members: list[GRURegressor], step: nn.Module, opt: torch.optim.Optimizer,
                 values: Flat, origins: torch.Tensor, windows: Windows,
                 cfg: TrainConfig, epoch: int, average: PeriodicModelAverager | None = None,
                 ema: _Average | None = None) -> float:
    """One epoch of the `members` this process trains; their mean point loss per window.
    `average` (data-parallel over processes) averages the weights over the ranks every few
    steps; `ema` follows the weights after each step."""
    for m in members:
        m.train()
    total, count = 0.0, 0
    for batch in origins.split(cfg.batch_size):
        x, y, f = gather(values, batch, windows.lookback, windows.horizon)
        opt.zero_grad(set_to_none=True)
        point, spread = step(x, y, f)
        # The quantile heads learn beside the point, from its detached state (model.py).
        loss = point + spread
        if not torch.isfinite(loss):
            raise InputError(
                f"training diverged at epoch {epoch}: the loss became {loss.item()}; lower --lr "
                f"(now {cfg.lr}) or scale the data (--scaler standard); no model was written")
        loss.backward()
        for m in members:  # the quantile head apart, so the point trains as without it
            nn.utils.clip_grad_norm_(m.point_parameters(), cfg.clip)
            if m.spread is not None:
                nn.utils.clip_grad_norm_(m.spread.parameters(), cfg.clip)
        opt.step()
        if average is not None:
            average.average_parameters(step.parameters())
        if ema is not None:
            ema.update()
        total += point.item() / len(members) * len(batch)
        count += len(batch)
    return total / max(count, 1)


def window_loss(model: Model, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor,
                future: torch.Tensor | None = None) -> torch.Tensor:
    """The loss of the point forecast in each window's own units (`window_losses`)."""
    return window_losses(model, loss_fn, x, y, future)[0]


def window_losses(model: Model, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  future: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | float]:
    """From one forward pass: the loss of the median (the point forecast) and the pinball
    loss of the other quantiles (0.0 for a point model), both in each window's own units
    (see `GRURegressor.window_scale_of`), so every window counts alike whatever its
    amplitude: with MAE, a MASE-like training objective."""
    scale = model.window_scale_of(x).unsqueeze(-1)  # (B, 1, 1)
    out, y = model(x, future) / scale, (y.unsqueeze(-1) / scale)  # (B, H, Q), (B, H, 1)
    point = loss_fn(out[..., model.median], y[..., 0])
    keep = [j for j in range(out.shape[-1]) if j != model.median]
    if not keep:
        return point, 0.0
    q = torch.tensor([model.quantiles[j] for j in keep], dtype=out.dtype, device=out.device)
    return point, pinball(out[..., keep], y, q)


def pinball(pred: torch.Tensor, y: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss max(q e, (q - 1) e), e = y - pred, over every element."""
    e = y - pred
    return torch.maximum(q * e, (q - 1) * e).mean()


@torch.no_grad()
def calibrate(model: Model, windows: Windows, device: torch.device, seed: int = 0,
              cap: int = CALIBRATION_WINDOWS, forecast: Callable | None = None) -> np.ndarray | None:
    """Conformalised quantile regression (CQR) on the validation windows (at most `cap`,
    drawn with `seed`): the shifts (H, Q) that move each of the quantile head's quantiles
    outward until it holds on those windows (`conformal_shifts`), in each window's own
    units. `forecast(x, future)`: the quantiles calibrated (default: the model's; the
    forecaster's, combined with the naive, `Forecaster._quantiles`). None without
    validation windows."""
    if not len(windows.val):
        return None
    model.to(device).eval()
    values = Flat.of(windows, device)
    origins = _validation_sample(windows, seed, cap)
    side = torch.tensor([-1.0 if q < 0.5 else 1.0 for q in model.quantiles], device=device)
    scores = []
    for batch in origins.to(device).split(1024):
        x, y, f = gather(values, batch, windows.lookback, windows.horizon)
        excess = (y.unsqueeze(-1) - (forecast or model)(x, f)) * side  # > 0: y beyond the quantile, on its side
        scores.append((excess / model.window_scale_of(x).unsqueeze(-1)).cpu().double())
    model.cpu()
    return conformal_shifts(torch.cat(scores).numpy(), model.quantiles)


WIDTH_WINDOWS = 2048  # validation windows the refit's bands are measured on (`head_widths`)


def validation_inputs(windows: Windows, seed: int = 0, cap: int = WIDTH_WINDOWS) -> tuple | None:
    """(x, future) of at most `cap` validation windows, drawn with `seed`: what the early-stopped
    fit and the refit are both measured on (`head_widths`); None without validation windows."""
    if not len(windows.val):
        return None
    x, _, f = gather(Flat.of(windows), _validation_sample(windows, seed, cap), windows.lookback, windows.horizon)
    return x, f


def _validation_sample(windows: Windows, seed: int, cap: int) -> torch.Tensor:
    """At most `cap` validation origins drawn with `seed`: the calibration's and the widths' draw."""
    return torch.from_numpy(windows.val[_epoch_order(np.random.default_rng(seed), len(windows.val), cap)])


@torch.no_grad()
def head_widths(model: Model, inputs: tuple) -> np.ndarray:
    """(H, Q): the mean distance of each quantile of the head from the median, in each
    window's own units, over the windows `inputs` (the median's column 0)."""
    model.eval()
    x, f = inputs
    parts = []
    for i in range(0, len(x), 1024):
        xb = x[i: i + 1024]
        parts.append(model(xb, None if f is None else f[i: i + 1024]) / model.window_scale_of(xb).unsqueeze(-1))
    out = torch.cat(parts)
    return (out - out[..., model.median: model.median + 1]).abs().mean(0).double().numpy()


def transfer_shifts(shifts: np.ndarray, held_out: np.ndarray, refit: np.ndarray,
                    quantiles: tuple[float, ...]) -> np.ndarray:
    """The conformal shifts (H, Q) for the refit model, from the early-stopped fit's: less
    by as much as the refit's head is wider than the early-stopped fit's head, on average
    over the same validation windows, down to none. So a refit whose head is already wider
    gets a band as wide as the calibrated one (or its own head, if wider still), and one
    whose head is not keeps the shifts. The refit trained on the validation windows, so its
    head is measured there, not scored: on short series it is much wider than the
    early-stopped fit's (tourism's 80% head band covered .64 on the development split
    against .44), and the shifts made for the narrower head widened it far past its
    level. Its head being narrower is no sign its errors are larger (it trained on more),
    so there the shifts are not raised (raising them to match over-covered M3 quarterly:
    .853 / .974)."""
    outward = np.array([float(q > 0.5) - float(q < 0.5) for q in quantiles])  # the median: 0
    return outward * np.maximum(np.abs(shifts) - np.maximum(refit - held_out, 0.0), 0.0)


def conformal_shifts(scores: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """(H, Q) shifts from calibration scores (n, H, Q): how far y fell beyond each
    quantile on its own side (below a low quantile, above a high one). A quantile q above
    the median moves up by the k-th smallest score with k = ceil(q (n + 1)), one below by
    the k-th smallest with k = ceil((1 - q) (n + 1)) (split conformal's finite-sample rank:
    each one-sided bound holds at its level on exchangeable data). The median stays.

    Outward only: a quantile is widened, never narrowed. The validation windows also chose
    the early-stopping epoch, so the point forecast looks better on them than it will on
    new data: a head they call too wide may be right (M3 quarterly: narrowing it took the
    95% coverage from 0.951 to 0.840), while one they call too narrow is too narrow."""
    n = len(scores)
    ordered = np.sort(scores, axis=0)  # (n, H, Q)
    out = np.zeros(scores.shape[1:])
    for j, q in enumerate(quantiles):
        if q == 0.5:
            continue
        level = q if q > 0.5 else 1 - q
        k = min(int(np.ceil(level * (n + 1) - 1e-9)), n)  # 1e-9: 0.9 * 20 is 18.000...04
        out[:, j] = np.maximum(ordered[k - 1, :, j], 0.0) * (1.0 if q > 0.5 else -1.0)
    return out


@torch.no_grad()
def evaluate_loss(model: Model, values: Flat, origins: torch.Tensor,
                  windows: Windows, loss_fn: nn.Module, batch_size: int = 1024) -> float:
    model.eval()
    total = 0.0
    for batch in origins.split(batch_size):
        x, y, f = gather(values, batch, windows.lookback, windows.horizon)
        total += window_loss(model, loss_fn, x, y, f).item() * len(batch)
    return total / len(origins)


@dataclass
class Flat:
    """The scaled panel on the device: values (N, C) of the file's columns, series offsets
    (S + 1,), whether windows carry the mask channel and their series' index, the file's
    columns known in advance (`DataSpec.future`), and the derived columns
    (`Windows.calendar`, all known)."""

    values: torch.Tensor
    offsets: torch.Tensor
    mask: bool = False
    series_index: bool = False  # windows carry their series' index last (`--series-embedding`)
    known: torch.Tensor | None = None
    calendar: torch.Tensor | None = None  # (G, D)
    to_calendar: torch.Tensor | None = None  # (S,) a series' calendar row minus its flat row

    @classmethod
    def of(cls, windows: Windows, device: torch.device | str = "cpu") -> Flat:
        C = windows.values.shape[1]
        own = [c for c in windows.known if c < C]  # the derived columns come after the file's
        known = torch.tensor(own, dtype=torch.int64, device=device) if own else None
        flat = cls(torch.from_numpy(windows.values).to(device), torch.from_numpy(windows.offsets).to(device),
                   mask=windows.mask, series_index=windows.series_index, known=known)
        if windows.calendar is not None:
            flat.calendar = torch.from_numpy(windows.calendar).to(device)
            flat.to_calendar = torch.from_numpy(windows.calendar_at - windows.offsets[:-1]).to(device)
        return flat


def gather(flat: Flat, origins: torch.Tensor, lookback: int,
           horizon: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Cut the windows of a batch: inputs (B, L, C[+2]), targets (B, H) of column 0, and
    the known-future columns over the horizon (B, H, F), None without any.
    Input rows before the start of their series repeat its first row (padding), and the
    mask channel says which rows were observed: `windows.window_rows`, on the device;
    the series' index comes last (`flat.series_index`).
    Inputs are the rows before the origin only; from the origin on, only the target (as
    the label) and the known columns are read: a past feature cannot leak."""
    steps_in = torch.arange(-lookback, 0, device=origins.device)
    steps_out = torch.arange(0, horizon, device=origins.device)
    series = torch.searchsorted(flat.offsets, origins, right=True) - 1
    start = flat.offsets[series][:, None]
    idx = origins[:, None] + steps_in
    rows = torch.maximum(idx, start)
    x = flat.values[rows]  # (B, L, C)
    ahead = origins[:, None] + steps_out
    y = flat.values[ahead, 0]  # (B, H)
    future = flat.values[ahead[..., None], flat.known] if flat.known is not None else None
    if flat.calendar is not None:  # the derived columns, from each row's place on its grid
        shift = flat.to_calendar[series][:, None]
        x = torch.cat([x, flat.calendar[rows + shift]], dim=-1)
        ahead_calendar = flat.calendar[ahead + shift]
        future = ahead_calendar if future is None else torch.cat([future, ahead_calendar], dim=-1)
    if flat.mask:
        x = torch.cat([x, (idx >= start).unsqueeze(-1).to(x.dtype)], dim=-1)
    if flat.series_index:
        x = torch.cat([x, series[:, None, None].expand(-1, lookback, 1).to(x.dtype)], dim=-1)
    return x, y, future
