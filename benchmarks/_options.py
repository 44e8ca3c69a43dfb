"""The model options the accuracy benchmarks (m4_hourly.py, etth1.py) share.

Each option is named as on the `gruforecast train` command line (`--hidden-size`,
`--window-norm`, ...), so one parsed set builds the library's configs and the CLI's flags
alike, and the two paths cannot drift apart.
"""

from __future__ import annotations

import argparse

from gruforecast.config import ModelConfig, TrainConfig, build_configs

TRAIN_FIELDS = set(ModelConfig.__dataclass_fields__) | set(TrainConfig.__dataclass_fields__)


def add_model_options(parser: argparse.ArgumentParser, **defaults) -> None:
    """`--name` for each default (typed like it), plus `--threads`."""
    for name, default in defaults.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):  # --linear-path / --no-linear-path, as on the CLI
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(flag, type=type(default), default=default)
    parser.add_argument("--threads", type=int, default=2)


def model_options(args: argparse.Namespace) -> dict:
    """The parsed model options: everything `add_model_options` added."""
    return {k: v for k, v in vars(args).items() if k in TRAIN_FIELDS | {"lookback", "transform", "threads"}}


def configs(args: argparse.Namespace, **fixed) -> tuple[ModelConfig, TrainConfig]:
    """The model and train configs of the parsed options; `fixed` holds what a benchmark
    does not expose."""
    return tuple(build_configs({**model_options(args), **fixed}, ModelConfig, TrainConfig))


def describe(args: argparse.Namespace) -> str:
    """'lookback 168, hidden size 64, ...': the options for a results file."""
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in model_options(args).items())


def environment() -> str:
    """'torch 2.13.0+cpu, numpy 2.1.3, Python 3.11.9, <CPU model>': what else fixes the
    figures besides the seed and the thread count (an M4 hourly run of 2026-12-02 did not
    reproduce four days later with its own code, and its environment was not recorded)."""
    import platform

    import numpy as np
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"torch {torch.__version__}, numpy {np.__version__}, Python {platform.python_version()}, {cpu}"


def cli_flags(args: argparse.Namespace) -> list[str]:
    """The same options as `gruforecast train` flags."""
    flags = []
    for k, v in model_options(args).items():
        flag = "--" + k.replace("_", "-")
        flags += [flag if v else "--no-" + flag[2:]] if isinstance(v, bool) else [flag, str(v)]
    return flags
