"""The development suite: gruforecast's CLI defaults on every data set of ../shared/data,
beside statsforecast's SeasonalNaive, AutoETS and AutoTheta (MSTL on the multi-seasonal
sets), on the same splits, in the same run.

    make bench-suite                    # .venv-bench/bin/python benchmarks/suite.py
    python benchmarks/suite.py --sets m3_yearly,tourism_yearly --threads 1
    python benchmarks/suite.py --dev --extra "--hidden-size 32"   # a candidate default, before any test part

`--dev` is the development split, the one to choose defaults on: every set is cut before
its test part (competition panels: each series' last h training rows become the test;
daily-origin sets: the same origins moved back before the test part; ETTh1: the
protocol's validation rows), and the references run on the same cut.

Each set follows its protocol (../shared/data/README.md): the competition panels forecast
their `test` rows from the end of their `train` rows (one origin); pedestrian (14 daily
origins of h = 24), bank calls (5 daily origins of h = 169) and electricity (7 daily
origins of h = 24) are trained once on the data before their test part and forecast from
each origin with `predict --data --cutoffs`; ETTh1 S/96 trains on the rows before 11,520
and forecasts every origin of the test rows (stride 1, scored on the z-scored values).
gruforecast is run as a user would: `gruforecast train` with only the options needed to
read the data and the horizon, then `predict`. Nothing here reads a test part before the
forecasts are made. Rows are appended to benchmarks/results/suite.md as each set ends,
so a partial run keeps what it measured. statsforecast comes from the `bench` extra.

Intervals: our rows give the 80% and 95% coverage and the 95% MSIS (M4's, scaled by the
in-sample seasonal naive MAE) of the default intervals (conformal: outward CQR), and, on
a second row, of the same model's quantile head (`--intervals model`: the model file with
its conformal shifts dropped, forecast in-process through the same `predict` path), so
the default between the two is chosen by measurement on every set. Each coverage comes
with its bootstrap standard error (`coverage_se`: series resampled whole, or blocks of
origins for one series): the band a coverage can be read to on that set's test part.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
# The gruforecast of this tree, in this process and in the CLI runs alike: from a copy of
# the tree (a scratch build), an installed one would score the in-process rows.
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "suite.md"
EXTRA: list[str] = []  # --extra: options added to every train, to compare a candidate default
DEV = False  # --dev: the development split, every set cut before its test part (see main)
KEEP: Path | None = None  # --keep: where each set's scored forecasts are written


@dataclass
class Protocol:
    name: str
    h: int
    m: int  # the season of MASE and of the reference models
    metric: str  # the primary metric: smape, mape, mae or mse
    args: list[str] = field(default_factory=list)  # what the CLI needs to read the data
    origins: int = 1  # > 1: daily origins, h steps apart (step), from one model
    step: int | None = None
    seasons: tuple[int, ...] = ()  # MSTL's seasons where the data has two


SETS = {
    "m4_hourly": Protocol("m4_hourly", 48, 24, "smape", ["--time-col", "t"]),
    "m4_weekly": Protocol("m4_weekly", 13, 1, "smape", ["--time-col", "t"]),
    "m1_monthly": Protocol("m1_monthly", 18, 12, "smape", ["--time-col", "t"]),
    "m1_quarterly": Protocol("m1_quarterly", 8, 4, "smape", ["--time-col", "t"]),
    "m3_quarterly": Protocol("m3_quarterly", 8, 4, "smape", ["--time-col", "t"]),
    "m3_yearly": Protocol("m3_yearly", 6, 1, "smape", ["--time-col", "t"]),
    "m3_other": Protocol("m3_other", 8, 1, "smape", ["--time-col", "t"]),
    "tourism_yearly": Protocol("tourism_yearly", 4, 1, "mape", ["--time-col", "t"]),
    "etth1": Protocol("etth1", 96, 24, "mse", ["--target", "OT"]),
    "pedestrian_hourly": Protocol("pedestrian_hourly", 24, 24, "mae", ["--fill", "interpolate"], 14, 24, (24, 168)),
    "bank_calls_5min": Protocol("bank_calls_5min", 169, 169, "mae", [], 5, 169, (169, 845)),
    "electricity_short_hourly": Protocol("electricity_short_hourly", 24, 24, "mae", ["--target", "y"], 7, 24, (24, 168)),
}


# -- data: (history for training, full data for the origins, the actual test rows) ------

def competition(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows (unique_id, t, y) and the test rows of a competition panel."""
    d = pd.read_csv(DATA / f"{name}.csv", dtype={"unique_id": str})
    train, test = d[d.split == "train"].drop(columns="split"), d[d.split == "test"].drop(columns="split")
    if DEV:  # the last h training rows of each series are the test; a series goes when it has
        # 2h rows or fewer, or fewer than 7 would be left (AutoETS refuses 6: "tiny datasets")
        h = test.groupby("unique_id").size().max()
        rank = train.groupby("unique_id").cumcount(ascending=False)
        n = train.groupby("unique_id")["y"].transform("size")
        keep = (n > 2 * h) & (n - h >= 7)
        train, rank = train[keep], rank[keep]
        train, test = train[rank >= h], train[rank < h]
    return train, test


