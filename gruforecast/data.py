"""Read a CSV or Parquet file into validated, regularly spaced series.

Holds: reading the file, resolving the target / time / id / feature columns, checking
them (types, duplicates, missing values, gaps), the fill policy, frequency inference and
the season length that follows from it. Does not hold: scaling or windows (`windows.py`).

Every problem raises `InputError` with one line that names the problem and the fix.
`check_frame` runs every check and returns all the problems instead of the first.
The work is vectorised over the whole frame (one sort, one duplicate scan, one grid
lookup), so 100,000 tiny series cost seconds, not a Python loop of pandas calls each.
"""

from __future__ import annotations

import difflib
import glob
import hashlib
import io
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import spill
from .config import check_range, option
from .covariates import (
    auto_calendar,
    check_static,
    derived_names,
    derived_values,
    parse_calendar,
    step_of,
)
from .errors import InputError

FILL_METHODS = ("interpolate", "ffill", "zero")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class DataSpec:
    """Which columns hold what, how the CSV is written, and how to treat holes.
    Stored in the model artifact, so `predict --data` reads new files the same way."""

    target: str | None = option(None, "target column (default: the only numeric one)")
    time_col: str | None = option(None, "time column: dates or integer steps (default: detected)")
    id_col: str | None = option(None, "series id column, for many series in long format")
    features: tuple[str, ...] = option(
        (), "past-only covariate columns: read over the lookback, never at or after a forecast origin")
    future_features: tuple[str, ...] = option(
        (), "columns known in advance (a day-ahead load forecast, a planned promotion): read over the "
        "lookback and over the forecast steps; predict takes their future values from --future")
    static_features: tuple[str, ...] = option(
        (), "columns constant within each series (a store's size, a region code as a number), "
        "scaled across the series")
    calendar: str = option(
        "auto", "calendar encodings from the timestamps, known in advance: auto (hour of day, day of "
        "week, day of year, each where the data spans it twice; kept if the validation windows score it "
        "better than none), none, or a list of hour, weekday, yearday",
        absent="none")
    holidays: str | None = option(
        None, "public holidays of COUNTRY[-SUBDIVISION] (e.g. FR, AU-VIC) as a known-future "
        "indicator (the holidays package)")
    holiday_window: int = option(
        7, "with --holidays, two more known-future columns ramp from 0 to 1 over this many days "
        "before the next holiday and after the last one (the days around Christmas, a bridge day); "
        "0: the indicator alone", absent=0, least=0, most=366)
    calendar_tz: str | None = option(
        None, "the time zone the calendar and holidays are read in, for timestamps in UTC "
        "(e.g. Australia/Melbourne; default: as written)")
    fill: str | None = option(None, "fill missing values and gaps: interpolate, ffill or zero")
    freq: str | None = option(None, "pandas frequency, when it cannot be inferred")
    sep: str = option(",", "CSV field separator, e.g. ';'")
    decimal: str = option(".", "CSV decimal mark, e.g. ','")
    thousands: str | None = option(None, "CSV thousands separator, e.g. '.' or ','")
    dayfirst: bool | None = option(None, "dates like 03/04/2024: --dayfirst reads 3 April, "
                                         "--no-dayfirst 4 March (default: from the dates; refused "
                                         "when they could be either)")

    def __post_init__(self) -> None:
        if self.fill is not None and self.fill not in FILL_METHODS:
            raise InputError(
                f"--fill {self.fill!r} is not known; use one of {', '.join(FILL_METHODS)}"
            )
        if len(self.sep) != 1 or len(self.decimal) != 1 or (self.thousands is not None and len(self.thousands) != 1):
            raise InputError("--sep, --decimal and --thousands each take one character")
        for name in ("features", "future_features", "static_features"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        parse_calendar(self.calendar)
        check_range(self)
        if self.calendar_tz is not None:
            try:
                pd.Timestamp("2001-01-01", tz="UTC").tz_convert(self.calendar_tz)
            except Exception:
                raise InputError(f"--calendar-tz {self.calendar_tz!r} is not a time zone; use an IANA name "
                                 "such as Europe/Paris or Australia/Melbourne") from None

    def roles(self) -> list[tuple[str, str | None]]:
        """(option, column) of every column the spec names, the target's first among values."""
        return ([("--time-col", self.time_col), ("--id-col", self.id_col), ("--target", self.target)]
                + [("--features", f) for f in self.features]
                + [("--future-features", f) for f in self.future_features]
                + [("--static-features", f) for f in self.static_features])

    @property
    def value_columns(self) -> tuple[str, ...]:
        """The file's columns in a series' values: target, past, future, static features."""
        return (self.target, *self.features, *self.future_features, *self.static_features)

    @property
    def covariates(self) -> tuple[str, ...]:
        return (*self.features, *self.future_features, *self.static_features)

    @property
    def derived(self) -> tuple[str, ...]:
        """The columns made from the timestamps (resolved spec): calendar, holiday, its ramps."""
        return derived_names(parse_calendar(self.calendar) or (), self.holidays, self.holiday_window)

    def derived_values(self, times: pd.Index) -> np.ndarray:
        """(n, len(derived)) those columns at `times` (resolved spec): the one place they are
        made, for the panel's rows and for the steps after its end alike."""
        return derived_values(times, parse_calendar(self.calendar) or (), self.holidays, self.calendar_tz,
                              self.holiday_window)

    @property
    def n_values(self) -> int:
        return len(self.value_columns) + len(self.derived)

    @property
    def known(self) -> tuple[int, ...]:
        """Value columns known in advance: the future features and the derived columns."""
        return (*self.future, *self.derived_at)

    @property
    def derived_at(self) -> tuple[int, ...]:
        """Value columns of the calendar and holiday columns (after the file's)."""
        return tuple(range(len(self.value_columns), self.n_values))

    @property
    def future(self) -> tuple[int, ...]:
        """Value columns of the future features (read over the forecast steps only)."""
        start = 1 + len(self.features)
        return tuple(range(start, start + len(self.future_features)))

    @property
    def static(self) -> tuple[int, ...]:
        start = 1 + len(self.features) + len(self.future_features)
        return tuple(range(start, start + len(self.static_features)))


@dataclass(slots=True)
class Series:
    """One series: its id, its times, the file's columns (`DataSpec.value_columns`, column
    0 the target) and, on dated data with a calendar, the derived columns of its grid
    (`DataSpec.derived`): one table per time grid, shared by the series on it, not a copy
    per series (4 float64 columns were 1.8 GB of a 100,000-series panel)."""

    id: str
    grid: pd.Index  # the panel's time grid, shared by its series, or this series' own times
    values: np.ndarray  # (n, len(value_columns)) float64
    start: int = 0  # the position of the first row on `grid`
    calendar: np.ndarray | None = None  # (len(grid), len(derived)) float64, of `grid`

    def __len__(self) -> int:
        return len(self.values)

    @property
    def last(self):
        """The series' last time, without cutting its times from the grid."""
        return self.grid[self.start + len(self.values) - 1]

    @property
    def time(self) -> pd.Index:
        """The series' times, cut from the grid when asked: an Index held per series cost
        about 1 KB each, 110 MB of a 100,000-series panel (tracemalloc)."""
        n = len(self.values)
        return self.grid if self.start == 0 and len(self.grid) == n else self.grid[self.start: self.start + n]

    def rows(self, since: int = 0) -> np.ndarray:
        """(n, C) every column (the file's, then the derived ones) of the rows from
        `since` on (negative: from the end): a copy when there are derived columns."""
        values = self.values[since:]
        if self.calendar is None:
            return values
        first = self.start + len(self.values) - len(values)
        return np.hstack([values, self.calendar[first: first + len(values)]])


@dataclass
class Panel:
    """All series of a file, validated and regularly spaced, sharing one frequency."""

    spec: DataSpec  # with every column resolved
    series: list[Series]
    freq: str | None  # pandas offset alias; None when the time column holds integer steps
    step: int = 1  # spacing of integer steps
    time_dtype: str = "datetime"  # "datetime" or "integer"
    fingerprint: str = field(default="")
    notes: list[str] = field(default_factory=list)  # things done to the data, for the log
    choices: dict[str, str] = field(default_factory=dict)  # setting -> what the defaults chose and why


def read_table(path: str | Path, spec: DataSpec | None = None) -> pd.DataFrame:
    """Read a `.csv` (optionally `.gz`) or `.parquet` file into a DataFrame."""
    spec = spec or DataSpec()
    path = Path(path)
    frame = _reader_for(path)(path, spec)
    if frame.empty:
        raise InputError(f"{str(path)!r} has no rows; give a file with data under the header")
    return frame


def _reader_for(path: Path):
    """The reader of a data file, after checking it is one (kind, mode, first bytes)."""
    if not path.exists():
        raise InputError(f"data file {str(path)!r} does not exist; check the path")
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a folder, not a data file; pass a .csv or .parquet file")
    if not path.is_file():  # a FIFO or a device would block the read, or never end it
        raise InputError(f"{str(path)!r} is not a regular file (a pipe or a device?); pass a .csv or .parquet file")
    name = path.name.lower()
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except PermissionError:
        raise InputError(f"cannot read {str(path)!r}: permission denied; check its mode") from None
    if name.endswith(".parquet"):
        if head[:4] != b"PAR1":
            hint = "; it looks like text: rename it to .csv" if head and b"\0" not in head else ""
            raise InputError(f"{str(path)!r} is not a Parquet file (no PAR1 header){hint}")
        reader = _read_parquet
    elif name.endswith(".csv") or name.endswith(".csv.gz"):
        if name.endswith(".csv") and head[:2] == b"\x1f\x8b":
            raise InputError(f"{str(path)!r} is gzip-compressed; name it .csv.gz")
        if name.endswith(".csv") and b"\0" in head:
            raise InputError(f"{str(path)!r} holds binary data, not CSV text; check the file")
        reader = _read_csv
    else:
        raise InputError(f"{path.name!r} has an unknown extension; use a .csv, .csv.gz or .parquet file")
    return reader


class _Bounded(io.RawIOBase):
    """A gzip stream that stops with an InputError past `limit` inflated bytes: a small
    file that inflates without end (a zip bomb) fails fast instead of filling memory."""

    def __init__(self, path: Path, limit: int) -> None:
        import gzip

        self._fh, self._left, self._path, self._limit = gzip.open(path, "rb"), limit, path, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = self._fh.readinto(buf)
        self._left -= n
        if self._left < 0:
            raise InputError(f"{str(self._path)!r} inflates past {self._limit >> 20} MiB, over "
                             f"{INFLATE_RATIO}x its size; decompress it yourself if it is genuine")
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


INFLATE_RATIO = 100  # a .csv.gz may inflate to 100x its size (CSV text: 5-20x), at least 64 MiB


def _read_csv(path: Path, spec: DataSpec) -> pd.DataFrame:
    source = path
    if path.name.lower().endswith(".gz"):
        limit = max(64 << 20, INFLATE_RATIO * path.stat().st_size)
        source = io.BufferedReader(_Bounded(path, limit))
    try:
        # utf-8-sig: a byte-order mark (Excel's UTF-8 export) must not glue itself to the
        # first column's name.
        # Ids are text: "007" and "7" are two series, and "02134" stays "02134".
        ids = {c: str for c in (spec.id_col, "unique_id") if c is not None}
        # skipinitialspace: "date, y" (a space after each comma) names the columns date and y.
        frame = pd.read_csv(source, sep=spec.sep, decimal=spec.decimal, thousands=spec.thousands,
                            encoding="utf-8-sig", dtype=ids, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise InputError(f"{str(path)!r} is empty; give a file with a header and rows") from None
    except UnicodeDecodeError as exc:  # Excel's "CSV" on Windows writes the ANSI code page
        raise InputError(f"{str(path)!r} is not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} at "
                         f"offset {exc.start}); save it as CSV UTF-8") from None
    except (pd.errors.ParserError, OSError, ValueError, EOFError) as exc:
        raise InputError(f"{str(path)!r} is not a readable CSV file ({_first_line(exc)}); check the file") from None
    # Spreadsheets export trailing separators ("date,y,,"): columns with no name and no
    # value, which pandas names "Unnamed: 2"; they hold nothing, so they are not columns.
    empty = [c for c in frame.columns if re.fullmatch(r"Unnamed: \d+", str(c)) and frame[c].isna().all()]
    frame = frame.drop(columns=empty) if empty else frame
    _check_unique_header(path, frame, spec)
    _check_header_is_names(path, frame, spec)
    if len(frame.columns) == 1:  # one column whose name holds another separator, or a comment
        if str(frame.columns[0]).startswith("#"):
            raise InputError(f"{str(path)!r} starts with a comment line ({_clip(frame.columns[0], 40)!r}), read as "
                             "the header; remove the lines above the header")
        for sep in (",", ";", "\t", "|"):
            if sep != spec.sep and sep in str(frame.columns[0]):
                shown = "\\t" if sep == "\t" else sep
                raise InputError(f"{str(path)!r} looks {shown!r}-separated; pass --sep {shown!r}")
    return frame


def _check_header_is_names(path: Path, frame: pd.DataFrame, spec: DataSpec) -> None:
    """Refuse a file without a header: pandas reads its first row as the column names, so
    the first observation is lost without a word and the forecast's columns are named
    "2021-01-01" and "2.0". A header where every name reads as a number or a date, one at
    least as a number, is such a row (a real header names a column in words), unless an
    option names one of its columns (pandas writes a frame's unnamed columns as 0,1,...,
    and `--time-col 0 --target 1` reads such a file)."""
    names = [str(c) for c in frame.columns]
    if any(col in names for col in (spec.target, spec.time_col, spec.id_col) if col is not None):
        return

    def number(name: str) -> bool:
        try:
            float(name)
        except ValueError:
            return False
        return True

    def date(name: str) -> bool:
        return not pd.isna(pd.to_datetime(name, errors="coerce", format="ISO8601"))

    if any(map(number, names)) and all(number(n) or date(n) for n in names):
        raise InputError(f"{str(path)!r} has no header: its first line ({_clip(','.join(names), 60)}) reads as "
                         "data; add a first line naming the columns, such as date,value")


def _check_unique_header(path: Path, frame: pd.DataFrame, spec: DataSpec) -> None:
    """Refuse a header that names two columns alike. pandas renames the second "y" to
    "y.1", so `--target y` would read the first and drop the other without a word; the
    raw header (one line read again) tells a renamed twin from a column truly named "y.1"."""
    names = {str(c) for c in frame.columns}
    twins = (re.fullmatch(r"(.+)\.\d+", n) for n in names)
    if not any(twin and twin[1] in names for twin in twins):
        return
    raw = pd.read_csv(path, sep=spec.sep, encoding="utf-8-sig", header=None, nrows=1, dtype=str,
                      skipinitialspace=True).iloc[0].tolist()
    seen: dict[str, int] = {}
    for k, name in enumerate(raw, start=1):
        if isinstance(name, str) and name in seen:
            raise InputError(f"{str(path)!r} has two columns named {name!r} (columns {seen[name]} and {k}); "
                             "rename one in the header")
        seen.setdefault(name, k)


def _read_parquet(path: Path | list[Path], spec: DataSpec) -> pd.DataFrame:
    if isinstance(path, list):  # parts of one table, read as one (no second copy to concatenate)
        return _parquet_frame([str(p) for p in path], spec)
    try:
        return _parquet_frame(str(path), spec)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{str(path)!r} is not a readable Parquet file ({_first_line(exc)}); it may be truncated") from None
    except Exception as exc:  # pyarrow raises its own types for bad bytes: all mean "unreadable"
        raise InputError(f"{str(path)!r} is not a readable Parquet file ({type(exc).__name__}); it may be truncated") from None


def _parquet_frame(source: str | list[str], spec: DataSpec) -> pd.DataFrame:
    """The table as a frame, with bounded memory: a text id column read as a dictionary
    (a categorical: one code per row, each id once; 10^7 id strings took 10x the memory),
    and each Arrow column freed as it is converted, its memory handed back (pyarrow's own
    recipe: `to_pandas(split_blocks=True, self_destruct=True)`), so the file is never held
    twice."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(source[0] if isinstance(source, list) else source)
    text = [c for c in dict.fromkeys((spec.id_col, "unique_id")) if c in schema.names
            and (pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type))]
    table = pq.read_table(source, read_dictionary=text)
    for i, f in enumerate(table.schema):  # money from databases and Spark: Decimal objects in pandas
        if pa.types.is_decimal(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.float64()))
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    pa.default_memory_pool().release_unused()
    # A frame written with its time (and id) as the index (`df.set_index("date").to_parquet()`)
    # comes back with them as the index: they are columns here like any other.
    return frame.reset_index() if any(n is not None for n in frame.index.names) else frame


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else type(exc).__name__


def load_panel(path: str | Path, spec: DataSpec) -> Panel:
    """Read `path` (a file, a glob of files or a folder of Parquet parts, read as one
    table) and return its validated series (see `build_panel`). The one loader of every
    command and batch job."""
    files = data_files(path)
    panel = _panel_by_parts(files, spec) if len(files) > 1 else None
    if panel is None:
        frame, files = read_data(path, spec)
        panel = build_panel(frame, spec)
        del frame
        panel.series = _on_disk(panel.series, sum(len(s) for s in panel.series))
    if panel.series and spill.is_mapped(panel.series[0].values):
        points = sum(len(s) for s in panel.series)
        panel.notes.append(f"the values ({points:,} points) are held in a temporary file in "
                           f"{spill.where()!r}, not in memory: the panel is large")
        if spill.in_memory_folder(spill.where()):
            panel.notes.append(f"{spill.where()!r} is a tmpfs, whose files are memory: set TMPDIR to a disk "
                               "folder to hold less")
    hashes = [_file_hash(Path(f)) for f in files]  # each file read once more, whole
    panel.fingerprint = hashes[0] if len(hashes) == 1 else hashlib.sha256("".join(hashes).encode()).hexdigest()
    return panel


def _panel_by_parts(files: list[Path], spec: DataSpec) -> Panel | None:
    """Parquet parts that each hold whole series, built one part at a time: each part's
    table is freed before the next is read, and its values go to a temporary file when the
    panel is large (`_on_disk`), so the peak is about one part, not the whole table as
    Arrow and pandas at once (100,000 series: 1.5 GB more). None when the
    parts do not split the panel by series (a series in two parts, as in a table
    partitioned by date; parts that disagree on the columns, the step or the frequency; a
    part that does not build alone): the caller then reads them as one table, the one
    authority on what the data holds."""
    if not all(_reader_for(f) is _read_parquet for f in files):
        return None
    import pyarrow.parquet as pq

    parts: list[Panel] = []
    seen: set[str] = set()
    rows = sum(pq.read_metadata(f).num_rows for f in files)  # the panel's size, before any part is read
    for f in files:
        try:
            frame = read_table(f, spec)
            part = _series_panel(frame, spec)
        except InputError:
            return None
        del frame
        part.series = _on_disk(part.series, rows)
        ids = [s.id for s in part.series]
        if not seen.isdisjoint(ids) or (parts and _layout(part) != _layout(parts[0])):
            return None
        seen.update(ids)
        parts.append(part)
    first = parts[0]
    series = sorted((s for part in parts for s in part.series), key=lambda s: s.id)  # id order, as one table
    notes = list(dict.fromkeys(n for part in parts for n in part.notes))
    return _with_calendar(replace(first, series=series, notes=notes))


def _on_disk(series: list[Series], rows: int) -> list[Series]:
    """`series` (all or a part of a panel of `rows` points) with their values moved into
    one array in a temporary file when the panel's values are too large to hold
    (`spill.too_large`), so that they are held by the pages in use; the loader's arrays
    are freed with the caller's. The values are the same, bit for bit."""
    if not series or not spill.too_large(rows * series[0].values.shape[1] * 8):
        return series
    flat = spill.mapped((sum(len(s) for s in series), series[0].values.shape[1]), np.float64)
    moved, at = [], 0
    for s in series:
        flat[at: at + len(s)] = s.values
        moved.append(replace(s, values=flat[at: at + len(s)]))
        at += len(s)
    return moved


def _layout(part: Panel) -> tuple:
    return part.spec, part.freq, part.step, part.time_dtype


def read_data(path: str | Path, spec: DataSpec) -> tuple[pd.DataFrame, list[Path]]:
    """The table `path` names (its files concatenated) and the files read."""
    files = data_files(path)
    if not files:
        raise InputError(f"no file matches {str(path)!r}; check the data path or glob")
    if len(files) > 1 and all(_reader_for(f) is _read_parquet for f in files):
        try:
            frame = _read_parquet(files, spec)
        except (OSError, ValueError, EOFError) as exc:  # parts that do not make one table
            raise InputError(f"the Parquet parts of {str(path)!r} do not read as one table "
                             f"({_first_line(exc)}); give them one schema") from None
        except Exception as exc:
            raise InputError(f"the Parquet parts of {str(path)!r} do not read as one table "
                             f"({type(exc).__name__}); give them one schema") from None
        if frame.empty:
            raise InputError(f"{str(path)!r} has no rows; give files with data")
        return frame, files
    frames = [read_table(f, spec) for f in files]
    return (frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)), files


def data_files(path: str | Path) -> list[Path]:
    """The files a data argument names: itself, every file its glob matches, or every
    `.parquet` file under a folder (a dataset written in parts), sorted."""
    if glob.has_magic(str(path)):
        return [Path(f) for f in sorted(glob.glob(str(path)))]
    path = Path(path)
    if path.is_dir():
        parts = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        if not parts:
            raise InputError(f"{str(path)!r} is a folder without .parquet files; pass a data file, or a folder "
                             "of Parquet parts")
        return parts
    return [path]


def build_panel(frame: pd.DataFrame, spec: DataSpec) -> Panel:
    """Resolve the columns of `frame`, validate them, fill holes, split by series and add
    the calendar's columns."""
    return _with_calendar(_series_panel(frame, spec))


def _series_panel(frame: pd.DataFrame, spec: DataSpec) -> Panel:
    """The validated series of `frame`, without the derived (calendar) columns."""
    spec, notes0 = _resolve_columns(frame, spec)
    typed, time_dtype, notes = _typed_frame(frame, spec)
    rows = _rows_by_series(typed, spec, frame)
    del typed  # the arrays hold what is needed; the frame's columns go now
    ids, starts, ends, t = rows.ids, rows.starts, rows.ends, rows.t
    if time_dtype == "integer":
        freq, step = None, _integer_step(t, starts, ends)
        pos = _integer_positions(t, step)
        grid = pd.Index(t.min() + step * np.arange(int(pos.max()) + 1, dtype="int64"))
    else:
        freq, step = _infer_freq(t, starts, ends, spec), 1
        grid, pos, freq, more = _time_grid(t, freq, spec.freq is None)
        notes += more
    series, holes = _series(ids, starts, ends, pos, rows.values, grid)
    if holes and spec.fill is None:
        other = None if freq is None else _other_grid(t, starts, ends, ids, holes, freq)
        raise InputError(other or _holes_message(holes, series, spec))
    series = [_fill(s, spec.fill, spec.value_columns) for s in series]
    if spec.static_features:
        check_static(series, spec.static_features, slice(spec.static[0], spec.static[-1] + 1))
    return Panel(spec=spec, series=series, freq=freq, step=step, time_dtype=time_dtype,
                 notes=notes0 + notes + rows.notes)


def _with_calendar(panel: Panel) -> Panel:
    """`panel` with its calendar resolved and the derived columns appended to the values."""
    auto = parse_calendar(panel.spec.calendar) is None
    spec = _resolve_calendar(panel.spec, panel.freq, panel.series)
    # A calendar the defaults chose is a candidate choice: forecaster._candidates weighs it
    # against none on the validation windows.
    choices = {"calendar": f"{spec.calendar}: from the step and the span of the data"} if auto and spec.derived else {}
    series = panel.series
    if spec.derived:  # known in advance: a function of the time alone, so made once per grid
        # (per series, pandas' date arithmetic took 50 s for 100,000 series) and shared
        on_grid = {}
        for s in series:
            if id(s.grid) not in on_grid:
                on_grid[id(s.grid)] = spec.derived_values(s.grid)
        series = [replace(s, calendar=on_grid[id(s.grid)]) for s in series]
    return replace(panel, spec=spec, series=series, choices=choices)


def conform(panel: Panel, spec: DataSpec) -> Panel:
    """`panel` with only the derived columns of `spec`, whose calendar is `panel`'s or a
    part of it: a model fitted without the calendar the defaults chose (the candidate
    `none`, forecaster._candidates) reads a panel built with it. The same panel when the
    columns agree; the file's columns are never copied, and each grid's table is cut once."""
    if panel.spec.derived == spec.derived:
        return panel
    keep = [panel.spec.derived.index(c) for c in spec.derived]
    cols = slice(0, len(keep)) if keep == list(range(len(keep))) else keep
    tables: dict[int, np.ndarray] = {}

    def cut(table: np.ndarray | None) -> np.ndarray | None:
        if table is None or not keep:
            return None
        return tables[id(table)] if id(table) in tables else tables.setdefault(id(table), table[:, cols])

    return replace(panel, spec=replace(panel.spec, calendar=spec.calendar),
                   series=[replace(s, calendar=cut(s.calendar)) for s in panel.series])


def _resolve_calendar(spec: DataSpec, freq: str | None, series: list[Series]) -> DataSpec:
    """`--calendar auto` -> the encodings the data supports; dates needed for any of it."""
    asked = parse_calendar(spec.calendar)
    if freq is None:  # integer steps: no calendar
        if asked or spec.holidays or spec.calendar_tz:
            what = "--calendar" if asked else "--holidays" if spec.holidays else "--calendar-tz"
            raise InputError(f"{what} needs dates, and the time column holds integer steps; drop it or give dates")
        return replace(spec, calendar="none")
    if asked is None:
        span = max(s.last - s.grid[s.start] for s in series)
        asked = auto_calendar(step_of(freq), span)
    if spec.holidays and step_of(freq) > pd.Timedelta("1D"):
        raise InputError(f"--holidays marks days, and the data's step is {freq}; drop it for data coarser than daily")
    return replace(spec, calendar=",".join(asked) or "none")


@dataclass(frozen=True)
class Session:
    """A business-hours grid: steps of `base` from `start` to `end` (times of day, both
    included) on the weekdays `days` (0 = Monday). Written as a frequency, e.g.
    "5min Mon-Fri 07:00-21:00": that string is the panel's and the model's `freq`, and
    `--freq` takes it. Days of `days` absent from the data are closed days (holidays)."""

    base: str
    days: tuple[int, ...]
    start: pd.Timedelta
    end: pd.Timedelta

    @classmethod
    def parse(cls, freq: str | None) -> Session | None:
        """The session a frequency string names, or None for a plain pandas frequency."""
        parts = (freq or "").split()
        if len(parts) != 3:
            return None
        base, days, hours = parts
        try:
            base = pd.tseries.frequencies.to_offset(base).freqstr
            start, end = (pd.Timedelta(h + ":00") for h in hours.split("-"))
            picked = set()
            for run in days.split(","):
                lo, _, hi = run.partition("-")
                picked.update(range(_DAYS.index(lo), _DAYS.index(hi or lo) + 1))
        except ValueError:
            raise InputError(f"frequency {freq!r} is not a session; write it like '5min Mon-Fri 07:00-21:00'") from None
        if not start <= end < pd.Timedelta("1D") or not picked:
            raise InputError(f"frequency {freq!r} is not a session; write it like '5min Mon-Fri 07:00-21:00'")
        return cls(base, tuple(sorted(picked)), start, end)

    def __str__(self) -> str:
        runs, days = [], list(self.days)
        while days:  # contiguous weekdays as runs: Mon-Fri
            k = 1
            while k < len(days) and days[k] == days[0] + k:
                k += 1
            runs.append(_DAYS[days[0]] + (f"-{_DAYS[days[k - 1]]}" if k > 1 else ""))
            days = days[k:]
        hm = lambda t: f"{int(t.total_seconds()) // 3600:02d}:{int(t.total_seconds()) % 3600 // 60:02d}"  # noqa: E731
        return f"{self.base} {','.join(runs)} {hm(self.start)}-{hm(self.end)}"

    @property
    def step(self) -> pd.Timedelta:
        return pd.Timedelta(pd.tseries.frequencies.to_offset(self.base))

    @property
    def steps_per_day(self) -> int:
        return int((self.end - self.start) / self.step) + 1

    def keep(self, times: pd.DatetimeIndex) -> np.ndarray:
        tod = times - times.normalize()
        return np.asarray(times.day_of_week.isin(self.days) & (tod >= self.start) & (tod <= self.end))

    def grid(self, first, last, open_days: pd.DatetimeIndex | None = None) -> pd.DatetimeIndex:
        """The session's steps from `first` to `last`, on `open_days` only if given."""
        full = pd.date_range(first, last, freq=self.base)
        grid = full[self.keep(full)]
        return grid if open_days is None else grid[grid.normalize().isin(open_days)]

    def after(self, last, K: int) -> pd.DatetimeIndex:
        """The K session steps after `last` (every weekday of the session open)."""
        out, start = [], pd.Timestamp(last)
        per_week = self.steps_per_day * len(self.days)
        while sum(len(o) for o in out) < K:
            span = pd.date_range(start, periods=int((K // per_week + 2) * 7 * 86400 / self.step.total_seconds()),
                                 freq=self.base)[1:]
            out.append(span[self.keep(span)])
            start = span[-1]
        return pd.DatetimeIndex(np.concatenate([o.to_numpy() for o in out])[:K])


def _detect_session(t: np.ndarray, freq: str) -> tuple[Session, pd.DatetimeIndex] | None:
    """A business-hours session in timestamps that leave most of the regular grid empty:
    the weekdays they fall on and their first and last time of day. Used when the grid
    restricted to it, on the days that hold data, is (nearly) complete."""
    try:
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    except (ValueError, TypeError):
        return None
    if step >= pd.Timedelta("1D"):
        return None
    times = pd.DatetimeIndex(np.unique(t))
    tod = times - times.normalize()
    days = tuple(sorted(int(d) for d in np.unique(times.day_of_week)))
    session = Session(freq, days, tod.min(), tod.max())
    if len(days) == 7 and session.steps_per_day * step >= pd.Timedelta("1D"):
        return None  # every hour of every day: no session
    open_days = times.normalize().unique()
    grid = session.grid(times.min(), times.max(), open_days)
    full = pd.date_range(times.min(), times.max(), freq=freq)
    if len(grid) < 0.9 * len(full) and len(times) >= 0.98 * len(grid):
        return session, grid
    return None


def _missing_column(col: str, option: str, cols: list) -> InputError:
    close = difflib.get_close_matches(str(col), [str(c) for c in cols], n=1, cutoff=0.5)
    shown = ", ".join(_clip(c, 40) for c in cols[:10]) + (f" and {len(cols) - 10} more" if len(cols) > 10 else "")
    hint = f"; did you mean {close[0]!r}?" if close else f"; its columns are {shown}"
    return InputError(f"column {col!r} ({option}) is not in the file{hint}")


def _check_roles(spec: DataSpec) -> None:
    """Each column plays one role: a column given twice (the time as a feature, the id as
    the time, a feature listed twice) is refused with the options that name it."""
    seen: dict[str, str] = {}
    for role, col in spec.roles():
        if col is None:
            continue
        if col in seen:
            twice = f"twice in {role}" if role == seen[col] else f"by {seen[col]} and {role}"
            raise InputError(f"column {col!r} is named {twice}; give each role its own column")
        seen[col] = role


_COMMA_DECIMAL = re.compile(r"\s*[-+]?(\d{1,3}(\.\d{3})+|\d+),\d+\s*")
_COMMA_THOUSANDS = re.compile(r"\s*[-+]?\d{1,3}(,\d{3})+(\.\d+)?\s*")


def _numbers_as_text(values: pd.Series) -> str | None:
    """The option that would read a text column as numbers ("316,1": --decimal ','), or
    None. Such a column is neither the time nor the id: "316,1" even parses as a date."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return None
    sample = values.dropna().astype(str).head(200)
    if sample.empty:
        return None
    if sample.str.fullmatch(_COMMA_THOUSANDS).all():  # before the decimal: "1,234" is either
        return "--thousands ','"
    if sample.str.fullmatch(_COMMA_DECIMAL).all():
        return "--decimal ','" + (" --thousands '.'" if sample.str.contains(r"\.").any() else "")
    return None


def _mostly_numbers(values: pd.Series) -> bool:
    """Text that is numbers but for a few cells ('-', 'n/a', '12 kg'): the column a user
    means as the target, whose bad cells the value checks then name row by row."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return False
    sample = values.dropna().head(200)
    return len(sample) >= 10 and pd.to_numeric(sample, errors="coerce").notna().mean() >= 0.9


def _resolve_columns(frame: pd.DataFrame, spec: DataSpec) -> tuple[DataSpec, list[str]]:
    _check_roles(spec)
    cols = list(frame.columns)
    for name, col in spec.roles():
        if col is not None and col not in cols:
            raise _missing_column(col, name, cols)
    notes = []
    if spec.id_col is None and "unique_id" in cols and spec.time_col != "unique_id":
        spec = replace(spec, id_col="unique_id")  # Nixtla's long format: unique_id, ds, y
        notes.append("read as a panel: id column 'unique_id' (Nixtla's long format)")
    time_col = spec.time_col
    if time_col is None and "ds" in cols and spec.id_col == "unique_id" and "ds" not in spec.covariates:
        # Nixtla's ds may hold integer steps (statsforecast's M-competition loaders: 1, 2, ...),
        # which no detection takes for a time column
        time_col = "ds"
        notes.append("time column 'ds' (Nixtla's long format)")
    time_col = time_col or _detect_time_col(frame, spec)
    if spec.id_col is None:
        text = [c for c in cols if c != time_col and c != spec.target and c not in spec.covariates
                and not pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_datetime64_any_dtype(frame[c])
                and _numbers_as_text(frame[c]) is None and not _mostly_numbers(frame[c])]
        if len(text) == 1 and frame[text[0]].nunique() < len(frame):
            spec = replace(spec, id_col=text[0])  # the one text column names the series
            notes.append(f"read as a panel: id column {text[0]!r}, the only text column (--id-col sets another)")
    target = spec.target
    if target is None:
        taken = {time_col, spec.id_col, *spec.covariates}
        numeric = [c for c in cols if c not in taken and pd.api.types.is_numeric_dtype(frame[c])]
        if not numeric:
            hinted = [(c, h) for c in cols if c not in taken and (h := _numbers_as_text(frame[c]))]
            if hinted:
                col, hint = hinted[0]
                raise InputError(f"no numeric column: column {_clip(col, 40)!r} holds numbers written as text "
                                 f"(first {_clip(frame[col].dropna().iloc[0], 20)!r}); pass {hint}")
            numeric = [c for c in cols if c not in taken and _mostly_numbers(frame[c])]
        if len(numeric) != 1:
            found = (", ".join(_clip(c, 40) for c in numeric[:10]) or "none") + (
                f" and {len(numeric) - 10} more" if len(numeric) > 10 else "")
            raise InputError(
                f"cannot tell the target: {len(numeric)} numeric columns ({found}); pass --target COL"
            )
        target = numeric[0]
    if target == time_col or target == spec.id_col or target in spec.covariates:
        raise InputError(f"column {target!r} is used twice; give the target, time, id and features distinct columns")
    for flag, col in (("--id-col", spec.id_col), ("--time-col", time_col)):  # both are written beside the forecast
        if col is not None and OUTPUT_COLUMNS.fullmatch(str(col)):
            raise InputError(f"column {col!r} ({flag}) has the name of a forecast column (forecast, lo-80, "
                             "hi-95, q0.1, cutoff, actual), which would overwrite it in the output; rename it")
    return replace(spec, target=target, time_col=time_col), notes


def _detect_time_col(frame: pd.DataFrame, spec: DataSpec) -> str:
    candidates, compact = [], []
    for col in frame.columns:
        if col in (spec.target, spec.id_col) or col in spec.covariates:
            continue
        values = frame[col]
        if pd.api.types.is_datetime64_any_dtype(values):
            candidates.append(col)
        elif pd.api.types.is_integer_dtype(values):
            # 20240131: a date, but after any written as one (a warehouse's date_key beside its date)
            if _compact_dates(values.head(200)) is not None:
                compact.append(col)
        elif (values.dtype == object or pd.api.types.is_string_dtype(values)) and _numbers_as_text(values) is None:
            sample = values.dropna().head(200)
            dates = pd.to_datetime(sample, errors="coerce", format="mixed", utc=True).notna().to_numpy()
            # dates but for a footer ("Total" under a spreadsheet's last row): the time
            # column still, and its parsing names the row that is not a date
            footer = len(dates) > 10 and dates[:-3].all()
            # dates but for a typo or two: the time column still, and its parsing names the row
            typos = len(dates) >= 10 and dates.mean() >= 0.9
            if len(sample) and (_period_labels(sample.astype(str)) is not None or dates.all() or footer or typos):
                candidates.append(col)
    candidates = candidates or compact
    if len(candidates) != 1:
        found = f"{len(candidates)} date columns ({', '.join(map(str, candidates))})" if candidates else "no date column"
        raise InputError(f"cannot tell the time column: {found}; pass --time-col COL")
    return candidates[0]


def _typed_frame(frame: pd.DataFrame, spec: DataSpec) -> tuple[pd.DataFrame, str, list[str]]:
    """Only the columns used, with the time parsed and the values as float64."""
    cols = [c for c in (spec.id_col, spec.time_col, *spec.value_columns) if c is not None]
    out = frame[cols]  # copy-on-write: the columns replaced below are new, the file's untouched
    times, time_dtype, notes = _parse_time(out[spec.time_col], spec.time_col, spec.dayfirst)
    out[spec.time_col] = times
    for col in spec.value_columns:
        out[col] = _numeric(out[col], col, category_hint=col != spec.target)
    if spec.id_col is not None:
        if out[spec.id_col].isna().any():
            raise InputError(f"id column {spec.id_col!r} has empty cells; fill or drop those rows")
        ids = out[spec.id_col]
        if not isinstance(ids.dtype, pd.CategoricalDtype):  # a categorical's ids are text below (_codes)
            out[spec.id_col] = ids.astype(str)
    return out, time_dtype, notes


def _codes(ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(each row's series code, the ids as text in code order): codes in the sorted order
    of the ids' text, for text and categorical columns alike (a categorical's codes are
    renumbered, its rows never turned into strings)."""
    names = np.asarray(ids.cat.categories.astype(str), dtype=object) if isinstance(ids.dtype, pd.CategoricalDtype) else None
    if names is None or len(set(names)) < len(names):  # (1 and "1" are one id as text)
        return pd.factorize(ids.astype(str), sort=True)
    order = np.argsort(names, kind="stable")
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    return rank[ids.cat.codes.to_numpy()], names[order]


def _parse_time(values: pd.Series, col: str, dayfirst: bool | None = None,
                local: bool | None = None) -> tuple[pd.Series, str, list[str]]:
    """(times, "datetime" or "integer", notes). Timestamps with a zone lose it (`_naive`);
    `local` forces their local times (True) or UTC (False) instead of the rule there."""
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise InputError(f"time column {col!r} is empty at row {row + 2}; fill or drop that row")
    if pd.api.types.is_bool_dtype(values):
        raise InputError(f"time column {col!r} holds booleans; pass the column of dates or steps as --time-col")
    if pd.api.types.is_integer_dtype(values):
        compact = _compact_dates(values)
        if compact is not None:
            return compact[0], "datetime", [f"time column {col!r}: {compact[1]}"]
        return values.astype("int64"), "integer", _epoch_note(values, col)
    if pd.api.types.is_float_dtype(values):
        if (values == values.round()).all():
            return values.astype("int64"), "integer", []
        raise InputError(f"time column {col!r} holds fractional numbers; give dates or integer steps")
    if pd.api.types.is_datetime64_any_dtype(values):
        if getattr(values.dt, "tz", None) is not None:
            return _naive(values.dt.tz_convert("UTC").dt.tz_localize(None), values.dt.tz_localize(None),
                          col, f"converted from {values.dt.tz} to UTC", local)
        return values, "datetime", []
    text = values.astype(str)
    has_zone = text.str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", regex=True)
    if has_zone.any() and not has_zone.all():
        row = int(np.flatnonzero(~has_zone.to_numpy())[0])
        raise InputError(
            f"time column {col!r} mixes timestamps with and without a time zone (row {row + 2}: "
            f"{text.iloc[row]!r}); give every timestamp an offset or none"
        )
    labels = _period_labels(text)
    if labels is not None:
        return labels[0], "datetime", [f"time column {col!r}: {labels[1]}"]
    dayfirst, notes = _day_order(text, col, dayfirst)
    zoned = bool(has_zone.any())
    # Year-first dates (2024-04-10, 2024/04/10) are never day-first: pandas with dayfirst
    # reads them year-day-month, so --dayfirst turned monthly ISO dates into days.
    parsed = pd.to_datetime(text, errors="coerce", format="mixed", utc=zoned, dayfirst=dayfirst)
    year_first = text.str.match(r"\s*\d{4}[-/.]\d{1,2}[-/.]\d{1,2}") if dayfirst else None
    if year_first is not None and year_first.any():
        parsed = parsed.where(~year_first, pd.to_datetime(text, errors="coerce", format="mixed", utc=zoned))
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise InputError(
            f"time column {col!r} holds {text.iloc[row]!r} at row {row + 2}, neither a date nor an integer step; fix it or pass another --time-col"
        )
    if zoned:
        utc = parsed.dt.tz_localize(None)
        parts = text.str.extract(r"([+-])(\d\d):?(\d\d)$")  # no match: Z, offset 0
        minutes = parts[1].astype(float).fillna(0) * 60 + parts[2].astype(float).fillna(0)
        offset = pd.to_timedelta(minutes.where(parts[0] != "-", -minutes), unit="min")
        parsed, _, more = _naive(utc, utc + offset, col, "timestamps with UTC offsets converted to UTC", local)
        notes += more
    return parsed, "datetime", notes


def _compact_dates(values: pd.Series) -> tuple[pd.Series, str] | None:
    """(dates, what they were read as) when every integer is a date written without
    separators, as databases export them: 20240131 (YYYYMMDD) or 202401 (YYYYMM, the
    month's first day); else None. Read as steps, 20240131 is followed by a gap of 70
    to 20240201, and `--fill` would have filled it."""
    if len(values) < 2 or values.isna().any():
        return None
    v = values.to_numpy(dtype=np.int64)
    if v.min() >= 1000_01_01 and v.max() <= 2999_12_31:
        days = pd.to_datetime(pd.Series(v.astype(str), index=values.index), format="%Y%m%d", errors="coerce")
        return (days, "dates written 20240131 read as dates") if days.notna().all() else None
    if v.min() >= 1000_01 and v.max() <= 2999_12 and ((v % 100 >= 1) & (v % 100 <= 12)).all():
        years, months = pd.Series(v // 100, index=values.index), pd.Series(v % 100, index=values.index)
        return _first_days(years, months), "months written 202401 read as the dates of their first days"
    return None


# Unix times of 2000-01-01 to 2100-01-01 in seconds and in milliseconds, and the unit whose
# multiple every step is (a minute): a log or a sensor export's time column.
EPOCH_UNITS = (("s", 946_684_800, 4_102_444_800, 60), ("ms", 946_684_800_000, 4_102_444_800_000, 60_000))


def _epoch_note(values: pd.Series, col: str) -> list[str]:
    """A note when integer times look like Unix seconds or milliseconds (every step whole
    minutes): they are read as steps, as given, so the forecast's times are integers too and
    there is no calendar or holiday to read; the note says how to get them."""
    v = np.unique(values.to_numpy(dtype=np.int64))
    for unit, low, high, minute in EPOCH_UNITS:
        if len(v) > 1 and low <= v[0] and v[-1] < high and not (np.diff(v) % minute).any():
            first, last = (pd.Timestamp(int(t), unit=unit) for t in (v[0], v[-1]))
            return [f"time column {col!r} looks like Unix {'seconds' if unit == 's' else 'milliseconds'} "
                    f"({first} to {last} UTC); it is read as integer steps, with no calendar or holidays: "
                    f"write it as dates (pandas: pd.to_datetime(df[{col!r}], unit={unit!r})) for those"]
    return []


def _first_days(years: pd.Series, months: pd.Series) -> pd.Series:
    return pd.to_datetime(pd.DataFrame({"year": years.astype(int), "month": months.astype(int), "day": 1}),
                          errors="coerce")


# Period labels pandas does not parse (2000Q1, 2000-Q1 and 2000-01 it reads itself): the
# pattern, its groups to dates, and what they were read as.
PERIOD_LABELS = (
    (r"\s*(\d{4})-?W(\d{2})\s*",
     lambda g: pd.to_datetime(g[0] + "W" + g[1] + "1", format="%GW%V%u", errors="coerce"),
     "ISO weeks (2020-W02) read as the dates of their Mondays"),
    (r"\s*(?:Q([1-4])\s+(\d{4})|(\d{4})\s+Q([1-4]))\s*",
     lambda g: _first_days(g[1].fillna(g[2]), 3 * g[0].fillna(g[3]).astype(int) - 2),
     "quarters (Q1 2000) read as the dates of their first days"),
    (r"\s*(\d{4})M(\d{2})\s*", lambda g: _first_days(g[0], g[1]),  # Eurostat's and the IMF's
     "months (2000M01) read as the dates of their first days"),
)


def _period_labels(text: pd.Series) -> tuple[pd.Series, str] | None:
    """(dates, what they were read as) when every value is one kind of `PERIOD_LABELS`
    (the first value rules out nearly every file before a regex over the column), else None."""
    for pattern, to_dates, what in PERIOD_LABELS:
        if len(text) and re.fullmatch(pattern, text.iloc[0]) and text.str.fullmatch(pattern).all():
            days = to_dates(text.str.extract(pattern))
            return (days, what) if days.notna().all() else None
    return None


def _naive(utc: pd.Series, wall: pd.Series, col: str, converted: str,
           local: bool | None = None) -> tuple[pd.Series, str, list[str]]:
    """Timestamps that carried a zone, without it: in UTC, where offsets that change with
    DST line up (sub-daily data); but where every local time of day is the same (daily
    and coarser data: local midnights) the local ones, the dates the file means: in UTC a
    midnight moves to 23:00 or 22:00 with DST and the days fall off their grid. `local`
    (a future file, read on its model's grid) overrides the rule."""
    if local is None:
        local = (wall - wall.dt.normalize()).nunique() == 1
    if local:
        return wall, "datetime", [f"time column {col!r}: local dates kept (every timestamp at the same local "
                                  "time of day; in UTC, DST would move them off the grid)"]
    return utc, "datetime", [f"time column {col!r} {converted}"]


def _day_order(text: pd.Series, col: str, dayfirst: bool | None) -> tuple[bool, list[str]]:
    """Whether dates written nn/nn/yyyy (or with - or .) put the day first: as given, or
    from the dates themselves (a first field above 12 is a day, a second one above 12 is
    a day). Dates that fit both orders are refused: the file cannot say which it means."""
    parts = text.str.extract(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}\b")
    if parts[0].isna().all():
        return bool(dayfirst), []
    if dayfirst is not None:
        return dayfirst, []
    first, second = (pd.to_numeric(parts[k], errors="coerce") for k in (0, 1))
    if (first > 12).any():
        return True, [f"time column {col!r}: dates read day first (e.g. {text[first > 12].iloc[0]!r})"]
    if (second > 12).any():
        return False, []
    example = text[parts[0].notna()].iloc[0]
    raise InputError(f"time column {col!r} has dates like {example!r} that read as day/month or month/day; "
                     "pass --dayfirst or --no-dayfirst")


def _clip(value, n: int = 60) -> str:
    """A cell or name as shown in a message: at most n characters (a 20 MB cell is not
    echoed whole)."""
    text = str(value)
    return text if len(text) <= n else text[: n - 3] + "..."


# The columns a forecast file adds beside the id and time (`Forecaster._frame`, cutoffs)
OUTPUT_COLUMNS = re.compile(r"forecast|cutoff|actual|(?:lo|hi)-.+|q[0-9.]+")
FLOAT32_SAFE = 1e30  # magnitudes the float32 network computes with after scaling, and back


def _numeric(values: pd.Series, col: str, category_hint: bool = True) -> pd.Series:
    """The column as float64, or one line naming the first cell that is not a number; a
    covariate of text alone (`category_hint`: not the target) is taken for categories."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    if pd.api.types.is_numeric_dtype(values):
        out = values.astype("float64")
    else:
        out = pd.to_numeric(values, errors="coerce")
        bad = out.isna() & values.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            cell = _clip(values.iloc[row])
            if category_hint and not out.notna().any():  # no number at all: categories, not typos
                raise InputError(f"column {col!r} is not numeric: row {row + 2} holds {cell!r}; the model reads "
                                 "numbers: encode a category as 0/1 columns (one per value), or choose another")
            raise InputError(f"column {col!r} is not numeric: row {row + 2} holds {cell!r}; clean the column or "
                             "choose another (a decimal comma or thousands separator? see --decimal, --thousands)")
        out = out.astype("float64")
    arr = out.to_numpy()
    if np.isinf(arr).any():
        row = int(np.flatnonzero(np.isinf(arr))[0])
        raise InputError(f"column {col!r} holds {arr[row]} at row {row + 2}; replace infinities with a number or leave the cell empty")
    if np.isnan(arr).all():
        raise InputError(f"column {col!r} has no values at all; choose another column")
    big = np.nanmax(np.abs(arr))
    if big > FLOAT32_SAFE:
        raise InputError(f"column {col!r} holds values up to {big:.3g}, beyond the range the model "
                         f"computes in (1e30); divide the column by a power of ten first")
    if 0 < big < 1 / FLOAT32_SAFE:
        raise InputError(f"column {col!r} holds only values below {big:.3g} in size, too small to "
                         "scale in float32; multiply the column by a power of ten first")
    return out


def _rows_by_series(frame: pd.DataFrame, spec: DataSpec, given: pd.DataFrame) -> _Rows:
    """The time and value arrays of `frame` and each series' row range, the series in id
    order; duplicate timestamps within a series refused (naming the column of `given`,
    the file as read, that would tell the series apart).

    The ids are factorised once and compared as integers (sorting or hashing 10^7 text
    cells took seconds and a copy of every string). Where every series' rows are already
    together and in time order (any file written by series), no row moves: the series are
    put in id order as row ranges, and a 100,000-series panel is not copied once more."""
    t = frame[spec.time_col].to_numpy()
    values = frame[list(spec.value_columns)].to_numpy(dtype="float64")
    if spec.id_col is None:
        codes, uniques = np.zeros(len(t), dtype=np.int64), np.array(["series"], dtype=object)
    else:
        codes, uniques = _codes(frame[spec.id_col])
    first = _block_starts(codes)  # file order
    grouped = len(np.unique(codes[first])) == len(first)
    later = t[1:] > t[:-1]
    later[first[1:] - 1] = True  # no comparison across two series
    notes = []
    if not (grouped and later.all()):
        order = np.lexsort((t, codes))
        t, values, codes = t[order], values[order], codes[order]
        notes = [f"rows were not in {' and '.join(c for c in (spec.id_col, spec.time_col) if c)} order; sorted"]
        first = _block_starts(codes)
        same = (t[1:] == t[:-1]) & (codes[1:] == codes[:-1])
        if same.any():
            row = int(np.argmax(same)) + 1
            where = f" in series {str(uniques[codes[row]])!r}" if spec.id_col else ""
            hint = "" if spec.id_col else _id_hint(given, spec)
            raise InputError(f"{int(same.sum())} duplicate timestamps{where}, first at {pd.Timestamp(t[row]) if t.dtype.kind == 'M' else t[row]}; "
                             f"remove or aggregate them{hint}")
    ends = np.concatenate([first[1:], [len(t)]])
    by_id = np.argsort(codes[first], kind="stable")
    starts, ends = first[by_id], ends[by_id]
    ids = [str(i) for i in np.asarray(uniques, dtype=object)[codes[starts]]]
    return _Rows(ids, starts, ends, t, values, notes)


def _block_starts(codes: np.ndarray) -> np.ndarray:
    """The rows where a run of one series code begins."""
    return np.concatenate([[0], np.flatnonzero(codes[1:] != codes[:-1]) + 1])


@dataclass
class _Rows:
    """A table's rows as arrays, and each series' [start, end) range of them, in id order
    (the ranges need not be in row order)."""

    ids: list[str]
    starts: np.ndarray
    ends: np.ndarray
    t: np.ndarray
    values: np.ndarray
    notes: list[str]


def _id_hint(given: pd.DataFrame, spec: DataSpec) -> str:
    """' (many series? pass --id-col COLUMN)' naming a column that makes (it, time) unique;
    for the hours local clocks repeat when DST ends, the fix for that instead."""
    repeated = given.loc[given.duplicated(spec.time_col, keep=False), spec.time_col]
    t = pd.to_datetime(repeated.astype(str), errors="coerce", format="mixed")
    if len(t) and t.notna().all() and t.dt.hour.isin((1, 2, 3)).all() and t.dt.month.isin((3, 4, 9, 10, 11)).all():
        return (" (local times that repeat when the clocks go back for DST? write them with their UTC offsets, "
                "or in UTC)")
    for col in given.columns:
        if col in (spec.time_col, spec.target) or col in spec.covariates:
            continue
        if given[col].nunique() < len(given) and not given.duplicated([col, spec.time_col]).any():
            return f" (many series? pass --id-col {col})"
    return " (many series? pass --id-col)"


def _infer_freq(t: np.ndarray, starts: np.ndarray, ends: np.ndarray, spec: DataSpec) -> str:
    if spec.freq is not None:
        if Session.parse(spec.freq) is not None:
            return str(Session.parse(spec.freq))
        try:
            return pd.tseries.frequencies.to_offset(spec.freq).freqstr
        except ValueError:
            raise InputError(f"--freq {spec.freq!r} is not a pandas frequency; use e.g. h, D, W-SUN, MS") from None
    longest = int(np.argmax(ends - starts))
    idx = pd.DatetimeIndex(t[starts[longest]: ends[longest]])
    if len(idx) < 3:
        raise InputError("too few timestamps to infer the frequency; pass --freq (e.g. h, D, MS)")
    freq = _infer(idx)
    if freq is None:
        # Gaps break infer_freq; the most common spacing is the frequency the gaps break.
        spacing = pd.Series(idx[1:] - idx[:-1]).mode().iloc[0]
        # Business days with a few missing (holidays: a market's closed days): daily
        # spacing and never a weekend is the business-day grid, not a day grid with gaps.
        weekdays_only = spacing == pd.Timedelta(days=1) and (idx.day_of_week < 5).all() and len(idx) >= 10
        freq = "B" if weekdays_only else pd.tseries.frequencies.to_offset(spacing).freqstr
    return freq


def _infer(idx: pd.DatetimeIndex) -> str | None:
    """pd.infer_freq as a string alias, across pandas versions (newer ones return an offset)."""
    try:
        with pd.option_context("future.infer_freq_returns_offset", True):
            freq = pd.infer_freq(idx)
    except (KeyError, pd.errors.OptionError):  # pandas without that option returns a string
        freq = pd.infer_freq(idx)
    return None if freq is None else pd.tseries.frequencies.to_offset(freq).freqstr


def _time_grid(t: np.ndarray, freq: str, detect: bool) -> tuple[pd.DatetimeIndex, np.ndarray, str, list[str]]:
    """(grid, positions, freq, notes): the regular grid at `freq`, or a session's grid
    (a given session frequency, or one detected when `detect`) on its open days."""
    session, notes = Session.parse(freq), []
    if session is None:
        grid, pos = _grid_positions(t, freq, given=not detect)
        filled = np.count_nonzero(np.bincount(pos, minlength=len(grid)))  # O(n): grid steps with data
        found = _detect_session(t, freq) if detect and filled < 0.9 * len(grid) else None
        if found is None:
            return grid, pos, freq, notes
    if session is None:
        session, grid = found
        notes.append(f"business-hours grid: {session} (nights and other days are not steps; "
                     "--freq sets another)")
    else:
        grid = session.grid(t.min(), t.max(), pd.DatetimeIndex(t).normalize().unique())
    closed = session.grid(t.min(), t.max()).normalize().unique().difference(grid.normalize().unique())
    if len(closed):
        notes.append(f"{len(closed)} days of the session hold no data and are taken as closed "
                     f"(first {closed[0].date()})")
    pos = grid.get_indexer(pd.DatetimeIndex(t))
    if (pos < 0).any():
        bad = t[np.flatnonzero(pos < 0)[0]]
        raise InputError(f"timestamp {pd.Timestamp(bad)} is outside the session {session}; pass --freq or align the times")
    return grid, pos, str(session), notes


def _grid_positions(t: np.ndarray, freq: str, given: bool = False) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """One regular grid at `freq` (`given`: the user's --freq) over all series, and the
    position of every timestamp on it; a timestamp off the grid is an error."""
    grid = pd.date_range(t.min(), t.max(), freq=freq)
    if len(grid) > 50_000_000:
        raise InputError(f"the timestamps span {len(grid)} steps of {freq}; check --freq and the time column")
    pos = grid.get_indexer(pd.DatetimeIndex(t))
    if (pos < 0).any():
        bad = t[np.flatnonzero(pos < 0)[0]]
        if given:  # finer data than the frequency asked for: it is not resampled here
            raise InputError(f"timestamp {pd.Timestamp(bad)} is off the grid of --freq {freq}; aggregate the data "
                             f"to {freq} first, or drop --freq to read it at its own frequency")
        raise InputError(_monthly_hint(pd.DatetimeIndex(t)) or
                         f"timestamp {pd.Timestamp(bad)} is off the {freq} grid (irregular spacing); pass --freq or "
                         "align the times")
    return grid, pos


def _monthly_hint(times: pd.DatetimeIndex) -> str | None:
    """The message for monthly, quarterly or yearly times that all fall on one day of the
    month other than the first or the last (the 15th): no pandas frequency marks that day,
    so they read as irregular."""
    days = (times[1:] - times[:-1]).days.to_numpy()
    days = days[days > 0]
    kind = next((k for k, lo, hi in (("monthly", 28, 31), ("quarterly", 89, 92), ("yearly", 365, 366))
                 if len(days) and lo <= np.median(days) <= hi), None)
    if kind is None or times.day.nunique() != 1 or times[0].day == 1 or times.is_month_end.all():
        return None
    return (f"the times are {kind} on day {times[0].day} of the month, which no pandas frequency marks; "
            "date each row by the first day of its period (or the last) and run again")


def _integer_step(t: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> int:
    same = np.ones(len(t) - 1, bool) if len(t) > 1 else np.zeros(0, bool)
    same[ends[ends < len(t)] - 1] = False  # no difference across two series (ranges in any order)
    diffs = np.diff(t)[same]
    if len(diffs) == 0:
        return 1
    values, counts = np.unique(diffs, return_counts=True)
    return int(values[np.argmax(counts)])


def _integer_positions(t: np.ndarray, step: int) -> np.ndarray:
    offset = t - t.min()
    if (offset % step).any():
        bad = t[np.flatnonzero(offset % step)[0]]
        raise InputError(f"integer step {bad} is off the common spacing {step}; make the steps regular")
    return offset // step


def _series(ids, starts, ends, pos, values, grid: pd.Index) -> tuple[list[Series], list[tuple[int, int]]]:
    """Cut the sorted arrays into series on their stretch of the grid; holes become NaN rows.

    Returns the series and, for each one with holes, (its index, count of holes)."""
    series, holes = [], []
    for k, (sid, a, b) in enumerate(zip(ids, starts, ends)):
        p = pos[a:b]
        n = int(p[-1] - p[0]) + 1
        if n == b - a:
            vals = values[a:b]
        else:  # gaps in the index: place the rows on the full grid
            vals = np.full((n, values.shape[1]), np.nan)
            vals[p - p[0]] = values[a:b]
        missing = int(np.isnan(vals).any(axis=1).sum())
        if missing:
            holes.append((k, missing))
        series.append(Series(id=sid, grid=grid, values=vals, start=int(p[0])))
    return series, holes


def _other_grid(t: np.ndarray, starts: np.ndarray, ends: np.ndarray, ids, holes: list[tuple[int, int]],
                freq: str) -> str | None:
    """The message for a series regular on another grid than the panel's (weekly among
    daily series), whose 'gaps' --fill would invent; None where its holes are gaps."""
    for i, _ in holes[:100]:  # a bound: only the message waits on this
        idx = pd.DatetimeIndex(t[starts[i]: ends[i]])
        own = _infer(idx) if len(idx) >= 3 else None
        if own is not None and own != freq:
            return (f"series {_clip(ids[i])!r} is regular at {own}, the panel at {freq} (its longest series); "
                    "give series of one frequency (aggregate them first, or train each frequency apart)")
    return None


def _holes_message(holes: list[tuple[int, int]], series: list[Series], spec: DataSpec) -> str:
    count = sum(m for _, m in holes)
    s = series[holes[0][0]]
    where = f" of series {s.id!r}" if spec.id_col else ""
    first = s.time[int(np.flatnonzero(np.isnan(s.values).any(axis=1))[0])]
    return (f"{count} missing values or gaps in the time index, first at {first}{where}; "
            "pass --fill interpolate|ffill|zero")


def _fill(s: Series, method: str | None, names: tuple[str, ...]) -> Series:
    if method is None or not np.isnan(s.values).any():
        return s
    frame = pd.DataFrame(s.values)
    if method == "interpolate":
        frame = frame.interpolate(method="linear", limit_direction="both")
    elif method == "ffill":
        frame = frame.ffill().bfill()  # a leading hole has nothing before it: take the next value
    else:
        frame = frame.fillna(0.0)
    if frame.isna().any().any():
        col = names[int(np.flatnonzero(frame.isna().any().to_numpy())[0])]
        raise InputError(f"series {s.id!r} has no value at all in column {col!r}, so nothing to fill from; "
                         "drop the column or the series")
    return replace(s, values=frame.to_numpy(dtype="float64"))


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: str | Path, spec: DataSpec) -> tuple[list[str], Panel | None]:
    """Run every data check and return all the problems found (not only the first), each
    with its count and first rows, and the panel when the data would train as given."""
    try:
        frame = read_data(path, spec)[0]
    except InputError as exc:
        return [str(exc)], None
    cols = list(frame.columns)
    problems = [str(_missing_column(c, opt, cols)) for opt, c in spec.roles() if c is not None and c not in cols]
    if problems:
        return problems, None
    try:
        spec, _ = _resolve_columns(frame, spec)
    except InputError as exc:
        return [str(exc)], None
    for col in spec.value_columns:
        problems += _column_problems(frame[col], col, spec.fill)
    try:
        _parse_time(frame[spec.time_col], spec.time_col, spec.dayfirst)
    except InputError as exc:
        problems.append(str(exc))
    keys = [c for c in (spec.id_col, spec.time_col) if c is not None]
    dup = frame.duplicated(keys, keep=False)
    if dup.any():
        rows = ", ".join(str(r + 2) for r in np.flatnonzero(dup.to_numpy())[:4])
        problems.append(f"{int(dup.sum())} rows share a timestamp with another row of their series (rows {rows}, ...); remove or aggregate them"
                        + ("" if spec.id_col else _id_hint(frame, spec)))
    if problems:
        return problems, None
    try:
        return [], build_panel(frame, spec)
    except InputError as exc:
        return [str(exc)], None


def _column_problems(values: pd.Series, col: str, fill: str | None) -> list[str]:
    out = []
    empty = np.flatnonzero(values.isna().to_numpy())
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        parsed = pd.to_numeric(values, errors="coerce")
        bad = np.flatnonzero((parsed.isna() & values.notna()).to_numpy())
        if len(bad):
            shown = ", ".join(f"row {r + 2} {str(values.iloc[r])!r}" for r in bad[:3])
            out.append(f"column {col!r}: {len(bad)} cells are not numbers ({shown}, ...); clean them, or see --decimal, --thousands")
        values = parsed
    arr = values.to_numpy(dtype=float, na_value=np.nan)
    inf = np.flatnonzero(np.isinf(arr))
    if len(inf):
        out.append(f"column {col!r}: {len(inf)} infinite values (first at row {inf[0] + 2}); replace them")
    if len(empty) == len(arr):
        out.append(f"column {col!r} has no values at all; choose another column")
    elif len(empty) and fill is None:
        rows = ", ".join(str(r + 2) for r in empty[:3])
        out.append(f"column {col!r}: {len(empty)} empty cells (rows {rows}, ...); pass --fill interpolate|ffill|zero")
    return out
