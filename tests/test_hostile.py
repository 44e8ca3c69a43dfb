"""Hostile paths and careless mistakes (issue 15), in this process through `cli.main`:
each case exits 2 with one line naming the problem and the fix, and leaves every file in
its folder as it was (nothing replaced, nothing written)."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from conftest import run_main, train_run

from gruforecast import artifact
from gruforecast.data import DataSpec, build_panel, load_panel


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A small integer-step CSV `S` and a model `M` trained on it."""
    path = tmp_path_factory.mktemp("hostile")
    t = np.arange(80)
    frame = pd.DataFrame({"t": t, "y": 5 + np.sin(t / 3.0)})
    frame.to_csv(path / "S.csv", index=False)
    run = train_run(build_panel(frame, DataSpec(target="y", time_col="t")), horizon=4, lookback=8,
                    hidden_size=4, epochs=1)
    artifact.save(run.forecaster, path / "M.gruf")
    artifact.save(run.forecaster, path / "model.csv")  # a model file with a data file's name
    (path / "notes.txt").write_text("a file, not a folder")
    os.mkfifo(path / "pipe.csv")
    return path


def _snapshot(path):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None) for p in path.iterdir()}


CASES = [  # (id, args with {d} for the folder, message)
    ("train forecast-out is the data", "train {d}/S.csv --time-col t --horizon 4 --epochs 1 --out {d}/new.gruf "
     "--forecast-out {d}/S.csv", "output '{d}/S.csv' is also '{d}/S.csv', an input or output of this command"),
    ("train model is the forecast", "train {d}/S.csv --time-col t --horizon 4 --epochs 1 --out {d}/x.gruf "
     "--forecast-out {d}/./x.gruf", "is also"),
    ("train report-dir is a file", "train {d}/S.csv --time-col t --horizon 4 --epochs 1 --out {d}/new.gruf "
     "--report-dir {d}/notes.txt", "--report-dir '{d}/notes.txt' is a file, not a folder; give a folder"),
    ("predict out is the data", "predict {d}/M.gruf --data {d}/S.csv --out {d}/S.csv",
     "output '{d}/S.csv' is also '{d}/S.csv'"),
    ("predict out is the model", "predict {d}/model.csv --out {d}/model.csv",
     "output '{d}/model.csv' is also '{d}/model.csv'"),
    ("predict out is the data by another path", "predict {d}/M.gruf --data {d}/S.csv --out {d}/../{n}/S.csv",
     "is also '{d}/S.csv'"),
    ("a FIFO as data (check)", "check {d}/pipe.csv --time-col t", "is not a regular file (a pipe or a device?)"),
    ("a FIFO as data (train)", "train {d}/pipe.csv --time-col t --out {d}/new.gruf",
     "is not a regular file (a pipe or a device?); pass a .csv or .parquet file"),
    ("backtest report-dir is a file", "backtest {d}/S.csv --time-col t --horizon 4 --epochs 1 "
     "--report-dir {d}/notes.txt", "is a file, not a folder"),
]


@pytest.mark.parametrize("case,args,message", CASES, ids=[c[0] for c in CASES])
def test_hostile_paths(folder, monkeypatch, capsys, case, args, message):
    fill = {"d": str(folder), "n": folder.name}
    before = _snapshot(folder)
    code, out, err = run_main(monkeypatch, capsys, *args.format(**fill).split())
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("gruforecast: error: ") and message.format(**fill) in err, err
    assert all(line.startswith("gruforecast: ") for line in lines), err  # one line each, no dump
    assert "Traceback" not in err
    assert _snapshot(folder) == before  # nothing replaced, nothing new