def daily_origins(path: Path, id_col: str | None, time_col: str, target: str, proto: Protocol):
    """(history, full, test): the last origins x step points of each series are the test."""
    d = pd.read_csv(path)
    d[time_col] = pd.to_datetime(d[time_col], utc=True).dt.tz_localize(None)
    keys = [id_col] if id_col else []
    d = d.sort_values(keys + [time_col]).reset_index(drop=True)
    n_test = (proto.origins - 1) * proto.step + proto.h
    for _ in range(1 + DEV):  # --dev: the data before the test part, split the same way again
        rank = d.groupby(id_col).cumcount(ascending=False) if id_col else pd.Series(np.arange(len(d))[::-1])
        if proto.name == "pedestrian_hourly":  # gaps: the last 14 days of the calendar, not of rows
            end = d.groupby(id_col)[time_col].transform("max")
            test_mask = d[time_col] > end - pd.Timedelta(hours=n_test)
        else:
            test_mask = rank < n_test
        d, full = d[~test_mask].reset_index(drop=True), d
    return d, full, full[test_mask]


# -- scores ---------------------------------------------------------------------------

def per_series(metric: str, y: np.ndarray, f: np.ndarray, scale: float) -> float:
    if metric == "smape":
        return float(np.mean(200 * np.abs(y - f) / np.maximum(np.abs(y) + np.abs(f), 1e-12)))
    if metric == "mape":
        return float(np.mean(100 * np.abs(y - f) / np.maximum(np.abs(y), 1e-12)))
    if metric == "mae":
        return float(np.mean(np.abs(y - f)))
    if metric == "mse":
        return float(np.mean((y - f) ** 2))
    if metric == "mase":
        return float(np.mean(np.abs(y - f)) / scale)
    raise ValueError(metric)


def score(forecasts: pd.DataFrame, col: str, scales: dict, metric: str) -> tuple[float, float]:
    """(primary metric, MASE), averaged per series then over series; `forecasts` holds
    id, y (actual) and the forecast column, test rows only."""
    prim, mase = [], []
    for sid, g in forecasts.groupby("id"):
        y, f = g["y"].to_numpy(float), g[col].to_numpy(float)
        prim.append(per_series(metric, y, f, 1.0))
        mase.append(per_series("mase", y, f, scales[sid]))
    return float(np.mean(prim)), float(np.mean(mase))


