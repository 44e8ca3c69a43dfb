"""Hostile paths and careless mistakes (issue 15), in this process through `cli.main`:
each case exits 2 with one line naming the problem and the fix, and leaves every file in
its folder as it was (nothing replaced, nothing written)."""

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
