"""`gruforecast batch` as cron runs it: isolation, atomic outputs, the lock, quiet logs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE, run_cli

from gruforecast.batch import load_jobs

JOBS = """
[defaults]
horizon = 4
epochs = 3
retrain = "older-than"
max_age = "7d"
ensemble = 1  # these tests are about batch, not the defaults' choices
transform = "none"
calendar = "none"

[[jobs]]
name = "macro"
data = "macro.csv"
target = "value"
id_col = "series"
transform = "log"
ensemble = 2
base_seasons = 2
linear_path = true
by_season = false
model = "models/macro.gruf"
output = "out/{job}-{date}.csv"

[[jobs]]
name = "broken"
data = "broken.csv"
target = "value"
model = "models/broken.gruf"
output = "out/{job}.csv"

[[jobs]]
name = "gdp"
data = "gdp.parquet"
target = "value"
time_col = "quarter"
model = "models/gdp.gruf"
output = "out/{job}.parquet"
"""


@pytest.fixture
def folder(tmp_path):
    macro = pd.read_csv(SAMPLE / "us_macro_quarterly.csv")
    macro.to_csv(tmp_path / "macro.csv", index=False)
    gdp = macro[macro.series == "realgdp"].drop(columns="series")
    gdp.assign(quarter=pd.to_datetime(gdp["quarter"])).to_parquet(tmp_path / "gdp.parquet")
    (tmp_path / "broken.csv").write_bytes(b"\x00\x01\x02 not a csv \xff\xfe" * 20)
    (tmp_path / "jobs.toml").write_text(JOBS)
    return tmp_path


def _outputs(folder: Path) -> set[str]:
    return {p.name for p in (folder / "out").glob("*") if not p.name.startswith(".")}


def test_one_bad_job_never_spoils_the_others(folder):
    proc = run_cli("batch", folder / "jobs.toml", cwd="/")
    assert proc.returncode == 1, proc.stderr
    today = time.strftime("%Y-%m-%d")
    assert _outputs(folder) == {f"macro-{today}.csv", "gdp.parquet"}
    written = pd.read_csv(folder / "out" / f"macro-{today}.csv")
    assert len(written) == 5 * 4
    assert {"forecast", "lo-80", "hi-80", "lo-95", "hi-95"} <= set(written.columns)  # intervals in batch too
    summary = json.loads((folder / "batch-summary.json").read_text())
    status = {j["name"]: j["status"] for j in summary["jobs"]}
    assert status == {"macro": "ok", "broken": "failed", "gdp": "ok"} and summary["exit_code"] == 1
    broken = next(j for j in summary["jobs"] if j["name"] == "broken")
    assert "broken.csv" in broken["error"] and "Traceback" not in proc.stderr
    from gruforecast import artifact

    macro = artifact.load(folder / "models" / "macro.gruf")  # the job's model options reached it
    assert macro.window_cfg.transform == "log" and macro.model_cfg.ensemble == 2
    assert macro.model_cfg.base_seasons == 2 and macro.model.members[0].linear is not None
    width = macro.window_cfg.channels(macro.data_spec.n_values)  # the target and its calendar columns
    assert not macro.model_cfg.by_season and macro.model.members[0].gru.input_size == width  # step by step
    retrained = next(j for j in summary["jobs"] if j["name"] == "macro")
    assert retrained["retrained"] and retrained["mase"] > 0
    # models are fresh now: the next run only predicts, and succeeds for the good jobs
    again = run_cli("batch", folder / "jobs.toml", "--only", "macro", "--only", "gdp", cwd="/")
    assert again.returncode == 0, again.stderr
    assert "retrained" not in again.stderr and "wrote" in again.stderr


def test_bad_config_names_the_key_and_line(folder):
    cfg = folder / "jobs.toml"
    cfg.write_text(JOBS.replace('target = "value"\nid_col', 'target = "value"\nhorizn = 4\nid_col'))
    proc = run_cli("batch", cfg)
    assert proc.returncode == 2
    assert "jobs.toml line 15: unknown key 'horizn' in job 'macro'; did you mean 'horizon'?" in proc.stderr
    cfg.write_text(JOBS.replace("epochs = 3", 'epochs = "three"'))
    proc = run_cli("batch", cfg)
    assert proc.returncode == 2
    assert "line 4: epochs = 'three' in [defaults] has the wrong type; expected a whole number (e.g. 3)" in proc.stderr
    assert not (folder / "out").exists()


@pytest.mark.parametrize("pair, message", [
    ("epochz=20", "--set unknown key 'epochz'; did you mean 'epochs'?"),
    ("epochs=abc", "--set epochs = 'abc' has the wrong type; expected a whole number (e.g. 3)"),
    ("series_embedding=maybe", "--set series_embedding = 'maybe' has the wrong type; expected true or false"),
    # the extensions `train --out` and `predict --out` take, found when the file is read
    ("output='out/{job}.txt'", "jobs.toml line 11: job 'macro': output 'out/{job}.txt' has an unknown extension; "
                               "use .csv or .parquet"),
    ("model='models/{job}.txt'", "jobs.toml line 11: job 'macro': model 'models/{job}.txt' has an unknown "
                                 "extension; use .gruf or .pt"),
])
def test_set_keys_are_checked_as_the_files_are(folder, monkeypatch, capsys, pair, message):
    """`--set` once went past the checks: an unknown key was ignored, a word for a bool
    was stored in the model, a word for a number failed every job with exit 1."""
    from conftest import run_main

    monkeypatch.chdir(folder)
    code, _, err = run_main(monkeypatch, capsys, "batch", "jobs.toml", "--set", pair)
    assert code == 2 and err.strip() == f"gruforecast: error: {message}"
    assert not (folder / "out").exists() and not (folder / "models").exists()


def _start(folder, *args, pause=None):
    env = {**os.environ}
    if pause:
        env["GRUFORECAST_TEST_PAUSE_WRITE"] = str(pause)
    return subprocess.Popen([sys.executable, "-m", "gruforecast", "batch", str(folder / "jobs.toml"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(predicate, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_kill_9_mid_write_leaves_no_partial_file_and_no_stale_lock(folder):
    assert run_cli("batch", folder / "jobs.toml", "--only", "gdp").returncode == 0
    final = folder / "out" / "gdp.parquet"
    before = final.read_bytes()
    proc = _start(folder, "--only", "gdp", pause=60)
    tmp_files = lambda: list((folder / "out").glob(".gdp.parquet.*.tmp"))  # noqa: E731
    assert _wait_for(lambda: tmp_files()), "the paused write never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert final.read_bytes() == before  # the old output, whole
    after = run_cli("batch", folder / "jobs.toml", "--only", "gdp")  # the lock died with the process
    assert after.returncode == 0, after.stderr
    pd.read_parquet(final)


def test_two_runs_at_once_one_waits_or_exits_75(folder):
    assert run_cli("batch", folder / "jobs.toml", "--only", "gdp").returncode == 0
    first = _start(folder, "--only", "gdp", pause=120)  # holds the lock inside its write
    assert _wait_for(lambda: list((folder / "out").glob(".gdp.parquet.*.tmp")))
    second = run_cli("batch", folder / "jobs.toml", "--only", "gdp")
    assert second.returncode == 75
    assert second.stderr.strip().splitlines()[-1].startswith("gruforecast: error: another batch run holds the lock")
    waiting = _start(folder, "--only", "gdp", "--wait", "100")
    time.sleep(1.0)
    assert waiting.poll() is None  # still waiting for the lock
    first.send_signal(signal.SIGKILL)  # the kernel drops the dead run's lock
    first.wait()
    assert waiting.wait(100) == 0, waiting.stderr.read()


def test_cron_environment_plain_logs_and_json(folder):
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}  # no HOME, no TERM: like cron
    with open(folder / "stdout.txt", "w") as stdout:
        proc = subprocess.run([sys.executable, "-m", "gruforecast", "batch", str(folder / "jobs.toml"),
                               "--log-json"], stdout=stdout, stderr=subprocess.PIPE, text=True, env=env,
                              cwd="/")
    assert proc.returncode == 1
    text = (folder / "stdout.txt").read_text()
    assert "\x1b[" not in text and "\x1b[" not in proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert {e["event"] for e in events} >= {"started", "retrained", "wrote", "failed"}
    assert all({"time", "job", "event"} <= set(e) for e in events)
    quiet = subprocess.run([sys.executable, "-m", "gruforecast", "batch", str(folder / "jobs.toml"), "--quiet"],
                           capture_output=True, text=True, env=env, cwd="/")
    assert quiet.returncode == 1
    assert [line for line in quiet.stderr.splitlines() if "batch:" in line] == [
        line for line in quiet.stderr.splitlines() if "failed" in line]


def test_keep_better_keeps_the_old_model_when_the_new_one_is_worse(folder):
    assert run_cli("batch", folder / "jobs.toml", "--only", "gdp", "--set", "epochs=40").returncode == 0
    model = folder / "models" / "gdp.gruf"
    before = model.read_bytes()
    # Adam at lr 1.0 for one epoch, and no base forecast to start from: a model far off the
    # data, worse than the trained one
    proc = run_cli("batch", folder / "jobs.toml", "--only", "gdp", "--set", "retrain='always'",
                   "--set", "keep_better=true", "--set", "epochs=1", "--set", "lr=1.0", "--set", "seed=5",
                   "--set", "window_norm='none'")
    assert proc.returncode == 0, proc.stderr
    assert model.read_bytes() == before
    job = json.loads((folder / "batch-summary.json").read_text())["jobs"][0]
    assert job["retrained"] and "worse than the old model" in job["kept_old"]


def test_parallel_jobs_and_thread_budget(folder):
    proc = run_cli("batch", folder / "jobs.toml", "--jobs", "2", "--threads", "1", cwd="/")
    assert proc.returncode == 1, proc.stderr
    assert _outputs(folder) == {f"macro-{time.strftime('%Y-%m-%d')}.csv", "gdp.parquet"}
    over = run_cli("batch", folder / "jobs.toml", "--jobs", "2", "--threads", str(os.cpu_count() or 1))
    assert over.returncode == 2 and "more than the" in over.stderr and "cores" in over.stderr


def test_dry_run_runs_nothing(folder):
    proc = run_cli("batch", folder / "jobs.toml", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "macro: retrain" in proc.stdout
    assert not (folder / "out").exists() and not (folder / "models").exists()


def test_jobs_may_share_a_model_they_only_read_and_write_apart(tmp_path):
    """The write checks (`batch._check_writes`) refuse only what loses a file: jobs that
    never retrain may forecast from one model, into outputs told apart by {job}, beside
    a data glob that does not match them."""
    (tmp_path / "jobs.toml").write_text(
        '[defaults]\ndata = "in/*.csv"\nmodel = "shared.gruf"\nretrain = "never"\n'
        'output = "out/{job}.csv"\ntarget = "y"\n[[jobs]]\nname = "a"\n[[jobs]]\nname = "b"\n')
    jobs = load_jobs(tmp_path / "jobs.toml")
    assert [Path(j.output).name for j in jobs] == ["{job}.csv"] * 2 and jobs[0].model == jobs[1].model


def test_an_output_among_the_parquet_parts_a_job_reads_is_refused(tmp_path):
    """data = a folder of Parquet parts reads every .parquet under it, so a forecast
    written there as .parquet would be read as data by the next run; a .csv there is not."""
    from gruforecast.errors import ConfigError

    (tmp_path / "parts").mkdir()
    text = '[[jobs]]\nname = "a"\ndata = "parts"\nmodel = "m.gruf"\ntarget = "y"\noutput = "parts/{job}.%s"\n'
    (tmp_path / "jobs.toml").write_text(text % "parquet")
    with pytest.raises(ConfigError, match="where job 'a' reads its data"):
        load_jobs(tmp_path / "jobs.toml")
    (tmp_path / "jobs.toml").write_text(text % "csv")
    assert [j.name for j in load_jobs(tmp_path / "jobs.toml")] == ["a"]


def test_a_job_with_short_series_skip_forecasts_the_others_when_a_new_series_is_short(tmp_path, monkeypatch, capsys):
    """A model that reads 8 points meets a series of 3 (a new store): the job failed. With
    `short_series = "skip"` it writes the others' forecasts and logs the skip."""
    from conftest import run_main

    macro = pd.read_csv(SAMPLE / "us_macro_quarterly.csv")
    macro.to_csv(tmp_path / "macro.csv", index=False)
    (tmp_path / "jobs.toml").write_text(
        '[[jobs]]\nname = "m"\ndata = "macro.csv"\ntarget = "value"\nid_col = "series"\nmodel = "m.gruf"\n'
        'output = "f.csv"\nretrain = "never"\nshort_series = "skip"\nhorizon = 4\nlookback = 8\nepochs = 1\n'
        'ensemble = 1\ntransform = "none"\ncalendar = "none"\n')
    code, _, err = run_main(monkeypatch, capsys, "train", tmp_path / "macro.csv", "--target", "value", "--id-col",
                            "series", "--horizon", 4, "--lookback", 8, "--epochs", 1, "--ensemble", 1,
                            "--transform", "none", "--calendar", "none", "--out", tmp_path / "m.gruf")
    assert code == 0, err
    pd.concat([macro, macro[macro.series == "realgdp"].tail(3).assign(series="new")]).to_csv(
        tmp_path / "macro.csv", index=False)
    code, _, err = run_main(monkeypatch, capsys, "batch", tmp_path / "jobs.toml")
    assert code == 0, err
    assert "m: skipped note=skipped 1 series too short to forecast (first: 'new', 3 points; the model needs 8)" in err
    written = pd.read_csv(tmp_path / "f.csv")
    assert set(written.series) == set(macro.series) and len(written) == 4 * macro.series.nunique()