def interval_scores(forecasts: pd.DataFrame, scales: dict) -> tuple[float, float, float]:
    """(80% coverage, 95% coverage, 95% MSIS) of the lo-/hi- columns, NaN without them;
    MSIS averaged per series (each scaled by its in-sample seasonal naive MAE), then over
    series, as M4."""
    if "lo-95" not in forecasts.columns:
        return np.nan, np.nan, np.nan
    y = forecasts["y"].to_numpy(float)
    cover = [float(np.mean(_covered(forecasts, v))) for v in (80, 95)]
    lo, hi, a = forecasts["lo-95"].to_numpy(float), forecasts["hi-95"].to_numpy(float), 0.05
    score = (hi - lo) + 2 / a * np.maximum(lo - y, 0) + 2 / a * np.maximum(y - hi, 0)
    per = forecasts.assign(v=score).groupby("id")["v"].mean()
    msis = float(np.mean([v / scales[sid] for sid, v in per.items()]))
    return cover[0], cover[1], msis


def _covered(forecasts: pd.DataFrame, level: int) -> np.ndarray:
    """Whether each row's actual lies inside its `level`% interval."""
    y = forecasts["y"].to_numpy(float)
    return (y >= forecasts[f"lo-{level}"].to_numpy(float)) & (y <= forecasts[f"hi-{level}"].to_numpy(float))


def coverage_se(forecasts: pd.DataFrame, h: int, step: int | None, draws: int = 1000) -> tuple[float, float]:
    """The bootstrap standard error of the 80% and 95% coverage (seeded): clusters of rows
    resampled whole, the series of a panel, or for one series blocks of origins whose
    windows overlap (h / step consecutive cutoffs; one cutoff per block for daily
    origins). A test part's rows are not independent draws (a series' steps, a day's
    hours), so the binomial error of the row count would flatter it. Resampling series
    leaves out what they share (the same days), so on panels it is a lower bound.
    NaN without intervals or with a single cluster."""
    if "lo-95" not in forecasts.columns:
        return np.nan, np.nan
    if forecasts["id"].nunique() > 1 or "cutoff" not in forecasts.columns:
        cluster = forecasts["id"].astype(str)
    else:
        rank = forecasts["cutoff"].rank(method="dense").astype(int) - 1
        cluster = rank // max(1, -(-h // (step or h)))
    codes = pd.factorize(cluster)[0]
    if codes.max() < 1:
        return np.nan, np.nan
    picks = np.random.default_rng(0).integers(0, codes.max() + 1, size=(draws, codes.max() + 1))
    counts = np.bincount(codes).astype(float)
    out = []
    for v in (80, 95):
        hits = np.bincount(codes, weights=_covered(forecasts, v).astype(float))
        out.append(float(np.std(hits[picks].sum(1) / counts[picks].sum(1))))
    return out[0], out[1]


def mase_scales(history: pd.DataFrame, m: int) -> dict:
    out = {}
    for sid, g in history.groupby("id"):
        v = g["y"].to_numpy(float)
        v = v[np.isfinite(v)]
        d = np.abs(v[m:] - v[:-m]) if len(v) > m else np.abs(np.diff(v))
        out[sid] = float(np.mean(d)) if len(d) and np.mean(d) > 0 else 1.0
    return out


# -- gruforecast through the CLI ------------------------------------------------------

def run_cli(*args, threads: int) -> tuple[float, str]:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gruforecast", *map(str, args), "--threads", str(threads)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"gruforecast {args[0]} failed ({proc.returncode}): {proc.stderr.strip()[-600:]}")
    return time.perf_counter() - start, proc.stderr


