"""Covariates, measured: the same CLI defaults with and without them, beside MSTL, in one run.

    make bench-covariates            # .venv-bench/bin/python benchmarks/covariates.py
    python benchmarks/covariates.py --no-references --sets electricity
    python benchmarks/covariates.py --dev --no-references --extra "--seed 1"   # choosing, before any test part

- Nord Pool prices (`electricity_short_hourly.csv`): 7 daily origins of h = 24 after a
  model trained once on the data before the last 7 days; with and without the two
  day-ahead exogenous columns as `--future-features` (their values over each forecast
  day come from the data: they are forecasts published the day before).
- Melbourne pedestrian counts (`pedestrian_hourly.csv`): 14 daily origins of h = 24;
  without a calendar, with the calendar (`--calendar auto`), and with the calendar and
  Victoria's public holidays (`--holidays AU-VIC`), read in Melbourne time
  (`--calendar-tz Australia/Melbourne`: the file's times are UTC).

Each row: MAE over the test rows (the protocols of ../shared/data/README.md, as in
benchmarks/suite.py, whose loaders this reuses), its ratio to the row without the
covariates, the training seconds and their ratio, and the seconds per epoch of the
model kept (metrics.json: its fit's seconds over its epochs) and their ratio: the
covariates' own cost, apart from the candidate fits the defaults make to choose
(`--transform`, `--known-map`, `--known-units`, `--calendar auto`) and from the number
of epochs early stopping runs. MSTL (statsforecast, the `bench`
extra) on the same origins, unless --no-references. Nothing reads a test part before
the forecasts are made.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402
from suite import DATA, SETS, _filled, _times, daily_origins, references, run_cli  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "covariates.md"
EXTRA: list[str] = []  # --extra: train options added to every variant

# set -> (the file's id, time and target columns, the CLI's reading options,
#         [(variant, its train options)], the first variant being the one without)
CASES = {
    "electricity": ("electricity_short_hourly", ("unique_id", "ds", "y"), ["--target", "y"], [
        ("defaults, target alone", []),
        ("defaults + --future-features Exogenous1,Exogenous2", ["--future-features", "Exogenous1,Exogenous2"]),
        ("  the same, --calendar none", ["--future-features", "Exogenous1,Exogenous2", "--calendar", "none"]),
    ]),
    "pedestrian": ("pedestrian_hourly", ("sensor", "time_utc", "count"), ["--fill", "interpolate"], [
        ("--calendar none", ["--calendar", "none"]),
        ("defaults (--calendar auto)", ["--calendar-tz", "Australia/Melbourne"]),
        ("defaults + --holidays AU-VIC", ["--calendar-tz", "Australia/Melbourne", "--holidays", "AU-VIC"]),
    ]),
}


def run_case(name: str, threads: int, tmp: Path, with_refs: bool) -> list[tuple]:
    set_name, (id_col, time_col, target), reading, variants = CASES[name][0], CASES[name][1], CASES[name][2], CASES[name][3]
    proto = SETS[set_name]
    history, full, test = daily_origins(DATA / f"{set_name}.csv", id_col, time_col, target, proto)
    history_csv, full_csv = tmp / f"{name}-history.csv", tmp / f"{name}-full.csv"
    history.to_csv(history_csv, index=False)
    full.to_csv(full_csv, index=False)
    actual = test.rename(columns={id_col: "id", time_col: "time", target: "y"})[["id", "time", "y"]].dropna()
    actual["time"], actual["id"] = _times(actual["time"]), actual["id"].astype(str)
    # train's own forecast (after the history) needs the future features of its next day:
    # the known columns of the first test day, never its target
    future_csv = tmp / f"{name}-future.csv"
    first_day = test.sort_values([id_col, time_col]).groupby(id_col).head(proto.h)
    first_day.drop(columns=[target]).to_csv(future_csv, index=False)
    rows, base = [], None
    for label, options in variants:
        model, out = tmp / f"{name}.gruf", tmp / f"{name}-fc.csv"
        future = ["--future", future_csv] if "--future-features" in options else []
        seconds, _ = run_cli("train", history_csv, *reading, *options, *EXTRA, *future, "--horizon", proto.h, "--out", model,
                             "--report-dir", tmp, threads=threads)
        fit = json.loads((tmp / "metrics.json").read_text())["training"]
        per_epoch = fit["seconds"] / max(1, fit["epochs_run"])
        run_cli("predict", model, "--data", full_csv, "--cutoffs", proto.origins, "--step", proto.step,
                "--out", out, threads=threads)
        fc = pd.read_csv(out).rename(columns={id_col: "id", time_col: "time"})
        fc["time"], fc["id"] = _times(fc["time"]), fc["id"].astype(str)
        mae = _mae(actual.merge(fc[["id", "time", "forecast"]], on=["id", "time"]), "forecast")
        base = base or (mae, seconds, per_epoch)
        rows.append((label, mae, mae / base[0], seconds, seconds / base[1], per_epoch, per_epoch / base[2]))
    if with_refs:
        full_std = _filled(full.rename(columns={id_col: "unique_id", time_col: "time", target: "y"})
                           [["unique_id", "time", "y"]].assign(time=lambda d: pd.to_datetime(d.time)), "h")
        ref, seconds = references(proto, None, full_std, "h")
        ref["time"], ref["id"] = _times(ref["time"]), ref["id"].astype(str)
        on = actual.merge(ref, on=["id", "time"])
        rows += [(m, _mae(on, m), _mae(on, m) / base[0], seconds, np.nan, np.nan, np.nan) for m in ("MSTL", "SeasonalNaive")]
    return rows


def _mae(merged: pd.DataFrame, col: str) -> float:
    """MAE per series, then the mean over series (the suite's averaging)."""
    return float(np.mean([np.mean(np.abs(g["y"] - g[col])) for _, g in merged.groupby("id")]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(CASES), help="comma-separated: electricity, pedestrian")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-references", action="store_true", help="gruforecast rows only (no statsforecast)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the table is appended")
    parser.add_argument("--dev", type=int, nargs="?", const=1, default=0, metavar="FOLD",
                        help="the development split (suite.py --dev): the test days are the ones before the "
                             "test part; --dev 2 the ones before those, and so on (more folds, one at a time)")
    parser.add_argument("--extra", default="", help="train options added to every variant (a candidate)")
    args = parser.parse_args()
    global EXTRA
    suite.DEV, EXTRA = args.dev, args.extra.split()
    import torch

    torch.set_num_threads(args.threads)
    print(f"threads {args.threads} (torch {torch.__version__})", flush=True)
    extra = (f", train {args.extra}" if args.extra else "") + (f", DEVELOPMENT split (--dev {args.dev})" if args.dev else "")
    header = (f"\n## run of {time.strftime('%Y-%m-%d %H:%M')} ({args.threads} thread(s){extra})\n\n"
              "| set | method | MAE | MAE / without | train seconds | seconds / without | s / epoch | per epoch / without |\n"
              "|---|---|---|---|---|---|---|---|\n")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with args.results.open("a") as out:
        out.write(header)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            for label, mae, ratio, secs, secs_ratio, epoch, epoch_ratio in run_case(name, args.threads, Path(tmp),
                                                                                    not args.no_references):
                line = (f"| {name} | {label} | {mae:.4g} | {ratio:.3f} | {secs:.1f} | {secs_ratio:.2f} | {epoch:.2f} "
                        f"| {epoch_ratio:.2f} |").replace(" nan ", " ")
                print(line, flush=True)
                with args.results.open("a") as out:
                    out.write(line + "\n")


if __name__ == "__main__":
    main()
