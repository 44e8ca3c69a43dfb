"""FusedGRU against torch.nn.GRU, side by side in one process.

    python benchmarks/gru.py [--threads 1,2] [--repeats 7] [--quick] [--device cpu|cuda]

For every shape of the grid (input I in {1, 8}, hidden H in {32, 64, 128, 256}, length T
in {48, 168}, batch B in {64, 256}, float32) and every thread count: forward alone (no
grad) and forward+backward (parameter gradients from random upstream gradients), the
two implementations timed alternately after warm-up, median of the repeats. Prints a
Markdown table with both times, the speed-up nn.GRU / FusedGRU, the geometric means, and
the achieved GFLOP/s of forward+backward against a GEMM ceiling measured here: the
throughput of the step's own recurrent product, (B, H) @ (H, 3H), run back to back.
Writes the table to benchmarks/results/gru-<device>.md.
"""

from __future__ import annotations

import argparse
import itertools
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gruforecast.gru import FusedGRU  # noqa: E402

GRID = dict(I=(1, 8), H=(32, 64, 128, 256), T=(48, 168), B=(64, 256))


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _clock(fn, device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _pair_times(fn_a, fn_b, repeats: int, device: str) -> tuple[float, float]:
    """Median seconds of fn_a and fn_b, alternating which goes first."""
    for _ in range(2):  # warm-up
        fn_a(), fn_b()
    ta, tb = [], []
    for k in range(repeats):
        if k % 2:
            tb.append(_clock(fn_b, device)), ta.append(_clock(fn_a, device))
        else:
            ta.append(_clock(fn_a, device)), tb.append(_clock(fn_b, device))
    return statistics.median(ta), statistics.median(tb)


def gemm_ceiling(B: int, H: int, device: str, repeats: int = 5) -> float:
    """GFLOP/s of the (B, H) @ (H, 3H) product run back to back (200 times)."""
    a, w = torch.randn(B, H, device=device), torch.randn(H, 3 * H, device=device)
    out = torch.empty(B, 3 * H, device=device)

    def run():
        for _ in range(200):
            torch.mm(a, w, out=out)

    run()
    best = min(_clock(run, device) for _ in range(repeats))
    return 200 * 2 * B * H * 3 * H / best / 1e9


def flops_fwd_bwd(I: int, H: int, T: int, B: int) -> float:
    """GEMM flops of forward+backward: input and recurrent projections forward; the
    per-step hidden-gradient product and the dW_hh, dW_ih products backward."""
    proj_in, proj_h = 2 * T * B * I * 3 * H, 2 * T * B * H * 3 * H
    return 2 * proj_in + 3 * proj_h


def bench_shape(I, H, T, B, repeats, device):
    torch.manual_seed(0)
    ref = torch.nn.GRU(I, H, batch_first=True).to(device)
    ours = FusedGRU(I, H).to(device)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, T, I, device=device)
    g_out, g_h = torch.randn(B, T, H, device=device), torch.randn(1, B, H, device=device)

    def fwd(model):
        def run():
            with torch.no_grad():
                model(x)
        return run

    def fwd_bwd(model):
        def run():
            out, h = model(x)
            torch.autograd.backward([out, h], [g_out, g_h])
            model.zero_grad(set_to_none=True)
        return run

    f_ours, f_ref = _pair_times(fwd(ours), fwd(ref), repeats, device)
    b_ours, b_ref = _pair_times(fwd_bwd(ours), fwd_bwd(ref), repeats, device)
    return f_ours, f_ref, b_ours, b_ref


def run_grid(threads: int, repeats: int, device: str, quick: bool) -> tuple[list[str], dict]:
    torch.set_num_threads(threads)
    grid = dict(I=(8,), H=(32, 256), T=(48,), B=(64, 256)) if quick else GRID
    rows, fwd_speedups, bwd_speedups, ceilings = [], [], [], {}
    for I, H, T, B in itertools.product(*grid.values()):
        f_o, f_r, b_o, b_r = bench_shape(I, H, T, B, repeats, device)
        if (B, H) not in ceilings:
            ceilings[B, H] = gemm_ceiling(B, H, device)
        gflops = flops_fwd_bwd(I, H, T, B) / b_o / 1e9
        gflops_ref = flops_fwd_bwd(I, H, T, B) / b_r / 1e9
        fwd_speedups.append(f_r / f_o)
        bwd_speedups.append(b_r / b_o)
        rows.append(
            f"| {I} | {H} | {T} | {B} | {f_r * 1e3:.2f} | {f_o * 1e3:.2f} | {f_r / f_o:.2f} | "
            f"{b_r * 1e3:.2f} | {b_o * 1e3:.2f} | {b_r / b_o:.2f} | {gflops:.1f} | "
            f"{100 * gflops / ceilings[B, H]:.0f}% | {100 * gflops_ref / ceilings[B, H]:.0f}% |"
        )
        print(rows[-1], flush=True)
    geo = lambda v: math.exp(sum(map(math.log, v)) / len(v))  # noqa: E731
    summary = {
        "fwd_geomean": geo(fwd_speedups), "fwd_min": min(fwd_speedups),
        "fb_geomean": geo(bwd_speedups), "fb_min": min(bwd_speedups),
    }
    return rows, summary


HEADER = ("| I | H | T | B | nn.GRU fwd ms | ours fwd ms | fwd speed-up | nn.GRU fwd+bwd ms | "
          "ours fwd+bwd ms | fwd+bwd speed-up | ours GFLOP/s | ours % of GEMM ceiling | "
          "nn.GRU % of GEMM ceiling |\n|" + "---|" * 13)


NOTE = ("Times are medians of the repeats, the two implementations alternating, after "
        "warm-up; forward runs under no_grad, forward+backward computes every parameter "
        "gradient from random upstream gradients of the output and the final state. GFLOP/s "
        "counts the GEMM flops of forward+backward; the GEMM ceiling is the throughput of the "
        "step's own recurrent product, (B, H) @ (H, 3H), run back to back at the same thread "
        "count.")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads set, torch {torch.__version__}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="4 shapes, for a smoke run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    sections = []
    for threads in (int(t) for t in args.threads.split(",")):
        print(f"\n## {args.device}, {threads} thread(s)\n\n{HEADER}", flush=True)
        rows, s = run_grid(threads, args.repeats, args.device, args.quick)
        line = (f"geometric mean speed-up: forward {s['fwd_geomean']:.2f}x (min {s['fwd_min']:.2f}x), "
                f"forward+backward {s['fb_geomean']:.2f}x (min {s['fb_min']:.2f}x)")
        print("\n" + line, flush=True)
        sections.append(f"## {args.device}, torch threads = {threads}\n\nMachine: {machine()}\n\n"
                        + HEADER + "\n" + "\n".join(rows) + f"\n\n{line}\n")
    out = args.out or Path(__file__).parent / "results" / f"gru-{args.device}.md"
    if not args.quick:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f"# FusedGRU vs torch.nn.GRU ({time.strftime('%Y-%m-%d')})\n\n"
                       f"Command: `python benchmarks/gru.py --threads {args.threads} --repeats "
                       f"{args.repeats} --device {args.device}`\n\n{NOTE}\n\n" + "\n".join(sections))
        print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
