"""Read a CSV or Parquet file into validated, regularly spaced series.

Holds: reading the file, resolving the target / time / id / feature columns, checking
them (types, duplicates, missing values, gaps), the fill policy, frequency inference and
the season length that follows from it. Does not hold: scaling or windows (`windows.py`).

Every problem raises `InputError` with one line that names the problem and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

FILL_METHODS = ("interpolate", "ffill", "zero")
# Season length for a pandas offset's base code, used for seasonal naive, MASE and the
# default lookback. Hourly data repeats daily, daily data weekly, and so on.
_SEASONS = {"h": 24, "min": 60, "s": 60, "D": 7, "B": 5, "W": 52, "M": 12, "Q": 4, "Y": 1}


@dataclass(frozen=True)
class DataSpec:
    """Which columns hold what, and how to treat holes. Stored in the model artifact."""

    target: str | None = None
    time_col: str | None = None
    id_col: str | None = None
    features: tuple[str, ...] = ()
    fill: str | None = None
    freq: str | None = None

    def __post_init__(self) -> None:
        if self.fill is not None and self.fill not in FILL_METHODS:
            raise InputError(
                f"--fill {self.fill!r} is not known; use one of {', '.join(FILL_METHODS)}"
            )
        object.__setattr__(self, "features", tuple(self.features))


@dataclass
class Series:
    """One series: its id, its times and its values (column 0 target, then features)."""

    id: str
    time: pd.Index
    values: np.ndarray  # (n, 1 + F) float64

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class Panel:
    """All series of a file, validated and regularly spaced, sharing one frequency."""

    spec: DataSpec  # with every column resolved
    series: list[Series]
    freq: str | None  # pandas offset alias; None when the time column holds integer steps
    step: int = 1  # spacing of integer steps
    time_dtype: str = "datetime"  # "datetime" or "integer"
    fingerprint: str = field(default="")

    @property
    def columns(self) -> list[str]:
        return [self.spec.target, *self.spec.features]  # type: ignore[list-item]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a `.csv` (optionally `.gz`) or `.parquet` file into a DataFrame."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"data file {str(path)!r} does not exist; check the path")
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a folder, not a data file; pass a .csv or .parquet file")
    suffixes = "".join(path.suffixes[-2:]).lower()
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path, engine="pyarrow")
        elif path.suffix.lower() == ".csv" or suffixes == ".csv.gz":
            frame = pd.read_csv(path)
        else:
            raise InputError(
                f"{path.name!r} has an unknown extension; use a .csv, .csv.gz or .parquet file"
            )
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{str(path)!r} is empty; give a file with a header and rows") from None
    except PermissionError:
        raise InputError(f"cannot read {str(path)!r}: permission denied; check its mode") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        kind = "Parquet" if path.suffix.lower() == ".parquet" else "CSV"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{str(path)!r} is not a readable {kind} file ({reason}); check the file") from None
    if frame.empty:
        raise InputError(f"{str(path)!r} has no rows; give a file with data under the header")
    return frame


def load_panel(path: str | Path, spec: DataSpec) -> Panel:
    """Read `path` and return its validated series (see `build_panel`)."""
    frame = read_table(path)
    panel = build_panel(frame, spec)
    panel.fingerprint = _file_hash(Path(path))
    return panel


def build_panel(frame: pd.DataFrame, spec: DataSpec) -> Panel:
    """Resolve the columns of `frame`, validate them, fill holes and split by series."""
    spec = _resolve_columns(frame, spec)
    frame = frame.copy()
    times, time_dtype = _parse_time(frame[spec.time_col], spec.time_col)  # type: ignore[index]
    frame[spec.time_col] = times
    for col in [spec.target, *spec.features]:
        frame[col] = _numeric(frame[col], col)
    groups = _split_ids(frame, spec)
    if time_dtype == "integer":
        freq, step = None, _integer_step(groups, spec)
    else:
        freq, step = _infer_freq(groups, spec), 1
    series = [_regularise(sid, g, spec, freq, step) for sid, g in groups]
    _check_holes(series, spec)
    series = [_fill(s, spec.fill) for s in series]
    return Panel(spec=spec, series=series, freq=freq, step=step, time_dtype=time_dtype)


def season_length(freq: str | None) -> int:
    """Season length implied by a pandas frequency alias (1 when unknown or no dates)."""
    if freq is None:
        return 1
    offset = pd.tseries.frequencies.to_offset(freq)
    code = offset.name.split("-")[0]  # "W-SAT" -> "W", "QS-OCT" -> "QS"
    base = code if code in ("s", "B") else code.rstrip("SE")  # "MS", "ME", "QS" -> "M", "Q"
    season = _SEASONS.get(base, 1)
    return season // offset.n if season % offset.n == 0 else 1  # "2h" data: 12 steps a day


def _resolve_columns(frame: pd.DataFrame, spec: DataSpec) -> DataSpec:
    cols = list(frame.columns)
    for name, col in [("--time-col", spec.time_col), ("--id-col", spec.id_col),
                      ("--target", spec.target)] + [("--features", f) for f in spec.features]:
        if col is not None and col not in cols:
            raise InputError(
                f"column {col!r} ({name}) is not in the file; its columns are {', '.join(map(str, cols))}"
            )
    time_col = spec.time_col or _detect_time_col(frame, spec)
    target = spec.target
    if target is None:
        taken = {time_col, spec.id_col, *spec.features}
        numeric = [c for c in cols if c not in taken and pd.api.types.is_numeric_dtype(frame[c])]
        if len(numeric) != 1:
            found = ", ".join(map(str, numeric)) or "none"
            raise InputError(
                f"cannot tell the target: {len(numeric)} numeric columns ({found}); pass --target COL"
            )
        target = numeric[0]
    if target == time_col or target == spec.id_col or target in spec.features:
        raise InputError(f"column {target!r} is used twice; give the target, time, id and features distinct columns")
    return replace(spec, target=target, time_col=time_col)


def _detect_time_col(frame: pd.DataFrame, spec: DataSpec) -> str:
    candidates = []
    for col in frame.columns:
        if col in (spec.target, spec.id_col) or col in spec.features:
            continue
        values = frame[col]
        if pd.api.types.is_datetime64_any_dtype(values):
            candidates.append(col)
        elif values.dtype == object or pd.api.types.is_string_dtype(values):
            parsed = pd.to_datetime(values, errors="coerce", format="mixed")
            if parsed.notna().all():
                candidates.append(col)
    if len(candidates) != 1:
        found = f"{len(candidates)} date columns ({', '.join(map(str, candidates))})" if candidates else "no date column"
        raise InputError(f"cannot tell the time column: {found}; pass --time-col COL")
    return candidates[0]


def _parse_time(values: pd.Series, col: str) -> tuple[pd.Series, str]:
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise InputError(f"time column {col!r} is empty at row {row + 2}; fill or drop that row")
    if pd.api.types.is_integer_dtype(values):
        return values.astype("int64"), "integer"
    if pd.api.types.is_float_dtype(values) and (values == values.round()).all():
        return values.astype("int64"), "integer"
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize(None) if values.dt.tz is not None else values, "datetime"
    parsed = pd.to_datetime(values, errors="coerce", format="mixed")
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise InputError(
            f"time column {col!r} holds {str(values.iloc[row])!r} at row {row + 2}, neither a date nor an integer step; fix it or pass another --time-col"
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    return parsed, "datetime"


def _numeric(values: pd.Series, col: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    parsed = pd.to_numeric(values, errors="coerce")
    bad = parsed.isna() & values.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"column {col!r} is not numeric: row {row + 2} holds {str(values.iloc[row])!r}; clean the column or choose another"
        )
    return parsed.astype("float64")


def _split_ids(frame: pd.DataFrame, spec: DataSpec) -> list[tuple[str, pd.DataFrame]]:
    if spec.id_col is None:
        groups = [("series", frame)]
    else:
        if frame[spec.id_col].isna().any():
            raise InputError(f"id column {spec.id_col!r} has empty cells; fill or drop those rows")
        groups = [(str(k), g) for k, g in frame.groupby(spec.id_col, sort=True)]
    out = []
    for sid, g in groups:
        g = g.sort_values(spec.time_col, kind="stable")
        dup = g[spec.time_col].duplicated()
        if dup.any():
            first = g[spec.time_col][dup].iloc[0]
            where = f" in series {sid!r}" if spec.id_col else ""
            hint = "" if spec.id_col else " (many series? pass --id-col)"
            raise InputError(
                f"{int(dup.sum())} duplicate timestamps{where}, first at {first}; remove or aggregate them{hint}"
            )
        out.append((sid, g))
    return out


def _infer_freq(groups: list[tuple[str, pd.DataFrame]], spec: DataSpec) -> str:
    if spec.freq is not None:
        try:
            return pd.tseries.frequencies.to_offset(spec.freq).freqstr
        except ValueError:
            raise InputError(f"--freq {spec.freq!r} is not a pandas frequency; use e.g. h, D, W-SUN, MS") from None
    longest = max((g[spec.time_col] for _, g in groups), key=len)
    idx = pd.DatetimeIndex(longest)
    if len(idx) < 3:
        raise InputError("too few timestamps to infer the frequency; pass --freq (e.g. h, D, MS)")
    freq = _infer(idx)
    if freq is None:
        # Gaps break infer_freq; the most common spacing is the frequency the gaps break.
        diffs = pd.Series(idx[1:] - idx[:-1])
        freq = pd.tseries.frequencies.to_offset(diffs.mode().iloc[0]).freqstr
        regular = pd.date_range(idx[0], idx[-1], freq=freq)
        if not idx.isin(regular).all():
            raise InputError("cannot infer the frequency from irregular timestamps; pass --freq (e.g. h, D, MS)")
    return freq


def _infer(idx: pd.DatetimeIndex) -> str | None:
    """pd.infer_freq as a string alias, across pandas versions (newer ones return an offset)."""
    try:
        with pd.option_context("future.infer_freq_returns_offset", True):
            freq = pd.infer_freq(idx)
    except (KeyError, pd.errors.OptionError):  # pandas without that option returns a string
        freq = pd.infer_freq(idx)
    return None if freq is None else pd.tseries.frequencies.to_offset(freq).freqstr


def _integer_step(groups: list[tuple[str, pd.DataFrame]], spec: DataSpec) -> int:
    diffs = np.concatenate([np.diff(g[spec.time_col].to_numpy()) for _, g in groups])
    if len(diffs) == 0:
        return 1
    values, counts = np.unique(diffs, return_counts=True)
    return int(values[np.argmax(counts)])


def _regularise(sid: str, g: pd.DataFrame, spec: DataSpec, freq: str | None, step: int) -> Series:
    """Reindex a series onto its full regular time index (gaps become NaN rows)."""
    t = g[spec.time_col]
    if freq is None:
        full = pd.Index(np.arange(t.iloc[0], t.iloc[-1] + 1, step, dtype="int64"))
        if not pd.Index(t).isin(full).all():
            raise InputError(f"series {sid!r} has integer steps off the common spacing {step}; make the steps regular")
    else:
        full = pd.date_range(t.iloc[0], t.iloc[-1], freq=freq)
        if not pd.DatetimeIndex(t).isin(full).all():
            raise InputError(
                f"series {sid!r} has timestamps off the {freq} grid; pass --freq or align the times"
            )
    cols = [spec.target, *spec.features]
    values = g.set_index(spec.time_col)[cols].reindex(full).to_numpy(dtype="float64")
    return Series(id=sid, time=full, values=values)


def _check_holes(series: list[Series], spec: DataSpec) -> None:
    if spec.fill is not None:
        return
    holes = [(s, np.isnan(s.values).any(axis=1)) for s in series]
    count = sum(int(mask.sum()) for _, mask in holes)
    if count == 0:
        return
    s, mask = next((s, m) for s, m in holes if m.any())
    where = f" of series {s.id!r}" if len(series) > 1 else ""
    first = s.time[int(np.flatnonzero(mask)[0])]
    raise InputError(
        f"{count} missing values or gaps in the time index, first at {first}{where}; "
        "pass --fill interpolate|ffill|zero"
    )


def _fill(s: Series, method: str | None) -> Series:
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
        raise InputError(f"series {s.id!r} has a column with no values at all; drop it or the series")
    return replace(s, values=frame.to_numpy(dtype="float64"))


def _file_hash(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