def ours(proto: Protocol, history: pd.DataFrame, full: pd.DataFrame | None, cols: dict,
         threads: int, tmp: Path) -> tuple[pd.DataFrame, pd.DataFrame, float, str]:
    """Forecasts (id, time, forecast, intervals) of the test rows with the default
    intervals and with the model's quantile head, training seconds, what the defaults chose."""
    train_csv, model = tmp / f"{proto.name}.csv", tmp / f"{proto.name}.gruf"
    history.to_csv(train_csv, index=False)
    seconds, log = run_cli("train", train_csv, *proto.args, *EXTRA, "--horizon", proto.h, "--out", model,
                           "--report-dir", tmp, threads=threads)
    out = tmp / f"{proto.name}-fc.csv"
    if full is None:
        run_cli("predict", model, "--out", out, threads=threads)
    else:
        full_csv = tmp / f"{proto.name}-full.csv"
        full.to_csv(full_csv, index=False)
        run_cli("predict", model, "--data", full_csv, "--cutoffs", proto.origins, "--step", proto.step,
                "--out", out, threads=threads)
    data = full_csv if full is not None else None
    variants = {name: _ours_frame(_variant(model, data, proto, name), cols) for name in VARIANTS}
    return _ours_frame(pd.read_csv(out), cols), variants, seconds, _setting(log, tmp / "metrics.json")


# The same model's other intervals, from its file in this process through the `predict`
# path: the quantile head alone (`--intervals model`: the calibration dropped). (The runs
# of 23:16 and 23:41 also measured two-way CQR, the default before outward-only.)
VARIANTS = ("--intervals model",)


def _variant(model: Path, full_csv: Path | None, proto: Protocol, name: str) -> pd.DataFrame:
    from dataclasses import replace

    from gruforecast import artifact
    from gruforecast.data import load_panel

    assert name == "--intervals model", name
    art = replace(artifact.load(model), calibration=None)
    if full_csv is None:
        return art.predict().frame
    return art.predict_at(load_panel(full_csv, art.data_spec), proto.origins, proto.step).frame


def _ours_frame(fc: pd.DataFrame, cols: dict) -> pd.DataFrame:
    fc = fc.rename(columns={cols["id"]: "id", cols["time"]: "time"}) if cols["id"] else \
        fc.rename(columns={cols["time"]: "time"}).assign(id="series")
    keep = ["id", "time", "forecast", *(c for c in fc.columns if c[:3] in ("lo-", "hi-")),
            *(["cutoff"] if "cutoff" in fc.columns else [])]
    return fc[keep]


# -- statsforecast on the same split --------------------------------------------------

def references(proto: Protocol, history: pd.DataFrame, full: pd.DataFrame | None, freq) -> tuple[pd.DataFrame, float]:
    """Forecasts of the reference models (columns named by model) and their seconds."""
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoETS, AutoTheta, SeasonalNaive

    # ETS with a season over 24 (bank calls: 169) optimises for hours and R's ets refuses
    # it ("frequency too high"): there AutoETS runs without a season, and says so.
    ets = AutoETS(season_length=proto.m) if proto.m <= 24 else AutoETS(season_length=1, alias="AutoETS (no season, m > 24)")
    models = [SeasonalNaive(season_length=proto.m), ets, AutoTheta(season_length=proto.m)]
    if proto.seasons:
        models.append(MSTL(season_length=list(proto.seasons), trend_forecaster=AutoETS(model="ZZN")))
    sf = StatsForecast(models=models, freq=freq, n_jobs=1)
    start = time.perf_counter()
    if full is None:
        fc = sf.forecast(df=history.rename(columns={"time": "ds"})[["unique_id", "ds", "y"]], h=proto.h)
    else:
        fc = sf.cross_validation(df=full.rename(columns={"time": "ds"})[["unique_id", "ds", "y"]], h=proto.h,
                                 n_windows=proto.origins, step_size=proto.step, refit=False)
    seconds = time.perf_counter() - start
    fc = fc.reset_index() if "unique_id" not in fc.columns else fc
    fc = fc.rename(columns={"unique_id": "id", "ds": "time"})
    return fc.drop(columns=[c for c in ("y", "cutoff") if c in fc.columns]), seconds


# -- one set --------------------------------------------------------------------------

