"""torchrun: one model trained over two processes on the CPU (gloo); rank 0 alone writes;
the model loads and forecasts; a failing run fails whole, with our one line."""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from gruforecast import artifact


def _data(path):
    t = np.arange(400)
    frame = pd.concat([pd.DataFrame({"unique_id": f"s{k}", "ds": pd.date_range("2024-01-01", periods=400, freq="h"),
                                     "y": 10 + k + np.sin(2 * np.pi * t / 24) + 0.01 * t}) for k in range(6)])
    frame.to_csv(path, index=False)


# these tests are about processes, not the defaults' candidate choices (a fit each)
NOT_CHOSEN = ("--calendar", "none", "--transform", "none")


def torchrun(port: int) -> tuple[str, ...]:
    """The launcher before `python -m gruforecast ...` (--no-python: run that command)."""
    return (sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port),
            "--no-python")


def test_two_processes_train_one_model_and_rank_0_alone_writes(tmp_path):
    _data(tmp_path / "d.csv")
    proc = run_cli("train", tmp_path / "d.csv", "--horizon", "12", "--epochs", "2", "--hidden-size", "8",
                   *NOT_CHOSEN, "--out", tmp_path / "m.gruf", prefix=torchrun(29533), timeout=300)
    assert proc.returncode == 0, proc.stderr[-20000:]
    assert proc.stdout.count("model:") == 1 and proc.stdout.count("forecast:") == 1  # one writer
    assert proc.stderr.count("series, 2400 points") == 1  # one log, rank 0's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "m-forecast.csv", "m.gruf", "metrics.json",
                                                         "report.html", "report.md"]
    assert json.loads((tmp_path / "metrics.json").read_text())["training"]["processes"].startswith("2 processes, ")
    art = artifact.load(tmp_path / "m.gruf")
    fc = art.predict().frame
    assert len(fc) == 6 * 12 and np.isfinite(fc.forecast).all()
    written = pd.read_csv(tmp_path / "m-forecast.csv")
    np.testing.assert_allclose(written.forecast, fc.forecast)


def test_an_ensemble_over_two_processes_is_the_one_process_ensemble(tmp_path, monkeypatch, capsys):
    # 4 members, 2 on each rank, no gradient exchanged: the same training as in one process
    # (the same windows in the same order for every member), so the same model
    from conftest import run_main

    _data(tmp_path / "d.csv")
    args = ("train", tmp_path / "d.csv", "--horizon", "12", "--epochs", "3", "--hidden-size", "8",
            "--level", "none", "--threads", "1", *NOT_CHOSEN)
    proc = run_cli(*args, "--ensemble", "4", "--out", tmp_path / "two.gruf", prefix=torchrun(29535), timeout=300)
    assert proc.returncode == 0, proc.stderr[-20000:]
    code, _, err = run_main(monkeypatch, capsys, *args, "--ensemble", "4", "--out", tmp_path / "one.gruf")
    assert code == 0, err
    assert json.loads((tmp_path / "metrics.json").read_text())["training"]["processes"] is None  # one process
    two, one = artifact.load(tmp_path / "two.gruf"), artifact.load(tmp_path / "one.gruf")
    assert two.model_cfg.ensemble == one.model_cfg.ensemble == 4
    assert "over 2 processes, 4 members spread over them" in proc.stdout
    np.testing.assert_allclose(two.predict().frame.forecast, one.predict().frame.forecast, rtol=1e-5, atol=1e-6)
    # a single model trains data-parallel instead: the weights averaged every few steps, or
    # with --average-every 1 the gradients at every step (DistributedDataParallel)
    for port, every in ((29536, "8"), (29537, "1")):
        out = tmp_path / f"every-{every}.gruf"
        proc = run_cli(*args, "--ensemble", "1", "--average-every", every, "--out", out, prefix=torchrun(port),
                       timeout=300)
        assert proc.returncode == 0, proc.stderr[-20000:]
        how = "the gradients averaged at every step" if every == "1" else "the weights averaged every 8 steps"
        assert f"over 2 processes, data-parallel: learning rate 2 x 0.001, {how}" in proc.stdout
        model = artifact.load(out)
        assert model.train_cfg.average_every == int(every)
        assert np.isfinite(model.predict().frame.forecast).all()


