"""`Forecaster`: windows in, forecasts out, for every path that forecasts.

A Forecaster holds the configs, the network, the per-series scalers and what it needs to
forecast from the end of its training data (each series' id, last time and last
`lookback` observations). It is what the model file stores (`artifact.py`).

- `fit(panel)`: windows, scalers fitted on each series' training part, the network trained;
  `keep_ends(panel)` then keeps the tails `predict` needs, for the model kept.
- `forecast_origins(panel, positions)`: forecasts from any origins of a panel (an origin is
  the position of a window's first target: the model reads only the `lookback` values
  before it). The one path behind the held-out test scores of `train`, every fold of
  `backtest`, batch's keep-better comparison and `predict --cutoffs`.
- `predict(panel=None, horizon=None)`: from the end of the stored data or of `panel`.
- `predict_at(panel, cutoffs, step, horizon)`: from the last `cutoffs` origins of `panel`,
  with the actual values beside the forecasts (Nixtla's cross_validation layout).

Forecasts are (n, K, Q) arrays of the quantiles `Forecaster.quantiles` (the median, the
point forecast, always among them; Q = 1 for a point model); frames have `forecast` and
the interval columns of `ModelConfig.columns` (lo-80, hi-80, ... or q0.05, ...).

Known-future columns (`DataSpec.known`: future features, calendar, holidays) are read
over the forecast steps too: from the data itself at origins inside it (`predict_at`,
the held-out scores), and after its end from the timestamps and the future file
(`predict(future=...)`, `covariates.read_future`). Nothing else is read at or after an
origin: the rows after it are built with every other column repeating the last observed
row (`_rows_after`), so a past feature's or the target's future never enters a tensor.

Past the trained horizon H, point forecasts roll forward recursively on their own output
(refused for models with past features, whose future values are unknown, and for
intervals, which are calibrated on the trained horizon only: `points_only()` drops them).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import __version__, spill
from .atomic import atomic_write
from .config import ModelConfig, TrainConfig
from .covariates import read_future, unread_columns
from .data import DataSpec, Panel, Session, conform
from .errors import InputError
from .model import Ensemble, GRURegressor, build_model, members_of, seasonal_naive
from .scaling import Scaling
from .seasons import at_least_daily
from .windows import FEW_WINDOWS, MIN_HISTORY, WindowConfig, window_rows, with_mask

BATCH = 1024  # windows per forward pass when forecasting: memory bounded by the batch
MAX_HORIZON = 100_000  # steps one call may forecast (a recursive roll-out is one pass per H)


def _blocks(pieces: Iterable[tuple[np.ndarray, np.ndarray]], size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs of arrays of any length, in order -> blocks of exactly `size` rows (the last
    may be shorter): the forward batches, and so the forecasts, are those of one block."""
    held, count = [], 0
    for piece in pieces:
        held.append(piece)
        count += len(piece[0])
        while count >= size:
            inputs, ahead = (np.concatenate(part) for part in zip(*held))
            yield inputs[:size], ahead[:size]
            held, count = [(inputs[size:], ahead[size:])], count - size
    if count:
        yield tuple(np.concatenate(part) for part in zip(*held))


def cutoff_positions(panel: Panel, cutoffs: int, step: int, horizon: int) -> np.ndarray:
    """(S, N) origins of the last N windows of each series, S steps apart, the last one
    ending at the end of the data: o_k = n - K - (N - 1 - k) S (Nixtla's cutoffs, and
    the folds of `backtest`)."""
    if cutoffs < 1 or step < 1:
        raise InputError(f"--cutoffs ({cutoffs}) and --step ({step}) must be >= 1")
    n = np.array([len(s) for s in panel.series], dtype=np.int64)[:, None]
    return n - horizon - (cutoffs - 1 - np.arange(cutoffs))[None, :] * step


@dataclass
class Forecast:
    frame: pd.DataFrame  # id column (if any), time column, "forecast", intervals (+ "cutoff", "actual")
    recursive: bool  # True when K > H rolled the model forward on its own forecasts
    columns: tuple[str, ...] = ()  # the interval columns beside "forecast"
    unseen: tuple[str, ...] = ()  # series not in training, scaled on their own history (`with_unseen`)


