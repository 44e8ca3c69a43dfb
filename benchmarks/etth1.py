"""ETTh1 with the Informer/DLinear protocol, through the library's public API.

    python benchmarks/etth1.py [--epochs 15] [--threads 2]

Protocol (../shared/data/README.md): rows [0, 8640) train, [8640, 11520) validation,
[11520, 14400) test; each column z-scored with the training part's mean and std (ddof=0,
which is what `--scaler standard` fits on the training part); MSE and MAE on z-scored
values over stride-1 test windows whose inputs may reach back into the validation rows.
"S": OT alone; "M": the 7 columns, modelled channel-independently as 7 series of one
global model (each forecasts itself from its own past). Only rows before 11520 are given
to training; the test rows are read only to score.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from _options import add_model_options, configs, describe, environment  # noqa: E402

from gruforecast.data import DataSpec, build_panel  # noqa: E402
from gruforecast.forecaster import train  # noqa: E402
from gruforecast.windows import WindowConfig  # noqa: E402

CSV = ROOT.parent / "shared" / "data" / "ETTh1.csv"
TRAIN, VAL_END, TEST_END = 8640, 11520, 14400
PUBLISHED = {("S", 24): {"repeat last value": (0.034, 0.139), "LSTMa": (0.114, 0.272), "Informer": (0.098, 0.247)},
             ("S", 96): {},
             ("M", 96): {"repeat last value": (1.295, 0.713), "DLinear (L=336)": (0.375, 0.399)}}


def run(raw: pd.DataFrame, setting: str, horizon: int, args) -> tuple:
    cols = ["OT"] if setting == "S" else [c for c in raw.columns if c != "date"]
    spec = DataSpec(target="v", time_col="date", id_col="col")

    def panel_of(rows: pd.DataFrame):
        return build_panel(rows.melt(id_vars="date", value_vars=cols, var_name="col", value_name="v"), spec)

    panel = panel_of(raw.iloc[:VAL_END])
    wcfg = WindowConfig(lookback=args.lookback, horizon=horizon, season=24,
                        val_frac=(VAL_END - TRAIN) / VAL_END, test_frac=0.0)
    mcfg, tcfg = configs(args, patience=4)
    start = time.perf_counter()
    art = train(panel, wcfg, mcfg, tcfg).forecaster
    seconds = time.perf_counter() - start
    whole = panel_of(raw.iloc[:TEST_END])  # the inputs of the test windows are the test rows before each origin
    origins = np.arange(VAL_END, TEST_END - horizon + 1)
    preds = art.forecast_origins(whole, [origins] * len(whole.series))[..., art.median]  # the point forecast
    preds = preds.reshape(len(whole.series), len(origins), horizon)
    by_col = {s.id: p for s, p in zip(whole.series, preds)}
    sq, ab, base_sq, base_ab = [], [], [], []
    for col in cols:
        y = raw[col].to_numpy(dtype=float)
        mean, std = y[:TRAIN].mean(), y[:TRAIN].std()  # ddof=0, the protocol's z-scoring
        tails = np.stack([y[o - args.lookback: o] for o in origins])[..., None]
        pred = by_col[col]
        actual = np.stack([y[o: o + horizon] for o in origins])
        err = ((pred - mean) / std) - ((actual - mean) / std)
        sq.append((err ** 2).mean())
        ab.append(np.abs(err).mean())
        base = (tails[:, -1:, 0] - actual) / std  # repeat the last value, on the same windows
        base_sq.append((base ** 2).mean())
        base_ab.append(np.abs(base).mean())
    return (float(np.mean(sq)), float(np.mean(ab)), seconds,
            (float(np.mean(base_sq)), float(np.mean(base_ab))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # --loss mse: the metric this benchmark scores (the product's default is mae).
    # --base-seasons 7 --linear-path: for 96 steps (4 seasons) ahead, a week's mean day as the
    # base and DLinear's linear map beside the GRU (docs/model.md); off in the product's defaults.
    add_model_options(parser, lookback=336, hidden_size=64, batch_size=256, lr=1e-3, epochs=15,
                      windows_per_epoch=20_000, points_per_epoch=0, window_norm="seasonal", window_scale="diff",
                      base_seasons=7, linear_path=True, second_season=0, by_season=True, loss="mse", seed=0,
                      level="80,95", full_refit=True)
    parser.add_argument("--only", help="one setting, e.g. M96")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    raw = pd.read_csv(CSV)
    lines = ["| setting | H | gruforecast MSE / MAE | training s | repeat last value here | published MSE / MAE |",
             "|---|---|---|---|---|---|"]
    for setting, horizon in PUBLISHED:
        if args.only and args.only != f"{setting}{horizon}":
            continue
        mse, mae, seconds, (base_mse, base_mae) = run(raw, setting, horizon, args)
        pub = "; ".join(f"{k} {v[0]:.3f} / {v[1]:.3f}" for k, v in PUBLISHED[setting, horizon].items()) or "-"
        lines.append(f"| {setting} | {horizon} | {mse:.3f} / {mae:.3f} | {seconds:.0f} | "
                     f"{base_mse:.3f} / {base_mae:.3f} | {pub} |")
        print(lines[-1], flush=True)
    info = f"{describe(args)}; {environment()}"
    table = "\n".join(lines)
    print(info + "\n\n" + table)
    # The new run on top; the earlier ones and the notes on them stay below it.
    results = ROOT / "benchmarks" / "results" / "etth1.md"
    before = results.read_text().replace("# ETTh1", "## The run before:", 1) if results.exists() else ""
    results.write_text(f"# ETTh1 ({time.strftime('%Y-%m-%d')})\n\nCommand: `python benchmarks/etth1.py` ({info})\n\n"
                       f"{table}\n" + (f"\n{before}" if before else ""))


if __name__ == "__main__":
    main()