def test_two_torchrun_agents_meet_at_one_rendezvous_and_one_of_them_writes(tmp_path):
    # `--nnodes 2` as on two machines (docs/scale.md), here two agents on one host: the
    # c10d rendezvous makes one of them rank 0, whichever started first, and it alone writes
    import subprocess

    _data(tmp_path / "d.csv")
    agents = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        launcher = (sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
                    "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:29538", "--rdzv-id", "job1",
                    "-m", "gruforecast")
        cmd = [*launcher, "train", str(tmp_path / "d.csv"), "--horizon", "12", "--epochs", "2", "--hidden-size",
               "4", "--threads", "1", *NOT_CHOSEN, "--out", str(tmp_path / name / "m.gruf")]
        agents.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [agent.communicate(timeout=300) for agent in agents]
    assert [agent.returncode for agent in agents] == [0, 0], [err[-1500:] for _, err in results]
    written = [sorted(p.name for p in (tmp_path / name).iterdir()) for name in ("a", "b")]
    assert sorted(written) == [[], ["m-forecast.csv", "m.gruf", "metrics.json", "report.html", "report.md"]]
    assert "2 processes, " in "".join(out for out, _ in results)


def test_a_failing_run_fails_whole_with_our_line(tmp_path):
    _data(tmp_path / "d.csv")
    proc = run_cli("train", tmp_path / "d.csv", "--target", "nope", "--out", tmp_path / "m.gruf",
                   prefix=torchrun(29534), timeout=300)
    assert proc.returncode != 0
    assert "gruforecast: error: column 'nope' (--target) is not in the file" in proc.stderr
    assert not (tmp_path / "m.gruf").exists()


def test_a_folder_of_parquet_parts_is_one_table(tmp_path):
    from gruforecast.data import DataSpec, load_panel
    from gruforecast.errors import InputError

    _data(tmp_path / "d.csv")
    frame = pd.read_csv(tmp_path / "d.csv")
    (tmp_path / "parts" / "year=2024").mkdir(parents=True)
    for k, (_, part) in enumerate(frame.groupby("unique_id")):
        part.to_parquet(tmp_path / "parts" / "year=2024" / f"part-{k}.parquet", index=False)
    panel = load_panel(tmp_path / "parts", DataSpec())
    whole = load_panel(tmp_path / "d.csv", DataSpec())
    assert [s.id for s in panel.series] == [s.id for s in whole.series]
    np.testing.assert_array_equal(np.concatenate([s.values for s in panel.series]),
                                  np.concatenate([s.values for s in whole.series]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="a folder without .parquet files"):
        load_panel(tmp_path / "empty", DataSpec())


def test_a_large_panel_is_scored_on_a_seeded_sample_and_the_report_says_so(tmp_path, monkeypatch):
    from conftest import train_run

    from gruforecast import forecaster
    from gruforecast.data import DataSpec, load_panel
    from gruforecast.report import markdown

    _data(tmp_path / "d.csv")
    panel = load_panel(tmp_path / "d.csv", DataSpec())
    monkeypatch.setattr(forecaster, "SCORED_WINDOWS", 50)
    runs = [train_run(panel, horizon=12, lookback=24, epochs=1, hidden_size=4, level=(), full_refit=False,
                      second_season=0, transform="none") for _ in range(2)]
    test = runs[0].report["test"]
    assert test["windows"] == 50 and test["sampled_from"] > 50
    assert runs[0].records.equals(runs[1].records)  # the same sample from the same seed
    assert "Scored on 50 of the" in markdown("t", runs[0].report, test)
    assert "test_windows" in runs[0].report["choices"]


def test_parquet_parts_of_two_schemas_are_one_line(tmp_path):
    from gruforecast.data import DataSpec, load_panel
    from gruforecast.errors import InputError

    (tmp_path / "parts").mkdir()
    pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=30, freq="h"), "y": np.arange(30.0)}).to_parquet(
        tmp_path / "parts" / "a.parquet", index=False)
    pd.DataFrame({"ds": ["x"] * 3, "y": ["a", "b", "c"]}).to_parquet(tmp_path / "parts" / "b.parquet", index=False)
    with pytest.raises(InputError, match="do not read as one table .*; give them one schema"):
        load_panel(tmp_path / "parts", DataSpec())


