"""M4 hourly with one global gruforecast model, scored with the official definitions.

    python benchmarks/m4_hourly.py [--epochs 40] [--ensemble 5] [--windows-per-epoch 40000] [--threads 2] [--cli]

Reads ../shared/data/m4_hourly.csv, keeps ONLY the training part of each series (the test
part is read after forecasting, to score), trains one global model through the library's
public API (the same code `gruforecast train` runs), forecasts the 48 test steps of each of
the 414 series from the end of its training part, and prints sMAPE, MASE (m = 24) and OWA
beside the official M4 table, then the 95% intervals' MSIS and ACD (|coverage - 0.95|)
beside the official M4 interval table: the default conformal intervals and the same
model's quantile head (`--intervals model`, its conformal offsets dropped), and the
seasonal naive's from its in-sample residuals. Writes benchmarks/results/m4_hourly.md.

With --cli it then does the same through the command line: the training parts written as a
long-format CSV, `gruforecast train --id-col unique_id ...` with the same options, and
`gruforecast predict`, and prints whether the CLI's scores equal the API's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from _options import add_model_options, cli_flags, configs, describe, environment  # noqa: E402

from gruforecast.data import DataSpec, Series, build_panel  # noqa: E402
from gruforecast.evaluate import records_at, summarize  # noqa: E402
from gruforecast.forecaster import train as train_forecaster  # noqa: E402
from gruforecast.windows import WindowConfig  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
PUBLISHED = [("Naive2", 18.383, 2.395), ("seasonal naive", 13.912, 1.193), ("Theta", 18.138, 2.455),
             ("organisers' RNN", 14.698, 3.048), ("ES-RNN (Smyl, M4 winner)", 9.328, 0.893),
             ("Doornik et al. (best hourly)", 8.913, 0.801)]
NAIVE2 = (18.383, 2.395)
PUBLISHED_INTERVALS = [("Naive", 71.245, 0.011), ("ETS", 17.487, 0.001), ("ARIMA", 7.538, 0.001),
                       ("ES-RNN (Smyl)", 7.928, 0.040), ("best entry", 6.139, 0.002)]
VAL_FRAC, PATIENCE = 0.07, 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # --second-season 168: the week, blended into the daily seasonal base (docs/model.md)
    add_model_options(parser, lookback=168, hidden_size=64, batch_size=256, lr=2e-3, epochs=40,
                      windows_per_epoch=40_000, points_per_epoch=0, window_norm="seasonal", window_scale="diff", base_seasons=1,
                      linear_path=False, second_season=168, by_season=True, loss="mae", transform="log", ensemble=5, seed=0,
                      level="80,95", intervals="conformal")
    parser.add_argument("--cli", action="store_true", help="also run it through the CLI and compare")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = pd.read_csv(DATA / "m4_hourly.csv")
    train = data[data["split"] == "train"].drop(columns="split")
    test = data[data["split"] == "test"]
    assert (train.groupby("unique_id")["t"].max() < test.groupby("unique_id")["t"].min()).all()
    panel = build_panel(train, DataSpec(target="y", time_col="t", id_col="unique_id"))
    wcfg = WindowConfig(lookback=args.lookback, horizon=48, season=24, val_frac=VAL_FRAC, test_frac=0.0,
                        transform=args.transform)
    mcfg, tcfg = configs(args, patience=PATIENCE)
    start = time.perf_counter()
    run = train_forecaster(panel, wcfg, mcfg, tcfg)
    seconds = time.perf_counter() - start
    fc = run.forecaster
    scores = score(panel, test, fc.predict().frame, fc)  # from the end of each training part
    head = score(panel, test, replace(fc, calibration=None).predict().frame, fc)["model"]
    rows = [(name, sm, ms) for name, sm, ms in PUBLISHED]
    rows.append(("seasonal naive (ours, same code path)", scores["seasonal_naive"]["smape"], scores["seasonal_naive"]["mase"]))
    rows.append((f"gruforecast GRU (global, seed {args.seed})", scores["model"]["smape"], scores["model"]["mase"]))
    lines = ["| method | sMAPE | MASE | OWA |", "|---|---|---|---|"]
    for name, sm, ms in rows:
        owa = (sm / NAIVE2[0] + ms / NAIVE2[1]) / 2
        lines.append(f"| {name} | {sm:.3f} | {ms:.3f} | {owa:.3f} |")
    table = "\n".join(lines)
    if len(fc.quantiles) > 1:
        lines = ["\n| method | MSIS (95%) | ACD (95%) | coverage 80% |", "|---|---|---|---|"]
        lines += [f"| {name} | {msis:.3f} | {acd:.3f} | |" for name, msis, acd in PUBLISHED_INTERVALS]
        for name, sc in (("seasonal naive (ours, in-sample residual quantiles)", scores["seasonal_naive"]),
                         (f"gruforecast, --intervals {fc.model_cfg.intervals}", scores["model"]),
                         ("gruforecast, the same model's quantile head (--intervals model)", head)):
            lines.append(f"| {name} | {sc['msis_95']:.3f} | {abs(sc['coverage_95'] - 0.95):.3f} | "
                         f"{sc['coverage_80']:.3f} |")
        table += "\n" + "\n".join(lines)
    info = (f"training {seconds:.0f} s ({len(run.fit.history)} epochs, best {run.fit.best_epoch}), "
            f"{describe(args)}; {environment()}")
    print(info + "\n\n" + table)
    text = f"Command: `python benchmarks/m4_hourly.py` ({info})\n\n{table}\n"
    if args.cli:
        cli_scores, cli_seconds = through_cli(train, panel, test, args)
        same = all(cli_scores["model"][k] == scores["model"][k] for k in ("smape", "mase"))
        line = (f"Through the CLI (`gruforecast train --id-col unique_id ...` then `gruforecast predict`, "
                f"{cli_seconds:.0f} s): sMAPE {cli_scores['model']['smape']:.3f}, MASE "
                f"{cli_scores['model']['mase']:.3f}: {'the same as' if same else 'DIFFERENT from'} the API's")
        print(line)
        text += f"\n{line}\n"
    out = ROOT / "benchmarks" / "results" / "m4_hourly.md"
    out.write_text(f"# M4 hourly, one global model ({time.strftime('%Y-%m-%d')})\n\n{text}")


def score(panel, test: pd.DataFrame, fc: pd.DataFrame, forecaster) -> dict:
    """sMAPE / MASE (and the interval scores) of the forecasts and the baselines on the
    official test points."""
    columns = dict(forecaster.model_cfg.columns) if forecaster is not None and forecaster.interval_columns else {}
    by_q = {0.5: "forecast", **{q: c for c, q in columns.items()}}
    quantiles = tuple(sorted(by_q))
    series, forecasts = [], []
    for s in panel.series:
        y = np.concatenate([s.values[:, 0], test.loc[test["unique_id"] == s.id, "y"].to_numpy()])
        series.append(Series(s.id, pd.RangeIndex(len(y)), y[:, None]))
        rows = fc[fc["unique_id"].astype(str) == s.id]
        forecasts.append(np.stack([rows[by_q[q]].to_numpy() for q in quantiles], -1))
    whole = replace(panel, series=series)  # train + test: the records read the actuals after the origin
    records = records_at(whole, [np.array([len(s)]) for s in panel.series], np.stack(forecasts), 24,
                         quantiles=quantiles)
    return summarize(records, groups=())["scores"]


def through_cli(train: pd.DataFrame, panel, test: pd.DataFrame, args) -> tuple[dict, float]:
    """Write the training parts as a long CSV, train and predict with the real CLI, score."""
    with tempfile.TemporaryDirectory() as tmp:
        csv, model, fc = Path(tmp, "m4_hourly_train.csv"), Path(tmp, "m4.gruf"), Path(tmp, "fc.csv")
        train.to_csv(csv, index=False)
        cmd = [sys.executable, "-m", "gruforecast", "train", str(csv), "--target", "y", "--time-col", "t",
               "--id-col", "unique_id", "--horizon", "48", "--season", "24", "--val-frac", str(VAL_FRAC),
               "--test-frac", "0", "--patience", str(PATIENCE), *cli_flags(args), "--device", "cpu",
               "--out", str(model)]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-m", "gruforecast", "predict", str(model), "--out", str(fc)],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        return score(panel, test, pd.read_csv(fc), None), seconds

if __name__ == "__main__":
    main()
