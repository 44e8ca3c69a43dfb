"""End-to-end training time of the `make demo` model, with three GRU implementations.

    python benchmarks/train_e2e.py [--epochs 5] [--threads 1]

Trains the demo configuration (sample_data/co2_weekly.csv, horizon 52, lookback 104,
hidden 64, batch 64) for a fixed number of epochs (no early stopping) with:
FusedGRU on its C loops (the default), FusedGRU on its torch-op path
(GRUFORECAST_NATIVE=0's path), and torch.nn.GRU swapped into the same regressor.
Prints seconds per epoch (best of two interleaved rounds after a warm-up round) and the
ratios, measured side by side in one process. The GRU reads the window step by step
(104 steps; the model is built without a season). Then the same with FusedGRU reading
by season, as the demo does (2 steps of 52), against step by step: the speed-up of
`--by-season` on this configuration.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from gruforecast import gru as gnn  # noqa: E402
from gruforecast.config import ModelConfig  # noqa: E402
from gruforecast.data import DataSpec, load_panel  # noqa: E402
from gruforecast.model import build_model  # noqa: E402
from gruforecast.train import TrainConfig, fit  # noqa: E402
from gruforecast.windows import WindowConfig, make_windows  # noqa: E402


class TorchGRU(torch.nn.Module):
    """torch.nn.GRU behind FusedGRU's interface, for the comparison only."""

    def __init__(self, fused: gnn.FusedGRU) -> None:
        super().__init__()
        self.gru = torch.nn.GRU(fused.input_size, fused.hidden_size, fused.num_layers, batch_first=True)
        self.gru.load_state_dict(fused.state_dict())

    def forward(self, x):
        return self.gru(x)


def run(kind: str, windows, cfg: TrainConfig, season: int = 1, by_season: bool = True) -> float:
    torch.manual_seed(cfg.seed)
    model = build_model(ModelConfig(by_season=by_season), 1, windows.lookback, windows.horizon, season)
    if kind == "nn.GRU":
        model.gru = TorchGRU(model.gru)
    gnn.use_native(kind == "FusedGRU (C loops)")
    start = time.perf_counter()
    result = fit(model, windows, cfg, torch.device("cpu"))
    seconds = time.perf_counter() - start
    gnn.use_native(True)
    return seconds / len(result.history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    panel = load_panel(ROOT / "sample_data" / "co2_weekly.csv",
                       DataSpec(target="co2", time_col="week", fill="interpolate"))
    windows, _ = make_windows(panel, WindowConfig(lookback=104, horizon=52))
    cfg = replace(TrainConfig(), epochs=args.epochs, patience=args.epochs)
    print(f"threads {torch.get_num_threads()}, {len(windows.train)} training windows, "
          f"{args.epochs} epochs each")
    kinds = ["FusedGRU (C loops)", "FusedGRU (torch ops)", "nn.GRU"]
    table("GRU", {k: lambda k=k: run(k, windows, cfg) for k in kinds}, "nn.GRU")
    print()
    reading = {"step by step (104 steps)": False, "by season (2 steps of 52)": True}
    table("FusedGRU reads", {k: lambda b=b: run("FusedGRU (C loops)", windows, cfg, 52, by_season=b)
                             for k, b in reading.items()}, "step by step (104 steps)")


def table(what: str, runs: dict[str, Callable[[], float]], reference: str) -> None:
    """Seconds per epoch of each run (the best of two interleaved rounds after a warm-up
    round) and the reference's time over each, as a Markdown table."""
    times = {k: [] for k in runs}
    for _ in range(3):
        for k, fn in runs.items():
            times[k].append(fn())
    best = {k: min(v[1:]) for k, v in times.items()}
    print(f"| {what} | s / epoch | {reference} / this |\n|---|---|---|")
    for k, s in best.items():
        print(f"| {k} | {s:.3f} | {best[reference] / s:.2f}x |")

if __name__ == "__main__":
    main()
