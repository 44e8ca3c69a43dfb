"""Reports: the numbers first (a dict, written as metrics.json), then Markdown and HTML.

`write_reports` writes, atomically, into one folder:
- `metrics.json`: every number, the configuration, data fingerprint, seed, versions,
  timings (layout in docs/reports.md);
- `report.md`: the same numbers as Markdown tables;
- `report.html`: one self-contained page (PNG plots embedded as data URIs, no network):
  first the future (history, the forecast and its bands, a fan chart, for the best, median
  and worst series: `train` only), then forecasts against actuals on the held-out windows
  with their bands for the same series, error by
  horizon step for the model and the baselines, training and validation loss curves, and
  the metrics tables.
Plots use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write, atomic_write_text
from .config import interval_pairs
from .data import Panel

COLUMNS = ("mae", "rmse", "mape", "smape", "mase")


def write_reports(folder: Path, report: dict, evaluation: dict | None, records: pd.DataFrame | None,
                  panel: Panel, losses: list[tuple[str, list[float], list[float | None]]],
                  title: str, future: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write metrics.json, report.md and report.html into `folder`; return their paths.
    `future`: the forecast frame from the end of the data, drawn first."""
    def write_metrics(path: Path) -> None:
        # Streamed: as one string, a 100,000-series panel's per-series scores (15 MB of
        # JSON) took 90 MB while it was joined.
        with path.open("w", encoding="utf-8") as fh:
            json.dump(jsonable(report), fh, indent=2, allow_nan=False)
            fh.write("\n")

    paths = {"metrics": atomic_write(folder / "metrics.json", write_metrics)}
    paths["report_md"] = atomic_write_text(folder / "report.md", markdown(title, report, evaluation))
    page = html_page(title, report, evaluation, records, panel, losses, future)
    paths["report_html"] = atomic_write_text(folder / "report.html", page)
    return paths


def base_report(panel: Panel, configs: tuple, device: str) -> dict:
    """The keys every metrics.json shares: versions, data fingerprint, configuration, seed.
    `configs`: the window, model and train configs, stored under their own names."""
    import platform
    from dataclasses import asdict

    import torch

    from . import __version__

    wcfg, mcfg, tcfg = configs
    return {
        "gruforecast_version": __version__,
        "created": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "data": {
            "fingerprint_sha256": panel.fingerprint, "series": len(panel.series),
            "points": int(sum(len(s) for s in panel.series)), "freq": panel.freq,
        },
        "config": {"data": asdict(panel.spec), "windows": asdict(wcfg), "model": asdict(mcfg),
                   "train": asdict(tcfg), "season": wcfg.season, "device": device},
        "choices": dict(panel.choices),  # what the defaults chose from the data, and why
        "seed": tcfg.seed,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__},
        "threads": torch.get_num_threads(),
    }


def jsonable(obj):
    """numpy scalars to Python numbers; NaN and inf to None (JSON has neither)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def fmt(value) -> str:
    """How every number appears in the Markdown and HTML tables."""
    return "n/a" if value is None else f"{value:.4g}"


def score_rows(evaluation: dict) -> list[list[str]]:
    return [[m, *(fmt(scores[c]) for c in COLUMNS)] for m, scores in evaluation["scores"].items()]


def interval_keys(evaluation: dict) -> list[str]:
    """The interval scores the model has (coverage, MSIS, pinball ...), or none."""
    return [k for k in evaluation["scores"]["model"] if k not in COLUMNS]


def interval_rows(evaluation: dict) -> list[list[str]]:
    """The model and the seasonal naive (intervals from its in-sample residuals)."""
    return [[m, *(fmt(evaluation["scores"][m].get(k)) for k in interval_keys(evaluation))]
            for m in ("model", "seasonal_naive")]


def skill_rows(evaluation: dict) -> list[list[str]]:
    return [[b, *(fmt(skill[c]) for c in ("mae", "rmse", "smape", "mase"))] for b, skill in evaluation["skill"].items()]


def step_rows(evaluation: dict) -> list[list[str]]:
    return [[step, *(fmt(by[m]["mae"]) for m in evaluation["scores"])] for step, by in evaluation["per_step"].items()]


def group_rows(evaluation: dict, key: str) -> list[list[str]]:
    rows = evaluation.get(key, {})
    return [[name, *(fmt(by["model"][c]) for c in COLUMNS), fmt(by["seasonal_naive"]["mase"])]
            for name, by in rows.items()]


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows])


def _md_cell(value) -> str:
    """A cell's text, kept in its cell: a series id may hold "|" or a line break."""
    return " ".join(str(value).split("\n")).replace("|", "\\|")


