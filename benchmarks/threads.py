"""Which torch thread count is safe for `gruforecast train`? Measured, not assumed.

    python benchmarks/threads.py [--epochs 2]

Trains the demo model (co2 weekly, horizon 52, lookback 104, hidden 64) for a fixed number
of epochs at 1 and at 2 torch threads, once on an idle machine and once while another
process keeps one core busy (as a second cron job would). Prints seconds per epoch and
the ratio to 1 thread idle.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from gruforecast.config import ModelConfig, TrainConfig  # noqa: E402
from gruforecast.data import DataSpec, load_panel  # noqa: E402
from gruforecast.model import build_model  # noqa: E402
from gruforecast.train import fit  # noqa: E402
from gruforecast.windows import WindowConfig, make_windows  # noqa: E402


def _busy(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


def per_epoch(windows, cfg: TrainConfig, threads: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(ModelConfig(), 1, windows.lookback, windows.horizon)
    start = time.perf_counter()
    result = fit(model, windows, cfg, torch.device("cpu"))
    return (time.perf_counter() - start) / len(result.history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    panel = load_panel(ROOT / "sample_data" / "co2_weekly.csv",
                       DataSpec(target="co2", time_col="week", fill="interpolate"))
    windows, _ = make_windows(panel, WindowConfig(lookback=104, horizon=52))
    cfg = replace(TrainConfig(), epochs=args.epochs, patience=args.epochs)
    per_epoch(windows, replace(cfg, epochs=1, patience=1), 1)  # warm-up
    rows = []
    for load in ("idle", "one other core busy"):
        stop = mp.Event()
        proc = mp.Process(target=_busy, args=(stop,)) if load != "idle" else None
        if proc:
            proc.start()
        for threads in (1, 2):
            rows.append((load, threads, per_epoch(windows, cfg, threads)))
        if proc:
            stop.set()
            proc.join()
    base = rows[0][2]
    print(f"cores {os.cpu_count()}, {args.epochs} epochs per measurement\n")
    print("| machine | torch threads | s / epoch | vs 1 thread idle |\n|---|---|---|---|")
    for load, threads, s in rows:
        print(f"| {load} | {threads} | {s:.3f} | {s / base:.2f}x |")


if __name__ == "__main__":
    main()