def test_ids_that_read_as_tex_are_drawn_as_written(tmp_path, monkeypatch, capsys):
    """A series id with dollar signs is a title in the report's plots: matplotlib read it
    as TeX and the whole train failed with exit 1 ("Expected \\frac{num}{den}")."""
    t = np.arange(60)
    pd.concat([pd.DataFrame({"id": sid, "t": t, "y": np.sin(t / 2.0) + k}) for k, sid in
               enumerate(["cost $5 and $", r"$\frac{a}{$", "north|south"])]).to_csv(tmp_path / "d.csv", index=False)
    code, _, err = run_main(monkeypatch, capsys, "train", tmp_path / "d.csv", "--id-col", "id", "--time-col", "t",
                            "--horizon", "4", "--epochs", "1", "--ensemble", "1", "--transform", "none",
                            "--out", tmp_path / "m.gruf", "--report-dir", tmp_path / "r")
    assert code == 0, err
    assert "cost $5 and $" in (tmp_path / "r" / "report.html").read_text()
    # a "|" in an id split its row of report.md's table into one column too many
    row = next(line for line in (tmp_path / "r" / "report.md").read_text().splitlines() if "north" in line)
    assert row.startswith("| north\\|south | ") and row.replace("\\|", "").count("|") == 8, row


def test_ids_are_text(tmp_path):
    """Leading zeros are kept, and 007 and 7 are two series, in CSV and back out."""
    (tmp_path / "d.csv").write_text("id,t,y\n" + "".join(f"{i},{t},{t}\n" for i in ("007", "7", "02134")
                                                         for t in range(30)))
    panel = load_panel(tmp_path / "d.csv", DataSpec(id_col="id", time_col="t", target="y"))
    assert sorted(s.id for s in panel.series) == ["007", "02134", "7"]


@pytest.mark.parametrize("dates,dayfirst,first,message", [
    (["01/02/2024", "02/02/2024", "03/02/2024"], None, None, "read as day/month or month/day; pass --dayfirst or --no-dayfirst"),
    (["01/02/2024", "02/02/2024", "03/02/2024"], True, "2024-02-01", None),
    (["01/02/2024", "01/03/2024", "01/04/2024"], False, "2024-01-02", None),
    (["30/01/2024", "31/01/2024", "01/02/2024"], None, "2024-01-30", None),  # 30 can only be a day
    (["01/30/2024", "01/31/2024", "02/01/2024"], None, "2024-01-30", None),  # 30 can only be a day
    # year-first dates are never day-first: with --dayfirst pandas read 2024-02-01 as January 2
    (["2024-01-01", "2024-01-02", "2024-01-03"], True, "2024-01-01", None),
    (["2024-01-30", "31/01/2024", "01/02/2024"], None, "2024-01-30", None),  # ISO, then the day first
])
def test_day_first_dates_are_read_as_written_or_refused(dates, dayfirst, first, message):
    from gruforecast.errors import InputError

    frame = pd.DataFrame({"date": dates, "y": [1.0, 2.0, 3.0]})
    if message:
        with pytest.raises(InputError, match=message):
            build_panel(frame, DataSpec(dayfirst=dayfirst))
        return
    panel = build_panel(frame, DataSpec(dayfirst=dayfirst))
    assert panel.freq == "D"
    assert str(panel.series[0].time[0].date()) == first


def test_iso_week_labels_are_read_as_their_mondays():
    """2020-W02 (retail's weeks): pandas parses none of them, so the file had no time
    column; now each is its week's Monday, found without --time-col, and 2020-W53 exists."""
    weeks = pd.date_range("2020-01-06", periods=60, freq="W-MON")
    frame = pd.DataFrame({"week": weeks.strftime("%G-W%V"), "y": np.arange(60.0)})
    panel = build_panel(frame, DataSpec())
    assert panel.freq == "W-MON" and (pd.DatetimeIndex(panel.series[0].time) == weeks).all()
    assert "2020-W53" in set(frame.week) and any("ISO weeks" in n for n in panel.notes)


@pytest.mark.parametrize("freq,label,alias", [("Q", "Q{q} {y}", "QS-JAN"), ("Q", "{y} Q{q}", "QS-JAN"),
                                              ("M", "{y}M{m:02d}", "MS")])
def test_quarter_and_month_labels_are_read_as_their_first_days(freq, label, alias):
    """Q1 2000, 2000 Q1 (spreadsheets' quarters) and 2000M01 (Eurostat's months) were
    'no date column'."""
    periods = pd.period_range("2000-01", periods=40, freq=freq)
    frame = pd.DataFrame({"when": [label.format(q=p.quarter, y=p.year, m=p.month) for p in periods],
                          "y": np.arange(40.0)})
    panel = build_panel(frame, DataSpec())
    assert panel.freq == alias and (pd.DatetimeIndex(panel.series[0].time) == periods.to_timestamp()).all()