@dataclass
class Forecaster:
    """A trained model and the context to forecast with it."""

    window_cfg: WindowConfig  # resolved: lookback, horizon and season set
    model_cfg: ModelConfig = field(default_factory=ModelConfig)
    train_cfg: TrainConfig = field(default_factory=TrainConfig)
    data_spec: DataSpec = field(default_factory=DataSpec)
    model: GRURegressor | Ensemble | None = None
    scaling: Scaling | None = None
    freq: str | None = None
    step: int = 1
    time_dtype: str = "datetime"
    series_ids: list[str] = field(default_factory=list)
    last_times: list = field(default_factory=list)  # pd.Timestamp or int per series
    tail: np.ndarray | None = None  # (S, L, C) the last lookback observations, data units;
    # a series shorter than L is NaN before its first point
    metrics: dict = field(default_factory=dict)
    package_version: str = __version__
    calibration: np.ndarray | None = None  # (H, Q) conformal shifts in window units (`train.calibrate`)
    with_intervals: bool = True  # False: forecast the median alone (`points_only`)
    on_progress: Callable[[int, int], None] | None = None  # (done, total) passes: a progress bar

    @property
    def quantiles(self) -> tuple[float, ...]:
        """The quantiles a forecast holds, sorted, with the median."""
        return self.model_cfg.output_quantiles if self.with_intervals else (0.5,)

    @property
    def median(self) -> int:
        return self.quantiles.index(0.5)

    @property
    def interval_columns(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.model_cfg.columns) if len(self.quantiles) > 1 else ()

    def points_only(self) -> Forecaster:
        """This forecaster without intervals: the median alone, which may roll past H."""
        return replace(self, with_intervals=False)

    @property
    def season(self) -> int:
        return self.window_cfg.season

    @property
    def lookback(self) -> int:
        return self.window_cfg.lookback

    @property
    def horizon(self) -> int:
        return self.window_cfg.horizon

    def fit(self, panel: Panel, device: str = "cpu", on_epoch: Callable | None = None,
            epochs: int | None = None, fit_windows: int | None = None):
        """Train on `panel` (resolved with `windows.resolve`); return (FitResult, Windows).
        With `epochs`, train on every point (no held-out parts) for that many epochs: the
        refit that `train` ends with; with `fit_windows` too (the early-stopped fit's
        training windows), that many scaled by the windows the refit adds to an epoch
        (`train.refit_epochs`)."""
        from .train import fit, pick_device, refit_epochs
        from .windows import make_windows

        dev = pick_device(device)
        wcfg, tcfg = self.window_cfg, self.train_cfg
        if epochs is not None:
            wcfg = replace(wcfg, val_frac=0.0, test_frac=0.0)
        windows, self.scaling = make_windows(panel, wcfg, self.model_cfg.series_embedding)
        if epochs is not None:
            if fit_windows is not None:
                epochs = refit_epochs(epochs, fit_windows, len(windows.train), tcfg.epoch_windows(self.lookback))
            tcfg = replace(tcfg, epochs=epochs, patience=epochs)
        torch.manual_seed(tcfg.seed)  # weight init is part of the seeded run
        self.model = build_model(self.model_cfg, self.window_cfg.channels(panel.spec.n_values),
                                 self.lookback, self.horizon, self.season, panel.spec.known,
                                 unread(self.model_cfg, panel.spec, panel.freq, self.window_cfg),
                                 self.window_cfg.scales_observed, panel.spec.future, len(panel.series))
        result = fit(self.model, windows, tcfg, dev, on_epoch, phase="fit" if epochs is None else "refit")
        self.model.cpu().eval()
        self.data_spec, self.freq, self.step, self.time_dtype = panel.spec, panel.freq, panel.step, panel.time_dtype
        if Session.parse(panel.freq) is not None and panel.spec.freq is None:
            # fresh data (`predict --data`) is read on the same session, not detected again
            self.data_spec = replace(panel.spec, freq=panel.freq)
        self.series_ids = [s.id for s in panel.series]  # the scalers' order
        return result, windows

    def keep_ends(self, panel: Panel) -> None:
        """What `predict` needs of the data it was fitted on: each series' last time and
        last `lookback` rows (the tails: 134 MB at 100,000 series, made once, for the model
        kept, after its windows are gone)."""
        self.last_times = [s.last for s in panel.series]
        first = panel.series[0].rows(-1)
        self.tail = spill.empty((len(panel.series), self.lookback, first.shape[1]), np.float64)
        for k, s in enumerate(panel.series):
            self.tail[k] = _tail(s.rows(-self.lookback), self.lookback)

    # -- forecasting ------------------------------------------------------------------

    def forecast_origins(self, panel: Panel, positions: list[np.ndarray], horizon: int | None = None,
                         ahead: list[np.ndarray] | None = None) -> np.ndarray:
        """Forecasts (n, K, Q) in data units from the origins `positions[i]` of series i of
        `panel`, series after series. Only the `lookback` rows before an origin are read,
        and after it the known columns: from the panel, or from `ahead[i]` (n_i, K, C),
        the rows after each origin in data units (`_ahead`), when forecasting past its end."""
        K = self._checked_horizon(horizon)
        panel = conform(panel, self.data_spec)
        index = self._index_of(panel)
        rows_index = np.repeat(index, [len(p) for p in positions])
        pieces = self._origin_inputs(panel, index, positions, K, ahead)
        return self._forecast(_blocks(pieces, BATCH), rows_index, K)

    def _origin_inputs(self, panel: Panel, index: np.ndarray, positions: list[np.ndarray], K: int,
                       ahead: list[np.ndarray] | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The scaled inputs and rows after of `forecast_origins`, BATCH origins of a
        series at a time: made as they are forecast, so that the float64 work arrays are
        a batch's (20,000 validation windows at once took 258 MB at 100,000 series)."""
        L = self.lookback
        for k, (s, pos) in enumerate(zip(panel.series, positions)):
            pos = np.asarray(pos, dtype=np.int64)
            if not len(pos):  # nothing to forecast: its rows are not joined for nothing
                continue
            if pos.min() < self.min_history:
                raise InputError(f"series {s.id!r} has {int(pos.min())} points before a forecast "
                                 f"origin, fewer than the {self.min_history} this model needs "
                                 f"(its lookback); give more history")
            values = s.rows()  # (n, C): the file's columns and the derived ones
            for a in range(0, len(pos), BATCH):
                p = pos[a:a + BATCH]
                rows, observed = window_rows(values, p, L)  # (n, L, C), (n, L)
                after = ahead[k][a:a + BATCH] if ahead is not None else self._rows_after(s.id, values, p, K)
                scaled = self.scaling.apply(np.concatenate([rows, after], axis=1), index[k], s.id)
                yield self._inputs(scaled[:, :L], observed, index[k]), scaled[:, L:]

    def _check_read(self, panel: Panel, positions: list[np.ndarray]) -> None:
        """At predict: refuse a target the model cannot take in the rows it reads before
        the origins `positions`, naming its series and time. At or below zero for a log
        model (the scaler's own check could only say "row 12" of a window, and "use
        --transform none", which is for train); below zero for a model that clips at zero,
        whose forecasts of a series gone negative were all 0 with bands of no width (a
        series unseen in training is refused the same way, `with_unseen`)."""
        if self.scaling.transform == "log":
            bad, why = (lambda v: v <= 0), ("the model reads the log of the target (--transform log), which needs "
                                            "values above 0; correct or fill that value, or train with --transform none")
        elif self.window_cfg.non_negative:
            bad, why = (lambda v: v < 0), ("the model clips its forecasts at zero (its training data never went "
                                           "below); correct that value, or retrain on data that holds it")
        else:
            return
        for s, pos in zip(panel.series, positions):
            if not len(pos):
                continue
            start = max(0, int(np.min(pos)) - self.lookback)
            hit = np.flatnonzero(bad(s.values[start:int(np.max(pos)), 0]))
            if len(hit):
                at = start + int(hit[0])
                raise InputError(f"series {s.id!r} has {s.values[at, 0]:g} at {s.time[at]}, and {why}")

    def _rows_after(self, sid: str, values: np.ndarray, pos: np.ndarray, K: int) -> np.ndarray:
        """(n, K, C) the rows after each origin of series `sid` (`values` (N, C)) as the
        model may see them: the known columns as in the data, every other column the last
        row before the origin repeated."""
        last = values[np.maximum(pos - 1, 0)]  # (n, C)
        after = np.repeat(last[:, None, :], K, axis=1)
        known = list(self.data_spec.known)
        if known and len(pos):
            ends = pos + K
            if ends.max() > len(values):
                raise InputError(
                    f"series {sid!r}: the model reads {', '.join(self.known_names)} over the {K} forecast steps, "
                    f"and the data ends {int(ends.max() - len(values))} steps before the last of them; "
                    "forecast from the end of the data with --future, or lower --horizon")
            idx = pos[:, None] + np.arange(K)[None, :]
            after[..., known] = values[idx][..., known]
        return after

    @property
    def known_names(self) -> tuple[str, ...]:
        spec = self.data_spec
        return (*spec.future_features, *spec.derived)

    def _ahead(self, last_rows: np.ndarray, ids: list[str], times: list[pd.Index],
               future: str | Path | None) -> np.ndarray:
        """(S, K, C) rows for the K steps after each series' end, in data units: the future
        features from the `future` file, the calendar and holidays from the timestamps,
        every other column the last row repeated (read by no one as the future)."""
        spec = self.data_spec
        K = len(times[0]) if times else 0
        ahead = np.repeat(np.asarray(last_rows, dtype=np.float64)[:, None, :], K, axis=1)
        if spec.future_features:
            if future is None:
                raise InputError(
                    f"the model reads the future features {', '.join(spec.future_features)} over the forecast "
                    f"steps; pass --future FILE with the id, time and those columns for the {K} steps "
                    "after each series' end")
            ahead[..., list(spec.future)] = read_future(future, spec, ids, times, at_least_daily(self.freq))
        elif future is not None:
            raise InputError("--future gives the values of future features, and this model has none; drop --future")
        if spec.derived and K:
            ahead[..., len(spec.value_columns):] = np.stack([spec.derived_values(t) for t in times])
        return ahead

    def without_short(self, panel: Panel) -> tuple[Panel, str | None]:
        """`predict --short-series skip`: the series with fewer points than a forecast
        needs (`min_history`) left out, and a note naming them; the rest are forecast. A
        nightly panel where a new store has a week of history then still gets its other
        forecasts; refused when no series is left."""
        keep, dropped = [], []
        for s in panel.series:
            (keep if len(s) >= self.min_history else dropped).append(s)
        if not keep:
            raise InputError(f"every series has fewer points than the {self.min_history} this model needs (its "
                             "lookback); give more history")
        if not dropped:
            return panel, None
        return replace(panel, series=keep), (
            f"skipped {len(dropped)} series too short to forecast (first: {dropped[0].id!r}, {len(dropped[0])} "
            f"points; the model needs {self.min_history})")

    @property
    def min_history(self) -> int:
        """Observed points a forecast origin needs: the lookback, or one with padding."""
        return MIN_HISTORY if self.window_cfg.mask else self.lookback

    def _inputs(self, scaled: np.ndarray, observed: np.ndarray, index: np.ndarray | int) -> np.ndarray:
        """Scaled windows (n, L, C) of series `index` as the model reads them: with the mask
        channel if it has one, then the series' index if it learns an embedding of each."""
        x = with_mask(scaled, observed) if self.window_cfg.mask else scaled
        if not self.model_cfg.series_embedding:
            return x
        column = np.broadcast_to(np.reshape(index, (-1, 1, 1)), (*x.shape[:2], 1))
        return np.concatenate([x, column.astype(x.dtype)], axis=-1)

    def predict(self, panel: Panel | None = None, horizon: int | None = None,
                future: str | Path | None = None) -> Forecast:
        """Forecast `horizon` steps (default: the trained H) after the end of each series of
        `panel`, or of the data stored in the model; `future`: the file of the future
        features' values over those steps (`covariates.read_future`)."""
        K = self._checked_horizon(horizon)
        if panel is None:
            ids, last = self.series_ids, self.last_times
            times = self.times_after(last, K)
            ahead = self._ahead(self.tail[:, -1], ids, times, future)
            blocks = (self._tail_inputs(np.arange(a, min(a + BATCH, len(ids))), ahead[a:a + BATCH])
                      for a in range(0, len(ids), BATCH))  # made as they are forecast: memory is a block's
            values = self._forecast(blocks, np.arange(len(ids)), K)
        else:
            panel = conform(panel, self.data_spec)
            fc, unseen = self.with_unseen(panel)
            if unseen:
                return replace(fc.predict(panel, horizon, future), unseen=unseen)
            self._index_of(panel)  # unknown frequencies first, before the future file
            ids, last = [s.id for s in panel.series], [s.last for s in panel.series]
            times = self.times_after(last, K)
            ahead = self._ahead(np.stack([s.rows(-1)[0] for s in panel.series]), ids, times, future)
            origins = [np.array([len(s)]) for s in panel.series]
            self._check_read(panel, origins)
            values = self.forecast_origins(panel, origins, K, ahead=[a[None] for a in ahead])
        frame = self._frame(ids, times, values)
        return Forecast(frame, K > self.horizon, self.interval_columns)

    def with_unseen(self, panel: Panel) -> tuple[Forecaster, tuple[str, ...]]:
        """This forecaster and (), or, when `panel` holds series it was not trained on (a
        new store in tonight's data), a copy that knows them too, each scaled on its own
        history as given (the network is one for all series, in each series' own units:
        NeuralForecast and Darts forecast new series so), and their ids. Static features
        keep the training panel's scaler. Refused where the model holds something per
        series it cannot have: a learned state (`--series-embedding`)."""
        known = set(self.series_ids)
        unseen = [s for s in panel.series if s.id not in known]
        if not unseen:
            return self, ()
        if self.model_cfg.series_embedding:
            raise InputError(f"series {unseen[0].id!r} is not in the model, which learned a state for each series "
                             "it was trained on (--series-embedding); retrain with it or drop it from --data")
        below = next((s for s in unseen if (s.values[:, 0] < 0).any()), None)
        if below is not None and self.window_cfg.non_negative:
            raise InputError(f"series {below.id!r} is not in the model and goes below zero, and the model clips "
                             "its forecasts at zero (its training data never did); retrain with it")
        zero = next((s for s in unseen if (s.values[:, 0] <= 0).any()), None)
        if zero is not None and self.scaling.transform == "log":
            raise InputError(f"series {zero.id!r} is not in the model and is not above zero everywhere, and the "
                             "model reads the log of the target; retrain with it or drop it from --data")
        spec, old = self.data_spec, self.scaling
        ids = [s.id if spec.id_col else None for s in unseen]
        own = Scaling.fit([s.values for s in unseen], self.window_cfg.scaler, old.transform, ids,
                          derived=len(spec.derived), whole=[s.values for s in unseen])
        static = list(spec.static)  # one scaler across the series: the training panel's
        own.loc[:, static], own.scale[:, static] = old.loc[0, static], old.scale[0, static]
        scaling = Scaling(np.vstack([old.loc, own.loc]), np.vstack([old.scale, own.scale]), old.transform)
        # for this panel's forecast only: the stored tails and last times stay the trained series'
        return replace(self, scaling=scaling, series_ids=[*self.series_ids, *(s.id for s in unseen)]), \
            tuple(s.id for s in unseen)

    def _tail_inputs(self, index: np.ndarray, ahead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stored tails of series `index` as the model reads them, and the rows after
        them, scaled: a block of series at a time, so the float64 work arrays are a
        block's (100,000 tails at once took 500 MB more)."""
        tail = self.tail[index]
        observed = np.isfinite(tail[..., 0])  # (n, L): padded rows are NaN
        first = np.argmax(observed, axis=1)[:, None]  # the series' first stored row
        rows = np.take_along_axis(tail, np.maximum(np.arange(self.lookback), first)[..., None], 1)
        scaled = self.scaling.apply(np.concatenate([rows, ahead], axis=1), index)
        return self._inputs(scaled[:, :self.lookback], observed, index), scaled[:, self.lookback:]

    def predict_at(self, panel: Panel, cutoffs: int, step: int | None = None,
                   horizon: int | None = None) -> Forecast:
        """Forecasts from the last `cutoffs` origins of each series, `step` apart (default
        the horizon), the last window ending at the end of the data; one row per (series,
        cutoff, time) with `cutoff` (the last time seen) and `actual` columns."""
        K, step = self._checked_horizon(horizon), self.horizon if step is None else step
        positions = cutoff_positions(panel, cutoffs, step, K)
        for s, pos in zip(panel.series, positions):  # the first window must fit: say why not
            if pos[0] < self.min_history:
                raise InputError(
                    f"series {s.id!r} has {len(s)} points, too few for {cutoffs} cutoffs {step} steps "
                    f"apart with lookback {self.lookback} and horizon {K}; lower --cutoffs or --step")
        self._check_read(panel, positions)
        values = self.forecast_origins(panel, positions, K)
        ids, times, cuts, actual = [], [], [], []
        for s, pos in zip(panel.series, positions):
            for p in pos:
                ids.append(s.id)
                times.append(s.time[p: p + K])
                cuts.append(s.time[p - 1])
                actual.append(s.values[p: p + K, 0])
        frame = self._frame(ids, times, values)
        frame.insert(frame.columns.get_loc("forecast"), "cutoff", pd.Index(cuts).repeat(K))
        frame["actual"] = np.concatenate(actual)
        return Forecast(frame, K > self.horizon, self.interval_columns)

    def _checked_horizon(self, horizon: int | None) -> int:
        K = self.horizon if horizon is None else horizon
        if not 1 <= K <= MAX_HORIZON:
            raise InputError(f"--horizon ({K}) must be between 1 and {MAX_HORIZON}")
        if K > self.horizon and self.data_spec.features:
            raise InputError(
                f"--horizon {K} is beyond the trained horizon {self.horizon} and the model uses past features, "
                f"whose future values are unknown; use --horizon <= {self.horizon}, retrain with a longer "
                "--horizon, or pass them as --future-features")
        if K > self.horizon and len(self.quantiles) > 1:
            raise InputError(
                f"--horizon {K} is beyond the trained horizon {self.horizon}, and intervals are calibrated "
                f"on the trained horizon only; use --horizon <= {self.horizon}, or --level none for "
                "point forecasts beyond it")
        return K

    def _index_of(self, panel: Panel) -> np.ndarray:
        if panel.freq != self.freq:
            raise InputError(
                f"the data's frequency {panel.freq} differs from the model's {self.freq}; give data at the model's frequency"
            )
        known = {sid: i for i, sid in enumerate(self.series_ids)}
        index = []
        for s in panel.series:
            if s.id not in known:
                raise InputError(f"series {s.id!r} is not in the model, and forecasts at cutoffs take only trained "
                                 "series (a new one's scaler would read its values after the cutoffs); retrain with "
                                 "it or drop it from --data")
            index.append(known[s.id])
        return np.array(index, dtype=np.int64)

    @torch.no_grad()
    def _forecast(self, blocks: Iterable[tuple[np.ndarray, np.ndarray]], index: np.ndarray, K: int) -> np.ndarray:
        """Blocks of (n, L, C') windows and (n, K, C) the rows after them (`_rows_after`),
        in model units, of series `index` (every block's rows in turn; blocks of BATCH rows
        but the last, or one block) -> (len(index), K, Q) in data units. Each quantile is
        inverted on its own: the maps are increasing, so quantiles stay ordered."""
        self.model.eval()
        rounds = -(-K // self.horizon)  # one pass per H steps
        passes = -(-len(index) // BATCH) * rounds
        done = itertools.count(1)  # blocks not cut at BATCH make more passes: the bar stops at its end
        tick = (lambda: self.on_progress(min(next(done), passes), passes)) if self.on_progress else (lambda: None)
        out, start = [], 0
        for inputs, ahead in blocks:
            if ahead.shape[1] < rounds * self.horizon:  # whole passes: the steps past K are dropped
                pad = np.repeat(ahead[:, -1:], rounds * self.horizon - ahead.shape[1], axis=1)
                ahead = np.concatenate([ahead, pad], axis=1)
            for x, a in zip(torch.from_numpy(inputs).split(BATCH), torch.from_numpy(ahead).split(BATCH)):
                rows = index[start:start + len(x)]
                scaled = self._roll(x, a, K, tick, self._zero(rows)).double().numpy()
                values = np.stack([self.scaling.invert(scaled[..., j], rows) for j in range(scaled.shape[-1])], -1)
                # data that never went below zero is not forecast below it (clipping keeps the order)
                out.append(np.maximum(values, 0.0) if self.window_cfg.non_negative else values)
                start += len(x)
        return np.concatenate(out) if out else np.zeros((0, K, len(self.quantiles)))

    def _quantiles(self, x: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, C), (B, H, F) -> (B, H, Q) in model units: the network's quantiles, combined
        with the window's seasonal naive (`--naive-weight`: all moved by the weight times the
        naive's distance from the median), then shifted by the
        conformal shifts (in each window's own scale) when calibrated. Two shifted
        quantiles may meet: each is kept at or beyond its inner neighbour (a running
        min below the median, max above), so the calibrated bands stay nested."""
        out = self.model(x, future)
        med = self.model.median
        if self.model_cfg.naive_weight:  # the combination moves every quantile with the median
            naive = seasonal_naive(x[..., 0], self.season, self.horizon)
            out = out + (self.model_cfg.naive_weight * (naive - out[..., med])).unsqueeze(-1)
        if not self.with_intervals:
            return out[..., med:med + 1]
        if self.calibration is None:
            return out
        out = out + self.model.window_scale_of(x).unsqueeze(-1) * torch.from_numpy(self.calibration).to(out.dtype)
        below = out[..., :med + 1].flip(-1).cummin(-1).values.flip(-1)
        above = out[..., med:].cummax(-1).values
        return torch.cat([below[..., :med], out[..., med:med + 1], above[..., 1:]], dim=-1)

    def _zero(self, rows: np.ndarray) -> torch.Tensor | None:
        """(B,) zero in model units for series `rows` when forecasts are clipped at zero
        (`non_negative`; the log never reaches it), else None."""
        if not self.window_cfg.non_negative or self.scaling.transform == "log":
            return None
        return torch.from_numpy(self.scaling.apply(np.zeros((len(rows), 1, 1)), rows)[:, 0, 0])

    def _roll(self, x: torch.Tensor, ahead: torch.Tensor, K: int, tick: Callable[[], None],
              zero: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, C'), (B, >= K, C) -> (B, K, Q): the direct H steps, then (points only)
        recursively on its own output, the rows after the window taking the forecast as
        their target, clipped at `zero` (B,) where it is given, as the forecast written is;
        `tick` after each pass."""
        H, L = self.horizon, self.lookback
        known = list(self.data_spec.known)
        future = (lambda j: ahead[:, j * H:(j + 1) * H][..., known]) if known else (lambda j: None)
        chunks = [self._quantiles(x, future(0))]
        tick()
        while len(chunks) * H < K:
            new = ahead[:, (len(chunks) - 1) * H:len(chunks) * H].clone()  # (B, H, C)
            new[..., 0] = chunks[-1][..., self.median]  # the forecast, observed from now on
            if zero is not None:
                new[..., 0] = torch.maximum(new[..., 0], zero.to(new.dtype)[:, None])
            # the columns after the data's (the mask, the series' index) as in the window's
            # last row: observed, and the same series
            new = torch.cat([new, x[:, -1:, new.shape[-1]:].expand(-1, H, -1)], dim=-1)
            x = torch.cat([x, new], dim=1)[:, -L:]
            chunks.append(self._quantiles(x, future(len(chunks))))
            tick()
        return torch.cat(chunks, dim=1)[:, :K]

    def future_times(self, last, K: int) -> pd.Index:
        """The K times after `last`: the next dates at the frequency, or the next steps."""
        if self.freq is None:
            return pd.Index(int(last) + self.step * np.arange(1, K + 1), dtype="int64")
        session = Session.parse(self.freq)
        if session is not None:  # the next open steps (every weekday of the session)
            return session.after(last, K)
        return pd.date_range(pd.Timestamp(last), periods=K + 1, freq=self.freq)[1:]

    def times_after(self, lasts: list, K: int) -> list[pd.Index]:
        """`future_times` of each of `lasts`, made once per distinct time: a panel's series
        mostly end together, and 100,000 date ranges took 4 s of a 12 s predict."""
        made: dict = {}
        return [made[t] if t in made else made.setdefault(t, self.future_times(t, K)) for t in lasts]

    def _frame(self, ids: list[str], times: list, values: np.ndarray) -> pd.DataFrame:
        spec = self.data_spec
        K = values.shape[1]
        frame = {}
        if spec.id_col is not None:
            frame[spec.id_col] = np.repeat(np.array(ids, dtype=object), K)
        frame[spec.time_col] = np.concatenate([np.asarray(t) for t in times])
        frame["forecast"] = values[..., self.median].ravel()
        for name, q in self.model_cfg.columns if self.interval_columns else ():
            frame[name] = values[..., self.quantiles.index(q)].ravel()
        return pd.DataFrame(frame)


SCORED_WINDOWS = 20_000  # held-out windows scored at most (a seeded sample beyond): memory bounded


def unread(mcfg: ModelConfig, spec: DataSpec, freq: str | None, wcfg: WindowConfig) -> tuple[int, ...]:
    """The value columns the GRU does not read over the lookback (`unread_columns`); with
    `read_repeating` (and in models written before it) the future features alone."""
    if mcfg.read_repeating:
        return spec.future
    return unread_columns(spec, freq, wcfg.season, mcfg.reads_by_season(wcfg.season, wcfg.lookback))


def scored_sample(origins: np.ndarray, seed: int) -> np.ndarray:
    """At most SCORED_WINDOWS of the held-out `origins`, drawn with `seed`, in order."""
    from .train import sample_origins

    return sample_origins(origins, SCORED_WINDOWS, seed)


def check_future(panel: Panel, wcfg: WindowConfig, future: str | Path | None) -> None:
    """Before training: the future file the forecast after the data will need (for
    `--future-features`), read and aligned now, so a bad one fails before the work."""
    if not panel.spec.future_features and future is None:
        return
    probe = Forecaster(window_cfg=wcfg, data_spec=panel.spec, freq=panel.freq, step=panel.step)
    probe._ahead(np.stack([s.rows(-1)[0] for s in panel.series]), [s.id for s in panel.series],
                 probe.times_after([s.last for s in panel.series], wcfg.horizon), future)


def _tail(values: np.ndarray, L: int) -> np.ndarray:
    """A series' last L rows, NaN before its first when it has fewer (see `predict`)."""
    tail = np.full((L, values.shape[1]), np.nan)
    tail[L - min(L, len(values)):] = values[-L:]
    return tail


def write_forecast(fc: Forecast, path: str | Path) -> Path:
    """Write a forecast frame atomically as CSV or Parquet (by the extension)."""
    path = Path(path)
    values = fc.frame.drop(columns=[c for c in fc.frame.columns if c not in ("forecast", *fc.columns)])
    if not np.isfinite(values.to_numpy(dtype=float)).all():
        raise InputError("the forecast holds NaN or infinity; nothing written; check the data's scale and retrain")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return atomic_write(path, lambda p: fc.frame.to_parquet(p, index=False, engine="pyarrow"))
    if suffix == ".csv":
        return atomic_write(path, lambda p: fc.frame.to_csv(p, index=False))
    raise InputError(f"output {path.name!r} has an unknown extension; use .csv or .parquet")


@dataclass
class TrainRun:
    forecaster: Forecaster
    fit: object  # train.FitResult
    report: dict  # the content of metrics.json
    records: pd.DataFrame | None  # one row per (test window, step): see evaluate.py


def few_windows_note(n: int) -> str | None:
    """What the log says when early stopping and the choices read a handful of validation
    windows: where the defaults could not hold out more (`windows._validation_share`) or
    --val-frac was given (docs/model.md, "One series"); None otherwise."""
    if not 0 < n < FEW_WINDOWS:
        return None
    return (f"the validation part holds {n} window{'s' if n > 1 else ''}: early stopping, the choices and the "
            "conformal shifts read that little, and one horizon may not be like the next; more history, a "
            "larger --val-frac or a backtest (gruforecast backtest) tells more")


def _candidates(panel: Panel, wcfg: WindowConfig, mcfg: ModelConfig) -> dict[str, tuple]:
    """The choices the defaults make by validation score, each with its candidates:
    `--transform auto` (log only where every value is positive), an unset `--known-map`
    (step or horizon) and `--known-units` (series or window), both where there are future
    features, and the calendar `--calendar auto` chose (or none; the holiday column
    stays). A choice with one
    candidate is decided here, with its reason in `panel.choices`."""
    choices = {}
    if wcfg.transform == "auto":
        positive = all((s.values[:, 0] > 0).all() for s in panel.series)
        choices["transform"] = ("none", "log") if positive else ("none",)
        if not positive:
            panel.choices["transform"] = "none: the data is not all positive, so the log is not a candidate"
    if mcfg.known_map is None:
        choices["known_map"] = ("horizon", "step") if panel.spec.future else ("step",)
    if mcfg.known_units is None:
        choices["known_units"] = ("series", "window") if panel.spec.future else ("series",)
    if "calendar" in panel.choices and panel.spec.calendar != "none":  # chosen by `--calendar auto`
        choices["calendar"] = (panel.spec.calendar, "none")
    return choices


def _candidate(panel: Panel, wcfg: WindowConfig, mcfg: ModelConfig,
               pick: dict[str, str]) -> tuple[Panel, WindowConfig, ModelConfig]:
    wcfg = replace(wcfg, transform=pick["transform"]) if "transform" in pick else wcfg
    mcfg = replace(mcfg, **{name: pick[name] for name in ("known_map", "known_units") if name in pick})
    if pick.get("calendar") == "none":
        panel = conform(panel, replace(panel.spec, calendar="none"))
    return panel, wcfg, mcfg


def _fit_candidates(panel: Panel, wcfg: WindowConfig, mcfg: ModelConfig, tcfg: TrainConfig,
                    device: str, on_epoch: Callable | None):
    """Decide the undecided choices (`_candidates`) one after another by validation MASE:
    scored in the data's units on the validation windows, so the candidates are
    comparable; each choice's other candidates are fitted with the choices before it as
    decided and the ones after it at their first candidate (a fit per candidate, not per
    combination: the transform, the known map, its units and the calendar cost 5 fits,
    not 16). Where a later choice moved off its first candidate, the choices before it
    are made once more under the final picks (a fit more for each). The
    test part is not read. Each choice and its reason go to `panel.choices`.
    Returns the kept (forecaster, fit result, windows, validation MASE, panel)."""
    from .windows import make_windows

    choices = _candidates(panel, wcfg, mcfg)
    undecided = [name for name, options in choices.items() if len(options) > 1]
    fits: dict[tuple, tuple] = {}

    def fitted(pick: dict[str, str]) -> tuple:
        key = tuple(pick.items())
        if key not in fits:
            data, pick_wcfg, pick_mcfg = _candidate(panel, wcfg, mcfg, pick)
            fc = Forecaster(window_cfg=pick_wcfg, model_cfg=pick_mcfg, train_cfg=tcfg)
            result, windows = fc.fit(data, device, on_epoch)
            mase = None
            if undecided and len(windows.val):
                mase = _validation_mase(fc, data, windows)
                # Its windows (a scaled copy of the panel) are not held while the next
                # candidate fits; the kept one's are made again (`kept`): the same windows.
                windows = None
            fits[key] = (fc, result, windows, mase, data)
        return fits[key]

    def kept(pick: dict[str, str]) -> tuple:
        fc, result, windows, mase, data = fitted(pick)
        if windows is None:
            windows = make_windows(data, fc.window_cfg, fc.model_cfg.series_embedding)[0]
        return fc, result, windows, mase, data

    pick = {name: options[0] for name, options in choices.items()}
    if fitted(pick)[3] is None:  # nothing to compare on: every choice at its first candidate
        for name in undecided:
            panel.choices[name] = f"{pick[name]}: no validation windows to compare the candidates on"
        return kept(pick)

    def decide(name: str) -> None:
        nonlocal fits
        score = {option: fitted({**pick, name: option})[3] for option in choices[name]}
        best = min(score, key=score.get)
        if score[best] == float("inf"):
            raise InputError(f"training diverged: no candidate's validation forecasts are finite; lower --lr "
                             f"(now {tcfg.lr}) or scale the data (--scaler standard); no model was written")
        other = next(o for o in choices[name] if o != best)
        panel.choices[name] = f"{best}: validation MASE {score[best]:.4g}, against {score[other]:.4g} with {other}"
        pick[name] = best
        # The candidates not kept are never asked for again: their windows (the panel,
        # scaled) go now, not after the last choice.
        fits = {key: fit for key, fit in fits.items() if key == tuple(pick.items())}

    for name in undecided:
        decide(name)
    # Each choice was made with the ones after it at their first candidate; where a later
    # one moved, the choices before it are made again under the final picks (one sweep more).
    moved = [i for i, name in enumerate(undecided) if pick[name] != choices[name][0]]
    for name in undecided[:max(moved, default=0)]:
        decide(name)
    return kept(pick)


def _validation_mase(fc: Forecaster, panel: Panel, windows) -> float:
    """The MASE of `fc`'s forecasts from (a sample of) the validation origins, in the
    data's units. Forecasts that are not finite (a fit that diverged: the log's exp
    overflows first) score inf, so they lose to any candidate; MASE would leave them out
    and score the rest."""
    from .evaluate import records_at, scores

    positions = windows.positions(scored_sample(windows.val, fc.train_cfg.seed))
    records = records_at(panel, positions, fc.forecast_origins(panel, positions), fc.season,
                         train_ends=list(windows.n_train), quantiles=fc.quantiles)
    finite = np.isfinite(records["model"].to_numpy(float)).all()
    return scores(records, "model")["mase"] if finite else float("inf")


NAIVE_WEIGHTS = (0.0, 0.25, 0.5)  # the candidates of an unset --naive-weight
NAIVE_WEIGHT_SERIES = 20  # validation windows from fewer series leave the weight at 0


def _choose_naive_weight(fc: Forecaster, windows, panel: Panel, alone: float | None = None) -> None:
    """An unset `--naive-weight`: the candidate whose combination with the seasonal naive
    scores the best validation MASE (no fit: the weight acts after training; `alone`, the
    network's own score where the candidate choices already measured it, is weight 0's). 0 where the
    validation windows come from fewer than NAIVE_WEIGHT_SERIES series: one weight for
    the whole panel is a judgement across series, and one series' last days make it by
    chance (electricity prices, development split: 0.5 chosen on a validation MASE of
    0.59 against 0.93, and the week after lost 15%; docs/model.md)."""
    if fc.model_cfg.naive_weight is not None:
        return
    n_series = len(np.unique(windows.series_of(windows.val)))
    if n_series < NAIVE_WEIGHT_SERIES:
        fc.model_cfg = replace(fc.model_cfg, naive_weight=0.0)
        panel.choices["naive_weight"] = (
            f"0: the validation windows come from {n_series} series, fewer than {NAIVE_WEIGHT_SERIES}, too few "
            "to choose one weight for the panel on (--naive-weight sets it)" if n_series else
            "0: no validation windows to compare the candidates on")
        return
    score = {}
    for w in NAIVE_WEIGHTS:
        fc.model_cfg = replace(fc.model_cfg, naive_weight=w)
        score[w] = alone if w == 0 and alone is not None else _validation_mase(fc, panel, windows)
    best = min(score, key=score.get)
    fc.model_cfg = replace(fc.model_cfg, naive_weight=best)
    panel.choices["naive_weight"] = f"{best:g}: validation MASE " + ", ".join(
        f"{score[w]:.4g} with {w:g}" for w in NAIVE_WEIGHTS)


def _calibrate(fc: Forecaster, windows, panel: Panel, device: str) -> None:
    """`--intervals conformal`: CQR shifts from the early-stopped fit's validation windows
    (the refit, with no held-out part of its own, gets them through `_transfer`). Without
    validation windows the model's own quantiles stay, and `panel.choices` says so."""
    from .train import CALIBRATION_WINDOWS, calibrate, pick_device

    if len(fc.quantiles) == 1 or fc.model_cfg.intervals != "conformal":
        return
    fc.calibration = calibrate(fc.model, windows, pick_device(device), fc.train_cfg.seed, forecast=fc._quantiles)
    panel.choices["intervals"] = (
        f"conformal: the quantile head calibrated on {min(len(windows.val), CALIBRATION_WINDOWS)} validation windows"
        if fc.calibration is not None else "model: no validation windows to calibrate on")


def _widths_before_refit(fc: Forecaster, windows) -> tuple | None:
    """(validation inputs, the early-stopped fit's head widths on them) for `_transfer`;
    None when its bands are not conformal shifts."""
    from .train import head_widths, validation_inputs

    if fc.calibration is None:
        return None
    inputs = validation_inputs(windows, fc.train_cfg.seed)
    return inputs, head_widths(fc.model, inputs)


def _transfer(fc: Forecaster, inputs: tuple, held_out) -> np.ndarray:
    """The refit's conformal shifts: the early-stopped fit's, lowered by how much wider the
    refit's head is on the same validation windows (`train.transfer_shifts`)."""
    from .train import head_widths, transfer_shifts

    return transfer_shifts(fc.calibration, held_out, head_widths(fc.model, inputs), fc.quantiles)


def train(panel: Panel, wcfg: WindowConfig, mcfg: ModelConfig, tcfg: TrainConfig,
          device: str = "cpu", on_epoch: Callable | None = None) -> TrainRun:
    """Fit a Forecaster on `panel` (already resolved) and score it on the held-out test
    windows through `forecast_origins`; the report dict is what metrics.json holds."""
    import time

    from .evaluate import records_at, summarize
    from .report import base_report
    from .train import pick_device

    if mcfg.dropout > 0 and mcfg.num_layers == 1:  # here, not in ModelConfig: such files still load
        raise InputError("--dropout acts between GRU layers, and --num-layers is 1: it would do nothing; "
                         "pass --num-layers 2 or more, or leave --dropout out")
    start = time.perf_counter()
    fc, result, windows, mase, panel = _fit_candidates(panel, wcfg, mcfg, tcfg, device, on_epoch)
    _choose_naive_weight(fc, windows, panel, mase)
    wcfg, mcfg = fc.window_cfg, fc.model_cfg
    _calibrate(fc, windows, panel, device)
    test, records, refit = None, None, None
    if len(windows.test):
        origins = scored_sample(windows.test, tcfg.seed)
        positions = windows.positions(origins)
        preds = fc.forecast_origins(panel, positions)
        records = records_at(panel, positions, preds, fc.season, train_ends=list(windows.n_train),
                             quantiles=fc.quantiles, second_season=mcfg.second_season or 0)
        test = {"windows": len(origins), "season": fc.season,
                **summarize(records, groups=("series", "step"))}
        if len(origins) < len(windows.test):
            test["sampled_from"] = len(windows.test)
            panel.choices["test_windows"] = (f"{len(origins):,} of the {len(windows.test):,} test windows, drawn "
                                             f"with the seed: the held-out scores of a panel this large are a sample")
    counts = {"train": len(windows.train), "val": len(windows.val), "test": len(windows.test)}
    calibrated = _widths_before_refit(fc, windows) if tcfg.full_refit else None
    del windows  # the refit makes its own: two scaled copies of a large panel are not held at once
    if tcfg.full_refit and (counts["val"] or counts["test"]):
        # The scores above are the early-stopped fit's, which never saw the test part; the
        # model written is trained on every point, for the epochs that fit chose, as many
        # more as the held-out parts add windows to an epoch (`train.refit_epochs`).
        # The held-out fit goes before the refit makes its own windows.
        held_out_fit = fc.model
        fc = Forecaster(window_cfg=wcfg, model_cfg=mcfg, train_cfg=tcfg, calibration=fc.calibration)
        refit = fc.fit(panel, device, on_epoch, epochs=result.best_epoch, fit_windows=counts["train"])[0]
        if tcfg.keep_fit:
            # Both fits' members in one median. The fit's read the refit's scaling: the
            # window's base and amplitude make the target's blind to it (features are not).
            fc.model = Ensemble(members_of(fc.model) + members_of(held_out_fit))
            fc.model_cfg = mcfg = replace(mcfg, fit_members=True)
        if calibrated is not None:
            fc.calibration = _transfer(fc, *calibrated)
            panel.choices["intervals"] += "; the shifts lowered for the refit by how much wider its head is on them"
    fc.keep_ends(panel)
    report = base_report(panel, (wcfg, mcfg, tcfg), str(pick_device(device)))
    report["training"] = {
        "seconds": round(result.seconds, 3), "epochs_run": len(result.history),
        "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
        "train_loss": [h.train_loss for h in result.history],
        "val_loss": [h.val_loss for h in result.history],
        "refit": None if refit is None else {"epochs": len(refit.history),
                                             "seconds": round(refit.seconds, 3)},
        "total_seconds": round(time.perf_counter() - start, 3),  # candidates and refit included
        "processes": result.processes,
    }
    report["data"]["windows"] = counts
    report["test"] = test
    fc.metrics = {"test": {k: test[k] for k in ("windows", "season", "series", "scores")}} if test else {}
    fc.metrics["choices"] = dict(panel.choices)
    return TrainRun(fc, result, report, records)
