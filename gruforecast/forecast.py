"""Forecasts from the end of each series, with future timestamps.

Holds `forecast`: from the artifact's stored tails (or fresh data), K steps ahead. K <= H
slices the model's direct H-step output; K > H rolls forward recursively, feeding
forecasts back in as inputs (only possible without feature columns, whose future values
are unknown).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .artifact import Artifact
from .data import Panel
from .errors import InputError
from .windows import transform_target, untransform_target


@dataclass
class Forecast:
    frame: pd.DataFrame  # id column (if any), time column, "forecast"
    recursive: bool  # True when K > H rolled the model forward on its own forecasts


def forecast(art: Artifact, horizon: int | None = None, panel: Panel | None = None) -> Forecast:
    """Forecast `horizon` steps (default: the trained H) after the end of each series."""
    H = art.window_cfg.horizon
    K = H if horizon is None else horizon
    if K < 1:
        raise InputError(f"--horizon ({K}) must be >= 1")
    if K > H and art.data_spec.features:
        raise InputError(
            f"--horizon {K} is beyond the trained horizon {H} and the model uses features, whose "
            f"future values are unknown; use --horizon <= {H} or retrain with a longer --horizon"
        )
    ids, tails, last_times = _tails(art, panel) if panel is not None else (
        art.series_ids, art.tail, art.last_times)
    values = predict_tails(art, ids, tails, K)
    return Forecast(_frame(art, ids, last_times, values), recursive=K > H)


def predict_tails(art: Artifact, ids: list[str], tails: np.ndarray, K: int) -> np.ndarray:
    """Forecasts (S, K) in original units from the last `lookback` rows (S, L, C) of each
    series, scaled with that series' stored scaler; recursive past the trained horizon."""
    H, L = art.window_cfg.horizon, art.window_cfg.lookback
    index = [art.series_ids.index(i) for i in ids]
    transform = art.window_cfg.transform
    tails = np.stack([transform_target(t, transform, i) for i, t in zip(ids, tails)])
    loc, scale = art.loc[index][:, None, :], art.scale[index][:, None, :]
    window = torch.from_numpy(((tails - loc) / scale).astype(np.float32))  # (S, L, C)
    chunks = []
    art.model.eval()
    with torch.no_grad():
        chunks.append(art.model(window))  # (S, H) scaled
        while len(chunks) * H < K:  # recursive: the forecasts become the next inputs
            window = torch.cat([window, chunks[-1].unsqueeze(-1)], dim=1)[:, -L:]
            chunks.append(art.model(window))
    scaled = torch.cat(chunks, dim=1)[:, :K].double().numpy()
    return untransform_target(scaled * scale[:, 0, :1] + loc[:, 0, :1], transform)


def _tails(art: Artifact, panel: Panel) -> tuple[list[str], np.ndarray, list]:
    L = art.window_cfg.lookback
    if panel.freq != art.freq:
        raise InputError(
            f"the data's frequency {panel.freq} differs from the model's {art.freq}; give data at the model's frequency"
        )
    ids, tails, last = [], [], []
    for s in panel.series:
        if s.id not in art.series_ids:
            raise InputError(f"series {s.id!r} is not in the model; retrain with it or drop it from --data")
        if len(s) < L:
            raise InputError(f"series {s.id!r} has {len(s)} points, fewer than the lookback {L}; give more history")
        ids.append(s.id)
        tails.append(s.values[-L:])
        last.append(s.time[-1])
    return ids, np.stack(tails), last


def future_times(last, K: int, freq: str | None, step: int) -> pd.Index:
    """The K times after `last`: the next dates at `freq`, or the next integer steps."""
    if freq is None:
        return pd.Index(int(last) + step * np.arange(1, K + 1), dtype="int64")
    return pd.date_range(pd.Timestamp(last), periods=K + 1, freq=freq)[1:]


def _frame(art: Artifact, ids: list[str], last_times: list, values: np.ndarray) -> pd.DataFrame:
    spec, K = art.data_spec, values.shape[1]
    parts = []
    for sid, last, row in zip(ids, last_times, values):
        part = {spec.time_col: future_times(last, K, art.freq, art.step), "forecast": row}
        if spec.id_col is not None:
            part = {spec.id_col: [sid] * K, **part}
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True)
