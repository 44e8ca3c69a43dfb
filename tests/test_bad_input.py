"""Every kind of broken input, through the real CLI (`main`, in this process; a subprocess
where the test needs one: another user's permissions, a time bound).

Each case: exit code 2 and a one-line message naming the problem and the fix (word for
word where it is given in full), no traceback, and no output file created or modified.
Cases that must work (`.csv.gz`, BOM, quoted numbers, options for `;` and decimal commas,
DST offsets, unsorted rows, constant series) exit 0.
"""

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli, run_main

N = 120  # rows of the generated daily series


def series(n: int = N, **cols) -> pd.DataFrame:
    frame = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
                          "y": np.sin(np.arange(n) / 3.0) + 2})
    return frame.assign(**cols)


def csv(frame: pd.DataFrame, **kw) -> bytes:
    return frame.to_csv(index=False, **kw).encode()


FAST = ["--epochs", "1", "--horizon", "7", "--ensemble", "1", "--transform", "none"]  # not about defaults

# (id, file name, bytes or a callable(path) making the file, extra args, expected exit, message)
CASES = [
    ("missing file", None, None, [], 2, "does not exist; check the path"),
    ("folder", "data.csv", lambda p: p.mkdir(), [], 2, "is a folder without .parquet files; pass a data file, or a folder of Parquet parts"),
    ("empty file", "data.csv", b"", [], 2, "is empty; give a file with a header and rows"),
    ("header only", "data.csv", b"date,y\n", [], 2, "has no rows; give a file with data under the header"),
    # a header of numbers that options name is a header (pandas writes unnamed columns as 0,1)
    ("numbered header named by options", "data.csv", csv(series().set_axis(["0", "1"], axis=1)),
     ["--time-col", "0", "--target", "1", *FAST], 0, ""),
    # pandas would read the first row as the names: a lost point and columns named "2.0"
    ("no header", "data.csv", csv(series(), header=False), [], 2,
     "data.csv' has no header: its first line (2021-01-01,2.0) reads as data; add a first line naming the columns"),
    ("unknown extension", "data.txt", csv(series()), [], 2,
     "'data.txt' has an unknown extension; use a .csv, .csv.gz or .parquet file"),
    ("parquet truncated", "data.parquet", lambda p: _truncated_parquet(p), [], 2,
     "is not a readable Parquet file"),
    ("parquet decimals work", "data.parquet", lambda p: _decimal_parquet(p), FAST, 0, None),  # no numeric column found
    ("parquet with the time as its index works", "data.parquet",  # was: no date column
     lambda p: series().assign(date=lambda d: pd.to_datetime(d.date)).set_index("date").to_parquet(p), FAST, 0, None),
    ("parquet really csv", "data.parquet", csv(series()), [], 2,
     "is not a Parquet file (no PAR1 header); it looks like text: rename it to .csv"),
    ("csv really binary", "data.csv", bytes(range(256)) * 8, [], 2, "holds binary data, not CSV text; check the file"),
    ("gzip named csv", "data.csv", gzip.compress(csv(series())), [], 2, "is gzip-compressed; name it .csv.gz"),
    ("csv.gz works", "data.csv.gz", gzip.compress(csv(series())), FAST, 0, None),
    ("utf-8 BOM works", "data.csv", b"\xef\xbb\xbf" + csv(series()), FAST, 0, None),
    ("not utf-8", "data.csv", csv(series(id="Zürich")).decode().encode("latin-1"), [], 2,  # was: "check the file"
     "is not UTF-8 text (byte b'\\xfc' at offset 26); save it as CSV UTF-8"),
    ("empty unnamed columns from a spreadsheet work", "data.csv",  # was: 3 numeric columns; pass --target
     b"date,y,,\n" + b"".join(f"{d},{v},,\n".encode() for d, v in zip(series().date, series().y)), FAST, 0, None),
    ("two columns named alike", "data.csv",  # was: 2 numeric columns (y, y.1); pass --target COL
     b"date,y,y\n" + b"".join(f"{d},{v},{-v}\n".encode() for d, v in zip(series().date, series().y)), [], 2,
     "data.csv' has two columns named 'y' (columns 2 and 3); rename one in the header"),
    ("a column truly named y.1 works", "data.csv", csv(series().rename(columns={"y": "y.1"})), FAST, 0, None),
    ("a total row under the data", "data.csv", csv(series()) + b"Total,123.0\n", [], 2,  # was: "no date column"
     "time column 'date' holds 'Total' at row 122, neither a date nor an integer step; fix it or pass another --time-col"),
    ("semicolon without --sep", "data.csv", csv(series(), sep=";"), [], 2, "looks ';'-separated; pass --sep ';'"),
    ("comma with --sep ';'", "data.csv", csv(series()), ["--sep", ";"], 2, "looks ','-separated; pass --sep ','"),
    ("semicolon and decimal comma with options", "data.csv", csv(series(), sep=";", decimal=","),
     ["--sep", ";", "--decimal", ","] + FAST, 0, None),
    ("decimal comma, no options: not read as dates or ids", "data.csv", csv(series(), sep=";", decimal=","), ["--sep", ";"], 2,
     "no numeric column: column 'y' holds numbers written as text (first '2,0'); pass --decimal ','"),
    ("thousands commas, no options", "data.csv", csv(series(y=[f"{1000 + i:,}" for i in range(N)])), [], 2,
     "no numeric column: column 'y' holds numbers written as text (first '1,000'); pass --thousands ','"),
    ("a dash among the numbers, no --target: the column is still the target", "data.csv",
     csv(series(y=["-" if i == 5 else f"{i}.5" for i in range(N)])), [], 2,
     "column 'y' is not numeric: row 7 holds '-'; clean the column or choose another"),
    ("a typo among the dates, no --time-col: the column is still the time", "data.csv",
     csv(series(date=["2O21-01-06" if i == 5 else d for i, d in enumerate(series().date)])), [], 2,
     "time column 'date' holds '2O21-01-06' at row 7, neither a date nor an integer step; fix it or pass another --time-col"),
    ("a weekly series in a daily panel: not gaps to fill", "data.csv",
     csv(pd.concat([series(id="a"), series(60, id="b").assign(date=pd.date_range("2021-01-03", periods=60, freq="W")
                                                                  .strftime("%Y-%m-%d"))])), ["--id-col", "id"], 2,
     "series 'b' is regular at W-SUN, the panel at D (its longest series); give series of one frequency "
     "(aggregate them first, or train each frequency apart)"),
    ("held-out share out of range, named by its flag", "data.csv", csv(series()), ["--val-frac", "0.6"], 2,
     "--val-frac (0.6) must be in [0, 0.5)"),
    ("dropout with one GRU layer would do nothing", "data.csv", csv(series()), ["--dropout", "0.2"], 2,
     "--dropout acts between GRU layers, and --num-layers is 1: it would do nothing; pass --num-layers 2 or more, "
     "or leave --dropout out"),
    ("keep-fit without the refit", "data.csv", csv(series()), ["--keep-fit", "--no-full-refit"], 2,
     "--keep-fit keeps the early-stopped fit beside the refit, and --no-full-refit writes that fit alone; "
     "drop one of them"),
    ("decimal comma without --decimal", "data.csv", csv(series(), sep=";", decimal=","), ["--sep", ";", "--target", "y"], 2,
     "column 'y' is not numeric: row 2 holds '2,0'; clean the column or choose another (a decimal comma or thousands separator? see --decimal, --thousands)"),
    ("quoted numbers work", "data.csv", csv(series(), quoting=1), FAST, 0, None),
    ("thousands separators with option", "data.csv",
     csv(series(y=[f"{1000 + i:,}" for i in range(N)]), quoting=1), ["--thousands", ","] + FAST, 0, None),
    ("missing target, closest name", "data.csv", csv(series().rename(columns={"y": "sales"})),
     ["--target", "sale"], 2, "column 'sale' (--target) is not in the file; did you mean 'sales'?"),
    ("missing time column", "data.csv", csv(series()), ["--time-col", "dte"], 2,
     "column 'dte' (--time-col) is not in the file; did you mean 'date'?"),
    ("missing id column", "data.csv", csv(series()), ["--id-col", "store"], 2,
     "column 'store' (--id-col) is not in the file; its columns are date, y"),
    ("target not numeric", "data.csv", csv(series(y=["a"] * N)), ["--target", "y"], 2,
     "column 'y' is not numeric: row 2 holds 'a'; clean the column or choose another"),
    ("a feature of categories", "data.csv", csv(series(region=["north", "south"] * (N // 2))),
     ["--features", "region"] + FAST, 2,
     "column 'region' is not numeric: row 2 holds 'north'; the model reads numbers: encode a category as 0/1 "
     "columns (one per value), or choose another"),
    ("booleans work", "data.csv", csv(series(y=[i % 3 == 0 for i in range(N)])), ["--target", "y"] + FAST, 0, None),
    ("all-NaN target", "data.csv", csv(series(y=[np.nan] * N)), ["--target", "y"], 2,
     "column 'y' has no values at all; choose another column"),
    ("infinity", "data.csv", csv(series(y=[1.0] * 5 + [np.inf] + [1.0] * (N - 6))), ["--target", "y"], 2,
     "column 'y' holds inf at row 7; replace infinities with a number or leave the cell empty"),
    ("constant series works", "data.csv", csv(series(y=[5.0] * N)), FAST, 0, None),
    ("timestamp does not parse", "data.csv", csv(series(date=["2021-01-01"] * 3 + ["yesterday"] + ["2021-01-05"] * (N - 4))),
     ["--time-col", "date"], 2, "time column 'date' holds 'yesterday' at row 5, neither a date nor an integer step"),
    ("mixed time zones", "data.csv",
     csv(pd.DataFrame({"date": [f"2021-01-{d:02d}T00:00:00+01:00" for d in range(1, 11)]
                       + [f"2021-01-{d:02d}T00:00:00" for d in range(11, 31)], "y": range(30)})),
     [], 2, "time column 'date' mixes timestamps with and without a time zone (row 12"),
    ("DST offsets work", "data.csv",
     csv(pd.DataFrame({"date": pd.date_range("2021-03-20", periods=24 * 20, freq="h", tz="Europe/Berlin")
                       .strftime("%Y-%m-%dT%H:%M:%S%z"), "y": np.sin(np.arange(24 * 20) / 5.0)})),
     ["--epochs", "1", "--horizon", "6"], 0, None),
    ("duplicate timestamps", "data.csv", csv(pd.concat([series(), series().iloc[[10]]])), [], 2,
     "1 duplicate timestamps, first at 2021-01-11 00:00:00; remove or aggregate them (many series? pass --id-col)"),
    ("unsorted rows work", "data.csv", csv(series().sample(frac=1, random_state=0)), FAST, 0, "sorted"),
    ("irregular spacing", "data.csv",
     csv(pd.DataFrame({"date": (pd.Timestamp("2021-01-01") + pd.to_timedelta(np.cumsum([0] + [1, 1, 1, 2.5] * 30), "D"))
                       .strftime("%Y-%m-%d %H:%M"), "y": np.arange(121.0)})),
     [], 2, "(irregular spacing); pass --freq or align the times"),
    ("business days with holidays missing", "data.csv",  # was: read as days, every weekend a gap
     csv(series(date=pd.bdate_range("2021-01-01", periods=N + 3).strftime("%Y-%m-%d")[[*range(10), *range(11, 50),
                                                                                        *range(52, N + 3)]])),
     [], 2, "3 missing values or gaps in the time index, first at 2021-01-15 00:00:00; pass --fill"),
    ("monthly on the 15th", "data.csv",  # was: off the 744h grid (irregular spacing); pass --freq
     csv(series(date=(pd.date_range("2010-01-01", periods=N, freq="MS") + pd.Timedelta(days=14)).strftime("%Y-%m-%d"))),
     [], 2, "the times are monthly on day 15 of the month, which no pandas frequency marks; date each row by the "
     "first day of its period (or the last) and run again"),
    ("dates written 20240131 work", "data.csv",  # were steps: "209 gaps, first at 20240132; pass --fill"
     csv(series(date=pd.date_range("2021-01-01", periods=N, freq="D").strftime("%Y%m%d").astype(int))), FAST, 0,
     "time column 'date': dates written 20240131 read as dates"),
    ("months written 202401 work", "data.csv",
     csv(series(date=pd.date_range("2011-01-01", periods=N, freq="MS").strftime("%Y%m").astype(int))), FAST, 0,
     "months written 202401 read as the dates of their first days"),
    ("Unix seconds work, read as steps, with a note", "data.csv",  # was: read as steps without a word
     csv(series(date=1609459200 + 86400 * np.arange(N))), ["--time-col", "date"] + FAST, 0,
     "time column 'date' looks like Unix seconds (2021-01-01 00:00:00 to 2021-04-30 00:00:00 UTC); it is read as "
     "integer steps, with no calendar or holidays: write it as dates (pandas: pd.to_datetime(df['date'], unit='s')) "
     "for those"),
    ("a date column beside a warehouse's date key works", "data.csv",  # the key is a date too: the date wins
     csv(series(date_key=pd.date_range("2021-01-01", periods=N, freq="D").strftime("%Y%m%d").astype(int))),
     ["--target", "y"] + FAST, 0, None),
    ("gaps", "data.csv", csv(series().drop(index=[40, 41, 42])), [], 2,
     "3 missing values or gaps in the time index, first at 2021-02-10 00:00:00; pass --fill interpolate|ffill|zero"),
    ("short series in a panel", "data.csv",
     csv(pd.concat([series().assign(id="a"), series(n=10).assign(id="b")])),
     ["--id-col", "id", "--short-series", "fail"] + FAST, 2,
     "series 'b' has 10 points, fewer than lookback 14 + horizon 7; use --short-series pad, lower --lookback, lower --horizon, or give more data"),
    ("short series in a panel padded", "data.csv",
     csv(pd.concat([series().assign(id="a"), series(n=10).assign(id="b")])), ["--id-col", "id"] + FAST, 0,
     "lookback 14, horizon 7"),
    ("short series skipped by option", "data.csv",
     csv(pd.concat([series().assign(id="a"), series(n=1).assign(id="b")])),
     ["--id-col", "id", "--short-series", "skip"] + FAST, 0, "skipped 1 series too short to train on (first: 'b', 1 points)"),
    ("id with a single row", "data.csv", csv(pd.concat([series().assign(id="a"), series(n=1).assign(id="b")])),
     ["--id-col", "id", "--short-series", "fail"] + FAST, 2, "series 'b' has 1 points, fewer than lookback"),
    ("no series long enough to train", "data.csv", csv(series(n=5)), ["--horizon", "7"] + FAST, 2,
     "no series holds a training window: the longest has 5 points, and horizon 7 needs at least 8"),
    ("horizon beyond the lookback limit", "data.csv", csv(series()), ["--horizon", "60000"], 2,  # not a --lookback never given
     "no series holds a training window: the longest has 120 points, and horizon 60000 needs at least 60001"),
    ("a series with no value in a column to fill", "data.csv",
     csv(pd.concat([series(x=1.0).assign(id="a"), series(x=np.nan).assign(id="b")])),
     ["--id-col", "id", "--features", "x", "--fill", "ffill"] + FAST, 2,
     "series 'b' has no value at all in column 'x', so nothing to fill from; drop the column or the series"),
    ("an id column named like an output column", "data.csv",  # its ids were overwritten by the forecast
     csv(pd.concat([series().assign(forecast="a"), series().assign(forecast="b")])), ["--id-col", "forecast"] + FAST, 2,
     "column 'forecast' (--id-col) has the name of a forecast column (forecast, lo-80, hi-95, q0.1, cutoff, actual), "
     "which would overwrite it in the output; rename it"),
    ("a time column named like an output column", "data.csv", csv(series().rename(columns={"date": "cutoff"})),
     FAST, 2, "column 'cutoff' (--time-col) has the name of a forecast column"),
    ("spaces after the commas work", "data.csv",  # "date, y": the target was ' y'
     series().to_csv(index=False, sep=",").replace(",", ", ").encode(), ["--target", "y"] + FAST, 0, None),
    ("a comment line above the header", "data.csv", b"# exported from the shop\n" + csv(series()), FAST, 2,
     "data.csv' starts with a comment line ('# exported from the shop'), read as the header; remove the lines "
     "above the header"),
    ("local times repeated when DST ends", "data.csv",  # the hint said "many series? pass --id-col"
     csv(pd.DataFrame({"date": pd.date_range("2021-10-25", periods=24 * 10, freq="h", tz="Europe/Berlin")
                       .tz_localize(None).astype(str), "y": np.arange(240.0)})), FAST, 2,
     "1 duplicate timestamps, first at 2021-10-31 02:00:00; remove or aggregate them (local times that repeat "
     "when the clocks go back for DST? write them with their UTC offsets, or in UTC)"),
    ("a --freq coarser than the data", "data.csv", csv(series()), ["--freq", "W-MON"] + FAST, 2,
     "timestamp 2021-01-01 00:00:00 is off the grid of --freq W-MON; aggregate the data to W-MON first, or drop "
     "--freq to read it at its own frequency"),
    ("horizon 0", "data.csv", csv(series()), ["--horizon", "0"], 2, "--horizon (0) must be >= 1"),
    ("horizon negative", "data.csv", csv(series()), ["--horizon", "-3"], 2, "--horizon (-3) must be >= 1"),
    ("lookback larger than the data", "data.csv", csv(series()), ["--lookback", "500", "--horizon", "7", "--short-series", "fail"], 2,
     "the series has 120 points, fewer than lookback 500 + horizon 7; use --short-series pad, lower --lookback, "
     "lower --horizon, or give more data"),
    # the horizon was not given: it came from the season, and the hint says so
    ("season's horizon longer than the data", "data.csv", csv(series()), ["--season", "100", "--short-series", "fail"], 2,
     "the series has 120 points, fewer than lookback 200 + horizon 100; use --short-series pad, lower --lookback, "
     "pass a shorter --horizon (it defaults to one season), or give more data"),
    ("season longer than the data", "data.csv", csv(series()), ["--season", "500", "--horizon", "7"], 2,
     "--season 500 is longer than the longest series (120 points), so no window holds one season of it; "
     "lower --season"),
    ("threads beyond the cores", "data.csv", csv(series()), ["--threads", "100000"], 2,
     f"--threads 100000 is more than the {os.cpu_count()} cores; oversubscribed torch threads slow a GRU step 100x: "
     f"use --threads {os.cpu_count()} or fewer"),
    ("epochs 0", "data.csv", csv(series()), ["--epochs", "0"], 2, "--epochs (0) must be >= 1"),
    ("batch size 0", "data.csv", csv(series()), ["--batch-size", "0"], 2, "--batch-size (0) must be >= 1"),
    ("learning rate NaN", "data.csv", csv(series()), ["--lr", "nan"], 2, "--lr (nan) must be > 0"),
    ("log of a non-positive target", "data.csv", csv(series(y=np.r_[1.0, 2.0, -0.5, np.ones(117)])),
     ["--transform", "log"], 2,
     "--transform log needs a target above 0, but the series has -0.5 at row 3; use --transform none"),
    ("unknown transform", "data.csv", csv(series()), ["--transform", "sqrt"], 2,
     "--transform 'sqrt' is not known; use auto, none, log"),
    ("unknown window scale", "data.csv", csv(series()), ["--window-scale", "std"], 2,
     "--window-scale 'std' is not known; use one of diff, none"),
    ("no base seasons", "data.csv", csv(series()), ["--base-seasons", "0"], 2,
     "--base-seasons (0) must be >= 1"),
    ("second season beyond the window", "data.csv", csv(series()), ["--second-season", "500", "--lookback", "20"], 2,
     "--second-season (500) needs a lookback of at least 500 steps (now 20); raise --lookback"),
    ("second season without a seasonal base", "data.csv", csv(series()), ["--second-season", "7", "--window-norm", "last"], 2,
     "--second-season blends seasonal bases and needs --window-norm seasonal (now last); drop one of them"),
    ("output in a missing folder", "data.csv", csv(series()), ["--forecast-out", "/nonexistent/f.csv"], 2,
     "cannot write '/nonexistent/f.csv': folder '/nonexistent' does not exist; create it first"),
]


def _decimal_parquet(path: Path) -> None:
    """A target of decimal128 (money from a database): pandas gets Decimal objects."""
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = series()
    values = [decimal.Decimal(f"{v:.2f}") for v in frame.y]
    pq.write_table(pa.table({"date": frame.date, "y": pa.array(values, pa.decimal128(10, 2))}), path)


def _truncated_parquet(path: Path) -> None:
    series().to_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("case,name,content,args,code,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tmp_path, monkeypatch, capsys, case, name, content, args, code, message):
    data = tmp_path / (name or "absent.csv")
    if callable(content):
        content(data)
    elif content is not None:
        data.write_bytes(content)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("untouched")
    returncode, _, stderr = run_main(monkeypatch, capsys, "train", data, *args, "--out", out / "m.gruf")
    assert returncode == code, stderr
    assert "Traceback" not in stderr
    if code == 2:
        errors = [line for line in stderr.splitlines() if line.startswith("gruforecast: error: ")]
        assert len(errors) == 1 and len(stderr.strip().splitlines()) <= 2, stderr
        assert message in errors[0], errors[0]
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]  # nothing written
    else:
        assert (out / "m.gruf").exists() and (out / "m-forecast.csv").exists()
        if message:
            assert message in stderr
    assert (out / "keep.txt").read_text() == "untouched"


def test_constant_series_reports_mase_as_undefined(tmp_path, monkeypatch, capsys):
    (tmp_path / "d.csv").write_bytes(csv(series(y=[5.0] * N)))
    code, stdout, stderr = run_main(monkeypatch, capsys, "train", tmp_path / "d.csv", *FAST, "--out", tmp_path / "m.gruf")
    assert code == 0, stderr
    import json

    scores = json.loads((tmp_path / "metrics.json").read_text())["test"]["scores"]
    assert scores["model"]["mase"] is None and scores["seasonal_naive"]["mase"] is None
    assert "n/a" in stdout and "Warning" not in stderr


def test_100000_tiny_series_fail_fast_and_clearly(tmp_path):
    n = 100_000
    frame = pd.DataFrame({"id": np.repeat(np.arange(n), 3),
                          "date": np.tile(["2021-01-01", "2021-01-02", "2021-01-03"], n), "y": 1.0})
    frame.to_csv(tmp_path / "d.csv", index=False)
    import time

    start = time.perf_counter()
    proc = run_cli("train", tmp_path / "d.csv", "--id-col", "id", "--out", tmp_path / "m.gruf", timeout=120)
    assert proc.returncode == 2
    assert "no series holds a training window: the longest has 3 points" in proc.stderr
    assert time.perf_counter() - start < 60  # vectorised checks: seconds, not a loop per series
    assert not (tmp_path / "m.gruf").exists()


def _as_plain_user() -> tuple[str, ...]:
    """A prefix under which mode bits apply. Root ignores them, so as root the command runs
    without the capabilities that override them (setpriv); elsewhere as is."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root and setpriv is missing: mode bits cannot be made to apply")
    caps = "-dac_override,-dac_read_search"
    return ("setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}")


def test_unreadable_file_and_read_only_folder(tmp_path):
    prefix = _as_plain_user()
    data = tmp_path / "d.csv"
    data.write_bytes(csv(series()))
    data.chmod(0)
    proc = run_cli("train", data, "--out", tmp_path / "m.gruf", prefix=prefix)
    assert proc.returncode == 2, proc.stderr
    assert f"cannot read '{data}': permission denied; check its mode" in proc.stderr
    data.chmod(0o644)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    proc = run_cli("train", data, "--out", ro / "m.gruf", prefix=prefix)
    assert proc.returncode == 2, proc.stderr
    assert f"cannot write '{ro / 'm.gruf'}': folder '{ro}' is not writable; choose another path" in proc.stderr
    assert list(ro.iterdir()) == []


def test_check_reports_every_problem_at_once(tmp_path):
    frame = series()
    frame["y"] = frame["y"].astype(object)
    frame.loc[3, "y"] = "abc"
    frame.loc[7, "y"] = np.nan
    frame = pd.concat([frame, frame.iloc[[20]]])
    (tmp_path / "d.csv").write_bytes(csv(frame))
    proc = run_cli("check", tmp_path / "d.csv", "--target", "y")
    assert proc.returncode == 2
    problems = [line for line in proc.stderr.splitlines() if line.startswith("gruforecast: problem: ")]
    assert len(problems) == 3
    assert "1 cells are not numbers (row 5 'abc'" in problems[0]
    assert "1 empty cells (rows 9" in problems[1]
    assert "2 rows share a timestamp" in problems[2]
    good = run_cli("check", Path(__file__).parents[1] / "sample_data" / "co2_weekly.csv", "--fill", "interpolate")
    assert good.returncode == 0 and "would train as given" in good.stdout


def test_only_whole_minutes_of_this_century_are_taken_for_unix_times():
    from gruforecast.data import _epoch_note

    ms = pd.Series(1_704_067_200_000 + 60_000 * np.arange(5))
    assert "Unix milliseconds (2024-01-01 00:00:00 to 2024-01-01 00:04:00 UTC)" in _epoch_note(ms, "t")[0]
    assert _epoch_note(pd.Series(np.arange(1, 200)), "t") == []  # steps
    assert _epoch_note(pd.Series(1_704_067_200 + 7 * np.arange(5)), "t") == []  # not whole minutes
    assert _epoch_note(pd.Series(np.repeat(1_704_067_200, 3)), "t") == []  # one time
