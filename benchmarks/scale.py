"""Scale, measured side by side in one run: memory and time against the panel's size, and
one model trained over processes with torchrun against one process.

    python benchmarks/scale.py --part torchrun             # 1 process x 1 thread, torchrun 2 x 1, 1 x 2 threads
    python benchmarks/scale.py --part memory --series 10000,100000
    python benchmarks/scale.py --part memory --series 10000,100000 --panel m4   # M4 hourly tiled
    python benchmarks/scale.py --part phases --series 10000,100000 --longest 800 --calendar auto

`--part memory`: a generated panel (`make_panel`: seasonal series of 200-2,000 points,
or to `--longest`, with noise, trends, level shifts, and a tenth of them short, 30-150
points) written as a folder of Parquet parts of 10,000 series; `gruforecast train` (2 epochs, the default windows per epoch) and `predict` for
every series run as subprocesses, their peak RSS (getrusage of the child) and seconds,
and the seconds per training epoch (every epoch draws the same 20,000 windows, so it
should not grow with the panel), printed per size with the ratios to the smallest.
`--part phases`: the same panels, `gruforecast train` in-process (one fresh process per
size), the resident memory sampled every 5 ms and charged to the phase running (loading,
making windows, each fit, forecasts at origins, the tails, predict, save, reports): where
the peak is reached and which phases grow with the panel. Linux only (/proc/self/statm).
Freed memory the allocator keeps still counts, so a phase's figure is the resident size
while it ran, not what it allocated.
`--part torchrun`: the same small panel, the same epochs and windows per epoch, trained
by 1 process of 1 thread, by `torchrun --nproc-per-node 2` of 1 thread each (with the
default `--average-every 8`, and with 1: DistributedDataParallel), and by 1 process of 2
threads: training windows per second (from metrics.json's training
seconds; the least of `--repeats` interleaved rounds, since one run of each swung from
0.98x to 1.63x on this shared machine) and the final validation loss, with the ratios to
the first; one table per `--ensembles` size (1: torchrun trains data-parallel;
2 or more: the members are spread over the ranks, `train.fit`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def make_panel(n_series: int, seed: int = 0, short_share: float = 0.1, longest: int = 2000,
               first_id: int = 0) -> pd.DataFrame:
    """Long format (unique_id, ds, y), hourly, vectorised: daily and weekly seasons of
    random strength, a trend, a level shift in a third of the series, noise; lengths
    200-`longest` points (30-150 for the short share); ids s{first_id}, s{first_id + 1}, ..."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(200, longest + 1, n_series)
    short = rng.random(n_series) < short_share
    lengths[short] = rng.integers(30, 151, short.sum())
    sid = np.repeat(np.arange(n_series), lengths)
    t = np.concatenate([np.arange(n) for n in lengths]).astype(np.float64)
    k = lambda a: a[sid]  # noqa: E731  per-series parameter -> per-row
    level = k(rng.uniform(10, 1000, n_series))
    daily, weekly = k(rng.uniform(0, 0.3, n_series)), k(rng.uniform(0, 0.15, n_series))
    trend = k(rng.normal(0, 2e-4, n_series))
    shift_at = k(rng.integers(0, 2000, n_series) * (rng.random(n_series) < 0.33))
    shift = k(rng.normal(0, 0.2, n_series))
    y = level * (1 + daily * np.sin(2 * np.pi * t / 24) + weekly * np.sin(2 * np.pi * t / 168)
                 + trend * t + shift * ((t >= shift_at) & (shift_at > 0)) + 0.05 * rng.normal(size=len(t)))
    start = pd.Timestamp("2024-01-01")
    return pd.DataFrame({"unique_id": np.char.add("s", (sid + first_id).astype(str)),
                         "ds": start + pd.to_timedelta(t, unit="h"), "y": y})


# Runs a command and prints its peak RSS (KiB) last on stderr: a fresh parent per command,
# so RUSAGE_CHILDREN holds that command's peak alone.
_MEASURE = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]).returncode; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r)")


def _child(cmd: list, env: dict | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stderr) of one command."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _MEASURE, *map(str, cmd)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:4]))} failed ({proc.returncode}): {proc.stderr[-800:]}")
    *rest, peak = proc.stderr.strip().splitlines()
    return seconds, int(peak) / 1024, "\n".join(rest)


def write_panel(folder: Path, n_series: int, longest: int, part: int = 10_000) -> int:
    """The panel as a folder of Parquet parts of `part` series (bounded memory to make);
    returns its points."""
    folder.mkdir()
    points = 0
    for k, first in enumerate(range(0, n_series, part)):
        frame = make_panel(min(part, n_series - first), seed=k, longest=longest, first_id=first)
        frame.to_parquet(folder / f"part-{k:04d}.parquet", index=False)
        points += len(frame)
    return points


M4_HOURLY = ROOT.parent / "shared" / "data" / "m4_hourly.csv"


