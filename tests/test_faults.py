"""Hostile model files and numerical faults: a clear error, nothing run, nothing written."""

import pickle
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SAMPLE, run_cli

from gruforecast import artifact
from gruforecast.errors import ArtifactError

V1 = Path(__file__).parent / "data" / "model_v1.gruf"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("m")
    proc = run_cli("train", SAMPLE / "us_macro_quarterly.csv", "--target", "value", "--id-col", "series",
                   "--horizon", "4", "--epochs", "2", "--ensemble", "1", "--out", out / "macro.gruf")
    assert proc.returncode == 0, proc.stderr
    return out / "macro.gruf"


class Planted:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_a_planted_pickle_never_runs(tmp_path):
    canary = tmp_path / "pwned"
    for i, write in enumerate([lambda p: p.write_bytes(pickle.dumps(Planted(canary))),
                               lambda p: torch.save({"format": "gruforecast-model", "x": Planted(canary)}, p)]):
        bad = tmp_path / f"evil{i}.gruf"
        write(bad)
        with pytest.raises(ArtifactError, match="not a readable gruforecast model"):
            artifact.load(bad)
        proc = run_cli("predict", bad, "--out", tmp_path / "f.csv")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert not canary.exists() and not (tmp_path / "f.csv").exists()


@pytest.mark.parametrize("kind", ["truncated", "empty", "text", "random .pt", "plain pickle"])
def test_foreign_and_broken_files(tmp_path, model, kind):
    path = tmp_path / "m.gruf"
    data = model.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) - 100])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello, I am a model\n")
    elif kind == "random .pt":
        torch.save({"weights": torch.randn(3)}, path)
    else:
        path.write_bytes(pickle.dumps({"format": "gruforecast-model"}))
    proc = run_cli("predict", path, "--out", tmp_path / "f.csv")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not a readable gruforecast model" in proc.stderr or "not a gruforecast model" in proc.stderr
    assert not (tmp_path / "f.csv").exists()


def test_a_flipped_bit_in_the_weights_is_caught_by_the_checksum(tmp_path, model):
    payload = torch.load(model, weights_only=True)
    payload["state_dict"]["head.bias"][0] += 1e-3  # as if a bit flipped on disk
    torch.save(payload, tmp_path / "flipped.gruf")
    with pytest.raises(ArtifactError, match=r"is damaged \(checksum mismatch\)"):
        artifact.load(tmp_path / "flipped.gruf")


def test_newer_format_is_refused_with_the_versions(tmp_path, model):
    payload = torch.load(model, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "new.gruf")
    proc = run_cli("predict", tmp_path / "new.gruf", "--out", tmp_path / "f.csv")
    assert proc.returncode == 2
    assert "has model format 99, this gruforecast 0.1.0 reads formats 1, 2" in proc.stderr


def test_old_format_1_still_loads():
    assert artifact.load(V1).window_cfg.horizon == 6


def test_schema_mismatch_on_predict(tmp_path, model):
    data = pd.read_csv(SAMPLE / "us_macro_quarterly.csv")
    cases = {
        "renamed": (data.rename(columns={"value": "val"}), "column 'value' (--target) is not in the file; did you mean 'val'?"),
        "monthly": (data.assign(quarter=pd.date_range("1990-01-01", periods=len(data) // 5, freq="MS").strftime("%Y-%m-%d").tolist() * 5),
                    "the data's frequency MS differs from the model's QS-JAN; give data at the model's frequency"),
    }
    for name, (frame, message) in cases.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        proc = run_cli("predict", model, "--data", tmp_path / f"{name}.csv", "--out", tmp_path / "f.csv")
        assert proc.returncode == 2, (name, proc.stderr)
        assert message in proc.stderr, (name, proc.stderr)
    assert not (tmp_path / "f.csv").exists()


def test_a_diverging_loss_stops_training_and_writes_nothing(tmp_path):
    frame = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=200, freq="D").strftime("%Y-%m-%d"),
                          "y": 4e29 * (1 + np.sin(np.arange(200) / 3.0))})
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "out").mkdir()
    # Unscaled 1e29s (squared: past float32): the per-window scaling (default) would tame them, so it is off here.
    proc = run_cli("train", tmp_path / "d.csv", "--scaler", "none", "--window-scale", "none", "--loss", "mse",
                   "--horizon", "7", "--out", tmp_path / "out" / "m.gruf")
    assert proc.returncode == 2
    assert "training diverged at epoch 1: the loss became inf; lower --lr (now 0.001) or scale the data" in proc.stderr
    assert not any((tmp_path / "out").iterdir())


def test_a_forecast_with_nan_is_never_written(tmp_path, model):
    art = artifact.load(model)
    with torch.no_grad():
        art.model.head.bias[0] = float("nan")
    artifact.save(art, tmp_path / "nan.gruf")
    proc = run_cli("predict", tmp_path / "nan.gruf", "--out", tmp_path / "f.csv")
    assert proc.returncode == 2
    assert "the forecast holds NaN or infinity; nothing written" in proc.stderr
    assert not (tmp_path / "f.csv").exists()


def test_fuzz_artifact_bytes_only_our_error(tmp_path, model):
    """Mutated model files: bit flips, byte overwrites, cuts and splices. Either the file
    still loads (a flip in zip padding) or ArtifactError; never any other exception."""
    data = bytearray(model.read_bytes())
    rng = random.Random(0)
    path = tmp_path / "fuzz.gruf"
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(300):
        mutated = bytearray(data)
        kind = case % 4
        if kind == 0:
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(mutated))
                mutated[i] ^= 1 << rng.randrange(8)
        elif kind == 1:
            i = rng.randrange(len(mutated))
            mutated[i: i + 16] = bytes(rng.randrange(256) for _ in range(16))
        elif kind == 2:
            mutated = mutated[: rng.randrange(len(mutated))]
        else:
            i, j = sorted(rng.randrange(len(mutated)) for _ in range(2))
            mutated = mutated[:i] + mutated[j:]
        path.write_bytes(bytes(mutated))
        try:
            artifact.load(path)
            outcomes["loaded"] += 1
        except ArtifactError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 250, outcomes
    print(f"artifact fuzz: 300 cases, {outcomes}")  # shown with pytest -s
