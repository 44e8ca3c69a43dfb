"""Sparse counts (intermittent demand), measured: a kind of data the suite does not hold.

    python benchmarks/intermittent.py                       # Poisson(0.1), 50 series x 400 days, seed 1
    python benchmarks/intermittent.py --rate 0.3 --extra "" # the defaults alone (slower: 5 members)

Draws the counts from the seed (each series a day's Poisson(rate) count), trains `gruforecast
train` on them through the CLI (by default with `--ensemble 1 --calendar none --epochs 15`,
to keep it to a minute; `--extra` replaces those), and prints from metrics.json the held-out
test part's MAE, MASE, coverage and 95% MSIS beside the seasonal naive's, with the forecast's
largest upper 95% bound and smallest lower one. About a quarter of the 14-day windows of
Poisson(0.1) counts are all zeros: such windows once took the 1e-3 scale floor, and the 95%
conformal shift made from them widened every band a thousandfold (docs/model.md, Amplitude).
Appends the table to benchmarks/results/intermittent.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "intermittent.md"


def counts(rate: float, n_series: int, days: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.concat([pd.DataFrame({"id": f"s{k}", "ds": pd.date_range("2023-01-01", periods=days, freq="D"),
                                    "y": rng.poisson(rate, days).astype(float)}) for k in range(n_series)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--series", type=int, default=50)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1, help="the counts' seed (train's own --seed stays 0)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--extra", default="--ensemble 1 --calendar none --epochs 15",
                        help="train options (replacing the default ones)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, model, report = Path(tmp) / "counts.csv", Path(tmp) / "m.gruf", Path(tmp) / "report"
        counts(args.rate, args.series, args.days, args.seed).to_csv(data, index=False)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "gruforecast", "train", data, "--out", model, "--report-dir",
                               report, "--threads", str(args.threads), *args.extra.split()],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"gruforecast train failed ({proc.returncode}): {proc.stderr.strip()[-600:]}")
        scores = json.loads((report / "metrics.json").read_text())["test"]["scores"]
        forecast = pd.read_csv(Path(tmp) / "m-forecast.csv")
    header = (f"\n## run of {time.strftime('%Y-%m-%d %H:%M')} (Poisson({args.rate:g}), {args.series} series x "
              f"{args.days} days, seed {args.seed}; train {args.extra or '(defaults)'}; {args.threads} thread(s))\n\n"
              "| method | MAE | MASE | cov 80 | cov 95 | MSIS 95 | largest hi-95 | smallest lo-95 | seconds |\n"
              "|---|---|---|---|---|---|---|---|---|\n")
    rows = [f"| gruforecast | {scores['model']['mae']:.4g} | {scores['model']['mase']:.4g} | "
            f"{scores['model']['coverage_80']:.3f} | {scores['model']['coverage_95']:.3f} | "
            f"{scores['model']['msis_95']:.4g} | {forecast['hi-95'].max():.4g} | {forecast['lo-95'].min():.4g} | "
            f"{seconds:.1f} |",
            f"| seasonal naive | {scores['seasonal_naive']['mae']:.4g} | {scores['seasonal_naive']['mase']:.4g} | "
            f"{scores['seasonal_naive']['coverage_80']:.3f} | {scores['seasonal_naive']['coverage_95']:.3f} | "
            f"{scores['seasonal_naive']['msis_95']:.4g} |  |  |  |"]
    text = header + "\n".join(rows) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(text)


if __name__ == "__main__":
    main()
