"""Half-hourly electricity demand, one week ahead: the CLI defaults beside the weekly and
daily naive, from weekly origins of one short series.

The series is Taylor's (2003): England and Wales, 5 June to 27 August 2000, 4,032
half-hours, public in R's forecast package and in pmdarima. It is of the kind issue 14's
table names among the data kept from us (half-hourly demand, h = 336, MAPE), and of a
kind ../shared/data lacks: one sub-daily series of 12 weeks, where the suite's sub-daily
sets hold years or many series. The data is not copied here; write it once with

    pip install pmdarima    # anywhere, only to write the file
    python -c "from pmdarima.datasets import load_taylor; import pandas as pd; y = load_taylor(); \\
        pd.DataFrame({'ds': pd.date_range('2000-06-05', periods=len(y), freq='30min'), 'y': y}).to_csv('taylor.csv', index=False)"

    python benchmarks/taylor.py taylor.csv           # development origins: weeks 10 and 11, each from the weeks before
    python benchmarks/taylor.py taylor.csv --test    # the last week, from the 11 before: reported, nothing chosen on it

Each origin trains `gruforecast train` with the horizon alone (its own forecast after the
data is the week scored), then scores MAPE and the 80% / 95% coverage against the week's
actual values, beside the weekly naive (last week repeated: the baseline to beat on this
data) and the daily naive (yesterday repeated). The table is appended to
benchmarks/results/taylor.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite import run_cli  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "taylor.md"
WEEK = 336  # half-hours


def mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(np.abs(actual - forecast) / np.abs(actual)) * 100)


def run_origin(y: pd.DataFrame, weeks: int, threads: int, extra: list[str], tmp: Path) -> str:
    """One row: train on the first `weeks` weeks, score the next one."""
    end, values = weeks * WEEK, y["y"].to_numpy(float)
    actual, weekly, daily = values[end:end + WEEK], values[end - WEEK:end], np.tile(values[end - 48:end], 7)
    data, out = tmp / f"history-{weeks}.csv", tmp / f"forecast-{weeks}.csv"
    y.iloc[:end].to_csv(data, index=False)
    seconds, _ = run_cli("train", data, "--horizon", WEEK, *extra, "--out", tmp / f"m-{weeks}.gruf",
                         "--report-dir", tmp, "--forecast-out", out, threads=threads)
    fc = pd.read_csv(out)
    cover = [float(np.mean((actual >= fc[f"lo-{lv}"]) & (actual <= fc[f"hi-{lv}"]))) for lv in (80, 95)]
    return (f"| week {weeks + 1} (from {weeks}) | {mape(actual, fc['forecast'].to_numpy(float)):.3f} | "
            f"{mape(actual, weekly):.3f} | {mape(actual, daily):.3f} | {cover[0]:.3f} / {cover[1]:.3f} | {seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="the series as a CSV of ds, y (see above)")
    parser.add_argument("--test", action="store_true", help="the last week, instead of the development origins")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--extra", default="", help="train options added to the defaults (a candidate)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    y = pd.read_csv(args.data)
    if len(y) != 12 * WEEK:
        raise SystemExit(f"{args.data}: {len(y)} rows, not Taylor's 4,032 half-hours")
    origins = [11] if args.test else [9, 10]
    header = (f"\n## run of {time.strftime('%Y-%m-%d %H:%M')} ({args.threads} thread(s), torch {torch.__version__}"
              f"{', train ' + args.extra if args.extra else ''}; {'the last week' if args.test else 'development origins'})\n\n"
              "| origin | defaults MAPE | weekly naive | daily naive | coverage 80 / 95 | train seconds |\n"
              "|---|---|---|---|---|---|\n")
    print(f"threads {args.threads}", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(header)
    with tempfile.TemporaryDirectory() as tmp:
        for weeks in origins:
            line = run_origin(y, weeks, args.threads, args.extra.split(), Path(tmp))
            print(line, flush=True)
            with RESULTS.open("a") as out:
                out.write(line + "\n")


if __name__ == "__main__":
    main()