def run_set(proto: Protocol, threads: int, tmp: Path, with_refs: bool) -> list[tuple]:
    """Rows (method, primary, MASE, seconds) of one set."""
    if proto.name.startswith(("m1_", "m3_", "m4_", "tourism")):
        history, test = competition(proto.name)
        cols, full, freq = {"id": "unique_id", "time": "t"}, None, 1
        h_std, t_std = history.rename(columns={"t": "time"}), test.rename(columns={"t": "time"})
    elif proto.name == "etth1":
        d = pd.read_csv(DATA / "ETTh1.csv")[["date", "OT"]].iloc[:14400]
        mu, sd = d.OT.iloc[:8640].mean(), d.OT.iloc[:8640].std(ddof=0)
        d["OT"] = (d.OT - mu) / sd  # the protocol scores z-scored values
        cut = 8640 if DEV else 11520  # --dev: the protocol's validation rows are the test
        history, full = d.iloc[:cut], d.iloc[:cut + 2880]
        proto.origins, proto.step = 2880 - proto.h + 1, 1
        cols, freq = {"id": None, "time": "date"}, "h"
        h_std = history.rename(columns={"date": "time", "OT": "y"}).assign(unique_id="series")
        t_std = None  # every origin's own window: scored below
    else:
        spec = {"pedestrian_hourly": ("sensor", "time_utc", "count"), "bank_calls_5min": (None, "DateTime", "Calls"),
                "electricity_short_hourly": ("unique_id", "ds", "y")}[proto.name]
        history, full, test = daily_origins(DATA / f"{proto.name}.csv", *spec, proto)
        cols, freq = {"id": spec[0], "time": spec[1]}, ("h" if proto.m == 24 else "5min")
        rename = {spec[1]: "time", spec[2]: "y", **({spec[0]: "unique_id"} if spec[0] else {})}
        h_std = history.rename(columns=rename)
        t_std = test.rename(columns=rename)
        if not spec[0]:
            h_std, t_std = h_std.assign(unique_id="series"), t_std.assign(unique_id="series")
        if proto.name == "electricity_short_hourly":  # the target alone: covariates are another issue
            history, full = history[["unique_id", "ds", "y"]], full[["unique_id", "ds", "y"]]
    with tempfile.TemporaryDirectory(dir=tmp) as work:
        fc, head, seconds, setting = ours(proto, history, full if proto.origins > 1 or proto.name == "etth1" else None,
                                      cols, threads, Path(work))
        if KEEP is not None:  # the model and its own held-out report, for offline study
            shutil.copy(Path(work) / f"{proto.name}.gruf", KEEP / f"{proto.name}.gruf")
            shutil.copy(Path(work) / "metrics.json", KEEP / f"{proto.name}-metrics.json")
    scales = mase_scales(h_std.rename(columns={"unique_id": "id"}), proto.m)
    if t_std is not None:
        t_std = t_std.rename(columns={"unique_id": "id"}).dropna(subset=["y"])
        t_std["time"] = _times(t_std["time"])
        t_std["id"] = t_std["id"].astype(str)
    rows = []
    for label, frame in (("gruforecast defaults", fc), *((f"  the same model, {v}", head[v]) for v in VARIANTS)):
        frame["time"] = _times(frame["time"])
        if t_std is None:  # ETTh1: the actual value of every (cutoff, step) row
            actual = full.rename(columns={"date": "time", "OT": "y"})
            actual["time"] = _times(actual["time"])
            merged = frame.merge(actual[["time", "y"]], on="time")
            msis_scales = mase_scales(h_std.rename(columns={"unique_id": "id"}), proto.m)
        else:
            frame["id"] = frame["id"].astype(str)
            merged = t_std[["id", "time", "y"]].merge(frame, on=["id", "time"])
            msis_scales = scales
        point = score(merged, "forecast", {"series": 1.0} if t_std is None else scales, proto.metric)
        name = label + (f" {' '.join(EXTRA)}" if EXTRA and label.startswith("gru") else "")
        rows.append((name, *point, *interval_scores(merged, msis_scales), *coverage_se(merged, proto.h, proto.step),
                     seconds if label.startswith("gru") else np.nan, setting if label.startswith("gru") else ""))
        if label.startswith("gru"):
            first = merged
            if KEEP is not None:  # the scored rows and their scales, for offline comparisons
                merged.to_csv(KEEP / f"{proto.name}.csv", index=False)
                (KEEP / f"{proto.name}.json").write_text(json.dumps({
                    "metric": proto.metric, "h": proto.h, "step": proto.step,
                    "point": {"series": 1.0} if t_std is None else scales, "msis": msis_scales}))
    if with_refs:
        scales = {"series": 1.0} if t_std is None else scales
        rows += [(m, p, s, np.nan, np.nan, np.nan, np.nan, np.nan, secs, note)
                 for m, p, s, secs, note in _reference_rows(proto, h_std, full, cols, t_std, scales, freq, first)]
    return rows


