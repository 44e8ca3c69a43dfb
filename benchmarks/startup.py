"""Cold start of `gruforecast predict`, side by side with `python -c "import torch"`.

Prints, in one run on this machine: the best of N cold runs (a new process each) of
`import torch`, of `gruforecast predict MODEL` from the stored data, and of
`gruforecast predict MODEL --data DATA --cutoffs 84`; their ratios to `import torch`,
and 84 cutoffs over one origin. Goals (issue 13): predict <= 1.3x `import torch`;
84 cutoffs < 2x one origin. The model is the demo's (co2 weekly), trained here first.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CO2 = ROOT / "sample_data" / "co2_weekly.csv"


def seconds(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    gf = [sys.executable, "-m", "gruforecast"]
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp, "co2.gruf")
        subprocess.run([*gf, "train", str(CO2), "--target", "co2", "--fill", "interpolate", "--horizon", "52",
                        "--epochs", "2", "--threads", "1", "--out", str(model)],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = str(Path(tmp, "fc.csv"))
        rows = {
            'python -c "import torch"': [sys.executable, "-c", "import torch"],
            "predict (stored data)": [*gf, "predict", str(model), "--out", out],
            "predict --data (one origin)": [*gf, "predict", str(model), "--data", str(CO2), "--out", out],
            "predict --data --cutoffs 84": [*gf, "predict", str(model), "--data", str(CO2), "--cutoffs", "84",
                                            "--step", "1", "--out", out],
        }
        for cmd in rows.values():  # warm the file cache and the compiled GRU library once
            seconds(cmd)
        # Interleaved, a round runs each command once: a shared machine's load drifts
        # over a minute, and the ratios should compare commands under the same load.
        times = dict.fromkeys(rows, float("inf"))
        for _ in range(args.runs):
            for name, cmd in rows.items():
                times[name] = min(times[name], seconds(cmd))
    torch_s = times['python -c "import torch"']
    print(f"best of {args.runs} cold runs each, interleaved, 1 torch thread, {sys.platform}\n")
    print("| command | seconds | / import torch |\n|---|---|---|")
    for name, s in times.items():
        print(f"| {name} | {s:.3f} | {s / torch_s:.2f}x |")
    ratio = times["predict --data --cutoffs 84"] / times["predict --data (one origin)"]
    print(f"\n84 cutoffs / one origin: {ratio:.2f}x")


if __name__ == "__main__":
    main()