def test_a_panel_too_large_to_hold_is_mapped_from_a_file_with_the_same_forecast(tmp_path, monkeypatch, capsys):
    from conftest import run_main

    from gruforecast import spill
    from gruforecast.data import DataSpec, load_panel

    _data(tmp_path / "d.csv")
    (tmp_path / "parts").mkdir()
    for k, (_, part) in enumerate(pd.read_csv(tmp_path / "d.csv").groupby("unique_id")):
        part.to_parquet(tmp_path / "parts" / f"part-{k}.parquet", index=False)
    options = ("--horizon", "12", "--lookback", "24", "--epochs", "2", "--hidden-size", "4", *NOT_CHOSEN)
    runs = {}
    for name, limit in (("held", "off"), ("mapped", "0")):
        monkeypatch.setenv(spill.ENV, limit)
        panel = load_panel(tmp_path / "parts", DataSpec())
        assert all(spill.is_mapped(s.values) for s in panel.series) == (name == "mapped")
        out = tmp_path / name
        out.mkdir()
        code, _, err = run_main(monkeypatch, capsys, "train", tmp_path / "parts", *options,
                                "--out", out / "m.gruf", "--forecast-out", out / "f.csv", "--report-dir", out)
        assert code == 0, err
        runs[name] = pd.read_csv(out / "f.csv")
        assert ("held in a temporary file" in err) == (name == "mapped")
    pd.testing.assert_frame_equal(runs["held"], runs["mapped"])

    def full(fd, offset, size):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spill.os, "posix_fallocate", full)
    code, _, err = run_main(monkeypatch, capsys, "train", tmp_path / "parts", *options, "--out", tmp_path / "m.gruf")
    assert code == 1 and err.strip().splitlines()[-1].startswith("gruforecast: error: no space left in ")
    assert "set TMPDIR to a disk folder with room" in err and not (tmp_path / "m.gruf").exists()
    monkeypatch.setattr(spill.tempfile, "tempdir", str(tmp_path / "missing"))
    code, _, err = run_main(monkeypatch, capsys, "train", tmp_path / "parts", *options, "--out", tmp_path / "m.gruf")
    assert code == 1 and err.strip().splitlines()[-1] == (
        f"gruforecast: error: cannot make a temporary file in '{tmp_path / 'missing'}' (No such file or directory) "
        "for a panel too large to hold in memory; set TMPDIR to a writable disk folder")
    assert not (tmp_path / "m.gruf").exists()
    monkeypatch.setenv(spill.ENV, "lots")
    code, _, err = run_main(monkeypatch, capsys, "train", tmp_path / "parts", *options, "--out", tmp_path / "m.gruf")
    assert (code, err.strip().splitlines()[-1]) == (
        2, "gruforecast: error: GRUFORECAST_SPILL_MIB='lots' is not a size in MiB; give a number such as 64, or off")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_the_pages_of_a_mapped_array_do_not_stay_resident():
    from gruforecast import spill

    def resident_file_mib() -> float:
        status = Path("/proc/self/status").read_text()
        return sum(int(line.split()[1]) for line in status.splitlines()
                   if line.startswith(("RssFile:", "RssShmem:"))) / 1024

    before = resident_file_mib()
    array = spill.mapped((16 << 20,), np.float64)  # 128 MiB
    array[:] = 1.0
    time.sleep(10 * spill.DROP_EVERY)
    assert resident_file_mib() - before < 32  # its pages were dropped: 128 MiB if not
    assert array.sum() == 16 << 20  # and read back from the file


def test_a_temporary_folder_on_a_tmpfs_is_told_apart(monkeypatch, tmp_path):
    import io

    from gruforecast import spill

    mounts = f"/dev/vda / ext4 rw 0 0\ntmpfs {tmp_path} tmpfs rw 0 0\n"
    monkeypatch.setattr(spill, "open", lambda path: io.StringIO(mounts), raising=False)
    assert spill.in_memory_folder(str(tmp_path / "sub"))
    assert not spill.in_memory_folder(str(tmp_path) + "-sibling") and not spill.in_memory_folder("/srv")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_drops_its_own_pages():
    # only the forking thread lives in a child: its first mapping must start a dropper there
    from gruforecast import spill

    parent = spill.mapped((1 << 20,), np.float64)
    parent[:] = 2.0
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        child = spill.mapped((1 << 20,), np.float64)
        child[:] = 3.0
        time.sleep(5 * spill.DROP_EVERY)
        alive = spill._dropper is not None and spill._dropper.is_alive()
        os._exit(0 if alive and child.sum() == 3 << 20 and parent.sum() == 2 << 20 else 1)
    assert os.waitpid(pid, 0)[1] == 0