def _reference_rows(proto, h_std, full, cols, t_std, scales, freq, merged) -> list[tuple]:
    if proto.name == "etth1":  # stride-1 ETS over 2,785 origins is hours: every 24th origin
        full_std = full.rename(columns={"date": "time", "OT": "y"}).assign(unique_id="series")
        full_std["time"] = _times(full_std["time"])
        ref, seconds = _etth1_refs(proto, full_std, freq)
        ref["cutoff"] = _times(ref["cutoff"])
        on = ref.merge(full_std[["time", "y"]], on="time").assign(id="series")
        same = merged.assign(cutoff=_times(merged["cutoff"])).merge(ref[["time", "cutoff"]], on=["time", "cutoff"])
        rows = [("gruforecast defaults, the references' origins", *score(same, "forecast", scales, proto.metric),
                 np.nan, f"{same['cutoff'].nunique()} origins")]
        return rows + [(c, *score(on, c, scales, proto.metric), seconds, f"{ref['cutoff'].nunique()} origins")
                       for c in ref.columns if c not in ("id", "time", "cutoff")]
    full_std = None
    if proto.origins > 1:
        target = {"pedestrian_hourly": "count", "bank_calls_5min": "Calls"}.get(proto.name, "y")
        full_std = full.rename(columns={cols["time"]: "time", target: "y",
                                        **({cols["id"]: "unique_id"} if cols["id"] else {})})
        if not cols["id"]:
            full_std = full_std.assign(unique_id="series")
        full_std = _filled(full_std, freq)
    ref, seconds = references(proto, h_std, full_std, freq)
    ref["time"], ref["id"] = _times(ref["time"]), ref["id"].astype(str)
    on = t_std[["id", "time", "y"]].merge(ref, on=["id", "time"])
    return [(c, *score(on, c, scales, proto.metric), seconds, "")
            for c in ref.columns if c not in ("id", "time", "cutoff", "y")]