def test_dayfirst_leaves_year_first_dates_as_written():
    """Monthly ISO dates read with --dayfirst: 120 months, not days with gaps."""
    frame = pd.DataFrame({"date": pd.date_range("2015-01-01", periods=120, freq="MS").strftime("%Y-%m-%d"),
                          "y": np.arange(120.0)})
    panel = build_panel(frame, DataSpec(dayfirst=True))
    assert panel.freq == "MS" and str(panel.series[0].time[-1].date()) == "2024-12-01"


@pytest.mark.parametrize("freq,kind,local", [("D", "text", True), ("D", "dtype", True), ("W-MON", "text", True),
                                              ("h", "text", False), ("h", "dtype", False)])
def test_zoned_dates_keep_their_local_days_and_zoned_hours_go_to_utc(freq, kind, local):
    """Daily data written at local midnight with DST offsets (+01:00 in winter, +02:00 in
    summer) is read as its local dates: in UTC its midnights move to 23:00 and 22:00 and it
    was refused as off its grid. Hourly data goes to UTC, where DST offsets line up."""
    t = pd.date_range("2024-03-01", periods=24 * 40 if freq == "h" else 60, freq=freq, tz="Europe/Paris")
    frame = pd.DataFrame({"date": t.strftime("%Y-%m-%dT%H:%M:%S%z") if kind == "text" else t,
                          "y": np.sin(np.arange(len(t)) / 3.0)})
    panel = build_panel(frame, DataSpec())
    want = t.tz_localize(None) if local else t.tz_convert("UTC").tz_localize(None)
    assert panel.freq == ("W-MON" if freq == "W-MON" else freq)
    assert (pd.DatetimeIndex(panel.series[0].time) == want).all()


OPTION_CASES = [  # (id, extra train args, message): every size has a bound, every role one column
    ("seed negative", "--seed -1", "--seed (-1) must be >= 0"),
    ("seed past 2**32", "--seed 18446744073709551616", "--seed (18446744073709551616) must be <= 4,294,967,295"),
    ("batch size 1e20", "--batch-size 100000000000000000000", "--batch-size (100000000000000000000) must be <= 1,000,000"),
    ("hidden size 1e9", "--hidden-size 1000000000", "--hidden-size (1000000000) must be <= 4,096"),
    ("ensemble 100000", "--ensemble 100000", "--ensemble (100000) must be <= 64"),
    ("lookback 1e8", "--lookback 100000000", "--lookback (100000000) must be <= 100,000"),
    ("features name the time", "--features t", "column 't' is named by --time-col and --features"),
    ("features name the target", "--features y", "column 'y' is named by --target and --features"),
    ("a feature twice", "--features y2,y2", "column 'y2' is named twice in --features"),
    ("id is the time", "--id-col t", "column 't' is named by --time-col and --id-col"),
]


@pytest.mark.parametrize("case,extra,message", OPTION_CASES, ids=[c[0] for c in OPTION_CASES])
def test_user_mistakes_exit_2(folder, monkeypatch, capsys, case, extra, message):
    before = _snapshot(folder)
    code, _, err = run_main(monkeypatch, capsys, "train", folder / "S.csv", "--time-col", "t", "--target", "y",
                            "--out", folder / "new.gruf", *extra.split())
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert _snapshot(folder) == before


JOB = '[defaults]\ndata = "{d}/S.csv"\nmodel = "{d}/jm.gruf"\noutput = "{d}/out/{{job}}.csv"\ntime_col = "t"\n' \
      'target = "y"\nepochs = 1\nhorizon = 4\n[[jobs]]\nname = "a"\n'