def write_m4_tiled(folder: Path, n_series: int, part: int = 10_000) -> int:
    """M4 hourly's 414 training parts tiled to `n_series` series (copy k of series i is
    i's values times a factor of copy k, 0.5-2: the same shapes at other levels; ids
    H{i}_{k}; integer steps, as the file has), as a folder of Parquet parts; returns its
    points. The test rows are not read."""
    m4 = pd.read_csv(M4_HOURLY)
    m4 = m4[m4["split"] == "train"]
    base = [(sid, g["t"].to_numpy(), g["y"].to_numpy()) for sid, g in m4.groupby("unique_id", sort=False)]
    rng = np.random.default_rng(0)
    folder.mkdir()
    points = 0
    for k, first in enumerate(range(0, n_series, part)):
        frames = []
        for j in range(first, min(first + part, n_series)):
            sid, t, y = base[j % len(base)]
            frames.append(pd.DataFrame({"unique_id": f"{sid}_{j // len(base)}", "t": t,
                                        "y": y * rng.uniform(0.5, 2.0)}))
        frame = pd.concat(frames, ignore_index=True)
        frame.to_parquet(folder / f"part-{k:04d}.parquet", index=False)
        points += len(frame)
    return points


def _train_args(data: Path, model: Path, tmp: Path, calendar: str, m4: bool = False) -> list:
    """The train options `--part memory` and `--part phases` run each panel with."""
    return [data, "--horizon", "24", "--epochs", "2", "--level", "none", "--calendar", calendar,
            *(["--time-col", "t"] if m4 else []), "--out", model, "--report-dir", tmp]


def memory(sizes: list[int], tmp: Path, longest: int, panel: str = "generated", calendar: str = "none") -> None:
    """Peak RSS and seconds of train and predict per panel size."""
    print("| series | points | train s | seconds per epoch | train peak MiB | predict s | predict peak MiB |")
    print("|---|---|---|---|---|---|---|")
    base = None
    for n in sorted(sizes):
        data = tmp / f"panel-{n}"
        points = write_m4_tiled(data, n) if panel == "m4" else write_panel(data, n, longest)
        gf = [sys.executable, "-m", "gruforecast"]
        ts, tpeak, _ = _child([*gf, "train", *_train_args(data, tmp / f"m{n}.gruf", tmp, calendar, panel == "m4")])
        ps, ppeak, _ = _child([*gf, "predict", tmp / f"m{n}.gruf", "--out", tmp / f"f{n}.parquet"])
        training = json.loads((tmp / "metrics.json").read_text())["training"]
        epoch = training["seconds"] / len(training["train_loss"])  # the same windows per epoch at every size
        base = base or (tpeak, epoch)
        print(f"| {n:,} | {points:,} | {ts:.1f} | {epoch:.2f} ({epoch / base[1]:.2f}x) | {tpeak:.0f} "
              f"({tpeak / base[0]:.2f}x) | {ps:.1f} | {ppeak:.0f} |", flush=True)


# The phases `--part phases` charges memory to: (module, function) wrapped in the child.
PHASES = (("data", "load_panel"), ("windows", "make_windows"), ("train", "fit"),
          ("forecaster", "Forecaster.forecast_origins"), ("forecaster", "Forecaster.keep_ends"),
          ("forecaster", "Forecaster.predict"), ("artifact", "save"), ("report", "write_reports"))


def phase_peaks(args: list[str]) -> dict[str, float]:
    """Run `gruforecast train ARGS` in this process; the resident MiB at its highest while
    each phase ran (`PHASES`; `fit` split into the held-out fit and the refit), in order."""
    import functools
    import importlib
    import threading

    from gruforecast import cli

    running, peaks = ["other"], {}

    def charge() -> None:
        with open("/proc/self/statm") as f:
            mib = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        peaks[running[-1]] = max(peaks.get(running[-1], 0.0), mib)

    def sample() -> None:
        while True:
            charge()
            time.sleep(0.005)

    def charged(fn, name):
        @functools.wraps(fn)
        def run(*a, **k):
            running.append(f"{name} ({k['phase']})" if "phase" in k else name)
            charge()  # a phase shorter than the sampling period is charged too
            try:
                return fn(*a, **k)
            finally:
                charge()
                running.pop()
        return run

    for module, name in PHASES:
        owner = importlib.import_module(f"gruforecast.{module}")
        *cls, attr = name.split(".")
        owner = getattr(owner, cls[0]) if cls else owner
        setattr(owner, attr, charged(getattr(owner, attr), name))
    threading.Thread(target=sample, daemon=True).start()
    sys.argv = ["gruforecast", "train", *args]
    try:
        cli.main()
    except SystemExit as exc:
        if exc.code:
            raise
    time.sleep(0.02)
    return peaks


