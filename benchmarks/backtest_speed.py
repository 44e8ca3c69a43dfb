"""Backtest time against K single training runs, measured side by side.

    python benchmarks/backtest_speed.py [--folds 5] [--threads 1]

On the sample series (weekly CO2, 2,284 points) and on a 10,000-point real series (the
first 10,000 hours of ETTh1's OT column, read from ../shared/data when present): the time
of one `train` run on the full series, and of `backtest --folds K` (K trainings, each on
the data before its origin). Prints backtest / (K x one training); <= 1 means no
redundant work per fold. Training uses early stopping, so epochs differ per fold: the
ratio per epoch is printed too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from gruforecast.backtest import BacktestConfig, run_backtest  # noqa: E402
from gruforecast.config import ModelConfig, TrainConfig  # noqa: E402
from gruforecast.data import DataSpec, build_panel, load_panel  # noqa: E402
from gruforecast.forecaster import train  # noqa: E402
from gruforecast.windows import WindowConfig, resolve  # noqa: E402


def measure(name: str, panel, horizon: int, folds: int, fixed: int | None) -> None:
    panel, wcfg, _ = resolve(panel, WindowConfig(horizon=horizon))
    tcfg = TrainConfig() if fixed is None else TrainConfig(epochs=fixed, patience=fixed)
    start = time.perf_counter()
    run = train(panel, wcfg, ModelConfig(), tcfg)
    one, one_epochs = time.perf_counter() - start, len(run.fit.history)
    result = run_backtest(panel, wcfg, ModelConfig(), tcfg, BacktestConfig(folds=folds))
    epochs = sum(len(f.train_loss) for f in result.folds)
    print(f"| {name} | {sum(len(s) for s in panel.series)} | {one:.1f} s ({one_epochs} epochs) | "
          f"{result.seconds:.1f} s ({epochs} epochs) | {result.seconds / (folds * one):.2f} | "
          f"{(result.seconds / epochs) / (one / one_epochs):.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fixed-epochs", type=int, default=None,
                        help="train exactly this many epochs (no early stopping): same work per run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {torch.get_num_threads()}, folds {args.folds}, epochs "
          f"{args.fixed_epochs or 'early-stopped'}\n")
    print("| series | points | one training | backtest | backtest / (K x one) | per epoch ratio |")
    print("|---|---|---|---|---|---|")
    co2 = load_panel(ROOT / "sample_data" / "co2_weekly.csv",
                     DataSpec(target="co2", time_col="week", fill="interpolate"))
    measure("co2 weekly (sample)", co2, 52, args.folds, args.fixed_epochs)
    ett = ROOT.parent / "shared" / "data" / "ETTh1.csv"
    if ett.exists():
        frame = pd.read_csv(ett, usecols=["date", "OT"]).iloc[:10_000]
        measure("ETTh1 OT, first 10,000 h", build_panel(frame, DataSpec(target="OT", time_col="date")), 24, args.folds,
                args.fixed_epochs)
    else:
        print(f"({ett} not found: 10,000-point series skipped)")


if __name__ == "__main__":
    main()