BATCH_CASES = [  # (id, the job's extra keys, message) refused at load time, so by --dry-run too
    ("name ..", 'name = ".."', "job name '..' must start with a letter or digit"),
    ("horizon 0", "horizon = 0", "line 9: job 'a': --horizon (0) must be >= 1"),
    ("bogus scaler", 'scaler = "bogus"', "line 9: job 'a': --scaler 'bogus' is not known"),
    ("format spec in a template", 'output = "o/{{job:>100000000}}.csv"', "has the placeholder {job:>100000000}; use {job} and {date} only"),
    ("attribute in a template", 'output = "o/{{job.__class__}}.csv"', "has the placeholder {job.__class__}"),
    ("unmatched brace", 'output = "o/{{job.csv"', "has an unmatched brace"),
    ("timeout not a duration", 'timeout = "soon"', "timeout 'soon' is not a duration"),
    ("timeout of zero", 'timeout = "0s"', "timeout '0s' is no time at all"),  # was: run with no limit
    # files that two jobs write, or that a job writes over data (relative to the job file)
    ("two jobs write one forecast", 'output = "o.csv"\n[[jobs]]\nname = "b"\noutput = "o.csv"',
     "jobs 'a' and 'b' both write"),
    ("two retraining jobs write one model", '[[jobs]]\nname = "b"',
     "jobs 'a' and 'b' both write"),
    ("a forecast over its data", 'data = "in.csv"\noutput = "in.csv"',
     "job 'a' writes its output"),
    ("a forecast under a data glob", 'data = "in/*.csv"\noutput = "in/{{job}}.csv"',
     "where job 'a' reads its data"),
]


@pytest.mark.parametrize("case,keys,message", BATCH_CASES, ids=[c[0] for c in BATCH_CASES])
def test_batch_mistakes_are_refused_by_dry_run(folder, tmp_path, monkeypatch, capsys, case, keys, message):
    jobs = tmp_path / "jobs.toml"
    text = JOB.format(d=folder)
    if keys.startswith("name"):
        text = text.replace('name = "a"\n', "")
    jobs.write_text(text + keys.replace("{{", "{").replace("}}", "}") + "\n")
    code, _, err = run_main(monkeypatch, capsys, "batch", jobs, "--dry-run")
    assert code == 2 and message in err, err


def test_a_deeply_nested_job_file_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "deep.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    code, _, err = run_main(monkeypatch, capsys, "batch", tmp_path / "deep.toml", "--dry-run")
    assert code == 2 and "nested too deep" in err and "Traceback" not in err


def test_a_lock_file_that_is_a_link_is_refused_and_its_target_untouched(folder, tmp_path, monkeypatch, capsys):
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(JOB.format(d=folder))
    (tmp_path / "victim").write_text("keep")
    (tmp_path / "jobs.toml.lock").symlink_to(tmp_path / "victim")
    code, _, err = run_main(monkeypatch, capsys, "batch", jobs)
    assert code == 2 and "cannot use the lock file" in err, err
    assert (tmp_path / "victim").read_text() == "keep"


def test_a_job_past_its_timeout_fails_and_the_others_run(folder, tmp_path, monkeypatch, capsys):
    """timeout: the job is stopped (here held in its forecast write) and recorded as
    failed; the next job runs; the exit code says a job failed."""
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(JOB.format(d=folder) + f'timeout = "1s"\nretrain = "never"\nmodel = "{folder}/M.gruf"\n'
                    f'[[jobs]]\nname = "b"\nretrain = "never"\nmodel = "{folder}/M.gruf"\n')
    monkeypatch.setenv("GRUFORECAST_TEST_PAUSE_WRITE", "3")
    import time

    start = time.perf_counter()
    code, out, err = run_main(monkeypatch, capsys, "batch", jobs)
    assert code == 1, err
    assert "stopped after its timeout of 1s" in out + err
    assert (folder / "out" / "b.csv").exists() and not (folder / "out" / "a.csv").exists()
    assert time.perf_counter() - start < 10


@pytest.fixture
def cache(tmp_path, monkeypatch):
    from gruforecast import native

    monkeypatch.setenv("GRUFORECAST_CACHE", str(tmp_path))
    if shutil_which_cc() is None:
        pytest.skip("no C compiler")
    return tmp_path / "gruforecast", native


def shutil_which_cc():
    import shutil

    return shutil.which("gcc") or shutil.which("cc")