def _etth1_refs(proto: Protocol, full_std: pd.DataFrame, freq):
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, SeasonalNaive

    sf = StatsForecast(models=[SeasonalNaive(season_length=24), AutoETS(season_length=24)], freq=freq, n_jobs=1)
    start = time.perf_counter()
    fc = sf.cross_validation(df=full_std.rename(columns={"time": "ds"})[["unique_id", "ds", "y"]], h=proto.h,
                             n_windows=(proto.origins - 1) // 24 + 1, step_size=24, refit=False)
    fc = fc.reset_index() if "unique_id" not in fc.columns else fc
    return fc.rename(columns={"unique_id": "id", "ds": "time"}).drop(columns=["y"]), time.perf_counter() - start


def _filled(d: pd.DataFrame, freq) -> pd.DataFrame:
    """Each series on its regular grid with holes interpolated, as `--fill interpolate`."""
    out = []
    for sid, g in d.groupby("unique_id"):
        g = g.set_index("time")[["y"]]
        g.index = pd.to_datetime(g.index)
        g = g.asfreq(freq).interpolate(limit_direction="both")
        out.append(g.reset_index().assign(unique_id=sid))
    return pd.concat(out, ignore_index=True)


def _times(col: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(col):
        return col.astype("int64")
    return pd.to_datetime(col)


def _setting(log: str, metrics: Path) -> str:
    """What the defaults chose: the train log line's season, lookback, ..., then the
    transform, known map, calendar and ensemble from metrics.json's choices, with the
    validation MASE of the chosen candidate / the other where it was a candidate choice,
    and the naive weight with each candidate's validation MASE."""
    setting = next((line.split("freq", 1)[-1].strip().replace("|", "/") for line in log.splitlines()
                    if " series, " in line and "season" in line), "")
    choices = json.loads(metrics.read_text()).get("choices", {})
    picked = []
    for k in ("transform", "known_map", "calendar", "ensemble"):
        if k in choices:
            scores = re.findall(r"MASE ([\d.]+), against ([\d.]+)", choices[k])
            picked.append(f"{k} {choices[k].split(':')[0]}" + (f" (val MASE {scores[0][0]} / {scores[0][1]})"
                                                                 if scores else ""))
    if "naive_weight" in choices:  # "0.25: validation MASE 1.2 with 0, 1.1 with 0.25, ..."
        weight, _, rest = choices["naive_weight"].partition(": validation MASE ")
        picked.append(f"naive weight {weight}" + (f" (val MASE {rest})" if rest else ""))
    return ", ".join([setting, *picked])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated set names")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-references", action="store_true", help="gruforecast rows only")
    parser.add_argument("--extra", default="", help="train options to try beside the defaults, e.g. '--transform log'")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the table is appended")
    parser.add_argument("--keep", type=Path, default=None,
                        help="a folder: write each set's scored forecasts (with the actuals) and scales, the model file "
                             "and its metrics.json there")
    parser.add_argument("--dev", action="store_true",
                        help="the development split, for choosing defaults: every set is cut before its test "
                             "part and scored on the h points (or origins) before it, so no choice reads a test part")
    args = parser.parse_args()
    EXTRA.extend(args.extra.split())
    global DEV, KEEP
    DEV, KEEP = args.dev, args.keep
    if KEEP is not None:
        KEEP.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(args.threads)
    from _options import environment

    env = environment()
    print(f"threads {args.threads} ({env}); sets: {args.sets}", flush=True)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with args.results.open("a") as out:
        extra = (f", train {args.extra}" if args.extra else "") + (", DEVELOPMENT split (--dev)" if args.dev else "")
        out.write(f"\n## run of {time.strftime('%Y-%m-%d %H:%M')} ({args.threads} thread(s){extra}; {env})\n\n"
                  "| set | metric | method | primary | MASE | cov 80 | cov 95 | MSIS 95 | seconds | what the defaults chose |\n"
                  "|---|---|---|---|---|---|---|---|---|---|\n")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            proto = SETS[name]
            try:
                rows = run_set(proto, args.threads, Path(tmp), not args.no_references)
            except Exception as exc:  # one set failing must not lose the others' rows
                rows = [("gruforecast defaults", *[np.nan] * 8, f"FAILED: {exc}".replace("\n", " ")[:300])]
            with args.results.open("a") as out:
                for method, prim, mase, c80, c95, msis, se80, se95, secs, note in rows:
                    line = (f"| {name} | {proto.metric} | {method} | {prim:.4g} | {mase:.4g} | {_cover(c80, se80)} | "
                            f"{_cover(c95, se95)} | {msis:.4g} | {secs:.1f} | {note} |")
                    line = re.sub(r"\| nan(?= \|)", "| ", line)
                    print(line, flush=True)
                    out.write(line + "\n")


def _cover(value: float, se: float) -> str:
    """A coverage cell: 0.776 (SE .031), the value alone without a standard error."""
    return f"{value:.3f}" + ("" if np.isnan(se) else f" (SE {format(se, '.3f').lstrip('0')})")


if __name__ == "__main__":
    main()
