"""Save, load, same forecast; old files still load; bad files are clear errors."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import train_run

from gruforecast import artifact
from gruforecast.data import DataSpec, build_panel
from gruforecast.errors import ArtifactError

V1 = Path(__file__).parent / "data" / "model_v1.gruf"


def _run(**train):
    t = pd.date_range("2021-01-01", periods=300, freq="h")
    frame = pd.DataFrame({"ts": t, "load": 10 + np.sin(np.arange(300) / 4.0)})
    panel = build_panel(frame, DataSpec(target="load", time_col="ts"))
    return train_run(panel, lookback=24, horizon=6, season=24, hidden_size=8, epochs=2, **train)


def test_round_trip_gives_the_same_forecast(tmp_path):
    run = _run()
    path = artifact.save(run.forecaster, tmp_path / "m.gruf")
    loaded = artifact.load(path)
    a, b = run.forecaster.predict().frame, loaded.predict().frame
    pd.testing.assert_frame_equal(a, b)
    assert loaded.data_spec == run.forecaster.data_spec and loaded.freq == "h"
    assert b["ts"].iloc[0] == pd.Timestamp("2021-01-13 12:00")  # one hour after the last


@pytest.mark.parametrize("options", [{"ensemble": 3}, {"ensemble": 3, "lookback_spread": 0.5, "linear_path": True},
                                     {"linear_path": True, "base_seasons": 2},
                                     {"second_season": 12}, {"by_season": False}])
def test_model_options_round_trip_give_the_same_forecast(tmp_path, options):
    run = _run(**options)
    loaded = artifact.load(artifact.save(run.forecaster, tmp_path / "e.gruf"))
    assert loaded.model_cfg == run.forecaster.model_cfg and loaded.train_cfg == run.forecaster.train_cfg
    assert loaded.model.state_dict().keys() == run.forecaster.model.state_dict().keys()  # members.k.*, linear.*
    pd.testing.assert_frame_equal(run.forecaster.predict().frame, loaded.predict().frame)
    single = _run().forecaster.predict().frame["forecast"]
    assert not np.allclose(single, loaded.predict().frame["forecast"])


def test_committed_v1_model_still_loads_and_forecasts():
    """Forecasts pinned when gruforecast 0.1.0 wrote the file; a model from before window
    scaling existed must keep forecasting as it did (window_scale 'none')."""
    art = artifact.load(V1)
    assert art.model_cfg.window_scale == "none" and not art.model_cfg.by_season
    fc = art.predict(horizon=3).frame
    np.testing.assert_allclose(fc["forecast"], [9.397699462146031, 9.394021324536025, 9.331685437553956],
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_files_are_clear_errors(tmp_path, damage):
    path = tmp_path / "bad.gruf"
    data = V1.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00\x01junk" * 50, "empty": b""}[damage])
    with pytest.raises(ArtifactError, match="not a readable gruforecast model"):
        artifact.load(path)


def test_foreign_torch_file_is_refused(tmp_path):
    import torch

    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ArtifactError, match="is not a gruforecast model file"):
        artifact.load(tmp_path / "other.pt")


def test_a_data_file_given_for_the_model_is_named_so(tmp_path):
    """`info data.csv`: not "corrupt, truncated ...; retrain it", which sends a user to retrain."""
    (tmp_path / "data.csv").write_text("date,y\n2021-01-01,1\n")
    with pytest.raises(ArtifactError, match="data.csv' is not a gruforecast model file; pass the file written by"):
        artifact.load(tmp_path / "data.csv")


def test_a_padded_model_written_before_observed_scales_keeps_its_window_scale(tmp_path):
    """Files written before padded windows were scaled on their observed points alone
    (their window_cfg has no `observed_scale`) load with the scale they were trained with,
    and so forecast as they did; a new file forecasts with the observed-points scale."""
    import json

    import torch

    t = pd.date_range("2021-01-01", periods=40, freq="h")
    frame = pd.DataFrame({"id": ["long"] * 30 + ["short"] * 10, "ts": list(t[:30]) + list(t[:10]),
                          "y": np.r_[10 + np.sin(np.arange(30) / 3.0), 5 + np.arange(10.0)]})
    panel = build_panel(frame, DataSpec(target="y", time_col="ts", id_col="id"))
    run = train_run(panel, lookback=12, horizon=3, season=1, hidden_size=8, epochs=2, level=(), ensemble=1)
    path = artifact.save(run.forecaster, tmp_path / "new.gruf")
    assert artifact.load(path).model.observed_scale  # a padded panel: the mask, and the new scale
    payload = torch.load(path, weights_only=True)
    meta = json.loads(payload["meta"])
    del meta["window_cfg"]["observed_scale"]
    payload["meta"] = json.dumps(meta)
    payload["checksum"] = artifact.checksum(payload)
    torch.save(payload, tmp_path / "old.gruf")
    old = artifact.load(tmp_path / "old.gruf")
    assert old.window_cfg.mask and not old.window_cfg.observed_scale and not old.model.observed_scale
    x = torch.zeros(1, 12, 2)
    x[0, 9:, 0], x[0, 9:, 1] = torch.tensor([1.0, 2.0, 4.0]), 1.0  # 9 padded rows, then 3 points
    x[0, :9, 0] = 1.0
    assert old.model.window_scale_of(x).item() == pytest.approx(3 / 11)  # the padding's zeros counted
    assert artifact.load(path).model.window_scale_of(x).item() == pytest.approx(1.5)