def _planted(path):
    """A library whose constructor would write a marker file if it were ever loaded."""
    import subprocess

    src = path.with_suffix(".c")
    src.write_text('#include <stdio.h>\n__attribute__((constructor)) static void f(void) '
                   f'{{ FILE *f = fopen("{path}.ran", "w"); if (f) fclose(f); }}\n')
    subprocess.run([shutil_which_cc(), "-shared", "-fPIC", str(src), "-o", str(path)], check=True)


def test_the_native_cache_is_private_and_checked(cache):
    folder, native = cache
    built = native._build()
    assert built.parent == folder and oct(folder.stat().st_mode & 0o777) == "0o700"
    assert native._build() == built  # reused: owner, mode and digest check out
    digest = built.read_bytes()
    # a library planted in place of ours (same name, wrong content): rebuilt, never used
    built.unlink()
    _planted(built)
    assert native._build() == built and built.read_bytes() == digest
    # a link planted in its place: not followed, replaced by a build
    built.unlink()
    target = folder.parent / "elsewhere.so"
    _planted(target)
    built.symlink_to(target)
    assert native._build() == built and not built.is_symlink() and built.read_bytes() == digest
    # a folder others can write: not used at all
    folder.chmod(0o777)
    assert native._build().parent != folder
    import ctypes

    ctypes.CDLL(str(native._build()))  # what would be loaded is our build
    assert not list(folder.parent.glob("*.ran")) and not list(folder.glob("*.ran"))


def test_a_gzip_bomb_fails_fast(tmp_path, monkeypatch, capsys):
    import gzip

    import gruforecast.data as data

    monkeypatch.setattr(data, "INFLATE_RATIO", 2)  # the same rule, at a test's size
    with gzip.open(tmp_path / "bomb.csv.gz", "wb") as fh:
        fh.write(b"date,y\n" + b"2021-01-01,1\n" * 6_000_000)  # 78 MB of text, 200 KB packed
    code, _, err = run_main(monkeypatch, capsys, "check", tmp_path / "bomb.csv.gz")
    assert code == 2 and "inflates past 64 MiB" in err, err


@pytest.mark.parametrize("values,message", [
    (1e300, "holds values up to 3e+301, beyond the range the model computes in (1e30); divide the column"),
    (1e-300, "holds only values below 3e-299 in size, too small to scale in float32; multiply the column"),
])
def test_values_beyond_float32_name_the_scale(values, message):
    from gruforecast.errors import InputError

    frame = pd.DataFrame({"t": np.arange(30), "y": values * (1 + np.arange(30))})
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        build_panel(frame, DataSpec(target="y", time_col="t"))


def test_messages_stay_short_whatever_the_file():
    """50,000 columns or a 20 MB cell: the message names a few, never all of it."""
    from gruforecast.errors import InputError

    wide = pd.DataFrame({f"c{i}": [1.0, 2.0, 3.0] for i in range(50_000)})
    wide["date"] = ["2021-01-01", "2021-01-02", "2021-01-03"]
    for spec in (DataSpec(), DataSpec(target="nope")):
        with pytest.raises(InputError) as exc:
            build_panel(wide, spec)
        assert len(str(exc.value)) < 300 and " more" in str(exc.value) and "c49999" not in str(exc.value)
    cell = pd.DataFrame({"date": ["2021-01-01", "2021-01-02", "2021-01-03"], "y": ["x" * 20_000_000, "1", "2"]})
    with pytest.raises(InputError) as exc:
        build_panel(cell, DataSpec(target="y"))
    assert len(str(exc.value)) < 300 and "xxx..." in str(exc.value)


def test_a_full_disk_says_so(folder, tmp_path, monkeypatch, capsys):
    """torch.save on a full disk fails with "unexpected pos": the user reads "no space
    left", exit 1, and nothing half-written is left."""
    import shutil

    import torch

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos 128 vs 0")

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(100, 100, 0))
    code, _, err = run_main(monkeypatch, capsys, "train", folder / "S.csv", "--time-col", "t", "--target", "y",
                            "--horizon", "4", "--epochs", "1", "--out", tmp_path / "m.gruf")
    assert code == 1 and "no space left on the device of" in err and "unexpected pos" not in err, err
    assert not list(tmp_path.glob("*m.gruf*"))