def phases(sizes: list[int], tmp: Path, longest: int, calendar: str) -> None:
    """`phase_peaks` of the generated panel at each size, a fresh process each, side by side."""
    table = {}
    for n in sorted(sizes):
        data = tmp / f"panel-{n}"
        write_panel(data, n, longest)
        args = _train_args(data, tmp / f"m{n}.gruf", tmp, calendar)
        proc = subprocess.run([sys.executable, __file__, "--part", "phases-child", *map(str, args)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"train of {n} series failed: {proc.stderr[-800:]}")
        table[n] = json.loads(proc.stdout.strip().splitlines()[-1])
    sizes = sorted(table)
    print("| phase | " + " | ".join(f"{n:,} series MiB" for n in sizes) + " | ratio |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for name in table[sizes[-1]]:
        row = [table[n].get(name, float("nan")) for n in sizes]
        print(f"| {name} | " + " | ".join(f"{v:.0f}" for v in row) + f" | {row[-1] / row[0]:.2f}x |")
    peak = [max(table[n].values()) for n in sizes]
    print("| **peak** | " + " | ".join(f"{v:.0f}" for v in peak) + f" | {peak[-1] / peak[0]:.2f}x |", flush=True)


def torchrun(tmp: Path, series: int, epochs: int, batch: int, ensemble: int, repeats: int) -> None:
    data = tmp / "small.parquet"
    if not data.exists():
        make_panel(series, short_share=0.0).to_parquet(data, index=False)
    common = ["train", data, "--horizon", "24", "--epochs", str(epochs), "--patience", str(epochs),
              "--windows-per-epoch", "20000", "--level", "none", "--ensemble", str(ensemble), "--transform", "none",
              "--no-full-refit", "--calendar", "none", "--batch-size", str(batch)]
    runs = {
        "1 process x 1 thread": ([sys.executable, "-m", "gruforecast"], ["--threads", "1"]),
        "torchrun 2 processes x 1 thread": ([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                                             "-m", "gruforecast"], ["--threads", "1"]),
        "the same, --average-every 1 (DDP)": ([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                                               "-m", "gruforecast"], ["--threads", "1", "--average-every", "1"]),
        "1 process x 2 threads": ([sys.executable, "-m", "gruforecast"], ["--threads", "2"]),
    }
    how = ("data-parallel (the weights averaged every 8 steps)" if ensemble < 2
           else f"{ensemble} members spread over the ranks")
    print(f"\n{series} series, {epochs} epochs of at most 20,000 windows, batch {batch} per process, seed 0, "
          f"--ensemble {ensemble}: torchrun trains {how}; the least training seconds of {repeats} rounds "
          "(each round runs the three once: the ratios compare them under the same load)")
    print("| run | training s | windows / s | ratio | final val loss | ratio |\n|---|---|---|---|---|---|")
    best: dict[str, tuple[float, int, float]] = {}
    for r in range(repeats):
        for name, (launcher, threads) in runs.items():
            report = tmp / f"{re.sub(r'[^a-z0-9]+', '_', name)}-{ensemble}-{r}"
            report.mkdir()
            _child([*launcher, *common, *threads, "--out", report / "m.gruf", "--report-dir", report],
                   env={"OMP_NUM_THREADS": "1"})
            m = json.loads((report / "metrics.json").read_text())
            seconds = m["training"]["seconds"]
            windows = min(m["data"]["windows"]["train"], 20000) * len(m["training"]["train_loss"])
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, windows, m["training"]["val_loss"][-1])  # the loss is the seed's: alike each round
    base = None
    for name, (seconds, windows, val) in best.items():
        base = base or (windows / seconds, val)
        print(f"| {name} | {seconds:.1f} | {windows / seconds:.0f} | {windows / seconds / base[0]:.2f} | "
              f"{val:.4f} | {val / base[1]:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("memory", "phases", "torchrun"), required=True)
    parser.add_argument("--series", default="1000,10000", help="--part memory: panel sizes")
    parser.add_argument("--longest", type=int, default=2000, help="--part memory: the longest series (800: ~500 on average)")
    parser.add_argument("--panel", choices=("generated", "m4"), default="generated",
                        help="--part memory: the generator's panel, or M4 hourly's series tiled")
    parser.add_argument("--calendar", default="none", help="--part memory: train's --calendar (auto, the "
                        "default of train, adds 4 float64 columns a point to a generated hourly panel)")
    parser.add_argument("--torchrun-series", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="--part torchrun: windows per batch per process")
    parser.add_argument("--ensembles", default="1,4,5", help="--part torchrun: ensemble sizes, a table each (1: "
                        "data-parallel; at least 2: members over the ranks)")
    parser.add_argument("--repeats", type=int, default=3, help="--part torchrun: rounds, the best of each run kept")
    if sys.argv[1:3] == ["--part", "phases-child"]:  # one size of `--part phases`, in its own process
        print(json.dumps(phase_peaks(sys.argv[3:])))
        return
    args = parser.parse_args()
    print(f"cores {os.cpu_count()}; torch threads as printed per run", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.part == "phases":
            phases([int(s) for s in args.series.split(",")], Path(tmp), args.longest, args.calendar)
        elif args.part == "memory":
            memory([int(s) for s in args.series.split(",")], Path(tmp), args.longest, args.panel, args.calendar)
        else:
            for k in map(int, args.ensembles.split(",")):
                torchrun(Path(tmp), args.torchrun_series, args.epochs, args.batch_size, k, args.repeats)


if __name__ == "__main__":
    main()
