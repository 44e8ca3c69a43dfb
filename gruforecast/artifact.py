"""The model file: one versioned file with everything `predict` needs, and only bytes,
meta and checksum here (no training code).

Layout (a `torch.save` dict, loaded with `weights_only=True`, so loading runs no pickled
code): `format`, `format_version`, `meta` (a JSON string: package version, the data spec
and the window, model and train configs, frequency, series ids and last times, metrics),
and tensors: `state_dict`, `loc`/`scale` (S, C) scaler parameters, `tail` (S, L, C) the
last `lookback` observations of each series in original units; and `checksum`, the
SHA-256 of the meta string and every tensor's bytes, checked on load so a flipped bit is
caught. The network is rebuilt from the stored `ModelConfig`, its shapes checked against
the stored tensors before any memory is allocated for it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import __version__
from .atomic import atomic_write
from .config import ModelConfig, TrainConfig, from_stored
from .data import DataSpec
from .errors import ArtifactError, InputError
from .forecaster import Forecaster, unread
from .model import build_model
from .scaling import Scaling
from .windows import WindowConfig

FORMAT = "gruforecast-model"
# 2 added `checksum`; 3 stores the model config apart from the training one and the
# season in the window config. Versions 1 and 2 still load.
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)


def save(art: Forecaster, path: str | Path) -> Path:
    """Write the forecaster atomically to `path`."""
    meta = {
        "package_version": art.package_version,
        "data_spec": asdict(art.data_spec),
        "window_cfg": asdict(art.window_cfg),
        "model_cfg": asdict(art.model_cfg),
        "train_cfg": asdict(art.train_cfg),
        "freq": art.freq, "step": art.step, "time_dtype": art.time_dtype, "season": art.season,
        "series_ids": art.series_ids,
        "last_times": [_time_to_json(t) for t in art.last_times],
        "metrics": art.metrics,
        "calibration": None if art.calibration is None else np.asarray(art.calibration).tolist(),
    }
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "meta": json.dumps(meta),
        "state_dict": {k: v.detach().cpu() for k, v in art.model.state_dict().items()},
        "loc": torch.from_numpy(np.asarray(art.scaling.loc, dtype=np.float64)),
        "scale": torch.from_numpy(np.asarray(art.scaling.scale, dtype=np.float64)),
        "tail": torch.from_numpy(np.asarray(art.tail, dtype=np.float64)),
    }
    payload["checksum"] = checksum(payload)
    return atomic_write(path, lambda p: torch.save(payload, p))


def checksum(payload: dict) -> str:
    """SHA-256 over the meta string and the bytes of every tensor, in a fixed order."""
    digest = hashlib.sha256(payload["meta"].encode())
    tensors = {f"state_dict.{k}": v for k, v in payload["state_dict"].items()}
    tensors.update({k: payload[k] for k in ("loc", "scale", "tail")})
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        digest.update(t.view(-1).view(torch.uint8).numpy() if t.numel() else b"")  # a view: no copy of the tails
    return digest.hexdigest()


def load(path: str | Path) -> Forecaster:
    """Read an artifact; a missing, corrupt, truncated or foreign file is an `ArtifactError`."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ArtifactError(f"model file {str(path)!r} {what}; pass the file written by `gruforecast train --out`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise ArtifactError(f"cannot read {str(path)!r}: permission denied; check its mode") from None
    except Exception:  # torch raises many types for bad bytes; all mean the same to a user
        if path.suffix.lower() not in (".gruf", ".pt"):  # a data file given for the model, not a damaged model
            raise ArtifactError(f"{str(path)!r} is not a gruforecast model file; pass the file written by "
                                "`gruforecast train --out`") from None
        raise ArtifactError(
            f"{str(path)!r} is not a readable gruforecast model (corrupt, truncated or another format); retrain it"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ArtifactError(f"{str(path)!r} is not a gruforecast model file; pass the file written by `gruforecast train --out`")
    version = payload.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ArtifactError(
            f"{str(path)!r} has model format {version}, this gruforecast {__version__} reads formats "
            f"{', '.join(map(str, READABLE_VERSIONS))}; retrain it or use a matching gruforecast"
        )
    try:
        if version >= 2 and payload.get("checksum") != checksum(payload):
            raise ArtifactError(f"{str(path)!r} is damaged (checksum mismatch); restore it from a backup or retrain")
        return _from_payload(payload)
    except ArtifactError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, InputError) as exc:
        raise ArtifactError(f"{str(path)!r} is damaged ({type(exc).__name__}); retrain it") from None


def _from_payload(payload: dict) -> Forecaster:
    meta = json.loads(payload["meta"])
    data_spec = from_stored(DataSpec, meta["data_spec"])
    window_cfg = from_stored(WindowConfig, {"season": meta["season"], **meta["window_cfg"]})
    # Before format 3 the model's fields were stored among the training ones.
    model_cfg = from_stored(ModelConfig, meta.get("model_cfg", meta["train_cfg"]))
    train_cfg = from_stored(TrainConfig, meta["train_cfg"])
    model = _rebuild(model_cfg, window_cfg.channels(data_spec.n_values), window_cfg, payload["state_dict"],
                     data_spec.known, unread(model_cfg, data_spec, meta["freq"], window_cfg), data_spec.future,
                     len(meta["series_ids"]))
    time_dtype = meta["time_dtype"]
    return Forecaster(
        window_cfg=window_cfg, model_cfg=model_cfg, train_cfg=train_cfg, data_spec=data_spec,
        model=model, scaling=Scaling(payload["loc"].numpy(), payload["scale"].numpy(), window_cfg.transform),
        freq=meta["freq"], step=meta["step"], time_dtype=time_dtype,
        series_ids=list(meta["series_ids"]),
        last_times=[_time_from_json(t, time_dtype) for t in meta["last_times"]],
        tail=payload["tail"].numpy(), metrics=meta["metrics"], package_version=meta["package_version"],
        calibration=_calibration(meta.get("calibration"), window_cfg.horizon, model_cfg),
    )


def _calibration(stored, horizon: int, cfg: ModelConfig) -> np.ndarray | None:
    """The conformal shifts (H, Q), their shape checked against the model's."""
    if stored is None:
        return None
    offsets = np.asarray(stored, dtype=np.float64)
    if offsets.shape != (horizon, len(cfg.output_quantiles)) or not np.isfinite(offsets).all():
        raise ValueError("the stored calibration does not match the model")
    return offsets


def _rebuild(cfg: ModelConfig, n_inputs: int, wcfg: WindowConfig, state: dict, known: tuple[int, ...] = (),
             ahead_only: tuple[int, ...] = (), wide: tuple[int, ...] = (), n_series: int = 1):
    """The network from its config, after checking on the meta device (no memory) that
    the config's shapes are those of the stored tensors: a meta that claims a huge model
    beside small tensors is refused before anything is allocated."""
    args = (cfg, n_inputs, wcfg.lookback, wcfg.horizon, wcfg.season, known, ahead_only, wcfg.scales_observed, wide,
            n_series)
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in build_model(*args).state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in state.items()}
    if shapes != stored:
        raise ValueError("the stored tensors do not match the stored model configuration")
    model = build_model(*args)
    model.load_state_dict(state)
    model.eval()
    return model


def _time_to_json(t) -> str | int:
    return int(t) if isinstance(t, (int, np.integer)) else pd.Timestamp(t).isoformat()


def _time_from_json(t: str | int, time_dtype: str):
    return int(t) if time_dtype == "integer" else pd.Timestamp(t)