def test_train_writes_all_its_outputs_or_none(folder, tmp_path, monkeypatch, capsys):
    """A failure while writing the last output (the HTML report) leaves no model and no
    forecast behind: the renames wait for every file to be written."""
    import gruforecast.report as report

    def broken(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(report, "html_page", broken, raising=False)
    monkeypatch.setattr(report, "_html", broken, raising=False)
    monkeypatch.setattr(report, "markdown", broken)
    code, _, err = run_main(monkeypatch, capsys, "train", folder / "S.csv", "--time-col", "t", "--target", "y",
                            "--horizon", "4", "--epochs", "1", "--out", tmp_path / "m.gruf")
    assert code == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_batch_writes_a_jobs_model_and_forecast_together_or_neither(folder, tmp_path, monkeypatch):
    """A retrained job whose forecast cannot be written leaves the old model in place."""
    import gruforecast.forecaster as forecaster
    from gruforecast.batch import load_jobs, run_job

    model = tmp_path / "m.gruf"
    model.write_bytes((folder / "M.gruf").read_bytes())
    before = model.read_bytes()
    (tmp_path / "jobs.toml").write_text(
        f'[[jobs]]\nname = "s"\ndata = "{folder / "S.csv"}"\ntarget = "y"\ntime_col = "t"\nhorizon = 4\n'
        f'lookback = 8\nepochs = 1\nhidden_size = 4\nensemble = 1\ntransform = "none"\nretrain = "always"\n'
        f'model = "{model}"\noutput = "{tmp_path / "out.csv"}"\n')
    [job] = load_jobs(tmp_path / "jobs.toml")

    def broken(frame, *args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(forecaster.pd.DataFrame, "to_csv", broken)
    result = run_job(job, lambda *a: None)
    assert result.status == "failed" and "Input/output error" in result.error
    assert model.read_bytes() == before and not (tmp_path / "out.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.toml", "m.gruf"]  # no temporary left


def test_ctrl_c_mid_training_exits_130_and_writes_nothing(folder, tmp_path):
    """SIGINT (Ctrl-C) while `train` runs: one line, exit 130, no output and no temporary
    file. A subprocess: the signal must reach a real process."""
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "COLUMNS": "120"}
    cmd = [sys.executable, "-m", "gruforecast", "train", str(folder / "S.csv"), "--time-col", "t", "--target", "y",
           "--horizon", "4", "--epochs", "100000", "--patience", "100000", "--out", str(tmp_path / "m.gruf")]
    # SIGINT as a terminal sends it: a suite started in the background of a shell without
    # job control (`make test &`) passes SIGINT down ignored, and an ignored SIGINT stays
    # ignored in Python, rightly (nohup and cron mean it): the child would train on
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    for line in proc.stderr:  # wait until it trains: the first epoch line
        if "epoch" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "gruforecast: interrupted; outputs are written whole or not at all" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_candidate_whose_validation_forecasts_overflow_loses_instead_of_crashing(tmp_path, monkeypatch, capsys):
    """--lr 1e9: the log candidate's forecasts overflow to inf (exp of a diverged output);
    its MASE, which leaves non-finite forecasts out, was None, and comparing it crashed
    (exit 1, a TypeError). It now loses to the candidate whose forecasts are finite."""
    t = pd.date_range("2024-01-01", periods=200, freq="D")
    pd.DataFrame({"date": t, "y": 100 + 10 * np.sin(np.arange(200) * 2 * np.pi / 7)}).to_csv(tmp_path / "d.csv", index=False)
    code, _, err = run_main(monkeypatch, capsys, "train", tmp_path / "d.csv", "--horizon", "7", "--epochs", "1",
                            "--ensemble", "1", "--calendar", "none", "--lr", "1e9", "--out", tmp_path / "m.gruf",
                            "--report-dir", tmp_path)
    assert code == 0, err
    chose = json.loads((tmp_path / "metrics.json").read_text())["choices"]["transform"]
    assert chose.startswith("none: validation MASE") and chose.endswith("against inf with log"), chose
