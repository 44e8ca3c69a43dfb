"""Per-job overhead of predict-only batches: 100 jobs in one `gruforecast batch` process.

    python benchmarks/batch_speed.py [--jobs 100]

Trains one small model, writes N jobs that each forecast from their own copy of the data
with it (retrain = "never"), runs `gruforecast batch` once as a subprocess, and prints the
wall time, the time per job from the summary, and the time to read one data file, so the
overhead beyond reading the data can be read off. A second run with a single job gives
the process start-up (Python, torch import) that the batch pays once.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
JOB = """
[[jobs]]
name = "job{i}"
data = "data/macro{i}.csv"
target = "value"
id_col = "series"
model = "macro.gruf"
output = "out/{{job}}.csv"
retrain = "never"
"""


def run(cfg: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gruforecast", "batch", str(cfg), "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gruforecast-batch-"))
    try:
        data = ROOT / "sample_data" / "us_macro_quarterly.csv"
        subprocess.run([sys.executable, "-m", "gruforecast", "train", str(data), "--target", "value",
                        "--id-col", "series", "--horizon", "4", "--epochs", "2", "--out",
                        str(work / "macro.gruf")], check=True, capture_output=True)
        (work / "data").mkdir()
        for i in range(args.jobs):
            shutil.copy(data, work / "data" / f"macro{i}.csv")
        (work / "many.toml").write_text("".join(JOB.format(i=i) for i in range(args.jobs)))
        (work / "one.toml").write_text(JOB.format(i=0))
        one = run(work / "one.toml")
        many = run(work / "many.toml")
        jobs = json.loads((work / "batch-summary.json").read_text())["jobs"]
        per_job = sum(j["seconds"] for j in jobs) / len(jobs)
        start, reads = time.perf_counter(), min(20, args.jobs)
        for i in range(reads):
            pd.read_csv(work / "data" / f"macro{i}.csv")
        read = (time.perf_counter() - start) / reads
        print(f"1 job: {one:.2f} s wall (process start-up included)")
        print(f"{args.jobs} jobs: {many:.2f} s wall, {(many - one) / (args.jobs - 1) * 1e3:.1f} ms per "
              f"extra job; per job inside the run {per_job * 1e3:.1f} ms, of which reading the "
              f"CSV {read * 1e3:.1f} ms: overhead {(per_job - read) * 1e3:.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
