"""Series of the development suite trained one at a time: the CLI defaults beside a
candidate (`--extra`), as a user with a single series would run them.

The suite's panels train one model over hundreds of series; a user with one series gives
`train` far fewer windows, and its validation part may be a single window (a series of
fewer than 10 horizons). Choices that help a panel may not help that user, and the one
long single series we hold of the hidden kind (Taylor's demand, `taylor.py`) cannot say
whether a change helps single series in general. So this script draws `--series` series
(seeded) from a set's development split (the suite's `competition` loader: each series'
last h training points are its test), trains each alone with the horizon and `--time-col`
only, and prints the mean sMAPE of the defaults and of the candidate on the same series:

    python benchmarks/single_series.py --sets m1_monthly,m3_quarterly --extra="--val-frac 0"

Nothing is written to benchmarks/results; the note or docs that cite a figure give the
command. Threads: 1 per training, two trainings side by side (2 cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402


def one(history: pd.DataFrame, actual: np.ndarray, h: int, extra: list[str]) -> float:
    """Train on one series' history alone and score its forecast of the next h points."""
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "d.csv", Path(tmp) / "f.csv"
        history.to_csv(data, index=False)
        suite.run_cli("train", data, "--time-col", "t", "--horizon", h, *extra, "--out", Path(tmp) / "m.gruf",
                      "--report-dir", tmp, "--forecast-out", out, threads=1)
        return suite.per_series("smape", actual, pd.read_csv(out)["forecast"].to_numpy(float), 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="m1_monthly,m1_quarterly,m3_quarterly,m3_yearly,tourism_yearly")
    parser.add_argument("--series", type=int, default=25, help="series drawn from each set")
    parser.add_argument("--seed", type=int, default=1, help="which series are drawn")
    parser.add_argument("--extra", default="", help="train options of the candidate")
    args = parser.parse_args()
    suite.DEV = True  # the development split: no set's test part is read
    extra = args.extra.split()
    print(f"threads 1 per training; candidate: {' '.join(extra) or '(none)'}")
    for name in args.sets.split(","):
        h = suite.SETS[name].h
        train, test = suite.competition(name)
        ids = np.random.default_rng(args.seed).choice(sorted(train.unique_id.unique()),
                                                      size=min(args.series, train.unique_id.nunique()), replace=False)
        jobs = [(train[train.unique_id == s][["t", "y"]], test[test.unique_id == s]["y"].to_numpy(float), h, options)
                for s in ids for options in ([], extra)]
        with ThreadPoolExecutor(2) as pool:  # two trainings side by side, one thread each
            base, cand = np.array(list(pool.map(lambda job: one(*job), jobs))).reshape(-1, 2).T
        worse = int((cand > base + 1e-9).sum())
        print(f"{name}: {len(ids)} series, mean sMAPE defaults {base.mean():.3f}, candidate {cand.mean():.3f} "
              f"(worse on {worse}, better on {int((cand < base - 1e-9).sum())})", flush=True)


if __name__ == "__main__":
    main()