def _sections(evaluation: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The tables of a report, shared by Markdown and HTML so both show the same numbers."""
    metric_names = ["MAE", "RMSE", "MAPE", "sMAPE", "MASE"]
    sections = [
        ("Scores", ["method", *metric_names], score_rows(evaluation)),
        ("Skill of the model against each baseline (1 - model / baseline)",
         ["baseline", "MAE", "RMSE", "sMAPE", "MASE"], skill_rows(evaluation)),
        ("MAE by horizon step", ["step", *evaluation["scores"]], step_rows(evaluation)),
    ]
    if interval_keys(evaluation):
        sections.insert(1, ("Intervals (coverage: share inside; MSIS and scaled pinball: scaled by the "
                            "in-sample seasonal naive MAE; CRPS approximated from the quantiles)",
                            ["method", *interval_keys(evaluation)], interval_rows(evaluation)))
    if "per_fold" in evaluation:
        sections.append(("Model by fold", ["fold", *metric_names, "seasonal naive MASE"],
                         group_rows(evaluation, "per_fold")))
    sections.append(("Model by series", ["series", *metric_names, "seasonal naive MASE"],
                     group_rows(evaluation, "per_series")))
    return sections


def markdown(title: str, report: dict, evaluation: dict | None) -> str:
    out = [f"# {title}", "", _facts_md(report)]
    if evaluation is None:
        out += ["", "No held-out evaluation (no test windows)."]
    else:
        if evaluation.get("sampled_from"):
            out += ["", f"Scored on {evaluation['windows']:,} of the {evaluation['sampled_from']:,} held-out "
                        "windows, drawn with the seed (a panel this large is scored on a sample)."]
        if evaluation.get("mape_undefined_points"):
            out += ["", f"MAPE leaves out {evaluation['mape_undefined_points']} points whose actual is 0."]
        for heading, header, rows in _sections(evaluation):
            out += ["", f"## {heading}", "", _md_table(header, rows)]
    return "\n".join(out) + "\n"


def _facts(report: dict) -> list[tuple[str, str]]:
    data, cfg = report.get("data", {}), report.get("config", {})
    windows = cfg.get("windows", {})
    return [
        ("data", f"{data.get('series')} series, {data.get('points')} points, freq {data.get('freq')}, "
                 f"sha256 {str(data.get('fingerprint_sha256'))[:12]}"),
        ("windows", f"lookback {windows.get('lookback')}, horizon {windows.get('horizon')}, "
                    f"season {cfg.get('season')}, scaler {windows.get('scaler')}"),
        ("seed", str(report.get("seed"))),
        ("time", f"{report.get('seconds', report.get('training', {}).get('seconds'))} s"),
        ("versions", ", ".join(f"{k} {v}" for k, v in report.get("versions", {}).items())),
    ]


def _facts_md(report: dict) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in _facts(report))


# --- HTML ---------------------------------------------------------------------------------

def html_page(title: str, report: dict, evaluation: dict | None, records: pd.DataFrame | None,
              panel: Panel, losses: list[tuple[str, list[float], list[float | None]]],
              future: pd.DataFrame | None = None) -> str:
    body = [f"<h1>{html.escape(title)}</h1>",
            "<ul>" + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in _facts(report)) + "</ul>"]
    if future is not None:
        body.append("<h2>The forecast</h2>")
        body.append(_img(plot_future(future, panel, evaluation), "the forecast with its intervals"))
    if evaluation is not None and records is not None:
        body.append("<h2>Forecasts against actuals</h2>")
        body.append(_img(plot_forecasts(records, panel, evaluation), "forecasts"))
        body.append("<h2>Error by horizon step</h2>")
        body.append(_img(plot_steps(evaluation), "error by horizon step"))
    if losses:
        body.append("<h2>Training and validation loss</h2>")
        body.append(_img(plot_losses(losses), "loss curves"))
    if evaluation is not None:
        for heading, header, rows in _sections(evaluation):
            body.append(f"<h2>{html.escape(heading)}</h2>" + _html_table(header, rows))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right}th{background:#f3f3f3}img{max-width:100%}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _figure().close(fig)
    return buf.getvalue()


def chosen_series(evaluation: dict) -> list[tuple[str, str]]:
    """(label, series id) for the best, median and worst series by the model's MASE."""
    per = [(by["model"]["mase"], sid) for sid, by in evaluation["per_series"].items()
           if by["model"]["mase"] is not None]
    if not per:
        return [("series", next(iter(evaluation["per_series"])))]
    per.sort()
    picks = [("best", per[0][1]), ("median", per[len(per) // 2][1]), ("worst", per[-1][1])]
    seen, out = set(), []
    for label, sid in picks:
        if sid not in seen:
            seen.add(sid)
            out.append((label, sid))
    return out


def plot_forecasts(records: pd.DataFrame, panel: Panel, evaluation: dict, max_folds: int = 6) -> bytes:
    plt = _figure()
    picks = chosen_series(evaluation)
    fig, axes = plt.subplots(len(picks), 1, figsize=(10, 3 * len(picks)), squeeze=False)
    by_id = {s.id: s for s in panel.series}
    for ax, (label, sid) in zip(axes[:, 0], picks):
        rec = records[records["series"] == sid]
        folds = sorted(rec["fold"].unique())
        if len(folds) > max_folds:  # many held-out windows: a few, evenly spread, the last included
            folds = [folds[i] for i in np.linspace(0, len(folds) - 1, max_folds).round().astype(int)]
        s = by_id[sid]
        first = rec["time"].min()
        context = max(0, int(np.searchsorted(s.time, first)) - 3 * int(rec["step"].max()))
        ax.plot(s.time[context:], s.values[context:, 0], color="#444", lw=1, label="actual")
        for i, k in enumerate(folds):
            f = rec[rec["fold"] == k]
            for j, (level, lo, hi) in enumerate(bands(rec.columns, "model_q")):
                ax.fill_between(f["time"], f[lo], f[hi], color="C0", alpha=0.15 + 0.1 * j, lw=0,
                                label=f"{level:g}%" if i == 0 else None)
            ax.plot(f["time"], f["model"], color="C0", lw=1.5, label="model" if i == 0 else None)
            ax.plot(f["time"], f["seasonal_naive"], color="C1", lw=1, ls="--",
                    label="seasonal naive" if i == 0 else None)
        mase = evaluation["per_series"][sid]["model"]["mase"]
        ax.set_title(f"{label}: {sid} (MASE {fmt(mase)})", parse_math=False)  # an id may hold "$": not TeX
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def bands(columns, prefix: str) -> list[tuple[float, str, str]]:
    """(level, lower column, upper column), widest first, from quantile columns named
    prefix + q (`model_q0.1` in records, `q0.1` in a forecast) or lo-/hi- pairs."""
    quantiles = {}
    for c in columns:
        try:
            if c.startswith(prefix):
                quantiles[round(float(c[len(prefix):]), 10)] = c
        except ValueError:  # another column ("quarter")
            continue
    out = [(level, quantiles[lo], quantiles[hi]) for level, lo, hi in interval_pairs(quantiles)]
    for c in columns:
        if c.startswith("lo-") and f"hi-{c[3:]}" in columns:
            out.append((float(c[3:]), c, f"hi-{c[3:]}"))
    return sorted(out, reverse=True)


def plot_future(future: pd.DataFrame, panel: Panel, evaluation: dict | None) -> bytes:
    """The fan chart: each chosen series' recent history, its forecast and its bands."""
    plt = _figure()
    spec = panel.spec
    ids = future[spec.id_col].astype(str) if spec.id_col else pd.Series("", index=future.index)
    by_id = {s.id: s for s in panel.series}
    picks = chosen_series(evaluation) if evaluation else [("series", panel.series[0].id)]
    picks = [(label, sid) for label, sid in picks if sid in by_id]
    fig, axes = plt.subplots(len(picks), 1, figsize=(10, 3 * len(picks)), squeeze=False)
    for ax, (label, sid) in zip(axes[:, 0], picks):
        f = future[ids == (sid if spec.id_col else "")]
        s = by_id[sid]
        context = max(0, len(s) - 3 * len(f))
        ax.plot(s.time[context:], s.values[context:, 0], color="#444", lw=1, label="history")
        for j, (level, lo, hi) in enumerate(bands(future.columns, "q")):
            ax.fill_between(f[spec.time_col], f[lo], f[hi], color="C0", alpha=0.15 + 0.1 * j, lw=0,
                            label=f"{level:g}%")
        ax.plot(f[spec.time_col], f["forecast"], color="C0", lw=1.5, label="forecast")
        ax.set_title(f"{label}: {sid}" if len(picks) > 1 else str(sid), parse_math=False)
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def plot_steps(evaluation: dict) -> bytes:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    steps = [int(s) for s in evaluation["per_step"]]
    for m in evaluation["scores"]:
        ax.plot(steps, [evaluation["per_step"][str(s)][m]["mae"] for s in steps], marker=".", label=m)
    ax.set_xlabel("horizon step")
    ax.set_ylabel("MAE")
    ax.legend(fontsize=8)
    return _png(fig)


def plot_losses(losses: list[tuple[str, list[float], list[float | None]]]) -> bytes:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for i, (label, train, val) in enumerate(losses):
        epochs = range(1, len(train) + 1)
        ax.plot(epochs, train, color=f"C{i % 10}", label=f"{label} train")
        if any(v is not None for v in val):
            ax.plot(epochs, [np.nan if v is None else v for v in val], color=f"C{i % 10}", ls="--",
                    label=f"{label} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (scaled units)")
    ax.set_yscale("log")
    ax.legend(fontsize=8, ncol=2)
    return _png(fig)
