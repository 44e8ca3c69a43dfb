"""The model artifact: one versioned file with everything `predict` needs.

Layout (a `torch.save` dict, loaded with `weights_only=True`, so loading runs no pickled
code): `format`, `format_version`, `meta` (a JSON string: package version, data spec,
window and training configs, frequency, series ids and last times, metrics), and tensors:
`state_dict`, `loc`/`scale` (S, C) scaler parameters, `tail` (S, L, C) the last `lookback`
observations of each series in original units; and `checksum`, the SHA-256 of the meta
string and every tensor's bytes, checked on load so a flipped bit is caught.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import __version__
from .atomic import atomic_write
from .data import DataSpec
from .errors import ArtifactError, InputError
from .train import Model, TrainConfig, build_model
from .windows import WindowConfig

FORMAT = "gruforecast-model"
FORMAT_VERSION = 2  # 2 added `checksum`; version 1 files still load
READABLE_VERSIONS = (1, 2)


@dataclass
class Artifact:
    """A trained model and the context to forecast with it."""

    model: Model
    data_spec: DataSpec
    window_cfg: WindowConfig
    train_cfg: TrainConfig
    freq: str | None
    step: int
    time_dtype: str
    season: int
    series_ids: list[str]
    last_times: list  # pd.Timestamp or int per series
    loc: np.ndarray  # (S, C)
    scale: np.ndarray  # (S, C)
    tail: np.ndarray  # (S, L, C) original units
    metrics: dict = field(default_factory=dict)
    package_version: str = __version__

    @property
    def n_inputs(self) -> int:
        return 1 + len(self.data_spec.features)


def save(art: Artifact, path: str | Path) -> Path:
    """Write the artifact atomically to `path`."""
    meta = {
        "package_version": art.package_version,
        "data_spec": asdict(art.data_spec),
        "window_cfg": asdict(art.window_cfg),
        "train_cfg": asdict(art.train_cfg),
        "freq": art.freq, "step": art.step, "time_dtype": art.time_dtype, "season": art.season,
        "series_ids": art.series_ids,
        "last_times": [_time_to_json(t) for t in art.last_times],
        "metrics": art.metrics,
    }
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "meta": json.dumps(meta),
        "state_dict": {k: v.detach().cpu() for k, v in art.model.state_dict().items()},
        "loc": torch.from_numpy(np.asarray(art.loc, dtype=np.float64)),
        "scale": torch.from_numpy(np.asarray(art.scale, dtype=np.float64)),
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
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def load(path: str | Path) -> Artifact:
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


def _from_payload(payload: dict) -> Artifact:
    meta = json.loads(payload["meta"])
    data_spec = DataSpec(**meta["data_spec"])
    window_cfg = WindowConfig(**meta["window_cfg"])
    # Models written before these options existed had none of them.
    train_cfg = TrainConfig(**{"window_scale": "none", "base_seasons": 1, "linear_path": False, "second_season": 0,
                              "by_season": False, **meta["train_cfg"]})
    model = build_model(1 + len(data_spec.features), window_cfg.lookback, window_cfg.horizon, train_cfg, meta["season"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    time_dtype = meta["time_dtype"]
    return Artifact(
        model=model, data_spec=data_spec, window_cfg=window_cfg, train_cfg=train_cfg,
        freq=meta["freq"], step=meta["step"], time_dtype=time_dtype, season=meta["season"],
        series_ids=list(meta["series_ids"]),
        last_times=[_time_from_json(t, time_dtype) for t in meta["last_times"]],
        loc=payload["loc"].numpy(), scale=payload["scale"].numpy(), tail=payload["tail"].numpy(),
        metrics=meta["metrics"], package_version=meta["package_version"],
    )


def _time_to_json(t) -> str | int:
    return int(t) if isinstance(t, (int, np.integer)) else pd.Timestamp(t).isoformat()


def _time_from_json(t: str | int, time_dtype: str):
    return int(t) if time_dtype == "integer" else pd.Timestamp(t)