def test_a_job_says_when_its_validation_part_holds_few_windows(tmp_path, monkeypatch, capsys):
    """As `train` does: a nightly job on one short series with a long horizon logs that its
    early stopping and choices read one validation window; a panel's job says nothing."""
    from conftest import run_main

    for name, n in (("short", 60), ("long", 120)):  # 60 points: too short to hold out more than a horizon
        pd.DataFrame({"date": pd.date_range("2020-01-01", periods=n, freq="D"),
                      "y": np.sin(np.arange(n) / 3.0) + 2}).to_csv(tmp_path / f"{name}.csv", index=False)
    job = ('[[jobs]]\nname = "{name}"\ndata = "{data}"\nmodel = "{name}.gruf"\noutput = "{name}-forecast.csv"\n'
           'horizon = {h}\nepochs = 1\nensemble = 1\ntransform = "none"\ncalendar = "none"\n')
    (tmp_path / "jobs.toml").write_text(job.format(name="one", data="short.csv", h=14)
                                        + job.format(name="many", data="long.csv", h=2))
    code, _, err = run_main(monkeypatch, capsys, "batch", tmp_path / "jobs.toml")
    assert code == 0, err
    notes = [line for line in err.splitlines() if "the validation part holds" in line]
    assert len(notes) == 1 and notes[0].startswith("gruforecast batch: one: note note=the validation part holds "
                                                   "1 window: early stopping"), err


def test_a_job_file_saved_with_a_byte_order_mark_is_read(folder):
    """Windows editors (Notepad) save UTF-8 with a BOM, which TOML does not allow."""
    bom = folder / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + JOBS.encode())
    assert [job.name for job in load_jobs(bom)] == [job.name for job in load_jobs(folder / "jobs.toml")]
