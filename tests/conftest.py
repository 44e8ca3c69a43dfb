import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# One torch thread per test process: `make test` runs two pytest workers on two cores, and
# oversubscribed torch threads were measured to slow a GRU step 100x.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600,
            prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run the real `gruforecast` command in a subprocess, as cron would (no TTY)."""
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run([*prefix, sys.executable, "-m", "gruforecast", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def co2_model(tmp_path_factory):
    """The README's demo run, once per session: default options, 52-week horizon, and the
    transform given as what the defaults choose there (none): the same model, two fits
    fewer (without it the calendar's move to none remakes the transform's choice)."""
    out = tmp_path_factory.mktemp("co2")
    proc = run_cli("train", SAMPLE / "co2_weekly.csv", "--target", "co2", "--fill", "interpolate",
                   "--horizon", "52", "--seed", "0", "--transform", "none", "--out", out / "co2.gruf")
    assert proc.returncode == 0, proc.stderr
    return out, proc


def run_main(monkeypatch, capsys, *args):
    """`gruforecast ARGS` in this process, through `main` (exit codes and error lines): the
    real CLI without a subprocess's torch import."""
    from gruforecast import cli

    monkeypatch.setattr(sys, "argv", ["gruforecast", *map(str, args)])
    monkeypatch.setattr(cli, "DEBUG", [False])
    with pytest.raises(SystemExit) as exc:
        cli.main()
        raise SystemExit(0)
    captured = capsys.readouterr()
    return exc.value.code or 0, captured.out, captured.err


def train_run(panel, **options):
    """`forecaster.train` with flat keyword options split among the configs, as the CLI
    and batch keys do (`season` may be given; everything else left to the data)."""
    from dataclasses import fields

    from gruforecast.config import ModelConfig, TrainConfig, build_configs
    from gruforecast.forecaster import train
    from gruforecast.windows import WindowConfig, resolve

    classes = (WindowConfig, ModelConfig, TrainConfig)
    unknown = set(options) - {f.name for c in classes for f in fields(c)}
    assert not unknown, unknown
    wcfg, mcfg, tcfg = build_configs(options, *classes)
    panel, wcfg, mcfg = resolve(panel, wcfg, mcfg, tcfg=tcfg)
    return train(panel, wcfg, mcfg, tcfg)
